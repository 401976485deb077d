"""Grad-CAM and Grad-CAM++, its derivatives written out twice (minisg/methods/METHODS.md §7, §8)."""
import numpy as np
import pytest

import minisg
from minisg import functional as F, methods as M, models, nn
from minisg.methods._common import layer_gradients
from minisg.methods.gradcam import gradcampp_alpha
from small_models import linear_head_model, tiny_cnn


def gap_model(seed=0, dtype=np.float64):
    """conv1 + relu1 (the CAM layer, 4 x 6 x 6), then S = sum_k v_k mean(A^k) + b: CAM's architecture."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(("conv1", nn.Conv2d(1, 4, 3, padding=1, rng=rng, dtype=dtype)), ("relu1", nn.ReLU()),
                         ("gap", nn.GlobalAvgPool2d()), ("fc", nn.Linear(4, 3, rng=rng, dtype=dtype)))


def smooth_head_model(seed=0):
    """relu0 (the layer: A = x for x >= 0) then softplus, linear, tanh, linear: d2S != 0."""
    common = dict(rng=np.random.default_rng(seed), dtype=np.float64)
    return nn.Sequential(("relu0", nn.ReLU()), ("soft", nn.Softplus()), ("flatten", nn.Flatten()),
                         ("fc1", nn.Linear(2 * 3 * 3, 5, **common)), ("tanh", nn.Tanh()), ("fc2", nn.Linear(5, 3, **common)))


def activations(model, layer, x):
    body, head = model.split(layer)
    with minisg.no_grad():
        return body.eval()(minisg.Tensor(x)).numpy(), head.eval()


def images(count=3, size=6, seed=1):
    return np.random.default_rng(seed).random((count, 1, size, size))


# ---- Grad-CAM --------------------------------------------------------------------------

def test_gradcam_is_cam_on_a_gap_head():
    model, x, target = gap_model(), images(), np.array([0, 1, 2])
    A, _ = activations(model, "relu1", x)
    v = model["fc"].weight.numpy()[target]                               # (N, K)
    cam = np.maximum((v[:, :, None, None] * A).sum(axis=1), 0)
    gradcam = M.gradcam(model, x, target, layer="relu1", upsample=False)
    np.testing.assert_allclose(gradcam, cam / 36, rtol=1e-12, atol=1e-15)  # a_k = v_k / (h w)
    np.testing.assert_allclose(M.gradcam(model, x, target, layer="relu1", normalize=True),
                               cam / cam.max(axis=(1, 2), keepdims=True), rtol=1e-12)


def test_gradcam_upsamples_bilinearly_to_the_input():
    model, x = tiny_cnn(dropout=0.5), images(2, 8)
    small = M.gradcam(model, x, 1, layer="relu2", upsample=False)
    assert small.shape == (2, 4, 4)
    upsampled = F.upsample_bilinear(minisg.Tensor(small[:, None]), (8, 8)).numpy()[:, 0]
    np.testing.assert_allclose(M.gradcam(model, x, 1, layer="relu2"), upsampled, rtol=1e-12)


def test_normalisation_leaves_an_all_zero_map_at_zero():
    model = gap_model()
    model["fc"].weight.data[2] = -np.abs(model["fc"].weight.data[2])      # every a_k < 0: L = 0
    for method in (M.gradcam, M.gradcam_pp):
        cam = method(model, images(), 2, layer="relu1", normalize=True)
        assert np.all(cam == 0) and np.isfinite(cam).all()


# ---- Grad-CAM++ ------------------------------------------------------------------------

def test_alpha_is_between_zero_and_one_half_where_g_is_positive():
    rng = np.random.default_rng(2)
    A = np.maximum(rng.standard_normal((4, 5, 6, 6)), 0)
    g = rng.standard_normal((4, 5, 6, 6)) * rng.choice([1e-3, 1.0, 1e3], size=(4, 5, 6, 6))
    alpha = gradcampp_alpha(A, *M.closed_form_derivatives(g)[1:], where=g > 0)
    assert np.all((alpha[g > 0] > 0) & (alpha[g > 0] <= 0.5)) and np.all(alpha[g <= 0] == 0)
    normalized = gradcampp_alpha(A, g * g, g ** 3, where=g > 0, normalize=True)
    np.testing.assert_allclose(normalized.sum(axis=(2, 3)), 1.0, rtol=1e-12)
    np.testing.assert_allclose(normalized, alpha / alpha.sum(axis=(2, 3), keepdims=True), rtol=1e-12)


@pytest.mark.parametrize("derivatives", ["closed_form", "autodiff"])
def test_spatially_varying_linear_head(derivatives):
    model, x, target = linear_head_model(), images(), np.array([2, 0, 1])
    A, _ = activations(model, "relu1", x)
    V = model["fc"].weight.numpy()[target].reshape(3, 4, 6, 6)
    S_k = A.sum(axis=(2, 3), keepdims=True)
    w = np.where(V > 0, V / (2 + V * S_k), 0).sum(axis=(2, 3))         # sum over V > 0 of V / (2 + V S_k)
    expected = np.maximum((w[:, :, None, None] * A).sum(axis=1), 0)
    cam = M.gradcam_pp(model, x, target, layer="relu1", upsample=False, derivatives=derivatives)
    np.testing.assert_allclose(cam, expected, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("derivatives", ["closed_form", "autodiff"])
def test_gap_head(derivatives):
    model, x, target = gap_model(seed=3), images(seed=4), np.array([0, 1, 2])
    A, _ = activations(model, "relu1", x)
    v = model["fc"].weight.numpy()[target]
    w = np.maximum(v, 0) / (2 + v * A.mean(axis=(2, 3)))               # relu(v_k) / (2 + v_k mean(A^k))
    expected = np.maximum((w[:, :, None, None] * A).sum(axis=1), 0)
    cam = M.gradcam_pp(model, x, target, layer="relu1", upsample=False, derivatives=derivatives)
    np.testing.assert_allclose(cam, expected, rtol=1e-10, atol=1e-14)


def test_normalize_alpha_option():
    model, x = linear_head_model(seed=5), images(seed=6)
    A, _ = activations(model, "relu1", x)
    V = np.broadcast_to(model["fc"].weight.numpy()[1].reshape(1, 4, 6, 6), A.shape)
    alpha = gradcampp_alpha(A, V * V, V ** 3, where=V > 0, normalize=True)
    expected = np.maximum(((alpha * np.maximum(V, 0)).sum(axis=(2, 3))[:, :, None, None] * A).sum(axis=1), 0)
    np.testing.assert_allclose(M.gradcam_pp(model, x, 1, layer="relu1", upsample=False, normalize_alpha=True),
                               expected, rtol=1e-10)


# ---- the derivatives, by closed form, by autodiff, by finite differences ---------------

def stencil_scores(head, A, target, elements, h):
    """S(A + t e_i) for t = -2h, -h, 0, h, 2h: (len(elements), 5), one image A (K, h, w)."""
    elements = np.atleast_1d(elements)
    copies = np.repeat(A[None], 5 * len(elements), axis=0).reshape(len(elements), 5, -1)
    copies[np.arange(len(elements)), :, elements] += np.array([-2, -1, 0, 1, 2]) * h
    with minisg.no_grad():
        return head(minisg.Tensor(copies.reshape((-1,) + A.shape))).numpy()[:, target].reshape(-1, 5)


def finite_differences(head, A, target, elements, h2=1e-4, h3=1e-3):
    """(dY, d2Y, d3Y) / e^S by central differences of Y~(t) = exp(S(A + t e) - S(A)): (3, len)."""
    y2 = stencil_scores(head, A, target, elements, h2)
    y3 = stencil_scores(head, A, target, elements, h3)
    y2, y3 = np.exp(y2 - y2[:, 2:3]).T, np.exp(y3 - y3[:, 2:3]).T
    first = (y2[3] - y2[1]) / (2 * h2)
    second = (y2[3] - 2 * y2[2] + y2[1]) / h2 ** 2
    third = (y3[4] - 2 * y3[3] + 2 * y3[1] - y3[0]) / (2 * h3 ** 3)
    return np.array([first, second, third])


def test_autodiff_equals_closed_form_on_a_piecewise_linear_head():
    model, x, target = tiny_cnn(seed=7, dropout=0.5), images(3, 8, seed=8), np.array([0, 1, 2])
    A, head = activations(model, "relu2", x)
    _, g = layer_gradients(model, x, target, "relu2")
    auto = M.autodiff_derivatives(head, A, target, batch_size=20)
    for derivative, closed in zip(auto, M.closed_form_derivatives(g)):       # g, g^2, g^3
        np.testing.assert_allclose(derivative, closed, rtol=1e-12, atol=1e-15)
    assert (g > 0).any() and (g < 0).any()
    np.testing.assert_allclose(M.gradcam_pp(model, x, target, derivatives="autodiff", batch_size=7),
                               M.gradcam_pp(model, x, target), rtol=1e-12, atol=1e-15)


def linear_elements(head, A, target, candidates, count):
    """Elements whose score is exactly linear over the finite-difference stencil (no kink)."""
    s = stencil_scores(head, A, target, candidates, 2e-3).T
    linear = (np.abs(s[0] - 2 * s[2] + s[4]) < 1e-10) & (np.abs(s[1] - 2 * s[2] + s[3]) < 1e-10)
    assert linear.sum() >= count
    return candidates[linear][:count]


def test_the_mnist_head_both_ways_and_by_finite_differences():
    """relu2 -> pool2 -> fc1 -> relu3 -> dropout -> fc2 of the paper's network (random weights)."""
    model = models.mnist_cnn(seed=1, dtype=np.float64)
    x = np.zeros((1, 1, 28, 28))
    x[0, 0, 6:22, 12:16] = np.random.default_rng(9).uniform(0.5, 1.0, (16, 4))
    A, head = activations(model, "relu2", x)
    _, g = layer_gradients(model, x, np.array([3]), "relu2")
    candidates = np.random.default_rng(10).permutation(np.flatnonzero(g[0] > 0.1))[:100]   # g^3 well above rounding
    elements = linear_elements(head, A[0], 3, candidates, 8)
    auto = np.array(M.autodiff_derivatives(head, A, np.array([3]), elements=elements))[:, 0]   # (3, 8)
    closed = np.array(M.closed_form_derivatives(g[0].reshape(-1)[elements]))
    np.testing.assert_allclose(auto, closed, rtol=1e-12, atol=1e-15)
    # S is linear along each e over the stencil, so larger steps only cut rounding error
    numeric = finite_differences(head, A[0], 3, elements, h2=1e-3, h3=2e-3)
    np.testing.assert_allclose(numeric, closed, rtol=1e-3, atol=1e-7)


