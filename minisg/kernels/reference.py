"""Reference kernels: plain loops that follow the definitions in ``minisg.kernels`` word for word.

They are the oracle the fast kernels are tested against and the version to read when learning
what a convolution or a max-pool computes. They are slow; use them on tiny arrays only.
"""
import numpy as np

from .contract import float_dtype, out_size


def _checked(array):
    """The array C-contiguous; ValueError unless it is float32 or float64."""
    array = np.ascontiguousarray(array)
    float_dtype(array)
    return array


def _zero_padded(x, ph, pw):
    """x (N, C, H, W) with ph rows of zeros above and below and pw columns left and right."""
    N, C, H, W = x.shape
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
    xp[:, :, ph:ph + H, pw:pw + W] = x
    return xp


def _window(i, j, stride, kernel_hw):
    """The (rows, cols) slices of the padded input that output position (i, j) reads."""
    (sh, sw), (kh, kw) = stride, kernel_hw
    return slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)


def conv2d_forward(x, w, stride, padding):
    """y[n,o,i,j] = sum over c,a,b of x_pad[n, c, i*sh + a, j*sw + b] * w[o, c, a, b]."""
    x, w = _checked(x), _checked(w)
    (sh, sw), (ph, pw) = stride, padding
    N, C, H, W = x.shape
    O, _, KH, KW = w.shape
    xp = _zero_padded(x, ph, pw)
    y = np.zeros((N, O, out_size(H, KH, sh, ph), out_size(W, KW, sw, pw)), dtype=x.dtype)
    for n, o, i, j in np.ndindex(y.shape):
        rows, cols = _window(i, j, stride, (KH, KW))
        y[n, o, i, j] = np.sum(xp[n, :, rows, cols] * w[o])
    return y


def conv2d_backward_input(gy, w, input_hw, stride, padding):
    """gx = d/dx sum(gy * conv2d_forward(x, w)): every y[n,o,i,j] hands gy[n,o,i,j] * w[o]
    back to the input window it was computed from (parts falling on the padding are dropped)."""
    gy, w = _checked(gy), _checked(w)
    ph, pw = padding
    H, W = input_hw
    gxp = np.zeros((gy.shape[0], w.shape[1], H + 2 * ph, W + 2 * pw), dtype=gy.dtype)
    for n, o, i, j in np.ndindex(gy.shape):
        rows, cols = _window(i, j, stride, w.shape[2:])
        gxp[n, :, rows, cols] += gy[n, o, i, j] * w[o]
    return np.ascontiguousarray(gxp[:, :, ph:ph + H, pw:pw + W])


def conv2d_backward_weight(x, gy, kernel_hw, stride, padding):
    """gw = d/dw sum(gy * conv2d_forward(x, w)): gw[o] = sum over n,i,j of gy[n,o,i,j] times
    the input window that produced y[n,o,i,j]."""
    x, gy = _checked(x), _checked(gy)
    ph, pw = padding
    xp = _zero_padded(x, ph, pw)
    gw = np.zeros((gy.shape[1], x.shape[1]) + tuple(kernel_hw), dtype=x.dtype)
    for n, o, i, j in np.ndindex(gy.shape):
        rows, cols = _window(i, j, stride, kernel_hw)
        gw[o] += gy[n, o, i, j] * xp[n, :, rows, cols]
    return gw


def depthwise_conv2d_forward(x, w, stride, padding):
    """Channel c of y is channel c of x convolved with its own filter w[c] (w is (C, 1, KH, KW)):
    the dense convolution above, one channel at a time."""
    x, w = _checked(x), _checked(w)
    return np.concatenate([conv2d_forward(x[:, c:c + 1], w[c:c + 1], stride, padding)
                           for c in range(x.shape[1])], axis=1)


def depthwise_conv2d_backward_input(gy, w, input_hw, stride, padding):
    """gx = d/dx sum(gy * depthwise_conv2d_forward(x, w)), one channel at a time."""
    gy, w = _checked(gy), _checked(w)
    return np.concatenate([conv2d_backward_input(gy[:, c:c + 1], w[c:c + 1], input_hw, stride, padding)
                           for c in range(gy.shape[1])], axis=1)


def depthwise_conv2d_backward_weight(x, gy, kernel_hw, stride, padding):
    """gw = d/dw sum(gy * depthwise_conv2d_forward(x, w)), one channel at a time."""
    x, gy = _checked(x), _checked(gy)
    return np.concatenate([conv2d_backward_weight(x[:, c:c + 1], gy[:, c:c + 1], kernel_hw, stride, padding)
                           for c in range(x.shape[1])], axis=0)


def relu_forward(x):
    """(x * mask, mask) with the bool mask x > 0."""
    mask = x > 0
    return x * mask, mask


def matmul(a, b):
    """a @ b (NumPy's)."""
    return a @ b


def max_pool2d_forward(x, kernel, stride):
    """y = the maximum of each window; argmax = its flat index row * W + col in the (H, W)
    plane. A strict '>' while scanning the window row by row keeps the FIRST maximum on ties."""
    x = _checked(x)
    (kh, kw), (sh, sw) = kernel, stride
    N, C, H, W = x.shape
    y = np.empty((N, C, out_size(H, kh, sh, 0), out_size(W, kw, sw, 0)), dtype=x.dtype)
    argmax = np.empty(y.shape, dtype=np.int64)
    for n, c, i, j in np.ndindex(y.shape):
        best, best_at = None, -1
        for a in range(kh):
            for b in range(kw):
                r, q = i * sh + a, j * sw + b
                if best is None or x[n, c, r, q] > best:
                    best, best_at = x[n, c, r, q], r * W + q
        y[n, c, i, j], argmax[n, c, i, j] = best, best_at
    return y, argmax


def max_pool2d_scatter(gy, argmax, input_hw):
    """gx = zeros of the input's shape, then each gy value is added at the input position its
    window chose (positions chosen by several overlapping windows get the sum)."""
    gy = _checked(gy)
    H, W = input_hw
    gx = np.zeros(gy.shape[:2] + (H, W), dtype=gy.dtype)
    for n, c, i, j in np.ndindex(gy.shape):
        row, col = divmod(argmax[n, c, i, j], W)
        gx[n, c, row, col] += gy[n, c, i, j]
    return gx


def max_pool2d_gather(gx, argmax):
    """gy[n,c,i,j] = gx[n, c] at the flat plane index argmax[n,c,i,j] (the scatter's adjoint)."""
    gx = _checked(gx)
    W = gx.shape[3]
    gy = np.empty(argmax.shape, dtype=gx.dtype)
    for n, c, i, j in np.ndindex(gy.shape):
        row, col = divmod(argmax[n, c, i, j], W)
        gy[n, c, i, j] = gx[n, c, row, col]
    return gy


def adam_update(param, grad, m, v, step_size, beta1, beta2, eps):
    """One Adam step, in place: m, v <- moving averages of grad and grad^2;
    param <- param - step_size * m / (sqrt(v) + eps). step_size carries both bias corrections."""
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * grad * grad
    param -= step_size * m / (np.sqrt(v) + eps)

