"""Guided backprop, deconvnet and Guided Grad-CAM (METHODS.md §6 and §7).

Only the backward rule of the ReLU changes. With R the gradient arriving at a ReLU's output
and z its forward input:

    gradient          (z > 0) * R
    guided backprop   (z > 0) * (R > 0) * R
    deconvnet                   (R > 0) * R

Conv, linear and max-pool backward passes stay the true ones, so the maps are not
non-negative in input space (conv1's transpose mixes signs); the signal leaving every ReLU is.
"""
from ._checks import check_flags
from ._common import cam_layer, evaluation_mode, input_gradients, prepare
from .gradcam import gradcam


def guided_backprop(model, x, target=None, batch_size=None):
    """dS_c/dx with every ReLU passing back only positive signal, and only where z > 0."""
    with evaluation_mode(model):
        x, target = prepare(model, x, target, batch_size)
        return input_gradients(model, x, target, batch_size, rule="guided")


def deconvnet(model, x, target=None, batch_size=None):
    """dS_c/dx with every ReLU passing back relu(R), ignoring the forward mask."""
    with evaluation_mode(model):
        x, target = prepare(model, x, target, batch_size)
        return input_gradients(model, x, target, batch_size, rule="deconv")


def guided_gradcam(model, x, target=None, layer=None, normalize=False, batch_size=None):
    """Guided backprop times the Grad-CAM map upsampled to the input: GB[n, c] * L[n].

    layer as Grad-CAM's (None: the model's default_cam_layer, else its last 4-D layer).
    normalize=True uses the Grad-CAM map divided by its max (when the max is > 0).
    """
    check_flags(normalize=normalize)
    with evaluation_mode(model):
        x, target = prepare(model, x, target, batch_size)
        layer = cam_layer(model, x, layer)
        guided = input_gradients(model, x, target, batch_size, rule="guided")
        cam = gradcam(model, x, target, layer=layer, upsample=True, normalize=normalize,
                      batch_size=batch_size)
        return guided * cam[:, None]
