"""SmoothGrad's Gaussian noise: sigma = noise_level * (max - min) of each image, not clipped.

The same noise serves two purposes: training with noise (``add_noise``, one fresh draw per
batch) and SmoothGrad at inference (``minisg.methods``, n noisy copies of each image, drawn a
batch at a time by ``gaussian_noise_batches`` so that N*n copies are never held at once). Both
draw from a seeded ``numpy.random.Generator`` and say in which dtype they draw: the same seed
gives different numbers in float32 and float64, so the dtype is part of a seeded result.
"""
import numbers

import numpy as np


def noise_stdevs(images, noise_level, dtype=np.float64):
    """sigma per image (N,): noise_level * (max - min) over all of its pixels, in `dtype`.

    A constant image gets sigma 0 (no noise).
    """
    dtype = np.dtype(dtype)
    flat = np.asarray(images).reshape(len(images), -1).astype(dtype)
    return dtype.type(noise_level) * (flat.max(axis=1) - flat.min(axis=1))


def gaussian_noise(images, sigmas, rng, copies=1, dtype=np.float64):
    """(N*copies, ...): each image plus N(0, sigmas[i]^2) noise per element, in images' dtype.

    The noise is drawn from `rng` in `dtype` and added in `dtype`, then cast back. Rows
    i*copies ... i*copies + copies - 1 belong to image i.
    """
    images = np.asarray(images)
    return _noisy_rows(images, sigmas, rng, copies, 0, len(images) * copies, dtype)


def gaussian_noise_batches(images, sigmas, rng, copies=1, batch_size=256, dtype=np.float64):
    """gaussian_noise(images, sigmas, rng, copies, dtype) batch_size rows at a time.

    Yields (start, stop, rows) in order, rows being gaussian_noise(...)[start:stop]: a
    Generator draws normals as one stream, so rows drawn piece by piece in order are the
    numbers one big draw gives, whatever batch_size is. Only one batch is held at a time.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size: expected an int >= 1, got {batch_size!r}")
    images = np.asarray(images)
    total = len(images) * copies
    for start in range(0, total, batch_size):
        stop = min(start + batch_size, total)
        yield start, stop, _noisy_rows(images, sigmas, rng, copies, start, stop, dtype)


def _noisy_rows(images, sigmas, rng, copies, start, stop, dtype):
    """Rows start..stop-1 of the noisy copies: row r is image r // copies plus fresh noise."""
    owner = np.arange(start, stop) // copies
    noise = rng.standard_normal((stop - start,) + images.shape[1:], dtype=dtype)
    scale = np.asarray(sigmas, dtype=dtype)[owner].reshape((-1,) + (1,) * (images.ndim - 1))
    noisy = images[owner].astype(dtype, copy=False) + scale * noise
    return noisy.astype(images.dtype, copy=False)


def add_noise(images, noise_level, rng):
    """Add SmoothGrad's Gaussian noise: stdev = noise_level * (max - min) of each image.

    images: array (N, ...) — axis 0 indexes images; each image's range is taken over all
    its pixels, so a constant image gets no noise. A fresh draw from `rng` on every call;
    the result is not clipped, and has the input's float dtype (float32 for integer input).
    The noise is drawn and added in that dtype (training noise on float32 images stays
    float32). noise_level 0 returns an unchanged copy without drawing from `rng`.
    """
    if not np.isfinite(noise_level) or noise_level < 0:
        raise ValueError(f"noise_level must be a finite number >= 0, got {noise_level!r}")
    images = np.asarray(images)
    dtype = images.dtype if np.issubdtype(images.dtype, np.floating) else np.dtype(np.float32)
    images = images.astype(dtype, copy=True)
    if noise_level == 0 or images.size == 0:
        return images
    draw = np.float64 if dtype == np.float64 else np.float32   # the Generator draws no float16
    return gaussian_noise(images, noise_stdevs(images, noise_level, dtype), rng, dtype=draw)
