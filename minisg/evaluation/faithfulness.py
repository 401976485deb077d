"""Faithfulness: does the model's score follow the map when the map's pixels are changed?

The deletion and insertion curves of RISE (Petsiuk et al. 2018) remove or reveal pixels in
the order the map ranks them and record the model's score for the target after each chunk;
area_under_curve turns a curve into one number. Unlike the localisation scores these need
the model: model_scores runs it (through minisg.parallel.logits, in eval mode, no graph).
"""
import math

import numpy as np

from .. import parallel
from ..checks import check_choice, check_int, check_number
from ..methods._checks import check_input_shape, check_model, check_target, check_target_range
from .inputs import check_finite_array, pool_channels

SCORE_KINDS = ("probability", "logit")
MAX_STEPS = 1000   # of a curve, unless the images have more pixels than that


def gaussian_blur(images, sigma):
    """Blur (N, C, H, W) images with a Gaussian of std `sigma` pixels (edges repeated).

    The start canvas of RISE's insertion curve: the shapes are gone, the brightness stays.
    """
    images = _check_images(images, "images")
    sigma = _check_blur_sigma(sigma)
    # 3 sigma, but no wider than the image: past that the edge-repeated padding adds nothing new
    radius = max(1, int(math.ceil(min(3 * sigma, max(images.shape[2:])))))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    for axis in (2, 3):  # separable: blur rows, then columns
        pad = [(0, 0)] * 4
        pad[axis] = (radius, radius)
        padded = np.pad(images, pad, mode="edge")
        size = images.shape[axis]
        images = sum(weight * np.take(padded, np.arange(start, start + size), axis=axis)
                     for start, weight in enumerate(kernel))
    return images


def _check_blur_sigma(sigma, name="sigma"):
    return check_number(name, sigma, positive=True)   # the blur's std in pixels


def model_scores(model, images, target, score="probability", batch_size=256):
    """The target class's softmax probability (or logit) for each image, under no_grad.

    images (N, C, H, W); the model runs in eval mode (restored afterwards) in batches.
    """
    check_model(model)
    check_choice("score", score, SCORE_KINDS)
    check_int("batch_size", batch_size)
    images = _check_images(images, "images", model)
    target = check_target(target, len(images))
    logits = parallel.logits(model, images, batch_size).astype(np.float64)
    return _target_scores(logits, target, score)


def _target_scores(logits, target, score):
    """The target class's logit or softmax probability, per row."""
    rows = np.arange(len(logits))
    check_target_range(target, logits.shape[1])
    if score == "logit":
        return logits[rows, target]
    shifted = logits - logits.max(axis=1, keepdims=True)  # no overflow in exp
    probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    return probabilities[rows, target]


def _removal_order(maps, x, relevance):
    """position[i, p] = when pixel p of image i is removed (0 = first), highest map value first.

    A stable sort: pixels with equal values go in row-major order, so curves are reproducible.
    """
    pooled = pool_channels(maps, relevance)
    if pooled.shape != (x.shape[0],) + x.shape[2:]:
        raise ValueError(f"maps has shape {maps.shape}; its pixels must match x's, shape {x.shape}")
    flat = pooled.reshape(len(pooled), -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    position = np.empty_like(order)
    np.put_along_axis(position, order, np.arange(flat.shape[1])[None, :], axis=1)
    return position


def _baseline_images(x, baseline, blur_sigma):
    """The images every pixel is replaced by (deletion) or starts from (insertion)."""
    if isinstance(baseline, str):
        if baseline != "blur":
            raise ValueError(f"baseline: expected a number, an array like x, or 'blur', got {baseline!r}")
        return gaussian_blur(x, blur_sigma)
    if isinstance(baseline, (bool, np.bool_)):
        raise TypeError(f"baseline: expected a number, an array like x, or 'blur', got {baseline!r}")
    baseline = check_finite_array(baseline, "baseline")
    try:
        return np.broadcast_to(baseline, x.shape).astype(np.float64)
    except ValueError:
        raise ValueError(f"baseline of shape {baseline.shape} cannot be broadcast to x's shape {x.shape}") from None


def _check_images(x, name="x", model=None):
    """Finite (N, C, H, W) images, N >= 1; with a model, of the shape it takes (as the methods check)."""
    x = check_finite_array(x, name)
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"{name}: expected (N, C, H, W) images, N >= 1, got shape {x.shape}")
    if model is not None:
        check_input_shape(model, x.shape, name)
    return x


