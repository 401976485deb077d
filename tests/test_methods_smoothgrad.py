"""SmoothGrad and its variants (minisg/methods/METHODS.md §3)."""
import numpy as np
import pytest

import minisg
from minisg import functional as F, methods as M, nn


def tiny_cnn(seed=0, dtype=np.float64):
    common = dict(rng=np.random.default_rng(seed), dtype=dtype)
    return nn.Sequential(
        ("conv1", nn.Conv2d(1, 3, 3, padding=1, **common)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(3, 4, 3, padding=1, **common)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()), ("fc1", nn.Linear(16, 6, **common)), ("relu3", nn.ReLU()),
        ("fc2", nn.Linear(6, 3, **common)))


def linear_model(seed=0, dtype=np.float64, shape=(1, 4, 4)):
    fc = nn.Linear(int(np.prod(shape)), 3, rng=np.random.default_rng(seed), dtype=dtype)
    return nn.Sequential(("flatten", nn.Flatten()), ("fc", fc)), fc.weight.numpy()


class Quadratic(nn.Module):
    """S(x) = 0.5 x'Qx with Q symmetric: the gradient is Qx, one logit."""

    def __init__(self, Q):
        super().__init__()
        self.Q = nn.Parameter(Q)

    def forward(self, x):
        flat = F.flatten(x)
        return F.sum(flat * F.matmul(flat, self.Q), axis=1, keepdims=True) * 0.5


class Recorder:
    """A method that remembers the inputs (and keyword arguments) it was called with."""

    def __init__(self, method=M.vanilla_gradient):
        self.method, self.calls = method, []

    def __call__(self, model, x, target, **kwargs):
        self.calls.append((x.copy(), np.array(target), kwargs))
        return self.method(model, x, target, **kwargs)


@pytest.fixture
def images():
    return np.random.default_rng(1).random((3, 1, 8, 8))


@pytest.mark.parametrize("zero", [dict(noise_level=0.0), dict(stdev=0.0)])
def test_zero_noise_is_exactly_the_clean_map(images, zero):
    model = tiny_cnn()
    vanilla = M.vanilla_gradient(model, images, 1)
    np.testing.assert_array_equal(M.smoothgrad(model, images, 1, seed=0, **zero), vanilla)
    np.testing.assert_array_equal(M.smoothgrad(model, images, 1, kind="squared", seed=0, **zero), vanilla ** 2)
    np.testing.assert_array_equal(M.smoothgrad(model, images, 1, kind="vargrad", seed=0, **zero), 0 * vanilla)
    guided = M.guided_backprop(model, images, 1)
    np.testing.assert_array_equal(M.smoothgrad(model, images, 1, method="guided_backprop", **zero), guided)


