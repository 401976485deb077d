"""Grade the classroom exercises: ``minisg check NN [--file PATH]``.

Every exercise NN.k in ``lessons/exercises/exNN_*.py`` has a check below. A check calls the
student's functions on small seeded inputs (float64, tiny models built with minisg.nn, no
trained checkpoints) and compares the answers with finite differences, with the properties in
minisg/methods/METHODS.md (SmoothGrad at noise 0 is the gradient, IG is exact on a bias-free
ReLU net, 0 < alpha <= 1/2, ...) and with minisg's own implementation. Each check passes, or
fails with what went wrong and a hint.

    main(number, file=None, time_limit=None) -> exit code   one line per exercise and a summary
    run(number, file=None, time_limit=None)  -> [Result]    the same, as data (tests, notebooks)
    copy_stubs(lesson, dest=None) -> [Path]   copies the stubs exNN_*.py (``minisg exercises NN``)

Without ``file``, the student's file is the first exNN_*.py in the current folder, then in
lessons/exercises/ under it, then the stub that comes with minisg.

``number`` is a lesson ("01", 1) or one exercise ("01.2"). Exit codes: 0 all pass,
1 something fails, 2 unknown exercise or missing file.

The student's code runs in a worker process (see "the worker" below), one exercise after
another, each with a time limit (TIME_LIMIT seconds; ``time_limit=`` or the environment variable
MINISG_CHECK_TIME_LIMIT change it). A file that calls sys.exit or os._exit, loops forever,
crashes the interpreter or is killed fails the exercise it was running (every exercise when it
happens on import) with a one-line message, and the other exercises are still graded.
"""
import argparse
import atexit
import dataclasses
import json
import os
import re
import secrets
import selectors
import signal
import subprocess
import sys
import threading
import time
import traceback
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .. import files
from .. import functional as F
from .. import nn
from ..autograd import Tensor, grad, no_grad
from ..gradcheck import GradcheckError, gradcheck, gradgradcheck

# Seconds each exercise (and the import of the student's file) may take. The slowest honest
# solution measured (exercise 04.1, the reference solution, on a loaded 2-core machine) takes
# 0.9 s with Numba's kernel cache warm and 4.3 s when the kernels are compiled first: 60 s is
# 14x that. Override: run(..., time_limit=S), main(..., time_limit=S), MINISG_CHECK_TIME_LIMIT=S.
TIME_LIMIT = 60.0
TIME_LIMIT_VARIABLE = "MINISG_CHECK_TIME_LIMIT"


class Mismatch(AssertionError):
    """A wrong answer: what differs, and optionally a hint sharper than the exercise's own."""

    def __init__(self, message, hint=None):
        super().__init__(message)
        self.hint = hint


class UsageError(Exception):
    """An unknown exercise number or a missing file (exit code 2)."""


@dataclass(frozen=True)
class Exercise:
    number: str                  # "01.2"
    title: str
    names: tuple                 # what the student's file must define
    hint: str
    check: Callable


@dataclass
class Result:
    number: str
    title: str
    passed: bool
    message: str = ""
    hint: str = ""

    def line(self):
        if self.passed:
            return f"PASS {self.number} {self.title}"
        return f"FAIL {self.number} {self.title}: {self.message} — hint: {self.hint}"


EXERCISES = {}                   # lesson "01" -> [Exercise, ...] in order


def exercise(number, title, names, hint):
    """Register the decorated function as the check of exercise `number`."""
    def register(check):
        EXERCISES.setdefault(number[:2], []).append(Exercise(number, title, tuple(names), hint, check))
        return check
    return register


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


def matches(value, expected, atol=1e-8, rtol=1e-6):
    """Whether an answer equals some candidate (to name a typical mistake in a message)."""
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


# ------------------------------------------------------------------------------ lesson 01

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
          hint="d/dx e^x = e^x: multiply g by F.exp of the input Tensor self.inputs[0] (a Tensor expression)")
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
          hint="g - p * g.sum(axis=self.axis, keepdims=True) with p = F.softmax(self.inputs[0], axis=self.axis)")
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
          hint="(f(x + h e_i) - f(x - h e_i)) / (2 h) for every element i, on a copy of x")
def check_numerical_gradient(ex):
    rng = np.random.default_rng(13)
    # sum(x^3) with a big step: central differences give 3x^2 + h^2 exactly, one-sided ones 3x^2 + 3xh + h^2
    h, x = 1e-2, rng.uniform(-2, 2, (2, 2, 2))
    before = x.copy()
    numeric = expect_array(ex.numerical_gradient(lambda z: float(np.sum(z ** 3)), x, eps=h),
                           "numerical_gradient(f, x, eps)", x.shape, np.float64)
    if not np.array_equal(x, before):
        raise Mismatch("numerical_gradient changed its argument x", hint="perturb a copy, or put each element back")
    one_sided = 3 * x ** 2 + 3 * x * h + h ** 2
    hint = "that is a one-sided difference: use x + h and x - h, divided by 2h" if matches(numeric, one_sided) else None
    expect_close(numeric, 3 * x ** 2 + h ** 2, "numerical_gradient of sum(x^3) with eps=1e-2 "
                 "(central differences give exactly 3x^2 + eps^2)", atol=1e-8, hint=hint)

    x = rng.uniform(-1, 1, (2, 3))
    f = lambda z: float(np.sum(np.sin(z) * z ** 2) + z[0, 1] * z[1, 2])  # noqa: E731
    exact = np.cos(x) * x ** 2 + 2 * x * np.sin(x)
    exact[0, 1] += x[1, 2]
    exact[1, 2] += x[0, 1]
    expect_close(ex.numerical_gradient(f, x), exact, "the gradient of sum(sin(x) x^2) + x01 x12 (default eps)",
                 atol=1e-7, rtol=1e-6)


# ------------------------------------------------------------------------------ lesson 02

