"""Softmax and the cross-entropy loss, computed without overflow."""
import numpy as np

from .. import backend
from ..autograd import Tensor
from .elementwise import exp, log
from .operands import float_tensor
from .reductions import _normalise_axes, mean, sum  # noqa: A004 (the ops of this package, not the builtins)
from .shapes import getitem


def log_softmax(x, axis=-1):
    """x - logsumexp(x); the max is subtracted as a constant, so no overflow and exact gradients."""
    x = float_tensor("log_softmax", x)
    _normalise_axes(axis, x.ndim, "log_softmax")
    shift = Tensor(x.xp.max(x.data, axis=axis, keepdims=True))
    shifted = x - shift
    return shifted - log(sum(exp(shifted), axis=axis, keepdims=True))


def softmax(x, axis=-1):
    return exp(log_softmax(x, axis))


def cross_entropy(logits, labels):
    """Mean negative log-likelihood of integer `labels` (N,) under softmax(logits (N, K))."""
    logits = float_tensor("cross_entropy", logits)
    labels = backend.to_numpy(labels.data if isinstance(labels, Tensor) else np.asarray(labels))
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: logits must be (N, classes), got shape {logits.shape}")
    if labels.shape != (logits.shape[0],) or labels.dtype.kind not in "iu":
        raise ValueError(f"cross_entropy: labels must be {logits.shape[0]} integers, got shape "
                         f"{labels.shape} dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        bad = labels[(labels < 0) | (labels >= logits.shape[1])][0]
        raise ValueError(f"cross_entropy: labels must be in [0, {logits.shape[1]}), got {bad}")
    picked = getitem(log_softmax(logits, axis=1), (np.arange(logits.shape[0]), labels))
    return -mean(picked)
