"""Differentiable operations (import as ``F``), each a Function: forward on arrays, backward on Tensors.

Every backward is written with these same ops, so it is differentiable again. Broadcasting
follows NumPy; a gradient is summed back to the shape of its input (sum_to). One module per
family, read in this order:

- ``operands``    — checking an op's operands; sum_to and broadcast_to;
- ``elementwise`` — add, mul, exp, tanh, sigmoid, leaky_relu, clip, relu6, ... and dropout;
- ``relu_rules``  — relu and its three backward rules (gradient, guided, deconv);
- ``shapes``      — reshape, transpose, getitem, pad, concat; to_device and cast;
- ``reductions``  — sum, mean, max;
- ``linear``      — matmul, linear, upsample_bilinear;
- ``losses``      — log_softmax, softmax, cross_entropy;
- ``normalization`` — batch_norm (inference, with running statistics).

conv2d (dense, grouped, depthwise) lives in minisg/conv.py, max_pool2d, avg_pool2d and
global_avg_pool2d in minisg/pooling.py; they are re-exported here. Importing this package
also gives Tensor its operators (a + b, a @ b, a[i], a.sum(), ...).
"""
from ..autograd import Tensor
from .elementwise import (add, clip, div, dropout, exp, leaky_relu, log, mul, neg, pow, relu6,  # noqa: A004
                          sigmoid, softplus, sub, tanh)
from .linear import linear, matmul, upsample_bilinear
from .losses import cross_entropy, log_softmax, softmax
from .normalization import batch_norm
from .operands import broadcast_to, sum_to
from .reductions import max, mean, sum  # noqa: A004 (F.sum and F.max, as torch's)
from .relu_rules import RELU_RULES, relu, relu_rule
from .shapes import cast, concat, flatten, getitem, pad, reshape, to_device, transpose
from ..conv import conv2d  # Functions over the kernels (minisg/conv.py, minisg/pooling.py)
from ..pooling import avg_pool2d, global_avg_pool2d, max_pool2d


def _attach_operators():
    T = Tensor
    T.__add__ = lambda a, b: add(a, b)
    T.__radd__ = lambda a, b: add(b, a)
    T.__sub__ = lambda a, b: sub(a, b)
    T.__rsub__ = lambda a, b: sub(b, a)
    T.__mul__ = lambda a, b: mul(a, b)
    T.__rmul__ = lambda a, b: mul(b, a)
    T.__truediv__ = lambda a, b: div(a, b)
    T.__rtruediv__ = lambda a, b: div(b, a)
    T.__neg__ = lambda a: neg(a)
    T.__pow__ = lambda a, p: pow(a, p)
    T.__matmul__ = lambda a, b: matmul(a, b)
    T.__rmatmul__ = lambda a, b: matmul(b, a)
    T.__getitem__ = lambda a, index: getitem(a, index)
    T.sum = lambda a, axis=None, keepdims=False: sum(a, axis, keepdims)
    T.mean = lambda a, axis=None, keepdims=False: mean(a, axis, keepdims)
    T.max = lambda a, axis=None, keepdims=False: max(a, axis, keepdims)
    T.reshape = lambda a, *shape: reshape(a, *shape)
    T.transpose = lambda a, *axes: transpose(a, axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else (axes or None))
    T.T = property(lambda a: transpose(a))
    T.flatten = lambda a, start_dim=1: flatten(a, start_dim)
    T.exp = lambda a: exp(a)
    T.log = lambda a: log(a)
    T.tanh = lambda a: tanh(a)
    T.relu = lambda a: relu(a)
    T.sigmoid = lambda a: sigmoid(a)


_attach_operators()

__all__ = ["Tensor", "add", "clip", "div", "dropout", "exp", "leaky_relu", "log", "mul", "neg", "pow", "relu6",
           "sigmoid", "softplus", "sub", "tanh", "linear", "matmul", "upsample_bilinear", "cross_entropy",
           "log_softmax", "softmax", "batch_norm", "broadcast_to", "sum_to", "max", "mean", "sum", "RELU_RULES",
           "relu", "relu_rule", "cast", "concat", "flatten", "getitem", "pad", "reshape", "to_device",
           "transpose", "conv2d", "avg_pool2d", "global_avg_pool2d", "max_pool2d"]
