"""The checks of lessons 04, 06 and 07 (ex04_sensitivity_maps.py, ex06_smoothgrad.py,
ex07_comparing_methods.py): the sensitivity map and its display, SmoothGrad, Integrated Gradients
and guided backprop."""
import numpy as np

from .. import functional as F
from .. import nn
from ..autograd import Tensor
from .expect import (Cubic, Mismatch, as_array, expect_array, expect_close, input_gradient, matches, mlp,
                     target_logits)
from .registry import INTRODUCTION, exercise


# ------------------------------------------------------------------------------ lesson 04

@exercise("04.1", "sensitivity map dS_c/dx", ["sensitivity_map"],
          approach="grad(logits[np.arange(N), target].sum(), images) with images = Tensor(x, requires_grad=True)",
          section="1. The map is one backward pass")
def check_sensitivity_map(ex):
    from .. import methods as M

    rng = np.random.default_rng(41)
    model, x, target = mlp(41), rng.random((3, 1, 4, 4)), np.array([0, 2, 1])
    got = expect_array(ex.sensitivity_map(model, x, target), "the map", x.shape, np.float64)
    hint = None
    if matches(got, input_gradient(lambda t: model(t), x)):
        hint = "you differentiated the sum of ALL logits: pick each image's target logit"
    elif matches(got, input_gradient(lambda t: F.softmax(model(t), axis=1)[np.arange(3), target], x)):
        hint = "that is the gradient of the softmax probability: use the pre-softmax logit"
    expect_close(got, M.vanilla_gradient(model, x, target), "the map of a tanh MLP", hint=hint)

    linear = mlp(42, sizes=(16, 3))
    weight = linear["fc1"].weight.numpy()
    expect_close(ex.sensitivity_map(linear, x, target), weight[target].reshape(x.shape),
                 "the map of a linear model S = W x + b (must be W[target] exactly)")
    model32 = mlp(41, dtype=np.float32)
    got = ex.sensitivity_map(model32, x.astype(np.float32), target)
    expect_array(got, "the map of a float32 model", x.shape, np.float32)


@exercise("04.2", "grayscale with 99th-percentile cap", ["to_grayscale"],
          approach="per image: v = |M|.sum(channels); clip((v - v.min()) / (np.percentile(v, p) - v.min()), 0, 1); "
                   "zeros when the percentile equals the min",
          section="4. Turning a map into a picture (the paper's §3.1)")
def check_to_grayscale(ex):
    from .. import viz

    rng = np.random.default_rng(42)
    maps = rng.standard_normal((4, 2, 6, 6))
    maps[0, :, 2, 3] = 40.0                      # an outlier that the cap must tame
    maps[1] = 0.0                                # a flat map: zeros, not NaN
    maps[2] *= 1e-3                              # scale must not matter per image
    maps[3] = -np.abs(maps[3])                   # all negative: |M| matters
    for percentile in (99, 90):
        got = ex.to_grayscale(maps, percentile) if percentile != 99 else ex.to_grayscale(maps)
        got = expect_array(got, f"to_grayscale(maps, percentile={percentile})", (4, 6, 6), np.float64)
        if np.isnan(got[1]).any():
            raise Mismatch("a flat (all-zero) map gave NaN", hint="return zeros when the cap equals the min")
        expect_close(got, viz.to_grayscale(maps, "absolute", percentile),
                     f"to_grayscale(maps, percentile={percentile})")


# ------------------------------------------------------------------------------ lesson 06

@exercise("06.1", "noise stdev per image", ["noise_stdevs"],
          approach="flatten each image: x.reshape(N, -1); noise_level * (max(axis=1) - min(axis=1))",
          section=INTRODUCTION)
def check_noise_stdevs(ex):
    rng = np.random.default_rng(61)
    x = rng.random((4, 2, 3, 3))
    x[1] *= 5
    x[2] -= 3
    x[3] = 0.7                                   # constant image: sigma 0
    flat = x.reshape(4, -1)
    expected = 0.2 * (flat.max(axis=1) - flat.min(axis=1))
    got = expect_array(ex.noise_stdevs(x, 0.2), "noise_stdevs(x, 0.2)", (4,), np.float64)
    hint = "max and min of each image, not of the whole batch" if matches(got, 0.2 * np.ptp(x) * np.ones(4)) else None
    expect_close(got, expected, "noise_stdevs(x, 0.2)", hint=hint)
    got = expect_array(ex.noise_stdevs(x.astype(np.float32), 0.1), "noise_stdevs of float32 images", (4,), np.float64)
    expect_close(got, expected / 2, "noise_stdevs(x, 0.1) of float32 images", rtol=1e-6)


