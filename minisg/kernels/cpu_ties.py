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

1. pixels: the rows are the channel vectors x[n, :, h, w] (their bits), hashed channel by
   channel as a sum of bits times a random odd multiplier per channel (a loop along memory);
2. row pieces: the rows are the KW pixel ids under each (padded row, output column) of a
   window; zero padding counts as an all-zero pixel;
3. patches: the rows are the KH row-piece ids of each output position's window.

If no two pixels of an image are equal (a noisy image), stages 2 and 3 are skipped.
-0.0 and +0.0 are the same value here, as in arithmetic.
"""
import numpy as np
from numba import prange

from . import cpu_layout
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
def _row_keys(rows):
    """A 64-bit hash of every row of an int64 matrix."""
    keys = np.empty(rows.shape[0], np.uint64)
    for r in range(rows.shape[0]):
        key = np.uint64(0)
        for t in range(rows.shape[1]):
            key = (key ^ np.uint64(rows[r, t])) * _MIX
        keys[r] = key
    return keys


@jit_inline
def _pixel_keys(planes, multipliers):
    """keys[p] = sum_c planes[c, p] * multipliers[c] (mod 2**64): channel by channel, so the
    loop runs along memory and vectorises (a pixel's channels are H*W values apart)."""
    keys = np.zeros(planes.shape[1], np.uint64)
    for c in range(planes.shape[0]):
        plane, multiplier = planes[c], multipliers[c]
        for p in range(plane.shape[0]):
            keys[p] += np.uint64(plane[p]) * multiplier
    return keys


@jit_inline
def _first_equal_rows(rows, keys, first):
    """first[r] = the smallest r' whose row equals row r (keys[r]: the rows' hashes); returns
    whether any row repeats."""
    count = rows.shape[0]
    size = 16
    while size < 2 * count:
        size *= 2
    slots = np.full(size, _EMPTY, np.int64)
    repeats = False
    for r in range(count):
        key = keys[r]
        if r > 0 and keys[r - 1] == key and _same_row(rows, first[r - 1], r):
            first[r], repeats = first[r - 1], True   # runs of equal rows: no table lookup
            continue
        slot = (key ^ (key >> np.uint64(31))) & np.uint64(size - 1)
        while True:
            q = slots[slot]
            if q == _EMPTY:
                slots[slot], first[r] = r, r
                break
            if keys[q] == key and _same_row(rows, q, r):
                first[r], repeats = q, True
                break
            slot = (slot + np.uint64(1)) & np.uint64(size - 1)
    return repeats


@jit_inline
def _zero_pixel(pixels, keys, ids):
    """The id of the all-zero pixel (its key is 0), or -2: a fresh id for zero padding."""
    for p in range(pixels.shape[0]):
        if keys[p] == 0 and ids[p] == p and not pixels[p].any():
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
def _equalise(x_bits, y, kh, kw, sh, sw, ph, pw, multipliers):
    N, H, W = x_bits.shape[0], x_bits.shape[2], x_bits.shape[3]
    OH, OW = y.shape[2], y.shape[3]
    padded_rows = (OH - 1) * sh + kh
    for n in prange(N):
        planes = x_bits[n].reshape(x_bits.shape[1], -1)
        pixels, keys = planes.T, _pixel_keys(planes, multipliers)   # rows: pixels (a strided view)
        pixel_ids = np.empty(H * W, np.int64)
        repeats = _first_equal_rows(pixels, keys, pixel_ids)
        padding_id = _zero_pixel(pixels, keys, pixel_ids)
        if not repeats and (padding_id < 0 or (ph == 0 and pw == 0)):
            continue                 # every patch differs from every other
        if kh == 1 and kw == 1 and sh == 1 and sw == 1 and ph == 0 and pw == 0:
            _copy_from_first(y, n, pixel_ids)   # a 1x1 patch is its pixel
            continue
        pieces = _row_piece_rows(pixel_ids, H, W, kw, sw, pw, ph, padded_rows, OW, padding_id)
        piece_ids = np.empty(padded_rows * OW, np.int64)
        _first_equal_rows(pieces, _row_keys(pieces), piece_ids)
        patches = _patch_rows(piece_ids, OH, OW, kh, sh)
        patch_ids = np.empty(OH * OW, np.int64)
        if _first_equal_rows(patches, _row_keys(patches), patch_ids):
            _copy_from_first(y, n, patch_ids)


@jit_inline
def _copy_from_first(y, n, patch_ids):
    """y[n, o].flat[q] = y[n, o].flat[patch_ids[q]], plane by plane (memory order)."""
    planes = y[n].reshape(y.shape[1], -1)
    for o in range(planes.shape[0]):
        plane = planes[o]
        for q in range(patch_ids.shape[0]):
            plane[q] = plane[patch_ids[q]]


_MULTIPLIERS = np.random.default_rng(0x5EED).integers(1, 2 ** 63, 1 << 16, dtype=np.uint64) * 2 + 1


def equalise(x, y, kernel_hw, stride, padding):
    """In place on y = conv(x, w) (NCHW, C-contiguous): identical patches of x get the first
    one's output. kernel_hw, stride, padding are (rows, cols) pairs of ints."""
    unsigned = np.uint32 if x.dtype == np.float32 else np.uint64
    bits = (x + x.dtype.type(0)).view(unsigned)       # -0.0 + 0.0 is +0.0: equal values, equal bits
    multipliers = np.resize(_MULTIPLIERS, x.shape[1])  # repeats past 65,536 channels: a weaker hash, still checked
    cpu_layout.map_images(lambda start, stop: _equalise(bits[start:stop], y[start:stop], *kernel_hw,
                                                        *stride, *padding, multipliers),
                          len(x), x[0].size * cpu_layout.NS_PER_ELEMENT)   # hashing x's values
    return y
