"""Argument checks with errors that name the argument, what was expected and what came.

Every public method checks all of its arguments before any work, with one error per bad
argument: f"{name}: expected ..., got {value!r}". The model's own facts are used where it
records them: `model.input_shape` ((C, H, W), None for a size not fixed) and
`model.input_range` ((low, high): values outside give a warning, not an error).
"""
import inspect
import os
import sys
import warnings

import numpy as np

from .. import backend, nn
from ..checks import (MAX_SAMPLES, as_array, check_array, check_choice, check_flags, check_int, check_number,  # noqa: F401
                      is_finite_number, is_int, is_number)

INT64_MAX = np.iinfo(np.int64).max
RANGE_TOLERANCE = 1e-5   # of the input range's width: a rounded 1.0000001 is inside [0, 1]
NOISE_REACH = 10         # noise draws beyond 10 sigma have odds of about 1e-23
_METHODS_FOLDER = os.path.dirname(os.path.abspath(__file__)) + os.sep


# ---- plain values ------------------------------------------------------------------------

def check_batch_size(batch_size):
    """None (the default size) or an int >= 1."""
    return None if batch_size is None else check_int("batch_size", batch_size)


def check_seed(seed):
    """A numpy Generator from `seed`: None (fresh entropy), an int >= 0, or a Generator (used as is)."""
    if seed is None or isinstance(seed, np.random.Generator) or (is_int(seed) and seed >= 0):
        return np.random.default_rng(seed)
    raise TypeError(f"seed: expected None, an int >= 0 or a numpy.random.Generator, got {seed!r}")


def check_noise(n, noise_level, stdev):
    """(n, noise_level, stdev) of a smoothed method, checked: n samples >= 1, a noise level
    >= 0, and stdev None (use the noise level) or an absolute sigma >= 0."""
    n, noise_level = check_int("n", n, high=MAX_SAMPLES), check_number("noise_level", noise_level)
    return n, noise_level, None if stdev is None else check_number("stdev", stdev)


def check_noise_fits(name, value, sigmas, dtype):
    """Noisy copies x + sigma z must stay finite in the model's dtype with room for its sums:
    NOISE_REACH sigma at most sqrt(largest float) (1.8e19 in float32)."""
    limit = float(np.sqrt(np.finfo(dtype).max))
    too_big = ~(NOISE_REACH * np.asarray(sigmas, dtype=np.float64) <= limit)      # inf and NaN too
    if too_big.any():
        image = int(np.argmax(too_big))
        raise ValueError(f"{name}: expected noise that fits the model's dtype {np.dtype(dtype)} "
                         f"({NOISE_REACH} sigma at most {limit:.3g}), got {name}={value!r}, which gives "
                         f"sigma {sigmas[image]:.3g} for image {image}")
    return sigmas


# ---- arrays ------------------------------------------------------------------------------

