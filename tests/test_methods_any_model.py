"""Every method on any model: Module taps (named_modules, tensor_names, run_with_taps) and CAM
layers given by tap name, chosen by default_cam_layer or found (minisg/methods/METHODS.md §7)."""
import threading
import warnings

import numpy as np
import pytest

import minisg
from minisg import methods as M, models, nn
from minisg.models.cell_model import cell_model
from minisg.models.scene_cnn import scene_cnn
from small_models import tiny_cnn


class Block(nn.Module):
    """relu(conv(x)) + x: a residual block, two levels below the model."""

    def __init__(self, channels, rng):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, rng=rng, dtype=np.float64)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.conv(x)) + x


class ResidualNet(nn.Module):
    """stem conv + ReLU (4 x 8 x 8), a residual block, global average pooling, a linear layer."""

    def __init__(self, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.stem = nn.Conv2d(1, 4, 3, padding=1, rng=rng, dtype=np.float64)
        self.stem_relu = nn.ReLU()
        self.block = Block(4, rng)
        self.pool = nn.GlobalAvgPool2d()
        self.fc = nn.Linear(4, 3, rng=rng, dtype=np.float64)

    def forward(self, x):
        return self.fc(self.pool(self.block(self.stem_relu(self.stem(x)))))


class TwoStage(nn.Module):
    """A Sequential's layers held as two Sequentials, features and classifier: not a Sequential."""

    def __init__(self, flat, cut):
        super().__init__()
        names = flat.layer_names
        self.features = nn.Sequential(*[(name, flat[name]) for name in names[:names.index(cut) + 1]])
        self.classifier = nn.Sequential(*[(name, flat[name]) for name in names[names.index(cut) + 1:]])

    def forward(self, x):
        return self.classifier(self.features(x))


class FakeGraph:
    """A graph model's side of the protocol, with no minisg Module in its type: tensor names,
    run_with_taps, default_cam_layer. It runs a Sequential's layers and names their outputs."""

    def __init__(self, flat):
        self.flat = flat.eval()
        self.default_cam_layer = "relu2/out"

    @property
    def tensor_names(self):
        return [f"{name}/out" for name in self.flat.layer_names]

    def parameters(self):          # not frozen by evaluation_mode (not a Module): taps stay in the graph
        return self.flat.parameters()

    def __call__(self, x):
        return self.flat(x)

    def run_with_taps(self, x, names):
        taps = {}
        for name, layer in self.flat.named_children():
            x = layer(x)
            if f"{name}/out" in names:
                taps[f"{name}/out"] = x
        return x, taps


@pytest.fixture
def images():
    return np.random.default_rng(1).random((3, 1, 8, 8))


def as_tensor(x):
    return minisg.Tensor(x)


# ---- named_modules, tensor_names, run_with_taps ------------------------------------------

def test_nested_submodules_have_dotted_names_depth_first():
    model = ResidualNet()
    assert model.tensor_names == ["stem", "stem_relu", "block", "block.conv", "block.relu", "pool", "fc"]
    assert dict(model.named_modules())["block.conv"] is model.block.conv
    assert [name for name, _ in model.named_modules("net.")][:2] == ["net.stem", "net.stem_relu"]
    assert tiny_cnn().tensor_names == tiny_cnn().layer_names
    assert cell_model(models.mnist_cnn()).tensor_names[-3:] == ["cells.head.relu3", "cells.head.dropout", "cells.head.fc2"]


def test_run_with_taps_returns_the_output_and_the_named_outputs_in_call_order(images):
    model = ResidualNet()
    with minisg.no_grad():
        output, taps = model.run_with_taps(as_tensor(images), model.tensor_names)
        stem = model.stem_relu(model.stem(as_tensor(images))).numpy()
        inner = model.block.relu(model.block.conv(as_tensor(stem))).numpy()
        expected = model(as_tensor(images)).numpy()
    np.testing.assert_array_equal(output.numpy(), expected)
    assert list(taps) == ["stem", "stem_relu", "block.conv", "block.relu", "block", "pool", "fc"]
    np.testing.assert_array_equal(taps["block.relu"].numpy(), inner)
    np.testing.assert_array_equal(taps["block"].numpy(), inner + stem)          # the residual sum
    np.testing.assert_array_equal(taps["fc"].numpy(), expected)


def test_the_score_is_differentiated_at_a_tap(images):
    """S = fc(mean(A)): dS_c/dA = v_c / (h w) at every position of the block's output A."""
    model = ResidualNet()
    with nn.evaluation_mode(model):                             # frozen: the tap becomes a leaf
        logits, taps = model.run_with_taps(as_tensor(images), ["block"])
        (gradient,) = minisg.grad(logits[:, 2].sum(), taps["block"])
    expected = np.broadcast_to(model.fc.weight.numpy()[2][None, :, None, None] / 64, images.shape[:1] + (4, 8, 8))
    np.testing.assert_allclose(gradient.numpy(), expected, rtol=1e-12)
    x = minisg.Tensor(images, requires_grad=True)               # not frozen: the tap is in the graph
    logits, taps = model.run_with_taps(x, ["block"])
    assert taps["block"].creator is not None
    (gradient,) = minisg.grad(logits[:, 2].sum(), taps["block"])
    np.testing.assert_allclose(gradient.numpy(), expected, rtol=1e-12)


def test_unknown_tap_names_are_refused_with_the_valid_names(images):
    with pytest.raises(ValueError, match=r"layer: unknown layer 'block.pool'; valid layer names: \['stem', 'stem_relu', 'block'"):
        ResidualNet().run_with_taps(as_tensor(images), ["block", "block.pool"])


def test_a_module_called_twice_counts_with_its_last_call(images):
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.relu, self.conv = nn.ReLU(), nn.Conv2d(1, 1, 3, padding=1, dtype=np.float64)

        def forward(self, x):
            return self.relu(self.conv(self.relu(x - 0.5)))

    model = Twice()
    with minisg.no_grad():
        output, taps = model.run_with_taps(as_tensor(images), ["relu", "conv"])
    assert list(taps) == ["conv", "relu"]
    np.testing.assert_array_equal(taps["relu"].numpy(), output.numpy())


def test_taps_are_per_thread(images):
    """While one thread runs run_with_taps, another thread's calls of the same submodule are not taps."""
    class CallsElsewhere(nn.Module):
        def __init__(self):
            super().__init__()
            self.relu = nn.ReLU()

        def forward(self, x):
            output = self.relu(x)
            worker = threading.Thread(target=lambda: self.relu(x - 10.0))     # all zeros if recorded
            worker.start()
            worker.join()
            return output

    with minisg.no_grad():
        _, taps = CallsElsewhere().run_with_taps(as_tensor(images), ["relu"])
    np.testing.assert_array_equal(taps["relu"].numpy(), images)


def test_higher_derivatives_through_a_tap_match_the_split_head():
    """A smooth head (softplus, tanh) after the tap: the autodiff diagonal via taps equals the
    one through Sequential.split's head, so taps keep the graph for double and triple backward."""
    common = dict(rng=np.random.default_rng(0), dtype=np.float64)
    flat = nn.Sequential(("conv", nn.Conv2d(1, 2, 3, padding=1, **common)), ("relu0", nn.ReLU()),
                         ("soft", nn.Softplus()), ("flatten", nn.Flatten()), ("fc1", nn.Linear(2 * 16, 5, **common)),
                         ("tanh", nn.Tanh()), ("fc2", nn.Linear(5, 3, **common)))
    x, target = np.random.default_rng(2).random((2, 1, 4, 4)), np.array([0, 2])
    body, head = flat.split("relu0")
    with nn.evaluation_mode(flat), minisg.no_grad():
        A = body(as_tensor(x)).numpy()
    with nn.evaluation_mode(flat):
        by_head = M.autodiff_derivatives(head, A, target, batch_size=5)
        by_taps = M.tapped_autodiff_derivatives(TwoStage(flat, "relu0"), x, "features.relu0", target, batch_size=5)
    assert not np.allclose(by_head[2], by_head[0] ** 3, rtol=1e-3)    # d3S != 0: third order matters
    for ours, theirs in zip(by_taps, by_head):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-13)


