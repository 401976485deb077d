# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 12 — Measuring sensitivity maps
#
# The SmoothGrad paper judges its maps by eye, and says why: "there is no ground truth to
# allow for quantitative evaluation". Smooth Grad-CAM++ does the same. On MNIST the ground
# truth is free: **a digit's ink is its mask**. Put several digits on one canvas and every
# digit keeps its own mask, so we can also ask *which* digit a map points at.
#
# This lesson turns the papers' visual claims into numbers, with four families of metrics:
#
# 1. **localisation** — does the map sit on the digit? (pointing game, relevance mass, rank accuracy)
# 2. **faithfulness** — does the model care about what the map highlights? (deletion, insertion)
# 3. **sanity** — does the map depend on what the model learned? (cascading randomisation)
# 4. **visual noise** — is the map smooth? (total variation, high-frequency energy)
#
# and, on scenes of several digits, **target among distractors**, **discriminativity** and
# **multiple occurrences** (the claim of Grad-CAM++). Everything is computed with
# `minisg.evaluation.metrics` and `minisg.evaluation.report`; `minisg evaluate` runs the full table.
#
# Run: `python lessons/12_measuring_maps.py [--quick]`; figures go to `lessons/out/12_*.png`.

# %%
import functools
import sys
from pathlib import Path

import numpy as np

# In a source checkout, use the minisg beside the lessons (installed or not); anywhere else the installed one.
REPO = Path(__file__).resolve().parents[1] if "__file__" in globals() else Path.cwd().parent  # Jupyter: no __file__
if (REPO / "minisg" / "__init__.py").is_file():
    sys.path.insert(0, str(REPO))

from minisg import models, viz  # noqa: E402
from minisg.evaluation import report as evaluate  # noqa: E402
from minisg.evaluation import metrics  # noqa: E402
from minisg.methods import CAM_METHODS, METHODS  # noqa: E402
from minisg.classroom.lesson import setup  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

# --quick for a fast pass, --out DIR for the figures (minisg/classroom/lesson.py)
lesson = setup("12", "measuring sensitivity maps against digit masks",
               quick="a few digits and small n (seconds)")

# The papers' settings (SmoothGrad n = 50 at 15 % noise, IG 50 steps, Smooth Grad-CAM++ n = 5 at
# 0.3), or tiny ones with --quick. The evaluation's Settings hold them all.
SETTINGS = evaluate.QUICK if lesson.quick else evaluate.FULL
DIGITS = 4 if lesson.quick else 20   # digits in this lesson's table (`minisg evaluate` uses 100)
SCENES = 2 if lesson.quick else 12   # scenes per scene set (`minisg evaluate` uses 50)


DISPLAYED = "|map| / its 99th percentile"   # the colour bar of every map below (evaluate.displayed)


def no_ticks(axis):
    axis.set_xticks([])
    axis.set_yticks([])


def method_title(name, layer=None, separator="\n"):
    """A method as the papers name it, with the settings this lesson runs it at (for figures);
    CAM methods also name their layer."""
    s = SETTINGS
    titles = {"vanilla": "Gradient", "gradient_x_input": "Gradient × input",
              "smoothgrad": f"SmoothGrad{separator}n = {s.smoothgrad_n}, {100 * s.smoothgrad_noise:g}% noise",
              "integrated_gradients": f"Integrated Gradients{separator}{s.ig_steps} steps",
              "guided_backprop": "Guided BackProp", "deconvnet": "Deconvnet", "guided_gradcam": "Guided Grad-CAM",
              "occlusion": f"Occlusion{separator}{s.occlusion_patch}x{s.occlusion_patch} patch, "
                           f"stride {s.occlusion_stride}",
              "gradcam": "Grad-CAM", "gradcam_pp": "Grad-CAM++",
              "smooth_gradcam_pp": f"Smooth Grad-CAM++{separator}n = {s.sgcam_n}, {100 * s.sgcam_noise:g}% noise"}
    at_layer = f"{separator}at {layer}" if name in CAM_METHODS and layer else ""
    return titles[name] + at_layer


