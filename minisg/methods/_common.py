"""What every method shares: checking its arguments, eval mode, and batched gradients.

Conventions (METHODS.md §0):
- x is an (N, C, H, W) array; it is cast to the model's dtype, and maps come back as NumPy.
- the score S_c(x) is the pre-softmax logit of class c;
- target None means the argmax of the logits on the *clean* input, held fixed afterwards.

One backward pass gives the gradients of a whole batch: in eval mode the images do not
interact, so d(sum_n S_{c_n}(x_n))/dx_n = dS_{c_n}(x_n)/dx_n.
"""
import contextlib
import contextvars
import warnings

import numpy as np

from .. import backend, data, nn, parallel
from .. import functional as F
from ..autograd import Tensor, grad, no_grad
from ._checks import (check_batch_size, check_input, check_layer, check_layer_output, check_logits, check_model,
                      check_noise_fits, check_tappable, check_target, check_target_range, listed,
                      user_stacklevel, warn_outside_input_range)

_METHOD_DEPTH = contextvars.ContextVar("minisg_method_depth", default=0)


@contextlib.contextmanager
def evaluation_mode(model):
    """nn.evaluation_mode for a method's call, which also counts the methods running: one that
    runs inside another (SmoothGrad's method on noisy copies, Guided Grad-CAM's Grad-CAM) gets
    internal inputs, not the user's x, and prepare leaves their range alone."""
    check_model(model)                           # before its layers are walked
    token = _METHOD_DEPTH.set(_METHOD_DEPTH.get() + 1)
    try:
        with nn.evaluation_mode(model):
            yield model
    finally:
        _METHOD_DEPTH.reset(token)


def model_dtype(model, fallback=np.float32):
    parameters = check_model(model).parameters()
    return np.dtype(parameters[0].dtype) if parameters else np.dtype(fallback)


def model_xp(model):
    """The model's array module (NumPy for a plain function, e.g. a head given as a lambda)."""
    parameters = model.parameters() if hasattr(model, "parameters") else []
    return parameters[0].xp if parameters else np


def picked_scores(logits, target):
    """The logit of each image's target class: S[n] = logits[n, target[n]]."""
    check_logits(logits.data, len(target))
    check_target_range(target, logits.shape[1])
    return F.getitem(logits, (np.arange(len(target)), target))


def prepare(model, x, target, batch_size=None, check_classes=False):
    """(x as a checked array in the model's dtype, target as an (N,) int array), the model and
    batch_size checked too.

    The user's x (not a noisy copy or path point that a method passes to another) gets a
    warning when it leaves model.input_range. A given target's upper bound is checked later,
    against the logits (picked_scores); check_classes=True checks it now, with one image's
    forward pass (for methods whose passes do not go through picked_scores).
    """
    check_batch_size(batch_size)
    x = check_input(model, x, model_dtype(model))
    if _METHOD_DEPTH.get() <= 1:
        warn_outside_input_range(model, x)
    if target is None:                    # the clean prediction, fixed for all later samples
        return x, clean_logits(model, x, batch_size).argmax(axis=1)
    target = check_target(target, len(x))
    if check_classes:
        check_target_range(target, clean_logits(model, x[:1]).shape[1])
    return x, target


def clean_logits(model, x, batch_size=None):
    """parallel.logits, checked: (N, classes), finite."""
    return check_logits(parallel.logits(model, x, batch_size), len(x))


def input_gradients(model, x, target, batch_size=None, rule="gradient"):
    """M[n] = dS_{target[n]}/dx at x[n], batch_size images per forward/backward pass.

    `rule` is the ReLU backward rule ("gradient", "guided" or "deconv"); it is captured when
    the ReLUs run forward, so the forward pass runs inside the scope (in the worker thread:
    the rule is per thread). On the CPU each batch is cut into slices that run on all cores.
    """
    xp = model_xp(model)

    def gradients(start, stop):                   # one backward pass for the whole piece
        images = Tensor(xp.asarray(x[start:stop]), requires_grad=True)
        with F.relu_rule(rule):
            logits = model(images)
        score = picked_scores(logits, target[start:stop]).sum()
        (gradient,) = grad(score, images, allow_unused=True)
        return backend.to_numpy(gradient.data)

    return parallel.map_batches(gradients, len(x), batch_size, on_cpu=xp is np)


def cam_layer(model, x, layer):
    """The layer a CAM method reads (METHODS.md §7): `layer` when given, else the model's
    default_cam_layer, else the last layer with a 4-D output on x[0], announced by a warning.

    The warning points at the user's line (the first frame outside minisg/methods).
    """
    check_tappable(model)
    if layer is None:
        layer = getattr(model, "default_cam_layer", None)
    if layer is None:
        layer, shape = last_feature_map(model, x[:1])
        warnings.warn(f"layer: none given and {type(model).__name__} has no default_cam_layer; using "
                      f"{layer!r}, the last layer with an (N, K, H, W) output ({shape[1]}x{shape[2]}x{shape[3]}). "
                      f"Pass layer= to choose another (model.tensor_names lists them).", stacklevel=user_stacklevel())
    return check_layer(model, layer)


def last_feature_map(model, image):
    """(name, shape) of the last tap, in call order, with a 4-D output for `image` (1, C, H, W)."""
    with no_grad():
        _, taps = model.run_with_taps(Tensor(model_xp(model).asarray(image)), model.tensor_names)
    found = [(name, tap.shape) for name, tap in taps.items() if len(tap.shape) == 4]
    if not found:
        raise ValueError(f"layer: none given, and no layer of {type(model).__name__} gives an (N, K, H, W) "
                         f"output for CAM methods to use; its layers: {listed(list(model.tensor_names))}")
    return found[-1]


def layer_gradients(model, x, target, layer, batch_size=None):
    """(A, g): the activations A of the tap `layer` and g = dS_target/dA, both NumPy (N, K, h, w).

    One forward pass per batch: run_with_taps hands back the logits and A. Nothing before A
    records a graph (the model is frozen, x needs no gradient), so the backward pass runs
    from the score to A only, as if the model were split at the layer.
    """
    xp = model_xp(model)

    def activations_and_gradients(start, stop):
        logits, taps = model.run_with_taps(Tensor(xp.asarray(x[start:stop])), [layer])
        features = tap_output(taps, layer)
        score = picked_scores(logits, target[start:stop]).sum()
        (gradient,) = grad(score, features, allow_unused=True)
        return backend.to_numpy(features.data), backend.to_numpy(gradient.data)

    return parallel.map_batches(activations_and_gradients, len(x), batch_size, on_cpu=xp is np)


def tap_output(taps, layer):
    """The tap's (N, K, h, w) output, or an error: the layer did not run, or is not a feature map."""
    if layer not in taps:
        raise ValueError(f"layer: layer {layer!r} did not run in the model's forward pass")
    check_layer_output(layer, taps[layer].shape)
    return taps[layer]


def noise_stdevs(x, noise_level, stdev):
    """sigma per image (float64): `stdev` (absolute) if given, else noise_level * (max(x_n) - min(x_n)),
    checked to give noisy copies that fit x's dtype (the model's)."""
    if stdev is not None:
        return check_noise_fits("stdev", stdev, np.full(len(x), float(stdev)), x.dtype)
    with np.errstate(over="ignore"):
        sigmas = data.noise_stdevs(x, noise_level)
    return check_noise_fits("noise_level", noise_level, sigmas, x.dtype)
