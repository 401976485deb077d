"""The checks of lessons 10 and 11 (ex10_gradcam_pp.py, ex11_smooth_gradcam_pp.py): Grad-CAM++'s
alpha and channel weights, and Smooth Grad-CAM++'s averaged derivatives."""
import numpy as np

from .. import nn
from ..autograd import Tensor, grad
from .expect import Mismatch, as_array, expect_array, expect_close, expect_float32_kept, matches
from .registry import INTRODUCTION, exercise


# ------------------------------------------------------------------------------ lesson 10

def activations(rng, shape, zeros=0.3):
    """A >= 0 with some exact zeros, like a ReLU output."""
    return rng.random(shape) * (rng.random(shape) > zeros)


@exercise("10.1", "Grad-CAM++ alpha", ["gradcampp_alpha"],
          approach="S_k = A.sum(axis=(2, 3), keepdims=True); alpha = g^2 / (2 g^2 + S_k g^3) where g > 0, else 0",
          section=INTRODUCTION)
def check_gradcampp_alpha(ex):
    from ..methods import gradcampp_alpha

    rng = np.random.default_rng(101)
    A, g = activations(rng, (2, 3, 4, 4)), rng.standard_normal((2, 3, 4, 4))
    got = expect_array(ex.gradcampp_alpha(A, g), "alpha", A.shape, np.float64)

    def alpha_with(denominator):
        return np.where(g > 0, g ** 2 / np.where(g > 0, denominator, 1), 0)

    mistakes = [
        (alpha_with(2 * g ** 2 + (A * g ** 3).sum(axis=(2, 3), keepdims=True)),
         "that is the mixed-index bug sum_ab A_ab g_ab^3: use S_k g_ij^3 with S_k = sum_ab A_ab"),
        (alpha_with(2 * g ** 2 + A.mean(axis=(2, 3), keepdims=True) * g ** 3),
         "S_k is the SUM of A^k over the map, not its mean"),
    ]
    hint = next((text for wrong, text in mistakes if matches(got, wrong)), None)
    if not np.all(np.isfinite(got)):
        raise Mismatch("alpha holds NaN or inf", hint="divide only where g > 0 (use a safe denominator elsewhere)")
    if np.any(got[g <= 0] != 0):
        raise Mismatch(f"alpha is not 0 where g <= 0 ({int((got[g <= 0] != 0).sum())} elements)",
                       hint="alpha = np.where(g > 0, ..., 0)")
    if np.any(got[g > 0] <= 0) or np.any(got[g > 0] > 0.5 + 1e-12):
        raise Mismatch(f"alpha leaves (0, 1/2] where g > 0 (range {got[g > 0].min():.4g} .. {got[g > 0].max():.4g})",
                       hint=hint or "with A >= 0 the denominator 2 g^2 + S_k g^3 is at least 2 g^2")
    expect_close(got, gradcampp_alpha(A, g ** 2, g ** 3, where=g > 0), "alpha", hint=hint)

    v = np.array([0.7, -0.4, 1.3])             # a GAP head: g = v_k / (h w) everywhere in channel k
    g_gap = np.broadcast_to(v.reshape(1, 3, 1, 1) / 16, A.shape)
    expected = np.broadcast_to(np.where(v > 0, 1 / (2 + v * A.mean(axis=(2, 3))), 0)[:, :, None, None], A.shape)
    expect_close(ex.gradcampp_alpha(A, g_gap), expected, "alpha of a GAP head (must be 1 / (2 + v_k mean(A^k)))")
    expect_float32_kept(ex.gradcampp_alpha, [A, g], what="alpha of float32 arrays")


def head_gradients(head, A, target):
    At = Tensor(A, requires_grad=True)
    (g,) = grad(head(At)[np.arange(len(A)), target].sum(), At)
    return g.numpy()


@exercise("10.2", "Grad-CAM++ channel weights", ["gradcampp_weights"],
          approach="w_k = sum over (i, j) of alpha * relu(g): reuse your gradcampp_alpha and np.maximum(g, 0)",
          section=INTRODUCTION)
