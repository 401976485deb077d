"""Bad input to every method of minisg.methods gets one error that names the argument, the
expectation and the value, before any work (issue 16); values outside the model's declared
input range give one warning per call, pointing at the caller's line. Valid calls stay
silent and give the maps they gave before the checks."""
import re
import warnings

import numpy as np
import pytest

from minisg import data, models, nn
from minisg import methods as M
from minisg.autograd import Tensor, grad
from small_models import tiny_cnn

IMAGES = np.random.default_rng(1).random((2, 1, 8, 8))     # for tiny_cnn: 3 classes, relu2 is 4 x 4 x 4


@pytest.fixture(scope="module")
def tiny():
    return tiny_cnn()


@pytest.fixture(scope="module")
def mnist():
    return models.load("mnist_cnn")


@pytest.fixture(scope="module")
def digits():
    return data.load_mnist("test")[0][:2]


def raises_naming(error, name, value_text, call):
    """call() raises `error` whose message starts with "name: " and shows the bad value."""
    with pytest.raises(error) as caught:
        call()
    message = str(caught.value)
    assert message.startswith(f"{name}: "), message
    assert value_text in message, message
    return message


# ---- plain arguments of every method, on the tiny float64 network --------------------------

BAD_ARGUMENTS = [
    # (call on (tiny model, images), error, argument, text the message must show)
    *[(lambda m, x, s=seed: M.smoothgrad(m, x, 0, n=2, seed=s), TypeError, "seed", repr(seed))
      for seed in (1.5, "abc", -1, True)],
    *[(lambda m, x, s=seed: M.smooth_gradcam_pp(m, x, 0, n=2, seed=s), TypeError, "seed", repr(seed))
      for seed in (1.5, "abc", -1, True)],
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, filters=[]), ValueError, "filters", "empty selection []"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, filters=()), ValueError, "filters", "empty selection ()"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, filters=np.array([], dtype=int)), ValueError, "filters", "empty"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, filters=1.5), TypeError, "filters", "1.5"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, filters="3"), TypeError, "filters", "'3'"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, filters=True), TypeError, "filters", "True"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, filters=[0, True]), TypeError, "filters", "True"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, filters=[0, 4]), ValueError, "filters", "4"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, neurons=[]), ValueError, "neurons", "empty selection []"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, neurons=(3, 4)), ValueError, "neurons", "[(3, 4)]"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, neurons=[(0,)]), ValueError, "neurons", "[(0,)]"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, neurons=[(0, 1.5)]), TypeError, "neurons", "1.5"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, neurons="ab"), TypeError, "neurons", "'ab'"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, neurons=[(0, 4)]), ValueError, "neurons", "4"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, region=True), ValueError, "region", "neurons=None"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, filters=[1], region=True), ValueError, "region", "neurons=None"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, neurons=[(0, 0), (1, 1)], region="yes"), TypeError, "region", "'yes'"),
    (lambda m, x: M.vanilla_gradient(m, x, 2 ** 70), ValueError, "target", str(2 ** 70)),
    (lambda m, x: M.vanilla_gradient(m, x, [0, -2 ** 70]), ValueError, "target", str(-2 ** 70)),
    (lambda m, x: M.vanilla_gradient(m, x, np.array([0, 2 ** 63], dtype=np.uint64)), ValueError, "target",
     str(2 ** 63)),
    (lambda m, x: M.vanilla_gradient(m, x, True), TypeError, "target", "True"),
    (lambda m, x: M.gradcam(m, x, np.array([True, False])), TypeError, "target", "not bools"),
    (lambda m, x: M.vanilla_gradient(m, x, 1.5), TypeError, "target", "1.5"),
    (lambda m, x: M.vanilla_gradient(m, x, "1"), TypeError, "target", "'1'"),
    (lambda m, x: M.vanilla_gradient(m, x, [[1], [1, 2]]), ValueError, "target", "uneven lengths"),
    (lambda m, x: M.vanilla_gradient(m, x, [0, 1, 2]), ValueError, "target", "shape (3,)"),
    (lambda m, x: M.occlusion(m, x, 3), ValueError, "target", "[0, 3), got 3"),
    (lambda m, x: M.integrated_gradients(m, x, 0, baseline="x"), TypeError, "baseline", "'x'"),
    (lambda m, x: M.integrated_gradients(m, x, 0, baseline=np.zeros((3, 3))), ValueError, "baseline", "(3, 3)"),
    (lambda m, x: M.integrated_gradients(m, x, 0, baseline=[[0, 1], [2]]), ValueError, "baseline", "uneven"),
    (lambda m, x: M.integrated_gradients(m, x, 0, baseline=np.inf), ValueError, "baseline", "NaN or inf"),
    (lambda m, x: M.occlusion(m, x, 0, baseline="x"), TypeError, "baseline", "'x'"),
    (lambda m, x: M.occlusion(m, x, 0, baseline=True), TypeError, "baseline", "True"),
    (lambda m, x: M.occlusion(m, x, 0, baseline=np.nan), ValueError, "baseline", "nan"),
    (lambda m, x: M.vanilla_gradient(m, [[[[0.0, 1.0]]], [[[0.0]]]], 0), ValueError, "x", "uneven lengths"),
    (lambda m, x: M.gradcam(m, "abc", 0), TypeError, "x", "'abc'"),
    (lambda m, x: M.gradcam(m, None, 0), TypeError, "x", "None"),
    (lambda m, x: M.vanilla_gradient(m, x > 0.5, 0), TypeError, "x", "bool"),
    (lambda m, x: M.vanilla_gradient(m, x[:0], 0), ValueError, "x", "(0, 1, 8, 8)"),
    (lambda m, x: M.vanilla_gradient(m, x[0], 0), ValueError, "x", "x[None]"),
    (lambda m, x: M.vanilla_gradient(m, np.concatenate([x, x], axis=1), 0), ValueError, "x", "2"),
    (lambda m, x: M.smoothgrad(m, x, 0, noise_level=1e300), ValueError, "noise_level", "1e+300"),
    (lambda m, x: M.smoothgrad(m, x, 0, stdev=1e300), ValueError, "stdev", "1e+300"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, noise_level=1e300), ValueError, "noise_level", "1e+300"),
    (lambda m, x: M.smoothgrad(m, x, 0, noise_level=10 ** 400), ValueError, "noise_level", "1000"),
    (lambda m, x: M.smoothgrad(m, x, 0, noise_level="0.1"), TypeError, "noise_level", "'0.1'"),
    (lambda m, x: M.smoothgrad(m, x, 0, noise_level=True), TypeError, "noise_level", "True"),
    (lambda m, x: M.smoothgrad(m, x, 0, stdev=np.inf), ValueError, "stdev", "inf"),
    (lambda m, x: M.vanilla_gradient(m, x, 0, batch_size=True), TypeError, "batch_size", "True"),
    (lambda m, x: M.gradcam(m, x, 0, batch_size=1.5), TypeError, "batch_size", "1.5"),
    (lambda m, x: M.occlusion(m, x, 0, batch_size=0), ValueError, "batch_size", "0"),
    (lambda m, x: M.smoothgrad(m, x, 0, n=True), TypeError, "n", "True"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, n=2.5), TypeError, "n", "2.5"),
    (lambda m, x: M.integrated_gradients(m, x, 0, steps=True), TypeError, "steps", "True"),
    (lambda m, x: M.integrated_gradients(m, x, 0, steps=True, rule="trapezoid"), TypeError, "steps", "True"),
    (lambda m, x: M.occlusion(m, x, 0, patch=True), TypeError, "patch", "True"),
    (lambda m, x: M.occlusion(m, x, 0, stride=0), ValueError, "stride", "0"),
    (lambda m, x: M.gradcam(m, x, 0, upsample="no"), TypeError, "upsample", "'no'"),
    (lambda m, x: M.gradcam(m, x, 0, normalize=1), TypeError, "normalize", "1"),
    (lambda m, x: M.gradcam_pp(m, x, 0, normalize_alpha=None), TypeError, "normalize_alpha", "None"),
    (lambda m, x: M.guided_gradcam(m, x, 0, normalize="yes"), TypeError, "normalize", "'yes'"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, upsample=0), TypeError, "upsample", "0"),
    (lambda m, x: M.integrated_gradients(m, x, 0, rule=["right"]), ValueError, "rule", "['right']"),
    (lambda m, x: M.smoothgrad(m, x, 0, kind=None), ValueError, "kind", "None"),
    (lambda m, x: M.smoothgrad(m, x, 0, method=["vanilla"]), ValueError, "method", "['vanilla']"),
    (lambda m, x: M.smoothgrad(m, x, 0, method="vanilla", steps=5), TypeError, "steps", "vanilla_gradient"),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, variant=1), ValueError, "variant", "1"),
    (lambda m, x: M.gradcam_pp(m, x, 0, derivatives=None), ValueError, "derivatives", "None"),
    (lambda m, x: M.gradcam(m, x, 0, layer=5), ValueError, "layer", "5"),
    (lambda m, x: M.guided_gradcam(m, x, 0, layer=["relu2"]), ValueError, "layer", "['relu2']"),
    (lambda m, x: M.vanilla_gradient("mnist_cnn", x, 0), TypeError, "model", "models.load('mnist_cnn')"),
    (lambda m, x: M.occlusion(None, x, 0), TypeError, "model", "None"),
    *[(lambda m, x, f=method: f(nn.Linear, x, 0), TypeError, "model", "a class: build one")
      for method in M.METHODS.values()],
    (lambda m, x: M.smoothgrad(m, x, 0, n=2 ** 70), ValueError, "n", "from 1 to 1,000,000, got " + str(2 ** 70)),
    (lambda m, x: M.smooth_gradcam_pp(m, x, 0, n=2 ** 70), ValueError, "n", str(2 ** 70)),
    (lambda m, x: M.integrated_gradients(m, x, 0, steps=10 ** 7), ValueError, "steps", "1,000,000, got 10000000"),
    (lambda m, x: M.path_points_and_weights(2 ** 70), ValueError, "steps", str(2 ** 70)),
    (lambda m, x: M.smoothgrad(m, x, 0, n=2, method=lambda model, images, target: np.full(images.shape, np.nan)),
     ValueError, "method", "expected finite maps, got NaN or inf in 256 of 256"),   # 2 images x 2 samples
    (lambda m, x: M.smoothgrad(m, x, 0, n=2, noise_level=0.0, method=lambda model, images, target: None),
     TypeError, "method", "expected maps shaped like its input (2, 1, 8, 8), got NoneType None"),
    (lambda m, x: M.smoothgrad(m, x, 0, n=2, method=lambda model: 0), TypeError, "method",
     "expected a function method(model, x, target, **kwargs), got <lambda>(model)"),
    (lambda m, x: M.smoothgrad(m, x, 0, method=nn.Linear), TypeError, "method", "got the class Linear"),
]


