"""CPU kernels: the contract's functions, and the rules that pick an algorithm for each call.

Numba loops do the data movement, NumPy's BLAS (``np.matmul``) the arithmetic. The algorithms
live in their own modules, each with its explanation:

- ``cpu_im2col``   convolution as a matrix product, chunk by chunk: the general case;
- ``cpu_winograd`` Winograd's minimal filtering: float64, stride 1 with many channels, about
                   6 times fewer multiplications for 5x5 kernels (BLAS does the bulk of the work);
- ``cpu_ties``     the last step of every forward convolution: identical input patches get
                   bit-identical outputs, so max-pool ties are exact ties;
- ``cpu_sparse``   the input gradient from the non-zeros of a sparse gy (after ReLU and
                   max-pool), skipping the dense transposed convolution;
- ``cpu_depthwise`` depthwise convolution (one filter per channel) as direct loops;
- ``cpu_pool``     max-pooling, with an unrolled kernel for 2x2 windows;
- ``cpu_optim``    the fused Adam update;
- ``cpu_relu``     ReLU's output and mask in one pass;
- ``cpu_matmul``   a matrix product shared between the cores by blocks of its output;
- ``cpu_layout``   padding, NCHW <-> NHWC and chunking, shared by the convolution paths, and
                   ``map_images``, which shares one call's work between the cores;
- ``cpu_memory``   glibc keeps the memory of freed arrays, so a step does not fault its
                   pages in again (set once, on the first kernel call).

Each function here checks and converts its arguments (C-contiguous arrays of one float dtype,
plain ints: Numba compiles one version per argument type), picks the algorithm and calls it.
Each first calls ``cpu_threads.prepare()``: Numba runs the kernels on the calling thread alone
(see there). A call with enough work shares it between the cores itself: its images, chunks
or blocks run side by side on minisg's worker threads, with BLAS on one thread each
(cpu_layout.map_images says why not Numba's or BLAS's own threads). The kernels compile on
first use and are cached (compile_cache).
"""
import os

import numpy as np

from . import (cpu_im2col, cpu_matmul, cpu_optim, cpu_pool, cpu_relu, cpu_sparse, cpu_threads, cpu_ties,
               cpu_winograd)
from .contract import FLOAT_DTYPES, float_dtype, out_size
from . import cpu_depthwise, cpu_layout  # depthwise convolution (the functions at the end)

# ----------------------------------------------------------------------------------------------
# The rules
# ----------------------------------------------------------------------------------------------

# NumPy's OpenBLAS picks its kernels by CPU model and falls back to AVX2 ones on CPUs it does not
# know (AMD Zen 5 as of OpenBLAS 0.3.31); OPENBLAS_CORETYPE, set before NumPy loads, overrides
# that. With AVX-512 GEMMs (about 1.5x faster here) im2col beats Winograd's transforms (measured
# on the MNIST conv2, batch 128: 33 vs 39 ms for the three passes; with AVX2 GEMMs 48 vs 44 ms).
_FAST_GEMM = os.environ.get("OPENBLAS_CORETYPE", "").lower() in ("skylakex", "cooperlake", "sapphirerapids")
_WINOGRAD_MIN_CHANNELS = 16  # below this the GEMMs are too small to be worth transforming
# Winograd's transforms cost accuracy: float32 maps of the MNIST net were 3e-6 of their peak
# from the exact ones (im2col: 3e-7, as PyTorch), so float32 takes im2col; in float64 the
# error is about 1e-14 and Winograd's fewer flops still pay.
_WINOGRAD_DTYPES = (np.dtype(np.float64),)

# gy's share of non-zeros at most, and the contiguous update (KW*C values) at least, for the
# scatter of the non-zeros to beat the dense transposed convolution (measured, cpu_sparse.py)
_SPARSE_MAX_DENSITY = 0.125
_SPARSE_MIN_ROW = 32


def _use_winograd(dtype, C, O, kh, kw, stride):
    """Winograd for float64, stride-1 kernels of 2 to 5 taps a side between layers of many channels."""
    return (not _FAST_GEMM and dtype in _WINOGRAD_DTYPES and tuple(stride) == (1, 1)
            and 2 <= kh <= 5 and 2 <= kw <= 5 and min(C, O) >= _WINOGRAD_MIN_CHANNELS)


