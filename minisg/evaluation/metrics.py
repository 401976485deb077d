"""Quantitative scores for sensitivity maps, using MNIST's free ground truth.

The SmoothGrad paper notes that "there is no ground truth to allow for quantitative
evaluation". On MNIST there is some: a digit's ink is its mask, and ``minisg.data.make_scenes``
and ``two_digit_image`` give every digit of a canvas its own mask. This module scores maps
against those masks and against the model itself. Every function works on NumPy arrays
(a minisg Tensor is accepted too) and returns one score per image, so results can be
averaged with ``mean_and_stderr`` and printed with ``results_tables``.

Families of metrics:

  localisation     pointing_game, relevance_mass, relevance_rank_accuracy, target_mass_share
  discriminativity discriminativity
  faithfulness     deletion_curve, insertion_curve, area_under_curve
  sanity           cascading_randomisation, spearman
  visual noise     normalise_for_display, total_variation, high_frequency_energy
  aggregation      mean_and_stderr, results_tables

Shapes and conventions (the same everywhere):

* ``maps`` is (N, H, W) (CAM methods) or (N, C, H, W) (pixel methods). Channels are pooled
  into one value per pixel, chosen by ``relevance``:
      "positive"  sum over channels, then keep the positive part   (evidence FOR the target)
      "absolute"  sum of absolute values over channels             (magnitude, as displayed)
      "signed"    sum over channels, sign kept                     (orderings only)
  Localisation and discriminativity default to "positive" and the faithfulness curves to
  "signed": both read the map literally ("the maximum", "decreasing attribution").
  SmoothGrad's gradient maps are usually shown in absolute value: pass relevance="absolute"
  to score what the paper's figures show.
* ``masks`` is bool (N, H, W) (or 0/1 numbers); scene masks are (N, K, H, W).
* ``target`` is one class for every image (an int) or one per image, shape (N,).
* A NaN or infinite value, a wrong shape or a bad option raises ValueError naming the argument.
* Ties are resolved deterministically and documented in each function.
"""
import copy
import csv
import io
import math
from dataclasses import dataclass

import numpy as np

from .. import backend, parallel
from ..autograd import Tensor, no_grad

RELEVANCE_MODES = ("positive", "absolute", "signed")
SCORE_KINDS = ("probability", "logit")


# ----------------------------------------------------------------------------- checking inputs

def _as_numpy(value):
    """A NumPy array from an array, a list, or a minisg Tensor (CPU or GPU)."""
    if isinstance(value, Tensor):
        return value.numpy()
    return np.asarray(backend.to_numpy(value) if hasattr(value, "dtype") else value)


def _check_finite_array(value, name):
    array = _as_numpy(value)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(f"{name} holds {int(bad.sum())} NaN or infinite value(s); "
                         f"a metric of such a map would be meaningless")
    return array


def _check_maps(maps, name="maps"):
    """float64 maps shaped (N, H, W) or (N, C, H, W), all finite."""
    maps = _check_finite_array(maps, name)
    if maps.ndim not in (3, 4):
        raise ValueError(f"{name} must be (N, H, W) or (N, C, H, W), got shape {maps.shape}")
    return maps


def _check_choice(value, choices, name):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def pool_channels(maps, relevance="positive", name="maps"):
    """One relevance value per pixel: (N, H, W) float64 from maps (N, H, W) or (N, C, H, W).

    relevance: "positive" (channel sum, negative part dropped), "absolute" (sum of |values|)
    or "signed" (channel sum). See the module docstring.
    """
    maps = _check_maps(maps, name)
    _check_choice(relevance, RELEVANCE_MODES, "relevance")
    if relevance == "absolute":
        maps = np.abs(maps)
    pooled = maps.sum(axis=1) if maps.ndim == 4 else maps
    return np.maximum(pooled, 0.0) if relevance == "positive" else pooled