@exercise("06.2", "SmoothGrad average", ["smoothgrad"],
          approach="sigma_i = noise_level * range of image i; average the gradients of n noisy copies (divide by n)",
          section=INTRODUCTION)
def check_smoothgrad(ex):
    from .. import methods as M

    rng = np.random.default_rng(62)
    model, x, target = mlp(62), rng.random((2, 1, 4, 4)), np.array([0, 2])
    got = as_array(ex.smoothgrad(model, x, target, n=3, noise_level=0.0, seed=0), "SmoothGrad")
    vanilla = M.vanilla_gradient(model, x, target)
    hint = "the result is n times too big: average the n maps, sum / n" if matches(got, 3 * vanilla) else None
    expect_close(got, vanilla, "SmoothGrad at noise level 0 (must equal the gradient)", atol=1e-12, rtol=1e-12,
                 hint=hint)
    linear = mlp(63, sizes=(16, 3))
    weight = linear["fc1"].weight.numpy()
    got = as_array(ex.smoothgrad(linear, x, target, n=4, noise_level=0.3, seed=1), "SmoothGrad")
    expected = weight[target].reshape(x.shape)
    hint = "average over the n samples: sum / n" if matches(got, 4 * expected) else None
    expect_close(got, expected, "SmoothGrad of a linear model (must be W[target] for any noise)", atol=1e-12, hint=hint)

    # dS_k/dx = (k+1) x^2, so on a black pixel E[M] = (k+1) sigma^2: measure sigma per image.
    x = np.zeros((2, 1, 8, 8))
    x[0, 0, 3, 4], x[1, 0, 5, 2] = 0.5, 4.0                         # ranges 0.5 and 4
    n, level, target = 50, 0.2, np.array([0, 2])
    got = expect_array(ex.smoothgrad(Cubic(64), x, target, n=n, noise_level=level, seed=3),
                       "SmoothGrad", x.shape, np.float64)
    black = (x == 0).reshape(2, -1)
    measured = np.array([got[i].reshape(-1)[black[i]].mean() / (target[i] + 1) for i in range(2)])
    expected = (level * np.array([0.5, 4.0])) ** 2
    ratio = measured / expected
    if np.all((0.8 < ratio) & (ratio < 1.2)):
        return
    if np.all(np.abs(ratio / n - 1) < 0.2):
        hint = "the result is n times too big: average the n maps, sum / n"
    elif abs(ratio[0] / 64 - 1) < 0.2 and abs(ratio[1] - 1) < 0.2:
        hint = "sigma must come from each image's own range, not the whole batch's"
    elif np.all(np.abs(measured / level ** 2 - 1) < 0.2):
        hint = "sigma = noise_level * (max - min) of the image, not noise_level itself"
    elif np.all(np.abs(measured / expected ** 2 - 1) < 0.2):
        hint = "the noise's standard deviation came out as sigma^2: scale standard normals by sigma, not sigma^2"
    else:
        hint = None
    raise Mismatch(f"the noise is wrong: E[M] on black pixels implies sigma^2 = {measured.round(4).tolist()} for "
                   f"images of range [0.5, 4.0] at noise level {level}, expected {expected.round(4).tolist()}",
                   hint)


# ------------------------------------------------------------------------------ lesson 07

@exercise("07.1", "Integrated Gradients, right Riemann sum", ["integrated_gradients"],
          approach="alpha_k = k/m for k = 1..m (not 0..m-1); mean of the m gradients times (x - baseline)",
          section=INTRODUCTION)
