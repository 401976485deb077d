"""Integrated Gradients (minisg/methods/METHODS.md §5)."""
import numpy as np
import pytest

import minisg
from minisg import methods as M, models, nn
from minisg.methods.integrated_gradients import RULES
from small_models import tiny_cnn


def smooth_model(seed=0):
    """Softplus and tanh: a smooth score, where quadrature rules differ in accuracy."""
    common = dict(rng=np.random.default_rng(seed), dtype=np.float64)
    return nn.Sequential(("flatten", nn.Flatten()), ("fc1", nn.Linear(16, 8, **common)), ("soft", nn.Softplus()),
                         ("fc2", nn.Linear(8, 8, **common)), ("tanh", nn.Tanh()), ("fc3", nn.Linear(8, 2, **common)))


def scores(model, x, target):
    with minisg.no_grad():
        return model.eval()(minisg.Tensor(x)).numpy()[np.arange(len(x)), target]


def completeness_error(model, x, target, baseline, **kwargs):
    """|sum IG - (S(x) - S(x'))| / |S(x) - S(x')| per image."""
    attribution = M.integrated_gradients(model, x, target, baseline=baseline, **kwargs)
    difference = scores(model, x, target) - scores(model, np.broadcast_to(baseline, x.shape), target)
    return np.abs(attribution.sum(axis=(1, 2, 3)) - difference) / np.abs(difference)


def digit_like(count=2, seed=0):
    """Stroke images (a 7 and a 1) on black, 28x28, with a little texture: no dataset needed."""
    x = np.zeros((count, 1, 28, 28))
    x[0, 0, 5:8, 6:22] = 1.0
    for row in range(8, 24):
        x[0, 0, row, 20 - (row - 8) // 2:23 - (row - 8) // 2] = 1.0
    x[1 % count, 0, 4:24, 13:16] = 1.0
    return np.clip(x * (0.8 + 0.2 * np.random.default_rng(seed).random(x.shape)), 0, 1)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("steps", [2, 3, 50])
def test_every_rule_weights_sum_to_one(rule, steps):
    points, weights = M.path_points_and_weights(steps, rule)
    assert len(points) == len(weights) == steps
    assert weights.sum() == pytest.approx(1.0, abs=1e-15)
    assert np.all((0 <= points) & (points <= 1))


def test_rule_points_and_weights():
    points, weights = M.path_points_and_weights(4, "right")
    np.testing.assert_allclose(points, [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(weights, 0.25)
    np.testing.assert_allclose(M.path_points_and_weights(4, "left")[0], [0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(M.path_points_and_weights(4, "middle")[0], [0.125, 0.375, 0.625, 0.875])
    points, weights = M.path_points_and_weights(5, "trapezoid")     # true weights: 1/(m-1), halved ends
    np.testing.assert_allclose(points, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(weights, [0.125, 0.25, 0.25, 0.25, 0.125])


def test_completeness_at_300_steps_on_a_random_mnist_cnn():
    model = models.mnist_cnn(seed=3, dtype=np.float64)
    x = digit_like()[:1]                     # one image: 300 path points through the full CNN
    assert completeness_error(model, x, np.array([7]), 0.0, steps=300)[0] <= 0.01


@pytest.mark.skipif(not models.resolve("mnist_cnn").exists(), reason="the trained mnist_cnn checkpoint is not shipped yet")
def test_completeness_at_300_steps_on_the_trained_net():
    model = models.load("mnist_cnn", dtype=np.float64)
    x = digit_like()[:1]
    with minisg.no_grad():
        predicted = model(minisg.Tensor(x)).numpy().argmax(axis=1)
    assert np.all(completeness_error(model, x, predicted, 0.0, steps=300) <= 0.01)


@pytest.mark.parametrize("steps", [1, 3, 8])
def test_right_rule_equals_gradient_x_input_on_a_bias_free_relu_net(steps):
    """S(a x) = a S(x) and the ReLU/max-pool pattern is the same along the path: M(a x) = M(x)."""
    model, x = tiny_cnn(seed=1, bias=False), np.random.default_rng(2).random((3, 1, 8, 8))
    np.testing.assert_allclose(M.integrated_gradients(model, x, 2, steps=steps),
                               M.gradient_x_input(model, x, 2), rtol=1e-11, atol=1e-15)


def test_trapezoid_converges_faster_on_a_smooth_score():
    model, x = smooth_model(), np.random.default_rng(4).random((3, 1, 4, 4))
    baseline = np.random.default_rng(5).random((3, 1, 4, 4)) * 0.5        # any baseline, per image
    errors = {rule: completeness_error(model, x, 1, baseline, steps=16, rule=rule).max()
              for rule in ("right", "left", "middle", "trapezoid")}
    assert errors["trapezoid"] < 1e-3 and errors["middle"] < 1e-3
    assert errors["right"] > 3 * errors["trapezoid"] and errors["left"] > 3 * errors["trapezoid"]
    assert completeness_error(model, x, 1, baseline, steps=200, rule="trapezoid").max() < 1e-5


def test_baselines_broadcast_and_default_to_black():
    model, x = smooth_model(), np.random.default_rng(6).random((2, 1, 4, 4))
    black = M.integrated_gradients(model, x, 0, steps=5)
    np.testing.assert_array_equal(black, M.integrated_gradients(model, x, 0, baseline=0.0, steps=5))
    np.testing.assert_array_equal(black, M.integrated_gradients(model, x, 0, baseline=np.zeros((1, 4, 4)), steps=5))
    gray = M.integrated_gradients(model, x, 0, baseline=0.5, steps=5)
    np.testing.assert_array_equal(gray, M.integrated_gradients(model, x, 0, baseline=np.full((2, 1, 4, 4), 0.5), steps=5))
    assert not np.allclose(gray, black)
    with pytest.raises(ValueError, match="baseline: expected finite values"):
        M.integrated_gradients(model, x, 0, baseline=np.nan)


def test_path_batching_does_not_change_the_result():
    model, x = tiny_cnn(), np.random.default_rng(7).random((2, 1, 8, 8))
    np.testing.assert_allclose(M.integrated_gradients(model, x, 0, steps=7, batch_size=3),
                               M.integrated_gradients(model, x, 0, steps=7), rtol=1e-12, atol=1e-15)