def _check_masks(masks, shape, name="masks"):
    """bool masks of exactly `shape`; 0/1 numbers are accepted, anything else is an error."""
    masks = _as_numpy(masks)
    if masks.dtype != bool:
        masks = _check_finite_array(masks, name)
        if not np.isin(masks, (0.0, 1.0)).all():
            raise ValueError(f"{name} must be boolean or hold only 0 and 1")
        masks = masks.astype(bool)
    if masks.shape != tuple(shape):
        raise ValueError(f"{name} has shape {masks.shape}, expected {tuple(shape)} to match the maps")
    return masks


def _check_nonempty(masks, name):
    """Masks with no pixel make every localisation score undefined: refuse them."""
    empty = np.flatnonzero(~masks.reshape(len(masks), -1).any(axis=1))
    if len(empty):
        raise ValueError(f"{name} is empty (no True pixel) for image(s) {empty[:10].tolist()}")


def _check_targets(target, n, name="target"):
    """One int per image, shape (N,), from an int or N ints."""
    target = _as_numpy(target)
    if target.dtype.kind not in "iu":
        raise ValueError(f"{name} must be an int or ints, got {target!r}")
    target = np.broadcast_to(target.astype(np.int64), (n,)) if target.ndim == 0 else target.astype(np.int64)
    if target.shape != (n,):
        raise ValueError(f"{name} must be an int or have shape ({n},), got shape {target.shape}")
    return target


