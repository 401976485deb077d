# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 11 — Smooth Grad-CAM++: layers, feature maps, neurons, and several digits
#
# Smooth Grad-CAM++ (Omeiza et al. 2019) is Grad-CAM++ (lesson 10) with SmoothGrad's idea
# (lesson 06) applied to its derivatives. For noisy copies $x_m = x + \varepsilon_m$,
# $m = 1..n$, let $g_m = \partial S_c / \partial A$ at $x_m$ and average the powers:
#
# $$m_1 = \tfrac1n \sum_m g_m, \quad m_2 = \tfrac1n \sum_m g_m^2, \quad m_3 = \tfrac1n \sum_m g_m^3,$$
#
# $$\alpha^k_{ij} = \frac{m_2}{2 m_2 + S_k\, m_3}, \qquad
#   w_k = \sum_{ij} \alpha^k_{ij}\, \mathrm{relu}(m_1), \qquad
#   L = \mathrm{relu}\Big(\sum_k w_k A^k\Big),$$
#
# with $S_k = \sum_{ab} A^k_{ab}$ and $A$ from the clean image. (The paper prints $m_1$ in
# $\alpha$'s numerator; the derivation — and torch-cam — give $m_2$. Averaging $g^3$ can
# make the denominator negative; $\alpha$ is then set to 0.) The **derivatives** are
# averaged, not the maps.
#
# The paper's other contribution is an *interface*: explain one layer, a subset of its
# feature maps (`filters`), or a subset of its neurons — single positions or a box
# (`neurons`, `region`). A selection keeps those activations and zeroes the others, in the
# weights ($S_k$) and in the map. Its figures use $n$ = 5 samples with $\sigma$ = 0.3, which
# we keep (sigma = 0.3 is the noise level 30% on our [0, 1] images).
#
# Run: `python lessons/11_smooth_gradcam_pp.py [--quick]`; figures go to
# `lessons/out/11_*.png`.

# %%
import sys
from pathlib import Path

import numpy as np

# In a source checkout, use the minisg beside the lessons (installed or not); anywhere else the installed one.
REPO = Path(__file__).resolve().parents[1] if "__file__" in globals() else Path.cwd().parent  # Jupyter: no __file__
if (REPO / "minisg" / "__init__.py").is_file():
    sys.path.insert(0, str(REPO))

from minisg import Tensor, data, grad, models, no_grad, viz  # noqa: E402
from minisg.evaluation import metrics  # noqa: E402
from minisg import methods as M  # noqa: E402
from minisg.models.cell_model import cell_model  # noqa: E402
from minisg.classroom.lesson import setup  # noqa: E402

# --quick for a fast pass, --out DIR for the figures (minisg/classroom/lesson.py)
lesson = setup("11", "Smooth Grad-CAM++ vs Grad-CAM and Grad-CAM++",
               quick="fewer digits and channels (seconds)")

N_SAMPLES, NOISE = 5, 0.3                       # the paper's nsamples = 5, std_dev = 0.3
SETTINGS = f"n = {N_SAMPLES}, {100 * NOISE:g}% noise"  # how the figures state them
COUNT = 2 if lesson.quick else 6                # single digits in the comparison
CHANNELS_SCANNED = 8 if lesson.quick else 64    # relu2 channels scanned for the feature-map figure
CLASSES = [7] if lesson.quick else [1, 4, 7]    # classes of the several-digit strips
PER_STRIP = 3                                   # digits of one class per strip

model = models.load("mnist_cnn")
test_images, test_labels = data.load_mnist("test")


def smooth_pp(net, images, classes, **kw):
    """Smooth Grad-CAM++ with the paper's settings and seed 0 (unless overridden)."""
    options = dict(n=N_SAMPLES, noise_level=NOISE, seed=0)
    options.update(kw)
    return M.smooth_gradcam_pp(net, images, classes, **options)


def normalised(maps):
    """Each map divided by its max (all-zero maps stay zero)."""
    peaks = maps.reshape(len(maps), -1).max(axis=1).reshape(-1, 1, 1)
    return np.where(peaks > 0, maps / np.where(peaks > 0, peaks, 1), 0)


def coverage(maps, masks):
    """Share of each mask's pixels where the map (divided by its max) is at least 0.5."""
    shown = normalised(maps)
    return np.array([(m[k] >= 0.5).mean() for m, k in zip(shown, masks)])


# %% [markdown]
# ## 1. Fig. 1: three CAMs of the same digits
#
# Layer `relu2` (14x14x64), each map upsampled to 28x28 and divided by its max. Numbers per
# digit: the map's mass on the ink, the share of the ink it covers at half its maximum, and
# how much the map moves between two seeds — with the paper's $n$ = 5 and with $n$ = 50.

