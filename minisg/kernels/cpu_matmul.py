"""A matrix product shared between the cores by blocks of its output (BLAS on one thread each).

Used by the MatMul op (cpu.matmul) and by every convolution GEMM that is not already one of
several chunks side by side (one image's convolution, say, in an ImageNet network).
"""
import numpy as np

from . import cpu_layout

# Parts are blocks of this many output columns (or rows): whole register tiles of BLAS's
# kernels (their widths divide 64) for each part.
BLOCK = 64


def matmul(a, b, out=None, images=None):
    """out = a @ b for 2-D arrays of one float dtype (out: a new array, or a 2-D one whose rows
    are contiguous). With enough work, blocks of output columns (or rows, when there are more
    rows) run side by side, each on one BLAS thread (cpu_layout.map_images). Values may differ
    from one whole product's in the last bit, as they do between OpenBLAS's own thread counts
    (measured: the MNIST fc1 in float32); no max-pool decision rests on them (the
    convolutions' tie step sees to those). images: how many images the product serves (default:
    a's rows), for cpu_layout.map_images."""
    (M, K), N = a.shape, b.shape[1]
    out = np.empty((M, N), a.dtype) if out is None else out
    by_columns = N >= M

    def part(first, last):
        start, stop = first * BLOCK, last * BLOCK
        if by_columns:
            np.matmul(a, b[:, start:stop], out=out[:, start:stop])
        else:
            np.matmul(a[start:stop], b, out=out[start:stop])
    cpu_layout.map_images(part, -(-max(M, N) // BLOCK), BLOCK * min(M, N) * K * cpu_layout.NS_PER_MAC,
                          uses_blas=True, images=M if images is None else images)
    return out
