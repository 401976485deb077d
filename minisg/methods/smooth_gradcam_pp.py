"""Smooth Grad-CAM++ (minisg/methods/METHODS.md §9): Grad-CAM++ with the derivatives averaged over noise.

For noisy inputs x_m = x + N(0, sigma^2), m = 1..n, with g_m = dS_c/dA at x_m:

    m1 = mean_m g_m,   m2 = mean_m g_m^2,   m3 = mean_m g_m^3

variant="paper" (the default):

    alpha = m2 / (2 m2 + S_k m3)     S_k = sum_ab A^k_ab of the clean input;
                                     0 where m2 == 0 or the denominator <= 0 (m3 can be < 0)
    w_k = sum_ij alpha relu(m1),     L = relu(sum_k w_k A^k)   (A of the clean input)

The derivatives are averaged, not the maps. (The paper prints m1 in alpha's numerator, a typo
that torch-cam corrects to m2.)

variant="torchcam" is what torch-cam 0.5.0's SmoothGradCAMpp(model, layer, num_samples=n,
std=sigma) computes (its _compute_smoothgrad_weights, then _CAM.compute_cams with
normalized=False), with A the clean input's activations and A_n, g_n those of the last noisy
sample:

    alpha = m2 / (2 m2 + T_k + 1e-8),   T_k = sum_ab A^k_ab m3^k_ab   (one number per channel)
                                        no clipping: alpha < 0 where the denominator is < 0
    w_k = sum_ij alpha relu(g_n),       L = relu(nansum_k w_k A_n^k)

torch-cam's map uses A_n because its activation hook is still on while the noisy samples run,
so the last one overwrites the clean activations it kept for T_k. Its maps are at the layer's
resolution (upsample=False here) and, by default, min-max normalised: (L - min L) /
(max(L - min L) + 1e-8); normalize=True here divides by max L instead, so compare raw maps.
torch-cam's std is absolute (the same sigma for every image): pass stdev=std, not noise_level.
Its noise comes from torch's generator, so the two agree map for map given the same noise
draws (tests/test_torchcam_smooth_gradcam_pp.py feeds minisg's draws to torch-cam).

filters / neurons select feature maps / positions: the others' activations are set to 0 in
both the weights (through S_k or T_k) and the map (torch-cam has no such option).
"""
import numbers

import numpy as np

from ._checks import check_choice, check_flags, check_noise, check_seed, check_selection, check_sizes
from ._common import cam_layer, evaluation_mode, layer_gradients, noise_stdevs, prepare
from ._running import RunningSum, noisy_batches, runs
from .gradcam import cam_from_weights, finish_cam, gradcampp_alpha

VARIANTS = ("paper", "torchcam")
TORCHCAM_EPS = 1e-8  # torch-cam 0.5.0's default eps in SmoothGradCAMpp._get_weights


