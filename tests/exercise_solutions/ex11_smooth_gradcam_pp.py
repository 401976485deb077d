"""A reference solution, for the tests of `minisg check` (students: solve the stub yourself).
The stub lessons/exercises/ex11_smooth_gradcam_pp.py is made from this file:
edit here, then run `python -m minisg.classroom.stubs`.

Lesson 11 exercise: Smooth Grad-CAM++ averages the derivatives, not the maps.

Smooth Grad-CAM++ (Omeiza et al. 2019) runs the model on n noisy copies x_m = x + eps_m
and collects the gradients g_m = dS_c/dA at the chosen layer for each. It then averages
the first, second and third powers of the gradients,

    m1 = mean_m g_m,    m2 = mean_m g_m^2,    m3 = mean_m g_m^3,

and uses them where Grad-CAM++ uses g, g^2 and g^3:

    alpha = m2 / (2 m2 + S_k m3),      S_k = sum_ab A^k_ab of the CLEAN activations
    w_k   = sum_ij alpha^k_ij * relu(m1^k_ij)

(The paper prints m1 in alpha's numerator: a typo; the derivation needs m2.)
m3 can be negative, so the denominator can be <= 0: alpha is 0 there, and where m2 == 0.

    11.1  smooth_gradcampp_weights   the channel weights from n samples of gradients

Grade with ``minisg check 11``.
"""
import numpy as np


def smooth_gradcampp_weights(A, g_samples):
    """Exercise 11.1: Smooth Grad-CAM++'s channel weights w (N, K).

    A:         (N, K, h, w) activations of the clean images, A >= 0.
    g_samples: (n, N, K, h, w) gradients dS/dA at the n noisy copies of every image.
    Return w (N, K) with A's dtype:
        alpha = m2 / (2 m2 + S_k m3) where m2 > 0 and the denominator > 0, else 0;
        w_k   = sum over (i, j) of alpha * relu(m1).
    With n = 1 (or n identical samples) this is exactly Grad-CAM++ (exercise 10.2).
    Hint: average over axis 0 first; never average alphas or maps over the samples.
    """
    # --- solution 11.1
    m1, m2, m3 = (np.mean(g_samples ** p, axis=0) for p in (1, 2, 3))
    denominator = 2 * m2 + A.sum(axis=(2, 3), keepdims=True) * m3
    valid = (m2 > 0) & (denominator > 0)
    alpha = np.where(valid, m2 / np.where(valid, denominator, 1), 0)
    return (alpha * np.maximum(m1, 0)).sum(axis=(2, 3)).astype(A.dtype)
    # --- end solution
