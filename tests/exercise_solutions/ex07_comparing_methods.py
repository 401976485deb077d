"""A reference solution, for the tests of `minisg check` (students: solve the stub yourself).
The stub lessons/exercises/ex07_comparing_methods.py is made from this file:
edit here, then run `python -m minisg.classroom.stubs`.

Lesson 07 exercises: Integrated Gradients and guided backprop.

Integrated Gradients (Sundararajan et al. 2017) integrates the gradient along the straight
path from a baseline x' to x. The paper's right Riemann sum with m steps:

    IG_i(x) = (x_i - x'_i) * (1/m) * sum_{k=1..m} dS_c/dx_i (x' + (k/m) (x - x')).

It is complete in the limit: sum_i IG_i -> S_c(x) - S_c(x').

Guided backprop (Springenberg et al. 2015) changes one thing: the ReLU's backward rule.
With R the gradient arriving at a ReLU's output and z its forward input,

    gradient:        (z > 0) * R
    guided backprop: (z > 0) * (R > 0) * R
    deconvnet:                 (R > 0) * R

    07.1  integrated_gradients   the right Riemann sum, batched
    07.2  GuidedReLU.backward    the guided rule as a minisg Function

Grade your answers with ``minisg check 07``.
"""
import numpy as np

from minisg import Function, Tensor
from minisg import functional as F
from minisg import methods as M


def integrated_gradients(model, x, target, baseline=None, steps=50):
    """Exercise 07.1: IG of the target logit with the RIGHT Riemann sum.

    model: minisg Module (N, C, H, W) -> logits (N, K); x: (N, C, H, W) NumPy array in the
    model's dtype; target: (N,) ints; baseline: None (zeros, the black image) or an array
    broadcastable to x; steps: m.
    Return a NumPy array shaped like x, dtype of x.
    Hint: the path points are alpha_k = k/m for k = 1..m (alpha = 1 is x itself, alpha = 0,
    the baseline, is NOT used). Stack all N*m points into one (N*m, C, H, W) array, get their
    gradients with ``M.vanilla_gradient(model, points, np.repeat(target, m))`` (or your 04.1),
    average over the m points of each image and multiply by (x - baseline).
    """
    # --- solution 07.1
    baseline = np.zeros_like(x) if baseline is None else np.broadcast_to(baseline, x.shape).astype(x.dtype)
    alphas = np.arange(1, steps + 1) / steps                           # right rule: k/m, k = 1..m
    path = baseline[:, None] + alphas.reshape(1, -1, 1, 1, 1) * (x - baseline)[:, None]
    path = path.reshape((-1,) + x.shape[1:]).astype(x.dtype)
    gradients = M.vanilla_gradient(model, path, np.repeat(target, steps))
    average = gradients.reshape((len(x), steps) + x.shape[1:]).mean(axis=1)
    return ((x - baseline) * average).astype(x.dtype)
    # --- end solution


class GuidedReLU(Function):
    """relu(z) forward; guided backprop's rule backward."""

    def forward(self, z):
        self.mask = z > 0            # where the unit was on (a constant of the graph)
        return z * self.mask

    def backward(self, R):
        """Exercise 07.2: the gradient that guided backprop sends back through a ReLU.

        R: Tensor, the gradient arriving at the output (shape of z).
        Return a Tensor of z's shape: R where z > 0 AND R > 0, else 0.
        Hint: ``F.relu(R)`` keeps the positive signal; ``Tensor(self.mask.astype(R.dtype))``
        is the forward mask as a constant Tensor of R's dtype. You need both.
        """
        # --- solution 07.2
        return F.relu(R) * Tensor(self.mask.astype(R.dtype))
        # --- end solution


def guided_relu(z):
    return GuidedReLU()(z)