def im2col_loops(x, kernel_hw, stride, padding):
    """im2col by its definition, one window at a time (the oracle for 02.1)."""
    (kh, kw), (sh, sw), (ph, pw) = kernel_hw, stride, padding
    n, c, h, w = x.shape
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.empty((n, c * kh * kw, oh * ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            cols[:, :, i * ow + j] = x_pad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].reshape(n, -1)
    return cols


def adjoint_of_im2col(cols, input_shape, kernel_hw, stride, padding):
    """col2im as the transpose of im2col's matrix, built by applying im2col to unit images."""
    n, c, h, w = input_shape
    units = np.eye(c * h * w).reshape(-1, c, h, w)
    matrix = im2col_loops(units, kernel_hw, stride, padding).reshape(c * h * w, -1)   # (CHW, CKK*P)
    return (cols.reshape(n, -1) @ matrix.T).reshape(input_shape)


IM2COL_CASES = [  # (input shape, kernel, stride, padding)
    ((2, 2, 5, 5), (3, 3), (1, 1), (1, 1)),    # overlapping windows and padding
    ((1, 3, 6, 5), (2, 3), (2, 1), (0, 1)),    # non-square kernel, per-axis stride and padding
    ((1, 1, 7, 7), (3, 3), (2, 2), (0, 0)),    # stride 2: windows overlap by one row/column
]


@exercise("02.1", "col2im", ["col2im"],
          hint="undo im2col's reshape to (N, C, KH, KW, OH, OW), loop over (a, b) with += into the "
               "padded image's strided slices, then crop the padding")
def check_col2im(ex):
    rng = np.random.default_rng(21)
    for shape, kernel, stride, padding in IM2COL_CASES:
        cols = rng.standard_normal(im2col_loops(np.zeros(shape), kernel, stride, padding).shape)
        got = ex.col2im(cols, shape, kernel, stride, padding)
        what = f"col2im for input {shape}, kernel {kernel}, stride {stride}, padding {padding}"
        expect_close(got, adjoint_of_im2col(cols, shape, kernel, stride, padding), what)
    shape, kernel, stride, padding = IM2COL_CASES[0]
    cols = rng.standard_normal(im2col_loops(np.zeros(shape), kernel, stride, padding).shape).astype(np.float32)
    expect_array(ex.col2im(cols, shape, kernel, stride, padding), "col2im of float32 columns", dtype=np.float32)


CONV_CASES = [  # (input shape, weight shape, stride, padding)
    ((1, 1, 5, 5), (1, 1, 3, 3), (1, 1), (0, 0)),
    ((2, 3, 5, 6), (2, 3, 3, 3), (1, 1), (1, 1)),
    ((1, 2, 6, 5), (3, 2, 3, 2), (2, 2), (1, 1)),
    ((1, 2, 7, 7), (2, 2, 5, 5), (2, 1), (2, 0)),
]


@exercise("02.2", "conv2d input gradient via col2im", ["conv2d_backward_input"],
          hint="d_cols = w.reshape(O, -1).T @ gy.reshape(N, O, OH*OW), then col2im(d_cols, ...); "
               "no kernel flip (02.2 uses your 02.1)")
def check_conv2d_backward_input(ex):
    from ..kernels import reference

    rng = np.random.default_rng(22)
    for x_shape, w_shape, stride, padding in CONV_CASES:
        w = rng.standard_normal(w_shape)
        oh = (x_shape[2] + 2 * padding[0] - w_shape[2]) // stride[0] + 1
        ow = (x_shape[3] + 2 * padding[1] - w_shape[3]) // stride[1] + 1
        gy = rng.standard_normal((x_shape[0], w_shape[0], oh, ow))
        expected = reference.conv2d_backward_input(gy, w, x_shape[2:], stride, padding)
        got = ex.conv2d_backward_input(gy, w, x_shape[2:], stride, padding)
        expect_close(got, expected, f"the input gradient for input {x_shape}, weight {w_shape}, "
                                    f"stride {stride}, padding {padding}")
    got = ex.conv2d_backward_input(gy.astype(np.float32), w.astype(np.float32), x_shape[2:], stride, padding)
    expect_array(got, "the input gradient of float32 arrays", dtype=np.float32)


def pool_cases(rng):
    """(label, x, kernel, stride): plain, tie-heavy, overlapping windows, all ties."""
    return [
        ("distinct values, 2x2 windows", rng.standard_normal((2, 2, 4, 4)), (2, 2), (2, 2)),
        ("ties (x in {0, 1, 2}), 2x2 windows", rng.integers(0, 3, (2, 2, 6, 6)).astype(float), (2, 2), (2, 2)),
        ("overlapping 3x3 windows, stride 2, ties", rng.integers(0, 2, (1, 2, 7, 7)).astype(float), (3, 3), (2, 2)),
        ("an all-zero image, 2x3 windows, stride 1", np.zeros((1, 1, 4, 5)), (2, 3), (1, 1)),
    ]


@exercise("02.3", "max-pool backward", ["max_pool2d_backward"],
          hint="per output (i, j): np.argmax over the window reshaped to (N, C, kh*kw) is the FIRST max; "
               "add gy there (+=, windows can share a winner)")
def check_max_pool2d_backward(ex):
    from ..kernels import reference

    rng = np.random.default_rng(23)
    for label, x, kernel, stride in pool_cases(rng):
        y, argmax = reference.max_pool2d_forward(x, kernel, stride)
        gy = rng.standard_normal(y.shape)
        expected = reference.max_pool2d_scatter(gy, argmax, x.shape[2:])
        got = ex.max_pool2d_backward(x, gy, kernel, stride)
        expect_close(got, expected, f"the input gradient ({label})")
    got = ex.max_pool2d_backward(x.astype(np.float32), gy.astype(np.float32), kernel, stride)
    expect_array(got, "the input gradient of float32 arrays", dtype=np.float32)


# ------------------------------------------------------------------------------ lesson 04

@exercise("04.1", "sensitivity map dS_c/dx", ["sensitivity_map"],
          hint="grad(logits[np.arange(N), target].sum(), images) with images = Tensor(x, requires_grad=True)")
def check_sensitivity_map(ex):
    from .. import methods as M

    rng = np.random.default_rng(41)
    model, x, target = mlp(41), rng.random((3, 1, 4, 4)), np.array([0, 2, 1])
    got = expect_array(ex.sensitivity_map(model, x, target), "the map", x.shape, np.float64)
    hint = None
    if matches(got, input_gradient(lambda t: model(t), x)):
        hint = "you differentiated the sum of ALL logits: pick each image's target logit"
    elif matches(got, input_gradient(lambda t: F.softmax(model(t), axis=1)[np.arange(3), target], x)):
        hint = "that is the gradient of the softmax probability: use the pre-softmax logit"
    expect_close(got, M.vanilla_gradient(model, x, target), "the map of a tanh MLP", hint=hint)

    linear = mlp(42, sizes=(16, 3))
    weight = linear["fc1"].weight.numpy()
    expect_close(ex.sensitivity_map(linear, x, target), weight[target].reshape(x.shape),
                 "the map of a linear model S = W x + b (must be W[target] exactly)")
    model32 = mlp(41, dtype=np.float32)
    got = ex.sensitivity_map(model32, x.astype(np.float32), target)
    expect_array(got, "the map of a float32 model", x.shape, np.float32)


@exercise("04.2", "grayscale with 99th-percentile cap", ["to_grayscale"],
          hint="per image: v = |M|.sum(channels); clip((v - v.min()) / (np.percentile(v, p) - v.min()), 0, 1); "
               "zeros when the percentile equals the min")
def check_to_grayscale(ex):
    from .. import viz

    rng = np.random.default_rng(42)
    maps = rng.standard_normal((4, 2, 6, 6))
    maps[0, :, 2, 3] = 40.0                      # an outlier that the cap must tame
    maps[1] = 0.0                                # a flat map: zeros, not NaN
    maps[2] *= 1e-3                              # scale must not matter per image
    maps[3] = -np.abs(maps[3])                   # all negative: |M| matters
    for percentile in (99, 90):
        got = ex.to_grayscale(maps, percentile) if percentile != 99 else ex.to_grayscale(maps)
        got = expect_array(got, f"to_grayscale(maps, percentile={percentile})", (4, 6, 6), np.float64)
        if np.isnan(got[1]).any():
            raise Mismatch("a flat (all-zero) map gave NaN", hint="return zeros when the cap equals the min")
        expect_close(got, viz.to_grayscale(maps, "absolute", percentile),
                     f"to_grayscale(maps, percentile={percentile})")


# ------------------------------------------------------------------------------ lesson 06

@exercise("06.1", "noise stdev per image", ["noise_stdevs"],
          hint="flatten each image: x.reshape(N, -1); noise_level * (max(axis=1) - min(axis=1))")
def check_noise_stdevs(ex):
    rng = np.random.default_rng(61)
    x = rng.random((4, 2, 3, 3))
    x[1] *= 5
    x[2] -= 3
    x[3] = 0.7                                   # constant image: sigma 0
    flat = x.reshape(4, -1)
    expected = 0.2 * (flat.max(axis=1) - flat.min(axis=1))
    got = expect_array(ex.noise_stdevs(x, 0.2), "noise_stdevs(x, 0.2)", (4,), np.float64)
    hint = "max and min of each image, not of the whole batch" if matches(got, 0.2 * np.ptp(x) * np.ones(4)) else None
    expect_close(got, expected, "noise_stdevs(x, 0.2)", hint=hint)
    got = expect_array(ex.noise_stdevs(x.astype(np.float32), 0.1), "noise_stdevs of float32 images", (4,), np.float64)
    expect_close(got, expected / 2, "noise_stdevs(x, 0.1) of float32 images", rtol=1e-6)


@exercise("06.2", "SmoothGrad average", ["smoothgrad"],
          hint="sigma_i = noise_level * range of image i; average the gradients of n noisy copies (divide by n)")
def check_smoothgrad(ex):
    from .. import methods as M

    rng = np.random.default_rng(62)
    model, x, target = mlp(62), rng.random((2, 1, 4, 4)), np.array([0, 2])
    got = as_array(ex.smoothgrad(model, x, target, n=3, noise_level=0.0, seed=0), "SmoothGrad")
    vanilla = M.vanilla_gradient(model, x, target)
    hint = "the result is n times too big: average the n maps, sum / n" if matches(got, 3 * vanilla) else None
    expect_close(got, vanilla, "SmoothGrad at noise level 0 (must equal the gradient)", atol=1e-12, rtol=1e-12,
                 hint=hint)
    linear = mlp(63, sizes=(16, 3))
    weight = linear["fc1"].weight.numpy()
    got = as_array(ex.smoothgrad(linear, x, target, n=4, noise_level=0.3, seed=1), "SmoothGrad")
    expected = weight[target].reshape(x.shape)
    hint = "average over the n samples: sum / n" if matches(got, 4 * expected) else None
    expect_close(got, expected, "SmoothGrad of a linear model (must be W[target] for any noise)", atol=1e-12, hint=hint)

    # dS_k/dx = (k+1) x^2, so on a black pixel E[M] = (k+1) sigma^2: measure sigma per image.
    x = np.zeros((2, 1, 8, 8))
    x[0, 0, 3, 4], x[1, 0, 5, 2] = 0.5, 4.0                         # ranges 0.5 and 4
    n, level, target = 50, 0.2, np.array([0, 2])
    got = expect_array(ex.smoothgrad(Cubic(64), x, target, n=n, noise_level=level, seed=3),
                       "SmoothGrad", x.shape, np.float64)
    black = (x == 0).reshape(2, -1)
    measured = np.array([got[i].reshape(-1)[black[i]].mean() / (target[i] + 1) for i in range(2)])
    expected = (level * np.array([0.5, 4.0])) ** 2
    ratio = measured / expected
    if np.all((0.8 < ratio) & (ratio < 1.2)):
        return
    if np.all(np.abs(ratio / n - 1) < 0.2):
        hint = "the result is n times too big: average the n maps, sum / n"
    elif abs(ratio[0] / 64 - 1) < 0.2 and abs(ratio[1] - 1) < 0.2:
        hint = "sigma must come from each image's own range, not the whole batch's"
    elif np.all(np.abs(measured / level ** 2 - 1) < 0.2):
        hint = "sigma = noise_level * (max - min) of the image, not noise_level itself"
    elif np.all(np.abs(measured / expected ** 2 - 1) < 0.2):
        hint = "the noise's standard deviation came out as sigma^2: scale standard normals by sigma, not sigma^2"
    else:
        hint = None
    raise Mismatch(f"the noise is wrong: E[M] on black pixels implies sigma^2 = {measured.round(4).tolist()} for "
                   f"images of range [0.5, 4.0] at noise level {level}, expected {expected.round(4).tolist()}",
                   hint)


# ------------------------------------------------------------------------------ lesson 07

@exercise("07.1", "Integrated Gradients, right Riemann sum", ["integrated_gradients"],
          hint="alpha_k = k/m for k = 1..m (not 0..m-1); mean of the m gradients times (x - baseline)")
def check_integrated_gradients(ex):
    from .. import methods as M

    rng = np.random.default_rng(71)
    relu_net = mlp(71, sizes=(16, 12, 3), activation=nn.ReLU, bias=False)
    x, target = rng.random((2, 1, 4, 4)), np.array([1, 2])
    x_times_gradient = x * M.vanilla_gradient(relu_net, x, target)
    for steps in (1, 4):
        got = expect_array(ex.integrated_gradients(relu_net, x, target, steps=steps), f"IG with steps={steps}",
                           x.shape, np.float64)
        hint = None
        if matches(got, (steps - 1) / steps * x_times_gradient):
            hint = "that is the LEFT Riemann sum (alpha = 0 .. (m-1)/m): use alpha = 1/m .. 1"
        expect_close(got, x_times_gradient, f"IG (steps={steps}) of a bias-free ReLU net with a zero baseline "
                     f"(must equal x * gradient exactly)", hint=hint)

    model = mlp(72)
    baseline = 0.3 * rng.random((2, 1, 4, 4))
    got = as_array(ex.integrated_gradients(model, x, target, baseline=baseline, steps=6), "IG")
    hint = None
    for rule in ("left", "middle", "trapezoid"):
        if matches(got, M.integrated_gradients(model, x, target, baseline=baseline, steps=6, rule=rule)):
            hint = f"that is the {rule} rule: the right rule evaluates at alpha = k/m, k = 1..m, weights 1/m"
    expected = M.integrated_gradients(model, x, target, baseline=baseline, steps=6, rule="right")
    expect_close(got, expected, "IG of a tanh MLP with a nonzero baseline (steps=6)", hint=hint)

    got = as_array(ex.integrated_gradients(model, x, target, steps=300), "IG")
    gap = target_logits(model, x, target) - target_logits(model, np.zeros_like(x), target)
    total = got.reshape(2, -1).sum(axis=1)
    if np.any(np.abs(total - gap) > 0.01 * np.abs(gap)):
        raise Mismatch(f"completeness fails: sum(IG) = {total.round(5).tolist()} but S(x) - S(baseline) = "
                       f"{gap.round(5).tolist()} (steps=300)", hint="multiply the average gradient by (x - baseline)")


@exercise("07.2", "guided backprop's ReLU rule", ["guided_relu"],
          hint="keep R only where R > 0 (F.relu(R)) AND where z > 0 (self.mask, as a Tensor of R's dtype)")
def check_guided_relu(ex):
    rng = np.random.default_rng(72)
    W, x = rng.standard_normal((6, 5)), rng.standard_normal(5)
    v = np.abs(rng.standard_normal(6)) * np.array([1, -1, 1, -1, 1, -1])   # both signs of R
    z = W @ x
    expect_close(ex.guided_relu(Tensor(z)), np.maximum(z, 0), "guided_relu(z) (forward)")
    got = input_gradient(lambda t: ex.guided_relu(F.matmul(t, Tensor(W.T))) * Tensor(v), x[None])[0]
    hint = None
    if matches(got, W.T @ np.maximum(v, 0)):
        hint = "the forward mask (z > 0) is ignored: that is deconvnet's rule"
    elif matches(got, W.T @ ((z > 0) * v)):
        hint = "negative gradients pass: that is the plain gradient's rule"
    expect_close(got, W.T @ ((z > 0) * np.maximum(v, 0)), "the guided gradient of v . relu(W x) "
                 "(must be W^T((Wx > 0) * relu(v)))", hint=hint)

    W1, W2, v2 = rng.standard_normal((5, 8)), rng.standard_normal((8, 6)), rng.standard_normal(6)
    xs = rng.standard_normal((4, 5))

    def net(relu):
        return lambda t: relu(F.matmul(relu(F.matmul(t, Tensor(W1))), Tensor(W2))) * Tensor(v2)

    got = input_gradient(net(ex.guided_relu), xs)
    with F.relu_rule("guided"):
        expected = input_gradient(net(F.relu), xs)
    expect_close(got, expected, "guided backprop through a two-layer ReLU net (compared with minisg's)")


# ------------------------------------------------------------------------------ lesson 10

def activations(rng, shape, zeros=0.3):
    """A >= 0 with some exact zeros, like a ReLU output."""
    return rng.random(shape) * (rng.random(shape) > zeros)


@exercise("10.1", "Grad-CAM++ alpha", ["gradcampp_alpha"],
          hint="S_k = A.sum(axis=(2, 3), keepdims=True); alpha = g^2 / (2 g^2 + S_k g^3) where g > 0, else 0")
def check_gradcampp_alpha(ex):
    from ..methods import gradcampp_alpha

    rng = np.random.default_rng(101)
    A, g = activations(rng, (2, 3, 4, 4)), rng.standard_normal((2, 3, 4, 4))
    got = expect_array(ex.gradcampp_alpha(A, g), "alpha", A.shape, np.float64)
    mixed = 2 * g ** 2 + (A * g ** 3).sum(axis=(2, 3), keepdims=True)
    hint = None
    if matches(got, np.where(g > 0, g ** 2 / np.where(g > 0, mixed, 1), 0)):
        hint = "that is the mixed-index bug sum_ab A_ab g_ab^3: use S_k g_ij^3 with S_k = sum_ab A_ab"
    if not np.all(np.isfinite(got)):
        raise Mismatch("alpha holds NaN or inf", hint="divide only where g > 0 (use a safe denominator elsewhere)")
    if np.any(got[g <= 0] != 0):
        raise Mismatch(f"alpha is not 0 where g <= 0 ({int((got[g <= 0] != 0).sum())} elements)",
                       hint="alpha = np.where(g > 0, ..., 0)")
    if np.any(got[g > 0] <= 0) or np.any(got[g > 0] > 0.5 + 1e-12):
        raise Mismatch(f"alpha leaves (0, 1/2] where g > 0 (range {got[g > 0].min():.4g} .. {got[g > 0].max():.4g})",
                       hint=hint or "with A >= 0 the denominator 2 g^2 + S_k g^3 is at least 2 g^2")
    expect_close(got, gradcampp_alpha(A, g ** 2, g ** 3, where=g > 0), "alpha", hint=hint)

    v = np.array([0.7, -0.4, 1.3])             # a GAP head: g = v_k / (h w) everywhere in channel k
    g_gap = np.broadcast_to(v.reshape(1, 3, 1, 1) / 16, A.shape)
    expected = np.broadcast_to(np.where(v > 0, 1 / (2 + v * A.mean(axis=(2, 3))), 0)[:, :, None, None], A.shape)
    expect_close(ex.gradcampp_alpha(A, g_gap), expected, "alpha of a GAP head (must be 1 / (2 + v_k mean(A^k)))")
    got = ex.gradcampp_alpha(A.astype(np.float32), g.astype(np.float32))
    expect_array(got, "alpha of float32 arrays", dtype=np.float32)


def head_gradients(head, A, target):
    At = Tensor(A, requires_grad=True)
    (g,) = grad(head(At)[np.arange(len(A)), target].sum(), At)
    return g.numpy()


@exercise("10.2", "Grad-CAM++ channel weights", ["gradcampp_weights"],
          hint="w_k = sum over (i, j) of alpha * relu(g): reuse your gradcampp_alpha and np.maximum(g, 0)")
def check_gradcampp_weights(ex):
    from .. import methods as M

    rng = np.random.default_rng(102)
    A, target = activations(rng, (2, 4, 3, 3)), np.array([0, 2])
    gap = nn.Sequential(("gap", nn.GlobalAvgPool2d()), ("fc", nn.Linear(4, 3, rng=rng, dtype=np.float64)))
    v = gap["fc"].weight.numpy()[target]                                         # (N, K)
    g = head_gradients(gap, A, target)
    got = expect_array(ex.gradcampp_weights(A, g), "w", (2, 4), np.float64)
    hint = "that is Grad-CAM's weight (mean of g)" if matches(got, g.mean(axis=(2, 3))) else None
    expect_close(got, np.maximum(v, 0) / (2 + v * A.mean(axis=(2, 3))),
                 "w of a GAP head (must be relu(v_k) / (2 + v_k mean(A^k)))", hint=hint)

    linear = nn.Sequential(("flatten", nn.Flatten()), ("fc", nn.Linear(36, 3, rng=rng, dtype=np.float64)))
    V = linear["fc"].weight.numpy()[target].reshape(A.shape)
    layer_sums = A.sum(axis=(2, 3), keepdims=True)
    expected = np.where(V > 0, V / (2 + np.abs(V) * layer_sums), 0).sum(axis=(2, 3))
    expect_close(ex.gradcampp_weights(A, head_gradients(linear, A, target)), expected,
                 "w of a linear head S = sum V A (must be sum over V > 0 of V / (2 + V S_k))")

    # the whole map, against minisg's Grad-CAM++ on a ReLU layer with a piecewise-linear head
    model = nn.Sequential(("relu2", nn.ReLU()), ("flatten", nn.Flatten()),
                          ("fc1", nn.Linear(36, 5, rng=rng, dtype=np.float64)), ("relu3", nn.ReLU()),
                          ("fc2", nn.Linear(5, 3, rng=rng, dtype=np.float64)))
    x = rng.standard_normal((2, 4, 3, 3))
    A = np.maximum(x, 0)
    _, head = model.split("relu2")
    w = as_array(ex.gradcampp_weights(A, head_gradients(head, A, target)), "w")
    cam = np.maximum((w[:, :, None, None] * A).sum(axis=1), 0)
    expect_close(cam, M.gradcam_pp(model, x, target, layer="relu2", upsample=False),
                 "the map relu(sum_k w_k A^k) made from your weights (compared with minisg's gradcam_pp)")


# ------------------------------------------------------------------------------ lesson 11

def gradient_samples(rng, shape, n=8):
    """n gradient samples (n, *shape) scattered around a common mean. At position (0, 0) of every
    channel seven are small and positive and one is large and negative: m1 > 0 but m3 < 0, so
    2 m2 + S_k m3 < 0 once S_k > 0.82 -- the case where alpha must be set to 0."""
    samples = rng.standard_normal(shape) + rng.standard_normal((n,) + shape)
    samples[..., 0, 0] = np.array([0.5] * (n - 1) + [-3.0]).reshape((n,) + (1,) * (len(shape) - 2))
    return samples


@exercise("11.1", "Smooth Grad-CAM++ weights", ["smooth_gradcampp_weights"],
          hint="m1, m2, m3 = means over axis 0 of g, g^2, g^3; alpha = m2 / (2 m2 + S_k m3) (0 where m2 == 0 "
               "or the denominator <= 0); w = sum alpha * relu(m1)")
def check_smooth_gradcampp_weights(ex):
    from ..methods import gradcampp_alpha

    def weights(A, m1, m2, m3, numerator=None):
        alpha = gradcampp_alpha(A, m2, m3, where=m2 > 0)
        if numerator is not None:                                  # alpha = numerator / (2 m2 + S_k m3)
            alpha = alpha * np.where(m2 > 0, numerator / np.where(m2 > 0, m2, 1), 0)
        return (alpha * np.maximum(m1, 0)).sum(axis=(2, 3))

    def check(A, samples, what):
        m1, m2, m3 = (np.mean(samples ** p, axis=0) for p in (1, 2, 3))
        got = expect_array(ex.smooth_gradcampp_weights(A, samples), what, A.shape[:2], np.float64)
        layer_sums = A.sum(axis=(2, 3), keepdims=True)
        unguarded = (m2 / np.where(m2 > 0, 2 * m2 + layer_sums * m3, 1) * np.maximum(m1, 0)).sum(axis=(2, 3))
        mistakes = [
            (weights(A, m1, m2, m3, numerator=m1), "m1 in alpha's numerator is the paper's typo: the numerator is m2"),
            (np.mean([weights(A, s, s ** 2, s ** 3) for s in samples], axis=0),
             "you averaged Grad-CAM++ over the samples: average the derivatives g, g^2, g^3 first"),
            (weights(A, samples[-1], samples[-1] ** 2, samples[-1] ** 3),
             "you used one sample only: average over all n"),
            (unguarded, "set alpha to 0 where the denominator 2 m2 + S_k m3 is <= 0 (m3 can be negative)"),
        ]
        hint = next((text for wrong, text in mistakes if matches(got, wrong)), None)
        expect_close(got, weights(A, m1, m2, m3), what, hint=hint)

    rng = np.random.default_rng(111)
    A = 3 * activations(rng, (2, 3, 4, 4))          # big S_k: the sign of m3 decides the denominator's
    g = rng.standard_normal((1, 2, 3, 4, 4))
    check(A, g, "w with one sample (must equal Grad-CAM++)")
    check(A, np.repeat(g, 5, axis=0), "w with 5 identical samples (a head linear in A: must equal Grad-CAM++)")
    check(A, gradient_samples(rng, (2, 3, 4, 4)), "w with 8 different samples, some with m3 < 0")


# ------------------------------------------------------------------------------ lesson 12

@exercise("12.1", "relevance mass", ["relevance_mass"],
          hint="r = max(channel sum, 0); sum(r * mask) / sum(r) per image, 0 when sum(r) == 0")
def check_relevance_mass(ex):
    from ..evaluation import metrics

    rng = np.random.default_rng(121)
    maps = rng.standard_normal((4, 2, 5, 5))
    maps[2] = -np.abs(maps[2])                   # no positive relevance at all: score 0
    masks = rng.random((4, 5, 5)) > 0.6
    masks[:, 2, 2] = True
    got = expect_array(ex.relevance_mass(maps, masks), "relevance_mass", (4,), np.float64)
    if np.isnan(got[2]):
        raise Mismatch("an image with no positive relevance scored NaN", hint="return 0 where sum(r) == 0")
    expect_close(got, metrics.relevance_mass(maps, masks), "relevance_mass of (N, C, H, W) maps")
    flat_maps = rng.standard_normal((4, 5, 5))
    expect_close(ex.relevance_mass(flat_maps, masks), metrics.relevance_mass(flat_maps, masks),
                 "relevance_mass of (N, H, W) maps")


@exercise("12.2", "deletion curve", ["deletion_curve"],
          hint="order = np.argsort(-channel_sum, kind='stable'); after step s zero the first (s*P)//steps "
               "pixels in every channel; score = softmax probability of the target")
def check_deletion_curve(ex):
    from ..evaluation import metrics

    rng = np.random.default_rng(122)
    model, x, target = mlp(122, sizes=(18, 10, 4)), rng.random((2, 2, 3, 3)), np.array([1, 3])
    ties = np.zeros((2, 3, 3))
    ties[0, 1, 1], ties[1, 0, 2] = 1.0, -1.0      # everything else tied: row-major order
    cases = [(rng.standard_normal((2, 2, 3, 3)), 9), (rng.standard_normal((2, 2, 3, 3)), 4), (ties, 4)]
    for maps, steps in cases:
        fractions, scores = metrics.deletion_curve(model, x, maps, target, steps=steps)
        answer = ex.deletion_curve(model, x, maps, target, steps)
        if not isinstance(answer, tuple) or len(answer) != 2:
            raise Mismatch("deletion_curve must return a pair (fractions, scores)")
        what = f"for maps of shape {maps.shape} and steps={steps}"
        expect_close(answer[0], fractions, f"the fractions {what}")
        got = as_array(answer[1], "scores")
        ascending = metrics.deletion_curve(model, x, -maps, target, steps=steps)[1]
        hint = "you removed the LEAST relevant pixels first" if matches(got, ascending) and maps is not ties else None
        expect_close(got, scores, f"the scores {what}", hint=hint)


# ------------------------------------------------------------------------------ running the checks

def parse_number(number):
    """("01", None) for a lesson, ("01", "01.2") for one exercise; UsageError when unknown."""
    text = str(number).strip()
    found = re.fullmatch(r"(\d{1,2})(?:\.(\d+))?", text)
    if not found:
        raise UsageError(f"{text!r} is not an exercise number: give a lesson (01) or one exercise (01.2)")
    lesson = f"{int(found.group(1)):02d}"
    if lesson not in EXERCISES:
        raise UsageError(f"lesson {lesson} has no graded exercises; available: {', '.join(sorted(EXERCISES))}")
    only = None if found.group(2) is None else f"{lesson}.{int(found.group(2))}"
    known = [e.number for e in EXERCISES[lesson]]
    if only is not None and only not in known:
        raise UsageError(f"there is no exercise {only}; lesson {lesson} has {', '.join(known)}")
    return lesson, only


def default_places():
    """Where the student's file is looked for when no --file is given, in this order."""
    cwd = Path.cwd()
    places = []
    for place in (cwd, cwd / "lessons" / "exercises", files.exercise_stubs()):
        if place not in places:
            places.append(place)
    return places


def exercise_file(lesson, file=None):
    """The student's file: `file` if given, else the first exNN_*.py in the current folder, then
    in lessons/exercises/ under it, then the stubs that come with minisg."""
    if file is not None:
        path = Path(file)
        if not path.is_file():
            raise UsageError(f"no such file: {file}")
        return path
    pattern = f"ex{lesson}_*.py"
    places = default_places()
    for place in places:
        found = sorted(path for path in place.glob(pattern) if path.is_file())
        if found:
            return found[0]
    where = ", ".join(str(place) for place in places[:-1]) + f" or {places[-1]}"
    raise UsageError(f"no file {pattern} in {where}; `minisg exercises {lesson}` copies the stubs into "
                     f"the current directory, or pass --file PATH")


# ------------------------------------------------------------------------------ copying the stubs

def lessons_with_stubs():
    """The lessons ("01", ...) whose exercise stubs come with minisg."""
    found = (re.match(r"ex(\d\d)_.*\.py$", path.name) for path in files.exercise_stubs().glob("ex*_*.py"))
    return sorted({match.group(1) for match in found if match})


def copy_stubs(lesson, dest=None):
    """Copy lesson `lesson`'s stubs exNN_*.py into the folder `dest` (default: the current one)
    and return the paths written (``minisg exercises NN [--dest DIR]``).

    Never overwrites: when a file of that name is already there, nothing is copied and a
    UsageError names it. Each copy appears whole or not at all (a temporary file, hard-linked
    to its name; the link fails when the name exists, even one made a moment ago).
    """
    text = str(lesson).strip()
    found = re.fullmatch(r"(\d{1,2})(?:\.\d+)?", text)
    number = f"{int(found.group(1)):02d}" if found else None
    sources = sorted(files.exercise_stubs().glob(f"ex{number}_*.py")) if number else []
    if not sources:
        what = f"lesson {number}" if number else repr(text)
        raise UsageError(f"{what} has no exercises; lessons with exercises: {', '.join(lessons_with_stubs())}")
    dest = Path.cwd() if dest is None else Path(dest)
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"{dest} is a file, not a folder")
    targets = [dest / source.name for source in sources]
    existing = [target for target in targets if os.path.lexists(target)]
    if existing:
        raise UsageError(_refusal(existing))
    written, current = [], dest
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for source, current in zip(sources, targets):
            if not _copy_new(source, current):
                raise FileExistsError(current)
            written.append(current)
    except BaseException as error:
        for path in written:  # all or nothing
            path.unlink(missing_ok=True)
        if isinstance(error, FileExistsError):
            raise UsageError(_refusal([current])) from None
        if isinstance(error, OSError):
            raise UsageError(f"cannot write {current}: {error.strerror or error}") from None
        raise
    return written


