"""Shapes and indexing: reshape, transpose, flatten, getitem, pad, concat; and moves between
devices and dtypes.

None of these computes anything new: each backward undoes the rearrangement.
"""

import numpy as np

from .. import backend
from ..autograd import Function, Tensor, as_tensor
from ..checks import is_int


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
        if _is_basic(self.index):
            out[self.index] = g  # slices and ints name each element once: a plain (fast) copy
        else:
            xp.add.at(out, self.index, g)  # an index array may repeat an element: add every copy
        return out

    def backward(self, gg):
        return getitem(gg, self.index)


def _is_basic(index):
    """True for an index of slices, ints, None and ... only (NumPy's basic indexing)."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(part is None or part is Ellipsis or isinstance(part, slice)
               or is_int(part) for part in parts)


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
    if not (is_int(start_dim) and 0 <= start_dim < max(x.ndim, 1)):
        raise ValueError(f"flatten: start_dim must be an int from 0 to {max(x.ndim, 1) - 1}, got {start_dim!r}")
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
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"cast: dtype must be a NumPy dtype (e.g. np.float64), got {dtype!r}") from None
    return x if x.dtype == dtype else Cast(dtype)(x)


class Pad(Function):
    """A constant border around x; the backward crops the gradient back to x's place."""

    def __init__(self, pad_width, value):
        self.pad_width, self.value = pad_width, value

    def forward(self, x):
        shape = tuple(size + before + after for size, (before, after) in zip(x.shape, self.pad_width))
        out = backend.get_array_module(x).full(shape, self.value, dtype=x.dtype)
        out[_inside(self.pad_width, shape)] = x
        return out

    def backward(self, g):
        return Crop(self.pad_width)(g)


class Crop(Function):
    """The inside of a padded array: the adjoint of zero padding, whose backward is that padding."""

    def __init__(self, pad_width):
        self.pad_width = pad_width

    def forward(self, g):
        return g[_inside(self.pad_width, g.shape)]

    def backward(self, gg):
        return Pad(self.pad_width, 0.0)(gg)


def _inside(pad_width, padded_shape):
    """The slices of the padded array that hold the original one."""
    return tuple(slice(before, size - after) for size, (before, after) in zip(padded_shape, pad_width))


def _pad_widths(pad_width, ndim):
    """pad_width as a tuple of (before, after) int pairs, one per axis, or ValueError."""
    def is_width(v):
        return is_int(v) and v >= 0

    def is_pair(p):
        return isinstance(p, (tuple, list)) and len(p) == 2 and all(is_width(v) for v in p)

    if not (isinstance(pad_width, (tuple, list)) and len(pad_width) == ndim and all(map(is_pair, pad_width))):
        raise ValueError(f"pad: pad_width must hold one (before, after) pair of ints >= 0 per axis "
                         f"({ndim} pairs for this tensor), got {pad_width!r}")
    return tuple((int(before), int(after)) for before, after in pad_width)


def pad(x, pad_width, value=0.0):
    """x with a border of `value`: pad_width holds one (before, after) pair per axis (np.pad's
    form), e.g. ((0, 0), (0, 0), (1, 1), (2, 2)) pads the rows of (N, C, H, W) by 1, the columns by 2."""
    x = as_tensor(x)
    widths = _pad_widths(pad_width, x.ndim)
    if not any(before or after for before, after in widths):
        return x
    return Pad(widths, value)(x)


class Concat(Function):
    """Tensors joined along an axis; the backward slices each one's part of the gradient out."""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *arrays):
        return backend.get_array_module(arrays[0]).concatenate(arrays, axis=self.axis)

    def backward(self, g):
        sizes = [x.shape[self.axis] for x in self.inputs]
        ends = np.cumsum(sizes)
        grads = []
        for need, size, end in zip(self.needs_input_grad, sizes, ends):
            part = (slice(None),) * self.axis + (slice(int(end) - size, int(end)),)
            grads.append(getitem(g, part) if need else None)
        return tuple(grads)


def concat(tensors, axis=1):
    """Join tensors of one dtype and device along `axis`; their other axes must agree."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("concat: needs at least one tensor, got none")
    first = tensors[0]
    if not -first.ndim <= axis < first.ndim:
        raise ValueError(f"concat: axis {axis} is out of range for tensors with {first.ndim} dimensions")
    axis %= first.ndim
    shapes = [t.shape for t in tensors]
    if any(len(s) != len(shapes[0]) or s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:]
           for s in shapes):
        raise ValueError(f"concat: the shapes must agree except along axis {axis}, got {shapes}")
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) > 1:
        raise TypeError(f"concat: the tensors must share one dtype, got {sorted(map(str, dtypes))}")
    if len({t.device for t in tensors}) > 1:
        raise TypeError("concat: the tensors must all be on the CPU or all on the GPU; move some with .to()")
    return first if len(tensors) == 1 else Concat(axis)(*tensors)
