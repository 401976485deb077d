"""Depthwise convolution in whole-array operations that NumPy and CuPy share: the GPU's version.

A depthwise filter has only KH*KW taps per channel, so the convolution is KH*KW multiply-adds
of whole arrays: tap (a, b) multiplies the strided view x_padded[:, :, a::sh, b::sw] by every
channel's weight w[:, 0, a, b]. The taps are added to zero in the fixed order (0, 0), (0, 1),
..., so every output value is summed in the same order wherever it lies: identical input
patches give bit-identical outputs, as the kernel contract asks.

No call here is CuPy-only: the module runs, and is tested, with NumPy arrays as well.
"""
from ..backend import get_array_module
from .contract import float_dtype, out_size


def _checked(array, dtype=None):
    xp = get_array_module(array)
    array = xp.ascontiguousarray(array, dtype=dtype)
    float_dtype(array)
    return array


def _check_weight(w, channels):
    if w.ndim != 4 or w.shape[:2] != (channels, 1):
        raise ValueError(f"depthwise convolution: w must have shape ({channels}, 1, KH, KW) for "
                         f"{channels} channels, got {w.shape}")


def _zero_padded(x, ph, pw):
    if ph == 0 and pw == 0:
        return x
    N, C, H, W = x.shape
    x_padded = get_array_module(x).zeros((N, C, H + 2 * ph, W + 2 * pw), x.dtype)
    x_padded[:, :, ph:ph + H, pw:pw + W] = x
    return x_padded


def _tap(array, a, b, stride, out_hw):
    """The view of the padded plane that tap (a, b) reads: element [a + i*sh, b + j*sw] for
    every output position (i, j)."""
    (sh, sw), (OH, OW) = stride, out_hw
    return array[:, :, a:a + sh * (OH - 1) + 1:sh, b:b + sw * (OW - 1) + 1:sw]


def _per_channel(w, a, b):
    """Tap (a, b) of every channel's filter, shaped to broadcast over (N, C, OH, OW)."""
    return w[:, 0, a, b].reshape(1, -1, 1, 1)


def depthwise_conv2d_forward(x, w, stride, padding):
    x = _checked(x)
    w = _checked(w, x.dtype)
    N, C, H, W = x.shape
    _check_weight(w, C)
    (kh, kw), (ph, pw) = w.shape[2:], padding
    out_hw = (out_size(H, kh, stride[0], ph), out_size(W, kw, stride[1], pw))
    x_padded = _zero_padded(x, ph, pw)
    y = get_array_module(x).zeros((N, C) + out_hw, x.dtype)
    for a in range(kh):
        for b in range(kw):
            y += _tap(x_padded, a, b, stride, out_hw) * _per_channel(w, a, b)
    return y


def depthwise_conv2d_backward_input(gy, w, input_hw, stride, padding):
    gy = _checked(gy)
    w = _checked(w, gy.dtype)
    N, C = gy.shape[:2]
    _check_weight(w, C)
    (H, W), (ph, pw) = input_hw, padding
    gx_padded = get_array_module(gy).zeros((N, C, H + 2 * ph, W + 2 * pw), gy.dtype)
    for a in range(w.shape[2]):
        for b in range(w.shape[3]):
            # += into a view: one tap's positions are distinct, so no element is added twice
            taps = _tap(gx_padded, a, b, stride, gy.shape[2:])
            taps += gy * _per_channel(w, a, b)
    return get_array_module(gy).ascontiguousarray(gx_padded[:, :, ph:ph + H, pw:pw + W])


def depthwise_conv2d_backward_weight(x, gy, kernel_hw, stride, padding):
    x = _checked(x)
    gy = _checked(gy, x.dtype)
    kh, kw = kernel_hw
    x_padded = _zero_padded(x, *padding)
    gw = get_array_module(x).empty((x.shape[1], 1, kh, kw), x.dtype)
    for a in range(kh):
        for b in range(kw):
            gw[:, 0, a, b] = (_tap(x_padded, a, b, stride, gy.shape[2:]) * gy).sum(axis=(0, 2, 3))
    return gw