# %%
x = test_images[:COUNT]
with no_grad():
    target = model(Tensor(x)).numpy().argmax(axis=1)
ink = x[:, 0] > data.MASK_THRESHOLD
three = {
    "Grad-CAM": M.gradcam(model, x, target),
    "Grad-CAM++": M.gradcam_pp(model, x, target),
    f"Smooth Grad-CAM++ (n={N_SAMPLES})": smooth_pp(model, x, target),
}
lesson.figure_grid(x, {name: viz.overlay_cam(x, maps) for name, maps in three.items()},
                   "11_three_cams_fig1.png", row_labels=[f"class {c}" for c in target], cell_size=1.9,
                   titles=["Grad-CAM", "Grad-CAM++", f"Smooth Grad-CAM++\n{SETTINGS}"], colorbars=viz.CAM_SCALE,
                   title=f"Grad-CAM, Grad-CAM++, Smooth Grad-CAM++ (n = {N_SAMPLES}, {viz.noise_label(NOISE)}) "
                         f"at relu2")

print(f"{'method':<28}{'mass on ink':>12}{'ink coverage':>14}")
for name, maps in three.items():
    print(f"{name:<28}{metrics.relevance_mass(maps, ink).mean():>12.3f}{coverage(maps, ink).mean():>14.3f}")


def seed_change(n):
    a, b = (normalised(smooth_pp(model, x, target, n=n, seed=seed)) for seed in (0, 1))
    return np.linalg.norm((a - b).reshape(COUNT, -1), axis=1) / np.linalg.norm(a.reshape(COUNT, -1), axis=1)


for n in (N_SAMPLES, 50):
    print(f"Smooth Grad-CAM++ with n = {n:>2}: relative change between seeds 0 and 1 = "
          f"{seed_change(n).mean():.3f} (mean over digits)")
torchcam = smooth_pp(model, x, target, variant="torchcam")
paper = three[f"Smooth Grad-CAM++ (n={N_SAMPLES})"]
print(f"torch-cam variant (last sample's gradient and activations) vs the paper's formula: relative "
      f"difference {np.linalg.norm(normalised(torchcam) - normalised(paper)) / np.linalg.norm(normalised(paper)):.3f}")

# %% [markdown]
# ### Why the smoothing changes so little here
#
# The two right-hand columns of Fig. 1 are hard to tell apart. Is the noise too weak to
# matter? We measure both ends: how much a single noisy copy's gradient at relu2 differs
# from the clean one, and how much the final map moves, at the paper's $\sigma$ and at
# larger ones.

# %%
body, head = model.split("relu2")


def relu2_gradient(images, classes):
    with no_grad():
        activations = body(Tensor(images)).numpy()
    leaf = Tensor(activations, requires_grad=True)
    (g,) = grad(head(leaf)[np.arange(len(images)), classes].sum(), leaf)
    return g.numpy()


rng = np.random.default_rng(0)
g_clean = relu2_gradient(x[:1], target[:1]).reshape(-1)
noisy = (x[:1] + NOISE * rng.standard_normal((N_SAMPLES,) + x.shape[1:])).astype(np.float32)
g_noisy = relu2_gradient(noisy, np.repeat(target[:1], N_SAMPLES)).reshape(N_SAMPLES, -1)
change = np.linalg.norm(g_noisy - g_clean, axis=1) / np.linalg.norm(g_clean)
print(f"digit 0, sigma = {NOISE}: each noisy copy's relu2 gradient differs from the clean one by "
      f"{change.min():.0%}-{change.max():.0%} (relative L2); the sign of g agrees at "
      f"{100 * ((g_noisy > 0) == (g_clean > 0)).mean():.0f}% of the elements")
reference = normalised(three["Grad-CAM++"])
for level in ([NOISE] if lesson.quick else [NOISE, 1.0, 2.0]):
    for n in ([N_SAMPLES] if lesson.quick else [N_SAMPLES, 50]):
        smooth = normalised(smooth_pp(model, x, target, noise_level=level, n=n))
        moved = np.linalg.norm((smooth - reference).reshape(COUNT, -1), axis=1) / np.linalg.norm(
            reference.reshape(COUNT, -1), axis=1)
        print(f"  noise level {level:.1f}, n = {n:>2}: Smooth Grad-CAM++ vs Grad-CAM++, relative L2 "
              f"{moved.mean():.3f} (mean over digits)")