def _sparse_enough(gy, row_length):
    return row_length >= _SPARSE_MIN_ROW and np.count_nonzero(gy) <= _SPARSE_MAX_DENSITY * gy.size


def _pair(v):
    """(rows, cols) as plain ints: Numba compiles one version per argument type, so NumPy or
    int32 scalars would otherwise each cost a compilation."""
    return int(v[0]), int(v[1])


def _contiguous(array, dtype=None):
    """`array` C-contiguous, in `dtype`; without one, in its own dtype, which must be a float
    dtype the kernels support."""
    array = np.ascontiguousarray(array, dtype=dtype)
    if dtype is None:
        float_dtype(array)
    return array


# ----------------------------------------------------------------------------------------------
# The contract's functions
# ----------------------------------------------------------------------------------------------

def conv2d_forward(x, w, stride, padding):
    cpu_threads.prepare()
    stride, padding = _pair(stride), _pair(padding)
    x = _contiguous(x)
    w = _contiguous(w, x.dtype)
    O, C, kh, kw = w.shape
    if _use_winograd(x.dtype, C, O, kh, kw, stride):
        y = cpu_winograd.conv(x, w, padding)
    else:
        y = cpu_im2col.conv(x, w, stride, padding)
    return cpu_ties.equalise(x, y, (kh, kw), stride, padding)  # exact max-pool ties


def conv2d_backward_input(gy, w, input_hw, stride, padding):
    cpu_threads.prepare()
    input_hw, stride, padding = _pair(input_hw), _pair(stride), _pair(padding)
    gy = _contiguous(gy)
    w = _contiguous(w, gy.dtype)
    O, C, kh, kw = w.shape
    ph, pw = padding
    if _sparse_enough(gy, kw * C):
        return cpu_sparse.input_grad(gy, w, input_hw, stride, padding)
    if _use_winograd(gy.dtype, O, C, kh, kw, stride) and ph < kh and pw < kw:
        # with stride 1 the input gradient is the 'full' convolution of gy with the kernel
        # turned by 180 degrees and its two channel axes swapped
        return cpu_winograd.conv(gy, w, (kh - 1 - ph, kw - 1 - pw), turned=True)
    return cpu_im2col.input_grad(gy, w, input_hw, stride, padding)


def conv2d_backward_weight(x, gy, kernel_hw, stride, padding):
    cpu_threads.prepare()
    kernel_hw, stride, padding = _pair(kernel_hw), _pair(stride), _pair(padding)
    x = _contiguous(x)
    gy = _contiguous(gy, x.dtype)
    if _use_winograd(x.dtype, x.shape[1], gy.shape[1], *kernel_hw, stride):
        return cpu_winograd.weight_grad(x, gy, kernel_hw, padding)
    return cpu_im2col.weight_grad(x, gy, kernel_hw, stride, padding)


def relu_forward(x):
    """(x * mask, mask) with the bool mask x > 0, in one pass (cpu_relu), shared between the cores."""
    cpu_threads.prepare()
    x = _contiguous(x)
    y, mask = np.empty_like(x), np.empty(x.shape, np.bool_)
    flat = [array.reshape(-1) for array in (x, y, mask)]
    one, zero = x.dtype.type(1), x.dtype.type(0)
    cpu_layout.map_images(lambda start, stop: cpu_relu.relu_with_mask(
        *(array[start:stop] for array in flat), one, zero), x.size, cpu_relu.NS_PER_ELEMENT)
    return y, mask


def matmul(a, b):
    """a @ b; a 2-D product is shared between the cores by blocks of its output (cpu_matmul)."""
    if a.ndim != 2 or b.ndim != 2 or a.dtype != b.dtype or a.dtype not in FLOAT_DTYPES:
        return a @ b
    cpu_threads.prepare()
    return cpu_matmul.matmul(a, b)


def max_pool2d_forward(x, kernel, stride):
    cpu_threads.prepare()
    x = _contiguous(x)
    (kh, kw), (sh, sw) = _pair(kernel), _pair(stride)
    N, C, H, W = x.shape
    y = np.empty((N, C, out_size(H, kh, sh, 0), out_size(W, kw, sw, 0)), x.dtype)
    argmax = np.empty(y.shape, np.int64)
    # not shared between the cores: pooling is bound by memory (measured: no faster on two)
    if (kh, kw, sh, sw) == (2, 2, 2, 2):
        cpu_pool.max_pool_2x2(x, y, argmax)
    else:
        cpu_pool.max_pool(x, kh, kw, sh, sw, y, argmax)
    return y, argmax


