"""Conventions shared by every method: arguments checked with clear errors, eval mode,
dtype, the default target, batching, and the METHODS registry."""
import numpy as np
import pytest

import minisg
from minisg import methods as M
from minisg import nn


def tiny_cnn(seed=0, dtype=np.float64, classes=3):
    """conv-relu-pool twice, then fc-relu-dropout-fc: the MNIST net's shape on 8x8 inputs."""
    common = dict(rng=np.random.default_rng(seed), dtype=dtype)
    return nn.Sequential(
        ("conv1", nn.Conv2d(1, 3, 3, padding=1, **common)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(3, 4, 3, padding=1, **common)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()), ("fc1", nn.Linear(16, 6, **common)), ("relu3", nn.ReLU()),
        ("dropout", nn.Dropout(0.5)), ("fc2", nn.Linear(6, classes, **common)))


def linear_model(shape=(1, 4, 4), classes=3, seed=0, dtype=np.float64):
    size = int(np.prod(shape))
    return nn.Sequential(("flatten", nn.Flatten()),
                         ("fc", nn.Linear(size, classes, rng=np.random.default_rng(seed), dtype=dtype)))


@pytest.fixture
def cnn():
    return tiny_cnn()


@pytest.fixture
def images():
    return np.random.default_rng(1).random((3, 1, 8, 8))


# ---- errors name the argument, the expectation and the value ---------------------------

def test_x_must_be_4d(cnn, images):
    with pytest.raises(ValueError, match=r"x: expected a 4-D \(N, C, H, W\) array, got shape \(1, 8, 8\)"):
        M.vanilla_gradient(cnn, images[0], 0)


def test_x_channel_count_must_fit_the_model(cnn):
    with pytest.raises(ValueError, match=r"x: the model's first conv layer expects 1 channel\(s\), got x with 3"):
        M.gradcam(cnn, np.zeros((2, 3, 8, 8)), 0)


