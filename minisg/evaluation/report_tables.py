"""The three tables of `minisg evaluate`: every method's maps, scored with the metrics module.

1. digit_table: mnist_cnn on MNIST test digits (localisation, faithfulness, visual noise, sanity).
2. scene_table: scene_cnn on scenes (target among distractors, discriminativity, repeats).
3. noise_table: mnist_cnn vs mnist_cnn_noise x vanilla vs SmoothGrad (SmoothGrad §3.5).

A table is {row: {metric: (mean, standard error)}}; report_text names the columns.
"""
import functools

import numpy as np

from .. import models
from ..methods import CAM_METHODS, METHODS
from ..models import scene_cnn as scenes
from . import metrics
from .report_setup import (DIGIT_CAM_LAYER, DIGIT_MODEL, NOISE_TABLE_METHODS, NOISY_DIGIT_MODEL, SCENE_CAM_LAYER,
                           SCENE_EXTRA_CAM_LAYER, SCENE_MODEL, compute_maps, method_options, scene_targets, warm_up)


# ----------------------------------------------------------------------------- scoring maps

def digit_scores(model, digits, maps, settings):
    """(per-image scores {metric: (N,)}, mean curves {"deletion"/"insertion": (fractions, mean)}).

    Localisation uses the positive part of the map (metrics' default) and, for mass, also its
    absolute value (what SmoothGrad's figures show). Deletion and insertion replace pixels
    by 0 (black, the absence of ink on MNIST), in order of decreasing signed map value, and
    record the softmax probability of the true class.
    """
    masks, labels, tolerance = digits.masks, digits.labels, settings.digit_pointing_tolerance
    scores = {
        "pointing": metrics.pointing_game(maps, masks, tolerance=tolerance),
        "mass": metrics.relevance_mass(maps, masks),
        "mass_abs": metrics.relevance_mass(maps, masks, relevance="absolute"),
        "rank": metrics.relevance_rank_accuracy(maps, masks),
    }
    curves = {}
    for kind, curve in (("deletion", metrics.deletion_curve), ("insertion", metrics.insertion_curve)):
        fractions, values = curve(model, digits.images, maps, labels, steps=settings.curve_steps, baseline=0.0)
        scores[kind] = metrics.area_under_curve(fractions, values)
        curves[kind] = (fractions, values.mean(axis=0))
    scores["total_variation"] = metrics.total_variation(maps)
    scores["high_frequency"] = metrics.high_frequency_energy(maps)
    return scores, curves


def randomisation_scores(model, name, digits, settings, layer):
    """Cascading randomisation (Adebayo et al. 2018) on the first settings.randomised_digits digits.

    Spearman correlation of |map| before and after re-initialising the top layer only
    ("rand_top") and every layer ("rand_all"). NaN where a map became constant.
    """
    count = settings.randomised_digits
    method = functools.partial(METHODS[name], **method_options(name, settings, layer))  # same noise every time
    result = metrics.cascading_randomisation(model, method, digits.images[:count], digits.labels[:count],
                                             seed=settings.seed)
    return {"rand_top": result.spearman_abs[0], "rand_all": result.spearman_abs[-1]}


def occurrence_shares(maps, scene_masks, counts):
    """For each scene, the share of the digits' positive relevance on each of its digits: a list of (K,) arrays."""
    relevance = metrics.pool_channels(maps, "positive")
    masses = np.einsum("nhw,nkhw->nk", relevance, scene_masks.astype(np.float64))
    shares = []
    for mass, count in zip(masses, counts):
        total = mass[:count].sum()
        shares.append(mass[:count] / total if total > 0 else np.zeros(count))
    return shares


def scene_scores(sets, maps, tolerance):
    """Per-scene scores of table 2 from the maps of each set ({set name: maps}).

    target_share:  positive relevance on the target digit / on all digits (distractors set)
    pointing:      the map's maximum within `tolerance` px of the target's ink (distractors set)
    discriminativity: share on the target minus share on the other digit (pairs set)
    repeats_mass:  share of all relevance on the occurrences of the class (repeats set)
    weakest_share: K x the smallest occurrence's share of the digits' relevance: 1 when the
                   K occurrences share it evenly, 0 when one occurrence gets none (repeats set)
    """
    distractors, pairs, repeats = sets["distractors"], sets["pairs"], sets["repeats"]
    shares = occurrence_shares(maps["repeats"], repeats.masks, repeats.count)
    return {
        "target_share": metrics.target_mass_share(maps["distractors"], distractors.masks, 0),
        "pointing": metrics.pointing_game(maps["distractors"], distractors.masks[:, 0], tolerance=tolerance),
        "discriminativity": metrics.discriminativity(maps["pairs"], pairs.masks[:, 0], pairs.masks[:, 1]),
        "repeats_mass": metrics.relevance_mass(maps["repeats"], repeats.masks.any(axis=1)),
        "weakest_share": np.array([len(s) * s.min() for s in shares]),
    }