def _perturbation_curve(model, x, maps, target, steps, baseline, batch_size, score, relevance,
                        blur_sigma, insert):
    """deletion_curve (insert=False) or insertion_curve (insert=True); see their docstrings."""
    x = _check_images(x, "x", check_model(model))
    check_int("steps", steps)
    check_int("batch_size", batch_size)
    check_choice("score", score, SCORE_KINDS)
    _check_blur_sigma(blur_sigma, "blur_sigma")  # even when unused: a wrong value is a mistake
    target = check_target(target, len(x))
    position = _removal_order(maps, x, relevance)
    num_pixels = position.shape[1]
    most = max(num_pixels, MAX_STEPS)  # more steps than pixels only repeat points
    if steps > most:
        raise ValueError(f"steps: expected an int from 1 to {most} (the pixels of an image, or {MAX_STEPS}), "
                         f"got {steps}")
    base = _baseline_images(x, baseline, blur_sigma)

    n, channels = x.shape[:2]
    # Integer counts so both ends are exact: 0 pixels at step 0, all of them at the last step.
    counts = (np.arange(steps + 1) * num_pixels) // steps
    x_flat, base_flat = x.reshape(n, channels, -1), base.reshape(n, channels, -1)
    # Insertion starts from the baseline and reveals x; deletion starts from x.
    start, end = (base_flat, x_flat) if insert else (x_flat, base_flat)

    # Every (image, step) pair is one input to score: batch_size of them at a time.
    image_index, step_index = np.divmod(np.arange(n * (steps + 1)), steps + 1)
    scores = np.empty(n * (steps + 1))
    for first, last in parallel.batch_bounds(len(image_index), batch_size):
        i, k = image_index[first:last], step_index[first:last]
        changed = position[i] < counts[k][:, None]        # (B, pixels): already switched
        images = np.where(changed[:, None, :], end[i], start[i]).reshape((len(i),) + x.shape[1:])
        scores[first:last] = model_scores(model, images, target[i], score, batch_size)
    return counts / num_pixels, scores.reshape(n, steps + 1)


def deletion_curve(model, x, maps, target, steps=50, baseline=0.0, batch_size=256,
                   score="probability", relevance="signed", blur_sigma=2.0):
    """Deletion curve (Petsiuk et al. 2018, "RISE"): remove the most relevant pixels first.

    Pixels are set to `baseline` (a number, an array broadcastable to x, or "blur" for a
    Gaussian-blurred copy of x with std `blur_sigma`) in order of decreasing map value
    (pooled over channels by `relevance`; all channels of a pixel go together), and the
    model's `score` for the target ("probability": softmax, or "logit") is recorded after
    each of `steps` equal chunks. A faithful map makes the score fall fast: LOWER area is better.

    Order ties: a stable sort, so equal values are removed in row-major order. Deterministic.
    The model runs under no_grad in eval mode (restored afterwards), `batch_size` images at a time.
    Returns fractions (steps + 1,) in [0, 1] (the exact share of pixels removed) and
    scores (N, steps + 1); scores[:, 0] is the intact image.
    """
    return _perturbation_curve(model, x, maps, target, steps, baseline, batch_size, score,
                               relevance, blur_sigma, insert=False)


def insertion_curve(model, x, maps, target, steps=50, baseline=0.0, batch_size=256,
                    score="probability", relevance="signed", blur_sigma=2.0):
    """Insertion curve (Petsiuk et al. 2018, "RISE"): reveal the most relevant pixels first.

    The mirror of deletion_curve: start from `baseline` (RISE starts from a blurred image:
    baseline="blur") and copy pixels of x back in order of decreasing map value. A faithful
    map makes the score rise fast: HIGHER area is better. Same ties, batching and return
    values as deletion_curve; scores[:, 0] is the baseline, scores[:, -1] the intact image.
    """
    return _perturbation_curve(model, x, maps, target, steps, baseline, batch_size, score,
                               relevance, blur_sigma, insert=True)


def area_under_curve(fractions, scores):
    """Trapezoid-rule area under curves: fractions (S,) increasing, scores (S,) or (N, S).

    With fractions spanning [0, 1] and probability scores the area lies in [0, 1].
    Returns a float for one curve, (N,) for many.
    """
    fractions = check_finite_array(fractions, "fractions")
    scores = check_finite_array(scores, "scores")
    if fractions.ndim != 1 or len(fractions) < 2:
        raise ValueError(f"fractions: expected a 1-D array of at least 2 points, got shape {fractions.shape}")
    if np.any(np.diff(fractions) < 0):
        raise ValueError("fractions: expected non-decreasing values, got a decrease")
    if scores.ndim not in (1, 2) or scores.shape[-1] != len(fractions):
        raise ValueError(f"scores: expected ({len(fractions)},) or (N, {len(fractions)}) scores (one per "
                         f"fraction), got shape {scores.shape}")
    widths = np.diff(fractions)
    heights = (scores[..., 1:] + scores[..., :-1]) / 2
    return (widths * heights).sum(axis=-1)
