"""Quantitative scores for sensitivity maps, using MNIST's free ground truth.

The SmoothGrad paper notes that "there is no ground truth to allow for quantitative
evaluation". On MNIST there is some: a digit's ink is its mask, and ``minisg.data.make_scenes``
and ``two_digit_image`` give every digit of a canvas its own mask. This module scores maps
against those masks and against the model itself. Every function works on NumPy arrays
(a minisg Tensor is accepted too) and returns one score per image, so results can be
averaged with ``mean_and_stderr`` and printed with ``results_tables``.

Families of metrics, one module each (this module gathers them under one name):

  localisation     pointing_game, relevance_mass, relevance_rank_accuracy,  localisation.py
                   target_mass_share
  discriminativity discriminativity                                         localisation.py
  faithfulness     deletion_curve, insertion_curve, area_under_curve        faithfulness.py
  sanity           cascading_randomisation, spearman                        sanity.py
  visual noise     normalise_for_display, total_variation,                  visual_noise.py
                   high_frequency_energy
  aggregation      mean_and_stderr, results_tables                          aggregation.py

and what they all share, checking inputs and pool_channels, is in inputs.py.

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
* A NaN or infinite value, a wrong shape or a bad option raises ValueError naming the argument;
  a target or count of the wrong type (a float, a string) raises TypeError, as in the methods.
* Ties are resolved deterministically and documented in each function.
"""
from .aggregation import mean_and_stderr, results_tables
from .faithfulness import (SCORE_KINDS, area_under_curve, deletion_curve, gaussian_blur, insertion_curve,
                           model_scores)
from .inputs import RELEVANCE_MODES, pool_channels
from .localisation import (dilate, discriminativity, pointing_game, relevance_mass, relevance_rank_accuracy,
                           target_mass_share)
from .sanity import RandomisationResult, average_ranks, cascading_randomisation, parameter_layers, spearman
from .visual_noise import high_frequency_energy, normalise_for_display, total_variation

__all__ = [
    "RELEVANCE_MODES", "SCORE_KINDS", "pool_channels",
    "dilate", "pointing_game", "relevance_mass", "relevance_rank_accuracy", "target_mass_share",
    "discriminativity",
    "gaussian_blur", "model_scores", "deletion_curve", "insertion_curve", "area_under_curve",
    "average_ranks", "spearman", "RandomisationResult", "parameter_layers", "cascading_randomisation",
    "normalise_for_display", "total_variation", "high_frequency_energy",
    "mean_and_stderr", "results_tables",
]
