"""Grad-CAM++'s 1st, 2nd and 3rd derivatives of Y = exp(S) w.r.t. the activations, twice.

With g = dS/dA_i, and d2S, d3S the diagonal 2nd and 3rd derivatives of S in A_i:

    dY/dA_i     = e^S g
    d2Y/dA_i^2  = e^S (g^2 + d2S)
    d3Y/dA_i^3  = e^S (g^3 + 3 g d2S + d3S)

Both functions below return the three divided by e^S: the factor cancels in alpha, only
scales the weights, and would overflow float32 for S > 88.7.

- closed_form_derivatives assumes the head after A is piecewise linear (the MNIST net after
  relu2: max-pool, linear, ReLU, linear), so d2S = d3S = 0 almost everywhere.
- autodiff_derivatives asks the engine for the true diagonal by double and triple backward.
  On a smooth head (softplus, tanh, a softmax score) d2S != 0 and the two differ; the
  autodiff one is the right one (the tests check both against finite differences).
"""
import numpy as np

from .. import backend, parallel
from .. import functional as F
from ..autograd import Tensor, grad, no_grad
from ._common import model_xp, picked_scores


def closed_form_derivatives(g):
    """(g, g^2, g^3): dY, d2Y, d3Y over e^S when d2S = d3S = 0."""
    g2 = g * g
    return g, g2, g2 * g


def _along(derivative, directions, copies, create_graph):
    """d/dA <derivative, v> for each row's direction v (zeros where nothing depends on A)."""
    if not derivative.requires_grad:
        return Tensor(copies.xp.zeros(copies.shape, dtype=copies.dtype))
    (result,) = grad((derivative * directions).sum(), copies, create_graph=create_graph, allow_unused=True)
    return result


def autodiff_derivatives(head, A, target, batch_size=None, elements=None):
    """The exact diagonal (dY, d2Y, d3Y) / e^S at A (N, K, h, w), from the engine's backward.

    We differentiate Y~ = exp(S - S0), S0 the score at A held constant: Y~ = 1 at A (no
    overflow) and each derivative of Y~ is that of Y divided by e^S0. For element i, with
    e_i the one-hot direction:

        dY~/dA_i     = <grad Y~, e_i>
        d2Y~/dA_i^2  = <grad <grad Y~, e_i>, e_i>          (double backward: Hessian times e_i)
        d3Y~/dA_i^3  = <grad <grad <grad Y~, e_i>, e_i>, e_i>   (triple backward)

    Each row of a batch is a copy of one image's A with its own e_i; the copies do not
    interact, so one triple backward pass gives batch_size diagonal entries. That is N*K*h*w
    rows in all: exact, and affordable for small layers (relu2 of the MNIST net: 12,544 per
    image, seconds to a minute per image on a CPU). `elements` (flat indices into one
    image's A) limits the work to those entries; the results are then (N, len(elements)).
    """
    xp, count, per_image = model_xp(head), len(A), A[0].size
    wanted = np.arange(per_image) if elements is None else np.asarray(elements, dtype=np.int64).reshape(-1)
    with no_grad():
        clean_scores = backend.to_numpy(picked_scores(head(Tensor(xp.asarray(A))), target).data)
    derivatives = [np.zeros((count, len(wanted)), dtype=A.dtype) for _ in range(3)]
    for start, stop in parallel.batch_bounds(count * len(wanted), batch_size):
        rows = np.arange(start, stop)
        image, slot = rows // len(wanted), rows % len(wanted)
        element = wanted[slot]
        one_hot = np.zeros((len(rows), per_image), dtype=A.dtype)
        one_hot[np.arange(len(rows)), element] = 1
        directions = Tensor(xp.asarray(one_hot.reshape((len(rows),) + A.shape[1:])))
        copies = Tensor(xp.asarray(A[image]), requires_grad=True)
        shifted = picked_scores(head(copies), target[image]) - Tensor(xp.asarray(clean_scores[image]))
        (first,) = grad(F.exp(shifted).sum(), copies, create_graph=True, allow_unused=True)
        second = _along(first, directions, copies, create_graph=True)
        third = _along(second, directions, copies, create_graph=False)
        for out, derivative in zip(derivatives, (first, second, third)):
            flat = backend.to_numpy(derivative.data).reshape(len(rows), per_image)
            out[image, slot] = flat[np.arange(len(rows)), element]
    if elements is None:
        return tuple(d.reshape(A.shape) for d in derivatives)
    return tuple(derivatives)
