"""SmoothGrad's Gaussian noise: sigma = noise_level * (max - min) of each image, not clipped.

The same noise serves two purposes: training with noise (``add_noise``, one fresh draw per
batch) and SmoothGrad at inference (``minisg.methods``, n noisy copies of each image, drawn a
batch at a time by ``gaussian_noise_batches`` so that N*n copies are never held at once). Both
draw from a seeded ``numpy.random.Generator`` and say in which dtype they draw: the same seed
gives different numbers in float32 and float64, so the dtype is part of a seeded result.
"""
import numpy as np

from ..checks import MAX_SAMPLES, check_array, check_float_dtype, check_generator, check_int, check_number


def noise_stdevs(images, noise_level, dtype=np.float64):
    """sigma per image (N,): noise_level * (max - min) over all of its pixels, in `dtype`.

    A constant image gets sigma 0 (no noise).
    """
    dtype, images = check_float_dtype("dtype", dtype), _checked_images(images)
    noise_level = check_number("noise_level", noise_level)
    flat = images.reshape(len(images), -1).astype(dtype)
    with np.errstate(over="ignore"):
        sigmas = dtype.type(noise_level) * (flat.max(axis=1) - flat.min(axis=1))
    return _checked_sigmas(sigmas, len(images), "noise_level", noise_level)


def _checked_images(images):
    """images as a numeric (N, ...) array of at least one finite image."""
    images = check_array("images", images, expected="a numeric (N, ...) array, axis 0 indexing images")
    if images.ndim == 0 or len(images) == 0:
        raise ValueError(f"images: expected at least one image (a numeric (N, ...) array), got shape {images.shape}")
    if images.dtype.kind == "f" and not np.isfinite(images).all():
        raise ValueError(f"images: expected finite values, got NaN or inf in {int((~np.isfinite(images)).sum())} "
                         f"of {images.size} elements")
    return images


def _checked_sigmas(sigmas, count, name="sigmas", value=None):
    """One finite sigma >= 0 per image, as an (N,) float array (`name`, `value`: what gave them)."""
    sigmas = check_array(name, sigmas, expected=f"{count} noise stdevs, one per image")
    if sigmas.shape != (count,):
        raise ValueError(f"{name}: expected {count} noise stdevs, one per image, got shape {sigmas.shape}")
    if not (np.isfinite(sigmas) & (sigmas >= 0)).all():
        shown = sigmas if value is None else value
        raise ValueError(f"{name}: expected finite noise stdevs >= 0, got {shown!r:.120}"
                         + ("" if value is None else f", which gives sigmas {sigmas!r:.80}"))
    return sigmas


def _check_noise_arguments(images, sigmas, rng, copies, dtype):
    """(images, sigmas, copies, dtype) of gaussian_noise, checked before any draw."""
    images = _checked_images(images)
    return (images, _checked_sigmas(sigmas, len(images)), check_generator("rng", rng),
            check_int("copies", copies, high=MAX_SAMPLES), check_float_dtype("dtype", dtype))


def gaussian_noise(images, sigmas, rng, copies=1, dtype=np.float64):
    """(N*copies, ...): each image plus N(0, sigmas[i]^2) noise per element, in images' dtype.

    The noise is drawn from `rng` in `dtype` and added in `dtype`, then cast back. Rows
    i*copies ... i*copies + copies - 1 belong to image i.
    """
    images, sigmas, rng, copies, dtype = _check_noise_arguments(images, sigmas, rng, copies, dtype)
    return _noisy_rows(images, sigmas, rng, copies, 0, len(images) * copies, dtype)


def gaussian_noise_batches(images, sigmas, rng, copies=1, batch_size=256, dtype=np.float64):
    """gaussian_noise(images, sigmas, rng, copies, dtype) batch_size rows at a time.

    Yields (start, stop, rows) in order, rows being gaussian_noise(...)[start:stop]: a
    Generator draws normals as one stream, so rows drawn piece by piece in order are the
    numbers one big draw gives, whatever batch_size is. Only one batch is held at a time.
    """
    images, sigmas, rng, copies, dtype = _check_noise_arguments(images, sigmas, rng, copies, dtype)
    return _noise_batches(images, sigmas, rng, copies, check_int("batch_size", batch_size), dtype)


def _noise_batches(images, sigmas, rng, copies, batch_size, dtype):
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
    noise_level, images = check_number("noise_level", noise_level), _checked_images(images)
    check_generator("rng", rng)
    dtype = images.dtype if np.issubdtype(images.dtype, np.floating) else np.dtype(np.float32)
    images = images.astype(dtype, copy=True)
    if noise_level == 0 or images.size == 0:
        return images
    draw = np.float64 if dtype == np.float64 else np.float32   # the Generator draws no float16
    return gaussian_noise(images, noise_stdevs(images, noise_level, draw), rng, dtype=draw)
