"""A reference solution, for the tests of `minisg check` (students: solve the stub yourself).
The stub lessons/exercises/ex10_gradcam_pp.py is made from this file:
edit here, then run `python -m minisg.classroom.stubs`.

Lesson 10 exercises: Grad-CAM++'s alpha and channel weights.

A^k is channel k of a layer's activations (after a ReLU, so A >= 0), g = dS_c/dA the
gradient of the target logit there. Grad-CAM++ (Chattopadhay et al. 2018) weighs each
position by alpha, built from the 2nd and 3rd derivatives of Y = exp(S_c). When the head
after A is piecewise linear (ReLU, max-pool, linear layers), those derivatives are e^S g^2
and e^S g^3, e^S cancels, and

    alpha^k_ij = g^2 / (2 g^2 + S_k g^3),      S_k = sum_ab A^k_ab   (one number per channel)
    w_k        = sum_ij alpha^k_ij * relu(g^k_ij)
    L          = relu(sum_k w_k A^k)

alpha is computed only where g > 0 and is 0 elsewhere. Note the indices: S_k sums the
ACTIVATIONS of channel k; g^3 is the gradient at the same position (i, j) as the numerator.
Some published code uses 2 g^2 + sum_ab A_ab g_ab^3 instead: that mixes indices and is a bug.

    10.1  gradcampp_alpha     alpha for every position and channel
    10.2  gradcampp_weights   the channel weights w_k

All arrays are NumPy, shaped (N, K, h, w) for A and g. Grade with ``minisg check 10``.
"""
import numpy as np


def gradcampp_alpha(A, g):
    """Exercise 10.1: alpha = g^2 / (2 g^2 + S_k g^3) where g > 0, else 0.

    A: (N, K, h, w) activations, A >= 0. g: (N, K, h, w) gradients dS/dA, same dtype.
    Return alpha (N, K, h, w) with A's dtype. S_k is the sum of A over the h and w axes
    of each image and channel (keep the dims so it broadcasts). With A >= 0 you will
    find 0 < alpha <= 1/2 wherever g > 0.
    Hint: ``np.where(g > 0, ..., 0)`` -- and avoid dividing where g <= 0 (0/0 warnings):
    compute the denominator only where it is valid, e.g. with a safe denominator of 1.
    """
    # --- solution 10.1
    layer_sums = A.sum(axis=(2, 3), keepdims=True)                     # S_k
    positive = g > 0
    denominator = np.where(positive, 2 * g ** 2 + layer_sums * g ** 3, 1)
    return np.where(positive, g ** 2 / denominator, 0).astype(A.dtype)
    # --- end solution


def gradcampp_weights(A, g):
    """Exercise 10.2: w_k = sum_ij alpha^k_ij * relu(g^k_ij).

    A, g: (N, K, h, w) as in 10.1. Return w (N, K) with A's dtype.
    Hint: reuse your gradcampp_alpha; relu(g) is ``np.maximum(g, 0)``; sum over axes (2, 3).
    For a global-average-pooling head S = sum_k v_k mean(A^k) this gives
    w_k = relu(v_k) / (2 + v_k mean(A^k)) -- the checker tests exactly that.
    """
    # --- solution 10.2
    return (gradcampp_alpha(A, g) * np.maximum(g, 0)).sum(axis=(2, 3)).astype(A.dtype)
    # --- end solution
