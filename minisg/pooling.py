"""Pooling: max_pool2d and avg_pool2d (padding and ceil_mode as in PyTorch), global_avg_pool2d.

Max-pooling routes each window's gradient to the argmax recorded in forward (the first
maximum in row-major order on ties): the backward is a scatter with those indices, whose own
backward is the gather with the same indices, and the gather's backward is the scatter.

Average pooling sums each window (a depthwise convolution with a filter of ones; its adjoint
spreads every value back over its window, and the two differentiate into each other) and
divides by the window's count: all its positions, or with count_include_pad=False the input's
alone.

Padding is done by padding the input, with -inf for max (padding never wins a window) and
zeros for the sums; ceil_mode's last window, which may run past the padded input, gets more of
the same padding. The unpadded pool over that input then has exactly the windows asked for,
and an unpadded pool keeps the kernels' fast paths. The loops live in kernels/.
"""
import numpy as np

from . import kernels
from .autograd import FLOAT_DTYPES, Function, Tensor, as_tensor
from .backend import get_array_module
from .functional.reductions import mean
from .functional.shapes import pad
from .window_args import check_pool_padding, pair, padding4, pool_output_size


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


def _ones_filter(array, kernel):
    """A depthwise filter of ones for every channel of `array`: convolving with it sums windows."""
    return get_array_module(array).ones((array.shape[1], 1) + tuple(kernel), dtype=array.dtype)


class WindowSum(Function):
    """The sum of every window (no padding): a depthwise convolution with ones."""

    def __init__(self, kernel, stride):
        self.kernel, self.stride = kernel, stride

    def forward(self, x):
        ones = _ones_filter(x, self.kernel)
        return kernels.for_array(x).depthwise_conv2d_forward(x, ones, self.stride, (0, 0))

    def backward(self, gy):
        return WindowSpread(self.kernel, self.stride, self.inputs[0].shape[2:])(gy)


class WindowSpread(Function):
    """Every value added to each input position of its window (the adjoint of WindowSum)."""

    def __init__(self, kernel, stride, input_hw):
        self.kernel, self.stride, self.input_hw = kernel, stride, tuple(input_hw)

    def forward(self, gy):
        ones = _ones_filter(gy, self.kernel)
        return kernels.for_array(gy).depthwise_conv2d_backward_input(gy, ones, self.input_hw, self.stride, (0, 0))

    def backward(self, gg):
        return WindowSum(self.kernel, self.stride)(gg)


def _pool_arguments(op, x, kernel_size, stride, padding):
    """x as a float (N, C, H, W) tensor, and kernel, stride and (top, left, bottom, right) pads."""
    x = as_tensor(x)
    kernel = pair(kernel_size, "kernel_size", op, 1)
    stride = kernel if stride is None else pair(stride, "stride", op, 1)
    pads = padding4(padding, op)
    if x.ndim != 4:
        raise ValueError(f"{op}: input must be (N, C, H, W), got shape {x.shape}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{op}: needs a float32 or float64 input, got {x.dtype}")
    check_pool_padding(pads, kernel, op)
    return x, kernel, stride, pads


def _output_hw(op, x, kernel, stride, pads, ceil_mode):
    top, left, bottom, right = pads
    return (pool_output_size(x.shape[2], kernel[0], stride[0], top, bottom, ceil_mode, op),
            pool_output_size(x.shape[3], kernel[1], stride[1], left, right, ceil_mode, op))


def _padded_for_windows(x, kernel, stride, pads, out_hw, value):
    """x padded with `value` so that the unpadded pool over it has the out_hw windows asked
    for: `pads`, and at the bottom and right as far as ceil_mode's last window reaches."""
    top, left, bottom, right = pads
    (kh, kw), (sh, sw), (out_h, out_w) = kernel, stride, out_hw
    bottom = max(bottom, (out_h - 1) * sh + kh - x.shape[2] - top)
    right = max(right, (out_w - 1) * sw + kw - x.shape[3] - left)
    return pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), value)


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Max over kernel_size windows of x (N, C, H, W); stride defaults to kernel_size.

    padding: int, (rows, cols) or (top, left, bottom, right), at most half the window; padded
    positions never win. ceil_mode: a last window that runs past the end still counts, if it
    starts inside the input or the leading padding (PyTorch's rule).
    """
    x, kernel, stride, pads = _pool_arguments("max_pool2d", x, kernel_size, stride, padding)
    out_hw = _output_hw("max_pool2d", x, kernel, stride, pads, ceil_mode)
    return MaxPool2d(kernel, stride)(_padded_for_windows(x, kernel, stride, pads, out_hw, -np.inf))


def _counts_along(size, kernel, stride, before, after, count, count_include_pad):
    """How many positions each of `count` windows along one axis averages over."""
    starts = np.arange(count) * stride - before
    ends = np.minimum(starts + kernel, size + after)  # ceil_mode: clipped to the padded input
    if not count_include_pad:
        starts, ends = np.maximum(starts, 0), np.minimum(ends, size)
    return ends - starts


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Mean over kernel_size windows of x (N, C, H, W), with PyTorch's divisor.

    padding and ceil_mode as in max_pool2d. Each window is divided by the number of its
    positions inside the padded input (count_include_pad=True, PyTorch's default) or inside the
    input itself (False, ONNX AveragePool's default). A 4-tuple padding extends this naturally:
    the padded input is the input with (top, left, bottom, right) zeros around it.
    """
    x, kernel, stride, pads = _pool_arguments("avg_pool2d", x, kernel_size, stride, padding)
    out_hw = _output_hw("avg_pool2d", x, kernel, stride, pads, ceil_mode)
    sums = WindowSum(kernel, stride)(_padded_for_windows(x, kernel, stride, pads, out_hw, 0.0))
    top, left, bottom, right = pads
    rows = _counts_along(x.shape[2], kernel[0], stride[0], top, bottom, out_hw[0], count_include_pad)
    cols = _counts_along(x.shape[3], kernel[1], stride[1], left, right, out_hw[1], count_include_pad)
    return sums / Tensor(x.xp.asarray(np.outer(rows, cols), dtype=x.dtype))


def global_avg_pool2d(x):
    """The mean of every (H, W) plane: (N, C, H, W) -> (N, C, 1, 1), as ONNX GlobalAveragePool."""
    x = as_tensor(x)
    if x.ndim != 4:
        raise ValueError(f"global_avg_pool2d: input must be (N, C, H, W), got shape {x.shape}")
    return mean(x, axis=(2, 3), keepdims=True)
