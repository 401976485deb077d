"""What the three kernel modules (reference, cpu, gpu) check and compute the same way.

NumPy only: CuPy arrays have NumPy dtypes, so the gpu module uses these helpers too.
"""
import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype(array):
    """The array's dtype, or ValueError when the kernels do not support it."""
    if array.dtype not in FLOAT_DTYPES:
        raise ValueError(f"minisg kernels support float32 and float64 arrays, got {array.dtype}")
    return array.dtype


def out_size(size, kernel, stride, padding):
    """Output length along one axis: the window positions that fit in the padded input."""
    return (size + 2 * padding - kernel) // stride + 1
