# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 08 — Discriminativity: does the map change when the class does?
#
# A sensitivity map should explain *the class we ask about*. The SmoothGrad paper tests this
# (Fig. 6) on images that hold two objects, one of class 1 and one of class 2: it computes
# the map for each class, scales each to $[0, 1]$, and shows the difference
#
# $$D(x) = \mathrm{scale}(M_1(x)) - \mathrm{scale}(M_2(x)), \qquad
#   \mathrm{scale}(v) = \frac{v - \min v}{\max v - \min v},$$
#
# on a diverging colour map $[-1, 0, 1] \to$ [blue, gray, red]. A discriminative method
# paints object 1 red and object 2 blue; a method that ignores the class paints both gray.
# (Here $M$ is first reduced to one value per pixel: its positive part, or $|M|$ with
# `--mode absolute`; $D$ lies in $[-1, 1]$ and zero is gray.)
#
# We do it with two MNIST digits side by side. Run:
# `python lessons/08_discriminativity.py [--quick] [--mode positive|absolute]`; figures go to
# `lessons/out/08_*.png`.

# %%
import sys
import time
from pathlib import Path

import numpy as np

# In a source checkout, use the minisg beside the lessons (installed or not); anywhere else the installed one.
REPO = Path(__file__).resolve().parents[1] if "__file__" in globals() else Path.cwd().parent  # Jupyter: no __file__
if (REPO / "minisg" / "__init__.py").is_file():
    sys.path.insert(0, str(REPO))

from matplotlib.figure import Figure  # noqa: E402

from minisg import Tensor, data, models, no_grad, viz  # noqa: E402
from minisg.evaluation import metrics  # noqa: E402
from minisg import methods as M  # noqa: E402
from minisg.models.cell_model import cell_model  # noqa: E402
from minisg.classroom.lesson import MODE_OPTION, setup  # noqa: E402

# --quick for a fast pass, --mode positive|absolute, --out DIR for the figures (minisg/classroom/lesson.py)
lesson = setup("08", "discriminativity of sensitivity maps on two-digit images",
               quick="one pair of digits, few samples (seconds)", options=MODE_OPTION)

ALL_PAIRS = [(3, 8), (1, 7), (2, 5), (4, 9), (0, 6), (7, 1), (5, 3), (6, 2), (9, 4), (8, 0)]
PAIRS = ALL_PAIRS[:1] if lesson.quick else ALL_PAIRS[:5]  # (left class, right class) shown in the figures
N = 5 if lesson.quick else 50                             # SmoothGrad samples
NOISE = 0.15                                              # SmoothGrad noise level
STEPS = 10 if lesson.quick else 50                        # Integrated Gradients path points


# %% [markdown]
# ## 1. The problem: the network reads one 28x28 digit
#
# Two digits side by side make a 28x56 image (`data.two_digit_image`, each digit centred in
# its half exactly as in its MNIST frame). The trained network cannot take it: after two
# max-pools its `flatten` layer expects a 7x7x64 map, and a 28x56 image gives 7x14x64.
#
# The obvious workaround is to shrink the two digits into one 28x28 frame (halve the 28x56
# image by averaging 2x2 blocks, and centre it vertically). We try it on ten pairs, and ask
# whether the two digits' classes are the network's two highest logits.

# %%
model = models.load("mnist_cnn")


def pair_image(left_class, right_class):
    """The first test digit of each class, side by side (data.TwoDigitImage, 28x56)."""
    return data.two_digit_image(data.find_digit(left_class), data.find_digit(right_class))


def shrunk_into_28(wide_image):
    """(1, 28, 56) -> (1, 28, 28): 2x2 block means (14x28) centred vertically."""
    small = wide_image[0].reshape(14, 2, 28, 2).mean(axis=(1, 3))
    canvas = np.zeros((1, 28, 28), np.float32)
    canvas[0, 7:21] = small
    return canvas


def top_two(net, images):
    with no_grad():
        logits = net(Tensor(images)).numpy()
    return np.argsort(-logits, axis=1)[:, :2]


pairs_all = [pair_image(a, b) for a, b in ALL_PAIRS]
shrunk = np.stack([shrunk_into_28(p.image) for p in pairs_all])
shrunk_top = top_two(model, shrunk)
hits_shrunk = sum(set(t) == set(pair) for t, pair in zip(shrunk_top, ALL_PAIRS))
print("shrunk into 28x28:  " + "  ".join(f"{a}{b}->{t[0]}{t[1]}" for (a, b), t in zip(ALL_PAIRS, shrunk_top)))
print(f"  both classes are the top two logits for {hits_shrunk} of {len(ALL_PAIRS)} pairs")

