"""Depthwise convolution on the CPU: every channel filtered with its own KH x KW kernel.

A depthwise layer does KH*KW multiply-adds per output value, too few for a matrix product to
pay for its column matrix, so these are direct loops, one parallel task per (image, channel)
plane (per channel for the weight gradient, which sums over the images).

Each loop runs along whole output rows innermost (``row_out[j] += row_in[j] * weight``), which
Numba vectorises when the row of inputs is contiguous: stride 1 has its own branch, as a
strided view would compile to a general loop (twice as slow, measured on 144 x 56 x 56). Every output value is therefore the sum of its KH*KW products
added to zero in the same order (a, b) = (0, 0), (0, 1), ...: identical input patches give
bit-identical outputs, as the kernel contract asks of every forward convolution.

The padded input is made once by the caller (cpu_layout.pad_nchw), so no loop tests bounds.
"""
from numba import prange

from .compile_cache import jit, jit_inline


@jit_inline
def _add_scaled(dst, src, weight):
    """dst += src * weight, element by element."""
    for j in range(dst.shape[0]):
        dst[j] += src[j] * weight


@jit_inline
def _add_product(dst, a, b):
    """dst += a * b, element by element."""
    for j in range(dst.shape[0]):
        dst[j] += a[j] * b[j]


@jit
def forward(x_padded, w, sh, sw, y):
    """y[n, c, i, j] = sum over (a, b) of x_padded[n, c, i*sh + a, j*sw + b] * w[c, 0, a, b]."""
    C = x_padded.shape[1]
    KH, KW = w.shape[2], w.shape[3]
    OH, OW = y.shape[2], y.shape[3]
    for t in prange(y.shape[0] * C):
        n, c = t // C, t % C
        plane, kernel = x_padded[n, c], w[c, 0]
        for i in range(OH):
            row_out = y[n, c, i]
            row_out[:] = 0
            for a in range(KH):
                row_in = plane[i * sh + a]
                for b in range(KW):
                    # the OW inputs that tap (a, b) reads
                    if sw == 1:
                        _add_scaled(row_out, row_in[b:b + OW], kernel[a, b])
                    else:
                        _add_scaled(row_out, row_in[b:b + sw * (OW - 1) + 1:sw], kernel[a, b])


@jit
def input_grad(gy, w, sh, sw, gx_padded):
    """gx_padded (N, C, H + 2ph, W + 2pw) = zeros, then every gy[n, c, i, j] * w[c, 0, a, b]
    added at (i*sh + a, j*sw + b): the transpose of forward, plane by plane (no races)."""
    C = gy.shape[1]
    KH, KW = w.shape[2], w.shape[3]
    OH, OW = gy.shape[2], gy.shape[3]
    for t in prange(gy.shape[0] * C):
        n, c = t // C, t % C
        plane, kernel = gx_padded[n, c], w[c, 0]
        plane[:] = 0
        for i in range(OH):
            row_gy = gy[n, c, i]
            for a in range(KH):
                row = plane[i * sh + a]
                for b in range(KW):
                    if sw == 1:
                        _add_scaled(row[b:b + OW], row_gy, kernel[a, b])
                    else:
                        _add_scaled(row[b:b + sw * (OW - 1) + 1:sw], row_gy, kernel[a, b])


@jit
def weight_grad(x_padded, gy, sh, sw, rows, gw):
    """gw[c, 0, a, b] = sum over n, i, j of gy[n, c, i, j] * x_padded[n, c, i*sh + a, j*sw + b].

    rows (C, OW) is scratch: each channel sums whole rows of products first (a vectorised
    loop) and adds up that row once at the end, instead of one long serial sum."""
    N, C = gy.shape[0], gy.shape[1]
    KH, KW = gw.shape[2], gw.shape[3]
    OH, OW = gy.shape[2], gy.shape[3]
    for c in prange(C):
        row_sum = rows[c]
        for a in range(KH):
            for b in range(KW):
                row_sum[:] = 0
                for n in range(N):
                    for i in range(OH):
                        row_in = x_padded[n, c, i * sh + a]
                        if sw == 1:
                            _add_product(row_sum, gy[n, c, i], row_in[b:b + OW])
                        else:
                            _add_product(row_sum, gy[n, c, i], row_in[b:b + sw * (OW - 1) + 1:sw])
                gw[c, 0, a, b] = row_sum.sum()
