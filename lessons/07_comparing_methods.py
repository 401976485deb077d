# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 07 — Comparing gradient-based methods, and smoothing each of them
#
# SmoothGrad is not the only answer to noisy gradients. The paper compares it (Fig. 5) with
# two other popular methods, and then shows (Fig. 7) that its averaging can be put on top
# of them:
#
# - **Vanilla gradient** $M_c(x) = \partial S_c/\partial x$ (lesson 04).
# - **Integrated Gradients** (Sundararajan et al. 2017): average the gradient along the
#   straight path from a baseline $x'$ (here the black image) to $x$, and weight by the
#   distance travelled. With the right Riemann sum over $m$ points,
#   $$IG_i(x) = (x_i - x'_i)\,\frac{1}{m}\sum_{k=1}^{m} \frac{\partial S_c}{\partial x_i}\Big(x' + \tfrac{k}{m}(x - x')\Big).$$
#   Its sum over pixels approaches $S_c(x) - S_c(x')$ (*completeness*), which we check.
# - **Guided BackProp** (Springenberg et al. 2015): the backward pass is changed at every
#   ReLU: only positive signal passes back, and only where the unit was active,
#   $R_{in} = [z > 0]\,[R_{out} > 0]\,R_{out}$ instead of $[z > 0]\,R_{out}$.
#   It is no longer the gradient of anything.
# - **SmoothGrad** of any of them: $\frac{1}{n}\sum_m \mathrm{method}(x + \varepsilon_m)$.
#
# and each of them **× input**: $x \odot \mathrm{map}$, which the paper reports as a way to
# sharpen maps — at the price of a blind spot: most of an MNIST digit's pixels are exactly
# black, and any map times the input is zero there.
#
# Run: `python lessons/07_comparing_methods.py [--quick] [--mode positive|absolute]`; figures
# go to `lessons/out/07_*.png`. As in lesson 06, maps are shown by their positive part and
# capped at the 99th percentile (`--mode absolute` for $|M|$).

# %%
import sys
import time
from pathlib import Path

import numpy as np

# In a source checkout, use the minisg beside the lessons (installed or not); anywhere else the installed one.
REPO = Path(__file__).resolve().parents[1] if "__file__" in globals() else Path.cwd().parent  # Jupyter: no __file__
if (REPO / "minisg" / "__init__.py").is_file():
    sys.path.insert(0, str(REPO))

from minisg import Tensor, data, models, no_grad, viz  # noqa: E402
from minisg.evaluation import metrics  # noqa: E402
from minisg import methods as M  # noqa: E402
from minisg.classroom.lesson import MODE_OPTION, setup  # noqa: E402

# --quick for a fast pass, --mode positive|absolute, --out DIR for the figures (minisg/classroom/lesson.py)
lesson = setup("07", "gradient, IG, guided backprop, SmoothGrad, x input",
               quick="one image, few samples (seconds)", options=MODE_OPTION)

COUNT = 1 if lesson.quick else 4         # test images
N = 5 if lesson.quick else 50            # SmoothGrad samples (the paper's n for Figs. 5 and 7)
NOISE = 0.15                             # SmoothGrad noise level, in the middle of the paper's 10-20%
STEPS = 10 if lesson.quick else 50       # Integrated Gradients path points (m)
STEPS_IN_SG = 5 if lesson.quick else 25  # path points for IG inside SmoothGrad (n * m gradients per image)


def timed(name, function, *arguments, **keywords):
    started = time.perf_counter()
    result = function(*arguments, **keywords)
    print(f"  {name:<28} {time.perf_counter() - started:6.1f} s")
    return result


# %% [markdown]
# ## 1. Every method on the same digits
#
# The target is the predicted class of the clean image, held fixed for every noisy copy and
# every point of the IG path. One seed for every random draw.

# %%
model = models.load("mnist_cnn")
test_images, test_labels = data.load_mnist("test")
x = test_images[:COUNT]
with no_grad():
    logits = model(Tensor(x)).numpy()
    baseline_logits = model(Tensor(np.zeros_like(x))).numpy()
target = logits.argmax(axis=1)
print(f"images: test #0..{COUNT - 1}, predicted {target.tolist()} (labels {test_labels[:COUNT].tolist()})")

