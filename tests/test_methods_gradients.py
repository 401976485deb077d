"""Vanilla gradient, gradient x input, guided backprop, deconvnet (minisg/methods/METHODS.md §2, §4, §6)."""
import numpy as np
import pytest

import minisg
from minisg import Function, methods as M, nn


def tiny_cnn(seed=0, bias=True, dtype=np.float64, classes=3, probes=False):
    """conv-relu-pool twice, fc-relu-fc on 8x8 inputs; probes=True puts a GradientProbe
    in front of every ReLU (it records the gradient that leaves the ReLU going backward)."""
    common = dict(rng=np.random.default_rng(seed), dtype=dtype, bias=bias)
    layers = [("conv1", nn.Conv2d(1, 3, 3, padding=1, **common)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
              ("conv2", nn.Conv2d(3, 4, 3, padding=1, **common)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
              ("flatten", nn.Flatten()), ("fc1", nn.Linear(16, 6, **common)), ("relu3", nn.ReLU()),
              ("fc2", nn.Linear(6, classes, **common))]
    probed = []
    for name, layer in layers:
        if probes and name.startswith("relu"):
            probed.append((f"probe_{name}", ProbeLayer()))
        probed.append((name, layer))
    return nn.Sequential(*probed)


class Probe(Function):
    """Identity forward; backward records the incoming gradient and passes it on unchanged."""

    def __init__(self, seen):
        self.seen = seen

    def forward(self, x):
        return x

    def backward(self, g):
        self.seen.append(g.numpy().copy())
        return g


class ProbeLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        return Probe(self.seen)(x)


def logits(model, x):
    with minisg.no_grad():
        return model.eval()(minisg.Tensor(x)).numpy()


def one_layer_relu(seed=0, inputs=5, hidden=7):
    """f = v . relu(W x): fc1 holds W, fc2 holds v (one output), no biases."""
    rng = np.random.default_rng(seed)
    model = nn.Sequential(("flatten", nn.Flatten()), ("fc1", nn.Linear(inputs, hidden, bias=False, rng=rng, dtype=np.float64)),
                          ("relu", nn.ReLU()), ("fc2", nn.Linear(hidden, 1, bias=False, rng=rng, dtype=np.float64)))
    return model, model["fc1"].weight.numpy(), model["fc2"].weight.numpy()[0]


# ---- vanilla gradient ------------------------------------------------------------------

def test_vanilla_matches_central_differences():
    model, x = tiny_cnn(), np.random.default_rng(2).random((2, 1, 8, 8))
    target, h = np.array([0, 2]), 1e-5
    gradient = M.vanilla_gradient(model, x, target)
    rng = np.random.default_rng(3)
    for n in range(2):
        for index in rng.choice(64, size=12, replace=False):
            step = np.zeros_like(x[n:n + 1])
            step.reshape(-1)[index] = h
            numeric = (logits(model, x[n:n + 1] + step) - logits(model, x[n:n + 1] - step))[0, target[n]] / (2 * h)
            assert gradient[n].reshape(-1)[index] == pytest.approx(numeric, rel=1e-6, abs=1e-9)


def test_vanilla_of_a_linear_model_is_its_weight_row():
    model = nn.Sequential(("flatten", nn.Flatten()), ("fc", nn.Linear(2 * 3 * 3, 4, rng=np.random.default_rng(0), dtype=np.float64)))
    x = np.random.default_rng(1).random((3, 2, 3, 3))
    gradient = M.vanilla_gradient(model, x, np.array([1, 3, 0]))
    weight = model["fc"].weight.numpy()
    for n, c in enumerate([1, 3, 0]):
        np.testing.assert_array_equal(gradient[n], weight[c].reshape(2, 3, 3))


# ---- gradient x input ------------------------------------------------------------------

def test_euler_identity_on_a_bias_free_relu_maxpool_linear_net():
    model, x = tiny_cnn(seed=4, bias=False), np.random.default_rng(5).random((4, 1, 8, 8))
    target = np.array([0, 1, 2, 1])
    attribution = M.gradient_x_input(model, x, target)
    scores = logits(model, x)[np.arange(4), target]
    np.testing.assert_allclose(attribution.sum(axis=(1, 2, 3)), scores, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(attribution, x * M.vanilla_gradient(model, x, target))


def test_gradient_x_input_is_zero_on_black_pixels():
    x = np.random.default_rng(6).random((2, 1, 8, 8))
    x[:, :, :3] = 0
    assert np.all(M.gradient_x_input(tiny_cnn(), x, 0)[:, :, :3] == 0)


# ---- guided backprop and deconvnet -----------------------------------------------------

def test_closed_forms_on_v_dot_relu_Wx():
    model, W, v = one_layer_relu()
    x = np.random.default_rng(7).standard_normal((1, 1, 1, 5))
    on = (W @ x.reshape(-1) > 0).astype(float)
    assert 0 < on.sum() < len(on) and (v > 0).any() and (v < 0).any()   # a case that tells them apart
    np.testing.assert_allclose(M.vanilla_gradient(model, x, 0).reshape(-1), W.T @ (on * v), rtol=1e-12)
    np.testing.assert_allclose(M.guided_backprop(model, x, 0).reshape(-1), W.T @ (on * np.maximum(v, 0)), rtol=1e-12)
    np.testing.assert_allclose(M.deconvnet(model, x, 0).reshape(-1), W.T @ np.maximum(v, 0), rtol=1e-12)


def test_guided_equals_vanilla_when_downstream_weights_are_nonnegative():
    model = tiny_cnn(seed=8)
    for name in ("conv2", "fc1", "fc2"):                  # everything after the first ReLU
        model[name].weight.data = np.abs(model[name].weight.data)
    x = np.random.default_rng(9).random((3, 1, 8, 8))
    np.testing.assert_allclose(M.guided_backprop(model, x, 1), M.vanilla_gradient(model, x, 1), rtol=1e-12, atol=1e-15)
    assert not np.allclose(M.deconvnet(model, x, 1), M.vanilla_gradient(model, x, 1))


@pytest.mark.parametrize("method", [M.guided_backprop, M.deconvnet])
def test_signal_leaving_every_relu_is_nonnegative(method):
    model, x = tiny_cnn(seed=10, probes=True), np.random.default_rng(11).random((3, 1, 8, 8))
    probes = [model[name] for name in model.layer_names if name.startswith("probe")]
    guided = method(model, x, 0)
    assert len(probes) == 3 and all(len(p.seen) == 1 and (p.seen[0] >= 0).all() for p in probes)
    assert (guided < 0).any()                      # conv1's transpose mixes signs in input space
    for p in probes:
        p.seen.clear()
    M.vanilla_gradient(model, x, 0)                # the true gradient is signed: the probe sees it
    assert any((p.seen[0] < 0).any() for p in probes)


def test_relu_rule_does_not_leak_out_of_the_call():
    model, x = tiny_cnn(), np.random.default_rng(12).random((2, 1, 8, 8))
    before = M.vanilla_gradient(model, x, 0)
    M.guided_backprop(model, x, 0)
    np.testing.assert_array_equal(M.vanilla_gradient(model, x, 0), before)


def test_guided_gradcam_is_guided_backprop_times_upsampled_gradcam():
    model, x = tiny_cnn(seed=13), np.random.default_rng(14).random((2, 1, 8, 8))
    expected = M.guided_backprop(model, x, 1) * M.gradcam(model, x, 1, layer="relu2")[:, None]
    np.testing.assert_allclose(M.guided_gradcam(model, x, 1, layer="relu2"), expected, rtol=1e-12)
