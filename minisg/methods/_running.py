"""Running sums over samples: a method holds batch_size samples at a time, never all N*n.

SmoothGrad's noisy copies, IG's path points, Smooth Grad-CAM++'s noisy copies and occlusion's
hidden patches are all "rows": `per_image` of them for each of N images, ordered image by
image (rows i*per_image ... (i+1)*per_image - 1 belong to image i). A method goes through
the rows a chunk at a time (`chunks`), splits each chunk into runs of one image (`runs`) and
adds them to per-image running sums. Memory: one chunk of rows plus the N running sums.

Two sums:
- RunningSum adds rows one after another, in sample order, in a fixed dtype. That is how
  NumPy's mean over the samples axis of all rows at once adds them, so `sum / count` has the
  same bits as that mean (tests/test_methods_memory.py checks it).
- RunningVariance keeps Welford's running mean and M2 (the sum of squared deviations from
  the mean) in float64, updated a run at a time with Chan, Golub and LeVeque's formula for
  merging two groups. Like a two-pass variance it never goes negative, and it differs from
  one only by rounding.
"""
import numpy as np

from .. import parallel
from ..data.noise import gaussian_noise_batches

CHUNK_BYTES = 512 * 2 ** 20  # batch_size=None: at most this many bytes of rows in one chunk


def chunk_size(batch_size, image_shape, itemsize=8):
    """Rows per chunk: batch_size when given; else parallel.DEFAULT_BATCH_SIZE (256) rows, or
    fewer for images so big that 256 of them (itemsize bytes per value) exceed CHUNK_BYTES."""
    if batch_size is not None:
        return batch_size
    row_bytes = itemsize * int(np.prod(image_shape))
    return max(1, min(parallel.DEFAULT_BATCH_SIZE, CHUNK_BYTES // max(row_bytes, 1)))


def chunks(count, per_image, size):
    """(start, stop) pairs that cover the count*per_image rows in order, `size` rows each."""
    return parallel.batch_bounds(count * per_image, size)


def runs(start, stop, per_image):
    """(image, first, last, sample) for each image with rows in start..stop-1: they are the
    chunk's rows first..last-1 (offsets from start) and begin at that image's sample `sample`."""
    row = start
    while row < stop:
        image, sample = divmod(row, per_image)
        end = min(stop, (image + 1) * per_image)
        yield image, row - start, end - start, sample
        row = end


def noisy_batches(x, n, sigmas, rng, batch_size):
    """(start, stop, noisy): rows start..stop-1 of x's N*n noisy copies, a chunk at a time.

    Row i*n + m is x[i] + N(0, sigmas[i]^2) noise, m = 0..n-1. The noise is drawn and added in
    float64 (the same numbers for either model dtype), then cast to x's dtype; it is not
    clipped. The draws are the same whatever batch_size is: one stream, consumed in order.
    """
    size = chunk_size(batch_size, x.shape[1:])
    return gaussian_noise_batches(x, sigmas, rng, copies=n, batch_size=size, dtype=np.float64)


class RunningSum:
    """Per-image sums of rows, added one row at a time in the order given, in `dtype`."""

    def __init__(self, count, shape, dtype):
        self.total = np.zeros((count,) + tuple(shape), dtype=dtype)

    def add(self, image, rows):
        for row in rows:                       # in order: the bits of NumPy's mean over samples
            self.total[image] += row

    def mean(self, samples):
        return self.total / samples


class RunningVariance:
    """Per-image mean and variance of rows (float64), a run of rows at a time."""

    def __init__(self, count, shape):
        self.seen = np.zeros(count, dtype=np.int64)
        self.mean = np.zeros((count,) + tuple(shape))
        self.m2 = np.zeros((count,) + tuple(shape))

    def add(self, image, rows):
        """Merge a run's own mean and M2 into image's (Chan et al.): exact up to rounding."""
        rows = np.asarray(rows, dtype=np.float64)
        before, added = self.seen[image], len(rows)
        after = before + added
        run_mean = rows.mean(axis=0)
        deviation = rows - run_mean
        delta = run_mean - self.mean[image]
        self.mean[image] += delta * (added / after)
        self.m2[image] += (deviation * deviation).sum(axis=0) + delta * delta * (before * added / after)
        self.seen[image] = after

    def variance(self):
        """(1/count) sum (row - mean)^2 per image: the population variance, as SmoothGrad's vargrad
        (0 for an image that got no rows)."""
        return self.m2 / np.maximum(self.seen, 1).reshape((-1,) + (1,) * (self.m2.ndim - 1))
