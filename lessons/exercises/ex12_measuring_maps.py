"""Lesson 12 exercises: scoring a sensitivity map.

The SmoothGrad paper says there is no ground truth to score maps against. On MNIST there is
some: a digit's ink is its mask. And the model itself can judge a map: delete the pixels the
map calls most relevant, and a faithful map makes the class score fall fast.

    12.1  relevance_mass   the share of positive relevance that lands inside the mask
    12.2  deletion_curve   the target's probability as the most relevant pixels are removed

Grade with ``minisg check 12``. (minisg/evaluation/metrics.py has the library's versions, with more
options; write these two yourself.)
"""
import numpy as np

from minisg import Tensor, no_grad


def relevance_mass(maps, masks):
    """Exercise 12.1: relevance mass accuracy (Arras et al., CLEVR-XAI), one score per image.

    maps:  (N, H, W) or (N, C, H, W) float arrays; masks: (N, H, W) bool.
    Relevance per pixel r = max(sum over channels of the map, 0) (the positive part: evidence
    FOR the class). Return an (N,) float64 array: sum(r inside the mask) / sum(r), and 0 for an
    image whose r is 0 everywhere (no relevance, no credit -- never NaN).
    """
    raise NotImplementedError("Exercise 12.1")


def deletion_curve(model, x, maps, target, steps=10):
    """Exercise 12.2: the deletion curve (Petsiuk et al. 2018, RISE).

    model: minisg Module (N, C, H, W) -> logits (N, K); x: (N, C, H, W) NumPy array in the
    model's dtype; maps: (N, C, H, W) or (N, H, W); target: (N,) ints; steps: int >= 1.
    Pixel order: sum the map over channels (sign kept), then sort each image's P = H*W pixels
    by DECREASING value; ties keep row-major order (``np.argsort(-values, kind="stable")``).
    After step s = 0..steps, the first counts[s] = (s * P) // steps pixels of that order are
    set to 0 in every channel, and the model's softmax probability of the target class is
    recorded (run the model under ``no_grad()``).
    Return (fractions, scores): fractions (steps + 1,) float64 = counts / P, and
    scores (N, steps + 1) float64; scores[:, 0] is the intact image.
    """
    raise NotImplementedError("Exercise 12.2")
