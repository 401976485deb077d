"""SmoothGrad and its variants (METHODS.md §3): average a map over noisy copies of the input.

    x_m = x + eps_m,  eps_m ~ N(0, sigma^2) i.i.d. per element,  m = 1..n
    sigma = noise_level * (max(x) - min(x))   per image (the paper's "noise level")

    mean:     (1/n) sum_m M(x_m)                         (the paper)
    squared:  (1/n) sum_m M(x_m)^2                       (PAIR's magnitude=True)
    vargrad:  (1/n) sum_m (M(x_m) - mean)^2  = E[M^2] - E[M]^2

Any pixel method can be smoothed; the target stays the clean input's class for every sample.
The noisy copies are drawn, explained and summed a chunk at a time (minisg/methods/_running.py):
mean and squared add the maps in sample order in their dtype (the bits of NumPy's mean over all
of them at once), vargrad keeps Welford's running mean and M2 in float64 (never negative).
"""
import numpy as np

from ._checks import check_array, check_choice, check_method_arguments, check_noise, check_seed
from ._common import evaluation_mode, noise_stdevs, prepare
from ._running import RunningSum, RunningVariance, noisy_batches, runs
from .gradients import gradient_x_input, vanilla_gradient
from .guided import deconvnet, guided_backprop
from .integrated_gradients import integrated_gradients

SMOOTHABLE = {
    "vanilla": vanilla_gradient,
    "gradient_x_input": gradient_x_input,
    "integrated_gradients": integrated_gradients,
    "guided_backprop": guided_backprop,
    "deconvnet": deconvnet,
}
KINDS = ("mean", "squared", "vargrad")


def _resolve_method(method):
    if isinstance(method, type):
        raise TypeError(f"method: expected a name in {list(SMOOTHABLE)} or a function method(model, x, target), "
                        f"got the class {method.__name__}")
    if callable(method):
        return method
    return SMOOTHABLE[check_choice("method", method, SMOOTHABLE)]


def _aggregate(maps, kind):
    """Reduce (N, samples, C, H, W) maps held at once over the samples axis (here: one sample,
    the clean map of images with sigma 0; noisy samples go through _running_summary)."""
    if kind == "mean":
        return maps.mean(axis=1)
    if kind == "squared":
        return (maps * maps).mean(axis=1)
    deviation = maps - maps.mean(axis=1, keepdims=True)   # two-pass variance: never negative
    return (deviation * deviation).mean(axis=1)


def _running_summary(kind, count, maps):
    """Per-image running sums for `kind`, in the dtype of the first maps (as NumPy's mean of them)."""
    if kind == "vargrad":
        return RunningVariance(count, maps.shape[1:])
    return RunningSum(count, maps.shape[1:], maps.dtype)


def _rows_of(value, owner, count):
    """Per-image array arguments (e.g. IG's baseline of shape (N, C, H, W)) follow their image:
    a chunk whose rows belong to images `owner` gets value[owner]."""
    if isinstance(value, np.ndarray) and value.ndim == 4 and value.shape[0] == count and count > 1:
        return value[owner]
    return value


def _maps_like(maps, images):
    """The method's maps for a chunk of images, as a finite numeric array shaped like them."""
    maps = check_array("method", maps, expected=f"maps shaped like its input {images.shape}")
    if maps.size != images.size:
        raise ValueError(f"method: expected maps shaped like its input {images.shape}, got shape {maps.shape}")
    if not np.isfinite(maps).all():
        raise ValueError(f"method: expected finite maps, got NaN or inf in {int((~np.isfinite(maps)).sum())} "
                         f"of {maps.size} values")
    return maps.reshape(images.shape)


def _sample_maps(model, x, target, method, n, sigmas, rng, batch_size, method_kwargs):
    """(image, sample, maps): runs of one image's noisy maps, samples sample.. in order.

    `method` sees one chunk of at most batch_size noisy images at a time (None: 256, fewer for
    very big images; see _running.chunk_size), so only one chunk of noisy images and maps is
    alive at once."""
    for start, stop, noisy in noisy_batches(x, n, sigmas, rng, batch_size):
        owner = np.arange(start, stop) // n
        kwargs = {key: _rows_of(value, owner, len(x)) for key, value in method_kwargs.items()}
        maps = _maps_like(method(model, noisy, target[owner], **kwargs), noisy)
        for image, first, last, sample in runs(start, stop, n):
            yield image, sample, maps[first:last]


def _smoothed(samples, kind, count, n, sigmas):
    """Reduce the runs of _sample_maps to (N, C, H, W) with running sums. An image with sigma 0
    gets its first sample's map (x itself) reduced alone: M, M^2 or 0."""
    summary, first_maps = None, {}
    for image, sample, maps in samples:
        if sigmas[image] == 0:
            if sample == 0:
                first_maps[image] = maps[:1].copy()
            continue
        if summary is None:
            summary = _running_summary(kind, count, maps)
        summary.add(image, maps * maps if kind == "squared" else maps)
    result = summary.variance() if kind == "vargrad" else summary.mean(n)
    for image, first in first_maps.items():
        result[image] = _aggregate(first[None], kind)[0]
    return result


def smoothgrad(model, x, target=None, method="vanilla", n=50, noise_level=0.15, stdev=None,
               kind="mean", batch_size=None, seed=None, **method_kwargs):
    """SmoothGrad of `method` (a name in SMOOTHABLE, or a callable method(model, x, target, **kw)
    whose maps must be finite and shaped like its x: a NaN map is an error, not a NaN result).

    stdev, when given, is an absolute sigma that overrides noise_level. seed: int, None or a
    numpy Generator. The N*n noisy images go to `method` batch_size at a time (None: 256), and
    its maps are added to running sums as they come: memory grows with batch_size, not N*n
    (a callable gets batch_size= only when one is given). method_kwargs go to `method` (e.g.
    steps, baseline for IG: the noise is added to x only, the baseline stays fixed; a
    per-image (N, C, H, W) array follows its image).
    Where sigma is 0 for every image (noise 0, or constant images) no noise is drawn and the
    result is the clean map exactly: M, M^2, or 0.
    """
    method = _resolve_method(method)
    check_method_arguments(method, method_kwargs)
    n, noise_level, stdev = check_noise(n, noise_level, stdev)
    check_choice("kind", kind, KINDS)
    rng = check_seed(seed)
    with evaluation_mode(model):
        # a user's method may not check the target's range: check it here
        x, target = prepare(model, x, target, batch_size, check_classes=method not in SMOOTHABLE.values())
        if batch_size is not None:
            method_kwargs["batch_size"] = batch_size
        sigmas = noise_stdevs(x, noise_level, stdev)
        if not sigmas.any():                     # every sample would equal x: one clean map
            clean = _maps_like(method(model, x, target, **method_kwargs), x)
            return _aggregate(clean[:, None], kind).astype(x.dtype)
        samples = _sample_maps(model, x, target, method, n, sigmas, rng, batch_size, method_kwargs)
        return _smoothed(samples, kind, len(x), n, sigmas).astype(x.dtype)
