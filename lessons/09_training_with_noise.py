# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 09 — Noise at training time, noise at inference time
#
# SmoothGrad adds noise when we *explain*. The paper (§3.5, Figs. 8 and 9) asks what happens
# if we also add noise when we *train*: the network then learns to be insensitive to small
# pixel perturbations, which should make its gradients less erratic to begin with. Training
# with input noise is ordinary data augmentation,
#
# $$\min_\theta\ \mathbb E_{(x, y)}\ \mathbb E_{\varepsilon \sim \mathcal N(0, \sigma^2 I)}
#   \ \mathrm{CE}\big(f_\theta(x + \varepsilon),\, y\big),$$
#
# and costs nothing in accuracy here (lesson 03: 99.20% without, 99.32% with noise level
# 0.1). The experiment is a 2x2 grid:
#
# |                       | inferred without noise (gradient) | inferred with noise (SmoothGrad) |
# |---|---|---|
# | trained without noise | $\partial S_c/\partial x$ of `mnist_cnn` | SmoothGrad of `mnist_cnn` |
# | trained with noise    | $\partial S_c/\partial x$ of `mnist_cnn_noise` | SmoothGrad of `mnist_cnn_noise` |
#
# The paper's finding: both kinds of noise sharpen the maps, and they add up — the
# noise-trained model explained with SmoothGrad gives the cleanest maps.
#
# Run: `python lessons/09_training_with_noise.py [--quick] [--mode positive|absolute]`;
# figures go to `lessons/out/09_*.png`.

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
from minisg.classroom.lesson import MODE_OPTION, setup  # noqa: E402

# --quick for a fast pass, --mode positive|absolute, --out DIR for the figures (minisg/classroom/lesson.py)
lesson = setup("09", "training with noise x inferring with noise",
               quick="two images, few samples (seconds)", options=MODE_OPTION)

COUNT = 2 if lesson.quick else 8                   # test images (all of them in the figure and the numbers)
N = 5 if lesson.quick else 50                      # SmoothGrad samples
NOISE = 0.1                                        # inference noise level, equal to the training noise
EXTRA_LEVELS = [] if lesson.quick else [0.2, 0.3]  # more inference noise, to see whether the order holds


# %% [markdown]
# ## 1. The two shipped networks
#
# Same architecture, same seed, same 20,000 steps of Adam; `mnist_cnn_noise` saw every
# training image with Gaussian noise of level 0.1 (sigma = 0.1 times the image's range),
# drawn afresh each step. Their checkpoints carry their test accuracy.

# %%
checkpoints = {"trained without noise": "mnist_cnn", "trained with noise": "mnist_cnn_noise"}
networks = {name: models.load(checkpoint) for name, checkpoint in checkpoints.items()}
for name, net in networks.items():
    config = net.meta.get("config", {})
    print(f"{name:<22} test accuracy {net.meta['test_accuracy']:.4f}, "
          f"training noise level {config.get('noise_level', 0.0)}")

test_images, test_labels = data.load_mnist("test")
x = test_images[:COUNT]
ink = x[:, 0] > data.MASK_THRESHOLD
predictions = {}
for name, net in networks.items():
    with no_grad():
        predictions[name] = net(Tensor(x)).numpy().argmax(axis=1)
    print(f"{name:<22} predicts {predictions[name].tolist()} (labels {test_labels[:COUNT].tolist()})")
target = test_labels[:COUNT].astype(np.int64)   # explain the true class with both networks

# %% [markdown]
# ## 2. The 2x2 grid (Fig. 8)
#
# Each network explains the true class of each digit, with the plain gradient and with
# SmoothGrad (n = 50, noise level 10% — the same level the noisy network was trained with;
# same seed for both networks, so they see the same noise draws). The figure is laid out as
# the paper's: rows = how the network was trained, columns = how its map was inferred; each of
# the four blocks holds the maps of all the digits, in the places the digits have on the left.

# %%
cells = {}
for name, net in networks.items():
    started = time.perf_counter()
    cells[(name, "gradient")] = M.vanilla_gradient(net, x, target)
    cells[(name, "SmoothGrad")] = M.smoothgrad(net, x, target, n=N, noise_level=NOISE, seed=0)
    print(f"  maps of the network {name}: {time.perf_counter() - started:.1f} s")

short = {"trained without noise": "train clean", "trained with noise": "train noisy"}
INFERENCE = {"gradient": "inferred without noise:\nvanilla gradient",
             "SmoothGrad": f"inferred with noise:\nSmoothGrad, n = {N}, {100 * NOISE:g}% noise"}
MAP_LABEL = {"positive": "positive part of the map\n/ its 99th percentile",
             "absolute": "|map| / its 99th percentile"}[lesson.mode]