# %% [markdown]
# ## 1. Ground truth for free
#
# A pixel belongs to a digit's mask when its ink is brighter than 0.1 (`data.MASK_THRESHOLD`;
# the faint anti-aliased rim is left out). For scenes, `data.make_scenes` pastes tight crops of
# MNIST digits on a 56x56 canvas, never overlapping, and keeps one mask per digit.
#
# We take the first test digits of each class in turn (`evaluate.digit_set`) and three scene
# sets (`evaluate.scene_sets`): *distractors* (2–4 digits of different classes; the target is
# digit 0), *pairs* (2 digits of different classes) and *repeats* (2–3 digits of one class).

# %%
digits = evaluate.digit_set(DIGITS)
scene_sets = evaluate.scene_sets(SCENES)
print(f"{len(digits.labels)} digits, classes {digits.labels.tolist()}; ink covers "
      f"{digits.masks.mean():.1%} of their pixels")
for name, scene_set in scene_sets.items():
    print(f"{name:>12}: {len(scene_set)} scenes, {scene_set.count.sum()} digits, first scene's classes "
          f"{scene_set.digit_labels[0]}")

MASK_COLOURS = np.array([[1.0, 0.25, 0.25], [0.25, 0.6, 1.0], [0.3, 0.9, 0.3], [1.0, 0.8, 0.2]])
MASK_COLOUR_NAMES = ["red", "blue", "green", "yellow"]


def coloured_masks(image, masks):
    """RGB: the gray image, each digit's mask tinted with its own colour."""
    rgb = np.repeat(image[..., None], 3, axis=-1) * 0.5
    for k, mask in enumerate(masks):
        rgb[mask] = MASK_COLOURS[k % len(MASK_COLOURS)]
    return rgb


figure = Figure(figsize=(9, 2.4))
axes = figure.subplots(1, 7)
for i, axis in enumerate(axes[:4]):
    axis.imshow(coloured_masks(digits.images[i, 0], digits.masks[i:i + 1]))
    axis.set_title(f"digit {digits.labels[i]} + mask", fontsize=8)
for axis, (name, scene_set) in zip(axes[4:], scene_sets.items()):
    axis.imshow(coloured_masks(scene_set.images[0, 0], scene_set.masks[0, :scene_set.count[0]]))
    axis.set_title(f"{name}\n{scene_set.digit_labels[0]}", fontsize=8)
for axis in axes:
    no_ticks(axis)
figure.suptitle("Masks: a digit's ink (> 0.1); in scenes one mask per digit (red = digit 0, the target)", fontsize=9)
figure.tight_layout()
lesson.save(figure, "12_masks.png")

# %% [markdown]
# ## 2. Localisation: does the map sit on the digit?
#
# Let $r_p \ge 0$ be the relevance of pixel $p$: the positive part of the map summed over
# channels (evidence *for* the class; `relevance="absolute"` uses $|M|$, as SmoothGrad's
# figures do). $G$ is the set of mask pixels.
#
# - **Pointing game** (Zhang et al. 2016, *Top-down neural attention by excitation backprop*):
#   a hit when $\arg\max_p r_p$ lies in $G$, or within a tolerance of it (they allow 15 px on
#   224 px images). On single digits we ask for the ink itself (0 px); on scenes, where the
#   question is *which* digit, 2 px. Ties are shared: the score is the fraction of tied maxima
#   in $G$.
# - **Relevance mass accuracy** (Arras et al. 2022, *CLEVR-XAI*):
#   $\text{mass} = \sum_{p \in G} r_p \,/\, \sum_p r_p$ — the share of relevance on the ink.
# - **Relevance rank accuracy** (same paper): with $K = |G|$, the fraction of the $K$ most
#   relevant pixels that lie in $G$.
#
# A map that ignores the digit scores about the ink's share of the image on the last two
# (chance), and 1 if it is the mask itself.

# %%
model = models.load(evaluate.DIGIT_MODEL)
LESSON_METHODS = ["vanilla", "smoothgrad", "gradient_x_input", "integrated_gradients",
                  "guided_backprop", "occlusion", "gradcam", "gradcam_pp", "smooth_gradcam_pp"]
