"""A reference solution, for the tests of `minisg check` (students: solve the stub yourself).
The stub lessons/exercises/ex01_autodiff.py is made from this file:
edit here, then run `python -m minisg.classroom.stubs`.

Lesson 01 exercises: backward passes you can differentiate again, and gradcheck itself.

A minisg Function has two halves (see minisg/autograd.py):

    forward(self, *arrays)   NumPy arrays in, a NumPy array out (nothing is recorded);
    backward(self, g)        g = dL/d(output) as a *Tensor*; return dL/d(input) as a Tensor.

The inputs of the forward pass are kept as Tensors in ``self.inputs``. If backward is written
with minisg ops on Tensors (``F.exp``, ``*``, ``.sum``, ...), then with ``create_graph=True``
backpropagation is itself recorded, and the gradient can be differentiated again: that is how
Grad-CAM++ gets its 2nd and 3rd derivatives (lesson 10). Reaching into ``.data`` or calling
NumPy inside backward gives correct first derivatives but cuts the graph for the second.

    01.1  Exp.backward          the derivative of e^x, twice differentiable
    01.2  LogSoftmax.backward   the derivative of log-softmax along an axis, twice differentiable
    01.3  numerical_gradient    central finite differences, the oracle of every gradient check

Grade your answers with ``minisg check 01`` (or ``minisg check 01.2`` for one exercise).
"""
import numpy as np

from minisg import Function
from minisg import functional as F


class Exp(Function):
    """y = e^x, elementwise."""

    def forward(self, x):
        return np.exp(x)

    def backward(self, g):
        """Exercise 01.1: dL/dx for y = e^x.

        g: Tensor dL/dy, the shape of x (float64 in the checks).
        Return a Tensor of x's shape: g * dy/dx, written with minisg ops on
        ``self.inputs[0]`` (the input Tensor), so that the checker can differentiate your
        backward again (second derivative == e^x too).
        Hint: d/dx e^x = e^x. ``F.exp`` is minisg's own exp op (recorded on the graph).
        """
        # --- solution 01.1
        return g * F.exp(self.inputs[0])
        # --- end solution


def exp(x):
    return Exp()(x)


class LogSoftmax(Function):
    """y = x - log(sum(exp(x), axis)): log-probabilities along `axis`."""

    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, x):
        shifted = x - x.max(axis=self.axis, keepdims=True)   # no overflow in exp
        return shifted - np.log(np.exp(shifted).sum(axis=self.axis, keepdims=True))

    def backward(self, g):
        """Exercise 01.2: dL/dx for y = log_softmax(x, axis).

        g: Tensor dL/dy, the shape of x. Return a Tensor of x's shape.
        With p = softmax(x) along the axis, the Jacobian is dy_i/dx_j = [i == j] - p_j, so

            dL/dx = g - p * sum(g, axis, keepdims=True)

        Build p from ``self.inputs[0]`` with minisg ops (e.g. ``F.softmax(x, axis=...)`` or
        ``F.exp`` of a log-softmax) so the result is twice differentiable; sum with
        ``g.sum(axis=self.axis, keepdims=True)``.
        """
        # --- solution 01.2
        p = F.softmax(self.inputs[0], axis=self.axis)
        return g - p * g.sum(axis=self.axis, keepdims=True)
        # --- end solution


def log_softmax(x, axis=-1):
    return LogSoftmax(axis)(x)


def numerical_gradient(f, x, eps=1e-6):
    """Exercise 01.3: the gradient of a scalar function by central finite differences.

    f:   a function of one float64 NumPy array shaped like x, returning a Python float.
    x:   a float64 NumPy array of any shape.
    eps: the step h.
    Return a float64 array shaped like x whose element i is

        (f(x + h e_i) - f(x - h e_i)) / (2 h)

    (e_i: 1 at element i, 0 elsewhere). Central differences are exact for quadratics and
    their error shrinks like h^2; one-sided (f(x + h e_i) - f(x)) / h only like h.
    x must be unchanged when you return (perturb a copy, or put each element back).
    Hint: loop over ``range(x.size)`` on a flat view ``xc.reshape(-1)`` of a copy ``xc``.
    """
    # --- solution 01.3
    xc = np.array(x, dtype=np.float64)          # a copy: x itself is never touched
    flat = xc.reshape(-1)
    gradient = np.zeros(xc.size)
    for i in range(xc.size):
        original = flat[i]
        flat[i] = original + eps
        plus = f(xc)
        flat[i] = original - eps
        minus = f(xc)
        flat[i] = original
        gradient[i] = (plus - minus) / (2 * eps)
    return gradient.reshape(xc.shape)
    # --- end solution