def test_x_feature_count_must_fit_a_linear_model():
    with pytest.raises(ValueError, match=r"x: the model's first linear layer expects C\*H\*W = 16"):
        M.vanilla_gradient(linear_model(), np.zeros((1, 1, 5, 5)), 0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_x_must_be_finite(cnn, images, bad):
    images[1, 0, 2, 3] = bad
    with pytest.raises(ValueError, match=r"x: expected finite values, got NaN or inf in 1 of 192"):
        M.smoothgrad(cnn, images, 0, n=2)


@pytest.mark.parametrize("target, message", [
    (3, r"target: expected class indices in \[0, 3\), got 3"),
    (-1, r"target: expected class indices in \[0, 3\), got -1"),
    (np.array([0, 1, 5]), r"target: expected class indices in \[0, 3\), got 5"),
    (np.array([0, 1]), r"target: expected an int or shape \(3,\) for 3 images, got shape \(2,\)"),
])
def test_target_must_be_a_class_index(cnn, images, target, message):
    with pytest.raises(ValueError, match=message):
        M.vanilla_gradient(cnn, images, target)


def test_target_must_be_integer(cnn, images):
    with pytest.raises(TypeError, match=r"target: expected an int or an array of 3 ints, got 1.5"):
        M.vanilla_gradient(cnn, images, 1.5)


@pytest.mark.parametrize("method", [M.gradcam, M.gradcam_pp, M.smooth_gradcam_pp, M.guided_gradcam])
def test_unknown_layer_lists_the_valid_names(cnn, images, method):
    with pytest.raises(ValueError, match=r"layer: unknown layer 'relu9'; valid layer names: \['conv1', 'relu1'"):
        method(cnn, images, 0, layer="relu9")


def test_cam_layer_must_be_a_feature_map(cnn, images):
    with pytest.raises(ValueError, match=r"layer 'fc1' gives shape \(3, 6\)"):
        M.gradcam(cnn, images, 0, layer="fc1")


@pytest.mark.parametrize("call, message", [
    (lambda m, x: M.smoothgrad(m, x, 0, noise_level=-0.1), r"noise_level: expected a finite number >= 0, got -0.1"),
    (lambda m, x: M.smoothgrad(m, x, 0, stdev=-1.0), r"stdev: expected a finite number >= 0, got -1.0"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, stdev=float("nan")), r"stdev: expected a finite number >= 0, got nan"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, noise_level=-1), r"noise_level: expected a finite number >= 0, got -1"),
    (lambda m, x: M.smoothgrad(m, x, 0, n=0), r"n: expected an int from 1 to 1,000,000, got 0"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, n=0), r"n: expected an int from 1 to 1,000,000, got 0"),
    (lambda m, x: M.integrated_gradients(m, x, 0, steps=0), r"steps: expected an int from 1 to 1,000,000, got 0"),
    (lambda m, x: M.integrated_gradients(m, x, 0, steps=1, rule="trapezoid"), r"steps: the trapezoid rule needs steps >= 2"),
    (lambda m, x: M.integrated_gradients(m, x, 0, rule="simpson"), r"rule: expected one of \['right', 'left', 'middle', 'trapezoid'\], got 'simpson'"),
    (lambda m, x: M.integrated_gradients(m, x, 0, baseline=np.zeros((2, 2))), r"baseline: expected a number or an array broadcastable"),
    (lambda m, x: M.smoothgrad(m, x, 0, kind="median"), r"kind: expected one of \['mean', 'squared', 'vargrad'\], got 'median'"),
    (lambda m, x: M.smoothgrad(m, x, 0, method="lime"), r"method: expected one of \['vanilla', .*\], got 'lime'"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, variant="keras"), r"variant: expected one of \['paper', 'torchcam'\], got 'keras'"),
    (lambda m, x: M.gradcam_pp(m, x, 0, derivatives="numeric"), r"derivatives: expected one of \['closed_form', 'autodiff'\], got 'numeric'"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, filters=[0, 4]), r"filters: filter 4 is outside the layer's range \[0, 4\)"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, neurons=[(0, 0), (4, 1)]), r"neurons: row 4 is outside the layer's range \[0, 4\)"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, neurons=[(1, -1)]), r"neurons: column -1 is outside the layer's range \[0, 4\)"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, neurons=[(0, 0)], region=True), r"neurons: expected \(row, col\) pairs \(two corners with region=True\)"),
    (lambda m, x: M.vanilla_gradient(m, x, 0, batch_size=0), r"batch_size: expected an int >= 1, got 0"),
    (lambda m, x: M.occlusion(m, x, 0, patch=9), r"patch: expected at most the image size 8, got 9"),
    (lambda m, x: M.occlusion(m, x, 0, stride=0), r"stride: expected an int >= 1, got 0"),
])
def test_bad_arguments_are_named(cnn, images, call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call(cnn, images)


# ---- conventions ----------------------------------------------------------------------

def test_default_target_is_the_clean_prediction(cnn, images):
    with minisg.no_grad():
        predicted = cnn.eval()(minisg.Tensor(images)).numpy().argmax(axis=1)
    np.testing.assert_array_equal(M.vanilla_gradient(cnn, images), M.vanilla_gradient(cnn, images, predicted))


def test_eval_mode_for_the_call_and_restored_after(cnn, images):
    cnn.train()
    first = M.vanilla_gradient(cnn, images, 1)
    second = M.vanilla_gradient(cnn, images, 1)   # dropout would make these differ in training mode
    np.testing.assert_array_equal(first, second)
    assert cnn.training and cnn["dropout"].training
    assert all(p.requires_grad for p in cnn.parameters())    # frozen only during the call
    with pytest.raises(ValueError):
        M.gradcam(cnn, images, 99)                            # restored on errors too
    assert cnn.training and all(p.requires_grad for p in cnn.parameters())
    cnn.eval()
    np.testing.assert_array_equal(first, M.vanilla_gradient(cnn, images, 1))
    assert not cnn.training


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maps_come_in_the_models_dtype(images, dtype):
    model = tiny_cnn(dtype=dtype)
    assert M.vanilla_gradient(model, images, 0).dtype == dtype
    assert M.smoothgrad(model, images.astype(np.float32), 0, n=2, seed=0).dtype == dtype
    assert M.gradcam(model, images, 0).dtype == dtype


def test_x_may_be_a_tensor_or_integers(cnn, images):
    as_tensor = M.vanilla_gradient(cnn, minisg.tensor(images, dtype=np.float64), 2)
    np.testing.assert_array_equal(as_tensor, M.vanilla_gradient(cnn, images, 2))
    assert M.vanilla_gradient(cnn, (images * 255).astype(np.uint8), 2).dtype == np.float64


def test_batch_size_does_not_change_the_maps(cnn, images):
    np.testing.assert_allclose(M.vanilla_gradient(cnn, images, 0, batch_size=1),
                               M.vanilla_gradient(cnn, images, 0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(M.gradcam(cnn, images, 0, batch_size=2), M.gradcam(cnn, images, 0),
                               rtol=1e-12, atol=1e-15)


def test_every_registered_method_has_the_one_call_shape(cnn, images):
    for name, method in M.METHODS.items():
        kwargs = {"n": 2, "seed": 0} if "smooth" in name else {}
        result = method(cnn, images, np.array([0, 1, 2]), **kwargs)
        expected = images.shape if name in M.PIXEL_METHODS else (3, 8, 8)
        assert result.shape == expected, name
        assert isinstance(result, np.ndarray) and np.isfinite(result).all(), name
    assert set(M.METHODS) == set(M.PIXEL_METHODS) | set(M.CAM_METHODS)