def _safe_ratio(numerator, denominator):
    """numerator / denominator, and 0 where the denominator is 0 (no relevance -> no credit)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(np.broadcast_shapes(numerator.shape, denominator.shape))
    return np.divide(numerator, denominator, out=out, where=denominator != 0)


# ----------------------------------------------------------------------------- localisation

def dilate(masks, radius):
    """Grow bool masks (N, H, W) by every pixel within Euclidean distance `radius` of them."""
    if radius < 0 or not np.isfinite(radius):
        raise ValueError(f"tolerance must be a finite number >= 0, got {radius!r}")
    reach = int(math.floor(radius))
    if reach == 0:
        return masks.copy()
    height, width = masks.shape[-2:]
    padded = np.pad(masks, ((0, 0), (reach, reach), (reach, reach)))
    grown = np.zeros_like(masks)
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            if dy * dy + dx * dx <= radius * radius:
                grown |= padded[:, reach + dy:reach + dy + height, reach + dx:reach + dx + width]
    return grown


def pointing_game(maps, masks, tolerance=0, relevance="positive"):
    """Pointing game (Zhang et al. 2016, "Top-down neural attention by excitation backprop").

    A hit when the map's maximum lies inside the mask, or within `tolerance` pixels
    (Euclidean) of it, as Zhang et al.'s 15-pixel tolerance. Returns (N,) scores in [0, 1].

    Ties: when several pixels share the maximum, the score is the fraction of them inside
    the mask: the expected hit rate if one of them were picked at random. A unique maximum
    scores exactly 0 or 1; an all-zero map (every pixel tied) scores the mask's area
    fraction, i.e. chance, instead of a lucky hit for the first pixel.
    """
    relevance_map = pool_channels(maps, relevance)
    masks = _check_masks(masks, relevance_map.shape)
    _check_nonempty(masks, "masks")
    target_area = dilate(masks, tolerance)
    flat = relevance_map.reshape(len(relevance_map), -1)
    is_max = flat == flat.max(axis=1, keepdims=True)
    inside = (is_max & target_area.reshape(len(flat), -1)).sum(axis=1)
    return inside / is_max.sum(axis=1)


def relevance_mass(maps, masks, relevance="positive"):
    """Relevance mass accuracy (Arras et al. 2022, "CLEVR-XAI"): share of relevance in the mask.

    sum(relevance inside mask) / sum(relevance everywhere), with relevance the positive part
    of the map (default, as in CLEVR-XAI) or its absolute value (relevance="absolute").
    Returns (N,) scores in [0, 1]; a uniform map scores the mask's area fraction.
    An all-zero relevance map puts no relevance inside: it scores 0.
    """
    relevance_map = pool_channels(maps, relevance)
    _no_signed(relevance)
    masks = _check_masks(masks, relevance_map.shape)
    _check_nonempty(masks, "masks")
    inside = (relevance_map * masks).sum(axis=(1, 2))
    return _safe_ratio(inside, relevance_map.sum(axis=(1, 2)))


def _no_signed(relevance):
    if relevance == "signed":
        raise ValueError("relevance='signed' makes a mass share meaningless (masses could cancel); "
                         "use 'positive' or 'absolute'")


def relevance_rank_accuracy(maps, masks, relevance="positive"):
    """Relevance rank accuracy (Arras et al. 2022, "CLEVR-XAI").

    With K = the number of mask pixels, the fraction of the K highest-relevance pixels that lie
    inside the mask. Returns (N,) scores in [0, 1]; a random map scores about the mask's area
    fraction, a map equal to the mask scores 1.

    Ties at the K-th value: the free places among the top K are shared out in proportion to
    how many tied pixels lie in the mask (the expected score under random tie-breaking), so
    an all-zero map scores the mask's area fraction, deterministically.
    """
    relevance_map = pool_channels(maps, relevance)
    masks = _check_masks(masks, relevance_map.shape)
    _check_nonempty(masks, "masks")
    scores = np.empty(len(relevance_map))
    for i, (values, mask) in enumerate(zip(relevance_map.reshape(len(masks), -1),
                                           masks.reshape(len(masks), -1))):
        k = int(mask.sum())
        kth_value = np.partition(values, len(values) - k)[len(values) - k]
        above, tied = values > kth_value, values == kth_value
        free_places = k - above.sum()
        hits = (above & mask).sum() + free_places * (tied & mask).sum() / tied.sum()
        scores[i] = hits / k
    return scores


def _check_target_index(target_index, n, slots):
    index = _check_targets(target_index, n, "target_index")
    if np.any((index < 0) | (index >= slots)):
        raise ValueError(f"target_index must lie in [0, {slots}), got {index[(index < 0) | (index >= slots)][:5]}")
    return index


def target_mass_share(maps, scene_masks, target_index, relevance="positive"):
    """The "target among distractors" localisation score for multi-digit scenes.

    mass on the target digit's mask / mass on the union of all digit masks of the scene,
    with relevance as in relevance_mass (after Arras et al. 2022's mass accuracy, but
    ignoring the background so only the choice between digits counts).
    scene_masks: bool (N, K, H, W) as make_scenes gives (empty slots are fine);
    target_index: the target digit's slot k, an int or (N,) ints.
    Returns (N,) scores in [0, 1]; 1 / (number of digits) is what a map that does not
    prefer any digit of equal ink would score. No relevance on any digit scores 0.
    """
    relevance_map = pool_channels(maps, relevance)
    _no_signed(relevance)
    n, height, width = relevance_map.shape
    scene_masks = _as_numpy(scene_masks)
    if scene_masks.ndim != 4:
        raise ValueError(f"scene_masks must be (N, K, H, W), got shape {scene_masks.shape}")
    scene_masks = _check_masks(scene_masks, (n, scene_masks.shape[1], height, width), "scene_masks")
    index = _check_target_index(target_index, n, scene_masks.shape[1])
    target_masks = scene_masks[np.arange(n), index]
    _check_nonempty(target_masks, "scene_masks[target_index]")
    on_target = (relevance_map * target_masks).sum(axis=(1, 2))
    on_any_digit = (relevance_map * scene_masks.any(axis=1)).sum(axis=(1, 2))
    return _safe_ratio(on_target, on_any_digit)


# ----------------------------------------------------------------------------- discriminativity

def discriminativity(maps, target_mask, other_mask, relevance="positive"):
    """Mass share on the target digit minus mass share on the other digit, per image.

    Both shares are fractions of the map's total relevance (as relevance_mass), so the score
    lies in [-1, 1]: 1 = all relevance on the target, -1 = all on the other digit, 0 = no
    preference (or an all-zero map). Swapping target and other flips the sign. This is the
    class-discriminativity question of Grad-CAM (Selvaraju et al. 2017) on two-digit images
    (minisg.data.two_digit_image), scored with CLEVR-XAI's mass (Arras et al. 2022).
    target_mask, other_mask: bool (N, H, W); pixels in both would count for both and cancel.
    """
    relevance_map = pool_channels(maps, relevance)
    _no_signed(relevance)
    target_mask = _check_masks(target_mask, relevance_map.shape, "target_mask")
    other_mask = _check_masks(other_mask, relevance_map.shape, "other_mask")
    total = relevance_map.sum(axis=(1, 2))
    on_target = (relevance_map * target_mask).sum(axis=(1, 2))
    on_other = (relevance_map * other_mask).sum(axis=(1, 2))
    return _safe_ratio(on_target - on_other, total)


# ----------------------------------------------------------------------------- faithfulness

def gaussian_blur(images, sigma):
    """Blur (N, C, H, W) images with a Gaussian of std `sigma` pixels (edges repeated).

    The start canvas of RISE's insertion curve: the shapes are gone, the brightness stays.
    """
    images = _check_finite_array(images, "images")
    if not sigma > 0:
        raise ValueError(f"blur_sigma (the blur's sigma) must be > 0, got {sigma!r}")
    radius = max(1, int(math.ceil(3 * sigma)))
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
            raise ValueError(f"baseline must be a number, an array like x, or 'blur', got {baseline!r}")
        return gaussian_blur(x, blur_sigma)
    baseline = _check_finite_array(baseline, "baseline")
    try:
        return np.broadcast_to(baseline, x.shape).astype(np.float64)
    except ValueError:
        raise ValueError(f"baseline of shape {baseline.shape} cannot be broadcast to x's shape {x.shape}") from None


def _model_dtype_and_device(model, x):
    parameters = model.parameters() if hasattr(model, "parameters") else []
    if parameters:
        return parameters[0].dtype, parameters[0].device
    return x.dtype, "cpu"


def _target_scores(logits, target, score):
    """The target class's logit or softmax probability, per row."""
    rows = np.arange(len(logits))
    if np.any((target < 0) | (target >= logits.shape[1])):
        raise ValueError(f"target must be classes in [0, {logits.shape[1]}), got {np.unique(target)}")
    if score == "logit":
        return logits[rows, target]
    shifted = logits - logits.max(axis=1, keepdims=True)  # no overflow in exp
    probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    return probabilities[rows, target]


