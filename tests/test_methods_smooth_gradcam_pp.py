"""Smooth Grad-CAM++ (minisg/methods/METHODS.md §9).

variant="torchcam" is checked against torch-cam itself in test_torchcam_smooth_gradcam_pp.py."""
from pathlib import Path

import numpy as np
import pytest

from minisg import methods as M
from minisg.methods._common import layer_gradients
from minisg.methods.gradcam import finish_cam, gradcampp_alpha
from small_models import linear_head_model, tiny_cnn


@pytest.fixture
def images():
    return np.random.default_rng(1).random((3, 1, 8, 8))


def torchcam_map(A, samples_g, last_A, eps=1e-8):
    """torch-cam 0.5.0's SmoothGradCAMpp by hand: samples_g (N, n, K, h, w); A clean, last_A the last sample's."""
    m2, m3 = (samples_g ** 2).mean(axis=1), (samples_g ** 3).mean(axis=1)
    T_k = (A * m3).sum(axis=(2, 3), keepdims=True)
    alpha = m2 / (2 * m2 + T_k + eps)
    w = (alpha * np.maximum(samples_g[:, -1], 0)).sum(axis=(2, 3))
    return np.maximum((w[:, :, None, None] * last_A).sum(axis=1), 0)


@pytest.mark.parametrize("zero", [dict(noise_level=0.0), dict(stdev=0.0)])
def test_zero_noise_is_exactly_gradcam_pp(images, zero):
    model = tiny_cnn()
    for upsample in (True, False):
        expected = M.gradcam_pp(model, images, 1, upsample=upsample)
        np.testing.assert_array_equal(M.smooth_gradcam_pp(model, images, 1, n=5, seed=0, upsample=upsample, **zero),
                                      expected)


@pytest.mark.parametrize("zero", [dict(noise_level=0.0), dict(stdev=0.0)])
def test_zero_noise_torchcam_is_its_formula_on_the_clean_input(images, zero):
    """Not Grad-CAM++: torch-cam sums A m3 over positions, adds eps = 1e-8 and clips nothing."""
    model = tiny_cnn()
    A, g = layer_gradients(model, images, np.full(3, 1), "relu2")
    smooth = M.smooth_gradcam_pp(model, images, 1, n=5, seed=0, upsample=False, variant="torchcam", **zero)
    np.testing.assert_allclose(smooth, torchcam_map(A, g[:, None], A), rtol=1e-12, atol=1e-15)


def test_constant_images_get_gradcam_pp(images):
    model, constant = tiny_cnn(), np.full((2, 1, 8, 8), 0.4)
    np.testing.assert_array_equal(M.smooth_gradcam_pp(model, constant, 0, seed=0), M.gradcam_pp(model, constant, 0))


@pytest.mark.parametrize("n, seed, noise_level", [(1, 0, 0.1), (5, 1, 0.3), (12, 2, 1.0)])
def test_a_head_linear_in_A_gives_gradcam_pp_for_any_noise(n, seed, noise_level):
    model, images = linear_head_model(), np.random.default_rng(12).random((3, 1, 6, 6))
    expected = M.gradcam_pp(model, images, 2, layer="relu1")
    smooth = M.smooth_gradcam_pp(model, images, 2, layer="relu1", n=n, noise_level=noise_level, seed=seed)
    np.testing.assert_allclose(smooth, expected, rtol=1e-10, atol=1e-14)
    assert expected.max() > 0


def test_noise_changes_the_map_and_is_reproducible(images):
    model = tiny_cnn()
    first = M.smooth_gradcam_pp(model, images, 0, n=6, seed=3)
    np.testing.assert_array_equal(first, M.smooth_gradcam_pp(model, images, 0, n=6, seed=np.random.default_rng(3)))
    np.testing.assert_allclose(first, M.smooth_gradcam_pp(model, images, 0, n=6, seed=3, batch_size=4), rtol=1e-12, atol=1e-15)
    assert not np.allclose(first, M.gradcam_pp(model, images, 0))
    assert not np.allclose(first, M.smooth_gradcam_pp(model, images, 0, n=6, seed=4))
    assert not np.allclose(first, M.smooth_gradcam_pp(model, images, 0, n=6, seed=3, variant="torchcam"))


