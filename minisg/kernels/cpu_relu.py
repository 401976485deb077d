"""ReLU's forward pass on the CPU: the output and its 0/1 mask in one pass over memory.

NumPy's ``x * (x > 0)`` reads x twice and casts the bool mask on the fly (1.8 ms for the
MNIST relu1 at batch 128, measured); the backward pass then casts the mask again. This loop
writes both, the mask already in x's dtype: the same values, as x * 1 = x and x * 0 = 0
(NaN stays NaN, as in PyTorch).
"""
from numba import prange

from .compile_cache import jit


@jit
def relu_with_mask(x, y, mask):
    """y = x * mask and mask = (x > 0) as 0 or 1, on flat arrays of one dtype."""
    for i in prange(x.size):
        on = x[i] > 0
        mask[i] = 1 if on else 0
        y[i] = x[i] * mask[i]
