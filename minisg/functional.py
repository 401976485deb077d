"""Differentiable operations (import as ``F``), each a Function: forward on arrays, backward on Tensors.

Every backward below is written with the ops of this file, so it is differentiable again.
Broadcasting follows NumPy; a gradient is summed back to the shape of its input (sum_to).
conv2d and max_pool2d live in conv.py and are re-exported here.
"""
import contextlib
import threading

import numpy as np

from . import backend
from .autograd import FLOAT_DTYPES, Function, Tensor, as_tensor

# ---------------------------------------------------------------------------------------
# checking operands
# ---------------------------------------------------------------------------------------


def _operands(op, a, b):
    """Two Tensors with one float dtype and broadcastable shapes, or a clear error."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{op}: needs at least one Tensor")
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


def _float_tensor(op, x):
    x = as_tensor(x)
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{op}: needs a float32 or float64 tensor, got dtype {x.dtype}")
    return x


# ---------------------------------------------------------------------------------------
# broadcasting helpers (each the other's backward)
# ---------------------------------------------------------------------------------------


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
    return x if x.shape == tuple(shape) else BroadcastTo(shape)(x)


# ---------------------------------------------------------------------------------------
# elementwise arithmetic
# ---------------------------------------------------------------------------------------


class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, g):
        a, b = self.inputs
        ga = sum_to(g, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(g, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Sub(Function):
    def forward(self, a, b):
        return a - b

    def backward(self, g):
        a, b = self.inputs
        ga = sum_to(g, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(-g, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Mul(Function):
    def forward(self, a, b):
        return a * b

    def backward(self, g):
        a, b = self.inputs
        ga = sum_to(g * b, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(g * a, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    def forward(self, a, b):
        return a / b

    def backward(self, g):
        a, b = self.inputs
        ga = sum_to(g / b, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(-g * a / (b * b), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, g):
        return -g


class Pow(Function):
    """x ** p for a constant (non-Tensor) exponent p."""

    def __init__(self, exponent):
        self.exponent = exponent

    def forward(self, x):
        return x ** x.dtype.type(self.exponent)

    def backward(self, g):
        (x,) = self.inputs
        p = self.exponent
        if p == 0:
            return g * 0.0
        return g * (p * x ** (p - 1)) if p != 1 else g


class Exp(Function):
    def forward(self, x):
        return backend.get_array_module(x).exp(x)

    def backward(self, g):
        return g * exp(self.inputs[0])


class Log(Function):
    def forward(self, x):
        return backend.get_array_module(x).log(x)

    def backward(self, g):
        return g / self.inputs[0]


class Tanh(Function):
    def forward(self, x):
        return backend.get_array_module(x).tanh(x)

    def backward(self, g):
        y = tanh(self.inputs[0])
        return g * (1.0 - y * y)


class Sigmoid(Function):
    def forward(self, x):
        xp = backend.get_array_module(x)
        return (xp.tanh(x * x.dtype.type(0.5)) + 1) * x.dtype.type(0.5)  # overflow-free form

    def backward(self, g):
        s = sigmoid(self.inputs[0])
        return g * s * (1.0 - s)


class Softplus(Function):
    """log(1 + e^x), computed as logaddexp(0, x) so it never overflows."""

    def forward(self, x):
        return backend.get_array_module(x).logaddexp(x.dtype.type(0), x)

    def backward(self, g):
        return g * sigmoid(self.inputs[0])


def add(a, b):
    return Add()(*_operands("add", a, b))


def sub(a, b):
    return Sub()(*_operands("sub", a, b))


def mul(a, b):
    return Mul()(*_operands("mul", a, b))


def div(a, b):
    return Div()(*_operands("div", a, b))


def neg(x):
    return Neg()(as_tensor(x))


def pow(x, exponent):  # noqa: A001 (mirrors torch.pow)
    if isinstance(exponent, Tensor):
        raise TypeError("pow: the exponent must be a Python number, not a Tensor")
    return Pow(exponent)(_float_tensor("pow", x))


def exp(x):
    return Exp()(_float_tensor("exp", x))


def log(x):
    return Log()(_float_tensor("log", x))


def tanh(x):
    return Tanh()(_float_tensor("tanh", x))


def sigmoid(x):
    return Sigmoid()(_float_tensor("sigmoid", x))


def softplus(x):
    return Softplus()(_float_tensor("softplus", x))


# ---------------------------------------------------------------------------------------
# ReLU and its three backward rules (minisg/methods/METHODS.md §6)
# ---------------------------------------------------------------------------------------

RELU_RULES = ("gradient", "guided", "deconv")
_relu_rule = threading.local()  # per thread: methods run batches in worker threads


def _current_relu_rule():
    return getattr(_relu_rule, "rule", "gradient")


@contextlib.contextmanager
def relu_rule(rule):
    """Within this scope, ReLUs *created* here backpropagate with `rule`:

    gradient: (z > 0) * R      (the true derivative)
    guided:   (z > 0) * relu(R) (guided backprop: only positive signal, only where z was on)
    deconv:   relu(R)           (deconvnet: the mask of the forward pass is ignored)

    R is the gradient arriving at the ReLU's output, z its forward input. The rule is fixed
    when the ReLU runs forward, so run the forward pass inside the scope.
    """
    if rule not in RELU_RULES:
        raise ValueError(f"relu_rule: rule must be one of {RELU_RULES}, got {rule!r}")
    previous = _current_relu_rule()
    _relu_rule.rule = rule
    try:
        yield
    finally:
        _relu_rule.rule = previous


class ReLU(Function):
    def __init__(self, rule):
        self.rule = rule

    def forward(self, x):
        self.mask = x > 0  # the non-smooth piece, a constant of the graph
        return x * self.mask

    def backward(self, g):
        if self.rule == "deconv":
            return relu(g, rule="gradient")
        mask = Tensor(self.mask.astype(g.dtype))
        if self.rule == "guided":
            return relu(g, rule="gradient") * mask
        return g * mask


def relu(x, rule=None):
    return ReLU(rule or _current_relu_rule())(_float_tensor("relu", x))


# ---------------------------------------------------------------------------------------
# reductions
# ---------------------------------------------------------------------------------------


def _normalise_axes(axis, ndim, op):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
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


# ---------------------------------------------------------------------------------------
# shapes and indexing
# ---------------------------------------------------------------------------------------


class Reshape(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        return x.reshape(self.shape)

    def backward(self, g):
        return reshape(g, self.inputs[0].shape)


class Transpose(Function):
    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, g):
        return transpose(g, tuple(np.argsort(self.axes)))


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


# ---------------------------------------------------------------------------------------
# matrix products and layers built from them
# ---------------------------------------------------------------------------------------


def _swap_last(x):
    axes = list(range(x.ndim))
    axes[-2], axes[-1] = axes[-1], axes[-2]
    return transpose(x, axes)


class MatMul(Function):
    def forward(self, a, b):
        return a @ b

    def backward(self, g):
        a, b = self.inputs
        ga = sum_to(g @ _swap_last(b), a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(_swap_last(a) @ g, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


def matmul(a, b):
    a, b = _operands_matmul(a, b)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align "
                         f"({a.shape[-1]} != {b.shape[-2]})")
    return MatMul()(a, b)


def _operands_matmul(a, b):
    a = as_tensor(a, like=b if isinstance(b, Tensor) else None)
    b = as_tensor(b, like=a)
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"matmul: needs tensors with at least 2 dimensions, got shapes {a.shape} "
                         f"and {b.shape} (reshape a vector to (1, n) or (n, 1))")
    if a.dtype != b.dtype:
        raise TypeError(f"matmul: dtype mismatch {a.dtype} vs {b.dtype}; cast one with .astype()")
    return a, b


def linear(x, weight, bias=None):
    """x @ weight.T + bias, with weight shaped (out_features, in_features) as in PyTorch."""
    x, weight = as_tensor(x), as_tensor(weight)
    if x.ndim != 2 or weight.ndim != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"linear: input {x.shape} and weight {weight.shape} do not fit; expected "
                         f"input (N, {weight.shape[1] if weight.ndim == 2 else 'in'}) and weight (out, in)")
    y = matmul(x, transpose(weight))
    return y if bias is None else y + bias


# ---------------------------------------------------------------------------------------
# losses and regularisers
# ---------------------------------------------------------------------------------------


def log_softmax(x, axis=-1):
    """x - logsumexp(x); the max is subtracted as a constant, so no overflow and exact gradients."""
    x = _float_tensor("log_softmax", x)
    shift = Tensor(x.xp.max(x.data, axis=axis, keepdims=True))
    shifted = x - shift
    return shifted - log(sum(exp(shifted), axis=axis, keepdims=True))


def softmax(x, axis=-1):
    return exp(log_softmax(x, axis))


def cross_entropy(logits, labels):
    """Mean negative log-likelihood of integer `labels` (N,) under softmax(logits (N, K))."""
    logits = _float_tensor("cross_entropy", logits)
    labels = backend.to_numpy(labels.data if isinstance(labels, Tensor) else np.asarray(labels))
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: logits must be (N, classes), got shape {logits.shape}")
    if labels.shape != (logits.shape[0],) or labels.dtype.kind not in "iu":
        raise ValueError(f"cross_entropy: labels must be {logits.shape[0]} integers, got shape "
                         f"{labels.shape} dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        bad = labels[(labels < 0) | (labels >= logits.shape[1])][0]
        raise ValueError(f"cross_entropy: labels must be in [0, {logits.shape[1]}), got {bad}")
    picked = getitem(log_softmax(logits, axis=1), (np.arange(logits.shape[0]), labels))
    return -mean(picked)


def dropout(x, p=0.5, training=True, rng=None):
    """Inverted dropout: zero each element with probability p, scale survivors by 1/(1-p)."""
    x = _float_tensor("dropout", x)
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    rng = rng if rng is not None else np.random.default_rng()
    keep = rng.random(x.shape) >= p
    scale = (keep / (1.0 - p)).astype(x.dtype)
    return x * Tensor(x.xp.asarray(scale))


# ---------------------------------------------------------------------------------------
# resampling, device moves and casts
# ---------------------------------------------------------------------------------------


def _bilinear_matrix(size_in, size_out, xp, dtype):
    """(size_out, size_in) weights of 1-D linear interpolation with half-pixel centres.

    Output pixel i samples the input at (i + 0.5) * size_in / size_out - 0.5, clamped to
    the valid range (the convention of PyTorch's align_corners=False and TF2's resize).
    """
    src = (np.arange(size_out) + 0.5) * (size_in / size_out) - 0.5
    src = np.clip(src, 0, size_in - 1)
    low = np.floor(src).astype(int)
    high = np.minimum(low + 1, size_in - 1)
    frac = src - low
    weights = np.zeros((size_out, size_in))
    np.add.at(weights, (np.arange(size_out), low), 1 - frac)
    np.add.at(weights, (np.arange(size_out), high), frac)
    return Tensor(xp.asarray(weights.astype(dtype)))


def upsample_bilinear(x, size):
    """Resize (N, C, H, W) to `size` = (OH, OW) bilinearly: rows then columns, each a matmul."""
    x = _float_tensor("upsample_bilinear", x)
    if x.ndim != 4:
        raise ValueError(f"upsample_bilinear: needs (N, C, H, W), got shape {x.shape}")
    out_h, out_w = (size, size) if isinstance(size, int) else tuple(size)
    rows = _bilinear_matrix(x.shape[2], out_h, x.xp, x.dtype)       # (OH, H)
    cols = _bilinear_matrix(x.shape[3], out_w, x.xp, x.dtype)       # (OW, W)
    return matmul(matmul(rows, x), transpose(cols))


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


# conv2d / max_pool2d are Functions over the kernels; defined in conv.py
from .conv import conv2d, max_pool2d  # noqa: E402,F401

# ---------------------------------------------------------------------------------------
# operators on Tensor
# ---------------------------------------------------------------------------------------


def _attach_operators():
    T = Tensor
    T.__add__ = lambda a, b: add(a, b)
    T.__radd__ = lambda a, b: add(b, a)
    T.__sub__ = lambda a, b: sub(a, b)
    T.__rsub__ = lambda a, b: sub(b, a)
    T.__mul__ = lambda a, b: mul(a, b)
    T.__rmul__ = lambda a, b: mul(b, a)
    T.__truediv__ = lambda a, b: div(a, b)
    T.__rtruediv__ = lambda a, b: div(b, a)
    T.__neg__ = lambda a: neg(a)
    T.__pow__ = lambda a, p: pow(a, p)
    T.__matmul__ = lambda a, b: matmul(a, b)
    T.__rmatmul__ = lambda a, b: matmul(b, a)
    T.__getitem__ = lambda a, index: getitem(a, index)
    T.sum = lambda a, axis=None, keepdims=False: sum(a, axis, keepdims)
    T.mean = lambda a, axis=None, keepdims=False: mean(a, axis, keepdims)
    T.max = lambda a, axis=None, keepdims=False: max(a, axis, keepdims)
    T.reshape = lambda a, *shape: reshape(a, *shape)
    T.transpose = lambda a, *axes: transpose(a, axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else (axes or None))
    T.T = property(lambda a: transpose(a))
    T.flatten = lambda a, start_dim=1: flatten(a, start_dim)
    T.exp = lambda a: exp(a)
    T.log = lambda a: log(a)
    T.tanh = lambda a: tanh(a)
    T.relu = lambda a: relu(a)
    T.sigmoid = lambda a: sigmoid(a)


_attach_operators()