def check_broadcastable(name, value, shape, kinds="fiu"):
    """An array (numbers, or bools with kinds="b") that broadcasts to `shape`."""
    array = check_array(name, value, kinds=kinds, expected=f"an array broadcastable to {shape}")
    try:
        fits = np.broadcast_shapes(array.shape, tuple(shape)) == tuple(shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{name}: expected an array broadcastable to {shape}, got shape {array.shape}")
    return array


def check_fits_dtype(name, values, dtype):
    """`values` cast to `dtype`, C-contiguous, or an error where a value is NaN or inf, before the
    cast or after it (1e300 is a float64 but inf as a float32)."""
    with np.errstate(over="ignore", invalid="ignore"):
        cast = np.ascontiguousarray(values, dtype=dtype)
    bad = ~np.isfinite(cast)
    if not bad.any():
        return cast
    given = np.asarray(values)
    if given.dtype.kind == "f" and not np.isfinite(given).all():
        count = int((~np.isfinite(given)).sum())
        raise ValueError(f"{name}: expected finite values, got NaN or inf in {count} of {given.size} elements")
    first = np.flatnonzero(bad)[0]                                  # finite before the cast, not after
    raise ValueError(f"{name}: expected values that fit the model's dtype {np.dtype(dtype)} (magnitude at most "
                     f"{np.finfo(dtype).max:.3g}), got {int(bad.sum())} of {given.size} beyond it, e.g. "
                     f"{float(given.reshape(-1)[first]):.3g}, which becomes {float(cast.reshape(-1)[first])}")


# ---- the model and its input -------------------------------------------------------------

def check_model(model):
    """A model the methods can run: callable on a Tensor, with parameters() (a minisg Module or a
    graph model)."""
    if isinstance(model, type) or not callable(model) or not callable(getattr(model, "parameters", None)):
        hint = f" (load one: minisg.models.load({model!r}))" if isinstance(model, str) else ""
        hint = " (a class: build one, e.g. model = MyNet())" if isinstance(model, type) else hint
        raise TypeError(f"model: expected a minisg model (an nn.Module or a graph model, callable with "
                        f"parameters()), got {type(model).__name__} {model!r:.80}{hint}")
    return model


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


def check_input_shape(model, shape, name="x"):
    """The (N, C, H, W) shape of the argument `name` against model.input_shape, where None is any
    size; for a model that records none, against its first conv (channels) or linear layer (C*H*W)."""
    expected = getattr(model, "input_shape", None)
    if expected is not None:
        expected = tuple(expected)
        if len(shape) != len(expected) + 1 or any(e is not None and e != s for e, s in zip(expected, shape[1:])):
            wanted = ", ".join("any" if e is None else str(e) for e in expected)
            raise ValueError(f"{name}: expected shape (N, {wanted}) for this model (its input_shape), got {shape}")
        return
    first = _first_weighted_layer(model)
    if isinstance(first, nn.Conv2d) and shape[1] != first.weight.shape[1]:
        raise ValueError(f"{name}: the model's first conv layer expects {first.weight.shape[1]} channel(s), "
                         f"got {name} with {shape[1]} (shape {shape})")
    if isinstance(first, nn.Linear) and np.prod(shape[1:]) != first.weight.shape[1]:
        raise ValueError(f"{name}: the model's first linear layer expects C*H*W = {first.weight.shape[1]} "
                         f"values per image, got {name} of shape {shape}")


def check_input(model, x, dtype):
    """x as a C-contiguous NumPy (N, C, H, W) array of `dtype`: numeric, fitting the model's
    input shape, and finite after the cast to `dtype`."""
    x = check_array("x", x, expected="a numeric (N, C, H, W) array")
    if x.ndim != 4:
        raise ValueError(f"x: expected a 4-D (N, C, H, W) array, got shape {x.shape}"
                         + (" (add a batch axis: x[None])" if x.ndim == 3 else ""))
    if x.size == 0:
        raise ValueError(f"x: expected at least one image of at least one pixel, got shape {x.shape}")
    check_input_shape(model, x.shape)
    return check_fits_dtype("x", x, dtype)


def warn_outside_input_range(model, x):
    """A UserWarning, pointing at the user's line, when x leaves model.input_range (low, high)."""
    bounds = getattr(model, "input_range", None)
    if bounds is None:
        return
    low, high = (float(b) for b in bounds)
    tolerance = RANGE_TOLERANCE * max(1.0, high - low)
    smallest, largest = float(x.min()), float(x.max())
    if smallest >= low - tolerance and largest <= high + tolerance:
        return
    eight_bit = high <= 1 and 2 * high < largest <= 255 and smallest >= 0   # 0..255 pixels, not a small overshoot
    hint = " (pixels in 0..255? divide them by 255)" if eight_bit else ""
    warnings.warn(f"x: expected values in the model's input range [{low:g}, {high:g}], got min {smallest:g}, "
                  f"max {largest:g}{hint}", UserWarning, stacklevel=user_stacklevel())


def user_stacklevel():
    """warnings.warn's stacklevel, for the caller of this function, that names the first frame
    outside minisg/methods: the user's line that called a method."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_METHODS_FOLDER):
        frame, level = frame.f_back, level + 1
    return level


def check_logits(logits, count):
    """The model's output for `count` inputs must be finite (count, classes) logits."""
    shape = tuple(logits.shape)
    if len(shape) != 2 or shape[0] != count:
        raise ValueError(f"model: expected logits of shape ({count}, classes) for {count} input(s), got shape {shape}")
    finite = backend.get_array_module(logits).isfinite(logits)
    if not bool(finite.all()):
        bad = int((~finite.all(axis=1)).sum())
        raise ValueError(f"model: expected finite logits, got NaN or inf for {bad} of {count} input(s) (are the "
                         f"model's weights finite, and do the input's values suit it?)")
    return logits


# ---- targets, baselines, selections ------------------------------------------------------

def check_target(target, count, num_classes=None, name="target"):
    """target as an (N,) int array in [0, num_classes); an int applies to every image.
    With num_classes None the range is left to check_target_range, called once the logits are
    there (no extra forward pass just to count the classes): every method reaches it through
    picked_scores, occlusion and SmoothGrad of a user's method call it themselves."""
    expected = f"an int or an array of {count} ints"
    array = as_array(name, target, expected)
    if array.dtype.kind == "O" and all(is_int(v) for v in array.reshape(-1)):     # ints beyond int64
        huge = [v for v in array.reshape(-1) if abs(v) > INT64_MAX]
        if huge:
            raise ValueError(f"{name}: expected class indices{_classes(num_classes)}, got {huge[0]}")
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected {expected}" + (" (not bools)" if array.dtype.kind == "b" else "")
                        + f", got {target!r:.200}")
    if array.ndim == 0:
        array = np.full(count, array)
    if array.shape != (count,):
        raise ValueError(f"{name}: expected an int or shape ({count},) for {count} images, got shape {array.shape}")
    if array.dtype.kind == "u" and array.max() > INT64_MAX:
        raise ValueError(f"{name}: expected class indices{_classes(num_classes)}, got {array.max()}")
    array = array.astype(np.int64)
    if num_classes is not None:
        check_target_range(array, num_classes, name)
    return array


