"""cpu_ties.equalise as whole-array code, for the GPU (CuPy); NumPy runs it too, so it is tested.

The same three stages as cpu_ties (pixels, row pieces, patches: each row of a matrix of ids
gets the index of the first identical row), done with sorting instead of a hash table: rows
are hashed to 64 bits, stably sorted by (image, hash), and every row is checked element by
element against the first row of its hash group. A row that fails the check keeps its own id:
a hash collision can cost a tie (astronomically rarely), never merge different patches.
"""
import numpy as np

from ..backend import get_array_module

_MULTIPLIER_SEED = 0x5EED


def _hash_rows(rows, xp):
    """(N, R, L) int64 -> (N, R) uint64: a random odd multiplier per column, summed mod 2**64."""
    length = rows.shape[2]
    multipliers = np.random.default_rng(_MULTIPLIER_SEED).integers(1, 2 ** 63, length, dtype=np.uint64) * 2 + 1
    return (rows.astype(xp.uint64) * xp.asarray(multipliers)).sum(axis=2, dtype=xp.uint64)


def _first_equal_rows(rows, xp):
    """(N, R, L) int64 -> (N, R) int64: per image, the first row equal to each row."""
    N, R = rows.shape[:2]
    keys = _hash_rows(rows, xp).ravel()
    images = xp.repeat(xp.arange(N), R)
    order = xp.lexsort(xp.stack([keys, images]))           # by image, then hash; stable
    sorted_keys, sorted_images = keys[order], images[order]
    starts = xp.ones(N * R, dtype=bool)
    starts[1:] = (sorted_keys[1:] != sorted_keys[:-1]) | (sorted_images[1:] != sorted_images[:-1])
    group = xp.cumsum(starts) - 1
    candidate = xp.empty(N * R, dtype=xp.int64)
    candidate[order] = order[xp.nonzero(starts)[0]][group]  # the group's smallest flat index
    flat = rows.reshape(N * R, -1)
    same = (flat[candidate] == flat).all(axis=1)
    own = xp.arange(N * R)
    return (xp.where(same, candidate, own) - images * R).reshape(N, R)


def _pixel_rows(x, xp):
    """(N, H*W, C) int64: every pixel's channel bits, -0.0 written as +0.0."""
    N, C, H, W = x.shape
    unsigned = xp.uint32 if x.dtype == xp.float32 else xp.uint64
    bits = (x + x.dtype.type(0)).view(unsigned)               # -0.0 + 0.0 is +0.0
    return bits.transpose(0, 2, 3, 1).reshape(N, H * W, C).astype(xp.int64)


def _with_padding(pixel_ids, pixel_rows, H, W, padding, xp):
    """(N, H + 2ph, W + 2pw) ids; padding gets the id of an all-zero pixel, or -2 if none."""
    N = pixel_ids.shape[0]
    ph, pw = padding
    zero = ~pixel_rows.any(axis=2)                            # (N, H*W)
    first_zero = xp.where(zero.any(axis=1), zero.argmax(axis=1), -2)
    grid = xp.broadcast_to(first_zero[:, None, None], (N, H + 2 * ph, W + 2 * pw)).copy()
    grid[:, ph:ph + H, pw:pw + W] = pixel_ids.reshape(N, H, W)
    return grid


def equalise(x, y, kernel_hw, stride, padding):
    """In place on y = conv(x, w): identical patches of x get the first one's output."""
    xp = get_array_module(x)
    N, C, H, W = x.shape
    O, OH, OW = y.shape[1:]
    (kh, kw), (sh, sw) = kernel_hw, stride
    pixels = _pixel_rows(x, xp)
    grid = _with_padding(_first_equal_rows(pixels, xp), pixels, H, W, padding, xp)
    rows = (OH - 1) * sh + kh
    cols = xp.arange(OW)[:, None] * sw + xp.arange(kw)[None, :]          # (OW, KW)
    pieces = grid[:, :rows][:, :, cols].reshape(N, rows * OW, kw)        # (N, rows*OW, KW)
    piece_ids = _first_equal_rows(pieces, xp).reshape(N, rows, OW)
    taps = xp.arange(OH)[:, None] * sh + xp.arange(kh)[None, :]         # (OH, KH)
    patches = piece_ids[:, taps].transpose(0, 1, 3, 2).reshape(N, OH * OW, kh)
    first = _first_equal_rows(patches, xp)                               # (N, OH*OW)
    planes = y.reshape(N, O, OH * OW)
    planes[...] = xp.take_along_axis(planes, xp.broadcast_to(first[:, None, :], planes.shape), axis=2)
    return y
