"""conv2d as Functions whose backward passes are Functions too: dense, grouped and depthwise.

Convolution is bilinear in (input, weight), and so are its two gradients. The three maps

    y  = conv(x, w)                 Conv2d
    gx = conv_transpose(gy, w)      Conv2dInputGrad   (the adjoint in x)
    gw = conv_weight_grad(x, gy)    Conv2dWeightGrad  (the adjoint in w)

differentiate into one another, so any order of derivative is again made of these three. The
same holds for the depthwise convolution (every channel filtered alone, MobileNet's layers):
the three maps run either kernel family, ``conv2d`` or ``depthwise_conv2d``.

conv2d's groups split the channels into independent convolutions: groups == C is depthwise;
other groups run one dense convolution per group and concatenate the outputs (slicing and
concat are differentiable ops, so the derivatives of every order come for free). Uneven
padding (ONNX's [top, left, bottom, right]) pads the difference explicitly first.
The loops themselves live in kernels/ (Numba on the CPU, CuPy on the GPU).

max_pool2d moved to minisg/pooling.py; it is imported here too, for code that imports it from conv.
"""
from . import kernels
from .autograd import FLOAT_DTYPES, Function, Tensor, as_tensor
from .functional.operands import broadcast_to
from .functional.shapes import concat, pad, reshape
from .pooling import MaxPool2d, PoolGather, PoolScatter, max_pool2d
from .window_args import int_at_least, padding4, pair

DENSE, DEPTHWISE = "conv2d", "depthwise_conv2d"  # the kernel families (kernels/__init__.py)


class _ConvMap(Function):
    """What the three maps share: the geometry (stride, padding) and the kernel family, with
    which each builds the others in its backward."""

    def __init__(self, stride, padding, family=DENSE):
        self.stride, self.padding, self.family = stride, padding, family

    def kernel(self, array, step):
        """The family's kernel for `step` ('forward', 'backward_input', 'backward_weight') on
        the device that `array` lives on."""
        return getattr(kernels.for_array(array), f"{self.family}_{step}")

    def conv(self, x, w):
        return Conv2d(self.stride, self.padding, self.family)(x, w)

    def conv_transpose(self, gy, w, input_hw):
        return Conv2dInputGrad(input_hw, self.stride, self.padding, self.family)(gy, w)

    def weight_grad(self, x, gy, kernel_hw):
        return Conv2dWeightGrad(kernel_hw, self.stride, self.padding, self.family)(x, gy)


class Conv2d(_ConvMap):
    """y = conv(x, w): linear in x (adjoint: conv_transpose) and in w (adjoint: weight grad)."""

    def forward(self, x, w):
        return self.kernel(x, "forward")(x, w, self.stride, self.padding)

    def backward(self, gy):
        x, w = self.inputs
        need_x, need_w = self.needs_input_grad
        return (self.conv_transpose(gy, w, x.shape[2:]) if need_x else None,
                self.weight_grad(x, gy, w.shape[2:]) if need_w else None)


class Conv2dInputGrad(_ConvMap):
    """gx = conv_transpose(gy, w): linear in gy (adjoint: conv) and in w (adjoint: weight grad)."""

    def __init__(self, input_hw, stride, padding, family=DENSE):
        super().__init__(stride, padding, family)
        self.input_hw = tuple(input_hw)

    def forward(self, gy, w):
        return self.kernel(gy, "backward_input")(gy, w, self.input_hw, self.stride, self.padding)

    def backward(self, ggx):
        gy, w = self.inputs
        need_gy, need_w = self.needs_input_grad
        return (self.conv(ggx, w) if need_gy else None,
                self.weight_grad(ggx, gy, w.shape[2:]) if need_w else None)


class Conv2dWeightGrad(_ConvMap):
    """gw = weight_grad(x, gy): linear in x (adjoint: conv_transpose) and in gy (adjoint: conv)."""

    def __init__(self, kernel_hw, stride, padding, family=DENSE):
        super().__init__(stride, padding, family)
        self.kernel_hw = tuple(kernel_hw)

    def forward(self, x, gy):
        return self.kernel(x, "backward_weight")(x, gy, self.kernel_hw, self.stride, self.padding)

    def backward(self, ggw):
        x, gy = self.inputs
        need_x, need_gy = self.needs_input_grad
        return (self.conv_transpose(gy, ggw, x.shape[2:]) if need_x else None,
                self.conv(x, ggw) if need_gy else None)


