"""SmoothGrad and its variants (METHODS.md §3): average a map over noisy copies of the input.

    x_m = x + eps_m,  eps_m ~ N(0, sigma^2) i.i.d. per element,  m = 1..n
    sigma = noise_level * (max(x) - min(x))   per image (the paper's "noise level")

    mean:     (1/n) sum_m M(x_m)                         (the paper)
    squared:  (1/n) sum_m M(x_m)^2                       (PAIR's magnitude=True)
    vargrad:  (1/n) sum_m (M(x_m) - mean)^2  = E[M^2] - E[M]^2

Any pixel method can be smoothed; the target stays the clean input's class for every sample.
"""
import numpy as np

from .. import parallel
from ._checks import check_choice, check_noise, check_target_range
from ._common import evaluation_mode, noise_stdevs, noisy_copies, prepare
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
    if callable(method):
        return method
    return SMOOTHABLE[check_choice("method", method, SMOOTHABLE)]


def _aggregate(maps, kind):
    """Reduce (N, n, C, H, W) maps over the samples axis."""
    if kind == "mean":
        return maps.mean(axis=1)
    if kind == "squared":
        return (maps * maps).mean(axis=1)
    deviation = maps - maps.mean(axis=1, keepdims=True)   # two-pass variance: never negative
    return (deviation * deviation).mean(axis=1)


def _repeat_per_image(value, count, n):
    """Per-image array arguments (e.g. IG's baseline of shape (N, C, H, W)) follow their image."""
    if isinstance(value, np.ndarray) and value.ndim == 4 and value.shape[0] == count and count > 1:
        return np.repeat(value, n, axis=0)
    return value


def smoothgrad(model, x, target=None, method="vanilla", n=50, noise_level=0.15, stdev=None,
               kind="mean", batch_size=None, seed=None, **method_kwargs):
    """SmoothGrad of `method` (a name in SMOOTHABLE, or a callable method(model, x, target, **kw)).

    stdev, when given, is an absolute sigma that overrides noise_level. seed: int, None or a
    numpy Generator. All N*n noisy images go to `method` in one call, which sends them
    through the model batch_size at a time (a callable gets batch_size= only when one is
    given). method_kwargs go to `method` (e.g. steps, baseline for IG: the noise is added to
    x only, the baseline stays fixed).
    Where sigma is 0 for every image (noise 0, or constant images) no noise is drawn and the
    result is the clean map exactly: M, M^2, or 0.
    """
    method = _resolve_method(method)
    n, noise_level, stdev = check_noise(n, noise_level, stdev)
    check_choice("kind", kind, KINDS)
    rng = np.random.default_rng(seed)
    with evaluation_mode(model):
        x, target = prepare(model, x, target, batch_size)
        if method not in SMOOTHABLE.values():    # a user's method may not check the target's range
            check_target_range(target, parallel.logits(model, x[:1]).shape[1])
        if batch_size is not None:
            method_kwargs["batch_size"] = batch_size
        sigmas = noise_stdevs(x, noise_level, stdev)
        if not sigmas.any():                     # every sample would equal x: one clean map
            clean = np.asarray(method(model, x, target, **method_kwargs))
            return _aggregate(clean[:, None], kind).astype(x.dtype)
        noisy = noisy_copies(x, n, sigmas, rng)
        kwargs = {key: _repeat_per_image(value, len(x), n) for key, value in method_kwargs.items()}
        maps = np.asarray(method(model, noisy, np.repeat(target, n), **kwargs))
        maps = maps.reshape((len(x), n) + x.shape[1:])
        result = _aggregate(maps, kind)
        constant = sigmas == 0                   # constant images in a mixed batch: their clean map
        result[constant] = _aggregate(maps[constant, :1], kind)
        return result.astype(x.dtype)
