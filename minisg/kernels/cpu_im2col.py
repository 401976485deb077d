"""Convolution as a matrix product (im2col): the general CPU path, for any stride and padding.

A convolution is a matrix product once every receptive field is copied out as one row or
column of a matrix. Doing that for the whole batch would build a matrix 25 times the size of
the input (80 MB for the second conv of the MNIST model), so the batch is cut into chunks of a
few images whose column matrix stays in cache, one GEMM per chunk. Two layouts of that column
matrix, picked per layer by which one gives longer contiguous copies:

- channels-first: rows are (c, a, b), columns the output pixels; a copy is one output row of OW
  pixels. Best for few input channels (conv1 of MNIST: C=1, OW=28).
- channels-last: rows are output pixels, columns (a, b, c); the input is first transposed to
  NHWC so that a copy is KW*C consecutive values (160 for a 5x5 conv on 32 channels).

Numba loops do the copies (im2col) and their adjoints (col2im, for the input gradient);
NumPy's BLAS (``np.matmul``) does the arithmetic. The chunks run side by side on the cores; a
call with one chunk (one image) shares its matrix products instead (cpu_matmul).
"""
import numpy as np
from numba import prange

from . import cpu_layout, cpu_matmul
from .compile_cache import jit, jit_inline
from .contract import out_size


def use_channels_last(C, KW, OW):
    """True when the channels-last column matrix has the longer contiguous copies."""
    return KW * C > OW


# ----------------------------------------------------------------------------------------------
# Loop kernels
# ----------------------------------------------------------------------------------------------

# The tap helpers take a whole (C-contiguous) plane and the tap's offsets rather than a view
# plane[a:, b:]: Numba then knows that each row is contiguous and vectorises the copies (2x
# faster, measured).

@jit_inline
def _copy_tap(plane, a, b, sh, sw, dst):
    """dst[i, j] = plane[i*sh + a, j*sw + b] over dst's shape: kernel tap (a, b)'s block of
    the column matrix."""
    OH, OW = dst.shape
    for i in range(OH):
        src, out = plane[i * sh + a, b:], dst[i]
        if sw == 1:
            out[:] = src[:OW]
        else:
            for j in range(OW):
                out[j] = src[j * sw]


@jit_inline
def _add_tap(src, a, b, sh, sw, plane):
    """plane[i*sh + a, j*sw + b] += src[i, j] over src's shape: the adjoint of _copy_tap."""
    OH, OW = src.shape
    for i in range(OH):
        row, out = src[i], plane[i * sh + a, b:]
        if sw == 1:
            for j in range(OW):
                out[j] += row[j]
        else:
            for j in range(OW):
                out[j * sw] += row[j]


@jit
def _im2col_nchw(xp, n0, nb, kh, kw, sh, sw, cols):
    """cols[m, (c*kh + a)*kw + b, i, j] = xp[n0+m, c, i*sh + a, j*sw + b] for m < nb."""
    C = xp.shape[1]
    for t in prange(nb * C):
        m, c = t // C, t % C
        plane = xp[n0 + m, c]
        for a in range(kh):
            for b in range(kw):
                _copy_tap(plane, a, b, sh, sw, cols[m, (c * kh + a) * kw + b])


@jit
def _col2im_nchw(gcols, kh, kw, sh, sw, gxp):
    """The adjoint of _im2col_nchw: gxp (nb, C, Hp, Wp) = zeros, then every column entry is
    added back where im2col copied it from. One task per (image, channel) plane: no races."""
    C = gxp.shape[1]
    for t in prange(gxp.shape[0] * C):
        m, c = t // C, t % C
        plane = gxp[m, c]
        plane[:] = 0
        for a in range(kh):
            for b in range(kw):
                _add_tap(gcols[m, (c * kh + a) * kw + b], a, b, sh, sw, plane)


