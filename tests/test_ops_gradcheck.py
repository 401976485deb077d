"""Every differentiable op, gradient-checked in float64 against central differences.

One table drives everything: each row is an op, the shapes of its inputs, and how to draw
inputs away from kinks and ties. Each row is checked to first and second order.
"""
import numpy as np
import pytest

from minisg import F, gradcheck, gradgradcheck


def normal(*shape):
    return ("normal", shape)


def positive(*shape):  # for log, div denominators, pow with fractional exponents
    return ("positive", shape)


def spread(*shape):  # distinct values with gaps: no ties for max, nothing near 0 for relu
    return ("spread", shape)


def draw(spec, rng):
    kind, shape = spec
    if kind == "normal":
        return rng.standard_normal(shape)
    if kind == "positive":
        return rng.uniform(0.5, 2.0, size=shape)
    size = int(np.prod(shape))
    values = (rng.permutation(size) - size / 2 + 0.5) * 0.3  # multiples of 0.3, none at 0
    return values.reshape(shape)


OPS = {
    # elementwise with broadcasting
    "add": (lambda a, b: a + b, [normal(3, 4), normal(4)]),
    "add_broadcast_both": (lambda a, b: F.add(a, b), [normal(3, 1), normal(1, 4)]),
    "sub": (lambda a, b: a - b, [normal(2, 3, 4), normal(3, 1)]),
    "mul": (lambda a, b: a * b, [normal(3, 4), normal(3, 4)]),
    "mul_broadcast": (lambda a, b: a * b, [normal(2, 1, 4), normal(3, 1)]),
    "div": (lambda a, b: a / b, [normal(3, 4), positive(4)]),
    "neg": (lambda a: -a, [normal(5)]),
    "pow_3": (lambda a: a ** 3, [normal(3, 4)]),
    "pow_half": (lambda a: a ** 0.5, [positive(3, 4)]),
    "pow_neg": (lambda a: F.pow(a, -1.5), [positive(6)]),
    "exp": (F.exp, [normal(3, 4)]),
    "log": (F.log, [positive(3, 4)]),
    "tanh": (F.tanh, [normal(3, 4)]),
    "sigmoid": (F.sigmoid, [normal(3, 4)]),
    "softplus": (F.softplus, [normal(3, 4)]),
    "relu": (F.relu, [spread(3, 4)]),
    "scalar_ops": (lambda a: (2.0 - a) * 3.0 / (a * a + 1.0), [normal(4)]),
    # reductions
    "sum_all": (lambda a: a.sum() * a.sum(), [normal(3, 4)]),
    "sum_axis": (lambda a: F.sum(a, axis=1) ** 2, [normal(2, 3, 4)]),
    "sum_axes_keepdims": (lambda a: F.sum(a, axis=(0, 2), keepdims=True) * a, [normal(2, 3, 4)]),
    "mean": (lambda a: F.mean(a, axis=-1) ** 2, [normal(3, 5)]),
    "max_all": (lambda a: F.max(a) * a, [spread(3, 4)]),
    "max_axis": (lambda a: F.max(a, axis=0) ** 2, [spread(3, 4)]),
    "max_axes_keepdims": (lambda a: F.max(a, axis=(1, 2), keepdims=True) * a, [spread(2, 3, 4)]),
    # shapes and indexing
    "reshape": (lambda a: F.reshape(a, (4, 3)) ** 2, [normal(3, 4)]),
    "transpose": (lambda a: F.transpose(a, (2, 0, 1)) ** 2, [normal(2, 3, 4)]),
    "flatten": (lambda a: F.flatten(a) ** 2, [normal(2, 3, 4)]),
    "getitem_slice": (lambda a: a[1:, ::2] ** 2, [normal(3, 5)]),
    "getitem_fancy_repeat": (lambda a: a[np.array([0, 2, 0]), np.array([1, 1, 1])] ** 2, [normal(3, 4)]),
    # products and layers
    "matmul": (lambda a, b: a @ b, [normal(3, 4), normal(4, 2)]),
    "matmul_batched_broadcast": (lambda a, b: a @ b, [normal(2, 3, 4), normal(4, 5)]),
    "matmul_square": (lambda a: (a @ a) ** 2, [normal(3, 3)]),
    "linear": (lambda x, w, b: F.linear(x, w, b), [normal(3, 4), normal(2, 4), normal(2)]),
    "log_softmax": (lambda a: F.log_softmax(a, axis=1), [normal(3, 5)]),
    "softmax": (lambda a: F.softmax(a, axis=0), [normal(4, 3)]),
    "cross_entropy": (lambda a: F.cross_entropy(a, np.array([0, 3, 1])), [normal(3, 4)]),
    "dropout": (lambda a: F.dropout(a, 0.5, True, np.random.default_rng(3)) ** 2, [normal(4, 5)]),
    "upsample_bilinear": (lambda a: F.upsample_bilinear(a, (5, 7)) ** 2, [normal(1, 2, 3, 4)]),
    "upsample_bilinear_down": (lambda a: F.upsample_bilinear(a, (2, 3)) ** 2, [normal(2, 1, 5, 6)]),
    "cast_roundtrip": (lambda a: F.cast(F.cast(a, np.float32), np.float64) * 2.0, [normal(3)]),
}


@pytest.fixture(params=sorted(OPS), name="op")
def op_fixture(request):
    f, specs = OPS[request.param]
    rng = np.random.default_rng(abs(hash(request.param)) % 2**32)
    return f, [draw(spec, rng) for spec in specs], request.param


def test_first_order(op):
    f, inputs, name = op
    if name == "cast_roundtrip":  # float32 in the middle on purpose: a step float32 can resolve
        assert gradcheck(f, inputs, eps=1e-2, atol=1e-4, rtol=1e-4)
    else:
        assert gradcheck(f, inputs)


def test_second_order(op):
    f, inputs, name = op
    if name == "cast_roundtrip":
        pytest.skip("float32 in the middle: second differences drown in rounding")
    assert gradgradcheck(f, inputs)


def test_gradcheck_catches_a_wrong_backward():
    """The checker itself has teeth: an op with a planted sign error fails."""
    from minisg import Function, GradcheckError

    class WrongSquare(Function):
        def forward(self, x):
            return x * x

        def backward(self, g):
            return g * self.inputs[0] * -2.0

    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(lambda x: WrongSquare()(x), [np.array([1.0, -2.0, 3.0])])


def test_gradgradcheck_catches_a_wrong_second_derivative():
    """A backward that is right as a number but built from constants has no second derivative."""
    from minisg import Function, GradcheckError, Tensor

    class ConstantBackwardCube(Function):
        def forward(self, x):
            return x ** 3

        def backward(self, g):  # correct value, but detached from x: d2 is lost
            return g * Tensor(3 * self.inputs[0].data ** 2)

    f = lambda x: ConstantBackwardCube()(x)  # noqa: E731
    x = [np.array([0.7, -1.3, 2.0])]
    assert gradcheck(f, x)
    with pytest.raises(GradcheckError):
        gradgradcheck(f, x)