def max_pool2d_scatter(gy, argmax, input_hw):
    cpu_threads.prepare()
    gy = _contiguous(gy)
    argmax = _contiguous(argmax, np.int64)
    N, C = gy.shape[:2]
    H, W = _pair(input_hw)
    gx = np.empty((N, C, H, W), gy.dtype)
    cpu_pool.scatter(gy.reshape(N * C, -1), argmax.reshape(N * C, -1), gx.reshape(N * C, H * W))
    return gx


def max_pool2d_gather(gx, argmax):
    cpu_threads.prepare()
    gx = _contiguous(gx)
    argmax = _contiguous(argmax, np.int64)
    N, C = gx.shape[:2]
    gy = np.empty(argmax.shape, gx.dtype)
    cpu_pool.gather(gx.reshape(N * C, -1), argmax.reshape(N * C, -1), gy.reshape(N * C, -1))
    return gy


def adam_update(param, grad, m, v, step_size, beta1, beta2, eps):
    """One Adam step, in place on param, m and v (all contiguous, one dtype); see reference.py."""
    cpu_threads.prepare()
    dtype = float_dtype(param)
    if not (param.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous):
        raise ValueError("adam_update: param, m and v must be C-contiguous (they are updated in place)")
    grad = _contiguous(grad, dtype)
    cast = dtype.type
    flat = [array.reshape(-1) for array in (param, grad, m, v)]
    settings = (cast(step_size), cast(beta1), cast(beta2), cast(eps))
    cpu_layout.map_images(lambda start, stop: cpu_optim.adam_update(
        *(array[start:stop] for array in flat), *settings), param.size, cpu_layout.NS_PER_ELEMENT)



# ----------------------------------------------------------------------------------------------
# Depthwise convolution (kernels/__init__.py): direct loops, one plane per task (cpu_depthwise)
# ----------------------------------------------------------------------------------------------

def _check_depthwise_weight(w, channels):
    if w.ndim != 4 or w.shape[:2] != (channels, 1):
        raise ValueError(f"depthwise convolution: w must have shape ({channels}, 1, KH, KW) for "
                         f"{channels} channels, got {w.shape}")


def _zero_padded(x, padding):
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    N, C, H, W = x.shape
    x_padded = np.empty((N, C, H + 2 * ph, W + 2 * pw), x.dtype)
    cpu_layout.pad_nchw(x, ph, pw, x_padded)
    return x_padded


def depthwise_conv2d_forward(x, w, stride, padding):
    cpu_threads.prepare()
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    x = _contiguous(x)
    w = _contiguous(w, x.dtype)
    N, C, H, W = x.shape
    _check_depthwise_weight(w, C)
    kh, kw = w.shape[2:]
    y = np.empty((N, C, out_size(H, kh, sh, ph), out_size(W, kw, sw, pw)), x.dtype)
    cpu_depthwise.forward(_zero_padded(x, (ph, pw)), w, sh, sw, y)
    return y


def depthwise_conv2d_backward_input(gy, w, input_hw, stride, padding):
    cpu_threads.prepare()
    (H, W), (sh, sw), (ph, pw) = _pair(input_hw), _pair(stride), _pair(padding)
    gy = _contiguous(gy)
    w = _contiguous(w, gy.dtype)
    N, C = gy.shape[:2]
    _check_depthwise_weight(w, C)
    gx_padded = np.empty((N, C, H + 2 * ph, W + 2 * pw), gy.dtype)
    cpu_depthwise.input_grad(gy, w, sh, sw, gx_padded)
    return np.ascontiguousarray(gx_padded[:, :, ph:ph + H, pw:pw + W])


def depthwise_conv2d_backward_weight(x, gy, kernel_hw, stride, padding):
    cpu_threads.prepare()
    (kh, kw), (sh, sw), padding = _pair(kernel_hw), _pair(stride), _pair(padding)
    x = _contiguous(x)
    gy = _contiguous(gy, x.dtype)
    C = x.shape[1]
    gw = np.empty((C, 1, kh, kw), x.dtype)
    rows = np.empty((C, gy.shape[3]), x.dtype)
    cpu_depthwise.weight_grad(_zero_padded(x, padding), gy, sh, sw, rows, gw)
    return gw