@pytest.mark.parametrize("call, error, name, value_text", BAD_ARGUMENTS)
def test_each_bad_argument_gets_one_named_error(tiny, call, error, name, value_text):
    raises_naming(error, name, value_text, lambda: call(tiny, IMAGES.copy()))


# ---- against the model: its input shape, its dtype, its output ------------------------------

@pytest.mark.parametrize("size", [(32, 32), (27, 28), (56, 56), (4, 4)])
@pytest.mark.parametrize("method", [M.vanilla_gradient, M.gradcam, M.occlusion])
def test_a_wrong_image_size_names_x_and_the_models_input_shape(mnist, size, method):
    message = raises_naming(ValueError, "x", f"(1, 1, {size[0]}, {size[1]})",
                            lambda: method(mnist, np.zeros((1, 1, *size), np.float32), 0))
    assert "(N, 1, 28, 28)" in message


def test_an_axis_of_any_size_is_not_checked():
    rng = np.random.default_rng(0)
    model = nn.Sequential(("conv", nn.Conv2d(1, 3, 3, padding=1, rng=rng, dtype=np.float64)), ("relu", nn.ReLU()),
                          ("pool", nn.GlobalAvgPool2d()), ("fc", nn.Linear(3, 2, rng=rng, dtype=np.float64)))
    model.input_shape = (1, None, None)                       # a fully convolutional model's record
    assert M.gradcam(model, np.ones((1, 1, 12, 12)), 0, layer="relu").shape == (1, 12, 12)
    message = raises_naming(ValueError, "x", "(1, 2, 8, 8)",
                            lambda: M.gradcam(model, np.ones((1, 2, 8, 8)), 0, layer="relu"))
    assert "(N, 1, any, any)" in message


