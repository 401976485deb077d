"""The input gradient of a convolution from the non-zeros of its output gradient alone.

A 2x2 max-pool passes gradient to one input in four, and the ReLU before it stops it where
the unit was off: the gradient reaching the MNIST conv2 is about 11% non-zero in a SmoothGrad
batch (measured). Scattering each non-zero times its kernel straight into the input gradient
then beats the dense transposed convolution (Winograd included): 2.3-2.5 vs 3.5-3.7 ms for 25
images on one thread (measured). Only worth it with long contiguous updates (KW*C values);
cpu.py decides when.
"""
import numpy as np
from numba import prange

from . import cpu_layout
from .compile_cache import jit


# measured: 170 us an image for the MNIST conv2 (12,544 gradient values, 11% non-zero)
SPARSE_NS_PER_GY_VALUE = 13.0


@jit
def _scatter_nonzeros(gy, w3, sh, sw, C, gxp3):
    """The input gradient from the non-zeros of gy alone: gxp3 (N, Hp, Wp*C), the channels-last
    padded gradient, = zeros, then for every gy[n, o, i, j] != 0 and kernel row a,
        gxp[n, i*sh + a, j*sw : j*sw + KW, :] += gy[n, o, i, j] * w[o, :, a, :] (as (KW, C)),
    where w3 (O, KH, KW*C) is the kernel channels-last: each update is KW*C contiguous values.
    One task per image: no two tasks write the same place."""
    N, O, OH, OW = gy.shape
    KH, L = w3.shape[1], w3.shape[2]
    for n in prange(N):
        dst = gxp3[n]
        dst[:] = 0
        for o in range(O):
            for i in range(OH):
                row = gy[n, o, i]
                for j in range(OW):
                    g = row[j]
                    if g != 0:
                        start = j * sw * C
                        for a in range(KH):
                            target = dst[i * sh + a, start:start + L]
                            taps = w3[o, a]
                            for q in range(L):
                                target[q] += g * taps[q]


def input_grad(gy, w, input_hw, stride, padding):
    """conv2d_backward_input by scattering the non-zeros of gy (any stride and padding;
    contiguous arrays of one float dtype)."""
    N, O = gy.shape[:2]
    C, kh, kw = w.shape[1:]
    (H, W), (sh, sw), (ph, pw) = input_hw, stride, padding
    Hp, Wp = H + 2 * ph, W + 2 * pw
    w3 = np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(O, kh, kw * C)
    gxp = np.empty((N, Hp, Wp, C), gy.dtype)
    gxp3 = gxp.reshape(N, Hp, Wp * C)
    gx = np.empty((N, C, H, W), gy.dtype)

    def images(start, stop):
        _scatter_nonzeros(gy[start:stop], w3, sh, sw, C, gxp3[start:stop])
        cpu_layout.crop_nhwc(gxp[start:stop], ph, pw, gx[start:stop])

    cpu_layout.map_images(images, N, gy[0].size * SPARSE_NS_PER_GY_VALUE)
    return gx