class _EvalMode:
    """Put every module in eval mode (no dropout) and restore each one's own flag afterwards."""

    def __init__(self, model):
        self.modules = list(_all_modules(model))

    def __enter__(self):
        self.flags = [m.training for m in self.modules]
        for m in self.modules:
            m.training = False

    def __exit__(self, *exc):
        for m, flag in zip(self.modules, self.flags):
            m.training = flag


def _all_modules(module):
    yield module
    for _, child in getattr(module, "named_children", lambda: [])():
        yield from _all_modules(child)


def model_scores(model, images, target, score="probability", batch_size=256):
    """The target class's softmax probability (or logit) for each image, under no_grad.

    images (N, C, H, W); the model runs in eval mode (restored afterwards) in batches.
    """
    _check_choice(score, SCORE_KINDS, "score")
    images = np.asarray(images)
    target = _check_targets(target, len(images))
    dtype, device = _model_dtype_and_device(model, images)
    scores = np.empty(len(images))

    def score_slice(start, stop):                  # in a worker thread: no_grad is per thread
        with no_grad():
            batch = backend.to_device(np.ascontiguousarray(images[start:stop], dtype=dtype), device)
            logits = _as_numpy(model(Tensor(batch))).astype(np.float64)
        scores[start:stop] = _target_scores(logits, target[start:stop], score)

    with _EvalMode(model):
        for start in range(0, len(images), batch_size):
            stop = min(start + batch_size, len(images))
            parallel.map_slices(lambda a, b: score_slice(start + a, start + b), stop - start, on_cpu=device == "cpu")
    return scores