def summarise(scores, skip_nan=False):
    """{metric: (mean, standard error)} of per-image scores; all-NaN columns give (nan, nan)."""
    summary = {}
    for metric, values in scores.items():
        values = np.asarray(values, dtype=np.float64)
        if skip_nan and np.isnan(values).all():
            summary[metric] = (float("nan"), float("nan"))
        else:
            summary[metric] = metrics.mean_and_stderr(values, skip_nan=skip_nan)
    return summary


# ----------------------------------------------------------------------------- the three tables

def _loaded(name, images):
    """The shipped model `name`, warmed up on `images` so that compiling is not timed."""
    model = models.load(name)
    warm_up(model, images)
    return model


def digit_table(digits, settings, progress, timings):
    """Table 1 (mnist_cnn, every method) -> (rows, mean curves, maps kept for table 3)."""
    model = _loaded(DIGIT_MODEL, digits.images)
    rows, curves, kept = {}, {}, {}
    for name in METHODS:
        progress.set_description(f"digits: {name}")
        maps, seconds = compute_maps(model, name, digits.images, digits.labels, settings, DIGIT_CAM_LAYER)
        timings.setdefault(name, {})["digits"] = 1000 * seconds / len(maps)
        scores, curves[name] = digit_scores(model, digits, maps, settings)
        rows[name] = {**summarise(scores),
                      **summarise(randomisation_scores(model, name, digits, settings, DIGIT_CAM_LAYER), skip_nan=True)}
        kept[name] = maps
        progress.update(1)
    return rows, curves, kept


def noise_table(digits, settings, progress, digit_rows):
    """Table 3: {model} x {vanilla, smoothgrad}; mnist_cnn's rows come from table 1."""
    noisy = {}
    noisy_model = _loaded(NOISY_DIGIT_MODEL, digits.images)
    for name in NOISE_TABLE_METHODS:
        progress.set_description(f"noise table: {name}")
        maps, _ = compute_maps(noisy_model, name, digits.images, digits.labels, settings, DIGIT_CAM_LAYER)
        noisy[name] = summarise(digit_scores(noisy_model, digits, maps, settings)[0])
        progress.update(1)
    rows = {}
    for model_name in (DIGIT_MODEL, NOISY_DIGIT_MODEL):
        for name in NOISE_TABLE_METHODS:
            clean = {k: v for k, v in digit_rows[name].items() if not k.startswith("rand")}
            rows[f"{model_name} × {name}"] = clean if model_name == DIGIT_MODEL else noisy[name]
    return rows


def scene_jobs():
    """(row name, method, CAM layer) of table 2.

    Every method at the last conv layer (relu3), plus the CAM methods at relu2: after relu3
    scene_cnn's head (1x1 conv + average) is linear, so there Grad-CAM equals CAM and
    Smooth Grad-CAM++ equals Grad-CAM++ exactly (the gradient cannot depend on the noise);
    at relu2 the head is not linear and the noise can matter.
    """
    jobs = [(name, name, SCENE_CAM_LAYER) for name in METHODS]
    jobs += [(f"{name} @{SCENE_EXTRA_CAM_LAYER}", name, SCENE_EXTRA_CAM_LAYER) for name in CAM_METHODS]
    return jobs


def scene_table(sets, settings, progress, timings):
    """Table 2 (scene_cnn) -> (rows, maps of each job for the examples figure)."""
    names = list(sets)
    model = _loaded(SCENE_MODEL, sets[names[0]].images)
    images = np.concatenate([sets[n].images for n in names])
    targets = np.concatenate([scene_targets(sets[n]) for n in names])
    bounds = np.cumsum([0] + [len(sets[n]) for n in names])
    rows, kept = {}, {}
    for row, name, layer in scene_jobs():
        progress.set_description(f"scenes: {row}")
        maps, seconds = compute_maps(model, name, images, targets, settings, layer)
        if row == name:
            timings.setdefault(name, {})["scenes"] = 1000 * seconds / len(maps)
        per_set = {n: maps[bounds[i]:bounds[i + 1]] for i, n in enumerate(names)}
        rows[row] = summarise(scene_scores(sets, per_set, settings.scene_pointing_tolerance))
        kept[row] = per_set
        progress.update(1)
    return rows, kept


def detection_rates(sets):
    """How often scene_cnn says the target's class is present (logit > 0), per scene set."""
    model = models.load(SCENE_MODEL)
    rates = {}
    for name, scene_set in sets.items():
        logits = scenes.scene_logits(model, scene_set.images)
        rates[name] = float((logits[np.arange(len(logits)), scene_targets(scene_set)] > 0).mean())
    return rates
