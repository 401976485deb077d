"""GPU kernels: CuPy RawKernels for the data movement, cuBLAS (``cupy.matmul``) for the arithmetic.

The convolution is im2col + batched GEMM, as on the CPU, but for the whole batch at once (GPU
memory is plentiful and big GEMMs keep the GPU busy). Every kernel gives one thread one output
element and gathers what it needs (race-free and deterministic); only the max-pool scatter adds
with atomics, as the contract does not pass it the window geometry.
"""
import cupy

from . import array_depthwise, array_ties
from .contract import float_dtype, out_size

_THREADS = 256

# `T` is float or double. `I` is the index type: int when every index fits (64-bit division is
# several times slower on a GPU), I otherwise.
_SOURCE = r"""
extern "C" __global__ void im2col(const T* x, T* cols,
        I N, I C, I H, I W, I KH, I KW,
        I SH, I SW, I PH, I PW, I OH, I OW) {
    // cols[n, (c*KH + a)*KW + b, i*OW + j] = x_pad[n, c, i*SH + a, j*SW + b]
    I total = N * C * KH * KW * OH * OW;
    for (I t = blockIdx.x * (I)blockDim.x + threadIdx.x; t < total;
         t += (I)blockDim.x * gridDim.x) {
        I j = t % OW, i = (t / OW) % OH, r = (t / (OW * OH)) % (C * KH * KW);
        I n = t / (OW * OH * C * KH * KW);
        I b = r % KW, a = (r / KW) % KH, c = r / (KW * KH);
        I h = i * SH + a - PH, w = j * SW + b - PW;
        cols[t] = (h >= 0 && h < H && w >= 0 && w < W) ? x[((n * C + c) * H + h) * W + w] : (T)0;
    }
}

extern "C" __global__ void col2im(const T* gcols, T* gx,
        I N, I C, I H, I W, I KH, I KW,
        I SH, I SW, I PH, I PW, I OH, I OW) {
    // gx[n, c, h, w] = sum of gcols[n, (c, a, b), (i, j)] over the (a, i), (b, j) with
    // i*SH + a == h + PH and j*SW + b == w + PW: the adjoint of im2col, as a gather.
    I total = N * C * H * W;
    for (I t = blockIdx.x * (I)blockDim.x + threadIdx.x; t < total;
         t += (I)blockDim.x * gridDim.x) {
        I w = t % W, h = (t / W) % H, c = (t / (W * H)) % C, n = t / (W * H * C);
        const T* g = gcols + (n * C + c) * KH * KW * OH * OW;
        T sum = 0;
        for (I a = 0; a < KH; ++a) {
            I hi = h + PH - a;
            if (hi < 0 || hi % SH != 0 || hi / SH >= OH) continue;
            for (I b = 0; b < KW; ++b) {
                I wj = w + PW - b;
                if (wj < 0 || wj % SW != 0 || wj / SW >= OW) continue;
                sum += g[(a * KW + b) * OH * OW + (hi / SH) * OW + wj / SW];
            }
        }
        gx[t] = sum;
    }
}

extern "C" __global__ void max_pool(const T* x, T* y, long long* argmax,
        I planes, I H, I W, I KH, I KW,
        I SH, I SW, I OH, I OW) {
    // strict '>' while scanning the window row by row: ties keep the first maximum
    I total = planes * OH * OW;
    for (I t = blockIdx.x * (I)blockDim.x + threadIdx.x; t < total;
         t += (I)blockDim.x * gridDim.x) {
        I j = t % OW, i = (t / OW) % OH, p = t / (OW * OH);
        const T* plane = x + p * H * W;
        I at = (i * SH) * W + j * SW;
        T best = plane[at];
        for (I a = 0; a < KH; ++a) {
            for (I b = 0; b < KW; ++b) {
                I k = (i * SH + a) * W + j * SW + b;
                if (plane[k] > best) { best = plane[k]; at = k; }
            }
        }
        y[t] = best;
        argmax[t] = at;
    }
}

extern "C" __global__ void pool_scatter(const T* gy, const long long* argmax, T* gx,
        I total, I plane_in, I plane_out) {
    // gx[p].flat[argmax[p, q]] += gy[p, q]; atomic because overlapping windows may pick the
    // same element (without overlap every element gets at most one add: deterministic)
    for (I t = blockIdx.x * (I)blockDim.x + threadIdx.x; t < total;
         t += (I)blockDim.x * gridDim.x) {
        atomicAdd(gx + (t / plane_out) * plane_in + argmax[t], gy[t]);
    }
}
"""

_kernels = {}


def _kernel(name, dtype, wide):
    key = (name, dtype, wide)
    if key not in _kernels:
        ctype = "float" if dtype == cupy.float32 else "double"
        itype = "long long" if wide else "int"
        _kernels[key] = cupy.RawKernel(f"typedef {ctype} T;\ntypedef {itype} I;\n{_SOURCE}", name)
    return _kernels[key]


