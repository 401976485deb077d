"""The hot loops of conv2d and max_pool2d: arrays in, arrays out, no Tensors, no autodiff.

Three modules share the same function names and signatures:

- ``reference`` — slow, obviously-correct Python loops: the oracle for tests and lessons;
- ``cpu``       — Numba ``njit(parallel=True, cache=True)`` versions (NumPy arrays): ``cpu`` picks
                  an algorithm per call, the ``cpu_*`` modules implement them (im2col, Winograd,
                  sparse scatter, pooling, Adam, the tie step ``cpu_ties``);
- ``gpu``       — CuPy versions (CuPy arrays); ``array_*`` modules hold whole-array versions
                  that NumPy runs too (``array_ties``: the tie step by sorting).

``contract`` holds what the three check and compute alike (dtypes, output sizes).

All arrays are NCHW and C-contiguous, float32 or float64 (the output has the input's dtype).
``stride`` and ``padding`` are ``(rows, cols)`` pairs of ints; padding is zero padding.

conv2d_forward(x, w, stride, padding) -> y
    x (N, C, H, W), w (O, C, KH, KW) -> y (N, O, OH, OW) with
    OH = (H + 2*ph - KH) // sh + 1 (likewise OW) and
    y[n,o,i,j] = sum_{c,a,b} x_pad[n, c, i*sh + a, j*sw + b] * w[o, c, a, b]   (no bias).
conv2d_backward_input(gy, w, input_hw, stride, padding) -> gx
    The transposed convolution: gx (N, C, H, W) with (H, W) = input_hw, the gradient of
    sum(gy * conv2d_forward(x, w)) with respect to x.
conv2d_backward_weight(x, gy, kernel_hw, stride, padding) -> gw
    gw (O, C, KH, KW), the gradient of sum(gy * conv2d_forward(x, w)) with respect to w.
depthwise_conv2d_forward(x, w, stride, padding) -> y
    Every channel with its own filter: x (N, C, H, W), w (C, 1, KH, KW) -> y (N, C, OH, OW),
    y[n,c,i,j] = sum_{a,b} x_pad[n, c, i*sh + a, j*sw + b] * w[c, 0, a, b].
depthwise_conv2d_backward_input(gy, w, input_hw, stride, padding) -> gx
depthwise_conv2d_backward_weight(x, gy, kernel_hw, stride, padding) -> gw (C, 1, KH, KW)
    Its two adjoints, as for conv2d. (cpu: direct Numba loops; gpu: array_depthwise, whole-array
    code that NumPy runs too.)
    Every forward convolution gives bit-identical outputs for identical input patches (equal
    values, zero padding counting as zeros, -0.0 as 0.0): then values that tie in exact
    arithmetic tie in fact, and max-pool's rule, not rounding, routes their gradient. BLAS and
    Winograd do not promise that across positions, so conv2d_forward ends with the tie step
    (cpu_ties, array_ties); the direct depthwise loops sum in one fixed order and need none.
relu_forward(x) -> (y, mask)
    mask = x > 0 (bool), y = x * mask (any shape; NaN stays NaN).
matmul(a, b) -> a @ b
    As NumPy's; cpu shares a big 2-D product between the cores itself (see there).
max_pool2d_forward(x, kernel, stride) -> (y, argmax)
    kernel, stride: (rows, cols). No padding. y (N, C, OH, OW) is the window maximum,
    argmax (N, C, OH, OW) int64 holds the flat index ``row * W + col`` inside the (H, W) plane
    of the element chosen. Ties go to the FIRST maximum in row-major order of the window.
max_pool2d_scatter(gy, argmax, input_hw) -> gx
    gx (N, C, H, W) zeros, then gx.flat_plane[argmax] += gy (sums where windows overlap).
max_pool2d_gather(gx, argmax) -> gy
    gy[n,c,i,j] = gx[n, c].flat[argmax[n,c,i,j]]: the adjoint of the scatter.
"""
import importlib

from ..backend import get_array_module


def for_array(array):
    """The kernel module (cpu or gpu) that matches where `array` lives.

    Imported on first use: numba takes a moment to load, and cupy may not be installed.
    """
    name = "cpu" if get_array_module(array).__name__ == "numpy" else "gpu"
    return importlib.import_module(f"{__name__}.{name}")
