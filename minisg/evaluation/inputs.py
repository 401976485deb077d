"""What every metric reads: maps pooled to one relevance value per pixel, and checked inputs.

The conventions (shapes, the three relevance modes, errors) are those of the metrics module's
docstring. Every check raises ValueError naming the argument, so a student who passes a map of
the wrong shape, or one holding NaN, learns which argument it was. Targets and counts are
checked by the methods' own checks (minisg/methods/_checks.py).
"""
import numpy as np

from ..checks import as_array, check_choice, check_finite_array  # noqa: F401 (the metrics import it from here)

RELEVANCE_MODES = ("positive", "absolute", "signed")


def as_numpy(value, name="value"):
    """A NumPy array from an array, a list, or a minisg Tensor (CPU or GPU); nested lists of
    uneven lengths are a ValueError naming `name`."""
    return as_array(name, value, "an array of numbers")


def check_maps(maps, name="maps"):
    """float64 maps shaped (N, H, W) or (N, C, H, W), all finite, at least one."""
    maps = check_finite_array(maps, name)
    if maps.ndim not in (3, 4):
        raise ValueError(f"{name}: expected (N, H, W) or (N, C, H, W) maps, got shape {maps.shape}")
    if maps.shape[0] == 0 or maps.size == 0:
        raise ValueError(f"{name}: expected at least one map of at least one pixel, got shape {maps.shape}")
    return maps


def pool_channels(maps, relevance="positive", name="maps"):
    """One relevance value per pixel: (N, H, W) float64 from maps (N, H, W) or (N, C, H, W).

    relevance: "positive" (channel sum, negative part dropped), "absolute" (sum of |values|)
    or "signed" (channel sum). See the module docstring.
    """
    maps = check_maps(maps, name)
    check_choice("relevance", relevance, RELEVANCE_MODES)
    if relevance == "absolute":
        maps = np.abs(maps)
    pooled = maps.sum(axis=1) if maps.ndim == 4 else maps
    return np.maximum(pooled, 0.0) if relevance == "positive" else pooled


def check_masks(masks, shape, name="masks"):
    """bool masks of exactly `shape`; 0/1 numbers are accepted, anything else is an error."""
    masks = as_numpy(masks, name)
    if masks.dtype != bool:
        masks = check_finite_array(masks, name)
        if not np.isin(masks, (0.0, 1.0)).all():
            raise ValueError(f"{name} must be boolean or hold only 0 and 1")
        masks = masks.astype(bool)
    if masks.shape != tuple(shape):
        raise ValueError(f"{name} has shape {masks.shape}, expected {tuple(shape)} to match the maps")
    return masks


def check_nonempty(masks, name):
    """Masks with no pixel make every localisation score undefined: refuse them."""
    empty = np.flatnonzero(~masks.reshape(len(masks), -1).any(axis=1))
    if len(empty):
        raise ValueError(f"{name} is empty (no True pixel) for image(s) {empty[:10].tolist()}")


def safe_ratio(numerator, denominator):
    """numerator / denominator, and 0 where the denominator is 0 (no relevance -> no credit)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(np.broadcast_shapes(numerator.shape, denominator.shape))
    return np.divide(numerator, denominator, out=out, where=denominator != 0)