@jit
def _im2col_nhwc(xp3, n0, nb, kh, kw, sh, sw, OW, cols):
    """cols[m, i*OW + j, (a*kw + b)*C + c] = xp[n0+m, i*sh + a, j*sw + b, c] for m < nb,
    where xp3 is the channels-last padded input seen as (N, Hp, Wp*C): each (a, row) run
    of kw*C values is contiguous in both arrays."""
    OH = cols.shape[1] // OW
    L = cols.shape[2] // kh
    C = L // kw
    for t in prange(nb * OH):
        m, i = t // OH, t % OH
        for a in range(kh):
            src = xp3[n0 + m, i * sh + a]
            for j in range(OW):
                start = j * sw * C
                cols[m, i * OW + j, a * L:(a + 1) * L] = src[start:start + L]


@jit
def _col2im_nhwc(gcols, kh, kw, sh, sw, OW, gxp3):
    """The adjoint of _im2col_nhwc: gxp3 (nb, Hp, Wp*C) = zeros plus every column entry added
    back where it came from. One task per (image, padded row), which gathers from the (i, a)
    pairs with i*sh + a == row: no two tasks write the same place."""
    Hp = gxp3.shape[1]
    OH = gcols.shape[1] // OW
    L = gcols.shape[2] // kh
    C = L // kw
    for t in prange(gxp3.shape[0] * Hp):
        m, h = t // Hp, t % Hp
        dst = gxp3[m, h]
        dst[:] = 0
        for a in range(kh):
            i = (h - a) // sh
            if h - a < 0 or i * sh != h - a or i >= OH:
                continue
            for j in range(OW):
                start = j * sw * C
                d = dst[start:start + L]
                g = gcols[m, i * OW + j, a * L:(a + 1) * L]
                for q in range(L):  # not `d += g`: Numba would allocate a temporary
                    d[q] += g[q]


def _products(a, b, out, images):
    """out[k] = a[k] @ b[k] (a or b may be one 2-D matrix for all k). A chunk of one image
    shares its product between the cores (cpu_matmul); a chunk of several is one of many side
    by side already. images: how many the whole call holds."""
    if out.shape[0] == 1:
        cpu_matmul.matmul(a if a.ndim == 2 else a[0], b if b.ndim == 2 else b[0], out=out[0], images=images)
    else:
        np.matmul(a, b, out=out)


# ----------------------------------------------------------------------------------------------
# Column matrices, chunk by chunk
# ----------------------------------------------------------------------------------------------

# The weight gradient adds the chunks' products in this many groups, each in chunk order, then
# the groups in order: the same sums whatever the number of threads that share the groups.
WEIGHT_GRADIENT_GROUPS = 4


