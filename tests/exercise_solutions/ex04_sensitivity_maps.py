"""A reference solution, for the tests of `minisg check` (students: solve the stub yourself).
The stub lessons/exercises/ex04_sensitivity_maps.py is made from this file:
edit here, then run `python -m minisg.classroom.stubs`.

Lesson 04 exercises: the sensitivity map and how the paper displays it.

The sensitivity map of class c is the gradient of its score with respect to the input,

    M_c(x) = dS_c(x) / dx,

where S_c is the pre-softmax logit (SmoothGrad §2; a softmax probability would mix in
every other class). To show a map as an image the paper sums |M| over the colour channels
and caps outliers at the 99th percentile (SmoothGrad §3.1).

    04.1  sensitivity_map   dS_c/dx for a batch, one backward pass
    04.2  to_grayscale      |M| summed over channels, capped at the 99th percentile

Grade your answers with ``minisg check 04``.
"""
import numpy as np

import minisg
from minisg import Tensor
from minisg import functional as F


def sensitivity_map(model, x, target):
    """Exercise 04.1: M[n] = dS_{target[n]}(x[n]) / dx[n].

    model:  a minisg Module mapping an (N, C, H, W) Tensor to logits (N, K).
    x:      (N, C, H, W) NumPy array in the model's dtype.
    target: (N,) int array, the class of each image.
    Return a NumPy array shaped like x, with x's dtype.
    Hint: wrap x in ``Tensor(x, requires_grad=True)``, take the logits, pick
    ``logits[np.arange(N), target]`` and sum: the images do not interact, so one
    ``minisg.grad(score, images)`` gives every image's map at once. Use the logits, not
    softmax probabilities.
    """
    # --- solution 04.1
    images = Tensor(x, requires_grad=True)
    logits = model(images)
    score = logits[np.arange(len(x)), np.asarray(target)].sum()
    (gradient,) = minisg.grad(score, images)
    return gradient.numpy().astype(x.dtype)
    # --- end solution


def to_grayscale(maps, percentile=99):
    """Exercise 04.2: maps (N, C, H, W) -> images (N, H, W), float64, values in [0, 1].

    For each image separately: v = sum over channels of |M|; lo = v.min();
    cap = np.percentile(v, percentile); image = clip((v - lo) / (cap - lo), 0, 1).
    A flat map (cap == lo) must give zeros, not NaN.
    Hint: loop over the images, or use ``np.percentile(..., axis=..., keepdims=True)``.
    """
    # --- solution 04.2
    values = np.abs(np.asarray(maps, dtype=np.float64)).sum(axis=1)     # (N, H, W)
    out = np.zeros_like(values)
    for k, v in enumerate(values):
        lo, cap = v.min(), np.percentile(v, percentile)
        if cap > lo:
            out[k] = np.clip((v - lo) / (cap - lo), 0, 1)
    return out
    # --- end solution
