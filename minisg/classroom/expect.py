"""What the checks compare a student's answer with, and the tiny models they compare it on.

A check raises ``Mismatch(message, hint)`` for a wrong answer: the message says what differs
(the worst element, a NaN, a wrong shape or dtype). A hint is given only where the check
recognises the mistake (the answer ``matches`` a known wrong variant, or fails in a telling way:
None, NaN where a guard belongs) and names it; without one the student is told where to read,
never the exercise's approach (registry.py).
"""
import numpy as np

from .. import functional as F
from .. import nn
from ..autograd import Tensor, grad, no_grad
from ..gradcheck import GradcheckError, gradcheck, gradgradcheck


class Mismatch(AssertionError):
    """A wrong answer: what differs, and the hint for the mistake when the check recognised it."""

    def __init__(self, message, hint=None):
        super().__init__(message)
        self.hint = hint


# ------------------------------------------------------------------------------ comparing answers

def as_array(value, what):
    """The student's answer as a NumPy array (a Tensor is accepted), or a Mismatch."""
    if value is None:
        raise Mismatch(f"{what} is None", hint="did you forget a `return`?")
    if isinstance(value, Tensor):
        return value.numpy()
    if isinstance(value, tuple):
        raise Mismatch(f"{what} is a tuple of {len(value)} values, expected one array")
    return np.asarray(value)


def expect_array(value, what, shape=None, dtype=None):
    array = as_array(value, what)
    if shape is not None and array.shape != tuple(shape):
        raise Mismatch(f"{what} has shape {array.shape}, expected {tuple(shape)}")
    if dtype is not None and array.dtype != np.dtype(dtype):
        raise Mismatch(f"{what} has dtype {array.dtype}, expected {np.dtype(dtype)}")
    return array


def expect_close(value, expected, what, atol=1e-10, rtol=1e-7, hint=None):
    """value == expected elementwise within atol + rtol * |expected|, else a Mismatch naming
    the worst element."""
    expected = np.asarray(expected, dtype=np.float64)
    array = expect_array(value, what, shape=expected.shape).astype(np.float64)
    bad = ~np.isfinite(array)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise Mismatch(f"{what} holds NaN or inf ({int(bad.sum())} of {array.size}, first at {where})", hint)
    error = np.abs(array - expected)
    allowed = atol + rtol * np.abs(expected)
    if np.all(error <= allowed):
        return array
    worst = np.unravel_index(np.argmax(error - allowed), error.shape)
    index = tuple(int(i) for i in worst) if array.ndim else ()
    raise Mismatch(f"{what}: at {index} got {array[worst]:.6g}, expected {expected[worst]:.6g} "
                   f"({int((error > allowed).sum())} of {error.size} elements differ)", hint)


def expect_float32_kept(function, arrays, *rest, what):
    """function(*arrays as float32, *rest) answers in float32 (the dtype of its input)."""
    return expect_array(function(*(np.asarray(a, dtype=np.float32) for a in arrays), *rest), what, dtype=np.float32)


def matches(value, expected, atol=1e-8, rtol=1e-6):
    """Whether an answer equals some candidate (a known wrong variant: to name the mistake in a hint)."""
    value, expected = np.asarray(value, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    return value.shape == expected.shape and bool(np.allclose(value, expected, rtol=rtol, atol=atol))


def expect_gradcheck(f, inputs, what, order=1):
    """Backprop through f agrees with central differences (order 2: the gradient's gradient)."""
    try:
        (gradcheck if order == 1 else gradgradcheck)(f, inputs)
    except GradcheckError as error:
        raise Mismatch(f"{what} disagrees with finite differences ({str(error).replace('gradcheck: ', '')})")


# ------------------------------------------------------------------------------ tiny models

def mlp(seed, sizes=(16, 8, 3), activation=nn.Tanh, bias=True, dtype=np.float64):
    """Flatten, then Linear layers with `activation` between them; names fc1, act1, fc2, ..."""
    rng = np.random.default_rng(seed)
    layers = [("flatten", nn.Flatten())]
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        if i > 1:
            layers.append((f"act{i - 1}", activation()))
        layers.append((f"fc{i}", nn.Linear(fan_in, fan_out, bias=bias, rng=rng, dtype=dtype)))
    return nn.Sequential(*layers)


class Cubic(nn.Module):
    """logit_k = (k+1) * sum(x^3) / 3, so dS_k/dx = (k+1) x^2 and E[M(x + eps)] = (k+1)(x^2 + sigma^2)."""

    def __init__(self, pixels, classes=3):
        super().__init__()
        per_class = np.arange(1, classes + 1, dtype=np.float64) / 3
        self.weight = nn.Parameter(np.tile(per_class, (pixels, 1)))

    def forward(self, x):
        return F.matmul(F.flatten(x) ** 3, self.weight)


def target_logits(model, x, target):
    with no_grad():
        logits = model(Tensor(x)).numpy()
    return logits[np.arange(len(x)), target]


def input_gradient(f, x):
    """d sum(f(x)) / dx for a Tensor function f, as a NumPy array."""
    t = Tensor(np.array(x), requires_grad=True)
    (g,) = grad(f(t).sum(), t)
    return g.numpy()