def _refusal(existing):
    names = ", ".join(str(path) for path in existing)
    verb, pronoun = ("exists", "it") if len(existing) == 1 else ("exist", "them")
    return (f"{names} already {verb}; nothing was copied (a copy never overwrites): move {pronoun} away "
            f"or pass another folder (--dest DIR)")


def _copy_new(source, target):
    """Copy source to the new file target; False (and nothing written) when target exists."""
    data = source.read_bytes()
    files.remove_stale_temps(target)
    temp = target.parent / f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}{files.TEMP_SUFFIX}"
    try:
        with open(temp, "xb") as handle:
            handle.write(data)
        try:
            os.link(temp, target)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: create the name exclusively instead
            try:
                with open(target, "xb") as handle:
                    handle.write(data)
            except FileExistsError:
                return False
            except BaseException:
                target.unlink(missing_ok=True)
                raise
        return True
    finally:
        temp.unlink(missing_ok=True)


# ------------------------------------------------------------------------------ checking a file

def load_exercise_file(path):
    """Execute the student's file as a fresh module (no bytecode cache: edits always count).

    It is registered in sys.modules under a private name while it is graded (dataclasses and
    the like look their module up there); the worker removes it afterwards.
    """
    name = f"minisg_exercise_{Path(path).stem}"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    code = compile(Path(path).read_text(encoding="utf-8"), str(path), "exec")
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def describe(error, path):
    """'TypeError: message (line 12, in f)' with the last line of the student's file involved."""
    text = f"{type(error).__name__}: {error}".rstrip(": ")
    if isinstance(error, SyntaxError) and error.lineno:
        return f"{type(error).__name__}: {error.msg} (line {error.lineno})"
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == str(path)]
    if frames:
        text += f" (line {frames[-1].lineno}, in {frames[-1].name})"
    return text