def _perturbation_curve(model, x, maps, target, steps, baseline, batch_size, score, relevance,
                        blur_sigma, insert):
    x = _check_finite_array(x, "x")
    if x.ndim != 4:
        raise ValueError(f"x must be (N, C, H, W), got shape {x.shape}")
    if not (isinstance(steps, (int, np.integer)) and steps >= 1):
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    if not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    _check_choice(score, SCORE_KINDS, "score")
    target = _check_targets(target, len(x))
    position = _removal_order(maps, x, relevance)
    base = _baseline_images(x, baseline, blur_sigma)

    n, channels = x.shape[:2]
    num_pixels = position.shape[1]
    # Integer counts so both ends are exact: 0 pixels at step 0, all of them at the last step.
    counts = (np.arange(steps + 1) * num_pixels) // steps
    x_flat, base_flat = x.reshape(n, channels, -1), base.reshape(n, channels, -1)
    # Insertion starts from the baseline and reveals x; deletion starts from x.
    start, end = (base_flat, x_flat) if insert else (x_flat, base_flat)

    image_index, step_index = np.divmod(np.arange(n * (steps + 1)), steps + 1)
    scores = np.empty(n * (steps + 1))
    for first in range(0, len(image_index), batch_size):
        i = image_index[first:first + batch_size]
        k = step_index[first:first + batch_size]
        changed = position[i] < counts[k][:, None]        # (B, pixels): already switched
        images = np.where(changed[:, None, :], end[i], start[i]).reshape((len(i),) + x.shape[1:])
        scores[first:first + len(i)] = model_scores(model, images, target[i], score, batch_size)
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
    fractions = _check_finite_array(fractions, "fractions")
    scores = _check_finite_array(scores, "scores")
    if fractions.ndim != 1 or len(fractions) < 2:
        raise ValueError(f"fractions must be 1-D with at least 2 points, got shape {fractions.shape}")
    if np.any(np.diff(fractions) < 0):
        raise ValueError("fractions must be non-decreasing")
    if scores.shape[-1] != len(fractions):
        raise ValueError(f"scores has {scores.shape[-1]} points per curve, fractions has {len(fractions)}")
    widths = np.diff(fractions)
    heights = (scores[..., 1:] + scores[..., :-1]) / 2
    return (widths * heights).sum(axis=-1)


# ----------------------------------------------------------------------------- sanity checks

def average_ranks(values):
    """1-based ranks of a 1-D array; tied values share the mean of their ranks."""
    values = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts_group = np.r_[True, sorted_values[1:] != sorted_values[:-1]]
    group_of = np.cumsum(starts_group) - 1                 # group of each sorted position
    group_start = np.flatnonzero(starts_group)
    group_end = np.r_[group_start[1:], len(values)]         # exclusive
    mean_rank = (group_start + group_end - 1) / 2 + 1       # mean of 1-based ranks in a group
    ranks = np.empty(len(values))
    ranks[order] = mean_rank[group_of]
    return ranks


def spearman(a, b):
    """Spearman rank correlation of two equally sized arrays (flattened), in [-1, 1].

    The Pearson correlation of their average ranks (ties share ranks), as scipy.stats.spearmanr.
    NaN when either array is constant: a constant map has no ordering to compare.
    """
    a = _check_finite_array(a, "a").ravel()
    b = _check_finite_array(b, "b").ravel()
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same number of values, got {a.size} and {b.size}")
    rank_a, rank_b = average_ranks(a), average_ranks(b)
    rank_a -= rank_a.mean()
    rank_b -= rank_b.mean()
    norm = math.sqrt((rank_a ** 2).sum() * (rank_b ** 2).sum())
    if norm == 0:
        return float("nan")
    return float(np.clip((rank_a * rank_b).sum() / norm, -1.0, 1.0))


@dataclass(frozen=True)
class RandomisationResult:
    """What cascading_randomisation found; step s has layers[:s + 1] randomised.

    layers:          names of the layers randomised at each step, top (output) layer first
    spearman_abs:    (steps, N) rank correlation of |original map| and |randomised map|
    spearman_signed: (steps, N) the same on the signed maps
    original_map:    the map of the intact model
    randomised_maps: (steps,) + original_map.shape, the map after each step
    """
    layers: list
    spearman_abs: np.ndarray
    spearman_signed: np.ndarray
    original_map: np.ndarray
    randomised_maps: np.ndarray


