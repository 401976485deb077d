"""Elementwise arithmetic and functions, and dropout (a random elementwise mask).

A binary op broadcasts as NumPy does; its backward sums each gradient back to its input's
shape (sum_to).
"""
import numpy as np

from .. import backend
from ..autograd import Function, Tensor, as_tensor
from .operands import float_tensor, operands, sum_to


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
    return Add()(*operands("add", a, b))


def sub(a, b):
    return Sub()(*operands("sub", a, b))


def mul(a, b):
    return Mul()(*operands("mul", a, b))


def div(a, b):
    return Div()(*operands("div", a, b))


def neg(x):
    return Neg()(as_tensor(x))


def pow(x, exponent):  # noqa: A001 (mirrors torch.pow)
    if isinstance(exponent, Tensor):
        raise TypeError("pow: the exponent must be a Python number, not a Tensor")
    return Pow(exponent)(float_tensor("pow", x))


def exp(x):
    return Exp()(float_tensor("exp", x))


def log(x):
    return Log()(float_tensor("log", x))


def tanh(x):
    return Tanh()(float_tensor("tanh", x))


def sigmoid(x):
    return Sigmoid()(float_tensor("sigmoid", x))


def softplus(x):
    return Softplus()(float_tensor("softplus", x))


def dropout(x, p=0.5, training=True, rng=None):
    """Inverted dropout: zero each element with probability p, scale survivors by 1/(1-p)."""
    x = float_tensor("dropout", x)
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    rng = rng if rng is not None else np.random.default_rng()
    keep = rng.random(x.shape) >= p
    scale = (keep / (1.0 - p)).astype(x.dtype)
    return x * Tensor(x.xp.asarray(scale))
