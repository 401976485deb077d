"""minisg: a small autodiff engine and the sensitivity-map methods of SmoothGrad and Smooth Grad-CAM++.

    import minisg
    from minisg import functional as F, nn, optim
    x = minisg.tensor([[1.0, 2.0]], requires_grad=True)
    (F.exp(x).sum()).backward(); x.grad
"""
__version__ = "0.1.0"

from .autograd import Function, Tensor, grad, is_grad_enabled, no_grad, set_grad_enabled, tensor
from .backend import DeviceError, get_device, gpu_available, set_device
from . import functional
from . import functional as F
from . import nn, optim
from .functional import relu_rule
from .gradcheck import GradcheckError, gradcheck, gradgradcheck

__all__ = [
    "Tensor", "Function", "tensor", "grad", "no_grad", "set_grad_enabled", "is_grad_enabled",
    "set_device", "get_device", "gpu_available", "DeviceError", "functional", "F", "nn", "optim",
    "relu_rule", "gradcheck", "gradgradcheck", "GradcheckError", "__version__",
]