def parameter_layers(model):
    """Names of the layers that own parameters, input to output ('conv1', ..., 'fc2')."""
    names = []
    for name, _ in model.named_parameters():
        layer = name.rpartition(".")[0]
        if layer not in names:
            names.append(layer)
    return names


def _randomise_layer(model, layer, rng):
    """Redraw every parameter of `layer` from a normal with that parameter's own mean and std.

    We cannot know each layer's original initialiser, so we match its scale: activations stay
    in a sensible range and only the learned structure is destroyed. A constant parameter
    (e.g. biases initialised to 0.1 and never trained) stays constant, as re-running a
    constant initialiser would leave it.
    """
    state = model.state_dict()
    for name, value in state.items():
        if name.rpartition(".")[0] == layer:
            state[name] = rng.normal(value.mean(), value.std(), size=value.shape).astype(value.dtype)
    model.load_state_dict(state)


def _per_image_spearman(first, second):
    return np.array([spearman(a, b) for a, b in zip(first, second)])


def cascading_randomisation(model, method, x, target, layer_order=None, seed=0, **kwargs):
    """Cascading model-parameter randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps").

    On a deep copy of `model` (the caller's model is never changed), the parameters are
    re-initialised layer by layer from the top (output) layer downwards, keeping earlier
    randomisations, and `method(copy, x, target, **kwargs)` recomputes the map after each step.
    A map that explains the model must change: its Spearman rank correlation with the
    original map should drop towards 0. A map that stays the same (correlation 1) depends
    on the input only, like an edge detector.

    layer_order: layer names to randomise, in order (default: every layer with parameters,
    output first; see parameter_layers). Re-initialisation: see _randomise_layer; it is drawn
    from numpy.random.default_rng(seed), so results are reproducible.
    Returns a RandomisationResult with per-step, per-image correlations of absolute and
    signed maps (NaN where a map became constant, e.g. all zero).
    """
    copied = copy.deepcopy(model)
    copied.load_state_dict(model.state_dict())
    known = parameter_layers(copied)
    layers = list(reversed(known)) if layer_order is None else list(layer_order)
    unknown = [name for name in layers if name not in known]
    if unknown or not layers:
        raise ValueError(f"layer_order names {unknown or 'no layer'}; the layers with parameters are {known}")
    rng = np.random.default_rng(seed)

    original = _check_maps(method(copied, x, target, **kwargs), "the method's map")
    randomised = []
    for layer in layers:
        _randomise_layer(copied, layer, rng)
        randomised.append(_check_maps(method(copied, x, target, **kwargs), "the method's map"))
    randomised = np.stack(randomised)
    flat_original = original.reshape(len(original), -1)
    flat_random = randomised.reshape(len(layers), len(original), -1)
    return RandomisationResult(
        layers=layers,
        spearman_abs=np.stack([_per_image_spearman(np.abs(flat_original), np.abs(step)) for step in flat_random]),
        spearman_signed=np.stack([_per_image_spearman(flat_original, step) for step in flat_random]),
        original_map=original,
        randomised_maps=randomised,
    )


# ----------------------------------------------------------------------------- visual noise

def normalise_for_display(maps):
    """Maps as the SmoothGrad paper shows them: (N, H, W) in [0, 1].

    Channels pooled by summing absolute values, then per image
    clip((|m| - min) / (p99 - min), 0, 1), with p99 the 99th percentile: the brightest 1 %
    saturate so a few extreme gradients do not make everything else black. A map whose
    99th percentile equals its minimum (e.g. constant) becomes all zero.
    """
    pooled = pool_channels(maps, "absolute")
    lowest = pooled.min(axis=(1, 2), keepdims=True)
    cap = np.percentile(pooled, 99, axis=(1, 2), keepdims=True)
    return np.clip(_safe_ratio(pooled - lowest, cap - lowest), 0.0, 1.0)


