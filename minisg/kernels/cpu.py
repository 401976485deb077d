"""CPU kernels: Numba loops for the data movement, NumPy's BLAS (``np.matmul``) for the arithmetic.

Convolution, general case (im2col). A convolution is a matrix product once every receptive
field is copied out as one row or column of a matrix. Doing that for the whole batch would build
a matrix 25 times the size of the input (80 MB for the second conv of the MNIST model), so the
batch is cut into chunks of a few images whose column matrix stays in cache, one GEMM per chunk.
Two layouts of that column matrix, picked per layer by which one gives longer contiguous copies:

- channels-first: rows are (c, a, b), columns the output pixels; a copy is one output row of OW
  pixels. Best for few input channels (conv1 of MNIST: C=1, OW=28).
- channels-last: rows are output pixels, columns (a, b, c); the input is first transposed to
  NHWC so that a copy is KW*C consecutive values (160 for a 5x5 conv on 32 channels).

Convolution, stride 1 with many channels (Winograd, see the section below): about 6 times fewer
multiplications for 5x5 kernels, which matters because BLAS does the bulk of the work.

Input gradient of a sparse gy (after ReLU and max-pool, see the section below): the non-zeros
are scattered straight into the result, skipping the dense transposed convolution.

Numba notes: an array index built by arithmetic (``a[base + j]``) gets a negative-index check
that stops vectorisation, so the loops below index views or use plain loop counters innermost.
The loop functions are plain Python first (``NUMBA_DISABLE_JIT=1`` runs them as is) and get
compiled at the bottom of the file.
"""
import functools
import os

# Numba's OpenMP workers otherwise spin for milliseconds after each parallel loop and starve
# the BLAS threads that run right after them on a small machine (measured: 8 ms lost per
# chunk on 2 cores). Read when Numba first starts its threads; a user's own setting wins.
# Caveat: the process has one OpenMP runtime, so PyTorch in the same process gets it too.
_SET_OMP_WAIT_POLICY = "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ
if _SET_OMP_WAIT_POLICY:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402

from . import compile_cache  # noqa: E402

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Target size of one chunk's column matrix: big enough for efficient GEMMs, small enough
# to stay in the last-level cache.
_CHUNK_BYTES = 4 << 20


def _float_dtype(a):
    if a.dtype not in _DTYPES:
        raise ValueError(f"minisg kernels support float32 and float64 arrays, got {a.dtype}")
    return a.dtype


