"""Metrics on constructed cases whose answers are known in advance."""
import math

import numpy as np
import pytest

import minisg
from minisg import nn
from minisg.evaluation import metrics
from minisg.data import MNIST_DIR


# ----------------------------------------------------------------------------- helpers

def random_box_masks(rng, n, height, width):
    """n bool masks, each a random rectangle of at least 2x2 pixels."""
    masks = np.zeros((n, height, width), bool)
    for mask in masks:
        top, left = rng.integers(0, height - 2), rng.integers(0, width - 2)
        bottom, right = rng.integers(top + 2, height + 1), rng.integers(left + 2, width + 1)
        mask[top:bottom, left:right] = True
    return masks


def linear_model(in_features, classes, seed=0):
    """logit = w . x + b: input x gradient explains it exactly."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(("flatten", nn.Flatten()),
                         ("fc", nn.Linear(in_features, classes, rng=rng, dtype=np.float64)))


def small_mlp(in_features, classes, seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(in_features, 32, rng=rng, dtype=np.float64)),
        ("relu1", nn.ReLU()),
        ("fc2", nn.Linear(32, 16, rng=rng, dtype=np.float64)),
        ("relu2", nn.ReLU()),
        ("fc3", nn.Linear(16, classes, rng=rng, dtype=np.float64)),
    )


def vanilla_gradient(model, x, target):
    """d logit_target / d x, with minisg.grad."""
    inputs = minisg.Tensor(np.asarray(x, np.float64), requires_grad=True)
    logits = model(inputs)
    pick = np.zeros(logits.shape)
    pick[np.arange(len(pick)), np.broadcast_to(target, (len(pick),))] = 1.0
    (gradient,) = minisg.grad(logits, inputs, grad_outputs=minisg.Tensor(pick))
    return gradient.numpy()


def sobel_magnitude(model, x, target):
    """An 'edge detector' map that never looks at the model: |Sobel gradient| of the image."""
    image = np.pad(np.asarray(x, np.float64)[:, 0], ((0, 0), (1, 1), (1, 1)), mode="edge")
    smooth = np.array([1.0, 2.0, 1.0])
    rows = sum(w * image[:, i:i + x.shape[2], :] for i, w in enumerate(smooth))   # smoothed down columns
    cols = sum(w * image[:, :, i:i + x.shape[3]] for i, w in enumerate(smooth))   # smoothed along rows
    gx = rows[:, :, 2:] - rows[:, :, :-2]
    gy = cols[:, 2:, :] - cols[:, :-2, :]
    return np.hypot(gx, gy)[:, None]


# ----------------------------------------------------------------------------- localisation

def test_a_map_equal_to_the_mask_localises_perfectly():
    masks = random_box_masks(np.random.default_rng(0), 6, 12, 10)
    maps = masks.astype(float)
    assert np.all(metrics.pointing_game(maps, masks) == 1)
    assert np.all(metrics.relevance_mass(maps, masks) == 1)
    assert np.all(metrics.relevance_rank_accuracy(maps, masks) == 1)


def test_channel_maps_are_pooled_like_the_module_says():
    mask = np.zeros((1, 4, 4), bool)
    mask[0, :2] = True
    maps = np.where(mask, -1.0, 1.0)[:, None].repeat(3, axis=1)  # (1, 3, 4, 4): negative on the mask
    assert metrics.relevance_mass(maps, mask)[0] == 0.0                         # positive part only
    assert metrics.relevance_mass(maps, mask, relevance="absolute")[0] == 0.5   # half of |m| inside
    assert metrics.pool_channels(maps, "signed")[0, 0, 0] == -3.0


def test_a_random_map_scores_chance():
    rng = np.random.default_rng(1)
    n, height, width = 400, 16, 16
    masks = random_box_masks(rng, n, height, width)
    maps = rng.uniform(size=(n, height, width))
    area = masks.mean(axis=(1, 2))
    # Each score minus its image's area fraction has mean 0 by symmetry; 400 images give a
    # standard error of that mean, and a 4-stderr band holds with probability > 0.9999.
    for score in (metrics.relevance_mass(maps, masks), metrics.relevance_rank_accuracy(maps, masks),
                  metrics.pointing_game(maps, masks)):
        mean, stderr = metrics.mean_and_stderr(score - area)
        assert abs(mean) < 4 * stderr
    # relevance mass averages many pixels, so it hugs the area fraction image by image
    assert np.abs(metrics.relevance_mass(maps, masks) - area).max() < 0.1


def test_an_all_zero_map_scores_chance_for_point_and_rank_and_zero_mass():
    masks = random_box_masks(np.random.default_rng(2), 5, 8, 9)
    zeros = np.zeros(masks.shape)
    area = masks.mean(axis=(1, 2))
    np.testing.assert_allclose(metrics.pointing_game(zeros, masks), area)
    np.testing.assert_allclose(metrics.relevance_rank_accuracy(zeros, masks), area)
    assert np.all(metrics.relevance_mass(zeros, masks) == 0)


def test_rank_accuracy_shares_the_tied_places():
    mask = np.zeros((1, 1, 4), bool)
    mask[0, 0, :2] = True                    # K = 2
    scores = np.array([[[5.0, 1.0, 1.0, 1.0]]])  # one sure hit, one place shared by 3 tied pixels
    assert metrics.relevance_rank_accuracy(scores, mask)[0] == pytest.approx((1 + 1 / 3) / 2)


def test_pointing_game_tolerance_is_euclidean():
    mask = np.zeros((1, 9, 9), bool)
    mask[0, 4, 4] = True
    point = np.zeros((1, 9, 9))
    point[0, 4, 6] = 1.0                      # 2 pixels right of the mask
    diagonal = np.zeros((1, 9, 9))
    diagonal[0, 6, 6] = 1.0                   # sqrt(8) = 2.83 pixels away
    assert metrics.pointing_game(point, mask)[0] == 0
    assert metrics.pointing_game(point, mask, tolerance=1.9)[0] == 0
    assert metrics.pointing_game(point, mask, tolerance=2)[0] == 1
    assert metrics.pointing_game(diagonal, mask, tolerance=2)[0] == 0
    assert metrics.pointing_game(diagonal, mask, tolerance=3)[0] == 1


def test_target_mass_share_on_synthetic_scene():
    masks = np.zeros((1, 3, 6, 6), bool)
    masks[0, 0, :2, :2] = True                # 4 pixels
    masks[0, 1, 4:, 4:] = True                # 4 pixels; slot 2 is an unused, empty slot
    uniform = np.ones((1, 6, 6))
    assert metrics.target_mass_share(uniform, masks, 0)[0] == 0.5
    assert metrics.target_mass_share(masks[:, 1].astype(float), masks, 1)[0] == 1.0
    assert metrics.target_mass_share(masks[:, 1].astype(float), masks, 0)[0] == 0.0
    with pytest.raises(ValueError, match="target_index"):
        metrics.target_mass_share(uniform, masks, 3)
    with pytest.raises(ValueError, match=r"scene_masks\[target_index\]"):
        metrics.target_mass_share(uniform, masks, 2)


@pytest.mark.skipif(not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists(), reason="needs MNIST")
def test_target_mass_share_on_real_scenes():
    scenes = minisg.data.make_scenes(4, digits=(2, 3), seed=3)
    target = np.zeros(4, np.int64)
    perfect = scenes.masks[np.arange(4), target].astype(float)
    assert np.all(metrics.target_mass_share(perfect, scenes.masks, target) == 1.0)
    # The ink itself spreads over every digit: each gets its share, and they sum to 1.
    ink = scenes.images
    shares = [metrics.target_mass_share(ink, scenes.masks, np.minimum(k, scenes.count - 1)) for k in range(2)]
    assert np.all((0 < shares[0]) & (shares[0] < 1))
    two = scenes.count == 2
    np.testing.assert_allclose((shares[0] + shares[1])[two], 1.0)


def test_discriminativity_flips_sign_when_target_and_other_swap():
    rng = np.random.default_rng(4)
    target_mask = np.zeros((5, 6, 12), bool)
    other_mask = np.zeros((5, 6, 12), bool)
    target_mask[:, :, :6], other_mask[:, :, 6:] = True, True
    maps = rng.normal(size=(5, 1, 6, 12))
    forward = metrics.discriminativity(maps, target_mask, other_mask)
    np.testing.assert_allclose(metrics.discriminativity(maps, other_mask, target_mask), -forward)
    assert np.all(metrics.discriminativity(target_mask.astype(float), target_mask, other_mask) == 1)
    assert np.all(metrics.discriminativity(other_mask.astype(float), target_mask, other_mask) == -1)
    assert np.all(metrics.discriminativity(np.zeros((5, 6, 12)), target_mask, other_mask) == 0)


# ----------------------------------------------------------------------------- faithfulness

@pytest.mark.parametrize("steps", [20, 7])
def test_deletion_of_a_linear_model_subtracts_the_sorted_contributions(steps):
    rng = np.random.default_rng(5)
    n, height, width, classes = 3, 4, 5, 4
    model = linear_model(height * width, classes)
    x = rng.normal(size=(n, 1, height, width))
    target = np.array([0, 2, 3])
    weight, bias = model["fc"].weight.numpy(), model["fc"].bias.numpy()
    maps = weight[target].reshape(n, 1, height, width) * x      # exact input x gradient
    np.testing.assert_allclose(maps, x * vanilla_gradient(model, x, target))

    fractions, deletion = metrics.deletion_curve(model, x, maps, target, steps=steps, score="logit")
    _, insertion = metrics.insertion_curve(model, x, maps, target, steps=steps, score="logit")

    counts = np.arange(steps + 1) * 20 // steps
    np.testing.assert_array_equal(fractions, counts / 20)
    for i in range(n):
        contributions = np.sort(maps[i].ravel())[::-1]
        removed = np.r_[0.0, np.cumsum(contributions)][counts]
        logit = contributions.sum() + bias[target[i]]
        np.testing.assert_allclose(deletion[i], logit - removed, rtol=0, atol=1e-12)
        np.testing.assert_allclose(insertion[i], bias[target[i]] + removed, rtol=0, atol=1e-12)


def test_curves_use_softmax_probability_by_default_and_a_stable_order():
    rng = np.random.default_rng(6)
    model = linear_model(6, 3)
    x = rng.uniform(size=(2, 1, 2, 3))
    target = 1
    weight, bias = model["fc"].weight.numpy(), model["fc"].bias.numpy()
    # An all-zero map: every pixel ties, so pixels go in row-major order.
    fractions, scores = metrics.deletion_curve(model, x, np.zeros((2, 2, 3)), target, steps=6)
    for k in range(7):
        kept = x.reshape(2, 6).copy()
        kept[:, :k] = 0.0
        logits = kept @ weight.T + bias
        probability = np.exp(logits[:, target]) / np.exp(logits).sum(axis=1)
        np.testing.assert_allclose(scores[:, k], probability, rtol=1e-12)
    assert np.all((0 < scores) & (scores < 1))


def test_insertion_from_a_blurred_image_starts_at_the_blur():
    rng = np.random.default_rng(7)
    model = linear_model(36, 2)
    x = rng.uniform(size=(2, 1, 6, 6))
    maps = rng.normal(size=(2, 6, 6))
    _, scores = metrics.insertion_curve(model, x, maps, 0, steps=4, baseline="blur", blur_sigma=1.0)
    blurred = metrics.gaussian_blur(x, 1.0)
    np.testing.assert_allclose(scores[:, 0], metrics.model_scores(model, blurred, 0))
    np.testing.assert_allclose(scores[:, -1], metrics.model_scores(model, x, 0))
    flat = np.full((1, 1, 5, 5), 0.3)
    np.testing.assert_allclose(metrics.gaussian_blur(flat, 2.0), flat)


def test_area_under_known_curves():
    assert metrics.area_under_curve([0, 0.5, 1], [1, 0.5, 0]) == pytest.approx(0.5)
    fractions = np.linspace(0, 1, 1001)
    areas = metrics.area_under_curve(fractions, np.stack([fractions, fractions ** 2]))
    np.testing.assert_allclose(areas, [0.5, 1 / 3], atol=1e-6)
    with pytest.raises(ValueError, match="fractions"):
        metrics.area_under_curve([0, 1, 0.5], [1, 1, 1])


# ----------------------------------------------------------------------------- sanity

def test_spearman_on_known_values():
    a = np.arange(10.0)
    assert metrics.spearman(a, a ** 3) == pytest.approx(1.0)
    assert metrics.spearman(a, -np.exp(a)) == pytest.approx(-1.0)
    np.testing.assert_array_equal(metrics.average_ranks([10, 20, 20, 5]), [2, 3.5, 3.5, 1])
    # ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): 4.5 / sqrt(4.5 * 5) = 3 / sqrt(10)
    assert metrics.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(3 / math.sqrt(10))
    assert math.isnan(metrics.spearman(np.ones(5), a[:5]))


def test_randomising_the_model_changes_a_gradient_map_but_not_an_edge_map():
    rng = np.random.default_rng(8)
    model = small_mlp(64, 3)
    before = model.state_dict()
    x = rng.uniform(size=(6, 1, 8, 8))
    target = np.array([0, 1, 2, 0, 1, 2])

    gradient = metrics.cascading_randomisation(model, vanilla_gradient, x, target, seed=1)
    assert gradient.layers == ["fc3", "fc2", "fc1"]
    assert gradient.spearman_abs.shape == gradient.spearman_signed.shape == (3, 6)
    np.testing.assert_allclose(gradient.original_map, vanilla_gradient(model, x, target))
    fully_random = gradient.spearman_signed[-1]
    assert np.all(np.abs(fully_random) < 0.5), fully_random
    assert np.all(np.abs(gradient.spearman_abs[-1]) < 0.5), gradient.spearman_abs[-1]

    edges = metrics.cascading_randomisation(model, sobel_magnitude, x, target, seed=1)
    assert np.all(edges.spearman_abs == 1) and np.all(edges.spearman_signed == 1)

    for name, value in model.state_dict().items():  # the caller's model is untouched
        np.testing.assert_array_equal(value, before[name])


def test_randomisation_follows_layer_order_and_rejects_unknown_layers():
    model = small_mlp(16, 2)
    x = np.random.default_rng(9).uniform(size=(2, 1, 4, 4))
    result = metrics.cascading_randomisation(model, vanilla_gradient, x, 0, layer_order=["fc1"])
    assert result.layers == ["fc1"] and result.randomised_maps.shape == (1, 2, 1, 4, 4)
    again = metrics.cascading_randomisation(model, vanilla_gradient, x, 0, layer_order=["fc1"])
    np.testing.assert_array_equal(result.randomised_maps, again.randomised_maps)  # seeded
    with pytest.raises(ValueError, match="layer_order"):
        metrics.cascading_randomisation(model, vanilla_gradient, x, 0, layer_order=["conv9"])


# ----------------------------------------------------------------------------- visual noise

def test_total_variation_of_constant_and_checkerboard():
    constant = np.full((2, 1, 6, 6), 0.7)
    checkerboard = (np.indices((6, 6)).sum(axis=0) % 2).astype(float)[None]
    assert np.all(metrics.total_variation(constant) == 0)
    assert metrics.total_variation(checkerboard)[0] == 1.0
    smooth = np.linspace(0, 1, 36).reshape(1, 6, 6)
    assert 0 < metrics.total_variation(smooth)[0] < metrics.total_variation(checkerboard)[0]


def test_display_normalisation_caps_at_the_99th_percentile():
    maps = np.zeros((1, 10, 10))
    maps[0, 0, 0] = 1000.0                    # one outlier above the 99th percentile
    maps[0, 1] = -np.arange(10.0)             # abs values 0..9
    shown = metrics.normalise_for_display(maps)
    assert shown.min() == 0 and shown.max() == 1 and shown[0, 0, 0] == 1
    assert np.all(shown[0, 1, 1:] < 1)


def test_high_frequency_energy_of_a_blob_is_below_that_of_noise():
    rows, cols = np.indices((32, 32))
    blob = np.exp(-((rows - 15.5) ** 2 + (cols - 15.5) ** 2) / (2 * 6.0 ** 2))[None]
    noise = np.random.default_rng(10).normal(size=(1, 32, 32))
    blob_energy = metrics.high_frequency_energy(blob)[0]
    noise_energy = metrics.high_frequency_energy(noise)[0]
    assert blob_energy < 0.01 < noise_energy
    assert noise_energy == pytest.approx(1 - math.pi * 0.25 ** 2, abs=0.1)  # flat spectrum
    assert metrics.high_frequency_energy(np.ones((1, 8, 8)))[0] == 0


# ----------------------------------------------------------------------------- aggregation

def test_mean_and_stderr():
    mean, stderr = metrics.mean_and_stderr([1, 2, 3, 4])
    assert mean == 2.5 and stderr == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)
    assert math.isnan(metrics.mean_and_stderr([3.0])[1])
    with pytest.raises(ValueError, match="values"):
        metrics.mean_and_stderr([1.0, float("nan")])
    assert metrics.mean_and_stderr([1.0, float("nan"), 3.0], skip_nan=True)[0] == 2.0


def test_results_tables():
    markdown, csv_text = metrics.results_tables(
        {"gradient": {"mass": (0.5, 0.01), "auc": (0.25, 0.02)}, "smoothgrad": {"mass": (0.75, 0.005)}})
    lines = markdown.splitlines()
    assert lines[0] == "| method | mass | auc |"
    assert lines[2] == "| gradient | 0.500 ± 0.010 | 0.250 ± 0.020 |"
    assert lines[3] == "| smoothgrad | 0.750 ± 0.005 |  |"
    assert csv_text.splitlines() == ["method,mass_mean,mass_stderr,auc_mean,auc_stderr",
                                     "gradient,0.5,0.01,0.25,0.02", "smoothgrad,0.75,0.005,,"]


# ----------------------------------------------------------------------------- errors

def test_errors_name_the_argument():
    masks = np.ones((2, 4, 4), bool)
    maps = np.ones((2, 4, 4))
    bad = maps.copy()
    bad[0, 1, 1] = np.nan
    with pytest.raises(ValueError, match="maps"):
        metrics.relevance_mass(bad, masks)
    with pytest.raises(ValueError, match="masks"):
        metrics.pointing_game(maps, masks[:, :3])
    with pytest.raises(ValueError, match="masks"):
        metrics.relevance_rank_accuracy(maps, np.zeros((2, 4, 4), bool))  # empty
    with pytest.raises(ValueError, match="other_mask"):
        metrics.discriminativity(maps, masks, masks[:1])
    with pytest.raises(ValueError, match="relevance"):
        metrics.relevance_mass(maps, masks, relevance="signed")
    with pytest.raises(ValueError, match="maps"):
        metrics.total_variation(np.ones((4, 4)))
    model = linear_model(16, 2)
    x = np.ones((2, 1, 4, 4))
    with pytest.raises(ValueError, match="x"):
        metrics.deletion_curve(model, np.where(masks[:, None], np.inf, 0.0), maps, 0)
    with pytest.raises(ValueError, match="maps"):
        metrics.deletion_curve(model, x, np.ones((2, 3, 3)), 0)
    with pytest.raises(ValueError, match="target"):
        metrics.deletion_curve(model, x, maps, 5)
    with pytest.raises(ValueError, match="baseline"):
        metrics.insertion_curve(model, x, maps, 0, baseline="gray")
    with pytest.raises(ValueError, match="a"):
        metrics.spearman([1.0, np.nan], [1.0, 2.0])


# ---- bad input: the model and the method are named too (issue 16) ---------------------------

def _mnist_and_digits():
    from minisg import data, models
    return models.load("mnist_cnn"), data.load_mnist("test")[0][:2]


@pytest.mark.parametrize("call, error, message", [
    (lambda m, x: metrics.deletion_curve(m, np.zeros((2, 1, 32, 32)), np.zeros((2, 1, 32, 32)), 0, steps=4), ValueError,
     r"x: expected shape \(N, 1, 28, 28\) for this model \(its input_shape\), got \(2, 1, 32, 32\)"),
    (lambda m, x: metrics.insertion_curve("mnist_cnn", x, np.zeros(x.shape), 0, steps=4), TypeError,
     r"model: expected a minisg model .*got str 'mnist_cnn'"),
    (lambda m, x: metrics.model_scores(None, x, 0), TypeError, r"model: expected a minisg model .*got NoneType None"),
    (lambda m, x: metrics.model_scores(m, np.zeros((2, 3, 28, 28)), 0), ValueError,
     r"images: expected shape \(N, 1, 28, 28\) for this model .*got \(2, 3, 28, 28\)"),
    (lambda m, x: metrics.cascading_randomisation(m, "vanilla", x[:1], 0), TypeError,
     r"method: expected a function method\(model, x, target, \*\*kwargs\) .*got 'vanilla'"),
    (lambda m, x: metrics.cascading_randomisation(m, None, x[:1], 0), TypeError, r"method: expected a function .*got None"),
    (lambda m, x: metrics.cascading_randomisation(m, minisg.methods.vanilla_gradient, x[:1], 0, seed=-1), ValueError,
     r"seed: expected an int >= 0, got -1"),
])
def test_the_model_method_and_images_of_a_metric_are_named(call, error, message):
    model, digits = _mnist_and_digits()
    with pytest.raises(error, match=message):
        call(model, digits)
