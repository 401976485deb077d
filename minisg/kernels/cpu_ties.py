"""Identical input patches give bit-identical convolution outputs: exact max-pool ties.

Max-pooling sends a window's gradient to its first maximum in row-major order. On a black
MNIST background many windows hold values that are equal in exact arithmetic: every patch of
the background is the same. But Winograd's tiles, and BLAS kernels that treat the edge of a
tile differently from its middle, round those equal values differently in the last bit, and
the tie is then broken by rounding: the map changes with the BLAS kernel, the thread count
and the batch the image came in (lesson 02).

So after every forward convolution, ``equalise`` finds, image by image, the output positions
whose input patches are identical and copies the first one's output (all channels) over the
others. Three stages of the same step keep it cheap: give each row of a matrix of ids the
index of the first identical row (a hash table; every match is checked element by element,
so a hash collision can never merge different patches):

1. pixels: the rows are the channel vectors x[n, :, h, w] (their bits);
2. row pieces: the rows are the KW pixel ids under each (padded row, output column) of a
   window; zero padding counts as an all-zero pixel;
3. patches: the rows are the KH row-piece ids of each output position's window.

If no two pixels of an image are equal (a noisy image), stages 2 and 3 are skipped.
-0.0 and +0.0 are the same value here, as in arithmetic.
"""
import numpy as np
from numba import prange

from .compile_cache import jit, jit_inline

_EMPTY = -1
_MIX = np.uint64(0x9E3779B97F4A7C15)   # odd 64-bit constant: a multiplicative hash step


@jit_inline
def _same_row(rows, q, r):
    for t in range(rows.shape[1]):
        if rows[q, t] != rows[r, t]:
            return False
    return True


@jit_inline
def _first_equal_rows(rows, first):
    """first[r] = the smallest r' whose row equals row r; returns whether any row repeats."""
    count, length = rows.shape
    size = 16
    while size < 2 * count:
        size *= 2
    slots = np.full(size, _EMPTY, np.int64)
    keys = np.empty(size, np.uint64)
    repeats = False
    for r in range(count):
        if r > 0 and _same_row(rows, r - 1, r):   # most repeats sit next to each other:
            first[r], repeats = first[r - 1], True  # no hashing for them
            continue
        key = np.uint64(0)
        for t in range(length):
            key = (key ^ np.uint64(rows[r, t])) * _MIX
        slot = (key ^ (key >> np.uint64(31))) & np.uint64(size - 1)
        while True:
            q = slots[slot]
            if q == _EMPTY:
                slots[slot], keys[slot], first[r] = r, key, r
                break
            if keys[slot] == key and _same_row(rows, q, r):
                first[r], repeats = q, True
                break
            slot = (slot + np.uint64(1)) & np.uint64(size - 1)
    return repeats


@jit_inline
def _pixel_rows(bits, n, sign_bit):
    """(H*W, C) int64: pixel (h, w)'s channel bits, -0.0 written as +0.0."""
    C, H, W = bits.shape[1], bits.shape[2], bits.shape[3]
    rows = np.empty((H * W, C), np.int64)
    for c in range(C):
        plane = bits[n, c]
        for h in range(H):
            for w in range(W):
                b = np.int64(plane[h, w])
                rows[h * W + w, c] = 0 if b == sign_bit else b
    return rows


@jit_inline
def _zero_pixel(pixel_rows, pixel_ids):
    """The id of the all-zero pixel, or -2 (a fresh id for padding) if there is none."""
    for p in range(pixel_rows.shape[0]):
        if pixel_ids[p] == p and not pixel_rows[p].any():
            return p
    return -2


@jit_inline
def _row_piece_rows(pixel_ids, H, W, kw, sw, pw, ph_top, padded_rows, OW, padding_id):
    """(padded_rows*OW, KW): the pixel ids under row r - ph_top, columns j*sw - pw ... + KW."""
    rows = np.empty((padded_rows * OW, kw), np.int64)
    for r in range(padded_rows):
        h = r - ph_top
        for j in range(OW):
            for b in range(kw):
                w = j * sw - pw + b
                inside = 0 <= h < H and 0 <= w < W
                rows[r * OW + j, b] = pixel_ids[h * W + w] if inside else padding_id
    return rows


@jit_inline
def _patch_rows(piece_ids, OH, OW, kh, sh):
    """(OH*OW, KH): the row-piece ids of each output position's window."""
    rows = np.empty((OH * OW, kh), np.int64)
    for i in range(OH):
        for j in range(OW):
            for a in range(kh):
                rows[i * OW + j, a] = piece_ids[(i * sh + a) * OW + j]
    return rows


@jit
def _equalise(x_bits, y, kh, kw, sh, sw, ph, pw, sign_bit):
    N, H, W = x_bits.shape[0], x_bits.shape[2], x_bits.shape[3]
    OH, OW = y.shape[2], y.shape[3]
    padded_rows = (OH - 1) * sh + kh
    for n in prange(N):
        pixels = _pixel_rows(x_bits, n, sign_bit)
        pixel_ids = np.empty(H * W, np.int64)
        repeats = _first_equal_rows(pixels, pixel_ids)
        padding_id = _zero_pixel(pixels, pixel_ids)
        if not repeats and (padding_id < 0 or (ph == 0 and pw == 0)):
            continue                 # every patch differs from every other
        if kh == 1 and kw == 1 and sh == 1 and sw == 1 and ph == 0 and pw == 0:
            _copy_from_first(y, n, pixel_ids)   # a 1x1 patch is its pixel
            continue
        pieces = _row_piece_rows(pixel_ids, H, W, kw, sw, pw, ph, padded_rows, OW, padding_id)
        piece_ids = np.empty(padded_rows * OW, np.int64)
        _first_equal_rows(pieces, piece_ids)
        patch_ids = np.empty(OH * OW, np.int64)
        if _first_equal_rows(_patch_rows(piece_ids, OH, OW, kh, sh), patch_ids):
            _copy_from_first(y, n, patch_ids)


@jit_inline
def _copy_from_first(y, n, patch_ids):
    """y[n, o].flat[q] = y[n, o].flat[patch_ids[q]], plane by plane (memory order)."""
    planes = y[n].reshape(y.shape[1], -1)
    for o in range(planes.shape[0]):
        plane = planes[o]
        for q in range(patch_ids.shape[0]):
            plane[q] = plane[patch_ids[q]]


def equalise(x, y, kernel_hw, stride, padding):
    """In place on y = conv(x, w) (NCHW, C-contiguous): identical patches of x get the first
    one's output. kernel_hw, stride, padding are (rows, cols) pairs of ints."""
    unsigned = np.uint32 if x.dtype == np.float32 else np.uint64
    sign_bit = np.int64(-(2 ** 63)) if x.dtype == np.float64 else np.int64(2 ** 31)
    _equalise(x.view(unsigned), y, *kernel_hw, *stride, *padding, sign_bit)
    return y