class _Columns:
    """The im2col plan of one convolution: output size, layout and chunks. `fill` builds a
    chunk's column matrix in a buffer (each thread its own: `buffer()`) and returns it as an
    (m, OH*OW, K) array (a transposed view in the channels-first layout); `weight_matrix`
    orders the kernel's K axis to match."""

    def __init__(self, x_shape, dtype, kernel_hw, stride, padding, out_channels):
        N, C, H, W = x_shape
        (self.kh, self.kw), (self.sh, self.sw), (self.ph, self.pw) = kernel_hw, stride, padding
        self.OH = out_size(H, self.kh, self.sh, self.ph)
        self.OW = out_size(W, self.kw, self.sw, self.pw)
        self.P, self.K = self.OH * self.OW, C * self.kh * self.kw
        self.Hp, self.Wp = H + 2 * self.ph, W + 2 * self.pw
        self.x_shape, self.dtype, self.out_channels = x_shape, dtype, out_channels
        self.channels_last = use_channels_last(C, self.kw, self.OW)
        # at least WEIGHT_GRADIENT_GROUPS chunks: work to share between the cores even when the
        # batch fits one chunk (the MNIST conv1's 50 images), the same however many cores
        self.nb, self.chunks = cpu_layout.chunks(N, self.P * self.K * dtype.itemsize, at_least=WEIGHT_GRADIENT_GROUPS)

    def buffer(self):
        """Room for one chunk's column matrix."""
        if self.channels_last:
            return np.empty((self.nb, self.P, self.K), self.dtype)
        return np.empty((self.nb, self.K, self.OH, self.OW), self.dtype)

    def map_chunks(self, work, count=None):
        """work(first, last) over slices of the chunks (or of range(count)), side by side on
        the cores (cpu_layout.map_images)."""
        count = len(self.chunks) if count is None else count
        products = self.x_shape[0] * self.P * self.K * self.out_channels   # multiply-adds of the call
        cpu_layout.map_images(work, count, products * cpu_layout.NS_PER_MAC / count, uses_blas=True,
                              images=self.x_shape[0])

    def weight_matrix(self, w):
        """w (O, C, KH, KW) as an (O, K) matrix with K ordered like the columns."""
        if self.channels_last:
            w = w.transpose(0, 2, 3, 1)
        return np.ascontiguousarray(w).reshape(w.shape[0], self.K)

    def weight_from_matrix(self, w2):
        O, C = w2.shape[0], self.x_shape[1]
        if self.channels_last:
            return np.ascontiguousarray(w2.reshape(O, self.kh, self.kw, C).transpose(0, 3, 1, 2))
        return w2.reshape(O, C, self.kh, self.kw)

    def pad(self, x):
        N, C, H, W = x.shape
        if self.channels_last:
            xp = np.empty((N, self.Hp, self.Wp, C), x.dtype)
            cpu_layout.map_images(lambda start, stop: cpu_layout.pad_nhwc(
                x[start:stop], self.ph, self.pw, xp[start:stop]), N, xp[0].size * cpu_layout.NS_PER_ELEMENT)
            return xp.reshape(N, self.Hp, self.Wp * C)
        if self.ph == 0 and self.pw == 0:
            return x
        xp = np.empty((N, C, self.Hp, self.Wp), x.dtype)
        cpu_layout.pad_nchw(x, self.ph, self.pw, xp)
        return xp

    def fill(self, xp, n0, m, buf):
        """Build the column matrix of images n0..n0+m-1 in buf; returns it as (m, P, K)."""
        if self.channels_last:
            _im2col_nhwc(xp, n0, m, self.kh, self.kw, self.sh, self.sw, self.OW, buf)
            return buf[:m]
        _im2col_nchw(xp, n0, m, self.kh, self.kw, self.sh, self.sw, buf)
        return buf[:m].reshape(m, self.K, self.P).transpose(0, 2, 1)

    def scatter_gradient(self, gy3, w2, m, out, buf):
        """Input gradient of one chunk: the column-matrix gradient gy[n].T @ w2 (a GEMM into
        buf), then col2im sums it into `out`, the padded-input gradient of the chunk."""
        gcols = buf[:m]
        if self.channels_last:
            # gcols (m*P, K) = gy.T (m*P, O) @ w2 (O, K) as one GEMM; the transposed copy of the
            # small gy chunk makes it faster than m GEMMs reading gy[n].T in place
            gyt = np.ascontiguousarray(gy3.transpose(0, 2, 1)).reshape(m * self.P, gy3.shape[1])
            cpu_matmul.matmul(gyt, w2, out=gcols.reshape(m * self.P, self.K), images=self.x_shape[0])
            _col2im_nhwc(gcols, self.kh, self.kw, self.sh, self.sw, self.OW, out)
        else:
            # gcols[n] (K, P) = w2.T (K, O) @ gy[n] (O, P)
            _products(w2.T, gy3, gcols.reshape(m, self.K, self.P), self.x_shape[0])
            _col2im_nchw(gcols, self.kh, self.kw, self.sh, self.sw, out)


# ----------------------------------------------------------------------------------------------
# The three convolution maps (contiguous arrays of one float dtype; see cpu.py). The chunks are
# independent: they run side by side on the cores, each thread with its own column buffer.
# ----------------------------------------------------------------------------------------------

