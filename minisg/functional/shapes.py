"""Shapes and indexing: reshape, transpose, flatten, getitem; and moves between devices and dtypes.

None of these computes anything new: each backward undoes the rearrangement.
"""
import numpy as np

from .. import backend
from ..autograd import Function, Tensor, as_tensor


class Reshape(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        return x.reshape(self.shape)

    def backward(self, g):
        return reshape(g, self.inputs[0].shape)


class Transpose(Function):
    """Permute the axes; the backward applies the inverse permutation."""

    def __init__(self, axes):
        self.axes, self.inverse = axes, tuple(np.argsort(axes))

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, g):
        return transpose(g, self.inverse)


class GetItem(Function):
    def __init__(self, index):
        self.index = index

    def forward(self, x):
        return x[self.index]

    def backward(self, g):
        return GetItemGrad(self.index, self.inputs[0].shape)(g)


class GetItemGrad(Function):
    """Scatter-add a slice's gradient into zeros of the source shape (adjoint of getitem)."""

    def __init__(self, index, shape):
        self.index, self.shape = index, shape

    def forward(self, g):
        xp = backend.get_array_module(g)
        out = xp.zeros(self.shape, dtype=g.dtype)
        xp.add.at(out, self.index, g)
        return out

    def backward(self, gg):
        return getitem(gg, self.index)


def reshape(x, *shape):
    x = as_tensor(x)
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    try:
        target = np.empty(x.shape, dtype=np.int8).reshape(shape).shape  # resolves -1, checks size
    except ValueError:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} into {shape}") from None
    return x if target == x.shape else Reshape(target)(x)


def transpose(x, axes=None):
    x = as_tensor(x)
    axes = tuple(reversed(range(x.ndim))) if axes is None else tuple(a % x.ndim for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of {x.ndim} dimensions")
    return Transpose(axes)(x)


def flatten(x, start_dim=1):
    """Keep the first `start_dim` axes, merge the rest (C, H, W order, as PyTorch)."""
    x = as_tensor(x)
    return reshape(x, x.shape[:start_dim] + (-1,))


def _index_to_backend(index, xp):
    """Move array indices (e.g. labels) to the tensor's device."""
    if isinstance(index, tuple):
        return tuple(_index_to_backend(i, xp) for i in index)
    if isinstance(index, Tensor):
        index = index.data
    if hasattr(index, "dtype") and backend.get_array_module(index) is not xp:
        return xp.asarray(backend.to_numpy(index))
    return index


def getitem(x, index):
    x = as_tensor(x)
    return GetItem(_index_to_backend(index, x.xp))(x)


class ToDevice(Function):
    def __init__(self, device):
        self.device = device

    def forward(self, x):
        return backend.to_device(x, self.device)

    def backward(self, g):
        return to_device(g, self.inputs[0].device)


def to_device(x, device):
    x = as_tensor(x)
    return x if x.device == device else ToDevice(device)(x)


class Cast(Function):
    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)

    def forward(self, x):
        return x.astype(self.dtype)

    def backward(self, g):
        return cast(g, self.inputs[0].dtype)


def cast(x, dtype):
    x = as_tensor(x)
    return x if x.dtype == np.dtype(dtype) else Cast(dtype)(x)