def test_the_moments_formula_by_hand(images):
    """m1, m2, m3 averaged over the same noisy inputs; S_k and the map from the clean A."""
    model, n, sigma = tiny_cnn(seed=5), 4, 0.2
    smooth = M.smooth_gradcam_pp(model, images, 1, n=n, stdev=sigma, seed=7, upsample=False)
    noise = np.random.default_rng(7).standard_normal((3, n, 1, 8, 8))
    noisy = (images[:, None] + sigma * noise).reshape(-1, 1, 8, 8)
    A, _ = layer_gradients(model, images, np.full(3, 1), "relu2")
    _, g = layer_gradients(model, noisy, np.full(3 * n, 1), "relu2")
    g = g.reshape((3, n) + A.shape[1:])
    m1, m2, m3 = g.mean(axis=1), (g ** 2).mean(axis=1), (g ** 3).mean(axis=1)
    S_k = A.sum(axis=(2, 3), keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where((m2 > 0) & (2 * m2 + S_k * m3 > 0), m2 / (2 * m2 + S_k * m3), 0)
    w = (alpha * np.maximum(m1, 0)).sum(axis=(2, 3))
    np.testing.assert_allclose(smooth, np.maximum((w[:, :, None, None] * A).sum(axis=1), 0), rtol=1e-10, atol=1e-14)


def _paper_map_with(A, g, mask):
    """Grad-CAM++ at sigma = 0 with the activations outside `mask` set to zero."""
    kept = A * mask
    alpha = gradcampp_alpha(kept, g * g, g ** 3, where=g * g > 0)
    w = (alpha * np.maximum(g, 0)).sum(axis=(2, 3))
    return np.maximum((w[:, :, None, None] * kept).sum(axis=1), 0)


def test_filters_keep_only_the_selected_feature_maps(images):
    model = tiny_cnn(seed=6)
    A, g = layer_gradients(model, images, np.zeros(3, int), "relu2")
    mask = np.zeros(A.shape[1:])
    mask[[1, 3]] = 1
    selected = M.smooth_gradcam_pp(model, images, 0, noise_level=0, filters=[1, 3], upsample=False)
    np.testing.assert_allclose(selected, _paper_map_with(A, g, mask), rtol=1e-12)
    # the filters do not interact: the weight of a kept filter is its weight in the full map
    alpha = gradcampp_alpha(A, g * g, g ** 3, where=g > 0)
    w = (alpha * np.maximum(g, 0)).sum(axis=(2, 3))
    np.testing.assert_allclose(selected, np.maximum(w[:, 1, None, None] * A[:, 1] + w[:, 3, None, None] * A[:, 3], 0),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(M.smooth_gradcam_pp(model, images, 0, noise_level=0, filters=2, upsample=False),
                                  M.smooth_gradcam_pp(model, images, 0, noise_level=0, filters=[2], upsample=False))


def test_neurons_single_and_region(images):
    model = tiny_cnn(seed=8)
    A, g = layer_gradients(model, images, np.full(3, 2), "relu2")       # relu2 is 4 x 4 here
    box = M.smooth_gradcam_pp(model, images, 2, noise_level=0, neurons=[(2, 3), (1, 1)], region=True, upsample=False)
    mask = np.zeros(A.shape[1:])
    mask[:, 1:3, 1:4] = 1                                                # corners in any order, inclusive
    np.testing.assert_allclose(box, _paper_map_with(A, g, mask), rtol=1e-12)
    assert np.all(box[:, mask[0] == 0] == 0)
    single = M.smooth_gradcam_pp(model, images, 2, noise_level=0, neurons=[(0, 0), (3, 2)], upsample=False)
    mask = np.zeros(A.shape[1:])
    mask[:, 0, 0] = mask[:, 3, 2] = 1
    np.testing.assert_allclose(single, _paper_map_with(A, g, mask), rtol=1e-12)
    everything = M.smooth_gradcam_pp(model, images, 2, noise_level=0, neurons=[(0, 0), (3, 3)], region=True, filters=range(4))
    np.testing.assert_allclose(everything, M.gradcam_pp(model, images, 2), rtol=1e-12, atol=1e-15)


def test_selection_mask_shape_and_values():
    mask = M.selection_mask((3, 4, 5), filters=[0, 2], neurons=[(0, 1), (1, 3)], region=True)
    assert mask.shape == (3, 4, 5) and mask.sum() == 2 * 2 * 3
    assert mask[1].sum() == 0 and mask[0, 0:2, 1:4].all()


def test_torchcam_variant_uses_the_last_noisy_sample():
    """On a linear head g is the same for every sample, so only the activations differ: torch-cam's
    weights come from the clean A (through T_k), its map from the last noisy sample's A."""
    model, x = linear_head_model(seed=9), np.random.default_rng(10).random((2, 1, 6, 6))
    n, sigma = 3, 0.3
    smooth = M.smooth_gradcam_pp(model, x, 0, layer="relu1", n=n, stdev=sigma, seed=11, variant="torchcam", upsample=False)
    noise = np.random.default_rng(11).standard_normal((2, n, 1, 6, 6))
    A, g = layer_gradients(model, x, np.zeros(2, int), "relu1")
    last_A, last_g = layer_gradients(model, x + sigma * noise[:, -1], np.zeros(2, int), "relu1")
    np.testing.assert_allclose(last_g, g, rtol=1e-12, atol=1e-15)
    every_g = np.repeat(g[:, None], n, axis=1)
    np.testing.assert_allclose(smooth, torchcam_map(A, every_g, last_A), rtol=1e-10, atol=1e-14)
    assert not np.allclose(smooth, torchcam_map(A, every_g, A))


def test_the_torchcam_formula_by_hand(images):
    """m2, m3 over the noisy samples; T_k = sum_ab A m3 from the clean A; relu and map from the last sample."""
    model, n, sigma = tiny_cnn(seed=5), 4, 0.6
    noise = np.random.default_rng(7).standard_normal((3, n, 1, 8, 8))
    noisy = (images[:, None] + sigma * noise).reshape(-1, 1, 8, 8)
    A, _ = layer_gradients(model, images, np.full(3, 1), "relu2")
    noisy_A, g = layer_gradients(model, noisy, np.full(3 * n, 1), "relu2")
    g, noisy_A = (a.reshape((3, n) + A.shape[1:]) for a in (g, noisy_A))
    expected = torchcam_map(A, g, noisy_A[:, -1])
    m2, m3 = (g ** 2).mean(axis=1), (g ** 3).mean(axis=1)
    negative = 2 * m2 + (A * m3).sum(axis=(2, 3), keepdims=True) < 0
    assert (negative & (g[:, -1] > 0)).any()         # alpha < 0 is used, not clipped to 0 as in "paper"
    for upsample in (False, True):
        smooth = M.smooth_gradcam_pp(model, images, 1, n=n, stdev=sigma, seed=7, variant="torchcam", upsample=upsample)
        if upsample:
            expected = finish_cam(expected, (8, 8))
        np.testing.assert_allclose(smooth, expected, rtol=1e-10, atol=1e-14)
    # filters: the others' activations are zeroed in T_k and in the map
    mask = np.zeros(A.shape[1:])
    mask[[0, 2]] = 1
    np.testing.assert_allclose(M.smooth_gradcam_pp(model, images, 1, n=n, stdev=sigma, seed=7, variant="torchcam",
                                                   filters=[0, 2], upsample=False),
                               torchcam_map(A * mask, g, noisy_A[:, -1] * mask), rtol=1e-10, atol=1e-14)


def test_torchcam_variant_equals_torchcams_recorded_maps():
    """torch-cam 0.5.0's SmoothGradCAMpp maps, recorded on tiny_cnn(seed=3) with minisg's noise
    draws (test_torchcam_smooth_gradcam_pp.py recomputes them where torch-cam is installed)."""
    path = Path(__file__).parent / "fixtures" / "torchcam_0.5_smooth_gradcam_pp.npz"
    model = tiny_cnn(seed=3)
    with np.load(path) as recorded:
        names = sorted({key.split(".")[0] for key in recorded.files})
        assert len(names) == 9
        for name in names:
            case = {key.split(".", 1)[1]: recorded[key] for key in recorded.files if key.startswith(name + ".")}
            target = case["target"].tolist()
            ours = M.smooth_gradcam_pp(model, case["x"], target, layer=str(case["layer"]), n=int(case["n"]),
                                       stdev=float(case["stdev"]), seed=int(case["seed"]), variant="torchcam",
                                       upsample=False)
            theirs = case["torchcam"]
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-13 * np.abs(theirs).max(), err_msg=name)
