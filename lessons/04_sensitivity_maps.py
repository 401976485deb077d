# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 04 — Sensitivity maps, and how to look at them
#
# SmoothGrad (Smilkov et al. 2017) starts from the simplest explanation of a classifier's
# decision: **which pixels, if changed a little, would change the class score the most?**
# With $S_c(x)$ the score (logit) of class $c$ for the image $x$, that is the gradient
#
# $$M_c(x) = \frac{\partial S_c(x)}{\partial x},$$
#
# one number per pixel, the *sensitivity map*. The paper's Fig. 1 shows that these maps,
# although they do follow the object, look speckled and noisy. Its §3.1 then discusses
# choices that change what a map looks like — choices that are easy to make silently:
#
# - the **absolute value** $|M|$ or the **signed** map (and its positive part);
# - **capping outliers** at the 99th percentile before scaling to gray levels;
# - **multiplying by the input**, $x \odot M$.
#
# This lesson computes $M_c$ on the trained MNIST network and shows each choice, with the
# numbers behind every picture. Run: `python lessons/04_sensitivity_maps.py [--quick]`;
# figures go to `lessons/out/04_*.png`.

# %%
import sys
from pathlib import Path

import numpy as np

# In a source checkout, use the minisg beside the lessons (installed or not); anywhere else the installed one.
REPO = Path(__file__).resolve().parents[1] if "__file__" in globals() else Path.cwd().parent  # Jupyter: no __file__
if (REPO / "minisg" / "__init__.py").is_file():
    sys.path.insert(0, str(REPO))

import minisg  # noqa: E402
from minisg import Tensor, data, grad, models, nn, viz  # noqa: E402
from minisg import functional as F  # noqa: E402
from minisg import methods as M  # noqa: E402
from minisg.classroom.lesson import setup  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

# --quick for a fast pass, --out DIR for the figures (minisg/classroom/lesson.py)
lesson = setup("04", "sensitivity maps and the paper's visualisation choices",
               quick="three digits instead of ten")


# %% [markdown]
# ## 1. The map is one backward pass
#
# The score is the **pre-softmax logit**: a softmax probability $p_c = e^{S_c}/\sum_k e^{S_k}$
# mixes in every other class, and it saturates (section 3). One backward pass from $S_c$
# gives all 784 partial derivatives. We take the first test image of each digit class and
# explain the class the network predicts.

# %%
model = models.load("mnist_cnn")
test_x, test_y = data.load_mnist("test")
classes = [7, 2, 1] if lesson.quick else list(range(10))
indices = [data.find_digit(c, "test") for c in classes]
x = test_x[indices]

images = Tensor(x, requires_grad=True)
logits = model(images)
predicted = logits.numpy().argmax(axis=1)
score = logits[np.arange(len(x)), predicted].sum()       # images do not interact: one backward for all
(by_hand,) = grad(score, images)
maps = M.vanilla_gradient(model, x)                      # the library's version, same thing
print(f"max |by hand - methods.vanilla_gradient| = {np.abs(by_hand.numpy() - maps).max():.1e}")
for i, index in enumerate(indices):
    m = maps[i, 0]
    print(f"test image {index:5d}: label {test_y[index]}, predicted {predicted[i]}, logit S_c = "
          f"{logits.numpy()[i, predicted[i]]:6.2f}; map range [{m.min():+.3f}, {m.max():+.3f}], "
          f"{100 * (m > 0).mean():4.1f}% of pixels positive, {100 * (m == 0).mean():4.1f}% exactly zero")

# %% [markdown]
# A sanity check with a known answer: for a linear model $S(x) = Wx + b$ the map of class $c$
# is row $c$ of $W$, everywhere, for every image.

# %%
linear = nn.Sequential(("flatten", nn.Flatten()), ("fc", nn.Linear(784, 10, rng=np.random.default_rng(0))))
linear_maps = M.vanilla_gradient(linear, x, target=np.full(len(x), 3))
expected = linear["fc"].weight.numpy()[3].reshape(1, 28, 28)
print(f"linear model, class 3: max |M - W[3]| over {len(x)} images = {np.abs(linear_maps - expected).max():.1e}")

