"""What every method shares: checking its arguments, eval mode, and batched gradients.

Conventions (METHODS.md §0):
- x is an (N, C, H, W) array; it is cast to the model's dtype, and maps come back as NumPy.
- the score S_c(x) is the pre-softmax logit of class c;
- target None means the argmax of the logits on the *clean* input, held fixed afterwards.

One backward pass gives the gradients of a whole batch: in eval mode the images do not
interact, so d(sum_n S_{c_n}(x_n))/dx_n = dS_{c_n}(x_n)/dx_n.
"""
import contextlib

import numpy as np

from .. import backend, parallel
from .. import functional as F
from ..autograd import Tensor, grad, no_grad
from ._checks import check_count, check_input, check_layer, check_target, check_target_range

DEFAULT_BATCH_SIZE = 256  # images per forward pass when batch_size=None


def _all_modules(module):
    yield module
    for _, child in module.named_children():
        yield from _all_modules(child)


@contextlib.contextmanager
def evaluation_mode(model):
    """Eval mode (dropout off) with frozen parameters, restored afterwards.

    Freezing (requires_grad=False) keeps the weight gradients, which no map needs, out of
    every backward pass: the conv weight gradient would cost as much as the input gradient.
    """
    saved = [(m, m.training) for m in _all_modules(model)]
    frozen = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for parameter, _ in frozen:
        parameter.requires_grad = False
    try:
        yield
    finally:
        for module, training in saved:
            module.training = training
        for parameter, requires_grad in frozen:
            parameter.requires_grad = requires_grad


def model_dtype(model, fallback=np.float32):
    parameters = model.parameters()
    return np.dtype(parameters[0].dtype) if parameters else np.dtype(fallback)


def model_xp(model):
    parameters = model.parameters()
    return parameters[0].xp if parameters else np


def chunks(count, batch_size):
    """(start, stop) pairs that cover range(count) in pieces of batch_size."""
    size = DEFAULT_BATCH_SIZE if batch_size is None else check_count("batch_size", batch_size)
    return [(start, min(start + size, count)) for start in range(0, count, size)]


def picked_scores(logits, target):
    """The logit of each image's target class: S[n] = logits[n, target[n]]."""
    check_target_range(target, logits.shape[1])
    return F.getitem(logits, (np.arange(len(target)), target))


def logits_of(model, x, batch_size=None):
    """Logits of x (NumPy in, NumPy out), batch by batch, without recording a graph."""
    xp, parts = model_xp(model), []

    def logits_of_slice(start, stop):
        with no_grad():
            return backend.to_numpy(model(Tensor(xp.asarray(x[start:stop]))).data)

    for start, stop in chunks(len(x), batch_size):
        parts += parallel.map_slices(lambda a, b: logits_of_slice(start + a, start + b), stop - start,
                                     on_cpu=xp is np)
    return np.concatenate(parts)


def prepare(model, x, target, batch_size=None):
    """(x as a checked array in the model's dtype, target as an (N,) int array).

    A given target's upper bound is checked later, against the logits (picked_scores)."""
    x = check_input(model, x, model_dtype(model))
    if target is None:                    # the clean prediction, fixed for all later samples
        return x, logits_of(model, x, batch_size).argmax(axis=1)
    return x, check_target(target, len(x))


def input_gradients(model, x, target, batch_size=None, rule="gradient"):
    """M[n] = dS_{target[n]}/dx at x[n], batch_size images per forward/backward pass.

    `rule` is the ReLU backward rule ("gradient", "guided" or "deconv"); it is captured when
    the ReLUs run forward, so the forward pass runs inside the scope. On the CPU each batch
    is cut into slices that run on all cores at once (minisg.parallel).
    """
    xp, out = model_xp(model), np.empty_like(x)

    def gradients_of_slice(start, stop):
        images = Tensor(xp.asarray(x[start:stop]), requires_grad=True)
        with F.relu_rule(rule):
            logits = model(images)
        score = picked_scores(logits, target[start:stop]).sum()
        (gradient,) = grad(score, images, allow_unused=True)
        out[start:stop] = backend.to_numpy(gradient.data)

    for start, stop in chunks(len(x), batch_size):
        parallel.map_slices(lambda a, b: gradients_of_slice(start + a, start + b), stop - start, on_cpu=xp is np)
    return out


def layer_gradients(model, x, target, layer, batch_size=None):
    """(A, g): the activations A of `layer` and g = dS_target/dA, both NumPy (N, K, h, w).

    The model is split at the layer: A = body(x) is computed without a graph and becomes a
    leaf, so the backward pass runs through the head only.
    """
    body, head = check_layer(model, layer)
    xp, pieces = model_xp(model), []

    def layer_gradients_of_slice(start, stop):
        with no_grad():
            features = body(Tensor(xp.asarray(x[start:stop])))
        check_layer_output(layer, features.shape)
        features = Tensor(features.data, requires_grad=True)
        score = picked_scores(head(features), target[start:stop]).sum()
        (gradient,) = grad(score, features, allow_unused=True)
        return backend.to_numpy(features.data), backend.to_numpy(gradient.data)

    for start, stop in chunks(len(x), batch_size):
        pieces += parallel.map_slices(lambda a, b: layer_gradients_of_slice(start + a, start + b), stop - start,
                                      on_cpu=xp is np)
    return np.concatenate([A for A, _ in pieces]), np.concatenate([g for _, g in pieces])


def check_layer_output(layer, shape):
    if len(shape) != 4:
        raise ValueError(f"layer: CAM methods need a layer with an (N, K, H, W) output; layer {layer!r} "
                         f"gives shape {tuple(shape)}")


def noise_stdevs(x, noise_level, stdev):
    """sigma per image: `stdev` (absolute) if given, else noise_level * (max(x_n) - min(x_n))."""
    if stdev is not None:
        return np.full(len(x), float(stdev))
    flat = x.reshape(len(x), -1).astype(np.float64)
    return noise_level * (flat.max(axis=1) - flat.min(axis=1))


def noisy_copies(x, n, sigmas, rng):
    """(N*n, C, H, W): image x[i] repeated n times plus N(0, sigmas[i]^2) noise per element.

    The noise is drawn in float64 from the seeded Generator (same numbers for either model
    dtype), added in float64, then cast to x's dtype. Noisy images are not clipped.
    Rows i*n ... i*n + n - 1 belong to image i.
    """
    noise = rng.standard_normal((len(x), n) + x.shape[1:])
    noisy = x[:, None].astype(np.float64) + sigmas.reshape(-1, 1, 1, 1, 1) * noise
    return noisy.reshape((-1,) + x.shape[1:]).astype(x.dtype)