maps = {}
for name in LESSON_METHODS:
    maps[name], seconds = evaluate.compute_maps(model, name, digits.images, digits.labels, SETTINGS,
                                                evaluate.DIGIT_CAM_LAYER)
    print(f"{name:>22}: maps in {seconds:.1f} s")

tolerance = SETTINGS.digit_pointing_tolerance
print(f"\n{'method':>22} {'pointing':>9} {'mass':>7} {'mass|.|':>8} {'rank':>7}")
for name, method_maps in maps.items():
    pointing = metrics.pointing_game(method_maps, digits.masks, tolerance=tolerance).mean()
    mass = metrics.relevance_mass(method_maps, digits.masks).mean()
    mass_abs = metrics.relevance_mass(method_maps, digits.masks, relevance="absolute").mean()
    rank = metrics.relevance_rank_accuracy(method_maps, digits.masks).mean()
    print(f"{name:>22} {pointing:9.3f} {mass:7.3f} {mass_abs:8.3f} {rank:7.3f}")
print(f"{'chance (ink share)':>22} {'':9} {digits.masks.mean():7.3f} {digits.masks.mean():8.3f} "
      f"{digits.masks.mean():7.3f}")

shown = LESSON_METHODS
figure = Figure(figsize=(1.3 * (len(shown) + 1) + 0.6, 1.4 * 3 + 0.7), layout="constrained")
axes = figure.subplots(3, len(shown) + 1)
for row in range(3):
    axes[row, 0].imshow(digits.images[row, 0], cmap="gray")
    for column, name in enumerate(shown, start=1):
        axis = axes[row, column]
        image = axis.imshow(evaluate.displayed(maps[name][row:row + 1])[0], cmap="gray", vmin=0, vmax=1)
        axis.contour(digits.masks[row], levels=[0.5], colors="red", linewidths=0.5)
        if row == 0:
            axis.set_title(method_title(name, evaluate.DIGIT_CAM_LAYER), fontsize=7)
for axis in axes.ravel():
    no_ticks(axis)
axes[0, 0].set_title("input", fontsize=7)
viz.colorbar(figure, image, axes[:, 1:].ravel().tolist(), DISPLAYED)
figure.suptitle("|map| (99th-percentile cap) with the ink mask's outline in red", fontsize=9)
lesson.save(figure, "12_maps_vs_masks.png")

# %% [markdown]
# ## 3. Faithfulness: deletion and insertion
#
# A map can sit on the ink and still say nothing about the model. Petsiuk et al. 2018 (*RISE*)
# ask the model itself: order the pixels by decreasing map value, black out the first
# fraction $t$ of them and record the probability $p_c(t)$ of the true class.
#
# $$\text{deletion AUC} = \int_0^1 p_c(t)\,dt \quad (\text{lower is better}),$$
#
# and **insertion** does the reverse — start from black and reveal the most relevant pixels
# first (higher is better). The integral is the trapezoid rule over `curve_steps` equal chunks
# (`metrics.area_under_curve`). Note what this asks of a gradient map: blacking out a pixel
# that is already black changes nothing, so a map that spends its top ranks on the
# background (where the gradient can be large) wastes its first steps.

# %%
figure = Figure(figsize=(11.5, 3.6), layout="constrained")
panels = figure.subplots(1, 2)
for name in LESSON_METHODS:
    scores, curves = evaluate.digit_scores(model, digits, maps[name], SETTINGS)
    for axis, kind in zip(panels, ("deletion", "insertion")):
        fractions, mean = curves[kind]
        axis.plot(fractions, mean, label=f"{method_title(name, evaluate.DIGIT_CAM_LAYER, separator=', ')} "
                                         f"({scores['deletion'].mean():.3f} / {scores['insertion'].mean():.3f})")
    print(f"{name:>22}: deletion AUC {scores['deletion'].mean():.3f}, insertion AUC {scores['insertion'].mean():.3f}")
for axis, kind in zip(panels, ("deletion (lower is better)", "insertion (higher is better)")):
    axis.set_title(kind, fontsize=9)
    axis.set_xlabel("fraction of pixels, most relevant first", fontsize=8)
    axis.set_ylabel("p(true class), mean", fontsize=8)
    axis.grid(alpha=0.3)
