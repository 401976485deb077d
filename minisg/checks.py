"""Checks of plain argument values, shared by every part of minisg.

Each returns the value (as a plain Python int or float) or raises one error that names the
argument, says what was expected and shows what came: f"{name}: expected ..., got {value!r}".
A value of the wrong kind (a string, a float where an int is meant, a bool anywhere a number is
meant) is a TypeError; a value of the right kind outside its range is a ValueError.
"""
import math
import numbers

import numpy as np

MAX_SAMPLES = 1_000_000  # noisy copies (n) and path steps per image: a million of one digit already take minutes


def is_int(value):
    """An integer that is not a bool (True is an int to Python, never a count or an index here)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_number(value):
    """A real number that is not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_choice(name, value, choices):
    """One of the string `choices` (a list or an array is refused too, not an error inside `in`)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: expected one of {list(choices)}, got {value!r}")
    return value


def check_int(name, value, low=1, high=None, optional=None):
    """An int in [low, high] (high None: no upper bound): counts, sizes, indices, seeds.
    optional: what None means where None is allowed too (e.g. "all"), else None is refused."""
    if optional is not None and value is None:
        return None
    expected = f"an int >= {low}" if high is None else f"an int from {low} to {high:,}"
    expected += f" or None ({optional})" if optional is not None else ""
    if not is_int(value):
        raise TypeError(f"{name}: expected {expected}, got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    return int(value)


def check_number(name, value, positive=False):
    """A finite real number, > 0 when positive, else >= 0 (rates, noise levels, weights)."""
    expected = f"a finite number {'> 0' if positive else '>= 0'}"
    if not is_number(value):
        raise TypeError(f"{name}: expected {expected}, got {value!r}")
    if not is_finite_number(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    return float(value)


def check_real(name, value):
    """A finite real number of either sign (a slope, a colour scale's end)."""
    if not is_number(value):
        raise TypeError(f"{name}: expected a finite number, got {value!r}")
    if not is_finite_number(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return float(value)


def check_probability(name, value):
    """A probability of dropping (dropout's p): a number in [0, 1) (1 would drop everything)."""
    if not is_number(value):
        raise TypeError(f"{name}: expected a number in [0, 1), got {value!r}")
    if not 0 <= value < 1:                             # NaN fails both
        raise ValueError(f"{name}: expected a number in [0, 1), got {value!r}")
    return float(value)


def check_float_dtype(name, value):
    """float32 or float64 (as np.dtype), the dtypes minisg computes in."""
    try:
        dtype = None if value is None else np.dtype(value)      # np.dtype(None) would be float64
    except TypeError:
        dtype = None
    if dtype is None or dtype.type not in (np.float32, np.float64):
        raise TypeError(f"{name}: expected float32 or float64 (np.float32, np.float64), got {value!r}")
    return dtype


def check_generator(name, value):
    """A numpy.random.Generator: seeded draws are the caller's choice, never a hidden default."""
    if not isinstance(value, np.random.Generator):
        raise TypeError(f"{name}: expected a numpy.random.Generator (np.random.default_rng(seed)), got "
                        f"{type(value).__name__} {value!r:.80}")
    return value


def check_flags(**flags):
    """Each flag (upsample=..., normalize=...) must be True or False, not 1, "yes" or None."""
    for name, value in flags.items():
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name}: expected True or False, got {value!r}")


def is_finite_number(value):
    """A number whose float is finite (an int beyond float64's range is not)."""
    try:
        return math.isfinite(float(value))
    except OverflowError:                              # an int beyond float64, e.g. 10**400
        return False


# ---- arrays ------------------------------------------------------------------------------

def as_array(name, value, expected):
    """`value` (a Tensor, a CuPy or NumPy array, nested lists ...) as a NumPy array, or an error
    naming it: nested lists of uneven lengths are no array."""
    from . import backend                   # here: checks is imported by the engine's own modules
    from .autograd import Tensor
    if isinstance(value, Tensor):
        value = value.data
    if hasattr(value, "dtype") and not isinstance(value, np.ndarray):
        value = backend.to_numpy(value)
    try:
        return np.asarray(value)
    except (ValueError, TypeError):
        raise ValueError(f"{name}: expected {expected}, got a {type(value).__name__} that is no regular "
                         f"array (nested lists of uneven lengths?)") from None


def check_array(name, value, ndim=None, kinds="fiu", expected=None):
    """`value` as a NumPy array whose dtype kind is in `kinds` ("fiu": numbers, "b": bools),
    with `ndim` axes when given."""
    expected = expected or (f"a {ndim}-D numeric array" if ndim else "a numeric array")
    array = as_array(name, value, expected)
    if array.dtype.kind not in kinds:
        raise TypeError(f"{name}: expected {expected}, got {_described(value, array)}")
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name}: expected {expected}, got shape {array.shape}")
    return array


def _described(value, array):
    """An array's dtype and shape, else the value's type and repr."""
    if isinstance(value, np.ndarray) or array.ndim:
        return f"dtype {array.dtype}, shape {array.shape}"
    return f"{type(value).__name__} {value!r:.200}"


def check_finite_array(value, name):
    """float64 copy of `value` (maps, masks, scores: what metrics and figures read); refuses
    non-numbers and NaN or infinite values, which no measure or picture of a map can use."""
    array = as_array(name, value, "an array of numbers")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected an array of numbers, got dtype {array.dtype}"
                         + ("" if array.ndim else f" ({value!r:.80})"))
    array = array.astype(np.float64)
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(f"{name}: expected finite values, got {int(bad.sum())} NaN or infinite value(s)")
    return array
