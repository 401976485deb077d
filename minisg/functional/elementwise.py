"""Elementwise arithmetic and functions (exp, tanh, sigmoid, leaky_relu, clip, relu6, ...), and
dropout (a random elementwise mask).

A binary op broadcasts as NumPy does; its backward sums each gradient back to its input's
shape (sum_to).
"""
import numbers

import numpy as np

from .. import backend
from ..autograd import Function, Tensor, as_tensor
from ..checks import check_probability, is_number
from .operands import float_tensor, operands, sum_to
from .relu_rules import current_relu_rule, relu


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


class LeakyReLU(Function):
    """x where x > 0, negative_slope * x elsewhere (so the slope at 0 is negative_slope, as in
    PyTorch)."""

    def __init__(self, negative_slope):
        self.negative_slope = negative_slope

    def forward(self, x):
        # each element's slope, a constant of the graph (as ReLU's mask)
        self.slopes = backend.get_array_module(x).where(x > 0, x.dtype.type(1), x.dtype.type(self.negative_slope))
        return x * self.slopes

    def backward(self, g):
        return g * Tensor(self.slopes)


class Clip(Function):
    """x limited to [low, high] (a bound may be None). The gradient is 1 strictly inside and 0 at
    or beyond a bound: PyTorch's convention for hardtanh and relu6, and minisg's relu'(0) = 0.

    With low = 0 the clip is a rectifier (ReLU6 is a ReLU capped at 6), so it follows the ReLU
    backward rule in force when it ran forward (relu_rules, METHODS.md §6): Guided BackProp
    passes relu(g) where low < x < high, Deconvnet relu(g) where x < high (it ignores the
    rectifier's mask, not the cap). Without this, Guided BackProp on MobileNetV2 would be the
    plain gradient."""

    def __init__(self, low, high, rule="gradient"):
        self.low, self.high, self.rule = low, high, rule

    def forward(self, x):
        xp = backend.get_array_module(x)
        y, inside = x, xp.ones(x.shape, dtype=bool)
        if self.low is not None:
            y, inside = xp.maximum(y, x.dtype.type(self.low)), inside & (x > self.low)
        if self.high is not None:
            y, inside = xp.minimum(y, x.dtype.type(self.high)), inside & (x < self.high)
        self.inside = inside
        return y

    def backward(self, g):
        if self.rule == "gradient":
            return g * Tensor(self.inside.astype(g.dtype))
        positive = relu(g, rule="gradient")
        if self.rule == "guided":
            return positive * Tensor(self.inside.astype(g.dtype))
        below_cap = self.inputs[0].data < self.high if self.high is not None else None
        return positive if below_cap is None else positive * Tensor(below_cap.astype(g.dtype))


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
    if isinstance(exponent, Tensor) or not is_number(exponent):
        raise TypeError(f"pow: the exponent must be a Python number, got {exponent!r:.80}")
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


def leaky_relu(x, negative_slope=0.01):
    if not isinstance(negative_slope, numbers.Real):
        raise TypeError(f"leaky_relu: negative_slope must be a number, got {negative_slope!r}")
    return LeakyReLU(negative_slope)(float_tensor("leaky_relu", x))


def clip(x, min=None, max=None):  # noqa: A002 (torch.clamp's and np.clip's argument names)
    """x limited to [min, max]; either bound may be None. Gradient 1 where min < x < max."""
    x = float_tensor("clip", x)
    for name, bound in (("min", min), ("max", max)):
        if bound is not None and not isinstance(bound, numbers.Real):
            raise TypeError(f"clip: {name} must be a number or None, got {bound!r}")
    if min is not None and max is not None and min > max:
        raise ValueError(f"clip: min must be at most max, got min={min} and max={max}")
    if min is None and max is None:
        return x
    return Clip(min, max, current_relu_rule() if min == 0 else "gradient")(x)


def relu6(x):
    """min(max(x, 0), 6), MobileNet's activation; gradient 1 on 0 < x < 6 only."""
    return clip(x, 0.0, 6.0)


def dropout(x, p=0.5, training=True, rng=None):
    """Inverted dropout: zero each element with probability p, scale survivors by 1/(1-p)."""
    x = float_tensor("dropout", x)
    p = check_probability("p", p)
    if not training or p == 0:
        return x
    rng = rng if rng is not None else np.random.default_rng()
    keep = rng.random(x.shape) >= p
    scale = (keep / (1.0 - p)).astype(x.dtype)
    return x * Tensor(x.xp.asarray(scale))