figure.legend(*panels[0].get_legend_handles_labels(), loc="outside right center", fontsize=7,
              title="method (deletion / insertion area)", title_fontsize=7)
figure.suptitle(f"Deletion and insertion on {len(digits.labels)} digits, {SETTINGS.curve_steps} steps", fontsize=9)
lesson.save(figure, "12_deletion_insertion.png")

# %% [markdown]
# ## 4. Sanity check: cascading randomisation
#
# Adebayo et al. 2018 (*Sanity checks for saliency maps*) re-initialise the network's layers
# one by one, from the output down, and recompute the map after each step. A map that
# explains *the model* must change; one that stays the same only describes the input (an
# edge detector would pass every localisation test!). The change is measured by the
# **Spearman rank correlation** between the original and the randomised $|M|$:
#
# $$\rho = \text{Pearson}\big(\text{rank}(|M|), \text{rank}(|M_\text{random}|)\big) \in [-1, 1].$$
#
# Low is good here. Beware of one trap: a map multiplied by the input (gradient × input,
# Integrated Gradients with a black baseline) is 0 on every background pixel whatever the
# weights, so its ranks — and its correlation — stay high.

# %%
SANITY_METHODS = ["vanilla", "smoothgrad", "gradient_x_input", "guided_backprop", "gradcam"]
count = min(len(digits.labels), 2 if lesson.quick else 5)
randomised = {}
for name in SANITY_METHODS:
    method = functools.partial(METHODS[name], **evaluate.method_options(name, SETTINGS, evaluate.DIGIT_CAM_LAYER))
    randomised[name] = metrics.cascading_randomisation(model, method, digits.images[:count],
                                                       digits.labels[:count], seed=SETTINGS.seed)
layers = randomised["vanilla"].layers
print(f"Spearman of |map| after randomising (mean over {count} digits): " + ", ".join(f"+{layer}" for layer in layers))
for name, result in randomised.items():
    print(f"{name:>22}: " + "  ".join(f"{np.nanmean(step):6.3f}" for step in result.spearman_abs))

figure = Figure(figsize=(1.3 * (len(layers) + 1) + 5.6, 1.3 * len(SANITY_METHODS) + 0.9), layout="constrained")
grid = figure.add_gridspec(len(SANITY_METHODS), len(layers) + 3)
map_axes = []
for row, (name, result) in enumerate(randomised.items()):
    panels = [result.original_map[:1]] + [step[:1] for step in result.randomised_maps]
    for column, panel in enumerate(panels):
        axis = figure.add_subplot(grid[row, column])
        image = axis.imshow(evaluate.displayed(panel)[0], cmap="gray", vmin=0, vmax=1)
        no_ticks(axis)
        map_axes.append(axis)
        if row == 0:
            axis.set_title("original" if column == 0 else f"+{layers[column - 1]}", fontsize=7)
        if column == 0:
            axis.set_ylabel(method_title(name, evaluate.DIGIT_CAM_LAYER), fontsize=7)
viz.colorbar(figure, image, map_axes, DISPLAYED, fraction=0.025)
curve_axis = figure.add_subplot(grid[:, len(layers) + 1:])
for name, result in randomised.items():
    correlations = [1.0] + [np.nanmean(step) for step in result.spearman_abs]
    curve_axis.plot(range(len(layers) + 1), correlations, marker="o",
                    label=method_title(name, evaluate.DIGIT_CAM_LAYER, separator=", "))
curve_axis.set_xticks(range(len(layers) + 1))
curve_axis.set_xticklabels(["none"] + layers, fontsize=7)
curve_axis.set_xlabel("randomised down to", fontsize=8)
curve_axis.set_ylabel("Spearman of |map|", fontsize=8)
curve_axis.axhline(0, color="0.6", lw=0.8)
curve_axis.legend(fontsize=6.5, loc="center left", bbox_to_anchor=(1.02, 0.5))
figure.suptitle("Cascading randomisation (Adebayo et al. 2018): maps of the first digit, and mean rank "
                "correlation", fontsize=9)
lesson.save(figure, "12_randomisation.png")

