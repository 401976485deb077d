"""Integrated Gradients (METHODS.md §5).

    IG_i = (x_i - x'_i) * sum_k w_k * dS_c/dx_i (x' + a_k (x - x'))

a sum over points a_k on the straight path from the baseline x' (a = 0) to x (a = 1), with
weights w_k of a quadrature rule. The paper uses the right Riemann sum, a_k = k/m, w_k = 1/m.
Completeness: sum_i IG_i -> S_c(x) - S_c(x') as m grows.
"""
import numpy as np

from ._checks import MAX_SAMPLES, check_baseline, check_choice, check_int
from ._common import evaluation_mode, input_gradients, model_dtype, prepare
from ._running import RunningSum, chunk_size, chunks, runs

RULES = ("right", "left", "middle", "trapezoid")


def path_points_and_weights(steps, rule="right"):
    """(a_k, w_k) for k = 1..steps, as float64 arrays; every rule's weights sum to 1.

    right:     a_k = k/m,        w_k = 1/m        (the paper)
    left:      a_k = (k-1)/m,    w_k = 1/m
    middle:    a_k = (k-1/2)/m,  w_k = 1/m
    trapezoid: a_k = (k-1)/(m-1) (m points, ends included), w_k = 1/(m-1), halved at both ends.
    (PAIR's linspace(0,1,m)/m and captum's trapezoid weights, which sum to (m-1)/m, are neither.)
    """
    check_choice("rule", rule, RULES)
    steps = check_int("steps", steps, high=MAX_SAMPLES)
    if rule == "trapezoid" and steps == 1:
        raise ValueError("steps: the trapezoid rule needs steps >= 2 (both ends of the path), got 1")
    k = np.arange(1, steps + 1, dtype=np.float64)
    if rule == "trapezoid":
        weights = np.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] *= 0.5
        return (k - 1) / (steps - 1), weights
    offset = {"right": 0.0, "left": 1.0, "middle": 0.5}[rule]
    return (k - offset) / steps, np.full(steps, 1.0 / steps)


def _baseline_like(baseline, x):
    """The checked baseline (check_baseline: finite in the model's dtype) as an array broadcast to
    x's shape (None: zeros, the black image)."""
    if baseline is None:
        return np.zeros_like(x)
    try:
        return np.broadcast_to(baseline, x.shape).astype(x.dtype)
    except ValueError:
        raise ValueError(f"baseline: expected a number or an array broadcastable to x's shape {x.shape}, "
                         f"got shape {baseline.shape}") from None


def integrated_gradients(model, x, target=None, baseline=None, steps=50, rule="right", batch_size=None):
    """IG of the target logit, shaped like x. The N*steps path points (point k of image n at row
    n*steps + k) are built and sent through the model a chunk of batch_size at a time (None:
    256), and the weighted gradients w_k dS/dx are added to a running sum per image in path
    order (float64): memory grows with batch_size, not with N*steps.
    """
    alphas, weights = path_points_and_weights(steps, rule)
    baseline = check_baseline(baseline, model_dtype(model))
    with evaluation_mode(model):
        x, target = prepare(model, x, target, batch_size)
        baseline = _baseline_like(baseline, x)
        step = (x - baseline).astype(np.float64)
        average = RunningSum(len(x), x.shape[1:], np.float64)     # sum_k w_k dS/dx at point k
        for start, stop in chunks(len(x), len(alphas), chunk_size(batch_size, x.shape[1:])):
            image, point = np.divmod(np.arange(start, stop), len(alphas))
            path = baseline[image] + alphas[point].reshape(-1, 1, 1, 1) * step[image]
            gradients = input_gradients(model, path.astype(x.dtype), target[image], batch_size)
            weighted = weights[point].reshape(-1, 1, 1, 1) * gradients.astype(np.float64)
            for i, first, last, _ in runs(start, stop, len(alphas)):
                average.add(i, weighted[first:last])
        return (step * average.total).astype(x.dtype)