def total_variation(maps):
    """Mean absolute difference between neighbouring pixels of the displayed map, per image.

    Anisotropic total variation (after Rudin, Osher and Fatemi 1992, who use the isotropic
    form) of normalise_for_display(maps), divided by the number of horizontal and vertical
    neighbour pairs, so it lies in [0, 1]: 0 for a constant map, 1 for a 0/1 checkerboard.
    Lower = smoother, the visual quality SmoothGrad aims at. Returns (N,).
    Note: the absolute value is taken first, so a +1/-1 checkerboard looks constant.
    """
    shown = normalise_for_display(maps)
    down = np.abs(np.diff(shown, axis=1)).sum(axis=(1, 2))
    across = np.abs(np.diff(shown, axis=2)).sum(axis=(1, 2))
    height, width = shown.shape[1:]
    pairs = (height - 1) * width + height * (width - 1)
    return (down + across) / max(pairs, 1)


def high_frequency_energy(maps, cutoff=0.25):
    """Share of the displayed map's spectral energy above a radial frequency `cutoff`, per image.

    normalise_for_display(maps), minus its mean (the constant part says nothing about
    noise), goes through numpy.fft.fft2; energy is |coefficient|^2 and the radial frequency
    sqrt(fy^2 + fx^2) is in cycles per pixel (Nyquist is 0.5 along each axis). The share above
    `cutoff` lies in [0, 1]: white noise gives about 1 - pi * cutoff^2 (0.80 for 0.25), a
    smooth blob nearly 0. A constant map has no energy left and scores 0. Returns (N,).
    """
    if not 0 < cutoff < math.sqrt(0.5):
        raise ValueError(f"cutoff must lie in (0, {math.sqrt(0.5):.3f}) cycles per pixel, got {cutoff!r}")
    shown = normalise_for_display(maps)
    shown = shown - shown.mean(axis=(1, 2), keepdims=True)
    energy = np.abs(np.fft.fft2(shown)) ** 2
    fy = np.fft.fftfreq(shown.shape[1])[:, None]
    fx = np.fft.fftfreq(shown.shape[2])[None, :]
    high = np.sqrt(fy ** 2 + fx ** 2) > cutoff
    return _safe_ratio((energy * high).sum(axis=(1, 2)), energy.sum(axis=(1, 2)))


# ----------------------------------------------------------------------------- aggregation

def mean_and_stderr(values, skip_nan=False):
    """(mean, standard error of the mean) of per-image scores, as Python floats.

    stderr = sample std (ddof=1) / sqrt(n); NaN when there is a single value.
    NaN inputs raise ValueError unless skip_nan=True (then they are left out; e.g. Spearman
    of a map that became constant).
    """
    values = np.asarray(_as_numpy(values), dtype=np.float64).ravel()
    if skip_nan:
        values = values[~np.isnan(values)]
    if values.size == 0:
        raise ValueError("values is empty (after dropping NaN)" if skip_nan else "values is empty")
    values = _check_finite_array(values, "values")
    if values.size == 1:
        return float(values[0]), float("nan")
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size))


def results_tables(results, digits=3):
    """A Markdown table and CSV text from {method: {metric: (mean, stderr)}}.

    Rows are methods, columns metrics (in first-seen order); a missing entry is blank.
    Markdown cells read "mean ± stderr" rounded to `digits`; the CSV keeps full precision in
    two columns per metric, METRIC_mean and METRIC_stderr. Returns (markdown, csv_text).
    """
    metrics = []
    for scores in results.values():
        metrics += [name for name in scores if name not in metrics]

    def cell(method, metric):
        if metric not in results[method]:
            return ""
        mean, stderr = results[method][metric]
        return f"{mean:.{digits}f} ± {stderr:.{digits}f}"

    lines = ["| method | " + " | ".join(metrics) + " |",
             "|---" * (len(metrics) + 1) + "|"]
    lines += ["| " + " | ".join([method] + [cell(method, m) for m in metrics]) + " |" for method in results]
    markdown = "\n".join(lines) + "\n"

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["method"] + [f"{m}_{part}" for m in metrics for part in ("mean", "stderr")])
    for method, scores in results.items():
        row = [method]
        for metric in metrics:
            row += [repr(float(v)) for v in scores[metric]] if metric in scores else ["", ""]
        writer.writerow(row)
    return markdown, buffer.getvalue()