# %% [markdown]
# ## 5. Visual noise: what SmoothGrad is for
#
# SmoothGrad's claim is visual: averaging the gradient over noisy copies removes speckle.
# Two numbers for "speckle", both computed on the map as displayed ($|M|$, capped at the
# 99th percentile, in $[0, 1]$):
#
# - **total variation** (after Rudin, Osher and Fatemi 1992), the mean absolute difference of
#   neighbouring pixels: $\text{TV} = \frac{1}{\#\text{pairs}} \sum_{p \sim q} |m_p - m_q|$;
# - **high-frequency energy**, the share of the map's Fourier energy above 0.25 cycles per
#   pixel (white noise: about 0.80; a smooth blob: near 0).
#
# Here they are against SmoothGrad's sample size $n$ (the paper's Fig. 4 by eye says
# "diminishing returns past 50").

# %%
sample_sizes = [1, 2, 5] if lesson.quick else [1, 5, 10, 25, 50, 100]
tv, hf, mass = [], [], []
for n in sample_sizes:
    smoothed = METHODS["smoothgrad"](model, digits.images, digits.labels, n=n,
                                     noise_level=SETTINGS.smoothgrad_noise, seed=SETTINGS.seed)
    tv.append(metrics.mean_and_stderr(metrics.total_variation(smoothed)))
    hf.append(metrics.mean_and_stderr(metrics.high_frequency_energy(smoothed)))
    mass.append(metrics.mean_and_stderr(metrics.relevance_mass(smoothed, digits.masks)))
    print(f"SmoothGrad n={n:>3}: TV {tv[-1][0]:.3f}, HF energy {hf[-1][0]:.3f}, mass {mass[-1][0]:.3f}")
vanilla_tv = metrics.total_variation(maps["vanilla"]).mean()
print(f"vanilla gradient: TV {vanilla_tv:.3f}")

figure = Figure(figsize=(9, 3))
panels = figure.subplots(1, 3)
labels = ("total variation ↓", "high-frequency energy ↓", "relevance mass ↑")
for axis, values, label in zip(panels, (tv, hf, mass), labels):
    means, errors = np.array(values).T
    axis.errorbar(sample_sizes, means, yerr=errors, marker="o", capsize=3)
    axis.set_xscale("log")
    axis.set_xlabel("SmoothGrad sample size n", fontsize=8)
    axis.set_title(label, fontsize=9)
    axis.grid(alpha=0.3)
figure.suptitle(f"SmoothGrad at noise level {SETTINGS.smoothgrad_noise}: mean ± s.e. over "
                f"{len(digits.labels)} digits", fontsize=9)
figure.tight_layout()
lesson.save(figure, "12_smoothgrad_n.png")

# %% [markdown]
# ## 6. Scenes: which digit, and every occurrence?
#
# A one-digit image cannot test whether a map *chooses*. `scene_cnn` (`minisg/models/scene_cnn.py`) is a
# fully convolutional network trained to name every class on a 56x56 canvas (one sigmoid per
# class). On scenes, with $r$ the positive relevance and $G_k$ the mask of digit $k$:
#
# - **target share** $= r(G_\text{target}) / r(\bigcup_k G_k)$ — relevance on the target among
#   all the digits (1/K when the map does not choose);
# - **discriminativity** on two digits of different classes
#   $= \big(r(G_\text{target}) - r(G_\text{other})\big) / r(\text{all})$ in $[-1, 1]$ — the
#   class-discriminativity question of Grad-CAM (Selvaraju et al. 2017), scored by mass;
# - **multiple occurrences** (the motivation of Grad-CAM++, Chattopadhay et al. 2018, and of
#   Smooth Grad-CAM++): with $K$ digits of one class, each occurrence's share
#   $s_k = r(G_k)/r(\bigcup_j G_j)$, and the **weakest share** $K \min_k s_k$ (1 = evenly
#   shared, 0 = an occurrence ignored); **repeats mass** says how much of all the relevance
#   lands on the occurrences at all.
#
# One thing the architecture decides: after `relu3` the head is a 1x1 convolution and a global
# average, *linear* in the activations, so there Grad-CAM is exactly CAM and the gradient
# does not depend on the input — Smooth Grad-CAM++'s noise cannot change anything, and it
# equals Grad-CAM++. One layer earlier (`relu2`) the head is non-linear and the noise matters.