def exit_call(error):
    """How a SystemExit was raised: 'sys.exit(3)', 'sys.exit()'."""
    return "sys.exit()" if error.code is None else f"sys.exit({error.code!r})"


EXIT_HINT = ("the grader imports your file and calls its functions: remove the exit call (code meant to run "
             "only as a script goes under `if __name__ == \"__main__\":`)")
TIMEOUT_HINT = (f"look for a loop whose condition never changes; on a slow machine {TIME_LIMIT_VARIABLE}=SECONDS "
                f"gives each exercise more time")
CRASH_HINT = "call your function yourself on a small input to see where the process dies"


def run_one(item, module, path):
    missing = [name for name in item.names if not hasattr(module, name)]
    if missing:
        return Result(item.number, item.title, False, f"{', '.join(missing)} is not defined in {path}",
                      "keep the names of the stub file")
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            item.check(module)
    except NotImplementedError as error:
        other = re.search(r"Exercise (\d\d\.\d+)", str(error))
        needs = f" (needs Exercise {other.group(1)})" if other and other.group(1) != item.number else ""
        return Result(item.number, item.title, False, "not implemented yet" + needs, item.hint)
    except Mismatch as error:
        return Result(item.number, item.title, False, str(error), error.hint or item.hint)
    except SystemExit as error:
        return Result(item.number, item.title, False,
                      f"the file called {exit_call(error)} while running exercise {item.number}", EXIT_HINT)
    except BaseException as error:  # noqa: BLE001 -- any error of the student's code is a result
        return Result(item.number, item.title, False, f"your code raised {describe(error, path)}", item.hint)
    return Result(item.number, item.title, True)