def _classes(num_classes):
    return "" if num_classes is None else f" in [0, {num_classes})"


def check_target_range(target, num_classes, name="target"):
    """target's class indices in [0, num_classes), num_classes being the logits' second axis."""
    outside = (target < 0) | (target >= num_classes)
    if outside.any():
        raise ValueError(f"{name}: expected class indices in [0, {num_classes}), got {target[outside][0]}")
    return target


def check_baseline(baseline, dtype, number_only=False):
    """A baseline (IG's path start, occlusion's hidden value): finite in the model's dtype;
    None or an array as well unless number_only. Its shape against x is checked where x is known."""
    if number_only:
        expected = "a finite number (the value of hidden pixels)"
        if not is_number(baseline):
            raise TypeError(f"baseline: expected {expected}, got {baseline!r:.200}")
        with np.errstate(over="ignore"):
            fits = is_finite_number(baseline) and np.isfinite(np.asarray(baseline, dtype=np.float64).astype(dtype))
        if not fits:
            raise ValueError(f"baseline: expected {expected} in the model's dtype {np.dtype(dtype)}, got {baseline!r}")
        return baseline
    if baseline is None:
        return None
    array = check_array("baseline", baseline, kinds="fiu",
                        expected="None, a number or a numeric array broadcastable to x")
    return check_fits_dtype("baseline", array, dtype)


