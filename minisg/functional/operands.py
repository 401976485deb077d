"""Checking the operands of an op, and broadcasting (sum_to and broadcast_to, each the other's backward)."""
import numpy as np

from .. import backend
from ..autograd import FLOAT_DTYPES, Function, Tensor, as_tensor


def operands(op, a, b):
    """Two Tensors with one float dtype and broadcastable shapes, or a clear error."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{op}: needs at least one Tensor")
    for value in (a, b):
        kind = value.dtype.kind if hasattr(value, "dtype") else np.asarray(value).dtype.kind  # CuPy: no np.asarray
        if not isinstance(value, Tensor) and kind not in "biuf":
            raise TypeError(f"{op}: expected a Tensor or numbers as the other operand, got {value!r:.80}")
    a = as_tensor(a, like=b if isinstance(b, Tensor) else None)
    b = as_tensor(b, like=a)
    if a.dtype != b.dtype:
        a_float, b_float = a.dtype in FLOAT_DTYPES, b.dtype in FLOAT_DTYPES
        if a_float and b_float:
            raise TypeError(f"{op}: dtype mismatch {a.dtype} vs {b.dtype}; cast one with .astype() "
                            f"(minisg never mixes float32 and float64 silently)")
        if a_float:  # an integer operand takes the float dtype
            b = Tensor(b.data.astype(a.dtype))
        elif b_float:
            a = Tensor(a.data.astype(b.dtype))
    if a.xp is not b.xp:
        raise TypeError(f"{op}: one operand is on the CPU and one on the GPU; move one with .to()")
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together") from None
    return a, b


def float_tensor(op, x):
    x = as_tensor(x)
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{op}: needs a float32 or float64 tensor, got dtype {x.dtype}")
    return x


class SumTo(Function):
    """Sum a broadcast array back down to `shape` (the adjoint of broadcast_to)."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        extra = x.ndim - len(self.shape)
        axes = tuple(range(extra)) + tuple(
            extra + i for i, size in enumerate(self.shape) if size == 1 and x.shape[extra + i] != 1)
        y = x.sum(axis=axes, keepdims=True) if axes else x
        return y.reshape(self.shape)

    def backward(self, g):
        return broadcast_to(g, self.inputs[0].shape)


class BroadcastTo(Function):
    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        return backend.get_array_module(x).broadcast_to(x, self.shape)  # a read-only view

    def backward(self, g):
        return sum_to(g, self.inputs[0].shape)


def sum_to(x, shape):
    return x if x.shape == tuple(shape) else SumTo(shape)(x)


def broadcast_to(x, shape):
    if isinstance(shape, tuple) and x.shape == shape:   # the common case inside backward passes
        return x
    try:
        fits = np.broadcast_shapes(x.shape, tuple(shape)) == tuple(shape)
    except (TypeError, ValueError):
        fits = False
    if not fits:
        raise ValueError(f"broadcast_to: a tensor of shape {x.shape} cannot be broadcast to {shape!r}")
    return BroadcastTo(shape)(x)