def check_integrated_gradients(ex):
    from .. import methods as M

    rng = np.random.default_rng(71)
    relu_net = mlp(71, sizes=(16, 12, 3), activation=nn.ReLU, bias=False)
    x, target = rng.random((2, 1, 4, 4)), np.array([1, 2])
    gradient = M.vanilla_gradient(relu_net, x, target)   # the same at every alpha > 0 of this net
    for steps in (4, 1):  # 4 first: at steps=1 the left sum is 0, which says nothing about the mistake
        got = expect_array(ex.integrated_gradients(relu_net, x, target, steps=steps), f"IG with steps={steps}",
                           x.shape, np.float64)
        mistakes = [((steps - 1) / steps * x * gradient,
                     "that is the LEFT Riemann sum (alpha = 0 .. (m-1)/m): use alpha = 1/m .. 1"),
                    (gradient, "that is the average gradient alone: multiply it by (x - baseline)"),
                    (steps * x * gradient, "m times too big: average the m gradients (sum / m)")]
        hint = next((text for wrong, text in mistakes if matches(got, wrong)), None)
        expect_close(got, x * gradient, f"IG (steps={steps}) of a bias-free ReLU net with a zero baseline "
                     f"(must equal x * gradient exactly)", hint=hint)

    model = mlp(72)
    baseline = 0.3 * rng.random((2, 1, 4, 4))
    got = as_array(ex.integrated_gradients(model, x, target, baseline=baseline, steps=6), "IG")
    hint = None
    for rule in ("left", "middle", "trapezoid"):
        if matches(got, M.integrated_gradients(model, x, target, baseline=baseline, steps=6, rule=rule)):
            hint = f"that is the {rule} rule: the right rule evaluates at alpha = k/m, k = 1..m, weights 1/m"
    expected = M.integrated_gradients(model, x, target, baseline=baseline, steps=6, rule="right")
    expect_close(got, expected, "IG of a tanh MLP with a nonzero baseline (steps=6)", hint=hint)

    got = as_array(ex.integrated_gradients(model, x, target, steps=300), "IG")
    gap = target_logits(model, x, target) - target_logits(model, np.zeros_like(x), target)
    total = got.reshape(2, -1).sum(axis=1)
    if np.any(np.abs(total - gap) > 0.01 * np.abs(gap)):
        raise Mismatch(f"completeness fails: sum(IG) = {total.round(5).tolist()} but S(x) - S(baseline) = "
                       f"{gap.round(5).tolist()} (steps=300)")


@exercise("07.2", "guided backprop's ReLU rule", ["guided_relu"],
          approach="keep R only where R > 0 (F.relu(R)) AND where z > 0 (self.mask, as a Tensor of R's dtype)",
          section=INTRODUCTION)
def check_guided_relu(ex):
    rng = np.random.default_rng(72)
    W, x = rng.standard_normal((6, 5)), rng.standard_normal(5)
    v = np.abs(rng.standard_normal(6)) * np.array([1, -1, 1, -1, 1, -1])   # both signs of R
    z = W @ x
    expect_close(ex.guided_relu(Tensor(z)), np.maximum(z, 0), "guided_relu(z) (forward)")
    got = input_gradient(lambda t: ex.guided_relu(F.matmul(t, Tensor(W.T))) * Tensor(v), x[None])[0]
    hint = None
    if matches(got, W.T @ np.maximum(v, 0)):
        hint = "the forward mask (z > 0) is ignored: that is deconvnet's rule"
    elif matches(got, W.T @ ((z > 0) * v)):
        hint = "negative gradients pass: that is the plain gradient's rule"
    expect_close(got, W.T @ ((z > 0) * np.maximum(v, 0)), "the guided gradient of v . relu(W x) "
                 "(must be W^T((Wx > 0) * relu(v)))", hint=hint)

    W1, W2, v2 = rng.standard_normal((5, 8)), rng.standard_normal((8, 6)), rng.standard_normal(6)
    xs = rng.standard_normal((4, 5))

    def net(relu):
        return lambda t: relu(F.matmul(relu(F.matmul(t, Tensor(W1))), Tensor(W2))) * Tensor(v2)

    got = input_gradient(net(ex.guided_relu), xs)
    with F.relu_rule("guided"):
        expected = input_gradient(net(F.relu), xs)
    expect_close(got, expected, "guided backprop through a two-layer ReLU net (compared with minisg's)")