@pytest.mark.parametrize("method", [M.vanilla_gradient, M.integrated_gradients, M.smooth_gradcam_pp])
def test_pixels_beyond_the_models_dtype_name_x(mnist, digits, method):
    huge = digits.astype(np.float64) * 1e300                 # finite in float64, inf in float32
    message = raises_naming(ValueError, "x", "float32", lambda: method(mnist, huge, 0))
    assert "becomes inf" in message


def test_baselines_beyond_the_models_dtype_are_named(mnist, digits):
    raises_naming(ValueError, "baseline", "float32", lambda: M.integrated_gradients(mnist, digits, 0, baseline=1e300))
    raises_naming(ValueError, "baseline", "1e+300", lambda: M.occlusion(mnist, digits, 0, baseline=1e300))


def test_noise_that_overflows_the_models_dtype_is_named(mnist, digits):
    raises_naming(ValueError, "noise_level", "float32", lambda: M.smoothgrad(mnist, digits, 0, n=2, noise_level=1e30))
    raises_naming(ValueError, "stdev", "float32", lambda: M.smooth_gradcam_pp(mnist, digits, 0, n=2, stdev=1e30))


def feature_map_model():
    """A model whose output is (N, C, H, W), not logits."""
    return nn.Sequential(("conv", nn.Conv2d(1, 3, 3, padding=1, rng=np.random.default_rng(0), dtype=np.float64)),
                         ("relu", nn.ReLU()))