# %% [markdown]
# ## 2. What the map promises: a local linear model — and where MNIST breaks it
#
# The gradient is the best linear approximation of the score near $x$:
# $S_c(x + \delta) \approx S_c(x) + M_c(x)\cdot\delta$. For this network — ReLUs, max-pools and
# linear layers — $S_c$ is *piecewise linear*, so the approximation is exact as long as
# $x + \delta$ stays in the same linear piece, and fails once a ReLU switches or a max-pool
# changes its winner. How far away is the next piece? Take random directions $\delta$
# (Gaussian, seeded) of shrinking size and compare, in float64 so that rounding stays out of
# the way; once with $\delta$ on every pixel, once with $\delta$ only on the digit's ink.

# %%
def logits(net, images):
    """The network's logits for a NumPy batch, without recording a graph."""
    with minisg.no_grad():
        return net(Tensor(images)).numpy()


model64 = models.load("mnist_cnn", dtype=np.float64)
x64 = x[:1].astype(np.float64)
target = predicted[:1]
map64 = M.vanilla_gradient(model64, x64, target)
ink_mask = x64 > data.MASK_THRESHOLD
base = logits(model64, x64)[0, target[0]]
rng = np.random.default_rng(0)
draws = 5
print(f"image {indices[0]}: S_c(x) = {base:.6f}; relative error |S_c(x+d) - S_c(x) - M.d| / |S_c(x+d) - S_c(x)|, "
      f"median of {draws} random directions")
print(f"{'std of d per pixel':>20s}{'d on every pixel':>18s}{'d on ink only':>16s}")
linearity = {}
for scale in (1e-8, 1e-6, 1e-4, 1e-2):
    row = []
    for where in (np.ones_like(ink_mask), ink_mask):
        errors = []
        for _ in range(draws):
            delta = scale * rng.standard_normal(x64.shape) * where
            change = logits(model64, x64 + delta)[0, target[0]] - base
            errors.append(abs(change - float((map64 * delta).sum())) / abs(change))
        row.append(float(np.median(errors)))
    linearity[scale] = row
    print(f"{scale:20.0e}{row[0]:18.2e}{row[1]:16.2e}")

# %% [markdown]
# On the ink the linear model is exact to rounding for small steps, as promised. With the
# background included it is off by tens of percent **at every scale**, even $10^{-8}$: the
# clean image sits exactly *on* a boundary between linear pieces. The black background makes
# every conv1 unit there see the same all-zero window, so the four inputs of a background
# max-pool window are tied, and $\max(a + \delta_1, a + \delta_2) = a + \max(\delta_1, \delta_2)$
# is not linear in $\delta$ however small $\delta$ is. The gradient minisg reports there is
# the derivative of one particular piece — the one the "first maximum" rule picks (lesson 02).
# Lesson 05 looks at what this does to the gradient as one moves away from $x$.

# %% [markdown]
# ## 3. Logits, not probabilities
#
# By the quotient rule, $\partial p_c/\partial x = p_c\big(M_c - \sum_k p_k M_k\big)$. When the
# network is confident ($p_c \to 1$) this vanishes: the probability map of a confidently
# classified digit is almost zero everywhere, and what remains is a *difference* of class maps.

# %%
images = Tensor(x, requires_grad=True)
probabilities = F.softmax(model(images), axis=1)
p_c = probabilities[np.arange(len(x)), predicted]
(prob_maps,) = grad(p_c.sum(), images)
print(f"{'image':>6s}{'p_c':>12s}{'|dp_c/dx| / |dS_c/dx|':>24s}")
for i, index in enumerate(indices):
    ratio = np.linalg.norm(prob_maps.numpy()[i]) / np.linalg.norm(maps[i])
    print(f"{index:6d}{p_c.numpy()[i]:12.6f}{ratio:24.2e}")

