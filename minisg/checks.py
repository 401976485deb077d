"""Checks of plain argument values, shared by every part of minisg.

Each returns the value (as a plain Python int or float) or raises one error that names the
argument, says what was expected and shows what came: f"{name}: expected ..., got {value!r}".
A value of the wrong kind (a string, a float where an int is meant, a bool anywhere a number is
meant) is a TypeError; a value of the right kind outside its range is a ValueError.
"""
import math
import numbers

import numpy as np


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