# ---- CAM methods on any model ----------------------------------------------------------

def test_gradcam_of_the_residual_net_is_cam(images):
    """A GAP + linear head after the block: Grad-CAM at "block" is relu(sum_k v_k A^k) / (h w)."""
    model, target = ResidualNet(), np.array([0, 1, 2])
    with minisg.no_grad():
        A = model.block(model.stem_relu(model.stem(as_tensor(images)))).numpy()
    v = model.fc.weight.numpy()[target]
    cam = np.maximum((v[:, :, None, None] * A).sum(axis=1), 0) / 64
    np.testing.assert_allclose(M.gradcam(model, images, target, layer="block", upsample=False), cam,
                               rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("method", [M.gradcam, M.gradcam_pp, M.smooth_gradcam_pp, M.guided_gradcam])
def test_cam_methods_on_a_nested_model_equal_those_on_the_flat_sequential(images, method):
    flat = tiny_cnn()
    nested = TwoStage(flat, "relu2")
    kwargs = {"seed": 0} if method is M.smooth_gradcam_pp else {}
    np.testing.assert_array_equal(method(nested, images, 1, layer="features.relu2", **kwargs),
                                  method(flat, images, 1, layer="relu2", **kwargs))
    np.testing.assert_array_equal(method(nested, images, 1, layer="classifier.pool2", **kwargs),
                                  method(flat, images, 1, layer="pool2", **kwargs))


def test_autodiff_gradcam_pp_on_a_nested_model_equals_the_flat_one(images):
    flat = tiny_cnn()
    np.testing.assert_allclose(M.gradcam_pp(TwoStage(flat, "relu2"), images, 0, layer="features.relu2",
                                            derivatives="autodiff", batch_size=16),
                               M.gradcam_pp(flat, images, 0, layer="relu2", derivatives="autodiff"),
                               rtol=1e-10, atol=1e-13)


def test_many_images_in_parallel_slices_give_the_per_image_maps():
    model, x = ResidualNet(), np.random.default_rng(3).random((24, 1, 8, 8))
    together = M.smooth_gradcam_pp(model, x, 1, layer="block.relu", n=2, seed=0)
    one_by_one = M.smooth_gradcam_pp(model, x, 1, layer="block.relu", n=2, seed=0, batch_size=1)
    np.testing.assert_allclose(together, one_by_one, rtol=1e-10, atol=1e-13)


def test_a_graph_like_model_works_through_the_protocol_alone(images):
    flat = tiny_cnn()
    graph = FakeGraph(flat)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                          # its default_cam_layer: no warning
        np.testing.assert_allclose(M.gradcam_pp(graph, images, 2), M.gradcam_pp(flat, images, 2, layer="relu2"),
                                   rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(M.gradcam(graph, images, 2, layer="pool1/out"), M.gradcam(flat, images, 2, layer="pool1"),
                               rtol=1e-12, atol=1e-15)


# ---- the default layer -------------------------------------------------------------------

def test_the_shipped_models_name_their_default_layer():
    assert models.mnist_cnn().default_cam_layer == "relu2"
    assert cell_model(models.mnist_cnn()).default_cam_layer == "relu2"
    assert scene_cnn().default_cam_layer == "relu3"
    assert nn.Sequential(("conv", nn.Conv2d(1, 2, 3)), ("relu", nn.ReLU())).default_cam_layer is None
    assert ResidualNet().default_cam_layer is None


def test_without_a_layer_a_sequential_with_relu2_uses_it_silently(images):
    model = tiny_cnn()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(M.gradcam(model, images, 0), M.gradcam(model, images, 0, layer="relu2"))


def test_without_a_layer_the_last_feature_map_is_used_and_named(images):
    model = ResidualNet()
    with pytest.warns(UserWarning, match=r"layer: none given and ResidualNet has no default_cam_layer; "
                                         r"using 'block', the last layer with an \(N, K, H, W\) output \(4x8x8\)"):
        found = M.gradcam_pp(model, images, 1)
    np.testing.assert_array_equal(found, M.gradcam_pp(model, images, 1, layer="block"))
    model.default_cam_layer = "stem_relu"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(M.gradcam(model, images, 1), M.gradcam(model, images, 1, layer="stem_relu"))


def test_the_search_stops_before_global_pooling(images):
    """flat's last 4-D output is pool2 (no relu2 there to be the default); fc1 and later are 2-D."""
    flat = nn.Sequential(*[(name, layer) for name, layer in tiny_cnn().named_children() if name != "relu2"])
    with pytest.warns(UserWarning, match=r"using 'pool2'"):
        M.gradcam(flat, images, 0)


def test_layer_errors_name_the_layer(images):
    with pytest.raises(ValueError, match=r"layer: CAM methods need a layer with an \(N, K, H, W\) output; "
                                         r"layer 'pool' gives shape \(3, 4\)"):
        M.gradcam(ResidualNet(), images, 0, layer="pool")
    linear = nn.Sequential(("flatten", nn.Flatten()), ("fc", nn.Linear(64, 3, dtype=np.float64)))
    with pytest.raises(ValueError, match=r"layer: none given, and no layer of Sequential gives an \(N, K, H, W\) "
                                         r"output for CAM methods to use; its layers: \['flatten', 'fc'\]"):
        M.smooth_gradcam_pp(linear, images, 0)
    deep = nn.Sequential(*[nn.ReLU() for _ in range(25)])       # a long list is cut to its ends
    with pytest.raises(ValueError, match=r"valid layer names: \['0', '1', '2', \.\.\., '22', '23', '24'\] \(25 in all"):
        M.gradcam(deep, images, 0, layer="relu")

    class NoTaps:                                               # a model, but not a Module
        parameters, __call__ = (lambda self: []), (lambda self, x: linear(x))

    with pytest.raises(TypeError, match=r"layer: CAM methods need a minisg Module .* got NoTaps"):
        M.gradcam(NoTaps(), images, 0)


# ---- pixel methods on any model ----------------------------------------------------------

PIXEL_CALLS = {
    "vanilla": lambda m, x: M.vanilla_gradient(m, x, 1),
    "gradient_x_input": lambda m, x: M.gradient_x_input(m, x, 1),
    "integrated_gradients": lambda m, x: M.integrated_gradients(m, x, 1, steps=5),
    "smoothgrad": lambda m, x: M.smoothgrad(m, x, 1, n=3, seed=0),
    "guided_backprop": lambda m, x: M.guided_backprop(m, x, 1),
    "deconvnet": lambda m, x: M.deconvnet(m, x, 1),
    "occlusion": lambda m, x: M.occlusion(m, x, 1, patch=3, stride=2),
}


@pytest.mark.parametrize("name", sorted(PIXEL_CALLS))
def test_pixel_methods_on_a_nested_model_equal_those_on_the_flat_sequential(images, name):
    flat = tiny_cnn()
    np.testing.assert_array_equal(PIXEL_CALLS[name](TwoStage(flat, "relu2"), images), PIXEL_CALLS[name](flat, images))


def test_pixel_methods_run_on_the_residual_net(images):
    model = ResidualNet()
    for name, call in PIXEL_CALLS.items():
        result = call(model, images)
        assert result.shape == images.shape and np.isfinite(result).all() and np.abs(result).max() > 0, name


def test_the_residual_nets_gradient_matches_finite_differences(images):
    model, x, h = ResidualNet(), images[:1], 1e-6
    gradient = M.vanilla_gradient(model, x, 2)[0, 0]
    rng = np.random.default_rng(4)
    for i, j in rng.integers(0, 8, size=(5, 2)):
        up, down = x.copy(), x.copy()
        up[0, 0, i, j] += h
        down[0, 0, i, j] -= h
        with minisg.no_grad():
            slope = (model(as_tensor(up)).numpy()[0, 2] - model(as_tensor(down)).numpy()[0, 2]) / (2 * h)
        np.testing.assert_allclose(gradient[i, j], slope, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("method", ["guided_backprop", "deconvnet"])
def test_relu6_follows_the_relu_rules_of_guided_backprop_and_deconvnet(method):
    """ReLU6 (clip at 0 and 6, MobileNetV2's activation) is a rectifier: where no value reaches
    the cap, Guided BackProp and Deconvnet give the same map through it as through ReLU, and
    not the plain gradient."""
    from minisg import methods
    rng = np.random.default_rng(3)

    def net(activation):
        torch_rng = np.random.default_rng(7)
        return nn.Sequential(("conv", nn.Conv2d(1, 4, 3, padding=1, rng=torch_rng, dtype=np.float64)),
                             ("act", activation), ("flat", nn.Flatten()),
                             ("fc", nn.Linear(4 * 36, 3, rng=torch_rng, dtype=np.float64)))

    x = rng.normal(0, 0.3, size=(2, 1, 6, 6))
    with_relu6, with_relu = net(nn.ReLU6()), net(nn.ReLU())
    assert np.abs(with_relu6["conv"](minisg.tensor(x)).numpy()).max() < 6     # the cap is never reached
    capped = getattr(methods, method)(with_relu6, x, 1)
    np.testing.assert_allclose(capped, getattr(methods, method)(with_relu, x, 1), atol=1e-14)
    assert np.abs(capped - methods.vanilla_gradient(with_relu6, x, 1)).max() > 1e-3
