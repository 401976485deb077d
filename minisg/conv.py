"""conv2d and max_pool2d as Functions whose backward passes are Functions too.

Convolution is bilinear in (input, weight), and so are its two gradients. The three maps

    y  = conv(x, w)                 Conv2d
    gx = conv_transpose(gy, w)      Conv2dInputGrad   (the adjoint in x)
    gw = conv_weight_grad(x, gy)    Conv2dWeightGrad  (the adjoint in w)

differentiate into one another, so any order of derivative is again made of these three.
Max-pooling routes each window's gradient to the argmax recorded in forward (the first
maximum in row-major order on ties): the backward is a scatter with those indices, whose own
backward is the gather with the same indices, and the gather's backward is the scatter.
The loops themselves live in kernels/ (Numba on the CPU, CuPy on the GPU).
"""
from . import kernels
from .autograd import FLOAT_DTYPES, Function, Tensor, as_tensor


def _pair(value, name, op, minimum):
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= minimum for v in pair):
        raise ValueError(f"{op}: {name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return pair


class _ConvMap(Function):
    """What the three maps share: the geometry (stride, padding), with which each builds the
    others in its backward."""

    def __init__(self, stride, padding):
        self.stride, self.padding = stride, padding

    def conv(self, x, w):
        return Conv2d(self.stride, self.padding)(x, w)

    def conv_transpose(self, gy, w, input_hw):
        return Conv2dInputGrad(input_hw, self.stride, self.padding)(gy, w)

    def weight_grad(self, x, gy, kernel_hw):
        return Conv2dWeightGrad(kernel_hw, self.stride, self.padding)(x, gy)


class Conv2d(_ConvMap):
    """y = conv(x, w): linear in x (adjoint: conv_transpose) and in w (adjoint: weight grad)."""

    def forward(self, x, w):
        return kernels.for_array(x).conv2d_forward(x, w, self.stride, self.padding)

    def backward(self, gy):
        x, w = self.inputs
        need_x, need_w = self.needs_input_grad
        return (self.conv_transpose(gy, w, x.shape[2:]) if need_x else None,
                self.weight_grad(x, gy, w.shape[2:]) if need_w else None)


class Conv2dInputGrad(_ConvMap):
    """gx = conv_transpose(gy, w): linear in gy (adjoint: conv) and in w (adjoint: weight grad)."""

    def __init__(self, input_hw, stride, padding):
        super().__init__(stride, padding)
        self.input_hw = tuple(input_hw)

    def forward(self, gy, w):
        return kernels.for_array(gy).conv2d_backward_input(gy, w, self.input_hw, self.stride, self.padding)

    def backward(self, ggx):
        gy, w = self.inputs
        need_gy, need_w = self.needs_input_grad
        return (self.conv(ggx, w) if need_gy else None,
                self.weight_grad(ggx, gy, w.shape[2:]) if need_w else None)


class Conv2dWeightGrad(_ConvMap):
    """gw = weight_grad(x, gy): linear in x (adjoint: conv_transpose) and in gy (adjoint: conv)."""

    def __init__(self, kernel_hw, stride, padding):
        super().__init__(stride, padding)
        self.kernel_hw = tuple(kernel_hw)

    def forward(self, x, gy):
        return kernels.for_array(x).conv2d_backward_weight(x, gy, self.kernel_hw, self.stride, self.padding)

    def backward(self, ggw):
        x, gy = self.inputs
        need_x, need_gy = self.needs_input_grad
        return (self.conv_transpose(gy, ggw, x.shape[2:]) if need_x else None,
                self.conv(x, ggw) if need_gy else None)


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """2-D cross-correlation of x (N, C, H, W) with weight (O, C, KH, KW), plus bias (O,)."""
    x, weight = as_tensor(x), as_tensor(weight)
    stride = _pair(stride, "stride", "conv2d", 1)
    padding = _pair(padding, "padding", "conv2d", 0)
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(f"conv2d: input must be (N, C, H, W) and weight (O, C, KH, KW); got input "
                         f"{x.shape} and weight {weight.shape}")
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"conv2d: input has {x.shape[1]} channels but weight {weight.shape} expects "
                         f"{weight.shape[1]}")
    if x.dtype != weight.dtype or x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"conv2d: input and weight must share a float dtype, got {x.dtype} and {weight.dtype}")
    for axis in (0, 1):
        if x.shape[2 + axis] + 2 * padding[axis] < weight.shape[2 + axis]:
            raise ValueError(f"conv2d: kernel {weight.shape[2:]} is larger than the padded input "
                             f"{x.shape[2:]} + 2*{padding}")
    y = Conv2d(stride, padding)(x, weight)
    if bias is not None:
        bias = as_tensor(bias)
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"conv2d: bias must have shape ({weight.shape[0]},), got {bias.shape}")
        y = y + bias.reshape(1, -1, 1, 1)
    return y


class MaxPool2d(Function):
    def __init__(self, kernel, stride):
        self.kernel, self.stride = kernel, stride

    def forward(self, x):
        y, self.argmax = kernels.for_array(x).max_pool2d_forward(x, self.kernel, self.stride)
        return y

    def backward(self, gy):
        return PoolScatter(self.argmax, self.inputs[0].shape[2:])(gy)


class PoolScatter(Function):
    """Send each pooled gradient to the input element that won its window."""

    def __init__(self, argmax, input_hw):
        self.argmax, self.input_hw = argmax, tuple(input_hw)

    def forward(self, gy):
        return kernels.for_array(gy).max_pool2d_scatter(gy, self.argmax, self.input_hw)

    def backward(self, ggx):
        return PoolGather(self.argmax, self.input_hw)(ggx)


class PoolGather(Function):
    """Read the winning element of every window (the adjoint of the scatter)."""

    def __init__(self, argmax, input_hw):
        self.argmax, self.input_hw = argmax, input_hw

    def forward(self, gx):
        return kernels.for_array(gx).max_pool2d_gather(gx, self.argmax)

    def backward(self, gg):
        return PoolScatter(self.argmax, self.input_hw)(gg)


def max_pool2d(x, kernel_size, stride=None):
    """Max over kernel_size windows of (N, C, H, W), no padding; stride defaults to kernel_size."""
    x = as_tensor(x)
    kernel = _pair(kernel_size, "kernel_size", "max_pool2d", 1)
    stride = kernel if stride is None else _pair(stride, "stride", "max_pool2d", 1)
    if x.ndim != 4:
        raise ValueError(f"max_pool2d: input must be (N, C, H, W), got shape {x.shape}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"max_pool2d: needs a float32 or float64 input, got {x.dtype}")
    if x.shape[2] < kernel[0] or x.shape[3] < kernel[1]:
        raise ValueError(f"max_pool2d: window {kernel} is larger than the input plane {x.shape[2:]}")
    return MaxPool2d(kernel, stride)(x)


__all__ = ["conv2d", "max_pool2d", "Tensor"]