# ------------------------------------------------------------------------------ the worker
#
# run() grades the file in a worker process: `python -u -c _WORKER_CODE` imports this module with
# the caller's sys.path and serve()s jobs. A job is one JSON line on a pipe, {"path", "cwd",
# "numbers"}; the answers are JSON lines on another pipe: {"ready": true} once started, then per
# job {"loaded": true} or {"loaded": false, "message", "hint"}, then one Result per exercise.
# Only strings and booleans cross, never the student's objects. The caller waits at most the time
# limit for each answer; on a timeout, or when the worker dies (os._exit, a crash, a kill), it
# kills the worker, writes that exercise's FAIL and grades the remaining ones in a new worker.
# The worker is kept for the next run() of the same process (starting one costs about as much as
# importing minisg, and lesson 04's checks load Numba's kernels once); after each job it puts back
# the functions, classes and modules of minisg's and NumPy's module namespaces that the student's
# file may have rebound (`F.exp = exp`), and drops the file's module.

_WORKER_CODE = ("import sys; fds = [int(fd) for fd in sys.argv[1:3]]; sys.path[:] = sys.argv[3:]; "
                "sys.argv[:] = ['minisg-check-worker']; from minisg.classroom.grading import serve; serve(*fds)")


class GraderError(RuntimeError):
    """The worker process could not be started (not the student's fault)."""