print("computing the maps:")
maps = {
    "Gradient": timed("vanilla gradient", M.vanilla_gradient, model, x, target),
    "SmoothGrad": timed(f"SmoothGrad (n={N})", M.smoothgrad, model, x, target, n=N, noise_level=NOISE, seed=0),
    "Integrated Gradients": timed(f"Integrated Gradients (m={STEPS})", M.integrated_gradients, model, x, target,
                                  steps=STEPS),
    "Guided BackProp": timed("guided backprop", M.guided_backprop, model, x, target),
}
smoothed = {
    "SmoothGrad(IG)": timed(f"SmoothGrad of IG (n={N}, m={STEPS_IN_SG})", M.smoothgrad, model, x, target,
                            method="integrated_gradients", n=N, noise_level=NOISE, seed=0, steps=STEPS_IN_SG),
    "SmoothGrad(GBP)": timed(f"SmoothGrad of GBP (n={N})", M.smoothgrad, model, x, target,
                             method="guided_backprop", n=N, noise_level=NOISE, seed=0),
}
# the panel titles: each method with the settings used above
smoothing = dict(n=N, noise_level=NOISE)
TITLES = {"Gradient": "Gradient", "SmoothGrad": viz.method_title("SmoothGrad", smoothing),
          "Integrated Gradients": viz.method_title("Integrated Gradients", dict(steps=STEPS)),
          "Guided BackProp": "Guided BackProp",
          "SmoothGrad(IG)": viz.method_title("SmoothGrad(IG)", smoothing) + f"\nIG: {STEPS_IN_SG} steps",
          "SmoothGrad(GBP)": viz.method_title("SmoothGrad(GBP)", smoothing)}

# %% [markdown]
# ## 2. Integrated Gradients keeps its promise
#
# Completeness: $\sum_i IG_i$ should equal $S_c(x) - S_c(x')$, up to the error of the
# Riemann sum. We print the error for the $m$ used above, and for the smaller $m$ used
# inside SmoothGrad (there each noisy copy gets its own path, and the 50 errors average).

# %%
def fmt(values, digits=2):
    return "[" + ", ".join(f"{float(v):.{digits}f}" for v in values) + "]"


difference = logits[np.arange(COUNT), target] - baseline_logits[np.arange(COUNT), target]
for steps, ig in ((STEPS, maps["Integrated Gradients"]),
                  (STEPS_IN_SG, M.integrated_gradients(model, x, target, steps=STEPS_IN_SG))):
    total = ig.reshape(COUNT, -1).sum(axis=1)
    error = np.abs(total - difference) / np.abs(difference)
    print(f"m = {steps:>3}: sum IG = {fmt(total)}  vs  S(x) - S(0) = {fmt(difference)}  "
          f"(relative error up to {error.max():.3%})")

# %% [markdown]
# ## 3. Fig. 5: each method with and without × input
#
# For each digit the upper row shows the method, the lower row the method times the input.
# Integrated Gradients already carries a factor $(x - x') = x$, so "IG × input" multiplies by
# the image twice; on MNIST's nearly binary strokes that changes little, which the numbers
# below confirm.

# %%
rows_images, row_labels, columns = [], [], {name: [] for name in maps}
for i in range(COUNT):
    for times_input in (False, True):
        rows_images.append(x[i])
        row_labels.append(f"class {target[i]}" + (" × input" if times_input else ""))
        for name, values in maps.items():
            shown = values[i] * x[i] if times_input else values[i]
            columns[name].append(viz.to_grayscale(shown, mode=lesson.mode))
lesson.figure_grid(np.stack(rows_images), {k: np.stack(v) for k, v in columns.items()},
                   "07_methods_fig5.png", row_labels=row_labels, titles=[TITLES[name] for name in columns],
                   colorbars=viz.P99_LABEL, title=f"Fig. 5 on MNIST ({lesson.mode} part; each method, then × input)")

# %% [markdown]
# ## 4. Fig. 7: SmoothGrad on top of IG and Guided BackProp

# %%
fig7 = {
    "Integrated Gradients": maps["Integrated Gradients"], "SmoothGrad(IG)": smoothed["SmoothGrad(IG)"],
    "Guided BackProp": maps["Guided BackProp"], "SmoothGrad(GBP)": smoothed["SmoothGrad(GBP)"],
}
lesson.figure_grid(x, {name: viz.to_grayscale(values, mode=lesson.mode) for name, values in fig7.items()},
                   "07_smoothgrad_on_ig_gbp_fig7.png", row_labels=[f"class {c}" for c in target],
                   titles=[TITLES[name] for name in fig7], colorbars=viz.P99_LABEL,
                   title=f"Fig. 7 on MNIST: SmoothGrad on other methods ({lesson.mode} part)")

# %% [markdown]
# ## 5. The signs we hid
#
# Showing the positive part hides half of each map. Guided BackProp's ReLU rule makes the
# signal leaving every ReLU non-negative, but conv1's transposed filters mix signs again, so
# even its input-space map has negative pixels. The diverging view (blue < 0 < red, each map
# scaled by its 99th percentile of $|M|$, zero is gray) shows where.

# %%
signed = {**maps, **smoothed}
lesson.figure_grid(x, {name: viz.diverging(values) for name, values in signed.items()},
                   "07_signed_maps.png", row_labels=[f"class {c}" for c in target],
                   titles=[TITLES[name] for name in signed], signed=True, colorbars=viz.SIGNED_LABEL,
                   title="The same maps, signed: blue negative, gray zero, red positive")