def _launch(name, dtype, total, arrays, sizes):
    """Run kernel `name` on `total` elements; `sizes` are passed as the kernel's index type."""
    wide = max([total] + [a.size for a in arrays]) >= 2**31 - 2**26
    index = cupy.int64 if wide else cupy.int32
    blocks = max(1, min((total + _THREADS - 1) // _THREADS, 65535 * 4))
    _kernel(name, dtype, wide)((blocks,), (_THREADS,), tuple(arrays) + tuple(index(v) for v in sizes))


def _im2col(x, kh, kw, stride, padding):
    """cols (N, C*kh*kw, OH*OW) of x, and (OH, OW)."""
    N, C, H, W = x.shape
    (sh, sw), (ph, pw) = stride, padding
    OH, OW = out_size(H, kh, sh, ph), out_size(W, kw, sw, pw)
    cols = cupy.empty((N, C * kh * kw, OH * OW), x.dtype)
    _launch("im2col", x.dtype, cols.size, (x, cols), (N, C, H, W, kh, kw, sh, sw, ph, pw, OH, OW))
    return cols, OH, OW


def conv2d_forward(x, w, stride, padding):
    x = cupy.ascontiguousarray(x)
    dtype = float_dtype(x)
    w = cupy.ascontiguousarray(w, dtype=dtype)
    O, _, kh, kw = w.shape
    cols, OH, OW = _im2col(x, kh, kw, stride, padding)
    # y[n] (O, P) = w (O, K) @ cols[n] (K, P): one strided-batched GEMM
    y = cupy.matmul(w.reshape(O, -1), cols).reshape(x.shape[0], O, OH, OW)
    return array_ties.equalise(x, y, (kh, kw), stride, padding)  # exact max-pool ties


def conv2d_backward_input(gy, w, input_hw, stride, padding):
    gy = cupy.ascontiguousarray(gy)
    dtype = float_dtype(gy)
    w = cupy.ascontiguousarray(w, dtype=dtype)
    N, O, OH, OW = gy.shape
    _, C, kh, kw = w.shape
    H, W = input_hw
    (sh, sw), (ph, pw) = stride, padding
    # gcols[n] (K, P) = w.T (K, O) @ gy[n] (O, P), then col2im gathers it into place
    gcols = cupy.ascontiguousarray(cupy.matmul(w.reshape(O, -1).T, gy.reshape(N, O, OH * OW)))
    gx = cupy.empty((N, C, H, W), dtype)
    _launch("col2im", dtype, gx.size, (gcols, gx), (N, C, H, W, kh, kw, sh, sw, ph, pw, OH, OW))
    return gx


def conv2d_backward_weight(x, gy, kernel_hw, stride, padding):
    x = cupy.ascontiguousarray(x)
    dtype = float_dtype(x)
    gy = cupy.ascontiguousarray(gy, dtype=dtype)
    N, O = gy.shape[:2]
    kh, kw = kernel_hw
    cols, OH, OW = _im2col(x, kh, kw, stride, padding)
    # gw (O, K) = sum over n of gy[n] (O, P) @ cols[n].T (P, K), as one GEMM over (n, p)
    gw = cupy.tensordot(gy.reshape(N, O, OH * OW), cols, axes=([0, 2], [0, 2]))
    return cupy.ascontiguousarray(gw).reshape(O, x.shape[1], kh, kw)


def relu_forward(x):
    mask = x > 0
    return x * mask, mask


def matmul(a, b):
    return a @ b


def max_pool2d_forward(x, kernel, stride):
    x = cupy.ascontiguousarray(x)
    dtype = float_dtype(x)
    (kh, kw), (sh, sw) = kernel, stride
    N, C, H, W = x.shape
    OH, OW = out_size(H, kh, sh, 0), out_size(W, kw, sw, 0)
    y = cupy.empty((N, C, OH, OW), dtype)
    argmax = cupy.empty((N, C, OH, OW), cupy.int64)
    _launch("max_pool", dtype, y.size, (x, y, argmax), (N * C, H, W, kh, kw, sh, sw, OH, OW))
    return y, argmax


def max_pool2d_scatter(gy, argmax, input_hw):
    gy = cupy.ascontiguousarray(gy)
    dtype = float_dtype(gy)
    argmax = cupy.ascontiguousarray(argmax, dtype=cupy.int64)
    N, C, OH, OW = gy.shape
    H, W = input_hw
    gx = cupy.zeros((N, C, H, W), dtype)
    _launch("pool_scatter", dtype, gy.size, (gy, argmax, gx), (gy.size, H * W, OH * OW))
    return gx


def max_pool2d_gather(gx, argmax):
    gx = cupy.ascontiguousarray(gx)
    float_dtype(gx)
    argmax = cupy.ascontiguousarray(argmax, dtype=cupy.int64)
    N, C = gx.shape[:2]
    gy = cupy.take_along_axis(gx.reshape(N * C, -1), argmax.reshape(N * C, -1), axis=1)
    return gy.reshape(argmax.shape)


_adam_kernel = cupy.ElementwiseKernel(
    "T grad, T step_size, T beta1, T beta2, T eps", "T param, T m, T v",
    """
    m = beta1 * m + (1 - beta1) * grad;
    v = beta2 * v + (1 - beta2) * grad * grad;
    param -= step_size * m / (sqrt(v) + eps);
    """,
    "minisg_adam_update")


def adam_update(param, grad, m, v, step_size, beta1, beta2, eps):
    """One Adam step, in place on param, m and v, in one fused kernel; see reference.py."""
    t = param.dtype.type
    _adam_kernel(grad.astype(param.dtype, copy=False), t(step_size), t(beta1), t(beta2), t(eps), param, m, v)


# Depthwise convolution (kernels/__init__.py): KH*KW whole-array multiply-adds, written for
# NumPy and CuPy alike in array_depthwise (and tested there with NumPy).

def depthwise_conv2d_forward(x, w, stride, padding):
    return array_depthwise.depthwise_conv2d_forward(x, w, stride, padding)


def depthwise_conv2d_backward_input(gy, w, input_hw, stride, padding):
    return array_depthwise.depthwise_conv2d_backward_input(gy, w, input_hw, stride, padding)


def depthwise_conv2d_backward_weight(x, gy, kernel_hw, stride, padding):
    return array_depthwise.depthwise_conv2d_backward_weight(x, gy, kernel_hw, stride, padding)