def serve(job_fd, answer_fd):
    """The worker's loop: grade each job that arrives on job_fd, answer on answer_fd."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the caller, which then kills us
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    answers = os.fdopen(answer_fd, "wb")

    def send(message):
        for stream in (sys.stdout, sys.stderr):  # the student's prints come before the results
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 -- the student may have replaced sys.stdout
                pass
        answers.write(json.dumps(message).encode() + b"\n")
        answers.flush()

    send({"ready": True})
    with os.fdopen(job_fd, "rb") as jobs:
        for line in jobs:
            _grade_job(json.loads(line), send)


def _exit_when_orphaned(parent):
    """End the worker when its caller is gone (killed while the student's code loops)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(1)


def _grade_job(job, send):
    path = job["path"]
    try:
        os.chdir(job["cwd"])  # the caller's folder: relative paths mean the same to the file
    except OSError:
        pass
    sys.argv[:] = [path]
    by_number = {e.number: e for lesson in EXERCISES.values() for e in lesson}
    items = [by_number[number] for number in job["numbers"]]
    saved = _library_state()
    module = None
    try:
        try:
            module = load_exercise_file(path)
        except SystemExit as error:
            send({"loaded": False, "message": f"the file called {exit_call(error)} while being imported",
                  "hint": EXIT_HINT})
            return
        except BaseException as error:  # noqa: BLE001
            send({"loaded": False, "message": f"{path} could not be loaded: {_describe_safely(error, path)}",
                  "hint": "fix that error, then check again"})
            return
        send({"loaded": True})
        for item in items:
            try:
                result = run_one(item, module, path)
            except BaseException as error:  # noqa: BLE001 -- e.g. an exception whose str() raises
                result = Result(item.number, item.title, False, f"your code raised {type(error).__name__}",
                                item.hint)
            send(dataclasses.asdict(result))
    finally:
        if module is not None:
            sys.modules.pop(module.__name__, None)
        _restore_library_state(saved)


def _describe_safely(error, path):
    try:
        return describe(error, path)
    except BaseException:  # noqa: BLE001
        return type(error).__name__


_RESTORED = (types.FunctionType, types.BuiltinFunctionType, type, types.ModuleType, np.ufunc)


def _library_state():
    return [(vars(module), dict(vars(module))) for name, module in list(sys.modules.items())
            if module is not None and (name in ("minisg", "numpy") or name.startswith("minisg."))]


def _restore_library_state(state):
    for namespace, saved in state:
        for key, value in saved.items():
            if isinstance(value, _RESTORED) and namespace.get(key) is not value:
                namespace[key] = value


class _Timeout(Exception):
    pass


class _Died(Exception):
    def __init__(self, status):
        super().__init__(status)
        self.status = status  # the exit status (negative: the signal), None: no sensible answer


class _Worker:
    """The caller's end of one worker process."""

    def __init__(self):
        if not sys.executable:
            raise GraderError("cannot start a worker process: sys.executable is not set")
        job_read, self._jobs = os.pipe()
        self._answers, answer_write = os.pipe()
        paths = [entry for entry in sys.path if isinstance(entry, str)]
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-u", "-c", _WORKER_CODE, str(job_read), str(answer_write), *paths],
                stdin=subprocess.DEVNULL, pass_fds=(job_read, answer_write))
        except OSError as error:
            for fd in (self._jobs, self._answers):
                os.close(fd)
            raise GraderError(f"cannot start a worker process ({sys.executable}): {error}") from None
        finally:
            os.close(job_read)
            os.close(answer_write)
        self.owner = os.getpid()
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._answers, selectors.EVENT_READ)
        self._closed = False

    def send(self, message):
        data = json.dumps(message).encode() + b"\n"
        try:
            while data:
                data = data[os.write(self._jobs, data):]
        except BrokenPipeError:
            raise _Died(self._exit_status()) from None

    def receive(self, timeout):
        """The next answer; _Timeout after `timeout` seconds, _Died when the worker is gone."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Timeout()
            if not self._selector.select(remaining):
                continue
            chunk = os.read(self._answers, 1 << 16)
            if not chunk:
                raise _Died(self._exit_status())
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            answer = json.loads(line)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise _Died(None)
        return answer

    def _exit_status(self):
        try:
            return self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # it closed its end of the pipe but runs on
            return None

    def alive(self):
        return self.owner == os.getpid() and self.process.poll() is None

    def close(self, wait=0.0):
        """Stop the worker: let it finish for up to `wait` seconds (it ends when its job pipe
        closes), then kill it. In a forked copy of the caller, only forget it."""
        if self._closed:
            return
        self._closed = True
        mine = self.owner == os.getpid()
        os.close(self._jobs)
        if mine and wait > 0:
            try:
                self.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                pass
        if mine and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._selector.close()
        os.close(self._answers)


_worker = None
_worker_lock = threading.Lock()
_atexit_registered = False


def _started_worker(limit):
    """The worker of this process, started (and waited for) if there is none."""
    global _worker, _atexit_registered
    if _worker is not None and not _worker.alive():
        _discard_worker()
    if _worker is None:
        worker = _Worker()
        try:
            worker.receive(max(TIME_LIMIT, limit))
        except (_Timeout, _Died) as error:
            worker.close()
            status = getattr(error, "status", None)
            raise GraderError("the worker process did not start"
                              + (f" (exit status {status}; its error is above)" if status is not None else "")) from None
        _worker = worker
        if not _atexit_registered:
            atexit.register(_discard_worker, 1.0)
            _atexit_registered = True
    return _worker


def _discard_worker(wait=0.0):
    global _worker
    worker, _worker = _worker, None
    if worker is not None:
        worker.close(wait)


def _stopped(error, limit, during, what):
    """The message of an exercise (or the import, `what`) that timed out or ended the worker."""
    if isinstance(error, _Timeout):
        return f"{what} took longer than {limit:g} s (time limit); an endless loop?", TIMEOUT_HINT
    status = error.status
    if status is None:
        return f"the grading process stopped answering {during}", CRASH_HINT
    if status >= 0:
        return (f"the file ended the grading process {during}: exit status {status} (os._exit({status})?)",
                EXIT_HINT)
    try:
        name, meaning = signal.Signals(-status).name, signal.strsignal(-status)
    except ValueError:
        name, meaning = f"signal {-status}", None
    if name in ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT"):
        return f"the grading process crashed {during}: {name} ({meaning})", CRASH_HINT
    extra = "; out of memory?" if name == "SIGKILL" else ""
    return f"the grading process was killed {during}: {name} ({meaning}{extra})", CRASH_HINT


def time_limit_seconds(time_limit=None):
    """`time_limit` if given, else $MINISG_CHECK_TIME_LIMIT if set, else TIME_LIMIT."""
    name, value = "time_limit", time_limit
    if value is None:
        value = os.environ.get(TIME_LIMIT_VARIABLE, "").strip()
        if not value:
            return TIME_LIMIT
        name = TIME_LIMIT_VARIABLE
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise UsageError(f"{name} must be a positive number of seconds, got {value!r}")
    return seconds


def _grade(path, items, limit):
    results, pending = [], list(items)
    while pending:  # one pass per worker: a timeout or a crash ends it, the rest go to a new one
        worker = _started_worker(limit)
        try:
            worker.send({"path": str(path), "cwd": os.getcwd(), "numbers": [e.number for e in pending]})
            loaded = worker.receive(limit)
        except (_Timeout, _Died) as error:
            _discard_worker()
            message, hint = _stopped(error, limit, "while being imported", "importing the file")
            return results + [Result(e.number, e.title, False, message, hint) for e in pending]
        if not loaded.get("loaded"):
            return results + [Result(e.number, e.title, False, str(loaded.get("message")), str(loaded.get("hint")))
                              for e in pending]
        while pending:
            item = pending.pop(0)
            try:
                answer = worker.receive(limit)
            except (_Timeout, _Died) as error:
                _discard_worker()
                message, hint = _stopped(error, limit, f"while running exercise {item.number}",
                                         f"exercise {item.number}")
                results.append(Result(item.number, item.title, False, message, hint))
                break
            results.append(Result(item.number, item.title, answer.get("passed") is True,
                                  str(answer.get("message", "")), str(answer.get("hint", ""))))
    return results


# ------------------------------------------------------------------------------ run and main

def run(number, file=None, time_limit=None):
    """Check lesson `number`'s exercises (or one exercise "NN.k"); returns a list of Results.

    Each exercise (and the import of the file) may take `time_limit` seconds (default: TIME_LIMIT,
    or $MINISG_CHECK_TIME_LIMIT when set)."""
    lesson, only = parse_number(number)
    path = exercise_file(lesson, file)
    limit = time_limit_seconds(time_limit)
    items = [e for e in EXERCISES[lesson] if only in (None, e.number)]
    with _worker_lock:
        try:
            return _grade(path, items, limit)
        except BaseException:  # Ctrl-C or an error here: never leave a worker running a job
            _discard_worker()
            raise


def main(number, file=None, time_limit=None):
    """Print one line per exercise and a summary; 0 when all pass, 1 otherwise, 2 on bad usage."""
    try:
        lesson, _ = parse_number(number)
        path = exercise_file(lesson, file)
        results = run(number, file, time_limit=time_limit)
    except UsageError as error:
        print(f"minisg check: {error}", file=sys.stderr)
        return 2
    except GraderError as error:
        print(f"minisg check: {error}", file=sys.stderr)
        return 1
    print(f"checking {path}")
    for result in results:
        print(result.line())
    passed = sum(r.passed for r in results)
    noun = "exercise passes" if len(results) == 1 else "exercises pass"
    print(f"{passed} of {len(results)} {noun}")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m minisg check", description=__doc__.splitlines()[0])
    parser.add_argument("number", help="a lesson (01) or one exercise (01.2)")
    parser.add_argument("--file", help="the file to grade (default: the first exNN_*.py in the current folder, "
                                       "then in lessons/exercises/, then the stubs that come with minisg)")
    parser.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                        help=f"for each exercise (default {TIME_LIMIT:g}, or ${TIME_LIMIT_VARIABLE})")
    arguments = parser.parse_args()
    sys.exit(main(arguments.number, arguments.file, time_limit=arguments.time_limit))
