"""Argument checks with errors that name the argument, what was expected and what came."""
import numbers

import numpy as np

from .. import backend, nn
from ..autograd import Tensor


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name}: expected one of {list(choices)}, got {value!r}")
    return value


def check_count(name, value, minimum=1):
    """An int >= minimum (n, steps, patch, batch_size ...)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    return int(value)


def check_nonnegative(name, value):
    """A finite real number >= 0 (noise_level, stdev)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number >= 0, got {value!r}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value}")
    return float(value)


def check_noise(n, noise_level, stdev):
    """(n, noise_level, stdev) of a smoothed method, checked: n samples >= 1, a noise level
    >= 0, and stdev None (use the noise level) or an absolute sigma >= 0."""
    n, noise_level = check_count("n", n), check_nonnegative("noise_level", noise_level)
    return n, noise_level, None if stdev is None else check_nonnegative("stdev", stdev)


_SHAPE_KEEPING = (nn.ReLU, nn.Tanh, nn.Softplus, nn.Dropout, nn.Flatten)


def _first_weighted_layer(model):
    """The first Conv2d, or a Linear reached through shape-keeping layers only (else None)."""
    layers = list(model.layers.values()) if isinstance(model, nn.Sequential) else [model]
    for layer in layers:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            return layer
        if isinstance(layer, nn.Sequential):
            return _first_weighted_layer(layer)
        if not isinstance(layer, _SHAPE_KEEPING):
            return None
    return None


def check_input(model, x, dtype):
    """x as a C-contiguous NumPy (N, C, H, W) array of `dtype`, finite, fitting the model."""
    if isinstance(x, Tensor):
        x = x.data
    x = np.asarray(backend.to_numpy(x) if hasattr(x, "dtype") else x)
    if x.dtype.kind not in "fiu":
        raise TypeError(f"x: expected a numeric (N, C, H, W) array, got dtype {x.dtype}")
    if x.ndim != 4:
        raise ValueError(f"x: expected a 4-D (N, C, H, W) array, got shape {x.shape}"
                         + (" (add a batch axis: x[None])" if x.ndim == 3 else ""))
    if x.shape[0] == 0:
        raise ValueError(f"x: expected at least one image, got shape {x.shape}")
    bad = ~np.isfinite(x)
    if bad.any():
        raise ValueError(f"x: expected finite values, got NaN or inf in {int(bad.sum())} of {x.size} elements")
    first = _first_weighted_layer(model)
    if isinstance(first, nn.Conv2d) and x.shape[1] != first.weight.shape[1]:
        raise ValueError(f"x: the model's first conv layer expects {first.weight.shape[1]} channel(s), "
                         f"got x with {x.shape[1]} (shape {x.shape})")
    if isinstance(first, nn.Linear) and np.prod(x.shape[1:]) != first.weight.shape[1]:
        raise ValueError(f"x: the model's first linear layer expects C*H*W = {first.weight.shape[1]} "
                         f"values per image, got x of shape {x.shape}")
    return np.ascontiguousarray(x, dtype=dtype)


def check_target(target, count, num_classes=None, name="target"):
    """target as an (N,) int array in [0, num_classes); an int applies to every image.
    With num_classes None the range is left to check_target_range, called once the logits are
    there (no extra forward pass just to count the classes): every method reaches it through
    picked_scores, occlusion and SmoothGrad of a user's method call it themselves."""
    array = np.asarray(backend.to_numpy(target.data) if isinstance(target, Tensor) else target)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected an int or an array of {count} ints, got {target!r}")
    if array.ndim == 0:
        array = np.full(count, int(array))
    if array.shape != (count,):
        raise ValueError(f"{name}: expected an int or shape ({count},) for {count} images, got shape {array.shape}")
    if num_classes is not None:
        check_target_range(array, num_classes)
    return array.astype(np.int64)


def check_target_range(target, num_classes):
    """target's class indices in [0, num_classes), num_classes being the logits' second axis."""
    outside = (target < 0) | (target >= num_classes)
    if outside.any():
        raise ValueError(f"target: expected class indices in [0, {num_classes}), got {target[outside][0]}")
    return target


def check_tappable(model):
    """CAM methods read a layer through the model's taps (minisg's Module, or a graph model)."""
    if not hasattr(model, "run_with_taps") or not hasattr(model, "tensor_names"):
        raise TypeError(f"layer: CAM methods need a minisg Module (a model with run_with_taps and "
                        f"tensor_names), got {type(model).__name__}")
    return model


def check_layer(model, layer):
    """`layer` if it names one of the model's taps (a dotted submodule name such as "relu2" or
    "block.relu", or a graph model's tensor name), else an error listing the valid names."""
    names = list(check_tappable(model).tensor_names)
    if layer not in names:
        raise ValueError(f"layer: unknown layer {layer!r}; valid layer names: {listed(names)}")
    return layer


def listed(names, most=20):
    """names as a list, or, for a big graph, its first and last three and how many there are."""
    if len(names) <= most:
        return str(names)
    ends = ", ".join(map(repr, names[:3])) + ", ..., " + ", ".join(map(repr, names[-3:]))
    return f"[{ends}] ({len(names)} in all: model.tensor_names)"


def check_layer_output(layer, shape):
    """A CAM layer's activations must be feature maps, (N, K, H, W)."""
    if len(shape) != 4:
        raise ValueError(f"layer: CAM methods need a layer with an (N, K, H, W) output; layer {layer!r} "
                         f"gives shape {tuple(shape)}")