# %% [markdown]
# ## 2. Choosing the layer: relu1 or relu2
#
# `relu1` (28x28x32) sits before the first pool: full resolution, but its channels are
# simple stroke and edge detectors. `relu2` (14x14x64) is coarser and more class-specific.
# The head after either layer is piecewise linear, so Grad-CAM++'s closed form holds.

# %%
rows = min(COUNT, 3)
layers = {}
for layer in ("relu1", "relu2"):
    layers[f"Grad-CAM {layer}"] = M.gradcam(model, x[:rows], target[:rows], layer=layer)
    layers[f"Grad-CAM++ {layer}"] = M.gradcam_pp(model, x[:rows], target[:rows], layer=layer)
    layers[f"Smooth Grad-CAM++ {layer}"] = smooth_pp(model, x[:rows], target[:rows], layer=layer)
lesson.figure_grid(x[:rows], {name: viz.overlay_cam(x[:rows], maps) for name, maps in layers.items()},
                   "11_layers.png", row_labels=[f"class {c}" for c in target[:rows]], cell_size=1.7,
                   titles=[name.replace(" relu", "\nrelu") for name in layers], colorbars=viz.CAM_SCALE,
                   title=f"The same three methods at relu1 (28x28x32) and relu2 (14x14x64); "
                         f"Smooth Grad-CAM++ with {SETTINGS}")
print(f"{'map':<24}{'mass on ink':>12}{'ink coverage':>14}")
for name, maps in layers.items():
    print(f"{name:<24}{metrics.relevance_mass(maps, ink[:rows]).mean():>12.3f}"
          f"{coverage(maps, ink[:rows]).mean():>14.3f}")

# %% [markdown]
# ## 3. A subset of feature maps (the paper's Fig. 2)
#
# With `filters=[k]`, only channel $k$ is kept: $L = \mathrm{relu}(w_k A^k)$, with the same
# $w_k$ as in the full map (its $S_k$ only involves channel $k$). So the total of channel
# $k$'s map measures how much it contributes. We scan the channels, show the three largest
# contributors one by one and together, and one channel that contributes almost nothing.

# %%
digit = x[:1]
digit_class = target[:1]
totals = np.array([smooth_pp(model, digit, digit_class, filters=[k]).sum() for k in range(CHANNELS_SCANNED)])
order = np.argsort(-totals)
top, weak = order[:3], order[-1]
share = totals / totals.sum()
print(f"channels scanned: {CHANNELS_SCANNED}; top three {top.tolist()} carry "
      f"{100 * share[top].sum():.1f}% of the summed single-channel maps; channel {weak} carries {100 * share[weak]:.2f}%")
print(f"channels with a non-zero single-channel map: {int((totals > 0).sum())} of {CHANNELS_SCANNED}")
selection = {"all 64 filters": smooth_pp(model, digit, digit_class)}
for k in top:
    selection[f"filter {k}"] = smooth_pp(model, digit, digit_class, filters=[int(k)])
selection[f"filters {sorted(int(k) for k in top)}"] = smooth_pp(model, digit, digit_class,
                                                               filters=[int(k) for k in top])
selection[f"filter {weak} (weak)"] = smooth_pp(model, digit, digit_class, filters=[int(weak)])
lesson.figure_grid(digit, {name: viz.overlay_cam(digit, maps) for name, maps in selection.items()},
                   "11_feature_maps_fig2.png", row_labels=[f"class {digit_class[0]}"], cell_size=1.9,
                   colorbars=viz.CAM_SCALE,
                   title=f"Smooth Grad-CAM++ ({SETTINGS}) of chosen relu2 feature maps "
                         f"(each map scaled by its own max)")
for name, maps in selection.items():
    print(f"  {name:<22} map total {maps.sum():9.4f}   peak {maps.max():.4f}")

# %% [markdown]
# ## 4. Single neurons and regions of neurons (the paper's Figs. 4 and 5)
#
# `neurons=[(r, c), ...]` keeps single positions of every (selected) channel;
# `region=True` with two corners keeps the box between them (the paper's
# `subset=[(0,10),(12,12)]`). Positions are on relu2's 14x14 grid; each is 2x2 input pixels.
# We take the top and bottom halves as regions, and as single neurons the three positions
# where the full map is largest.

