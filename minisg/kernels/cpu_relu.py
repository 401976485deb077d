"""ReLU's forward pass on the CPU: the output and its mask in one pass over memory.

NumPy's ``x * (x > 0)`` writes the mask, then reads x again and casts the mask on the fly (1.8
ms for the MNIST relu1 at batch 128, measured). This loop writes both at once, with the same
values: x * 1 = x and x * 0 = 0 (NaN stays NaN, as in PyTorch; -inf * 0 is NaN, as in NumPy).
The mask stays one byte a value: the graph keeps one per ReLU until the backward pass.
"""
from numba import prange

from .compile_cache import jit

NS_PER_ELEMENT = 0.15   # one vectorised pass (measured: 0.12 ms for 788,544 values)


@jit
def relu_with_mask(x, y, mask, one, zero):
    """mask = x > 0 and y = x * mask, on flat arrays (one and zero: 1 and 0 in x's dtype)."""
    for i in prange(x.size):
        on = x[i] > 0
        mask[i] = on
        y[i] = x[i] * (one if on else zero)