# %%
scene_model = models.load(evaluate.SCENE_MODEL)
print(f"scene_cnn: test mAP {scene_model.meta['test_mAP']:.3f} (stored in its checkpoint)")
SCENE_ROWS = [("smoothgrad", "smoothgrad", "relu3"), ("integrated_gradients", "integrated_gradients", "relu3"),
              ("gradcam", "gradcam", "relu3"), ("gradcam_pp", "gradcam_pp", "relu3"),
              ("smooth_gradcam_pp", "smooth_gradcam_pp", "relu3"), ("gradcam @relu2", "gradcam", "relu2"),
              ("gradcam_pp @relu2", "gradcam_pp", "relu2"), ("smooth_gradcam_pp @relu2", "smooth_gradcam_pp", "relu2")]
scene_maps, scene_rows = {}, {}
for row, name, layer in SCENE_ROWS:
    per_set = {}
    for set_name, scene_set in scene_sets.items():
        per_set[set_name], _ = evaluate.compute_maps(scene_model, name, scene_set.images,
                                                     evaluate.scene_targets(scene_set), SETTINGS, layer)
    scene_maps[row] = per_set
    scene_rows[row] = evaluate.summarise(evaluate.scene_scores(scene_sets, per_set, SETTINGS.scene_pointing_tolerance))
scene_table = evaluate.table_markdown(scene_rows, evaluate.SCENE_COLUMNS)
print(scene_table)

repeats = scene_sets["repeats"]
example = int(np.argmax(repeats.count))        # the scene with the most occurrences
count = repeats.count[example]
figure = Figure(figsize=(1.55 * (len(SCENE_ROWS) + 1) + 0.6, 2.6), layout="constrained")
axes = figure.subplots(1, len(SCENE_ROWS) + 1)
axes[0].imshow(coloured_masks(repeats.images[example, 0], repeats.masks[example, :count]))
axes[0].set_title(f"{count} x class {repeats.digit_labels[example][0]}\n(each digit's mask in its colour)",
                  fontsize=6.5)
for axis, (row, name, layer) in zip(axes[1:], SCENE_ROWS):
    row_map = scene_maps[row]["repeats"][example:example + 1]
    one_scene = slice(example, example + 1)
    shares = evaluate.occurrence_shares(row_map, repeats.masks[one_scene], repeats.count[one_scene])[0]
    image = axis.imshow(evaluate.displayed(row_map)[0], cmap="gray", vmin=0, vmax=1)
    axis.set_title(method_title(name, layer) + "\n" + ", ".join(
        f"{MASK_COLOUR_NAMES[k]} {share:.2f}" for k, share in enumerate(shares)), fontsize=6.5)
for axis in axes:
    no_ticks(axis)
viz.colorbar(figure, image, axes[1:].tolist(), DISPLAYED)
figure.suptitle("Multiple occurrences: each map's share of relevance on each digit (in the titles), the digits "
                "named by their colours in the left image", fontsize=8)
lesson.save(figure, "12_scenes_repeats.png")

# %% [markdown]
# ## 7. The table
#
# `evaluate.digit_scores` runs every digit metric on a set of maps; `evaluate.summarise` turns
# per-image scores into mean ± standard error, and `metrics.results_tables` prints them. This
# is how `minisg evaluate` builds `results.md`, here on this lesson's digits and without the
# randomisation columns (they cost five maps per method).

# %%
rows = {}
for name in METHODS:
    method_maps = maps.get(name)
    if method_maps is None:
        method_maps, _ = evaluate.compute_maps(model, name, digits.images, digits.labels, SETTINGS,
                                               evaluate.DIGIT_CAM_LAYER)
    rows[name] = evaluate.summarise(evaluate.digit_scores(model, digits, method_maps, SETTINGS)[0])
print(evaluate.table_markdown(rows, evaluate.DIGIT_COLUMNS))
print(f"↑ higher is better, ↓ lower is better; `minisg evaluate` writes the full table with "
      f"{evaluate.FULL.digits} digits, the randomisation check, the scenes and the training-noise table.")

