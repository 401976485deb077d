"""Winograd's minimal filtering: the CPU path for stride-1 convolutions with many channels.

im2col + GEMM spends KH*KW multiply-adds per output and channel pair. Winograd's F(m, r)
gets m outputs of an r-tap correlation from m + r - 1 products: transform a tile of the
input (BT) and the kernel (G), multiply pointwise, transform back (AT). In 2-D, F(4x4, 5x5)
needs 64 products for 16 outputs instead of 400; summed over channels, the pointwise products
are one GEMM per point, so BLAS still does the arithmetic, on about 6 times fewer flops.
The price is more rounding error (about 1e-5 relative in float32 for 5x5 kernels, measured).

The input gradient is the same convolution with the kernel turned by 180 degrees; the weight
gradient uses F(KH x KW, m x m), gy's tiles acting as small kernels (see weight_grad).
"""
import functools

import numpy as np
from numba import prange

from . import cpu_layout
from .compile_cache import jit

TILE = 4  # outputs per tile side: larger saves flops but loses accuracy
CHUNK_BYTES = 6 << 20  # measured best of 1-48 MB for the MNIST conv2
_POINTS = (0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, -3.0)


# ----------------------------------------------------------------------------------------------
# Loop kernels: the tile transforms
# ----------------------------------------------------------------------------------------------

@jit
def _tiles_in(src3, n0, nb, step, Lh, Lw, TH, TW, out):
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
        n, th = t // TH, t % TH
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


@jit
def _tiles_out(M, Ah, Aw, TH, TW, n0, nb, y):
    """Winograd output transform, the tiles back into an image: y (N, OH, OW, O) channels-last,
    y[n0+n, th*mh + u, tw*mw + v, o] = sum_{x,z} Ah[u, x] Aw[v, z] M[x*aw + z, (n*TH + th)*TW + tw, o]
    (tiles hanging over the bottom or right edge are cut)."""
    OH, OW, O = y.shape[1], y.shape[2], y.shape[3]
    mh, ah = Ah.shape
    mw, aw = Aw.shape
    for t in prange(nb * TH):
        n, th = t // TH, t % TH
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


# ----------------------------------------------------------------------------------------------
# The transform matrices
# ----------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def winograd_1d(m, r):
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
    (_, Gh, _), (_, Gw, _) = winograd_1d(m, kh), winograd_1d(m, kw)
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


# ----------------------------------------------------------------------------------------------
# Convolution and weight gradient (contiguous arrays of one float dtype; see cpu.py)
# ----------------------------------------------------------------------------------------------

def _padded_channels_last(a, ph, pw, rows, cols):
    """`a` (N, C, H, W) channels-last, with a zero border of ph rows and pw columns before it
    and as many as it takes to make (rows, cols) after it; seen as (N, rows, cols*C)."""
    N, C = a.shape[:2]
    ap = np.empty((N, rows, cols, C), a.dtype)
    cpu_layout.pad_nhwc(a, ph, pw, ap)
    return ap.reshape(N, rows, cols * C)


def _tile_buffers(N, tiles, points, C, O, dtype):
    """Chunking of the batch and the transformed tiles of one chunk: (C channels, O channels)."""
    nb, chunks = cpu_layout.chunks(N, points * tiles * (C + O) * dtype.itemsize, CHUNK_BYTES)
    return chunks, np.empty((points, nb * tiles, C), dtype), np.empty((points, nb * tiles, O), dtype)


def conv(x, w, padding, m=None, turned=False):
    """conv2d_forward with stride 1 by F(m x m, KH x KW), channels-last inside; turned=True
    convolves with w turned by 180 degrees and its channel axes swapped."""
    m = m or TILE
    N, C, H, W = x.shape
    O = w.shape[1] if turned else w.shape[0]
    kh, kw = w.shape[2:]
    ph, pw = padding
    OH, OW = H + 2 * ph - kh + 1, W + 2 * pw - kw + 1
    TH, TW = -(-OH // m), -(-OW // m)
    (ATh, _, BTh), (ATw, _, BTw) = winograd_1d(m, kh), winograd_1d(m, kw)
    BTh, BTw, ATh, ATw = (mat.astype(x.dtype) for mat in (BTh, BTw, ATh, ATw))
    U = _kernel_transform(w, m, x.dtype, turned)
    xp3 = _padded_channels_last(x, ph, pw, TH * m + kh - 1, TW * m + kw - 1)  # whole tiles
    chunks, V, M = _tile_buffers(N, TH * TW, (m + kh - 1) * (m + kw - 1), C, O, x.dtype)
    y = np.empty((N, OH, OW, O), x.dtype)
    for n0, k in chunks:
        t = k * TH * TW
        _tiles_in(xp3, n0, k, m, BTh, BTw, TH, TW, V)
        np.matmul(V[:, :t], U, out=M[:, :t])  # per point: (tiles, C) @ (C, O)
        _tiles_out(M, ATh, ATw, TH, TW, n0, k, y)
    out = np.empty((N, O, OH, OW), x.dtype)
    cpu_layout.crop_nhwc(y, 0, 0, out)
    return out


def weight_grad(x, gy, kernel_hw, padding, m=None):
    """conv2d_backward_weight with stride 1 by F(KH x KW, m x m): each m x m tile of gy acts as a
    small kernel on its input tile and yields a KH x KW contribution; the contributions of all
    tiles are summed while still transformed (one GEMM over tiles per point), then transformed
    back once."""
    m = m or TILE
    N, C = x.shape[:2]
    O, OH, OW = gy.shape[1:]
    kh, kw = kernel_hw
    ph, pw = padding
    TH, TW = -(-OH // m), -(-OW // m)
    (ATh, Gh, BTh), (ATw, Gw, BTw) = winograd_1d(kh, m), winograd_1d(kw, m)
    BTh, BTw, Gh, Gw = (mat.astype(x.dtype) for mat in (BTh, BTw, Gh, Gw))
    ah, aw = kh + m - 1, kw + m - 1
    xp3 = _padded_channels_last(x, ph, pw, TH * m + kh - 1, TW * m + kw - 1)
    gyp3 = _padded_channels_last(gy, 0, 0, TH * m, TW * m)
    chunks, V, G = _tile_buffers(N, TH * TW, ah * aw, C, O, x.dtype)
    S = np.zeros((ah * aw, O, C), x.dtype)
    part = np.empty_like(S)
    for n0, k in chunks:
        t = k * TH * TW
        _tiles_in(xp3, n0, k, m, BTh, BTw, TH, TW, V)
        _tiles_in(gyp3, n0, k, m, Gh, Gw, TH, TW, G)
        np.matmul(G[:, :t].transpose(0, 2, 1), V[:, :t], out=part)  # per point: (O, tiles) @ (tiles, C)
        S += part
    # back from the transformed domain: gw[o, c] = ATh @ S[:, :, o, c] @ ATw.T, as one product
    # (S's transpose is a view that BLAS reads in place)
    gw = S.reshape(ah * aw, O * C).T @ np.kron(ATh, ATw).T.astype(x.dtype)       # (O*C, kh*kw)
    return gw.reshape(O, C, kh, kw)
