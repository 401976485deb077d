"""The checks of lesson 01's exercises (ex01_autodiff.py): backward passes that can be
differentiated again, and central differences."""
import numpy as np

from .. import functional as F
from ..autograd import Tensor, grad
from .expect import Mismatch, expect_array, expect_close, expect_gradcheck, matches
from .registry import exercise

NOT_RECORDED = ("write backward with minisg ops on Tensors (F.exp(self.inputs[0]), *, .sum) -- "
                "not .data or NumPy -- so create_graph=True can record it")


def expect_twice_differentiable(f, x, name):
    t = Tensor(x.copy(), requires_grad=True)
    (first,) = grad(f(t), t, grad_outputs=Tensor(np.ones(x.shape)), create_graph=True)
    if not first.requires_grad:
        raise Mismatch(f"the gradient of {name} with create_graph=True carries no graph, so it cannot be "
                       f"differentiated again", NOT_RECORDED)
    expect_gradcheck(f, [x], f"the second derivative of {name}", order=2)


@exercise("01.1", "Exp backward", ["exp"],
          approach="d/dx e^x = e^x: multiply g by F.exp of the input Tensor self.inputs[0] (a Tensor expression)",
          section="Writing your own Function")
def check_exp(ex):
    x = np.random.default_rng(11).uniform(-1.5, 1.5, (3, 4))
    expect_close(ex.exp(Tensor(x)), np.exp(x), "exp(x)")
    expect_gradcheck(ex.exp, [x], "the first derivative of exp")
    expect_gradcheck(lambda t: ex.exp(t * t), [x], "the first derivative of exp(x * x)")
    expect_twice_differentiable(ex.exp, x, "exp")
    t = Tensor(x, requires_grad=True)
    (d1,) = grad(ex.exp(t).sum(), t, create_graph=True)
    (d2,) = grad(d1.sum(), t, create_graph=True)
    if not d2.requires_grad:
        raise Mismatch("the second derivative carries no graph, so there is no third", NOT_RECORDED)
    (d3,) = grad(d2.sum(), t)
    expect_close(d3, np.exp(x), "the third derivative of sum(exp(x))")


@exercise("01.2", "LogSoftmax backward", ["log_softmax"],
          approach="g - p * g.sum(axis=self.axis, keepdims=True) with p = F.softmax(self.inputs[0], axis=self.axis)",
          section="Writing your own Function")
def check_log_softmax(ex):
    rng = np.random.default_rng(12)
    x, x3 = 2 * rng.standard_normal((3, 5)), rng.standard_normal((2, 3, 4))
    for data, axis in ((x, -1), (x, 0), (x3, 1)):
        expected = F.log_softmax(Tensor(data), axis=axis).numpy()
        expect_close(ex.log_softmax(Tensor(data), axis), expected, f"log_softmax(x, axis={axis}) (forward)")
        expect_gradcheck(lambda t: ex.log_softmax(t, axis), [data],
                         f"the first derivative of log_softmax along axis {axis} of a {data.shape} input")
    expect_twice_differentiable(lambda t: ex.log_softmax(t, -1), x, "log_softmax")


@exercise("01.3", "numerical_gradient (central differences)", ["numerical_gradient"],
          approach="(f(x + h e_i) - f(x - h e_i)) / (2 h) for every element i, on a copy of x",
          section="4. Finite differences, and what they can and cannot tell us")
def check_numerical_gradient(ex):
    rng = np.random.default_rng(13)
    # sum(x^3) with a big step: central differences give 3x^2 + h^2 exactly, one-sided ones 3x^2 + 3xh + h^2
    h, x = 1e-2, rng.uniform(-2, 2, (2, 2, 2))
    before = x.copy()
    numeric = expect_array(ex.numerical_gradient(lambda z: float(np.sum(z ** 3)), x, eps=h),
                           "numerical_gradient(f, x, eps)", x.shape, np.float64)
    if not np.array_equal(x, before):
        raise Mismatch("numerical_gradient changed its argument x", hint="perturb a copy, or put each element back")
    central = 3 * x ** 2 + h ** 2
    mistakes = [(3 * x ** 2 + 3 * x * h + h ** 2, "that is a one-sided difference: use x + h and x - h, divided by 2h"),
                (2 * central, "twice the gradient: x + h and x - h are 2h apart, so divide by 2h")]
    hint = next((text for wrong, text in mistakes if matches(numeric, wrong)), None)
    expect_close(numeric, central, "numerical_gradient of sum(x^3) with eps=1e-2 "
                 "(central differences give exactly 3x^2 + eps^2)", atol=1e-8, hint=hint)

    x = rng.uniform(-1, 1, (2, 3))
    f = lambda z: float(np.sum(np.sin(z) * z ** 2) + z[0, 1] * z[1, 2])  # noqa: E731
    exact = np.cos(x) * x ** 2 + 2 * x * np.sin(x)
    exact[0, 1] += x[1, 2]
    exact[1, 2] += x[0, 1]
    expect_close(ex.numerical_gradient(f, x), exact, "the gradient of sum(sin(x) x^2) + x01 x12 (default eps)",
                 atol=1e-7, rtol=1e-6)