def test_on_a_smooth_head_the_closed_form_breaks_and_autodiff_holds():
    model, x, target = smooth_head_model(), np.random.default_rng(11).random((2, 2, 3, 3)) + 0.1, np.array([0, 2])
    A, head = activations(model, "relu0", x)
    _, g = layer_gradients(model, x, target, "relu0")
    auto = M.autodiff_derivatives(head, A, target)
    closed = M.closed_form_derivatives(g)
    np.testing.assert_allclose(auto[0], g, rtol=1e-12)                     # dY = e^S g: still right
    assert not np.allclose(auto[1], closed[1], rtol=1e-3) and not np.allclose(auto[2], closed[2], rtol=1e-3)
    for n in range(2):
        numeric = finite_differences(head, A[n], target[n], np.arange(18))
        np.testing.assert_allclose(numeric, np.stack([d[n].reshape(-1) for d in auto]), rtol=1e-4, atol=1e-6)
    assert not np.allclose(M.gradcam_pp(model, x, target, layer="relu0", derivatives="autodiff"),
                           M.gradcam_pp(model, x, target, layer="relu0"), rtol=1e-3)


def test_no_overflow_when_the_score_is_large_in_float32():
    model = gap_model(seed=12, dtype=np.float32)
    model["fc"].weight.data *= 1e3
    model["fc"].bias.data[:] = 500.0                                      # e^S overflows float32 above S = 88.7
    x = images(2, seed=13).astype(np.float32)
    closed = M.gradcam_pp(model, x, 0, layer="relu1", upsample=False)
    auto = M.gradcam_pp(model, x, 0, layer="relu1", upsample=False, derivatives="autodiff")
    assert np.isfinite(closed).all() and closed.max() > 0
    np.testing.assert_allclose(auto, closed, rtol=1e-4, atol=1e-6 * closed.max())
