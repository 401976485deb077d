"""Reductions over axes: sum, mean and max."""
import numpy as np

from .. import backend
from ..autograd import Function, Tensor, as_tensor
from ..checks import is_int
from .operands import broadcast_to
from .shapes import reshape


def _normalise_axes(axis, ndim, op):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if is_int(axis) else tuple(axis) if isinstance(axis, (tuple, list)) else None
    if axes is None or not all(is_int(a) for a in axes):
        raise TypeError(f"{op}: axis must be None, an int or a tuple of ints, got {axis!r}")
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
    return tuple(sorted(a % ndim for a in axes))


def _keepdims_shape(shape, axes):
    return tuple(1 if i in axes else size for i, size in enumerate(shape))


class Sum(Function):
    def __init__(self, axes, keepdims):
        self.axes, self.keepdims = axes, keepdims

    def forward(self, x):
        xp = backend.get_array_module(x)
        return xp.asarray(x.sum(axis=self.axes, keepdims=self.keepdims))

    def backward(self, g):
        shape = self.inputs[0].shape
        return broadcast_to(reshape(g, _keepdims_shape(shape, self.axes)), shape)


class Max(Function):
    """Maximum over axes; the gradient goes to the FIRST maximum (row-major) of each slice."""

    def __init__(self, axes, keepdims):
        self.axes, self.keepdims = axes, keepdims

    def forward(self, x):
        xp = backend.get_array_module(x)
        kept = [i for i in range(x.ndim) if i not in self.axes]
        moved = xp.transpose(x, kept + list(self.axes))
        flat = moved.reshape(moved.shape[:len(kept)] + (-1,))
        first = flat.argmax(axis=-1)[..., None]
        one_hot = xp.zeros(flat.shape, dtype=x.dtype)
        xp.put_along_axis(one_hot, first, 1, axis=-1)
        inverse = np.argsort(kept + list(self.axes))
        self.mask = xp.ascontiguousarray(xp.transpose(one_hot.reshape(moved.shape), inverse))
        return xp.asarray(x.max(axis=self.axes, keepdims=self.keepdims))

    def backward(self, g):
        shape = self.inputs[0].shape
        return broadcast_to(reshape(g, _keepdims_shape(shape, self.axes)), shape) * Tensor(self.mask)


def sum(x, axis=None, keepdims=False):  # noqa: A001
    x = as_tensor(x)
    return Sum(_normalise_axes(axis, x.ndim, "sum"), keepdims)(x)


def mean(x, axis=None, keepdims=False):
    x = as_tensor(x)
    axes = _normalise_axes(axis, x.ndim, "mean")
    count = int(np.prod([x.shape[a] for a in axes])) if axes else 1
    return sum(x, axes, keepdims) * (1.0 / count)


def max(x, axis=None, keepdims=False):  # noqa: A001
    x = as_tensor(x)
    if x.size == 0:
        raise ValueError("max: the tensor is empty")
    return Max(_normalise_axes(axis, x.ndim, "max"), keepdims)(x)
