"""Every sensitivity-map method of SmoothGrad and Smooth Grad-CAM++, one call shape for all.

    from minisg import methods as M
    M.vanilla_gradient(model, x, target)     # x: (N, C, H, W) in [0, 1]; target: int, (N,) ints or None

Pixel methods return a NumPy array shaped like x; CAM methods return (N, H, W) maps at the
input resolution (or the layer's with upsample=False), unnormalised unless normalize=True.
Any minisg Module works; CAM methods read their layer through Module.run_with_taps, so
layer= is a tap name ("relu2", "block.relu", a graph model's tensor name), and None is the
model's default_cam_layer or else its last layer with a 4-D output (METHODS.md §7).
The score is the pre-softmax logit; target None is the clean input's predicted class, held
fixed for every noisy or path sample. The model runs in eval mode (its flags are restored),
and maps are computed in the model's dtype. Every argument is checked before any work, with one
error naming it; x is checked against model.input_shape, and values outside model.input_range
give a warning (METHODS.md §0, "Checks").

METHODS maps a name to each function (for the command line and the demos).
"""
from .gradcam import gradcam, gradcam_pp, gradcampp_alpha
from .gradcam_derivatives import autodiff_derivatives, closed_form_derivatives, tapped_autodiff_derivatives
from .gradients import gradient_x_input, vanilla_gradient
from .guided import deconvnet, guided_backprop, guided_gradcam
from .integrated_gradients import integrated_gradients, path_points_and_weights
from .occlusion import occlusion
from .smooth_gradcam_pp import selection_mask, smooth_gradcam_pp
from .smoothgrad import smoothgrad

PIXEL_METHODS = {
    "vanilla": vanilla_gradient,
    "gradient_x_input": gradient_x_input,
    "integrated_gradients": integrated_gradients,
    "smoothgrad": smoothgrad,
    "guided_backprop": guided_backprop,
    "deconvnet": deconvnet,
    "guided_gradcam": guided_gradcam,
    "occlusion": occlusion,
}
CAM_METHODS = {
    "gradcam": gradcam,
    "gradcam_pp": gradcam_pp,
    "smooth_gradcam_pp": smooth_gradcam_pp,
}
METHODS = {**PIXEL_METHODS, **CAM_METHODS}

__all__ = [
    "vanilla_gradient", "gradient_x_input", "integrated_gradients", "smoothgrad",
    "guided_backprop", "deconvnet", "guided_gradcam", "gradcam", "gradcam_pp",
    "smooth_gradcam_pp", "occlusion", "METHODS", "PIXEL_METHODS", "CAM_METHODS",
    "path_points_and_weights", "gradcampp_alpha", "closed_form_derivatives",
    "autodiff_derivatives", "tapped_autodiff_derivatives", "selection_mask",
]