# %% [markdown]
# ## 6. The numbers behind the pictures
#
# Per method, over the images (mean): the share of the displayed relevance on the ink
# ($x > 0.1$), the total variation of the displayed map (speckle), the share of $|M|$ on
# exactly black pixels (what × input would erase), and the negative share
# $\sum \max(-M, 0) / \sum |M|$.

# %%
ink = x[:, 0] > data.MASK_THRESHOLD
black = x[:, 0] == 0
print(f"\nink covers {100 * ink.mean():.1f}% of the pixels, exactly black pixels {100 * black.mean():.1f}%")
print(f"{'method':<32} {'mass on ink':>12} {'total var.':>11} {'|M| on black':>13} {'negative share':>15}")
for name, values in signed.items():
    for times_input in (False, True):
        shown = values * x if times_input else values
        magnitude = np.abs(shown[:, 0]).astype(np.float64)
        on_black = (magnitude * black).sum(axis=(1, 2)) / np.maximum(magnitude.sum(axis=(1, 2)), 1e-30)
        negative = np.maximum(-shown[:, 0], 0).sum(axis=(1, 2)) / np.maximum(magnitude.sum(axis=(1, 2)), 1e-30)
        mass = metrics.relevance_mass(shown, ink, relevance=lesson.mode)
        variation = metrics.total_variation(viz.to_grayscale(shown, mode=lesson.mode)[:, None])
        label = name + (" × input" if times_input else "")
        print(f"{label:<32} {mass.mean():>12.3f} {variation.mean():>11.3f} {on_black.mean():>13.3f} "
              f"{negative.mean():>15.3f}")
ig, ig_x = maps["Integrated Gradients"], maps["Integrated Gradients"] * x
cosine = (ig * ig_x).reshape(COUNT, -1).sum(1) / (np.linalg.norm(ig.reshape(COUNT, -1), axis=1)
                                                  * np.linalg.norm(ig_x.reshape(COUNT, -1), axis=1))
print(f"cosine similarity of IG and IG × input: {fmt(cosine, 3)}")

# %% [markdown]
# ## 7. What we see (numbers from a full run; yours are printed above)
#
# - The **vanilla gradient** is speckled all over the frame, background included: only about
#   30% of its positive part lies on the ink (which covers 16% of these digits). **SmoothGrad**
#   keeps the same evidence and removes much of the speckle — mass on ink about 0.47, total
#   variation roughly halved (0.17 to 0.09) — without ever looking at the pixel values.
# - **Integrated Gradients** and every **× input** map are confined to the ink *by
#   construction*: their share on black pixels is exactly 0 (83% of these digits' pixels are
#   exactly black), because the factor $x - x'$ (or $x$) is zero there. They look clean, but
#   they cannot say "ink *here* would have mattered". IG and IG × input are nearly the same
#   picture (cosine similarity 0.98–0.99): the strokes are almost binary.
# - **Guided BackProp** gives the most digit-shaped map of the raw methods (85% of its
#   positive part on the ink). Its signed view shows the stroke in red inside a blue halo:
#   conv1's mixed-sign filters turn the guided, non-negative signal into an edge pattern.
# - **SmoothGrad on IG and GBP** (Fig. 7): for GBP it wipes out the faint background
#   speckle (mass on ink 0.85 to 0.95, total variation 0.070 to 0.055). For IG the picture
#   gets smoother along the strokes, and a new detail appears in the numbers: with noise
#   added to $x$, the factor $(x + \varepsilon - x')$ is no longer zero on black pixels, so
#   SmoothGrad(IG) is not blind there any more (16% of $|M|$ on black pixels). On MNIST both
#   effects are modest — IG and GBP were already concentrated on the strokes; the paper's
#   Inception images give them far more background texture to be noisy about.
#
# ## Exercises
#
# 1. Replace IG's black baseline by a blurred copy of the digit (`metrics.gaussian_blur`).
#    Does IG still vanish on the background? Does completeness still hold?
# 2. Why does "× input" make *every* method's map look like the digit? Construct a map that
#    is pure noise and multiply it by the input: how does it score on "mass on ink"?
# 3. Guided BackProp ignores negative signal at every ReLU. Show with one digit that its map
#    hardly changes when you explain a *different* class (a sign of what lesson 08 tests).
# 4. SmoothGrad of IG costs $n \times m$ gradients per image. Compare SmoothGrad(IG) with
#    $n = 10, m = 25$ against $n = 50, m = 5$: which budget split gives the map closer to the
#    one above?
#
# Graded exercises in `lessons/exercises/ex07_comparing_methods.py`:
#
# - **07.1** `integrated_gradients` with the right Riemann sum;
# - **07.2** the guided-backprop ReLU's `backward`.
#
# Grade them with `minisg check 07` (or `python -m minisg check 07`).

# %%
lesson.finish()