def _out_size(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def _pair(v):
    """(rows, cols) as plain ints: Numba compiles one version per argument type, so NumPy or
    int32 scalars would otherwise each cost a compilation."""
    return int(v[0]), int(v[1])


def _use_channels_last(C, KW, OW):
    """True when the channels-last column matrix has the longer contiguous copies."""
    return KW * C > OW


def _chunks(N, per_image_bytes, budget=None):
    """Split N images into equal chunks of about `budget` (default _CHUNK_BYTES) bytes each."""
    budget = _CHUNK_BYTES if budget is None else budget
    nb = max(1, min(N, budget // max(1, per_image_bytes)))
    count = -(-N // nb)
    nb = -(-N // count)
    return nb, [(n0, min(nb, N - n0)) for n0 in range(0, N, nb)]


# ----------------------------------------------------------------------------------------------
# Loop kernels (plain Python; compiled with Numba at the bottom of the file)
# ----------------------------------------------------------------------------------------------

def _pad_nchw_py(x, ph, pw, xp):
    """xp (N, C, H+2ph, W+2pw) = x with a zero border."""
    N, C, H, W = x.shape
    for t in prange(N * C):
        n = t // C
        c = t % C
        plane = xp[n, c]
        plane[:ph] = 0
        plane[ph + H:] = 0
        plane[:, :pw] = 0
        plane[:, pw + W:] = 0
        plane[ph:ph + H, pw:pw + W] = x[n, c]


def _pad_nhwc_py(x, ph, pw, xp):
    """xp (N, H+2ph, W+2pw, C) = x moved to channels-last, with a zero border."""
    N, C, H, W = x.shape
    for n in prange(N):
        xp[n, :ph] = 0
        xp[n, ph + H:] = 0
        xp[n, :, :pw] = 0
        xp[n, :, pw + W:] = 0
        inner = xp[n, ph:ph + H, pw:pw + W]
        for c in range(C):
            for h in range(H):
                for w in range(W):
                    inner[h, w, c] = x[n, c, h, w]


def _crop_nhwc_py(xp, ph, pw, x):
    """x (N, C, H, W) = the interior of the channels-last padded xp, back in NCHW."""
    N, C, H, W = x.shape
    for t in prange(N * C):
        n = t // C
        c = t % C
        inner = xp[n, ph:ph + H, pw:pw + W]
        out = x[n, c]
        for h in range(H):
            for w in range(W):
                out[h, w] = inner[h, w, c]


def _im2col_nchw_py(xp, n0, nb, kh, kw, sh, sw, cols):
    """cols[m, (c*kh + a)*kw + b, i, j] = xp[n0+m, c, i*sh + a, j*sw + b] for m < nb."""
    C = xp.shape[1]
    OH, OW = cols.shape[2], cols.shape[3]
    for t in prange(nb * C):
        m = t // C
        c = t % C
        plane = xp[n0 + m, c]
        for a in range(kh):
            for b in range(kw):
                dst = cols[m, (c * kh + a) * kw + b]
                for i in range(OH):
                    src = plane[i * sh + a, b:]
                    row = dst[i]
                    if sw == 1:
                        row[:] = src[:OW]
                    else:
                        for j in range(OW):
                            row[j] = src[j * sw]


def _col2im_nchw_py(gcols, kh, kw, sh, sw, gxp):
    """The adjoint of _im2col_nchw: gxp (nb, C, Hp, Wp) = zeros, then every column entry is
    added back where im2col copied it from. One task per (image, channel) plane: no races."""
    nb, C = gxp.shape[0], gxp.shape[1]
    OH, OW = gcols.shape[2], gcols.shape[3]
    for t in prange(nb * C):
        m = t // C
        c = t % C
        plane = gxp[m, c]
        plane[:] = 0
        for a in range(kh):
            for b in range(kw):
                src = gcols[m, (c * kh + a) * kw + b]
                for i in range(OH):
                    dst = plane[i * sh + a, b:]
                    row = src[i]
                    if sw == 1:
                        for j in range(OW):
                            dst[j] += row[j]
                    else:
                        for j in range(OW):
                            dst[j * sw] += row[j]


def _im2col_nhwc_py(xp3, n0, nb, kh, kw, sh, sw, OW, cols):
    """cols[m, i*OW + j, (a*kw + b)*C + c] = xp[n0+m, i*sh + a, j*sw + b, c] for m < nb,
    where xp3 is the channels-last padded input seen as (N, Hp, Wp*C): each (a, row) run
    of kw*C values is contiguous in both arrays."""
    OH = cols.shape[1] // OW
    L = cols.shape[2] // kh
    C = L // kw
    for t in prange(nb * OH):
        m = t // OH
        i = t % OH
        for a in range(kh):
            src = xp3[n0 + m, i * sh + a]
            for j in range(OW):
                start = j * sw * C
                cols[m, i * OW + j, a * L:(a + 1) * L] = src[start:start + L]


def _col2im_nhwc_py(gcols, kh, kw, sh, sw, OW, gxp3):
    """The adjoint of _im2col_nhwc: gxp3 (nb, Hp, Wp*C) = zeros plus every column entry added
    back where it came from. One task per (image, padded row), which gathers from the (i, a)
    pairs with i*sh + a == row: no two tasks write the same place."""
    nb, Hp = gxp3.shape[0], gxp3.shape[1]
    OH = gcols.shape[1] // OW
    L = gcols.shape[2] // kh
    C = L // kw
    for t in prange(nb * Hp):
        m = t // Hp
        h = t % Hp
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


def _scatter_nonzeros_py(gy, w3, sh, sw, C, gxp3):
    """The input gradient from the non-zeros of gy alone: gxp3 (N, Hp, Wp*C), the channels-last
    padded gradient, = zeros, then for every gy[n, o, i, j] != 0 and kernel row a,
        gxp[n, i*sh + a, j*sw : j*sw + KW, :] += gy[n, o, i, j] * w[o, :, a, :] (as (KW, C)),
    where w3 (O, KH, KW*C) is the kernel channels-last: each update is KW*C contiguous values.
    One task per image: no two tasks write the same place."""
    N, O, OH, OW = gy.shape
    KH, L = w3.shape[1], w3.shape[2]
    for n in prange(N):
        dst = gxp3[n]
        dst[:] = 0
        for o in range(O):
            for i in range(OH):
                row = gy[n, o, i]
                for j in range(OW):
                    g = row[j]
                    if g != 0:
                        start = j * sw * C
                        for a in range(KH):
                            target = dst[i * sh + a, start:start + L]
                            taps = w3[o, a]
                            for q in range(L):
                                target[q] += g * taps[q]


def _tiles_in_py(src3, n0, nb, step, Lh, Lw, TH, TW, out):
    """Winograd transform of tiles: for image n < nb and tile (th, tw),
    out[x*aw + y, (n*TH + th)*TW + tw, c] = sum_{r,s} Lh[x, r] Lw[y, s] src[n0+n, th*step + r, tw*step + s, c]
    where src3 is a channels-last (N, rows, cols*CH) array. One task per row of tiles: first
    the vertical sums over whole rows (long contiguous loops), then the horizontal ones."""
    CH = out.shape[2]
    ah, rh = Lh.shape
    aw, rw = Lw.shape
    width = (TW - 1) * step + rw
    L = width * CH
    for t in prange(nb * TH):
        n = t // TH
        th = t % TH
        tmp = np.empty((ah, width, CH), out.dtype)
        flat = tmp.reshape(ah, L)
        for x in range(ah):
            for q in range(L):
                flat[x, q] = 0
            for r in range(rh):
                coef = Lh[x, r]
                if coef != 0:
                    row = src3[n0 + n, th * step + r]
                    for q in range(L):
                        flat[x, q] += coef * row[q]
        base = (n * TH + th) * TW
        for x in range(ah):
            for y in range(aw):
                xy = x * aw + y
                for tw in range(TW):
                    for c in range(CH):
                        out[xy, base + tw, c] = 0
                for s in range(rw):
                    coef = Lw[y, s]
                    if coef != 0:
                        for tw in range(TW):
                            col = tw * step + s
                            for c in range(CH):
                                out[xy, base + tw, c] += coef * tmp[x, col, c]


def _tiles_out_py(M, Ah, Aw, TH, TW, n0, nb, y):
    """Winograd output transform, the tiles back into an image: y (N, OH, OW, O) channels-last,
    y[n0+n, th*mh + u, tw*mw + v, o] = sum_{x,z} Ah[u, x] Aw[v, z] M[x*aw + z, (n*TH + th)*TW + tw, o]
    (tiles hanging over the bottom or right edge are cut)."""
    OH, OW, O = y.shape[1], y.shape[2], y.shape[3]
    mh, ah = Ah.shape
    mw, aw = Aw.shape
    for t in prange(nb * TH):
        n = t // TH
        th = t % TH
        base = (n * TH + th) * TW
        tmp = np.empty((mh, aw, TW, O), y.dtype)
        for u in range(mh):
            for z in range(aw):
                for tw in range(TW):
                    for o in range(O):
                        tmp[u, z, tw, o] = 0
                for x in range(ah):
                    coef = Ah[u, x]
                    if coef != 0:
                        for tw in range(TW):
                            for o in range(O):
                                tmp[u, z, tw, o] += coef * M[x * aw + z, base + tw, o]
        for u in range(mh):
            i = th * mh + u
            if i >= OH:
                break
            for v in range(mw):
                for tw in range(TW):
                    j = tw * mw + v
                    if j >= OW:
                        break
                    for o in range(O):
                        y[n0 + n, i, j, o] = 0
                    for z in range(aw):
                        coef = Aw[v, z]
                        if coef != 0:
                            for o in range(O):
                                y[n0 + n, i, j, o] += coef * tmp[u, z, tw, o]


def _max_pool_py(x, kh, kw, sh, sw, y, argmax):
    """Window maxima and their flat plane indices; strict '>' keeps the first maximum."""
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t % C
        plane = x[n, c]
        yp = y[n, c]
        ap = argmax[n, c]
        for i in range(OH):
            r0 = i * sh
            for j in range(OW):
                c0 = j * sw
                best = plane[r0, c0]
                at = r0 * W + c0
                for a in range(kh):
                    row = plane[r0 + a]
                    for b in range(kw):
                        v = row[c0 + b]
                        if v > best:
                            best = v
                            at = (r0 + a) * W + c0 + b
                yp[i, j] = best
                ap[i, j] = at


def _max_pool_2x2_py(x, y, argmax):
    """_max_pool for the common 2x2 window with stride 2, unrolled (4x faster, measured): the
    four candidates are compared in row-major order with '>', so ties still go to the first."""
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t % C
        plane = x[n, c]
        for i in range(OH):
            top, bottom = plane[2 * i], plane[2 * i + 1]
            values, places = y[n, c, i], argmax[n, c, i]
            row_start = 2 * i * W
            for j in range(OW):
                best, at = top[2 * j], row_start + 2 * j
                if top[2 * j + 1] > best:
                    best, at = top[2 * j + 1], row_start + 2 * j + 1
                if bottom[2 * j] > best:
                    best, at = bottom[2 * j], row_start + W + 2 * j
                if bottom[2 * j + 1] > best:
                    best, at = bottom[2 * j + 1], row_start + W + 2 * j + 1
                values[j] = best
                places[j] = at


def _pool_scatter_py(gy2, argmax2, gx2):
    """gx2 (planes, H*W) = zeros, then gx2[p, argmax2[p, q]] += gy2[p, q]; one task per plane."""
    for p in prange(gx2.shape[0]):
        dst = gx2[p]
        dst[:] = 0
        src = gy2[p]
        idx = argmax2[p]
        for q in range(src.shape[0]):
            dst[idx[q]] += src[q]


def _pool_gather_py(gx2, argmax2, gy2):
    """gy2[p, q] = gx2[p, argmax2[p, q]]."""
    for p in prange(gy2.shape[0]):
        src = gx2[p]
        dst = gy2[p]
        idx = argmax2[p]
        for q in range(dst.shape[0]):
            dst[q] = src[idx[q]]


# ----------------------------------------------------------------------------------------------
# Column matrices, chunk by chunk
# ----------------------------------------------------------------------------------------------

class _Columns:
    """The im2col plan of one convolution: output size, layout, chunks and the chunk buffer.
    `fill` returns a chunk's column matrix as an (m, OH*OW, K) array (a transposed view in the
    channels-first layout); `weight_matrix` orders the kernel's K axis to match."""

    def __init__(self, x_shape, dtype, kernel_hw, stride, padding):
        N, C, H, W = x_shape
        (self.kh, self.kw), (self.sh, self.sw), (self.ph, self.pw) = kernel_hw, stride, padding
        self.OH = _out_size(H, self.kh, self.sh, self.ph)
        self.OW = _out_size(W, self.kw, self.sw, self.pw)
        self.P, self.K = self.OH * self.OW, C * self.kh * self.kw
        self.Hp, self.Wp = H + 2 * self.ph, W + 2 * self.pw
        self.x_shape, self.dtype = x_shape, dtype
        self.channels_last = _use_channels_last(C, self.kw, self.OW)
        self.nb, self.chunks = _chunks(N, self.P * self.K * dtype.itemsize)
        if self.channels_last:
            self.buf = np.empty((self.nb, self.P, self.K), dtype)
        else:
            self.buf = np.empty((self.nb, self.K, self.OH, self.OW), dtype)

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
            _pad_nhwc(x, self.ph, self.pw, xp)
            return xp.reshape(N, self.Hp, self.Wp * C)
        if self.ph == 0 and self.pw == 0:
            return x
        xp = np.empty((N, C, self.Hp, self.Wp), x.dtype)
        _pad_nchw(x, self.ph, self.pw, xp)
        return xp

    def fill(self, xp, n0, m):
        """Build the column matrix of images n0..n0+m-1; returns it as (m, P, K)."""
        if self.channels_last:
            _im2col_nhwc(xp, n0, m, self.kh, self.kw, self.sh, self.sw, self.OW, self.buf)
            return self.buf[:m]
        _im2col_nchw(xp, n0, m, self.kh, self.kw, self.sh, self.sw, self.buf)
        return self.buf[:m].reshape(m, self.K, self.P).transpose(0, 2, 1)

    def scatter_gradient(self, gy3, w2, m, out):
        """Input gradient of one chunk: the column-matrix gradient gy[n].T @ w2 (a GEMM into the
        chunk buffer), then col2im sums it into `out`, the padded-input gradient of the chunk."""
        if self.channels_last:
            # gcols (m*P, K) = gy.T (m*P, O) @ w2 (O, K) as one GEMM; the transposed copy of the
            # small gy chunk makes it faster than m GEMMs reading gy[n].T in place
            gcols = self.buf[:m]
            gyt = np.ascontiguousarray(gy3.transpose(0, 2, 1)).reshape(m * self.P, gy3.shape[1])
            np.matmul(gyt, w2, out=gcols.reshape(m * self.P, self.K))
            _col2im_nhwc(gcols, self.kh, self.kw, self.sh, self.sw, self.OW, out)
        else:
            # gcols[n] (K, P) = w2.T (K, O) @ gy[n] (O, P)
            gcols = self.buf[:m]
            np.matmul(w2.T, gy3, out=gcols.reshape(m, self.K, self.P))
            _col2im_nchw(gcols, self.kh, self.kw, self.sh, self.sw, out)


# ----------------------------------------------------------------------------------------------
# Winograd's minimal filtering, for stride-1 convolutions with many channels
# ----------------------------------------------------------------------------------------------
# im2col + GEMM spends KH*KW multiply-adds per output and channel pair. Winograd's F(m, r)
# gets m outputs of an r-tap correlation from m + r - 1 products: transform a tile of the
# input (BT) and the kernel (G), multiply pointwise, transform back (AT). In 2-D, F(4x4, 5x5)
# needs 64 products for 16 outputs instead of 400; summed over channels, the pointwise products
# are one GEMM per point, so BLAS still does the arithmetic, on about 6 times fewer flops.
# The price is more rounding error (about 1e-5 relative in float32 for 5x5 kernels, measured).

_WINOGRAD_TILE = 4  # outputs per tile side: larger saves flops but loses accuracy
_WINOGRAD_MIN_CHANNELS = 16  # below this the GEMMs are too small to be worth transforming
_WINOGRAD_CHUNK_BYTES = 6 << 20  # measured best of 1-48 MB for the MNIST conv2
_POINTS = (0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, -3.0)


# NumPy's OpenBLAS picks its kernels by CPU model and falls back to AVX2 ones on CPUs it does not
# know (AMD Zen 5 as of OpenBLAS 0.3.31); OPENBLAS_CORETYPE, set before NumPy loads, overrides
# that. With AVX-512 GEMMs (about 1.5x faster here) im2col beats Winograd's transforms (measured
# on the MNIST conv2, batch 128: 33 vs 39 ms for the three passes; with AVX2 GEMMs 48 vs 44 ms).
_FAST_GEMM = os.environ.get("OPENBLAS_CORETYPE", "").lower() in ("skylakex", "cooperlake", "sapphirerapids")


def _use_winograd(C, O, kh, kw, stride):
    return (not _FAST_GEMM and tuple(stride) == (1, 1) and 2 <= kh <= 5 and 2 <= kw <= 5
            and min(C, O) >= _WINOGRAD_MIN_CHANNELS)


@functools.lru_cache(maxsize=None)
def _winograd_1d(m, r):
    """(AT, G, BT) of F(m, r): y = AT @ ((G @ g) * (BT @ d)) is y[k] = sum_j d[k + j] g[j]
    for k < m, with d of length a = m + r - 1. Toom-Cook: the product of two polynomials is
    found from their values at a - 1 points and infinity (E: evaluate, V^-1: interpolate);
    correlation is that convolution transposed with respect to the data."""
    a = m + r - 1
    points = _POINTS[:a - 1]

    def evaluation(n):  # n coefficients -> values at the points, then the leading coefficient
        rows = [[p ** k for k in range(n)] for p in points] + [[0.0] * (n - 1) + [1.0]]
        return np.array(rows)

    matrices = evaluation(m).T.copy(), evaluation(r), np.linalg.inv(evaluation(a)).T.copy()
    for mat in matrices:
        mat.setflags(write=False)
    return matrices


@functools.lru_cache(maxsize=None)
def _kernel_taps_transform(m, kh, kw, dtype):
    """kron(Gh, Gw) of F(m, kh) and F(m, kw) in `dtype`: the 2-D kernel transform as one
    (ah*aw, kh*kw) matrix acting on flattened kernels (made once: np.kron takes 50 us)."""
    (_, Gh, _), (_, Gw, _) = _winograd_1d(m, kh), _winograd_1d(m, kw)
    taps = np.kron(Gh, Gw).astype(dtype)
    taps.setflags(write=False)
    return taps


def _kernel_transform(w, m, dtype, turned=False):
    """The per-point matrices of the kernel's Winograd transform for F(m x m, KH x KW),
    U[(x, y)] of shape (in, out): U[(x, y)][c, o] = (Gh @ w[o, c] @ Gw.T)[x, y]. turned=True
    transforms instead the kernel turned by 180 degrees with its channel axes swapped (what
    the input gradient convolves with).

    One matrix product: the 2-D transform of a flattened kernel is kron(Gh, Gw) applied to it,
    and turning a kernel reverses its flattened taps. BLAS reads the flattened kernels
    transposed in place, and U is returned as a view: transposing copies of w would cost more
    than the product (measured: 0.4 ms vs 0.08 ms for the MNIST conv2)."""
    O, C, kh, kw = w.shape
    flat = w.reshape(O * C, kh * kw)
    taps = _kernel_taps_transform(m, kh, kw, np.dtype(dtype))
    transformed = ((taps[:, ::-1] if turned else taps) @ flat.T).reshape(-1, O, C)
    return transformed if turned else transformed.transpose(0, 2, 1)


def _winograd_conv(x, w, padding, m=None, turned=False):
    """conv2d_forward with stride 1 by F(m x m, KH x KW), channels-last inside; turned=True
    convolves with w turned by 180 degrees and its channel axes swapped."""
    m = m or _WINOGRAD_TILE
    N, C, H, W = x.shape
    O = w.shape[1] if turned else w.shape[0]
    kh, kw = w.shape[2:]
    ph, pw = padding
    dtype = x.dtype
    OH, OW = H + 2 * ph - kh + 1, W + 2 * pw - kw + 1
    TH, TW = -(-OH // m), -(-OW // m)
    (ATh, _, BTh), (ATw, _, BTw) = _winograd_1d(m, kh), _winograd_1d(m, kw)
    ah, aw = m + kh - 1, m + kw - 1
    U = _kernel_transform(w, m, dtype, turned)
    # channels-last input, zero-padded so that every tile is whole
    xp = np.empty((N, TH * m + kh - 1, TW * m + kw - 1, C), dtype)
    _pad_nhwc(x, ph, pw, xp)
    xp3 = xp.reshape(N, xp.shape[1], -1)
    nb, chunks = _chunks(N, ah * aw * TH * TW * (C + O) * dtype.itemsize, _WINOGRAD_CHUNK_BYTES)
    V = np.empty((ah * aw, nb * TH * TW, C), dtype)
    M = np.empty((ah * aw, nb * TH * TW, O), dtype)
    y = np.empty((N, OH, OW, O), dtype)
    BTh, BTw, ATh, ATw = (mat.astype(dtype) for mat in (BTh, BTw, ATh, ATw))
    for n0, k in chunks:
        t = k * TH * TW
        _tiles_in(xp3, n0, k, m, BTh, BTw, TH, TW, V)
        np.matmul(V[:, :t], U, out=M[:, :t])  # per point: (tiles, C) @ (C, O)
        _tiles_out(M, ATh, ATw, TH, TW, n0, k, y)
    out = np.empty((N, O, OH, OW), dtype)
    _crop_nhwc(y, 0, 0, out)
    return out


def _winograd_weight_grad(x, gy, kernel_hw, padding, m=None):
    """conv2d_backward_weight with stride 1 by F(KH x KW, m x m): each m x m tile of gy acts as a
    small kernel on its input tile and yields a KH x KW contribution; the contributions of all
    tiles are summed while still transformed (one GEMM over tiles per point), then transformed
    back once."""
    m = m or _WINOGRAD_TILE
    N, C = x.shape[:2]
    O, OH, OW = gy.shape[1:]
    kh, kw = kernel_hw
    ph, pw = padding
    dtype = x.dtype
    TH, TW = -(-OH // m), -(-OW // m)
    (ATh, Gh, BTh), (ATw, Gw, BTw) = _winograd_1d(kh, m), _winograd_1d(kw, m)
    ah, aw = kh + m - 1, kw + m - 1
    xp = np.empty((N, TH * m + kh - 1, TW * m + kw - 1, C), dtype)
    _pad_nhwc(x, ph, pw, xp)
    gyp = np.empty((N, TH * m, TW * m, O), dtype)
    _pad_nhwc(gy, 0, 0, gyp)
    xp3, gyp3 = xp.reshape(N, xp.shape[1], -1), gyp.reshape(N, gyp.shape[1], -1)
    nb, chunks = _chunks(N, ah * aw * TH * TW * (C + O) * dtype.itemsize, _WINOGRAD_CHUNK_BYTES)
    V = np.empty((ah * aw, nb * TH * TW, C), dtype)
    G = np.empty((ah * aw, nb * TH * TW, O), dtype)
    S = np.zeros((ah * aw, O, C), dtype)
    part = np.empty_like(S)
    BTh, BTw, Gh, Gw = (mat.astype(dtype) for mat in (BTh, BTw, Gh, Gw))
    for n0, k in chunks:
        t = k * TH * TW
        _tiles_in(xp3, n0, k, m, BTh, BTw, TH, TW, V)
        _tiles_in(gyp3, n0, k, m, Gh, Gw, TH, TW, G)
        np.matmul(G[:, :t].transpose(0, 2, 1), V[:, :t], out=part)  # per point: (O, tiles) @ (tiles, C)
        S += part
    # back from the transformed domain: gw[o, c] = ATh @ S[:, :, o, c] @ ATw.T, as one product
    # (S's transpose is a view that BLAS reads in place)
    gw = S.reshape(ah * aw, O * C).T @ np.kron(ATh, ATw).T.astype(dtype)       # (O*C, kh*kw)
    return gw.reshape(O, C, kh, kw)


# ----------------------------------------------------------------------------------------------
# Sparse output gradients: after ReLU and max-pooling most of gy is zero
# ----------------------------------------------------------------------------------------------
# A 2x2 max-pool passes gradient to one input in four, and the ReLU before it stops it where
# the unit was off: the gradient reaching the MNIST conv2 is about 11% non-zero in a SmoothGrad
# batch (measured). Scattering each non-zero times its kernel straight into the input gradient
# then beats the dense transposed convolution (Winograd included): 2.3-2.5 vs 3.5-3.7 ms for 25
# images on one thread (measured). Only worth it with long contiguous updates (KW*C values).

_SPARSE_MAX_DENSITY = 0.125
_SPARSE_MIN_ROW = 32


def _sparse_enough(gy, row_length):
    return row_length >= _SPARSE_MIN_ROW and np.count_nonzero(gy) <= _SPARSE_MAX_DENSITY * gy.size


def _input_gradient_from_nonzeros(gy, w, input_hw, stride, padding):
    """conv2d_backward_input by scattering the non-zeros of gy (any stride and padding)."""
    N, O = gy.shape[:2]
    C, kh, kw = w.shape[1:]
    (H, W), (sh, sw), (ph, pw) = input_hw, stride, padding
    Hp, Wp = H + 2 * ph, W + 2 * pw
    w3 = np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(O, kh, kw * C)
    gxp = np.empty((N, Hp, Wp, C), gy.dtype)
    _scatter_nonzeros(gy, w3, sh, sw, C, gxp.reshape(N, Hp, Wp * C))
    gx = np.empty((N, C, H, W), gy.dtype)
    _crop_nhwc(gxp, ph, pw, gx)
    return gx


# ----------------------------------------------------------------------------------------------
# The contract's functions
# ----------------------------------------------------------------------------------------------

def conv2d_forward(x, w, stride, padding):
    stride, padding = _pair(stride), _pair(padding)
    x = np.ascontiguousarray(x)
    dtype = _float_dtype(x)
    w = np.ascontiguousarray(w, dtype=dtype)
    N, C = x.shape[:2]
    O, _, kh, kw = w.shape
    if _use_winograd(C, O, kh, kw, stride):
        return _winograd_conv(x, w, padding)
    plan = _Columns(x.shape, dtype, (kh, kw), stride, padding)
    w2 = plan.weight_matrix(w)
    xp = plan.pad(x)
    y = np.empty((N, O, plan.P), dtype)
    if plan.channels_last:
        part = np.empty((plan.nb * plan.P, O), dtype)
    for n0, m in plan.chunks:
        cols = plan.fill(xp, n0, m)
        if plan.channels_last:
            # one GEMM for the chunk, (m*P, K) @ (K, O), then a small transposed copy into NCHW:
            # faster than m GEMMs of (O, K) @ (K, P) (measured, with either OpenBLAS kernel)
            np.matmul(cols.reshape(m * plan.P, plan.K), w2.T, out=part[:m * plan.P])
            y[n0:n0 + m] = part[:m * plan.P].reshape(m, plan.P, O).transpose(0, 2, 1)
        else:
            # y[n] (O, P) = w2 (O, K) @ cols[n].T (K, P): BLAS reads the transposed view as is
            np.matmul(w2, cols.transpose(0, 2, 1), out=y[n0:n0 + m])
    return y.reshape(N, O, plan.OH, plan.OW)


def conv2d_backward_input(gy, w, input_hw, stride, padding):
    input_hw, stride, padding = _pair(input_hw), _pair(stride), _pair(padding)
    gy = np.ascontiguousarray(gy)
    dtype = _float_dtype(gy)
    w = np.ascontiguousarray(w, dtype=dtype)
    N, O = gy.shape[0], gy.shape[1]
    C, kh, kw = w.shape[1:]
    H, W = input_hw
    ph, pw = padding
    if _sparse_enough(gy, kw * C):
        return _input_gradient_from_nonzeros(gy, w, input_hw, stride, padding)
    if _use_winograd(O, C, kh, kw, stride) and ph < kh and pw < kw:
        # with stride 1 the input gradient is the 'full' convolution of gy with the kernel
        # turned by 180 degrees and its two channel axes swapped
        return _winograd_conv(gy, w, (kh - 1 - ph, kw - 1 - pw), turned=True)
    plan = _Columns((N, C, H, W), dtype, (kh, kw), stride, padding)
    w2 = plan.weight_matrix(w)
    gy3 = gy.reshape(N, O, plan.P)
    if plan.channels_last:
        gxp = np.empty((N, plan.Hp, plan.Wp * C), dtype)
    else:
        gxp = np.empty((N, C, plan.Hp, plan.Wp), dtype)
    for n0, m in plan.chunks:
        plan.scatter_gradient(gy3[n0:n0 + m], w2, m, gxp[n0:n0 + m])
    if plan.channels_last:
        gx = np.empty((N, C, H, W), dtype)
        _crop_nhwc(gxp.reshape(N, plan.Hp, plan.Wp, C), plan.ph, plan.pw, gx)
        return gx
    return np.ascontiguousarray(gxp[:, :, plan.ph:plan.ph + H, plan.pw:plan.pw + W])


def conv2d_backward_weight(x, gy, kernel_hw, stride, padding):
    kernel_hw, stride, padding = _pair(kernel_hw), _pair(stride), _pair(padding)
    x = np.ascontiguousarray(x)
    dtype = _float_dtype(x)
    gy = np.ascontiguousarray(gy, dtype=dtype)
    N, O = gy.shape[0], gy.shape[1]
    if _use_winograd(x.shape[1], O, kernel_hw[0], kernel_hw[1], stride):
        return _winograd_weight_grad(x, gy, kernel_hw, padding)
    plan = _Columns(x.shape, dtype, kernel_hw, stride, padding)
    xp = plan.pad(x)
    gy3 = gy.reshape(N, O, plan.P)
    gw2 = np.zeros((O, plan.K), dtype)
    part = np.empty((O, plan.K), dtype) if plan.channels_last else np.empty((plan.nb, O, plan.K), dtype)
    for n0, m in plan.chunks:
        cols = plan.fill(xp, n0, m)
        if plan.channels_last:
            # one GEMM over the whole chunk: gw2 += gy (O, m*P) @ cols (m*P, K)
            gyt = np.ascontiguousarray(gy3[n0:n0 + m].transpose(1, 0, 2)).reshape(O, m * plan.P)
            np.matmul(gyt, cols.reshape(m * plan.P, plan.K), out=part)
            gw2 += part
        else:
            # per image gy[n] (O, P) @ cols[n] (P, K); K is small in this layout
            np.matmul(gy3[n0:n0 + m], cols, out=part[:m])
            gw2 += part[:m].sum(axis=0)
    return plan.weight_from_matrix(gw2)


def max_pool2d_forward(x, kernel, stride):
    x = np.ascontiguousarray(x)
    dtype = _float_dtype(x)
    (kh, kw), (sh, sw) = _pair(kernel), _pair(stride)
    N, C, H, W = x.shape
    OH, OW = _out_size(H, kh, sh, 0), _out_size(W, kw, sw, 0)
    y = np.empty((N, C, OH, OW), dtype)
    argmax = np.empty((N, C, OH, OW), np.int64)
    if (kh, kw, sh, sw) == (2, 2, 2, 2):
        _max_pool_2x2(x, y, argmax)
    else:
        _max_pool(x, kh, kw, sh, sw, y, argmax)
    return y, argmax


def max_pool2d_scatter(gy, argmax, input_hw):
    gy = np.ascontiguousarray(gy)
    dtype = _float_dtype(gy)
    argmax = np.ascontiguousarray(argmax, dtype=np.int64)
    N, C = gy.shape[0], gy.shape[1]
    H, W = _pair(input_hw)
    gx = np.empty((N, C, H, W), dtype)
    _pool_scatter(gy.reshape(N * C, -1), argmax.reshape(N * C, -1), gx.reshape(N * C, H * W))
    return gx


def max_pool2d_gather(gx, argmax):
    gx = np.ascontiguousarray(gx)
    dtype = _float_dtype(gx)
    argmax = np.ascontiguousarray(argmax, dtype=np.int64)
    N, C = gx.shape[0], gx.shape[1]
    gy = np.empty(argmax.shape, dtype)
    _pool_gather(gx.reshape(N * C, -1), argmax.reshape(N * C, -1), gy.reshape(N * C, -1))
    return gy


# ----------------------------------------------------------------------------------------------
# Compilation. cache=True keeps the machine code across runs (compile_cache.py says where); every kernel is
# called with C-contiguous arrays and int64 scalars only, so each compiles once per dtype.
# ----------------------------------------------------------------------------------------------

def _adam_update_py(param, grad, m, v, step_size, beta1, beta2, eps):
    # one pass over memory instead of NumPy's seven (each op a full read and write of 13 MB)
    for i in prange(param.size):
        g = grad[i]
        m[i] = beta1 * m[i] + (1 - beta1) * g
        v[i] = beta2 * v[i] + (1 - beta2) * g * g
        param[i] -= step_size * m[i] / (np.sqrt(v[i]) + eps)


def adam_update(param, grad, m, v, step_size, beta1, beta2, eps):
    """One Adam step, in place on param, m and v (all contiguous, one dtype); see reference.py."""
    dtype = _float_dtype(param)
    if not (param.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous):
        raise ValueError("adam_update: param, m and v must be C-contiguous (they are updated in place)")
    cast = dtype.type
    _adam_update(param.reshape(-1), np.ascontiguousarray(grad, dtype=dtype).reshape(-1), m.reshape(-1),
                 v.reshape(-1), cast(step_size), cast(beta1), cast(beta2), cast(eps))


compile_cache.enable()  # cache in the user's cache folder, not in the installed package
_jit = njit(parallel=True, cache=True, fastmath=False, nogil=True)
_pad_nchw = _jit(_pad_nchw_py)
_pad_nhwc = _jit(_pad_nhwc_py)
_crop_nhwc = _jit(_crop_nhwc_py)
_im2col_nchw = _jit(_im2col_nchw_py)
_col2im_nchw = _jit(_col2im_nchw_py)
_im2col_nhwc = _jit(_im2col_nhwc_py)
_col2im_nhwc = _jit(_col2im_nhwc_py)
_tiles_in = _jit(_tiles_in_py)
_scatter_nonzeros = _jit(_scatter_nonzeros_py)
_tiles_out = _jit(_tiles_out_py)
_max_pool = _jit(_max_pool_py)
_max_pool_2x2 = _jit(_max_pool_2x2_py)
_pool_scatter = _jit(_pool_scatter_py)
_pool_gather = _jit(_pool_gather_py)

_adam_update = _jit(_adam_update_py)