# %%
full_small = smooth_pp(model, digit, digit_class, upsample=False)[0]
peaks = np.argsort(-full_small.ravel())[:3]
peak_cells = [tuple(int(v) for v in np.unravel_index(p, full_small.shape)) for p in peaks]
neuron_maps = {
    "all neurons": smooth_pp(model, digit, digit_class),
    "region (0,0)-(6,13)": smooth_pp(model, digit, digit_class, neurons=[(0, 0), (6, 13)], region=True),
    "region (7,0)-(13,13)": smooth_pp(model, digit, digit_class, neurons=[(7, 0), (13, 13)], region=True),
    f"neurons {peak_cells}": smooth_pp(model, digit, digit_class, neurons=peak_cells),
    f"neuron {peak_cells[0]}": smooth_pp(model, digit, digit_class, neurons=peak_cells[:1]),
}
lesson.figure_grid(digit, {name: viz.overlay_cam(digit, maps) for name, maps in neuron_maps.items()},
                   "11_neurons_figs4_5.png", row_labels=[f"class {digit_class[0]}"], cell_size=2.0,
                   titles=[name.replace("neurons [", "neurons\n[") for name in neuron_maps],
                   colorbars=viz.CAM_SCALE,
                   title=f"Smooth Grad-CAM++ ({SETTINGS}) of selected relu2 neurons "
                         f"(each map scaled by its own max)")
whole = neuron_maps["all neurons"].sum()
for name, maps in neuron_maps.items():
    print(f"  {name:<40} map total {maps.sum():8.4f} ({100 * maps.sum() / whole:5.1f}% of the full map's)")

# %% [markdown]
# ## 5. Several digits of one class
#
# Grad-CAM++ was designed for images with several objects of one class, where Grad-CAM
# tends to light up one of them. The network reads one 28x28 digit, so, as in lesson 08, we
# run its convolutional body on a wider image and apply the trained head to each 7x7 cell
# of the pooled feature map, averaging the logits (`minisg.models.cell_model`). A strip of three MNIST frames of the
# same class, side by side (28x84), is read as three cells, each at its native size.
#
# Why not `data.make_scenes(same_class=True)`, which scatters tight digit crops over a
# 56x56 canvas? We tried: the digits do not line up with the cells, and the cell model's
# top class is the scene's class for only a minority of scenes (printed below). Explaining a
# network that does not recognise the image would teach little.

# %%
wide_model = cell_model(model)
scenes = data.make_scenes(8 if lesson.quick else 40, canvas=56, digits=(2, 3), same_class=True, seed=0)
with no_grad():
    scene_top = wide_model(Tensor(scenes.images)).numpy().argmax(axis=1)
scene_hits = np.mean([top_ == labels[0] for top_, labels in zip(scene_top, scenes.digit_labels)])
print(f"make_scenes(same_class=True), 56x56, cell model: top class right for {100 * scene_hits:.0f}% of "
      f"{len(scenes)} scenes")

strips, strip_classes, strip_masks = [], [], []
for digit_class_ in CLASSES:
    indices = [data.find_digit(digit_class_, nth=k) for k in range(PER_STRIP)]
    strips.append(np.concatenate([test_images[i] for i in indices], axis=-1))          # (1, 28, 84)
    masks = np.zeros((PER_STRIP, 28, 28 * PER_STRIP), bool)
    for k, i in enumerate(indices):
        masks[k, :, 28 * k:28 * (k + 1)] = test_images[i, 0] > data.MASK_THRESHOLD
    strip_masks.append(masks)
    strip_classes.append(digit_class_)
strips, strip_classes, strip_masks = np.stack(strips), np.array(strip_classes), np.stack(strip_masks)
with no_grad():
    strip_top = wide_model(Tensor(strips)).numpy().argmax(axis=1)
print(f"strips of {PER_STRIP} digits of classes {strip_classes.tolist()}: cell model predicts {strip_top.tolist()}")

several = {
    "Grad-CAM": M.gradcam(wide_model, strips, strip_classes),
    "Grad-CAM++": M.gradcam_pp(wide_model, strips, strip_classes),
    "Smooth Grad-CAM++": smooth_pp(wide_model, strips, strip_classes),
}
lesson.figure_grid(strips, {name: viz.overlay_cam(strips, maps) for name, maps in several.items()},
                   "11_several_digits.png", row_labels=[f"class {c}" for c in strip_classes], cell_size=2.6,
                   titles=["Grad-CAM", "Grad-CAM++", f"Smooth Grad-CAM++, {SETTINGS}"], colorbars=viz.CAM_SCALE,
                   title=f"{PER_STRIP} digits of one class: which CAM covers all of them? (relu2, cell model)")

# %% [markdown]
# For each method and strip: the share of the map's mass on each digit's ink (a method that
# treats the three alike gives about a third each, scaled by their ink), and how many of the
# digits the map covers at least 10% of at half its maximum.