@pytest.mark.parametrize("call", [
    lambda m, x: M.vanilla_gradient(m, x),
    lambda m, x: M.vanilla_gradient(m, x, 0),
    lambda m, x: M.gradcam(m, x, 0, layer="relu"),
    lambda m, x: M.occlusion(m, x, 0),
    lambda m, x: M.smoothgrad(m, x, 0, n=2, seed=0),
])
def test_a_model_that_gives_no_logits_is_named(call):
    raises_naming(ValueError, "model", ", 3, 8, 8)", lambda: call(feature_map_model(), IMAGES))


def test_non_finite_logits_are_named():
    model = tiny_cnn()
    model["fc2"].bias.data[1] = np.nan
    raises_naming(ValueError, "model", "NaN or inf", lambda: M.vanilla_gradient(model, IMAGES, 0))


# ---- the exported helpers --------------------------------------------------------------------

@pytest.mark.parametrize("call, error, name, value_text", [
    (lambda: M.path_points_and_weights(True), TypeError, "steps", "True"),
    (lambda: M.path_points_and_weights(3, rule=None), ValueError, "rule", "None"),
    (lambda: M.selection_mask((4, 4)), ValueError, "shape", "(4, 4)"),
    (lambda: M.selection_mask((4, 4, 4), filters=[]), ValueError, "filters", "[]"),
    (lambda: M.selection_mask((4, 4, 4), neurons=[(0, 0)], region=1), TypeError, "region", "1"),
    (lambda: M.gradcampp_alpha(np.ones((2, 2, 2)), 1, 1, True), ValueError, "A", "(2, 2, 2)"),
    (lambda: M.gradcampp_alpha(np.ones((1, 2, 2, 2)), np.ones(3), 1, True), ValueError, "d2", "(3,)"),
    (lambda: M.gradcampp_alpha(np.ones((1, 2, 2, 2)), 1, 1, np.ones((1, 2, 2, 2))), TypeError, "where", "float64"),
    (lambda: M.gradcampp_alpha(np.ones((1, 2, 2, 2)), 1, 1, True, normalize="no"), TypeError, "normalize", "'no'"),
    (lambda: M.closed_form_derivatives("g"), TypeError, "g", "'g'"),
    (lambda: M.autodiff_derivatives(3, np.ones((1, 4, 4, 4)), 0), TypeError, "head", "3"),
    (lambda: M.autodiff_derivatives(tiny_cnn().split("relu2")[1], np.ones((1, 4, 4)), 0), ValueError, "A", "(1, 4, 4)"),
    (lambda: M.autodiff_derivatives(tiny_cnn().split("relu2")[1], np.ones((1, 4, 4, 4)), True), TypeError,
     "target", "True"),
    (lambda: M.autodiff_derivatives(tiny_cnn().split("relu2")[1], np.ones((1, 4, 4, 4)), 0, elements=[64]),
     ValueError, "elements", "64"),
    (lambda: M.autodiff_derivatives(tiny_cnn().split("relu2")[1], np.ones((1, 4, 4, 4)), 0, elements=[]),
     ValueError, "elements", "empty"),
    (lambda: M.tapped_autodiff_derivatives(tiny_cnn(), IMAGES, "relu9", 0), ValueError, "layer", "'relu9'"),
    (lambda: M.tapped_autodiff_derivatives(tiny_cnn(), IMAGES, "relu2", 0, batch_size=0), ValueError,
     "batch_size", "0"),
])
def test_the_exported_helpers_name_their_arguments(call, error, name, value_text):
    raises_naming(error, name, value_text, call)


