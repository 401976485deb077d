"""minisg: a small autodiff engine and the sensitivity-map methods of SmoothGrad and Smooth Grad-CAM++.

The engine sits at the top level; read it in this order:

1. ``backend.py``    — NumPy (CPU) or CuPy (GPU) arrays, chosen once per process;
2. ``autograd.py``   — Tensor, Function, backward and grad (create_graph: gradients of gradients);
3. ``functional/``   — the differentiable operations (F): elementwise, shapes, reductions, matmul,
                       losses, and the ReLU rules of Guided BackProp and Deconvnet;
4. ``conv.py``, ``pooling.py`` — conv2d (dense, grouped, depthwise) and the poolings, whose
   backward passes are Functions themselves;
5. ``kernels/``      — the loops behind conv and pooling: plain reference loops, then Numba (CPU)
                       and CuPy (GPU) versions;
6. ``nn.py``, ``optim.py`` — layers and a named Sequential; SGD and Adam;
7. ``gradcheck.py``  — finite-difference checks of first and second derivatives;
8. ``parallel.py``   — slices of a batch on all CPU cores.

Then one folder per audience, each using the engine:

- ``methods/``    — every sensitivity map of both papers (the specification: methods/METHODS.md);
- ``data/``, ``models/`` — MNIST, digit scenes and noise; the paper's CNN, checkpoints, training,
                   graph models imported from ONNX, known ImageNet networks;
- ``evaluation/`` — measures of map quality and the ``minisg evaluate`` report (researchers);
- ``classroom/``  — the lessons' helpers and the exercise grader (students and teachers);
- ``tools/``      — the ``minisg`` command line, the demo and the benchmarks.

``viz.py`` (the papers' ways of showing maps) and ``files.py`` (where files are, atomic writes)
serve all of them.

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