# %% [markdown]
# ## 4. Turning a map into a picture (the paper's §3.1)
#
# A map has values of both signs and a long tail. To show it as a gray image the paper
# (and `minisg.viz.to_grayscale`) reduces it to one non-negative value per pixel $v$ and
# scales it with a cap:
#
# $$\text{gray} = \text{clip}\Big(\frac{v - \min v}{\,P_{99}(v) - \min v\,},\ 0,\ 1\Big),$$
#
# where $P_{99}$ is the 99th percentile: the brightest 1% of pixels all become white instead
# of pushing everything else to black. The choices, one column each:
#
# - **|M|, no cap** — $v = |M|$ scaled by its maximum ($P_{100}$);
# - **|M|, capped** — the same with the 99th-percentile cap;
# - **positive part** — $v = \max(M, 0)$: only pixels whose brightening would *raise* the
#   score. On MNIST the digit is always white on black, so a sign has a meaning: the paper
#   argues the positive part is the informative half there, while on ImageNet (objects of
#   any colour) the absolute value gave clearer pictures;
# - **signed** — $M / P_{99}(|M|)$ clipped to $[-1, 1]$ on a blue–gray–red map (red: brighter
#   pixel raises the score, blue: lowers it, gray: no effect);
# - **M × input** — $x \odot M$, positive part, capped: exactly zero wherever $x = 0$.

# %%
mode_columns = {
    "|M|, no cap": viz.to_grayscale(maps, "absolute", percentile=100),
    "|M|, capped p99": viz.to_grayscale(maps, "absolute"),
    "positive part, p99": viz.to_grayscale(maps, "positive"),
    "signed, p99": viz.to_grayscale(maps, "signed"),
    "M x input (pos.), p99": viz.to_grayscale(viz.multiply_by_input(maps, x), "positive"),
}
lesson.figure_grid(x, mode_columns, "04_visualisation.png",
                   row_labels=[f"label {test_y[i]}, pred {p}" for i, p in zip(indices, predicted)],
                   title="Vanilla gradient M = dS_c/dx of the trained MNIST CNN, shown five ways (SmoothGrad §3.1)",
                   cell_size=1.5, colorbars={"|M|, no cap": "share of the maximum", "signed, p99": viz.SIGNED_LABEL,
                                             "|M|, capped p99": viz.P99_LABEL, "positive part, p99": viz.P99_LABEL,
                                             "M x input (pos.), p99": viz.P99_LABEL})

# %% [markdown]
# The numbers behind the picture. "ink" is the set of digit pixels ($x > 0.1$, about a fifth
# of the image); a map that only looked at the digit would put 100% of its mass there.

# %%
ink = x[:, 0] > data.MASK_THRESHOLD
absolute = np.abs(maps[:, 0])
positive = np.maximum(maps[:, 0], 0)
negative = np.maximum(-maps[:, 0], 0)
times_input = np.maximum(maps[:, 0] * x[:, 0], 0)
print(f"{'image':>6s}{'ink px':>8s}{'|M| on ink':>12s}{'M+ on ink':>11s}{'M- on ink':>11s}"
      f"{'max/p99':>9s}{'mean gray':>11s}{'mean gray':>11s}{'xM: zero px':>13s}")
print(f"{'':>6s}{'':>8s}{'(mass %)':>12s}{'(mass %)':>11s}{'(mass %)':>11s}{'of |M|':>9s}"
      f"{'(no cap)':>11s}{'(p99 cap)':>11s}{'':>13s}")
for i, index in enumerate(indices):
    share = lambda v: 100 * v[i][ink[i]].sum() / v[i].sum()  # noqa: E731
    print(f"{index:6d}{100 * ink[i].mean():7.1f}%{share(absolute):11.1f}%{share(positive):10.1f}%"
          f"{share(negative):10.1f}%{absolute[i].max() / np.percentile(absolute[i], 99):9.2f}"
          f"{mode_columns['|M|, no cap'][i].mean():11.3f}{mode_columns['|M|, capped p99'][i].mean():11.3f}"
          f"{100 * (maps[i, 0] * x[i, 0] == 0).mean():12.1f}%")