def _index(name, value, size, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < size:
        raise ValueError(f"{name}: {what} {value!r} is outside the layer's range [0, {size})")
    return int(value)


def selection_mask(shape, filters=None, neurons=None, region=False):
    """A 0/1 array of the layer's (K, h, w) shape keeping the selected filters and neurons.

    filters: channel indices (an int or a list). neurons: (row, col) pairs; with region=True,
    exactly two pairs, the corners of an inclusive box (the paper's subset=[(0,10),(12,12)]).
    """
    shape = check_sizes("shape", shape, 3)
    filters, neurons = check_selection(filters, neurons, region)
    channels, height, width = shape
    mask = np.ones(shape)
    if filters is not None:
        filters = [filters] if isinstance(filters, numbers.Integral) else list(filters)
        keep = np.zeros(channels, dtype=bool)
        keep[[_index("filters", f, channels, "filter") for f in filters]] = True
        mask[~keep] = 0
    if neurons is not None:
        neurons = [tuple(p) for p in neurons]
        if any(len(p) != 2 for p in neurons) or (region and len(neurons) != 2):
            raise ValueError(f"neurons: expected (row, col) pairs{' (two corners with region=True)' if region else ''}, "
                             f"got {neurons!r}")
        rows = [_index("neurons", r, height, "row") for r, _ in neurons]
        cols = [_index("neurons", c, width, "column") for _, c in neurons]
        keep = np.zeros((height, width), dtype=bool)
        if region:
            keep[min(rows):max(rows) + 1, min(cols):max(cols) + 1] = True
        else:
            keep[rows, cols] = True
        mask[:, ~keep] = 0
    return mask


def smooth_gradcam_pp(model, x, target=None, layer=None, n=5, noise_level=0.3, stdev=None,
                      filters=None, neurons=None, region=False, variant="paper", upsample=True,
                      normalize=False, batch_size=None, seed=None):
    """Smooth Grad-CAM++ maps (N, H, W).

    Defaults follow the paper's API (nsamples=5, std_dev=0.3). Here 0.3 is a *noise level*,
    sigma = 0.3 * (max(x) - min(x)) per image as in SmoothGrad, which is sigma = 0.3 for an
    MNIST digit in [0, 1]; pass stdev= for an absolute sigma. Where sigma is 0 for every
    image, no noise is drawn and variant="paper" is exactly Grad-CAM++ (variant="torchcam" is
    then torch-cam's formula on the clean input, which is not).

    variant="torchcam" with n=4, stdev=0.3, upsample=False gives torch-cam 0.5.0's
    SmoothGradCAMpp(model, layer)(class_idx, normalized=False) for its defaults
    (num_samples=4, std=0.3), up to the noise draws (see the module docstring).

    layer: a tap name of the model, None for its default_cam_layer or else its last 4-D layer
    (as Grad-CAM, minisg/methods/gradcam.py). The N*n noisy copies go through the model
    batch_size at a time (None: 256) into running sums (noise_moments): memory grows with
    batch_size, not with N*n.
    """
    n, noise_level, stdev = check_noise(n, noise_level, stdev)
    check_choice("variant", variant, VARIANTS)
    filters, neurons = check_selection(filters, neurons, region)
    check_flags(upsample=upsample, normalize=normalize)
    rng = check_seed(seed)
    with evaluation_mode(model):
        x, target = prepare(model, x, target, batch_size)
        layer = cam_layer(model, x, layer)
        A, g = layer_gradients(model, x, target, layer, batch_size)
        mask = selection_mask(A.shape[1:], filters, neurons, region).astype(A.dtype)
        sigmas = noise_stdevs(x, noise_level, stdev)
        m1, m2, m3, last_A, last_g = noise_moments(model, x, target, layer, (A, g), n, sigmas, rng, batch_size)
        if variant == "paper":
            alpha = gradcampp_alpha(A * mask, m2, m3, where=m2 > 0)
            weights = (alpha * np.maximum(m1, 0)).sum(axis=(2, 3))
            cam = cam_from_weights(weights, A * mask)
        else:
            weights = torchcam_weights(A * mask, m2, m3, last_g)
            cam = np.maximum(np.nansum(weights[:, :, None, None] * (last_A * mask), axis=1), 0)
        return finish_cam(cam, x.shape[2:], upsample, normalize)


def noise_moments(model, x, target, layer, clean, n, sigmas, rng, batch_size=None):
    """(m1, m2, m3, last_A, last_g): the means of g, g^2 and g^3 over each image's n noisy
    copies (g = dS/dA at the layer), and the activations and gradient of its last copy.

    The copies go through the model a chunk of batch_size at a time (None: 256) into running
    sums that add them in sample order: the bits of a mean over all of them at once. Images
    with sigma 0 use the clean (A, g) for every copy; when no image gets noise nothing is
    drawn and the one sample is the clean input.
    """
    A, g = clean
    if not sigmas.any():
        return g, g * g, g * g * g, A, g
    sums = [RunningSum(len(x), g.shape[1:], g.dtype) for _ in range(3)]
    last_A, last_g = A.copy(), g.copy()
    for start, stop, noisy in noisy_batches(x, n, sigmas, rng, batch_size):
        owner, sample = np.divmod(np.arange(start, stop), n)
        noisy_A, noisy_g = layer_gradients(model, noisy, target[owner], layer, batch_size)
        constant = sigmas[owner] == 0
        noisy_A[constant], noisy_g[constant] = A[owner[constant]], g[owner[constant]]
        squared = noisy_g * noisy_g
        powers = (noisy_g, squared, squared * noisy_g)
        for image, first, last, _ in runs(start, stop, n):
            for moment, values in zip(sums, powers):
                moment.add(image, values[first:last])
        ends = sample == n - 1
        last_A[owner[ends]], last_g[owner[ends]] = noisy_A[ends], noisy_g[ends]
    m1, m2, m3 = (moment.mean(n) for moment in sums)
    return m1, m2, m3, last_A, last_g


def torchcam_weights(A, m2, m3, last_g, eps=TORCHCAM_EPS):
    """torch-cam 0.5.0's weights: w_k = sum_ij relu(last_g) m2 / (2 m2 + sum_ab A m3 + eps).

    A: the clean activations (N, K, h, w); m2, m3: the mean squared and cubed gradients;
    last_g: the last noisy sample's gradient. Nothing is masked or clipped, as in torch-cam:
    a zero denominator gives inf or nan as there (the map's nansum drops nan terms, as torch's).
    """
    cross = (A * m3).sum(axis=(2, 3), keepdims=True)       # T_k, one per channel
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = m2 / (2 * m2 + cross + A.dtype.type(eps))
        return (alpha * np.maximum(last_g, 0)).sum(axis=(2, 3))