# %% [markdown]
# ## 8. What the numbers say (a full run of `minisg evaluate`: 100 digits, 50 scenes per set)
#
# Your numbers are printed above; these are from `results.md` of `minisg evaluate`.
#
# - **SmoothGrad beats the vanilla gradient on every digit metric**: pointing 0.75 → 0.91,
#   relevance mass 0.30 → 0.43, deletion AUC 0.18 → 0.11, total variation 0.19 → 0.13,
#   high-frequency energy 0.58 → 0.33 — and it still passes the sanity check (ρ 0.13 after
#   full randomisation). The n sweep above flattens between 25 and 50: the paper's
#   "diminishing returns", now measured.
# - **But SmoothGrad is not the winner.** Gradient × input and Integrated Gradients put 99.5 %
#   of their mass on the ink and IG has the best deletion AUC (0.09) — partly by construction
#   (zero on the black background), which is also why their randomisation ρ stays at 0.99:
#   the background's zeros do not depend on the weights. Occlusion, a mean over 4x4
#   patches, is the smoothest of the pixel-level maps by high-frequency energy (0.06, against
#   0.17–0.58 for the gradient-based ones); the CAM maps, upsampled from 14x14, are as smooth
#   or smoother (0.02–0.06).
# - **Guided backprop looks good and fails the sanity check**: mass 0.86, but ρ = 0.78 after
#   randomising the output layer and 0.44 after all layers — Adebayo et al.'s finding, here.
# - **Grad-CAM++ and Smooth Grad-CAM++ do poorly on mnist_cnn**: pointing 0.26–0.27, mass
#   0.26 (chance 0.17) and ρ = 0.99 after randomising the output layer — at `relu2` their map
#   is mostly the layer's activations, not the class. Smooth Grad-CAM++ equals Grad-CAM++
#   within the standard errors on every metric.
# - **Scenes**: the class-specific maps choose the target best — guided Grad-CAM (target
#   share 0.80), occlusion (0.79), Grad-CAM = CAM at `relu3` (0.73); SmoothGrad (0.64) is a
#   little better than vanilla (0.61); Grad-CAM++ = Smooth Grad-CAM++ at `relu3` (0.50) is
#   worse than Grad-CAM. On repeated digits Grad-CAM++ spreads its relevance a bit more
#   evenly than Grad-CAM (weakest share 0.77 vs 0.72: a difference of 1.3 combined standard
#   errors, not significant), the paper's claim in miniature — but class-blind maps
#   (vanilla, guided backprop) are the most even of all, so evenness alone is no virtue. At
#   `relu2` smoothing moves Grad-CAM++ by less than its standard errors.
# - **Training with noise helps, and adds to SmoothGrad** (§3.5): the noise-trained model's
#   vanilla gradient localises better (pointing 0.89, mass 0.36) and is smoother; with
#   SmoothGrad on top it has the best mass (0.49) and smoothness of the four combinations;
#   deletion does not improve further (0.105 vs 0.108).
#
# ## Exercises
#
# 1. The pointing game on digits asks for the ink itself (tolerance 0). Re-run the localisation
#    table with tolerance 1 and 2. Which methods move, and why do the coarse CAM maps gain the
#    most?
# 2. Deletion replaces pixels by black, which is the *absence* of ink on MNIST. Try
#    `baseline="blur"` (RISE's choice for insertion). Does the ranking of the methods change?
# 3. Score the maps with `relevance="absolute"` everywhere. Which method gains the most from
#    taking the absolute value, and what does the negative part of its map mean?
# 4. Compute the Spearman correlation only over ink pixels in the randomisation test. Do
#    gradient × input and Integrated Gradients still "pass"?
# 5. Train a scene model with input noise (`minisg train --task scenes --noise-level 0.1`) and
#    measure whether the training-noise effect of §3.5 holds on scenes too.
#
# Graded exercises: `lessons/exercises/ex12_measuring_maps.py` — write `relevance_mass` (12.1)
# and `deletion_curve` (12.2) yourself, then run `minisg check 12`.

# %%
lesson.finish()
