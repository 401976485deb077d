"""Sanity checks: does the map change when what the model learned is destroyed?

Cascading model-parameter randomisation (Adebayo et al. 2018) re-initialises the layers from
the output downwards and compares each new map with the original one by Spearman rank
correlation. A map that explains the model must change; one that does not is an edge detector.
"""
import copy
import math
from dataclasses import dataclass

import numpy as np

from ..checks import check_int
from ..methods._checks import check_model
from .inputs import check_finite_array, check_maps


def average_ranks(values):
    """1-based ranks of a 1-D array; tied values share the mean of their ranks."""
    values = check_finite_array(values, "values")
    if values.ndim != 1:
        raise ValueError(f"values: expected a 1-D array, got shape {values.shape}")
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
    a = check_finite_array(a, "a").ravel()
    b = check_finite_array(b, "b").ravel()
    if a.shape != b.shape:
        raise ValueError(f"b: expected as many values as a ({a.size}), got {b.size}")
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


def _per_step_spearman(original, randomised):
    """(steps, N) Spearman correlations of each image's flattened map, step by step."""
    return np.stack([np.array([spearman(a, b) for a, b in zip(original, step)]) for step in randomised])


def _layers_to_randomise(model, layer_order):
    """layer_order checked against the model's layers; by default every layer, output first."""
    known = parameter_layers(model)
    layers = list(reversed(known)) if layer_order is None else list(layer_order)
    unknown = [name for name in layers if name not in known]
    if unknown or not layers:
        raise ValueError(f"layer_order names {unknown or 'no layer'}; the layers with parameters are {known}")
    return layers


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
    check_model(model)
    if not callable(method):
        raise TypeError(f"method: expected a function method(model, x, target, **kwargs) (e.g. "
                        f"minisg.methods.vanilla_gradient), got {method!r:.80}")
    check_int("seed", seed, low=0)
    copied = copy.deepcopy(model)
    copied.load_state_dict(model.state_dict())
    layers = _layers_to_randomise(copied, layer_order)
    rng = np.random.default_rng(seed)

    def map_of_copy():
        return check_maps(method(copied, x, target, **kwargs), "the method's map")

    original = map_of_copy()
    randomised = []
    for layer in layers:
        _randomise_layer(copied, layer, rng)
        randomised.append(map_of_copy())
    randomised = np.stack(randomised)
    flat_original = original.reshape(len(original), -1)
    flat_random = randomised.reshape(len(layers), len(original), -1)
    return RandomisationResult(
        layers=layers,
        spearman_abs=_per_step_spearman(np.abs(flat_original), np.abs(flat_random)),
        spearman_signed=_per_step_spearman(flat_original, flat_random),
        original_map=original,
        randomised_maps=randomised,
    )
