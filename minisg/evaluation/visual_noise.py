"""Visual noise: how grainy does the map look as displayed?

SmoothGrad's claim is visual ("sharper, less noisy maps"). These scores measure the map as
the paper shows it (normalise_for_display): total variation between neighbouring pixels and
the share of spectral energy at high frequencies. Lower = smoother for both.
"""
import math

import numpy as np

from ..checks import check_number
from .inputs import pool_channels, safe_ratio


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
    return np.clip(safe_ratio(pooled - lowest, cap - lowest), 0.0, 1.0)


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
    if not 0 < check_number("cutoff", cutoff) < math.sqrt(0.5):
        raise ValueError(f"cutoff: expected a number in (0, {math.sqrt(0.5):.3f}) cycles per pixel, got {cutoff!r}")
    shown = normalise_for_display(maps)
    shown = shown - shown.mean(axis=(1, 2), keepdims=True)
    energy = np.abs(np.fft.fft2(shown)) ** 2
    fy = np.fft.fftfreq(shown.shape[1])[:, None]
    fx = np.fft.fftfreq(shown.shape[2])[None, :]
    high = np.sqrt(fy ** 2 + fx ** 2) > cutoff
    return safe_ratio((energy * high).sum(axis=(1, 2)), energy.sum(axis=(1, 2)))
