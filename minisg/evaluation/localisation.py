"""Localisation and discriminativity: does the map's relevance lie on the object's mask?

pointing_game asks about the single highest pixel, relevance_mass and target_mass_share about
the share of all relevance, relevance_rank_accuracy about the K highest pixels, and
discriminativity about the choice between two digits. Shapes, relevance modes and errors
follow the metrics module's docstring; every function returns one score per image.
"""
import math

import numpy as np

from ..checks import check_number
from ..methods._checks import check_target
from .inputs import as_numpy, check_masks, check_nonempty, pool_channels, safe_ratio


def dilate(masks, radius):
    """Grow bool masks (N, H, W) by every pixel within Euclidean distance `radius` of them."""
    masks = as_numpy(masks, "masks")
    if masks.dtype != bool or masks.ndim != 3:
        raise ValueError(f"masks: expected bool masks (N, H, W), got dtype {masks.dtype}, shape {masks.shape}")
    radius = check_number("radius", radius)
    height, width = masks.shape[-2:]
    radius = min(radius, height + width)  # beyond that every pixel of the image is reached anyway
    reach = int(math.floor(radius))
    if reach == 0:
        return masks.copy()
    padded = np.pad(masks, ((0, 0), (reach, reach), (reach, reach)))
    grown = np.zeros_like(masks)
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            if dy * dy + dx * dx <= radius * radius:
                grown |= padded[:, reach + dy:reach + dy + height, reach + dx:reach + dx + width]
    return grown


def _nonempty_masks(masks, shape):
    """Checked masks of `shape`, each with at least one pixel."""
    masks = check_masks(masks, shape)
    check_nonempty(masks, "masks")
    return masks


def _mass_relevance(maps, relevance):
    """pool_channels for the mass shares, which need relevance that cannot be negative."""
    relevance_map = pool_channels(maps, relevance)
    if relevance == "signed":
        raise ValueError("relevance='signed' makes a mass share meaningless (masses could cancel); "
                         "use 'positive' or 'absolute'")
    return relevance_map


def _mass_on(relevance_map, masks):
    """Relevance inside each image's mask: (N,)."""
    return (relevance_map * masks).sum(axis=(1, 2))


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
    masks = _nonempty_masks(masks, relevance_map.shape)
    target_area = dilate(masks, check_number("tolerance", tolerance))
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
    relevance_map = _mass_relevance(maps, relevance)
    masks = _nonempty_masks(masks, relevance_map.shape)
    inside = _mass_on(relevance_map, masks)
    return safe_ratio(inside, relevance_map.sum(axis=(1, 2)))


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
    masks = _nonempty_masks(masks, relevance_map.shape)
    flat_masks = masks.reshape(len(masks), -1)
    flat_maps = relevance_map.reshape(len(masks), -1)
    return np.array([_rank_accuracy(values, mask) for values, mask in zip(flat_maps, flat_masks)])


def _rank_accuracy(values, mask):
    """relevance_rank_accuracy of one flattened map and mask."""
    k = int(mask.sum())
    kth_value = np.partition(values, len(values) - k)[len(values) - k]
    above, tied = values > kth_value, values == kth_value
    free_places = k - above.sum()
    hits = (above & mask).sum() + free_places * (tied & mask).sum() / tied.sum()
    return hits / k


def _check_target_index(target_index, n, slots):
    index = check_target(target_index, n, name="target_index")
    outside = (index < 0) | (index >= slots)
    if np.any(outside):
        raise ValueError(f"target_index must lie in [0, {slots}), got {index[outside][:5]}")
    return index


def _check_scene_masks(scene_masks, n, height, width):
    """bool (N, K, H, W) masks, one per digit slot of each scene."""
    scene_masks = as_numpy(scene_masks, "scene_masks")
    if scene_masks.ndim != 4:
        raise ValueError(f"scene_masks must be (N, K, H, W), got shape {scene_masks.shape}")
    return check_masks(scene_masks, (n, scene_masks.shape[1], height, width), "scene_masks")


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
    relevance_map = _mass_relevance(maps, relevance)
    n, height, width = relevance_map.shape
    scene_masks = _check_scene_masks(scene_masks, n, height, width)
    index = _check_target_index(target_index, n, scene_masks.shape[1])
    target_masks = scene_masks[np.arange(n), index]
    check_nonempty(target_masks, "scene_masks[target_index]")
    on_target = _mass_on(relevance_map, target_masks)
    on_any_digit = _mass_on(relevance_map, scene_masks.any(axis=1))
    return safe_ratio(on_target, on_any_digit)


def discriminativity(maps, target_mask, other_mask, relevance="positive"):
    """Mass share on the target digit minus mass share on the other digit, per image.

    Both shares are fractions of the map's total relevance (as relevance_mass), so the score
    lies in [-1, 1]: 1 = all relevance on the target, -1 = all on the other digit, 0 = no
    preference (or an all-zero map). Swapping target and other flips the sign. This is the
    class-discriminativity question of Grad-CAM (Selvaraju et al. 2017) on two-digit images
    (minisg.data.two_digit_image), scored with CLEVR-XAI's mass (Arras et al. 2022).
    target_mask, other_mask: bool (N, H, W); pixels in both would count for both and cancel.
    """
    relevance_map = _mass_relevance(maps, relevance)
    target_mask = check_masks(target_mask, relevance_map.shape, "target_mask")
    other_mask = check_masks(other_mask, relevance_map.shape, "other_mask")
    total = relevance_map.sum(axis=(1, 2))
    on_target = _mass_on(relevance_map, target_mask)
    on_other = _mass_on(relevance_map, other_mask)
    return safe_ratio(on_target - on_other, total)