def block_shape(count):
    """(rows, columns) of one block of the grid: the digits in one row, or two rows past four."""
    per_row = count if count <= 4 else -(-count // 2)
    return -(-count // per_row), per_row


def text_cell(axis, text, rotation=0):
    """An empty axis that only holds a header (or, rotated, a row label)."""
    axis.axis("off")
    axis.text(0.5, 0.5, text, ha="center", va="center", rotation=rotation, fontsize=8, transform=axis.transAxes)


def draw_block(figure, grid, top, first, pictures, per_row):
    """Gray pictures in [0, 1], per_row to a row, from the grid's cell (top, first) on;
    returns the last image drawn (for the colour bar) and the axes."""
    axes = []
    for k, picture in enumerate(pictures):
        axis = figure.add_subplot(grid[top + k // per_row, first + k % per_row])
        image = axis.imshow(picture, cmap="gray", vmin=0, vmax=1)
        axis.set_xticks([])
        axis.set_yticks([])
        axes.append(axis)
    return image, axes


def row_label(network):
    level = networks[network].meta.get("config", {}).get("noise_level", 0.0)
    return f"{network}\n{checkpoints[network]}" + (f"\n(noise level {level})" if level else "")


def draw_fig8(images, maps, name):
    """The paper's Fig. 8 layout: a 2x2 grid of blocks, rows = how the network was trained,
    columns = how the map was inferred; each block holds the maps of all digits, in the same
    places as the digits in the block on the left."""
    rows, per_row = block_shape(len(images))
    cell = 0.85 if rows > 1 else 1.3                                     # room for the row labels
    widths = [0.55] + ([1] * per_row + [0.2]) * 2 + [1] * per_row       # labels, digits, gradient, SmoothGrad
    heights = [0.4] + [1] * rows + [0.2] + [1] * rows                    # headers, trained clean, trained noisy
    figure = Figure(figsize=(cell * sum(widths) + 0.9, cell * sum(heights) + 0.7), layout="constrained")
    grid = figure.add_gridspec(len(heights), len(widths), width_ratios=widths, height_ratios=heights)
    headers = ["the digits\n(their true class is explained)"] + list(INFERENCE.values())
    for block_column, header in enumerate(headers):
        first = 1 + block_column * (per_row + 1)
        text_cell(figure.add_subplot(grid[0, first:first + per_row]), header)
    map_axes = []
    for block_row, network in enumerate(networks):
        top = 1 + block_row * (rows + 1)
        text_cell(figure.add_subplot(grid[top:top + rows, 0]), row_label(network), rotation=90)
        draw_block(figure, grid, top, 1, images[:, 0], per_row)
        for block_column, kind in enumerate(INFERENCE, start=1):
            image, axes = draw_block(figure, grid, top, 1 + block_column * (per_row + 1), maps[(network, kind)],
                                     per_row)
            map_axes += axes
    viz.colorbar(figure, image, map_axes, MAP_LABEL, fontsize=8)
    figure.suptitle(f"SmoothGrad Fig. 8 on MNIST: noise at training (rows) x noise at inference (columns)\n"
                    f"{lesson.mode} part of each map, 99th-percentile cap", fontsize=9)
    lesson.save(figure, name)


draw_fig8(x, {key: viz.to_grayscale(values, mode=lesson.mode) for key, values in cells.items()},
          "09_train_infer_fig8.png")

# %% [markdown]
# ## 3. The numbers behind the grid
#
# Two scores per map, averaged over the digits (± standard error): the share of the
# displayed relevance on the ink (higher = more on the digit) and the total variation of
# the displayed map (lower = less speckle). Lesson 12 treats such scores carefully; here they
# only check that what we see in the figure is not in our heads.

# %%
def scores(values):
    mass = metrics.relevance_mass(values, ink, relevance=lesson.mode)
    variation = metrics.total_variation(viz.to_grayscale(values, mode=lesson.mode)[:, None])
    return mass, variation


table = {}
print(f"\n{'':<24}{'mass on ink':>22}{'total variation':>22}")
for (name, kind), values in cells.items():
    mass, variation = scores(values)
    table[(name, kind)] = (mass, variation)
    (m1, s1), (m2, s2) = metrics.mean_and_stderr(mass), metrics.mean_and_stderr(variation)
    print(f"{short[name] + ' / ' + kind:<24}{m1:>14.3f} ± {s1:.3f}{m2:>14.3f} ± {s2:.3f}")
best = max(table, key=lambda key: table[key][0].mean())
smoothest = min(table, key=lambda key: table[key][1].mean())
print(f"most mass on the ink: {short[best[0]]} / {best[1]};  least total variation: "
      f"{short[smoothest[0]]} / {smoothest[1]}")
paired = table[("trained with noise", "SmoothGrad")][0] - table[("trained without noise", "SmoothGrad")][0]
print(f"SmoothGrad, noisy minus clean network, mass on ink per digit: {np.round(paired, 3).tolist()} "
      f"({int((paired > 0).sum())} of {COUNT} digits favour the noise-trained network)")

figure = Figure(figsize=(8.2, 3.2), layout="constrained")
axes = figure.subplots(1, 2)
for axis, index, title, cmap in ((axes[0], 0, "mass on ink (higher: more on the digit)", "Greens"),
                                 (axes[1], 1, "total variation (lower: less speckle)", "Purples_r")):
    grid = np.array([[table[(name, kind)][index].mean() for kind in ("gradient", "SmoothGrad")]
                     for name in networks])
    image = axis.imshow(grid, cmap=cmap)
    for r in range(2):
        for c in range(2):
            strength = (grid[r, c] - grid.min()) / max(grid.max() - grid.min(), 1e-12)
            dark = strength > 0.5 if cmap == "Greens" else strength < 0.5
            axis.text(c, r, f"{grid[r, c]:.3f}", ha="center", va="center", fontsize=11,
                      color="white" if dark else "black")
    axis.set_xticks([0, 1])
    axis.set_xticklabels(["gradient", f"SmoothGrad\nn = {N}, {100 * NOISE:g}% noise"], fontsize=8)
    axis.set_xlabel("inferred with", fontsize=8)
    axis.set_yticks([0, 1])
    axis.set_yticklabels(["trained clean", "trained noisy"], fontsize=8)
    axis.set_title(title, fontsize=9)
    viz.colorbar(figure, image, axis, title.split(" (")[0] + f", mean over {COUNT} digits")
figure.suptitle(f"The 2x2 grid in numbers (mean over {COUNT} digits; {lesson.mode} part of each map)", fontsize=9)
lesson.save(figure, "09_train_infer_numbers.png")

# %% [markdown]
# ## 4. Is 10% the right inference noise for both networks?
#
# Lesson 06 found the clean network's maps still improving well past 10%. A network trained
# with noise has seen noisy digits, so more inference noise might suit it even better — or
# it might need less. We repeat the SmoothGrad column at higher levels.

# %%
if EXTRA_LEVELS:
    print(f"\nSmoothGrad (n = {N}) at more inference noise: mass on ink / total variation")
    for level in [NOISE] + EXTRA_LEVELS:
        line = f"{100 * level:>5.0f}%"
        for name, net in networks.items():
            values = cells[(name, "SmoothGrad")] if level == NOISE else \
                M.smoothgrad(net, x, target, n=N, noise_level=level, seed=0)
            mass, variation = scores(values)
            line += f"   {short[name]}: {mass.mean():.3f} / {variation.mean():.3f}"
        print(line)

# %% [markdown]
# ## 5. What we see (numbers from a full run; yours are printed above)
#
# - Both kinds of noise help, and they add up, as in the paper. Mass on the ink, mean over
#   the eight digits: 0.28 for the clean network's gradient, 0.41 with SmoothGrad, 0.33 for
#   the noise-trained network's gradient, and 0.45 for the noise-trained network with
#   SmoothGrad; total variation falls in the same order (0.17, 0.10, 0.14, 0.09). The
#   bottom-right cell is best on both scores and gives the cleanest maps in the figure, and
#   the noise-trained network wins for every one of the eight digits.
# - SmoothGrad is the larger of the two effects. The noise-trained network's plain gradient
#   is somewhat less speckled than the clean network's, but still far noisier than either
#   network's SmoothGrad map.
# - The order holds at 20% and 30% inference noise too (section 4): both networks keep
#   improving with more inference noise on these scores (as lesson 06 found for the clean
#   one), and the noise-trained network stays ahead at every level.
# - Training with noise is free here (accuracy even rose slightly), but it has to be decided
#   before training. SmoothGrad can be applied to any trained network, at the price of
#   $n$ gradients per map.
#
# ## Exercises
#
# 1. Explain the *predicted* class instead of the true one. Do the two networks ever
#    disagree on these digits? Pick a test digit where one network errs and compare maps.
# 2. The noise-trained network saw noise of level 0.1. Is its best SmoothGrad level (section
#    4) above or below the clean network's? Argue why from what each network has seen.
# 3. Train a small network for a few hundred steps with and without noise (lesson 03's
#    `--quick` settings) and repeat the 2x2 grid. Does the order already show?
#
# SmoothGrad itself is graded in lesson 06's exercises: `minisg check 06`.

# %%
lesson.finish()