# %%
print(f"{'method':<20}{'class':>6}   {'mass share per digit':<28}{'digits covered':>15}")
for name, maps in several.items():
    for s, c in enumerate(strip_classes):
        on_digits = np.array([(maps[s] * strip_masks[s, k]).sum() for k in range(PER_STRIP)])
        shares = on_digits / max(on_digits.sum(), 1e-30)
        shown = normalised(maps[s:s + 1])[0]
        covered = sum((shown[strip_masks[s, k]] >= 0.5).mean() >= 0.1 for k in range(PER_STRIP))
        print(f"{name:<20}{c:>6}   {'  '.join(f'{v:.2f}' for v in shares):<28}{covered:>10} of {PER_STRIP}")

# %% [markdown]
# ## 6. What we see (numbers from a full run; yours are printed above)
#
# - **Three CAMs (Fig. 1).** On this network Grad-CAM at relu2 is sparse (lesson 10: most
#   channel weights $a_k$ are negative), leaving hot spots on the stroke: high mass on the
#   ink (0.45) but low coverage (0.35). Grad-CAM++ has only non-negative weights and covers
#   three quarters of the ink — plus a halo around the digit, where relu2 stays active on
#   the black background.
# - **Smooth Grad-CAM++ vs Grad-CAM++: we do not reproduce the paper's visible gain.** The
#   two columns are nearly identical: the maps differ by about 3% (relative L2) at the
#   paper's $\sigma$ = 0.3, and still only about 5% at $\sigma$ = 2. Not because the noise
#   is weak — each noisy copy's relu2 gradient differs from the clean one by about 85% —
#   but because of how the method is built: the map is $\mathrm{relu}(\sum_k w_k A^k)$ of
#   the *clean* activations, with non-negative weights $w_k$ that sum $\alpha\,
#   \mathrm{relu}(m_1)$ over a whole channel. Noise can only re-weight the same 64 clean
#   feature maps, and the sums average most of it away. With $n$ = 5 the result is already
#   stable (about 2% between seeds; 0.6% with $n$ = 50). The paper's examples were
#   ImageNet photos through VGG-16, with far more channels whose weights can move; on this
#   small MNIST network the method collapses to Grad-CAM++. (torch-cam's variant does move
#   the map, by far more — the relative difference is printed above — because it takes the
#   *last noisy sample's* gradient instead of the average $m_1$ and draws the map from that
#   sample's activations: a single noisy forward pass, not an average.)
# - **Layers.** relu1 maps follow the strokes at full resolution; Grad-CAM at relu1 is
#   almost empty (its weighted sum is negative nearly everywhere). Grad-CAM++ at relu1 has
#   a uniform background: on black pixels every relu1 unit outputs its bias, the same
#   everywhere, so any positive mixture of channels is flat there.
# - **Feature maps (the paper's Fig. 2).** The evidence is spread over many channels: the
#   three largest single-channel maps hold under 10% of the total. Single channels act as
#   part detectors — one fires on the 7's stem, another on its bar — and a weak channel's
#   map is a faint spot (scaled by its own max; judge it by the printed total).
# - **Neurons (the paper's Figs. 4–5).** Region and neuron selections keep only the chosen
#   positions. They are not slices of the full map: zeroing the other positions also lowers
#   $S_k$ and so raises $\alpha$, which is why the two half-regions together hold about 130%
#   of the full map's total. A tool for asking "what did these units contribute", not a
#   partition.
# - **Several digits.** Grad-CAM is uneven — on the strip of 7s it puts 3% of its mass on the
#   third digit and covers none of the three at half its maximum; on the 4s it misses one.
#   Grad-CAM++ and Smooth Grad-CAM++ cover all three digits of every strip, with shares
#   between 0.23 and 0.43 — the multiple-occurrence advantage the papers describe,
#   reproduced. That advantage comes from Grad-CAM++'s positive weights, not from the
#   smoothing: the two are again nearly identical.
#
# ## Exercises
#
# 1. Set `noise_level=0` in `M.smooth_gradcam_pp`. Show that the map equals Grad-CAM++
#    exactly, and explain why averaging $g, g^2, g^3$ is not the same as averaging maps.
# 2. Where can $2 m_2 + S_k m_3$ be negative? Count such positions for one digit at
#    $\sigma$ = 0.3 and at $\sigma$ = 1.0.
# 3. The paper's $\alpha$ has $m_1$ in the numerator. Implement that variant and compare:
#    which positions get the most different weights?
# 4. Make a strip with one digit of the class and two of other classes. Which method finds
#    the single digit of the class?
#
# Graded exercise in `lessons/exercises/ex11_smooth_gradcam_pp.py`:
#
# - **11.1** `smooth_gradcampp_weights`: the channel weights from averaged derivatives.
#
# Grade it with `minisg check 11` (or `python -m minisg check 11`).

# %%
lesson.finish()