def check_indices(name, value, size=None, what="index"):
    """One int or a non-empty list (tuple, 1-D array) of ints, as a list; in [0, size) when
    size is given (else the caller checks the range)."""
    expected = f"an int or a non-empty list of ints (each a {what})"
    if isinstance(value, np.ndarray):
        value = value.reshape(-1).tolist()
    if is_int(value):
        value = [value]
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name}: expected {expected}, got {value!r:.200}")
    items = list(value)
    if not items:
        raise ValueError(f"{name}: expected at least one {what}, got an empty selection {value!r}")
    wrong = [item for item in items if not is_int(item)]
    if wrong:
        raise TypeError(f"{name}: expected {expected}, got {wrong[0]!r} in {value!r:.200}")
    outside = [item for item in items if size is not None and not 0 <= item < size]
    if outside:
        raise ValueError(f"{name}: {what} {outside[0]} is outside the range [0, {size})")
    return [int(item) for item in items]


def check_selection(filters, neurons, region):
    """Smooth Grad-CAM++'s filters (channel indices) and neurons ((row, col) pairs; with
    region=True the two corners of a box), as (list of ints or None, list of pairs or None).
    Their ranges need the layer's shape: selection_mask checks them."""
    check_flags(region=region)
    if filters is not None:
        filters = check_indices("filters", filters, what="channel index")
    if neurons is None:
        if region:
            raise ValueError("region: region=True selects the box between two corners given as neurons=, "
                             "got neurons=None")
        return filters, None
    return filters, _positions(neurons, region)


def _positions(neurons, region):
    structure = f"(row, col) pairs{' (two corners with region=True)' if region else ''}"
    pairs = neurons.tolist() if isinstance(neurons, np.ndarray) else neurons
    if isinstance(pairs, (str, bytes, dict)) or not hasattr(pairs, "__iter__"):
        raise TypeError(f"neurons: expected a list of {structure}, got {neurons!r:.200}")
    pairs = [pair.tolist() if isinstance(pair, np.ndarray) else pair for pair in pairs]
    if not pairs:
        raise ValueError(f"neurons: expected at least one (row, col) pair, got an empty selection {neurons!r}")
    if len(pairs) == 2 and all(is_int(value) for value in pairs):
        raise ValueError(f"neurons: expected a list of {structure}, got {neurons!r} (one position is written "
                         f"[{tuple(pairs)}])")
    if any(not isinstance(pair, (tuple, list)) or len(pair) != 2 for pair in pairs) or (region and len(pairs) != 2):
        raise ValueError(f"neurons: expected {structure}, got {neurons!r:.200}")
    wrong = [value for pair in pairs for value in pair if not is_int(value)]
    if wrong:
        raise TypeError(f"neurons: expected int rows and columns, got {wrong[0]!r} in {neurons!r:.200}")
    return [(int(row), int(col)) for row, col in pairs]


def check_sizes(name, value, length):
    """A tuple of `length` ints >= 1 (a layer's (K, h, w))."""
    if not isinstance(value, (tuple, list)) or len(value) != length or not all(is_int(v) and v >= 1 for v in value):
        raise ValueError(f"{name}: expected {length} ints >= 1, got {value!r:.200}")
    return tuple(int(v) for v in value)


def check_method_arguments(method, arguments):
    """SmoothGrad's method, called as method(model, x, target, **arguments): each argument must
    be one of its parameters (a method taking **kwargs, or one whose signature cannot be read,
    checks them itself), and it must take model, x and target."""
    try:
        signature = inspect.signature(method)
    except (TypeError, ValueError):
        return
    parameters = signature.parameters
    name_of = getattr(method, "__name__", method)
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        own = [name for name in parameters if name not in ("model", "x", "target", "batch_size")]
        for name in arguments:
            if name not in parameters:
                raise TypeError(f"{name}: expected an argument of the smoothed method {name_of!s} (it takes "
                                f"{own}), got {name}=")
    try:
        signature.bind(None, None, None, **arguments)
    except TypeError as error:
        raise TypeError(f"method: expected a function method(model, x, target, **kwargs), got "
                        f"{name_of!s}{signature} ({error})") from None


# ---- layers of CAM methods ---------------------------------------------------------------

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
    if not isinstance(layer, str) or layer not in names:
        raise ValueError(f"layer: unknown layer {layer!r:.200}; valid layer names: {listed(names)}")
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
