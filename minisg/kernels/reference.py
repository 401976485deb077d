"""Reference kernels: plain loops that follow the definitions in ``minisg.kernels`` word for word.

They are the oracle the fast kernels are tested against and the version to read when learning
what a convolution or a max-pool computes. They are slow; use them on tiny arrays only.
"""
import numpy as np

_DTYPES = (np.float32, np.float64)


def _check_dtype(*arrays):
    for a in arrays:
        if a.dtype not in _DTYPES:
            raise ValueError(f"kernels support float32 and float64 arrays, got {a.dtype}")


def _out_size(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def conv2d_forward(x, w, stride, padding):
    """y[n,o,i,j] = sum over c,a,b of x_pad[n, c, i*sh + a, j*sw + b] * w[o, c, a, b]."""
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    _check_dtype(x, w)
    (sh, sw), (ph, pw) = stride, padding
    N, C, H, W = x.shape
    O, _, KH, KW = w.shape
    OH, OW = _out_size(H, KH, sh, ph), _out_size(W, KW, sw, pw)
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
    xp[:, :, ph:ph + H, pw:pw + W] = x
    y = np.zeros((N, O, OH, OW), dtype=x.dtype)
    for n in range(N):
        for o in range(O):
            for i in range(OH):
                for j in range(OW):
                    window = xp[n, :, i * sh:i * sh + KH, j * sw:j * sw + KW]
                    y[n, o, i, j] = np.sum(window * w[o])
    return y


def conv2d_backward_input(gy, w, input_hw, stride, padding):
    """gx = d/dx sum(gy * conv2d_forward(x, w)): every y[n,o,i,j] hands gy[n,o,i,j] * w[o]
    back to the input window it was computed from (parts falling on the padding are dropped)."""
    gy, w = np.ascontiguousarray(gy), np.ascontiguousarray(w)
    _check_dtype(gy, w)
    (sh, sw), (ph, pw) = stride, padding
    H, W = input_hw
    N, O, OH, OW = gy.shape
    _, C, KH, KW = w.shape
    gxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=gy.dtype)
    for n in range(N):
        for o in range(O):
            for i in range(OH):
                for j in range(OW):
                    gxp[n, :, i * sh:i * sh + KH, j * sw:j * sw + KW] += gy[n, o, i, j] * w[o]
    return np.ascontiguousarray(gxp[:, :, ph:ph + H, pw:pw + W])


def conv2d_backward_weight(x, gy, kernel_hw, stride, padding):
    """gw = d/dw sum(gy * conv2d_forward(x, w)): gw[o] = sum over n,i,j of gy[n,o,i,j] times
    the input window that produced y[n,o,i,j]."""
    x, gy = np.ascontiguousarray(x), np.ascontiguousarray(gy)
    _check_dtype(x, gy)
    (sh, sw), (ph, pw) = stride, padding
    KH, KW = kernel_hw
    N, C, H, W = x.shape
    _, O, OH, OW = gy.shape
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
    xp[:, :, ph:ph + H, pw:pw + W] = x
    gw = np.zeros((O, C, KH, KW), dtype=x.dtype)
    for n in range(N):
        for o in range(O):
            for i in range(OH):
                for j in range(OW):
                    gw[o] += gy[n, o, i, j] * xp[n, :, i * sh:i * sh + KH, j * sw:j * sw + KW]
    return gw


def max_pool2d_forward(x, kernel, stride):
    """y = the maximum of each window; argmax = its flat index row * W + col in the (H, W)
    plane. A strict '>' while scanning the window row by row keeps the FIRST maximum on ties."""
    x = np.ascontiguousarray(x)
    _check_dtype(x)
    (kh, kw), (sh, sw) = kernel, stride
    N, C, H, W = x.shape
    OH, OW = _out_size(H, kh, sh, 0), _out_size(W, kw, sw, 0)
    y = np.empty((N, C, OH, OW), dtype=x.dtype)
    argmax = np.empty((N, C, OH, OW), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
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
    gy, argmax = np.ascontiguousarray(gy), np.ascontiguousarray(argmax)
    _check_dtype(gy)
    H, W = input_hw
    N, C, OH, OW = gy.shape
    gx = np.zeros((N, C, H, W), dtype=gy.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    k = argmax[n, c, i, j]
                    gx[n, c, k // W, k % W] += gy[n, c, i, j]
    return gx


def max_pool2d_gather(gx, argmax):
    """gy[n,c,i,j] = gx[n, c] at the flat plane index argmax[n,c,i,j] (the scatter's adjoint)."""
    gx, argmax = np.ascontiguousarray(gx), np.ascontiguousarray(argmax)
    _check_dtype(gx)
    N, C, H, W = gx.shape
    gy = np.empty(argmax.shape, dtype=gx.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(argmax.shape[2]):
                for j in range(argmax.shape[3]):
                    k = argmax[n, c, i, j]
                    gy[n, c, i, j] = gx[n, c, k // W, k % W]
    return gy


def adam_update(param, grad, m, v, step_size, beta1, beta2, eps):
    """One Adam step, in place: m, v <- moving averages of grad and grad^2;
    param <- param - step_size * m / (sqrt(v) + eps). step_size carries both bias corrections."""
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * grad * grad
    param -= step_size * m / (np.sqrt(v) + eps)