def conv(x, w, stride, padding):
    """conv2d_forward: per chunk, the column matrix times the kernel matrix."""
    N, O = x.shape[0], w.shape[0]
    plan = _Columns(x.shape, x.dtype, w.shape[2:], stride, padding, O)
    w2 = plan.weight_matrix(w)
    xp = plan.pad(x)
    y = np.empty((N, O, plan.P), x.dtype)

    def chunks(first, last):
        buf = plan.buffer()
        if plan.channels_last:
            part = np.empty((plan.nb * plan.P, O), x.dtype)
        for n0, m in plan.chunks[first:last]:
            cols = plan.fill(xp, n0, m, buf)
            if plan.channels_last:
                # one GEMM for the chunk, (m*P, K) @ (K, O), then a small transposed copy into
                # NCHW: faster than m GEMMs of (O, K) @ (K, P) (measured, with either OpenBLAS kernel)
                cpu_matmul.matmul(cols.reshape(m * plan.P, plan.K), w2.T, out=part[:m * plan.P], images=N)
                y[n0:n0 + m] = part[:m * plan.P].reshape(m, plan.P, O).transpose(0, 2, 1)
            else:
                # y[n] (O, P) = w2 (O, K) @ cols[n].T (K, P): BLAS reads the transposed view as is
                _products(w2, cols.transpose(0, 2, 1), y[n0:n0 + m], N)

    plan.map_chunks(chunks)
    return y.reshape(N, O, plan.OH, plan.OW)


def input_grad(gy, w, input_hw, stride, padding):
    """conv2d_backward_input: per chunk, the column-matrix gradient, summed back by col2im."""
    N, O = gy.shape[:2]
    C = w.shape[1]
    H, W = input_hw
    plan = _Columns((N, C, H, W), gy.dtype, w.shape[2:], stride, padding, O)
    w2 = plan.weight_matrix(w)
    gy3 = gy.reshape(N, O, plan.P)
    if plan.channels_last:
        gxp = np.empty((N, plan.Hp, plan.Wp * C), gy.dtype)
    else:
        gxp = np.empty((N, C, plan.Hp, plan.Wp), gy.dtype)

    def chunks(first, last):
        buf = plan.buffer()
        for n0, m in plan.chunks[first:last]:
            plan.scatter_gradient(gy3[n0:n0 + m], w2, m, gxp[n0:n0 + m], buf)

    plan.map_chunks(chunks)
    if plan.channels_last:
        gx = np.empty((N, C, H, W), gy.dtype)
        gxp4 = gxp.reshape(N, plan.Hp, plan.Wp, C)
        cpu_layout.map_images(lambda start, stop: cpu_layout.crop_nhwc(
            gxp4[start:stop], plan.ph, plan.pw, gx[start:stop]), N, gx[0].size * cpu_layout.NS_PER_ELEMENT)
        return gx
    return np.ascontiguousarray(gxp[:, :, plan.ph:plan.ph + H, plan.pw:plan.pw + W])


def weight_grad(x, gy, kernel_hw, stride, padding):
    """conv2d_backward_weight: per chunk, gy times the column matrix, summed over the chunks
    (WEIGHT_GRADIENT_GROUPS groups)."""
    N, O = gy.shape[:2]
    plan = _Columns(x.shape, x.dtype, kernel_hw, stride, padding, O)
    xp = plan.pad(x)
    gy3 = gy.reshape(N, O, plan.P)
    groups = np.array_split(np.arange(len(plan.chunks)), min(WEIGHT_GRADIENT_GROUPS, len(plan.chunks)))
    sums = np.zeros((len(groups), O, plan.K), x.dtype)

    def add_groups(first, last):
        buf = plan.buffer()
        part = np.empty((O, plan.K) if plan.channels_last else (plan.nb, O, plan.K), x.dtype)
        for g in range(first, last):
            for n0, m in (plan.chunks[k] for k in groups[g]):
                cols = plan.fill(xp, n0, m, buf)
                if plan.channels_last:
                    # one GEMM over the whole chunk: gy (O, m*P) @ cols (m*P, K)
                    gyt = np.ascontiguousarray(gy3[n0:n0 + m].transpose(1, 0, 2)).reshape(O, m * plan.P)
                    cpu_matmul.matmul(gyt, cols.reshape(m * plan.P, plan.K), out=part, images=N)
                    sums[g] += part
                else:
                    # per image gy[n] (O, P) @ cols[n] (P, K); K is small in this layout
                    _products(gy3[n0:n0 + m], cols, part[:m], N)
                    sums[g] += part[:m].sum(axis=0)

    plan.map_chunks(add_groups, len(groups))
    gw2 = sums[0]
    for g in range(1, len(groups)):
        gw2 += sums[g]
    return plan.weight_from_matrix(gw2)
