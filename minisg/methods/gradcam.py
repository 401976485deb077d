"""Grad-CAM and Grad-CAM++ (METHODS.md §7 and §8).

A^k is channel k of the chosen layer's output, g = dS_c/dA. `layer` names a tap of the model
(Module.run_with_taps: a dotted submodule name, or a graph model's tensor name); None uses the
model's default_cam_layer (relu2 for the MNIST networks), else the last layer with a 4-D
output, with a warning saying which (METHODS.md §7).

    Grad-CAM:    a_k = mean_ij g^k_ij,                        L = relu(sum_k a_k A^k)
    Grad-CAM++:  alpha^k_ij = d2Y / (2 d2Y + S_k d3Y),  S_k = sum_ab A^k_ab,  Y = exp(S_c)
                 w_k = sum_ij alpha^k_ij relu(dY/dA^k_ij),    L = relu(sum_k w_k A^k)

For a piecewise-linear head alpha = g^2 / (2 g^2 + S_k g^3) (e^S cancels; see
gradcam_derivatives.py). Maps come back as (N, H, W) NumPy arrays at the input resolution
(bilinear, half-pixel centres), or at the layer's resolution with upsample=False;
normalize=True divides each map by its max when the max is > 0.
"""
import numpy as np

from .. import functional as F
from ..autograd import Tensor
from ._checks import check_array, check_broadcastable, check_choice, check_flags
from ._common import cam_layer, evaluation_mode, layer_gradients, prepare
from .gradcam_derivatives import closed_form_derivatives, tapped_autodiff_derivatives

DERIVATIVES = ("closed_form", "autodiff")


def finish_cam(cam, input_hw, upsample=True, normalize=False):
    """Upsample (N, h, w) maps to input_hw and/or divide each by its max (only when max > 0)."""
    if upsample and cam.shape[1:] != tuple(input_hw):
        cam = F.upsample_bilinear(Tensor(cam[:, None]), tuple(input_hw)).data[:, 0]
    if normalize:
        peak = cam.reshape(len(cam), -1).max(axis=1).reshape(-1, 1, 1)
        cam = np.where(peak > 0, cam / np.where(peak > 0, peak, 1), 0).astype(cam.dtype)
    return cam


def cam_from_weights(weights, A):
    """L = relu(sum_k w_k A^k) for weights (N, K) and activations (N, K, h, w)."""
    return np.maximum((weights[:, :, None, None] * A).sum(axis=1), 0)


def gradcampp_alpha(A, d2, d3, where, normalize=False):
    """alpha = d2 / (2 d2 + S_k d3) where `where` holds and the denominator is > 0, else 0.

    With A >= 0 and g > 0 the closed-form denominator 2 g^2 + S_k g^3 >= 2 g^2 > 0, and
    0 < alpha <= 1/2. normalize=True divides alpha by its spatial sum (the authors' code).
    d2, d3 and where broadcast to A's (N, K, h, w).
    """
    check_flags(normalize=normalize)
    A = check_array("A", A, ndim=4, expected="(N, K, h, w) numeric activations")
    d2, d3 = check_broadcastable("d2", d2, A.shape), check_broadcastable("d3", d3, A.shape)
    where = check_broadcastable("where", where, A.shape, kinds="b")
    layer_sums = A.sum(axis=(2, 3), keepdims=True)            # S_k, one per channel
    denominator = 2 * d2 + layer_sums * d3
    valid = where & (denominator > 0)
    alpha = np.where(valid, d2 / np.where(valid, denominator, 1), 0).astype(A.dtype)
    if normalize:
        total = alpha.sum(axis=(2, 3), keepdims=True)
        alpha = np.where(total > 0, alpha / np.where(total > 0, total, 1), 0).astype(A.dtype)
    return alpha


def gradcam(model, x, target=None, layer=None, upsample=True, normalize=False, batch_size=None):
    """Grad-CAM: channel weights are the spatial means of dS_c/dA^k (layer: see the module docstring)."""
    check_flags(upsample=upsample, normalize=normalize)
    with evaluation_mode(model):
        x, target = prepare(model, x, target, batch_size)
        layer = cam_layer(model, x, layer)
        A, g = layer_gradients(model, x, target, layer, batch_size)
        return finish_cam(cam_from_weights(g.mean(axis=(2, 3)), A), x.shape[2:], upsample, normalize)


def gradcam_pp(model, x, target=None, layer=None, derivatives="closed_form", normalize_alpha=False,
               upsample=True, normalize=False, batch_size=None):
    """Grad-CAM++ with the derivatives of Y = exp(S_c) in closed form or by autodiff.

    derivatives="autodiff" runs a triple backward per layer element (batch_size rows per
    pass, each a forward pass of the model too): exact for any head, affordable for small
    layers only.
    """
    check_choice("derivatives", derivatives, DERIVATIVES)
    check_flags(normalize_alpha=normalize_alpha, upsample=upsample, normalize=normalize)
    with evaluation_mode(model):
        x, target = prepare(model, x, target, batch_size)
        layer = cam_layer(model, x, layer)
        A, g = layer_gradients(model, x, target, layer, batch_size)
        if derivatives == "closed_form":
            d1, d2, d3 = closed_form_derivatives(g)
        else:
            d1, d2, d3 = tapped_autodiff_derivatives(model, x, layer, target, batch_size)
        alpha = gradcampp_alpha(A, d2, d3, where=d1 > 0, normalize=normalize_alpha)
        weights = (alpha * np.maximum(d1, 0)).sum(axis=(2, 3))
        return finish_cam(cam_from_weights(weights, A), x.shape[2:], upsample, normalize)