# %% [markdown]
# The network was trained on single digits about 20 pixels tall, centred; two 10-pixel
# digits side by side are simply not in its world, and explaining its logits there would
# explain a network that does not recognise what it sees.
#
# ## 2. Our choice: run the convolutional body on the whole image
#
# The convolutions and pools do not care about the image's width: on 28x56 they give a
# 7x14x64 map, two 7x7 *cells* side by side. We apply the trained head (flatten, fc1, ReLU,
# fc2) to each cell and average the two logit vectors:
#
# $$S_c(x) = \tfrac12\big(f_c(\text{left cell}) + f_c(\text{right cell})\big).$$
#
# On a 28x28 image (one cell) this is exactly the trained network. On 28x56 it is the
# network applied to each half, except that near the seam the 5x5 convolutions see the
# other digit's border instead of zero padding. It keeps everything after `relu2` piecewise
# linear, and it is one `nn.Sequential` whose layers keep their names, so every method of
# `minisg.methods` — Grad-CAM included — works on it unchanged. The library builds it:
# `minisg/models/cell_model.py` (a `CellHead` module that cuts the feature map into cells, and
# `cell_model(trained)`, thirty lines in all; lesson 11 uses it too).

# %%
wide_model = cell_model(model)
test_images, _ = data.load_mnist("test")
with no_grad():
    same = np.abs(wide_model(Tensor(test_images[:20])).numpy() - model(Tensor(test_images[:20])).numpy()).max()
print(f"on 28x28 digits the cell model equals the trained network: max |logit difference| = {same:.1e}")

wide_images = np.stack([p.image for p in pairs_all])
wide_top = top_two(wide_model, wide_images)
hits_wide = sum(set(t) == set(pair) for t, pair in zip(wide_top, ALL_PAIRS))
with no_grad():
    halves = 0.5 * (model(Tensor(np.ascontiguousarray(wide_images[..., :28]))).numpy()
                    + model(Tensor(np.ascontiguousarray(wide_images[..., 28:]))).numpy())
    seam_effect = np.abs(wide_model(Tensor(wide_images)).numpy() - halves).max()
print("28x56, cell model:  " + "  ".join(f"{a}{b}->{t[0]}{t[1]}" for (a, b), t in zip(ALL_PAIRS, wide_top)))
print(f"  both classes are the top two logits for {hits_wide} of {len(ALL_PAIRS)} pairs")
print(f"  the seam changes the averaged logits by at most {seam_effect:.3f} versus running each half alone")

# %% [markdown]
# ## 3. Maps for each of the two classes
#
# For every pair and method we compute $M_1$ (the left digit's class) and $M_2$ (the right
# digit's class) on the same image. SmoothGrad uses the **same** noise draws (seed 0) for
# both classes, so their difference shows the classes, not the draws. Note what a map for
# class 1 is *allowed* to show: $\partial S_1/\partial x$ on the right half is
# $\tfrac12 \partial f_1(\text{right cell})/\partial x$ — how the right digit would have to
# change to look more like a "1". Nothing forces it to be small.

# %%
pairs = pairs_all[:len(PAIRS)]
x = np.stack([p.image for p in pairs])                             # (P, 1, 28, 56)
class_1 = np.array([a for a, _ in PAIRS])
class_2 = np.array([b for _, b in PAIRS])
masks_1 = np.stack([p.masks[0] for p in pairs])                    # left digit's ink
masks_2 = np.stack([p.masks[1] for p in pairs])

METHODS = {
    "Gradient": lambda t: M.vanilla_gradient(wide_model, x, t),
    "SmoothGrad": lambda t: M.smoothgrad(wide_model, x, t, n=N, noise_level=NOISE, seed=0),
    "Integrated Gradients": lambda t: M.integrated_gradients(wide_model, x, t, steps=STEPS),
    "Guided BackProp": lambda t: M.guided_backprop(wide_model, x, t),
    "SmoothGrad(GBP)": lambda t: M.smoothgrad(wide_model, x, t, method="guided_backprop", n=N,
                                              noise_level=NOISE, seed=0),
    "Grad-CAM": lambda t: M.gradcam(wide_model, x, t, layer="relu2")[:, None],   # (P, 1, H, W) like the rest
}
smoothing = dict(n=N, noise_level=NOISE)
TITLES = {"Gradient": "Gradient", "SmoothGrad": viz.method_title("SmoothGrad", smoothing),   # the panel titles
          "Integrated Gradients": viz.method_title("Integrated Gradients", dict(steps=STEPS)),
          "Guided BackProp": "Guided BackProp", "SmoothGrad(GBP)": viz.method_title("SmoothGrad(GBP)", smoothing),
          "Grad-CAM": viz.method_title("Grad-CAM", dict(layer="relu2"))}
