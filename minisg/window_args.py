"""The arguments of the sliding-window ops (conv2d, max_pool2d, avg_pool2d): kernel, stride and
padding checked and brought to one form, and how many windows fit along an axis.

Padding comes as an int (all four sides), a pair (rows, cols) (both sides alike, PyTorch's
form) or a 4-tuple (top, left, bottom, right): ONNX's ``pads`` order [x1_begin, x2_begin,
x1_end, x2_end]. Inside minisg it is always the 4-tuple.
"""
from .checks import is_int  # Python and NumPy ints (ONNX attributes may be np.int64), not bools


def pair(value, name, op, minimum):
    """(rows, cols) from an int or a pair of ints >= minimum; ValueError naming `name` otherwise."""
    values = (value, value) if is_int(value) else tuple(value) if _is_sequence(value) else ()
    if len(values) != 2 or not all(is_int(v) and v >= minimum for v in values):
        raise ValueError(f"{op}: {name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return tuple(int(v) for v in values)


def int_at_least(value, name, op, minimum):
    """value as an int >= minimum; ValueError naming `name` otherwise."""
    if not (is_int(value) and value >= minimum):
        raise ValueError(f"{op}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def padding4(value, op):
    """(top, left, bottom, right) from an int, a pair (rows, cols) or a 4-tuple of ints >= 0."""
    if is_int(value):
        sides = (value,) * 4
    elif _is_sequence(value) and len(value) == 2:
        sides = (value[0], value[1], value[0], value[1])
    elif _is_sequence(value) and len(value) == 4:
        sides = tuple(value)
    else:
        sides = None
    if sides is None or not all(is_int(v) and v >= 0 for v in sides):
        raise ValueError(f"{op}: padding must be an int >= 0, a pair (rows, cols) or a 4-tuple "
                         f"(top, left, bottom, right) of them, got {value!r}")
    return tuple(int(v) for v in sides)


def check_pool_padding(pads, kernel, op):
    """Each side's padding at most half the window (PyTorch's rule): then every window holds at
    least one element of the input, so a maximum or a mean over it is always defined."""
    top, left, bottom, right = pads
    kh, kw = kernel
    if max(top, bottom) > kh // 2 or max(left, right) > kw // 2:
        raise ValueError(f"{op}: padding must be at most half the window {kernel} on each side, "
                         f"got (top, left, bottom, right) = {pads}")


def pool_output_size(size, kernel, stride, before, after, ceil_mode, op):
    """How many windows fit along an axis of `size` with `before` and `after` padding.

    floor mode: only whole windows inside the padded input. ceil_mode: one more where the last
    window would run past the end, provided it starts inside the input or the leading padding
    (a window starting in the trailing padding would hold padding only).
    """
    room = size + before + after - kernel
    if room < 0:
        raise ValueError(f"{op}: window {kernel} is larger than the padded input {size} + {before} + {after}")
    steps = -(-room // stride) if ceil_mode else room // stride
    if ceil_mode and steps * stride >= size + before:
        steps -= 1
    return steps + 1


def _is_sequence(value):
    """A tuple, a list or a 1-D array (not a string)."""
    return not isinstance(value, (str, bytes)) and hasattr(value, "__len__")
