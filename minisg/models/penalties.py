"""Penalties on input gradients, trained by double backprop (the SmoothGrad paper's §4 ideas).

For a batch x with true classes y and logits S, let G = dS_y/dx (one map per image):

  gradient penalty    P_grad   = mean_n  sum_i G[n, i]^2              ("the size of partial derivatives")
  smoothness penalty  P_smooth = mean_n  sum over neighbouring pixels (G[n, p] - G[n, q])^2
                                 (right and lower neighbours: "differences in partial derivatives
                                  of the class score with respect to neighboring pixels")

G is computed with create_graph=True, so the penalties are ordinary graphs whose gradients
with respect to the weights flow back through the backward pass of conv, ReLU and max-pool:
that second backward pass is double backprop.
"""
import numpy as np

from .. import functional as F
from ..autograd import Tensor, grad


def true_class_input_gradient(logits, x, labels):
    """G = d(sum_n S[n, y_n])/dx, with a graph, shaped like x."""
    score = F.getitem(logits, (np.arange(len(labels)), np.asarray(labels))).sum()
    (input_gradient,) = grad(score, x, create_graph=True)
    return input_gradient


def gradient_penalty(input_gradient):
    """mean over images of the squared L2 norm of each image's input gradient."""
    per_image = F.sum(input_gradient * input_gradient, axis=tuple(range(1, input_gradient.ndim)))
    return F.mean(per_image)


def smoothness_penalty(input_gradient):
    """mean over images of the summed squared differences between neighbouring pixels' gradients."""
    down = input_gradient[:, :, 1:, :] - input_gradient[:, :, :-1, :]
    right = input_gradient[:, :, :, 1:] - input_gradient[:, :, :, :-1]
    count = input_gradient.shape[0]
    return (F.sum(down * down) + F.sum(right * right)) * (1.0 / count)


def penalised_loss(model, images, labels, grad_weight=0.0, smooth_weight=0.0):
    """Cross-entropy plus the weighted penalties; returns (loss, logits, parts dict of floats)."""
    needs_input_gradient = grad_weight > 0 or smooth_weight > 0
    x = Tensor(images, requires_grad=needs_input_gradient)
    logits = model(x)
    loss = F.cross_entropy(logits, labels)
    parts = {}
    if needs_input_gradient:
        input_gradient = true_class_input_gradient(logits, x, labels)
        if grad_weight > 0:
            term = gradient_penalty(input_gradient)
            parts["grad_penalty"] = float(term.item())
            loss = loss + term * grad_weight
        if smooth_weight > 0:
            term = smoothness_penalty(input_gradient)
            parts["smooth_penalty"] = float(term.item())
            loss = loss + term * smooth_weight
    return loss, logits, parts