def check_gradcampp_weights(ex):
    from .. import methods as M
    from ..methods import gradcampp_alpha

    rng = np.random.default_rng(102)
    A, target = activations(rng, (2, 4, 3, 3)), np.array([0, 2])
    gap = nn.Sequential(("gap", nn.GlobalAvgPool2d()), ("fc", nn.Linear(4, 3, rng=rng, dtype=np.float64)))
    v = gap["fc"].weight.numpy()[target]                                         # (N, K)
    g = head_gradients(gap, A, target)
    got = expect_array(ex.gradcampp_weights(A, g), "w", (2, 4), np.float64)
    alpha = gradcampp_alpha(A, g ** 2, g ** 3, where=g > 0)
    mistakes = [(g.mean(axis=(2, 3)), "that is Grad-CAM's weight (mean of g)"),
                (alpha.sum(axis=(2, 3)), "you summed alpha alone: weigh each alpha by relu(g) first")]
    hint = next((text for wrong, text in mistakes if matches(got, wrong)), None)
    expect_close(got, np.maximum(v, 0) / (2 + v * A.mean(axis=(2, 3))),
                 "w of a GAP head (must be relu(v_k) / (2 + v_k mean(A^k)))", hint=hint)

    linear = nn.Sequential(("flatten", nn.Flatten()), ("fc", nn.Linear(36, 3, rng=rng, dtype=np.float64)))
    V = linear["fc"].weight.numpy()[target].reshape(A.shape)
    layer_sums = A.sum(axis=(2, 3), keepdims=True)
    expected = np.where(V > 0, V / (2 + np.abs(V) * layer_sums), 0).sum(axis=(2, 3))
    expect_close(ex.gradcampp_weights(A, head_gradients(linear, A, target)), expected,
                 "w of a linear head S = sum V A (must be sum over V > 0 of V / (2 + V S_k))")

    # the whole map, against minisg's Grad-CAM++ on a ReLU layer with a piecewise-linear head
    model = nn.Sequential(("relu2", nn.ReLU()), ("flatten", nn.Flatten()),
                          ("fc1", nn.Linear(36, 5, rng=rng, dtype=np.float64)), ("relu3", nn.ReLU()),
                          ("fc2", nn.Linear(5, 3, rng=rng, dtype=np.float64)))
    x = rng.standard_normal((2, 4, 3, 3))
    A = np.maximum(x, 0)
    _, head = model.split("relu2")
    w = as_array(ex.gradcampp_weights(A, head_gradients(head, A, target)), "w")
    cam = np.maximum((w[:, :, None, None] * A).sum(axis=1), 0)
    expect_close(cam, M.gradcam_pp(model, x, target, layer="relu2", upsample=False),
                 "the map relu(sum_k w_k A^k) made from your weights (compared with minisg's gradcam_pp)")


# ------------------------------------------------------------------------------ lesson 11

def gradient_samples(rng, shape, n=8):
    """n gradient samples (n, *shape) scattered around a common mean. At position (0, 0) of every
    channel seven are small and positive and one is large and negative: m1 > 0 but m3 < 0, so
    2 m2 + S_k m3 < 0 once S_k > 0.82 -- the case where alpha must be set to 0."""
    samples = rng.standard_normal(shape) + rng.standard_normal((n,) + shape)
    samples[..., 0, 0] = np.array([0.5] * (n - 1) + [-3.0]).reshape((n,) + (1,) * (len(shape) - 2))
    return samples


@exercise("11.1", "Smooth Grad-CAM++ weights", ["smooth_gradcampp_weights"],
          approach="m1, m2, m3 = means over axis 0 of g, g^2, g^3; alpha = m2 / (2 m2 + S_k m3) (0 where m2 == 0 "
                   "or the denominator <= 0); w = sum alpha * relu(m1)",
          section=INTRODUCTION)
def check_smooth_gradcampp_weights(ex):
    from ..methods import gradcampp_alpha

    def weights(A, m1, m2, m3, numerator=None):
        alpha = gradcampp_alpha(A, m2, m3, where=m2 > 0)
        if numerator is not None:                                  # alpha = numerator / (2 m2 + S_k m3)
            alpha = alpha * np.where(m2 > 0, numerator / np.where(m2 > 0, m2, 1), 0)
        return (alpha * np.maximum(m1, 0)).sum(axis=(2, 3))

    def check(A, samples, what):
        m1, m2, m3 = (np.mean(samples ** p, axis=0) for p in (1, 2, 3))
        got = expect_array(ex.smooth_gradcampp_weights(A, samples), what, A.shape[:2], np.float64)
        layer_sums = A.sum(axis=(2, 3), keepdims=True)
        unguarded = (m2 / np.where(m2 > 0, 2 * m2 + layer_sums * m3, 1) * np.maximum(m1, 0)).sum(axis=(2, 3))
        mistakes = [
            (weights(A, m1, m2, m3, numerator=m1), "m1 in alpha's numerator is the paper's typo: the numerator is m2"),
            (np.mean([weights(A, s, s ** 2, s ** 3) for s in samples], axis=0),
             "you averaged Grad-CAM++ over the samples: average the derivatives g, g^2, g^3 first"),
            (weights(A, samples[-1], samples[-1] ** 2, samples[-1] ** 3),
             "you used one sample only: average over all n"),
            (unguarded, "set alpha to 0 where the denominator 2 m2 + S_k m3 is <= 0 (m3 can be negative)"),
        ]
        hint = next((text for wrong, text in mistakes if matches(got, wrong)), None)
        expect_close(got, weights(A, m1, m2, m3), what, hint=hint)

    rng = np.random.default_rng(111)
    A = 3 * activations(rng, (2, 3, 4, 4))          # big S_k: the sign of m3 decides the denominator's
    g = rng.standard_normal((1, 2, 3, 4, 4))
    check(A, g, "w with one sample (must equal Grad-CAM++)")
    check(A, np.repeat(g, 5, axis=0), "w with 5 identical samples (a head linear in A: must equal Grad-CAM++)")
    check(A, gradient_samples(rng, (2, 3, 4, 4)), "w with 8 different samples, some with m3 < 0")