def test_constant_image_gives_vanilla(images):
    model = tiny_cnn()
    images[1] = 0.5                                       # max == min: sigma = 0 for this one
    smooth = M.smoothgrad(model, images, 0, n=4, seed=0)     # in a mixed batch: up to rounding
    np.testing.assert_allclose(smooth[1], M.vanilla_gradient(model, images[1:2], 0)[0], rtol=1e-12, atol=1e-16)
    assert not np.allclose(smooth[0], M.vanilla_gradient(model, images[:1], 0)[0])
    np.testing.assert_array_equal(M.smoothgrad(model, images[1:2], 0, kind="squared"),
                                  M.vanilla_gradient(model, images[1:2], 0) ** 2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linear_model_gives_its_weights_for_any_seed(images, seed):
    model, weight = linear_model(shape=(1, 8, 8))
    expected = np.stack([weight[c].reshape(1, 8, 8) for c in (0, 2, 1)])
    target = np.array([0, 2, 1])
    np.testing.assert_allclose(M.smoothgrad(model, images, target, n=7, seed=seed), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(M.smoothgrad(model, images, target, n=7, kind="squared", seed=seed), expected ** 2,
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(M.smoothgrad(model, images, target, n=7, kind="vargrad", seed=seed), 0, atol=1e-15)


def test_quadratic_mean_converges_to_Qx():
    rng = np.random.default_rng(4)
    B = rng.standard_normal((9, 9))
    Q = (B + B.T) / 2
    model, x = Quadratic(Q), rng.random((2, 1, 3, 3))
    n, noise_level = 4000, 0.2
    sigma = noise_level * (x.reshape(2, -1).max(1) - x.reshape(2, -1).min(1))
    exact = (x.reshape(2, -1) @ Q).reshape(x.shape)
    mean = M.smoothgrad(model, x, 0, n=n, noise_level=noise_level, seed=5)
    # mean - Qx = Q mean(eps): element i has std sigma * |Q_i| / sqrt(n); allow 5 of them
    tolerance = 5 * sigma.reshape(2, 1, 1, 1) * np.linalg.norm(Q, axis=1).reshape(1, 1, 3, 3) / np.sqrt(n)
    assert np.all(np.abs(mean - exact) <= tolerance)
    assert not np.array_equal(mean, exact)
    # E[(Qx + Q eps)^2] = (Qx)^2 + sigma^2 diag(QQ'); vargrad -> sigma^2 diag(QQ')
    spread = (sigma ** 2).reshape(2, 1, 1, 1) * np.diag(Q @ Q).reshape(1, 1, 3, 3)
    vargrad = M.smoothgrad(model, x, 0, n=n, noise_level=noise_level, kind="vargrad", seed=5)
    squared = M.smoothgrad(model, x, 0, n=n, noise_level=noise_level, kind="squared", seed=5)
    np.testing.assert_allclose(vargrad, spread, rtol=0.15)
    np.testing.assert_allclose(squared, exact ** 2 + spread, rtol=0.15, atol=0.02 * spread.max())
    np.testing.assert_allclose(squared - mean ** 2, vargrad, rtol=1e-9, atol=1e-12)


def test_noise_is_scaled_by_the_image_range_and_batched(images):
    images[0] *= 0.5                                      # a different range for image 0
    recorder, model = Recorder(), linear_model(shape=(1, 8, 8))[0]
    M.smoothgrad(model, images, 2, method=recorder, n=300, noise_level=0.2, seed=0, batch_size=64)
    assert [len(call[0]) for call in recorder.calls] == [64] * 14 + [4]   # batch_size noisy images per call
    assert all(kwargs == {"batch_size": 64} for _, _, kwargs in recorder.calls)
    noisy, target = (np.concatenate([call[i] for call in recorder.calls]) for i in (0, 1))
    np.testing.assert_array_equal(target, np.full(900, 2))
    noise = noisy.reshape(3, 300, 1, 8, 8) - images[:, None]
    sigma = 0.2 * (images.reshape(3, -1).max(1) - images.reshape(3, -1).min(1))
    np.testing.assert_allclose(noise.reshape(3, -1).std(axis=1), sigma, rtol=0.03)
    recorder.calls.clear()
    M.smoothgrad(model, images, 2, method=recorder, n=300, stdev=0.1, seed=0)
    np.testing.assert_allclose((np.concatenate([call[0] for call in recorder.calls]).reshape(3, 300, 1, 8, 8) - images[:, None]).std(), 0.1, rtol=0.03)


def counted_forward(model):
    """Record the batch size of every forward pass the model runs."""
    sizes, forward = [], model.forward

    def counting(x):
        sizes.append(x.shape[0])
        return forward(x)
    model.forward = counting
    return sizes


@pytest.mark.parametrize("method", ["vanilla", "integrated_gradients"])
def test_a_given_target_costs_no_extra_forward_pass(images, method):
    model = tiny_cnn()
    sizes = counted_forward(model)
    M.smoothgrad(model, images, 1, method=method, n=4, seed=0, batch_size=5, **(
        {"steps": 3} if method == "integrated_gradients" else {}))
    samples = 3 * 4 * (3 if method == "integrated_gradients" else 1)
    assert sizes == [5] * (samples // 5) + ([samples % 5] if samples % 5 else [])
    sizes.clear()
    M.smoothgrad(model, images, None, n=4, seed=0, batch_size=5)   # the clean prediction: one pass more
    assert sizes == [3, 5, 5, 2]
    with pytest.raises(ValueError, match=r"target: expected class indices in \[0, 3\), got 3"):
        M.smoothgrad(model, images, 3, n=4, seed=0)


@pytest.mark.parametrize("target", [-1, 3])
def test_a_users_method_gets_a_checked_target(images, target):
    """A callable need not check the target itself: SmoothGrad does, against the logits."""
    recorder = Recorder(lambda model, x, target, **kwargs: np.zeros_like(x))
    with pytest.raises(ValueError, match=rf"target: expected class indices in \[0, 3\), got {target}"):
        M.smoothgrad(tiny_cnn(), images, target, method=recorder, n=4, seed=0)
    assert recorder.calls == []


def test_seeds_make_results_reproducible_in_either_dtype(images):
    images = images.astype(np.float32).astype(np.float64)     # the same x for both dtypes
    model = tiny_cnn()
    first = M.smoothgrad(model, images, 0, n=5, seed=3)
    np.testing.assert_array_equal(first, M.smoothgrad(model, images, 0, n=5, seed=np.random.default_rng(3)))
    np.testing.assert_allclose(first, M.smoothgrad(model, images, 0, n=5, seed=3, batch_size=4), rtol=1e-12, atol=1e-15)
    assert not np.allclose(first, M.smoothgrad(model, images, 0, n=5, seed=4))
    # the noise is drawn in float64 whatever the model's dtype: float32 sees the same numbers
    record64, record32 = Recorder(), Recorder()
    M.smoothgrad(tiny_cnn(dtype=np.float64), images, 0, method=record64, n=3, seed=7)
    M.smoothgrad(tiny_cnn(dtype=np.float32), images, 0, method=record32, n=3, seed=7)
    np.testing.assert_array_equal(record64.calls[0][0].astype(np.float32), record32.calls[0][0])


def test_target_is_fixed_by_the_clean_input(images):
    recorder, model = Recorder(), tiny_cnn()
    M.smoothgrad(model, images, None, method=recorder, n=4, noise_level=2.0, seed=0)
    with minisg.no_grad():
        predicted = model.eval()(minisg.Tensor(images)).numpy().argmax(axis=1)
    np.testing.assert_array_equal(recorder.calls[0][1], np.repeat(predicted, 4))


def test_integrated_gradients_gets_noise_on_x_only(images):
    model, weight = linear_model(shape=(1, 8, 8))
    baseline = np.random.default_rng(8).random((3, 1, 8, 8))
    recorder = Recorder(M.integrated_gradients)
    smooth = M.smoothgrad(model, images, 1, method=recorder, n=6, seed=2, steps=4, baseline=baseline)
    noisy, _, kwargs = recorder.calls[0]
    np.testing.assert_array_equal(kwargs["baseline"], np.repeat(baseline, 6, axis=0))   # fixed, per image
    # on a linear model IG(x_m) = (x_m - x') * w, so SmoothGrad(IG) = (mean_m x_m - x') * w
    expected = (noisy.reshape(3, 6, 1, 8, 8).mean(axis=1) - baseline) * weight[1].reshape(1, 8, 8)
    np.testing.assert_allclose(smooth, expected, rtol=1e-10, atol=1e-14)
    by_name = M.smoothgrad(model, images, 1, method="integrated_gradients", n=6, seed=2, steps=4, baseline=baseline)
    np.testing.assert_array_equal(by_name, smooth)
