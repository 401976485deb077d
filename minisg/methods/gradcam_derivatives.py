"""Grad-CAM++'s 1st, 2nd and 3rd derivatives of Y = exp(S) w.r.t. the activations, twice.

With g = dS/dA_i, and d2S, d3S the diagonal 2nd and 3rd derivatives of S in A_i:

    dY/dA_i     = e^S g
    d2Y/dA_i^2  = e^S (g^2 + d2S)
    d3Y/dA_i^3  = e^S (g^3 + 3 g d2S + d3S)

The functions below return the three divided by e^S: the factor cancels in alpha, only
scales the weights, and would overflow float32 for S > 88.7.

- closed_form_derivatives assumes the head after A is piecewise linear (the MNIST net after
  relu2: max-pool, linear, ReLU, linear), so d2S = d3S = 0 almost everywhere.
- autodiff_derivatives (given the head after the layer) and tapped_autodiff_derivatives
  (given the whole model and the layer's tap name; what gradcam_pp uses) ask the engine for
  the true diagonal by double and triple backward. On a smooth head (softplus, tanh, a
  softmax score) d2S != 0 and the two differ; the autodiff one is the right one (the tests
  check both against finite differences).
"""
import numpy as np

from .. import backend, parallel
from .. import functional as F
from ..autograd import Tensor, grad, no_grad
from ._checks import check_array, check_batch_size, check_indices, check_input, check_layer, check_target
from ._common import model_dtype, model_xp, picked_scores, tap_output


def closed_form_derivatives(g):
    """(g, g^2, g^3): dY, d2Y, d3Y over e^S when d2S = d3S = 0."""
    g = check_array("g", g)
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

    `head` is the part of the network after the layer (a Module or function from A to the
    logits, e.g. Sequential.split's head). We differentiate Y~ = exp(S - S0), S0 the score at
    A held constant: Y~ = 1 at A (no overflow) and each derivative of Y~ is that of Y divided
    by e^S0. For element i, with e_i the one-hot direction:

        dY~/dA_i     = <grad Y~, e_i>
        d2Y~/dA_i^2  = <grad <grad Y~, e_i>, e_i>          (double backward: Hessian times e_i)
        d3Y~/dA_i^3  = <grad <grad <grad Y~, e_i>, e_i>, e_i>   (triple backward)

    Each row of a batch is a copy of one image's A with its own e_i; the copies do not
    interact, so one triple backward pass gives batch_size diagonal entries. That is N*K*h*w
    rows in all: exact, and affordable for small layers (relu2 of the MNIST net: 12,544 per
    image, seconds to a minute per image on a CPU). `elements` (flat indices into one
    image's A) limits the work to those entries; the results are then (N, len(elements)).
    """
    if not callable(head):
        raise TypeError(f"head: expected a Module or function from A to the logits, got {head!r:.200}")
    A = check_array("A", A, ndim=4, expected="(N, K, h, w) numeric activations")
    target, batch_size = check_target(target, len(A)), check_batch_size(batch_size)
    xp = model_xp(head)

    def copies_and_scores(image):
        copies = Tensor(xp.asarray(A[image]), requires_grad=True)
        return copies, picked_scores(head(copies), target[image])

    return _diagonal_derivatives(copies_and_scores, A.shape, A.dtype, batch_size, elements)


def tapped_autodiff_derivatives(model, x, layer, target, batch_size=None, elements=None):
    """autodiff_derivatives for any model with taps (Module.run_with_taps): no head needed.

    Each row runs the whole model on a copy of its image x[n] and differentiates the score at
    the tap `layer` (whose A is the same in every copy); the backward passes stop at the tap.
    The rows' forward pass through the layers before the tap is the price of needing no head:
    at relu2 of the MNIST network it makes the call about twice as slow as
    autodiff_derivatives with Sequential.split's head.
    """
    x, layer = check_input(model, x, model_dtype(model)), check_layer(model, layer)
    target, batch_size = check_target(target, len(x)), check_batch_size(batch_size)
    xp = model_xp(model)
    with no_grad():                                                    # A's shape and dtype
        _, taps = model.run_with_taps(Tensor(xp.asarray(x[:1])), [layer])
    first = tap_output(taps, layer)

    def taps_and_scores(image):
        logits, taps = model.run_with_taps(Tensor(xp.asarray(x[image])), [layer])
        return tap_output(taps, layer), picked_scores(logits, target[image])

    shape = (len(x),) + tuple(first.shape[1:])
    return _diagonal_derivatives(taps_and_scores, shape, first.dtype, batch_size, elements)


def _diagonal_derivatives(rows_at, shape, dtype, batch_size=None, elements=None):
    """The diagonal derivatives of Y~ = exp(S - S0) for A of `shape` (N, K, h, w).

    rows_at(image) -> (A_rows, scores): for the images of a batch's rows (an index array, one
    entry per row), a tensor holding a copy of each row's image's A, requiring grad, and the
    rows' scores computed from it. S0 is each row's own score, held constant.
    """
    count, per_image = shape[0], int(np.prod(shape[1:]))
    if elements is None:
        wanted = np.arange(per_image)
    else:
        wanted = np.array(check_indices("elements", elements, per_image, "flat index"), dtype=np.int64)
    derivatives = [np.zeros((count, len(wanted)), dtype=dtype) for _ in range(3)]
    for start, stop in parallel.batch_bounds(count * len(wanted), batch_size):
        rows = np.arange(start, stop)
        image, slot = rows // len(wanted), rows % len(wanted)
        element = wanted[slot]
        copies, scores = rows_at(image)
        one_hot = np.zeros((len(rows), per_image), dtype=dtype)
        one_hot[np.arange(len(rows)), element] = 1
        directions = Tensor(copies.xp.asarray(one_hot.reshape((len(rows),) + tuple(shape[1:]))))
        shifted = scores - Tensor(scores.data)                 # S - S0: exp is 1 at A
        (first,) = grad(F.exp(shifted).sum(), copies, create_graph=True, allow_unused=True)
        second = _along(first, directions, copies, create_graph=True)
        third = _along(second, directions, copies, create_graph=False)
        for out, derivative in zip(derivatives, (first, second, third)):
            flat = backend.to_numpy(derivative.data).reshape(len(rows), per_image)
            out[image, slot] = flat[np.arange(len(rows)), element]
    if elements is None:
        return tuple(d.reshape(shape) for d in derivatives)
    return tuple(derivatives)