summary = {
    "|M| mass on ink": np.mean([absolute[i][ink[i]].sum() / absolute[i].sum() for i in range(len(x))]),
    "M+ mass on ink": np.mean([positive[i][ink[i]].sum() / positive[i].sum() for i in range(len(x))]),
    "M- mass on ink": np.mean([negative[i][ink[i]].sum() / negative[i].sum() for i in range(len(x))]),
    "ink share of pixels": ink.mean(),
}
print("means over the images: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in summary.items()))

# %% [markdown]
# ### Does the cap matter here? The tail of |M|
#
# The paper caps because a few pixels can be far larger than the rest, and scaling by the
# maximum would then leave everything else nearly black. Sorting the 784 values of $|M|$
# shows how long the tail is for these maps; the dotted lines mark each map's 99th
# percentile, the dashed line the top 1% of pixels that the cap saturates.

# %%
figure = Figure(figsize=(10, 3.6), layout="constrained")
ax_tail, ax_no_cap, ax_cap = figure.subplots(1, 3, gridspec_kw={"width_ratios": [2.2, 1, 1]})
for i, index in enumerate(indices[:3]):
    values = np.sort(absolute[i].ravel())[::-1]
    line, = ax_tail.semilogy(np.arange(1, 785), values, label=f"test image {index} (label {test_y[index]})")
    ax_tail.axhline(np.percentile(absolute[i], 99), color=line.get_color(), ls=":", lw=1)
ax_tail.axvline(784 * 0.01, color="0.5", ls="--", lw=1, label="top 1% (7.84 pixels)")
ax_tail.set_xscale("log")
ax_tail.set_xlabel("rank of the pixel (1 = largest |M|)")
ax_tail.set_ylabel("|dS_c/dx_i|")
ax_tail.set_title("Sorted |M| (dotted: each map's 99th percentile)", fontsize=9)
ax_tail.legend(fontsize=7)
for ax, key, meaning in ((ax_no_cap, "|M|, no cap", "share of the maximum"),
                         (ax_cap, "|M|, capped p99", viz.P99_LABEL)):
    shown = ax.imshow(mode_columns[key][0], cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"{key}, test image {indices[0]}\n(mean gray {mode_columns[key][0].mean():.2f})", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    viz.colorbar(figure, shown, ax, meaning)
lesson.save(figure, "04_capping.png")

# %% [markdown]
# ### What we see, and how it compares with the paper
#
# Numbers quoted from a full run (ten digits); `--quick` prints its own three.
#
# - The raw gradient is **noisy** — the paper's Fig. 1 point — and on this MNIST network it is
#   noisier than "noisy around the object": the maps are speckled over the whole image, and
#   only about 22% of $|M|$ lies on the ink, which covers about 18% of the pixels — barely
#   more than a map unrelated to the digit would put there. The background is not
#   silent because conv1's units there are active (their input is 0, their bias is not) and
#   max-pool ties route the gradient through them (section 2).
# - **Sign** (§3.1): the paper argues that on MNIST, where digits are always white, the
#   positive part carries the signal. The numbers agree in direction: about 31% of the
#   positive part lies on the ink against 14% of the negative part; pixels whose brightening
#   would lower the score sit mostly off the stroke. The positive part is still far from clean.
# - **Capping** (§3.1): for these raw gradients the tail is short — the largest $|M|$ is only
#   1.2–2.3 times the 99th percentile — so capping brightens the picture only modestly (mean
#   gray level from about 0.10–0.21 to 0.23–0.28). It costs nothing and matters more for maps
#   with isolated extreme values, which is the situation the paper describes; here it is not
#   the choice that changes the picture most.
# - **M × input** is blind on black pixels by construction — 73–92% of these images — so it
#   can only highlight the stroke. That makes it look cleanest of all, but the cleanliness
#   comes from the input, not from the model: a gradient saying "a stroke here would raise
#   the score" is erased.
#
# Lesson 05 looks at why the gradient is so speckled, and lesson 06 at SmoothGrad's cure.
#
# ## Exercises
#
# 1. All the visualisations above are unchanged if $M$ is multiplied by a positive constant.
#    Which bug in a map's computation could therefore never show up in these pictures?
# 2. Compute the map of a class the network did **not** predict (e.g. the runner-up). How does
#    it differ, and how does the softmax-probability map relate to the two?
# 3. Take the positive part of $-M$: which pixels would, if brightened, lower the score?
#    Where are they for a "1"? For a "7"?
# 4. Why is the 99th percentile taken per image rather than over the whole data set?
#
# Graded exercises in `lessons/exercises/ex04_sensitivity_maps.py`:
#
# - **04.1** `sensitivity_map`: $\partial S_c/\partial x$ for a batch, in one backward pass;
# - **04.2** `to_grayscale`: $|M|$ summed over channels, capped at the 99th percentile.
#
# Grade them with `minisg check 04` (or `python -m minisg check 04`).

# %%
lesson.finish()
