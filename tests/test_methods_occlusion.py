"""Occlusion: sanity checks on models whose answer is known."""
import numpy as np
import pytest

from minisg import methods as M, nn
from minisg.methods.occlusion import patch_starts


def linear_model(shape=(2, 6, 6), seed=0):
    fc = nn.Linear(int(np.prod(shape)), 3, rng=np.random.default_rng(seed), dtype=np.float64)
    return nn.Sequential(("flatten", nn.Flatten()), ("fc", fc)), fc.weight.numpy()


@pytest.fixture
def images():
    return np.random.default_rng(1).random((2, 2, 6, 6))


def test_patch_of_one_pixel_is_gradient_x_input_summed_over_channels(images):
    model, _ = linear_model()
    occlusion = M.occlusion(model, images, 1, patch=1, stride=1)
    per_pixel = M.gradient_x_input(model, images, 1).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(occlusion, np.repeat(per_pixel, 2, axis=1), rtol=1e-12, atol=1e-15)


def test_non_overlapping_patches_give_the_patch_sum(images):
    model, weight = linear_model()
    occlusion = M.occlusion(model, images, 0, patch=3, stride=3)
    contribution = (images * weight[0].reshape(2, 6, 6)).sum(axis=1)                  # (N, 6, 6)
    blocks = contribution.reshape(2, 2, 3, 2, 3).sum(axis=(2, 4))                     # (N, 2, 2)
    expected = np.repeat(np.repeat(blocks, 3, axis=1), 3, axis=2)
    np.testing.assert_allclose(occlusion[:, 0], expected, rtol=1e-12)
    np.testing.assert_array_equal(occlusion[:, 0], occlusion[:, 1])


def test_overlapping_patches_are_averaged_and_cover_every_pixel(images):
    model, weight = linear_model()
    occlusion = M.occlusion(model, images, 2, patch=4, stride=3, baseline=0.5)
    contribution = ((images - 0.5) * weight[2].reshape(2, 6, 6)).sum(axis=1)
    corners = [(r, c) for r in patch_starts(6, 4, 3) for c in patch_starts(6, 4, 3)]
    assert patch_starts(6, 4, 3) == [0, 2]                                           # the last patch touches the edge
    total, covered = np.zeros((2, 6, 6)), np.zeros((6, 6))
    for r, c in corners:
        total[:, r:r + 4, c:c + 4] += contribution[:, r:r + 4, c:c + 4].sum(axis=(1, 2))[:, None, None]
        covered[r:r + 4, c:c + 4] += 1
    np.testing.assert_allclose(occlusion[:, 0], total / covered, rtol=1e-12)


def test_pixels_the_model_ignores_get_zero(images):
    model, _ = linear_model()
    model["fc"].weight.data.reshape(3, 2, 6, 6)[:, :, :, :3] = 0                      # left half unused
    occlusion = M.occlusion(model, images, 0, patch=3, stride=3)
    assert np.all(occlusion[..., :3] == 0) and np.all(occlusion[..., 3:] != 0)


def test_bad_baseline_is_named(images):
    with pytest.raises(ValueError, match="baseline: expected a finite number"):
        M.occlusion(linear_model()[0], images, 0, baseline=np.inf)