maps = {}
for name, method in METHODS.items():
    started = time.perf_counter()
    maps[name] = (method(class_1), method(class_2))
    print(f"  {name:<22} {time.perf_counter() - started:6.1f} s")

# %% [markdown]
# ## 4. Fig. 6: the difference of the scaled maps
#
# Red: the map for the left digit's class is (relatively) stronger; blue: the right digit's.

# %%
difference = {name: viz.discriminativity(m1, m2, mode=lesson.mode) for name, (m1, m2) in maps.items()}
for name, values in difference.items():
    print(f"  {name:<22} D ranges over [{values.min():+.2f}, {values.max():+.2f}]; mean over digit 1's ink "
          f"{np.mean([v[m].mean() for v, m in zip(values, masks_1)]):+.3f}, over digit 2's "
          f"{np.mean([v[m].mean() for v, m in zip(values, masks_2)]):+.3f}")
# signed=True: a difference that happens to be >= 0 everywhere still gets blue-gray-red
lesson.figure_grid(x, difference, "08_discriminativity_fig6.png", signed=True,
                   row_labels=[f"{a} (red) vs {b} (blue)" for a, b in PAIRS], cell_size=2.2,
                   titles=[TITLES[name] for name in difference],
                   colorbars="scale(M_1) - scale(M_2): red, the left digit's class; blue, the right one's",
                   title=f"scale(M_1) - scale(M_2) per method ({lesson.mode} part): [-1, 0, 1] -> [blue, gray, red]")

first = {name: np.stack([viz.to_grayscale(m1[0], mode=lesson.mode), viz.to_grayscale(m2[0], mode=lesson.mode)])
         for name, (m1, m2) in maps.items()}
lesson.figure_grid(np.repeat(x[:1], 2, axis=0), first, "08_maps_per_class.png",
                   row_labels=[f"map for class {class_1[0]}", f"map for class {class_2[0]}"], cell_size=2.2,
                   titles=[TITLES[name] for name in first], colorbars=viz.P99_LABEL,
                   title=f"The two maps behind the first row of Fig. 6 ({lesson.mode} part, 99th-percentile cap)")

# %% [markdown]
# ## 5. Measuring it
#
# Pictures of differences are easy to over-read, so we also score each map, two ways, and
# average the two directions (class 1's map judged on digit 1, class 2's on digit 2):
#
# - `metrics.discriminativity`: the share of the map's relevance on *its* digit's ink minus
#   the share on the *other* digit's ink, in $[-1, 1]$. Shares are of the whole map, so a
#   map with much relevance on the background scores low even if it prefers the right digit.
# - the **contrast between the digits**, $(r_{own} - r_{other}) / (r_{own} + r_{other})$ with
#   $r$ the relevance on each digit's ink: background ignored, 0 = both digits alike, 1 = only
#   its own digit. This is the question Fig. 6 asks.

# %%
def contrast(m, own, other):
    relevance = metrics.pool_channels(m, lesson.mode)
    on_own, on_other = (relevance * own).sum(axis=(1, 2)), (relevance * other).sum(axis=(1, 2))
    return (on_own - on_other) / np.maximum(on_own + on_other, 1e-30)


scores, contrasts = {}, {}
for name, (m1, m2) in maps.items():
    scores[name] = 0.5 * (metrics.discriminativity(m1, masks_1, masks_2, relevance=lesson.mode)
                          + metrics.discriminativity(m2, masks_2, masks_1, relevance=lesson.mode))
    contrasts[name] = 0.5 * (contrast(m1, masks_1, masks_2) + contrast(m2, masks_2, masks_1))
for title, table in (("metrics.discriminativity (share own - share other)", scores),
                     ("contrast between the digits (own - other) / (own + other)", contrasts)):
    print(f"\n{title}, {lesson.mode} relevance")
    print(f"{'method':<22}" + "".join(f"{f'{a} vs {b}':>9}" for a, b in PAIRS) + f"{'mean':>9}")
    for name, values in table.items():
        print(f"{name:<22}" + "".join(f"{v:>9.3f}" for v in values) + f"{values.mean():>9.3f}")

figure = Figure(figsize=(10, 3.2))
for axis, (title, table, colour) in zip(figure.subplots(1, 2), (
        ("share own - share other (metrics.discriminativity)", scores, "C3"),
        ("contrast between the digits", contrasts, "C0"))):
    names = list(table)
    axis.bar(range(len(names)), [table[n].mean() for n in names], color=colour)
    for k, n in enumerate(names):
        axis.plot(np.full(len(table[n]), k), table[n], "k.", ms=4)
    axis.axhline(0, color="0.5", lw=0.8)
    axis.set_xticks(range(len(names)))
    axis.set_xticklabels(names, fontsize=7, rotation=20)
    axis.set_title(title, fontsize=9)
