"""A reference solution, for the tests of `minisg check` (students: solve the stub yourself).
The stub lessons/exercises/ex06_smoothgrad.py is made from this file:
edit here, then run `python -m minisg.classroom.stubs`.

Lesson 06 exercises: SmoothGrad's noise and average.

SmoothGrad (Smilkov et al. 2017, eq. 3) averages the sensitivity map over noisy copies
of the input:

    M_hat(x) = (1/n) sum_{m=1..n} M(x + eps_m),    eps_m ~ N(0, sigma^2), i.i.d. per element,

with sigma set per image relative to its range: sigma = noise_level * (max(x) - min(x)),
the "noise level" of the paper's Figs. 3 and 10 (10-20% works best). Noisy inputs are not
clipped, and the target class stays the one given for the clean image.

    06.1  noise_stdevs   sigma for every image of a batch
    06.2  smoothgrad     average the vanilla gradients of n noisy copies

Grade your answers with ``minisg check 06``.
"""
import numpy as np

from minisg import methods as M


def noise_stdevs(x, noise_level):
    """Exercise 06.1: sigma_n = noise_level * (max(x[n]) - min(x[n])) for each image.

    x: (N, C, H, W) array (any float dtype); noise_level: a float >= 0.
    Return an (N,) float64 array. Max and min run over all pixels AND channels of one
    image, never over the whole batch. A constant image gets sigma = 0.
    """
    # --- solution 06.1
    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return noise_level * (flat.max(axis=1) - flat.min(axis=1))
    # --- end solution


def smoothgrad(model, x, target, n=50, noise_level=0.15, seed=0):
    """Exercise 06.2: SmoothGrad of the vanilla gradient.

    model: a minisg Module (N, C, H, W) -> logits (N, K); x: (N, C, H, W) NumPy array in
    the model's dtype; target: (N,) ints; n: samples per image; seed: for
    ``np.random.default_rng(seed)``.
    Return a NumPy array shaped like x, dtype of x: for every image, the mean over n noisy
    copies x[i] + eps (eps ~ N(0, sigma_i^2) per element, sigma_i from your noise_stdevs) of
    the gradient of the target logit at that copy.
    Hint: build all N*n noisy images as one (N*n, C, H, W) array (the same class repeated
    n times per image: ``np.repeat(target, n)``), get their gradients with one call of
    ``M.vanilla_gradient(model, noisy, targets)`` (or your own 04.1), reshape to
    (N, n, C, H, W) and average over axis 1. With noise_level 0 the result is the vanilla
    gradient exactly.
    """
    # --- solution 06.2
    rng = np.random.default_rng(seed)
    sigmas = noise_stdevs(x, noise_level).reshape(-1, 1, 1, 1, 1)
    noise = rng.standard_normal((len(x), n) + x.shape[1:])
    noisy = (x[:, None] + sigmas * noise).astype(x.dtype).reshape((-1,) + x.shape[1:])
    maps = M.vanilla_gradient(model, noisy, np.repeat(target, n))
    return maps.reshape((len(x), n) + x.shape[1:]).mean(axis=1).astype(x.dtype)
    # --- end solution