def _check_operands(x, weight, groups):
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(f"conv2d: input must be (N, C, H, W) and weight (O, C/groups, KH, KW); got "
                         f"input {x.shape} and weight {weight.shape}")
    C, O = x.shape[1], weight.shape[0]
    if C % groups or O % groups:
        raise ValueError(f"conv2d: groups={groups} must divide the input channels ({C}) and the "
                         f"output channels ({O})")
    if weight.shape[1] * groups != C:
        per_group = f" ({weight.shape[1]} per group, groups={groups})" if groups > 1 else ""
        raise ValueError(f"conv2d: input has {C} channels but weight {weight.shape} expects "
                         f"{weight.shape[1] * groups}{per_group}")
    if x.dtype != weight.dtype or x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"conv2d: input and weight must share a float dtype, got {x.dtype} and {weight.dtype}")


def _even_padding(x, pads):
    """x and the (rows, cols) padding of both sides that the kernels take: what one side has
    beyond the other (ONNX's [0, 0, 1, 1] of MobileNetV2) is padded here, with zeros."""
    top, left, bottom, right = pads
    ph, pw = min(top, bottom), min(left, right)
    x = pad(x, ((0, 0), (0, 0), (top - ph, bottom - ph), (left - pw, right - pw)))
    return x, (ph, pw)


def _depthwise(x, weight, stride, padding):
    """groups == C: every input channel with its own M = O/C filters. Input channel c feeds the
    outputs c*M ... c*M + M-1, so with M > 1 each channel is repeated M times first (a
    broadcast, whose gradient sums the copies back)."""
    N, C, H, W = x.shape
    multiplier = weight.shape[0] // C
    if multiplier > 1:
        repeated = broadcast_to(reshape(x, (N, C, 1, H, W)), (N, C, multiplier, H, W))
        x = reshape(repeated, (N, C * multiplier, H, W))
    return Conv2d(stride, padding, DEPTHWISE)(x, weight)


def _grouped(x, weight, stride, padding, groups):
    """1 < groups < C: one dense convolution per group of channels, the outputs side by side."""
    c, o = x.shape[1] // groups, weight.shape[0] // groups
    outputs = [Conv2d(stride, padding)(x[:, g * c:(g + 1) * c], weight[g * o:(g + 1) * o])
               for g in range(groups)]
    return concat(outputs, axis=1)


def conv2d(x, weight, bias=None, stride=1, padding=0, groups=1):
    """2-D cross-correlation of x (N, C, H, W) with weight (O, C/groups, KH, KW), plus bias (O,).

    padding: int, (rows, cols) or (top, left, bottom, right) zeros. groups: the channels form
    `groups` independent convolutions of C/groups inputs and O/groups outputs each; groups == C
    is the depthwise convolution.
    """
    x, weight = as_tensor(x), as_tensor(weight)
    stride = pair(stride, "stride", "conv2d", 1)
    pads = padding4(padding, "conv2d")
    groups = int_at_least(groups, "groups", "conv2d", 1)
    _check_operands(x, weight, groups)
    top, left, bottom, right = pads
    if x.shape[2] + top + bottom < weight.shape[2] or x.shape[3] + left + right < weight.shape[3]:
        raise ValueError(f"conv2d: kernel {weight.shape[2:]} is larger than the input {x.shape[2:]} "
                         f"padded by (top, left, bottom, right) = {pads}")
    x, padding = _even_padding(x, pads)
    if groups == 1:
        y = Conv2d(stride, padding)(x, weight)
    elif groups == x.shape[1]:
        y = _depthwise(x, weight, stride, padding)
    else:
        y = _grouped(x, weight, stride, padding, groups)
    if bias is not None:
        bias = as_tensor(bias)
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"conv2d: bias must have shape ({weight.shape[0]},), got {bias.shape}")
        y = y + bias.reshape(1, -1, 1, 1)
    return y


__all__ = ["conv2d", "max_pool2d", "Tensor", "Conv2d", "Conv2dInputGrad", "Conv2dWeightGrad",
           "MaxPool2d", "PoolScatter", "PoolGather"]
