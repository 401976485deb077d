"""Batch normalisation at inference: a fixed affine map per channel, built from existing ops.

With the running statistics of training, y = (x - mean) / sqrt(var + eps) * weight + bias is
elementwise arithmetic broadcast along axis 1, so it is differentiable (to any order, in every
argument) without a Function of its own.
"""
from ..autograd import Tensor
from .operands import float_tensor
from .shapes import reshape


def _per_channel(value, name, x):
    """`value` (C,) as a tensor shaped (1, C, 1, ...) to broadcast over x; arrays take x's dtype."""
    if not isinstance(value, Tensor):
        value = Tensor(x.xp.asarray(value, dtype=x.dtype))
    channels = x.shape[1]
    if value.shape != (channels,):
        raise ValueError(f"batch_norm: {name} must have shape ({channels},) for an input with "
                         f"{channels} channels, got {value.shape}")
    return reshape(value, (1, channels) + (1,) * (x.ndim - 2))


def batch_norm(x, running_mean, running_var, weight=None, bias=None, eps=1e-5):
    """Normalise axis 1 of x (N, C, ...) with the running statistics (inference only), then
    scale by weight and shift by bias (each (C,), or None for 1 and 0)."""
    x = float_tensor("batch_norm", x)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input must be (N, C, ...), got shape {x.shape}")
    if not eps > 0:
        raise ValueError(f"batch_norm: eps must be > 0, got {eps!r}")
    scale = (_per_channel(running_var, "running_var", x) + eps) ** -0.5
    if weight is not None:
        scale = scale * _per_channel(weight, "weight", x)
    y = (x - _per_channel(running_mean, "running_mean", x)) * scale
    return y if bias is None else y + _per_channel(bias, "bias", x)