figure.suptitle(f"Discriminativity, mean over {len(PAIRS)} pair(s) (dots: single pairs; 0 = no preference)",
                fontsize=9)
figure.tight_layout()
lesson.save(figure, "08_discriminativity_scores.png")

# %% [markdown]
# ## 6. What we see (numbers from a full run; yours are printed above)
#
# - **The setting.** Shrinking two digits into one 28x28 frame fails: the two digits'
#   classes are the network's top two logits for none of the ten pairs. The cell model,
#   which reads each half at its native size, gets nine of ten, and the seam moves its
#   averaged logits by at most about 0.5. That is why this lesson explains the cell model.
# - **Gradient.** Each class's map spreads over both digits and the background (the
#   gradient of "3" on the "8" says how to make the 8 more 3-like, and that is large), so
#   the difference is a speckled mix of red and blue. Contrast between the digits 0.26,
#   with a large spread over pairs (0.13 to 0.48).
# - **SmoothGrad** raises both scores somewhat (contrast 0.26 to 0.33, share score 0.06 to
#   0.11), but mostly on two pairs (1 vs 7 and 2 vs 5: contrast 0.57 and 0.52; the other three
#   stay at 0.15–0.24). The picture does **not** show the paper's Fig. 6 result, where
#   SmoothGrad paints one object red and the other blue. In the SmoothGrad column the
#   difference is still a speckle of red and blue over both digits and the background; only
#   the 1 vs 7 row comes close (the 1 mostly red, the 7's bar blue), while on 3 vs 8, 4 vs 9
#   and 0 vs 6 both colours sit on both digits. The two maps behind the first row
#   (`08_maps_per_class.png`) show why: the SmoothGrad maps for "3" and for "8" both light up
#   both digits and bands of black background. So the paper's finding for SmoothGrad is not
#   reproduced on MNIST, and that is plausible. On MNIST the *absence* of ink is evidence
#   too: each class's logit is sensitive to where a stroke could be added, on the other digit
#   and on the background, and averaging over noise smooths that sensitivity without moving
#   it onto the class's own digit. Digit classes also share strokes (a 3 is most of an 8), so
#   the evidence for the two classes overlaps in place. And the cell model reads both halves
#   with the same head, so each class's score responds to both digits by construction. The
#   paper's example is an ImageNet network on a photograph of two unrelated objects, whose
#   evidence is confined to each object.
# - **Integrated Gradients** is as discriminative as SmoothGrad by contrast (0.33) and far
#   ahead on the share score (0.33), because it puts nothing on the black background.
# - **Guided BackProp** (and its smoothed version) has the *lowest* contrast of the pixel
#   methods (0.21–0.22): its maps for the two classes look almost the same — both digits
#   light up — and the difference image is pale (it never reaches ±1). It still scores
#   well on the share score only because it leaves the background dark. This is the
#   paper's observation for GBP: it behaves like an edge detector of the input more than an
#   explanation of the class (Adebayo et al. 2018 and Nie et al. 2018 later explained why).
# - **Grad-CAM** (not in the paper's Fig. 6; added because it is *meant* to be class
#   discriminative) is erratic on this network: contrast from −0.02 to 0.44 depending on
#   the pair. Its maps are sparse here (lesson 10: most channel weights are negative), so a
#   class's map is a handful of blobs whose place varies.
# - **Two scores, two answers.** The share score rewards a dark background as much as a
#   preference between the digits; the contrast ignores the background. Which one answers
#   "is the map discriminative" is a choice, and the ranking of GBP against SmoothGrad
#   flips with it — lesson 12 takes this up.
#
# ## Exercises
#
# 1. Run with `--mode absolute`. Which methods become less discriminative, and why does the
#    absolute value hurt here in particular?
# 2. Replace the cell model's mean of the two logit vectors by their maximum (a "detector"
#    that reports its best cell). How do the gradient maps change? Is that still an honest
#    way to read a two-digit image?
# 3. Compute the map for a class that is on *neither* side (say 5 for the pair 3 | 8).
#    Where does it put its relevance?
# 4. `scale` makes $D$ invariant to the two maps' magnitudes. Give an example where two maps
#    with very different magnitudes produce a misleadingly gray $D$.
#
# The graded exercises of lesson 07 (IG's Riemann sum, the guided ReLU) cover the methods used
# here: `minisg check 07`. The discriminativity score itself is part of lesson 12's metrics.

# %%
lesson.finish()