# ---- the input range: a warning, once per call, at the caller's line --------------------------

def range_warnings(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [w for w in caught if "input range" in str(w.message)]


@pytest.mark.parametrize("method", [M.vanilla_gradient, M.smoothgrad, M.guided_gradcam, M.smooth_gradcam_pp,
                                    M.integrated_gradients])
def test_pixels_in_0_255_warn_once_at_the_callers_line(mnist, digits, method):
    kwargs = {"n": 2, "seed": 0} if "smooth" in method.__name__ else {}
    caught = range_warnings(lambda: method(mnist, digits * 255, 0, **kwargs))
    assert len(caught) == 1, [str(w.message) for w in caught]
    assert caught[0].category is UserWarning and caught[0].filename == __file__
    message = str(caught[0].message)
    assert re.match(r"x: expected values in the model's input range \[0, 1\], got min 0, max 25\d", message), message
    assert "divide them by 255" in message


def test_uint8_and_negative_images_warn(mnist, digits):
    assert len(range_warnings(lambda: M.gradcam(mnist, (digits * 255).astype(np.uint8), 0))) == 1
    assert len(range_warnings(lambda: M.vanilla_gradient(mnist, digits - 0.5, 0))) == 1


def test_a_small_overshoot_warns_without_the_0_255_hint(mnist, digits):
    (caught,) = range_warnings(lambda: M.vanilla_gradient(mnist, digits * 1.08, 0))   # e.g. a path leaving [0, 1]
    assert "max 1.08" in str(caught.message) and "255" not in str(caught.message)


def test_rounding_and_models_without_a_range_do_not_warn(mnist, digits):
    rounded = digits.copy()
    rounded[0, 0, 0, 0] = 1.0000001
    assert range_warnings(lambda: M.vanilla_gradient(mnist, rounded, 0)) == []
    assert range_warnings(lambda: M.vanilla_gradient(tiny_cnn(), IMAGES * 255, 0)) == []


# ---- valid calls: silent, and the maps they were ----------------------------------------------

def test_every_method_on_clean_digits_runs_without_a_warning(mnist, digits):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name, method in M.METHODS.items():
            kwargs = {"n": 2, "seed": 0} if "smooth" in name else {"steps": 4} if name == "integrated_gradients" else {}
            result = method(mnist, digits, **kwargs)
            assert np.isfinite(result).all(), name


def test_the_checked_vanilla_gradient_is_the_plain_autograd_one(mnist, digits):
    images = Tensor(digits, requires_grad=True)
    mnist.eval()
    logits = mnist(images)
    (expected,) = grad(logits[np.arange(2), np.array([7, 2])].sum(), images)
    as_lists = digits.astype(np.float64).tolist()            # cast to float32 by the checks: the same values
    np.testing.assert_array_equal(M.vanilla_gradient(mnist, as_lists, [7, 2]), expected.numpy())


def test_accepted_spellings_of_seeds_targets_and_selections(tiny):
    first = M.smoothgrad(tiny, IMAGES, np.int64(1), n=3, seed=np.int64(5))
    np.testing.assert_array_equal(first, M.smoothgrad(tiny, IMAGES, [1, 1], n=3, seed=np.random.default_rng(5)))
    by_list = M.smooth_gradcam_pp(tiny, IMAGES, 0, n=2, seed=0, filters=[1, 2], neurons=[(0, 0), (2, 3)], region=True)
    by_arrays = M.smooth_gradcam_pp(tiny, IMAGES, 0, n=2, seed=0, filters=np.array([1, 2]),
                                    neurons=np.array([[0, 0], [2, 3]]), region=np.bool_(True))
    np.testing.assert_array_equal(by_list, by_arrays)
