# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 14 — SmoothGrad on photos: the paper's Figs. 1-4 and §3.1 on ImageNet networks
#
# Lessons 04-06 built SmoothGrad on MNIST digits, where a "photo" is 28x28 gray pixels and
# the network was trained by us. The paper's figures are photographs seen by an ImageNet
# network (Inception v3). Here we redo them on two real, pretrained ImageNet CNNs that minisg
# loads from ONNX files — **SqueezeNet 1.1** (1.2 M parameters, ReLU) and **MobileNetV2**
# (3.5 M parameters, ReLU6, depthwise convolutions) — and on photos from Open Images:
#
# - **Fig. 1**: a photo, its vanilla gradient $M_c(x) = \partial S_c/\partial x$ and its
#   SmoothGrad map $\hat M_c(x) = \frac1n \sum_m M_c(x + \varepsilon_m)$ ($n$ = 50, 15% noise);
# - **Fig. 2**: one pixel's partial derivative along $x + t\,\varepsilon$ jumps around while
#   the score $S_c$ moves smoothly (lesson 05 on MNIST);
# - **Fig. 3**: the noise level $\sigma/(x_{max} - x_{min})$ from 0% to 50% on five photos;
# - **Fig. 4**: the sample size $n$ from 1 to 100 at 10% noise;
# - **§3.1**: how a map becomes a picture — absolute value or sign, the 99th-percentile cap,
#   multiplying by the input.
#
# Every number below is measured by this script; the prose quotes a full run on a 2-core
# machine. The class $c$ is always the network's top-1 class on the clean photo, and the
# score $S_c$ is the **pre-softmax** score (minisg drops the ONNX file's final softmax).
#
# The photos and networks are not part of minisg: the lesson looks for them in
# `$MINISG_IMAGENET_DIR`, else in `../shared/imagenet` beside the repository
# (`minisg/classroom/imagenet.py`), and says so and stops if they are not there.
#
# Run: `python lessons/14_smoothgrad_photos.py [--quick]`; figures go to `lessons/out/14_*.png`.
# A full run computes about 750 gradients of 224x224 photos (about 60 s on two CPU cores);
# `--quick` about 40 (under 20 s).

# %%
import functools
import sys
import warnings
from pathlib import Path

import numpy as np

# In a source checkout, use the minisg beside the lessons (installed or not); anywhere else the installed one.
REPO = Path(__file__).resolve().parents[1] if "__file__" in globals() else Path.cwd().parent  # Jupyter: no __file__
if (REPO / "minisg" / "__init__.py").is_file():
    sys.path.insert(0, str(REPO))

from matplotlib.figure import Figure  # noqa: E402

from minisg import parallel, viz  # noqa: E402
from minisg import methods as M  # noqa: E402
from minisg.classroom import imagenet  # noqa: E402
from minisg.classroom.lesson import setup  # noqa: E402
from minisg.evaluation import metrics  # noqa: E402
from minisg.models import networks  # noqa: E402

# --quick for a fast pass, --out DIR for the figures (minisg/classroom/lesson.py)
lesson = setup("14", "SmoothGrad's photo figures 1-4 and §3.1 on SqueezeNet and MobileNetV2",
               quick="two photos, a few samples per map (seconds)")

imagenet.stop_unless_available("14")   # without the files: one line, no figures

# %% [markdown]
# ## 1. Networks, photos, settings
#
# Each network has a *card* (minisg/models/networks.py) saying how a photo becomes its input:
# centre crop, resize to 224x224, then SqueezeNet wants BGR pixels in 0-255 minus a mean colour,
# MobileNetV2 RGB scaled to $[-1, 1]$. The noise level is a fraction of the input's range
# $x_{max} - x_{min}$, so it means the same on both networks whatever their scaling.
#
# The sweeps run on SqueezeNet only, to keep the run short; Figs. 1 and 2 show both networks.
# Maps are shown as the paper shows ImageNet maps: $|M|$ summed over the three colour channels,
# capped at its 99th percentile (§3.1, and section 6 below for the alternatives).

# %%
BATCH = 25                                                  # noisy photos per forward/backward pass
PHOTOS = ["cat.png", "parrot.jpg"] if lesson.quick else ["cat.png", "parrot.jpg", "owl.jpg", "hot_dog.jpg",
                                                            "dragonfly.png"]
FIG1_PHOTO, FIG1_N, FIG1_NOISE = "cat.png", (3 if lesson.quick else 50), 0.15
FIG2_PHOTO, FIG2_POINTS, FIG2_SIGMA = "parrot.jpg", (5 if lesson.quick else 21), 0.01
LEVELS = [0.0, 0.1, 0.5] if lesson.quick else [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
N_FIG3 = 3 if lesson.quick else 50                          # the paper's n
FIG4_PHOTO, FIG4_NOISE = "cat.png", 0.1
SIZES = [1, 2, 3] if lesson.quick else [1, 5, 10, 20, 50, 100]
MODE = "absolute"

models = {name: imagenet.network(name) for name in ("squeezenet1.1", "mobilenet_v2")}
sweep_net = models["squeezenet1.1"]
names = {name: imagenet.label_names(model) for name, model in models.items()}


@functools.lru_cache(maxsize=None)
def load(photo_name, model):
    """(network input (1, 3, 224, 224), the picture it shows (224, 224, 3) in [0, 1], top-5 list)."""
    x = imagenet.network_input(model, imagenet.photo(photo_name))
    shown = networks.deprocess(model.card, x) / 255.0
    top5 = networks.top_k(parallel.logits(model, x), model.card, k=5, label_names=names[model.card.name])
    return x, shown, top5


def short(label):
    return label.split(",")[0]


def gray(maps, **options):
    """(N, 3, H, W) maps -> (N, H, W) gray levels: |M| summed over channels, 99th-percentile cap."""
    return viz.to_grayscale(maps, mode=options.pop("mode", MODE), **options)


def credits(photo_names, model_names):
    photo_lines = sorted({imagenet.credit(p) for p in photo_names})
    return " · ".join(photo_lines + [imagenet.network_credit(models[m]) for m in model_names])


def add_credit(figure, photo_names, model_names):
    """The credit line under a figure (drawn with layout="constrained", which leaves room for it)."""
    figure.supxlabel(credits(photo_names, model_names), fontsize=6.5, color="0.35")


GRAY_LABEL = "|M| summed over channels\n/ its 99th percentile"


def show(axis, values, title=None, signed=False):
    """An RGB picture, a gray map in [0, 1] or a signed map in [-1, 1] (blue-gray-red)."""
    if values.ndim == 3:
        image = axis.imshow(values)
    elif signed:
        image = axis.imshow(values, cmap=viz.BLUE_GRAY_RED, vmin=-1, vmax=1)
    else:
        image = axis.imshow(values, cmap="gray", vmin=0, vmax=1)
    axis.set_xticks([])
    axis.set_yticks([])
    if title:
        axis.set_title(title, fontsize=8)
    return image


def relative_change(new, old):
    """||new - old|| / ||new|| of raw maps, per image."""
    new, old = new.reshape(len(new), -1).astype(np.float64), old.reshape(len(old), -1).astype(np.float64)
    return np.linalg.norm(new - old, axis=1) / np.linalg.norm(new, axis=1)


def gray_change(new, old):
    """Mean |difference| of the displayed gray levels (0..1), per image."""
    return np.abs(gray(new) - gray(old)).mean(axis=(1, 2))


def speckle(maps):
    """Total variation of the displayed maps: large for salt-and-pepper, small for smooth maps."""
    return metrics.total_variation(gray(maps)[:, None])


# %% [markdown]
# ## 2. Fig. 1 — a photo, its gradient, its SmoothGrad map
#
# The cat photo through both networks: their five best classes, the vanilla gradient, and
# SmoothGrad with the paper's $n$ = 50 samples at 15% noise (minisg's default, in the middle of
# the 10-20% the paper recommends).

# %%
fig1 = {}
for name, model in models.items():
    x, shown, top5 = load(FIG1_PHOTO, model)
    target = np.array([top5[0][0]])
    vanilla = M.vanilla_gradient(model, x, target)
    smooth = M.smoothgrad(model, x, target, n=FIG1_N, noise_level=FIG1_NOISE, batch_size=BATCH, seed=0)
    fig1[name] = (shown, top5, vanilla, smooth)
    print(f"{name}: top-5 on {FIG1_PHOTO}: " + ", ".join(f"{short(label)} {p:.2f}" for _, label, p in top5))
    print(f"    speckle (total variation of the shown map): vanilla {speckle(vanilla)[0]:.3f}, "
          f"SmoothGrad {speckle(smooth)[0]:.3f}")

# %%
figure = Figure(figsize=(10.4, 6.1), layout="constrained")
axes = figure.subplots(2, 4, gridspec_kw=dict(width_ratios=[1, 1, 1, 0.9]))
for row, (name, (shown, top5, vanilla, smooth)) in enumerate(fig1.items()):
    show(axes[row, 0], shown, f"{name}: the input (224x224)")
    show(axes[row, 1], gray(vanilla)[0], "vanilla gradient |M|")
    image = show(axes[row, 2], gray(smooth)[0], f"SmoothGrad |M|, n = {FIG1_N}, {100 * FIG1_NOISE:.0f}% noise")
    axes[row, 3].axis("off")
    lines = [f"{name} top-5:"] + [f"{p:5.2f}  {short(label)[:22]}" for _, label, p in top5]
    axes[row, 3].text(0.0, 0.5, "\n".join(lines), fontsize=8, family="monospace", va="center",
                      transform=axes[row, 3].transAxes)
viz.colorbar(figure, image, axes[:, 1:3].ravel().tolist(), GRAY_LABEL)
figure.suptitle("SmoothGrad Fig. 1 on a photo: the gradient is speckled, SmoothGrad's average is not "
                "(|M| over channels, 99th-percentile cap)", fontsize=9)
add_credit(figure, [FIG1_PHOTO], list(models))
lesson.save(figure, "14_photo_fig1.png")

# %% [markdown]
# ## 3. Fig. 2 — partial derivatives that jump, a score that does not
#
# As in lesson 05 we walk from the photo $x$ to $x + \varepsilon$ with
# $\varepsilon \sim \mathcal N(0, \sigma^2)$, $\sigma$ = 1% of the input's range, and record at
# every point the score $S_c$ and the gradient. For three pixels — drawn at random (seeded)
# among those with $|r_i(0)| > 0.1$, i.e. chosen *before* walking, not for their jumps — we plot
# $r_i(t) = \partial_i S_c(x(t)) / \max_j |\partial_j S_c(x(t))|$, the paper's normalisation.
# All points go through the network as one batch, on both networks.

# %%
def along_path(model, photo_name, points, sigma, seed=0):
    x, shown, top5 = load(photo_name, model)
    target = top5[0][0]
    rng = np.random.default_rng(seed)
    eps = (sigma * float(x.max() - x.min()) * rng.standard_normal(x.shape)).astype(np.float32)
    ts = np.linspace(0, 1, points)
    path = (x + ts[:, None, None, None] * eps).astype(np.float32)
    # The walk leaves the network's input range a little, on purpose (the noise is not clipped, as in
    # SmoothGrad): the methods' warning about inputs out of range is expected here, and silenced.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="x: expected values in the model's input range")
        grads = M.vanilla_gradient(model, path, np.full(points, target), batch_size=BATCH)
    scores = parallel.logits(model, path, batch_size=BATCH)[:, target]
    flat = grads.reshape(points, -1)
    ratio = flat / np.abs(flat).max(axis=1, keepdims=True)
    candidates = np.flatnonzero(np.abs(ratio[0]) > 0.1)              # pixels that matter at t = 0
    pixels = rng.choice(candidates, size=3, replace=False)
    return dict(ts=ts, shown=shown, label=short(top5[0][1]), scores=scores, ratio=ratio, pixels=pixels,
                flat=flat, shape=x.shape[1:])


paths = {name: along_path(model, FIG2_PHOTO, FIG2_POINTS, FIG2_SIGMA) for name, model in models.items()}
for name, p in paths.items():
    step_gradient = np.linalg.norm(np.diff(p["flat"], axis=0), axis=1) / np.linalg.norm(p["flat"][:-1], axis=1)
    step_score = np.abs(np.diff(p["scores"])) / np.abs(p["scores"][:-1])
    print(f"{name}, {FIG2_PHOTO} ({p['label']}): S_c from {p['scores'][0]:.3f} to {p['scores'][-1]:.3f}; "
          f"per step of dt = {p['ts'][1]:.3f}: the score moves by {100 * step_score.mean():.3f}% on average, "
          f"the gradient by {100 * step_gradient.mean():.1f}% (relative L2)")
    for k, pixel in enumerate(p["pixels"]):
        series = p["ratio"][:, pixel]
        flips = int((np.diff(np.sign(series)) != 0).sum())
        print(f"    pixel {k + 1}: r(t) from {series.min():+.2f} to {series.max():+.2f}, "
              f"largest jump between neighbouring t {np.abs(np.diff(series)).max():.2f}, sign changes {flips}")

# %%
figure = Figure(figsize=(10, 7.0), layout="constrained")
figure.get_layout_engine().set(h_pad=0.15)          # room for the legends under the photos
axes = figure.subplots(2, 3, gridspec_kw=dict(width_ratios=[0.8, 1.3, 1.1]))
colours = ["C3", "C0", "C2"]
for row, (name, p) in enumerate(paths.items()):
    show(axes[row, 0], p["shown"], f"{name}: {p['label']}")
    for k, pixel in enumerate(p["pixels"]):
        channel, r, c = np.unravel_index(pixel, p["shape"])
        axes[row, 0].plot(c, r, "o", mfc="none", mec=colours[k], ms=9, mew=1.6)
        order = models[name].card.channel_order
        axes[row, 1].plot(p["ts"], p["ratio"][:, pixel], ".-", color=colours[k], lw=1, ms=3,
                          label=f"pixel {k + 1}: {order[channel]}, row {r}, col {c}")
    axes[row, 1].axhline(0, color="0.6", lw=0.6)
    axes[row, 1].set_title(r"$r_i(t) = \partial_i S_c / \max_j |\partial_j S_c|$ at $x + t\varepsilon$",
                           fontsize=8)
    axes[row, 0].legend(*axes[row, 1].get_legend_handles_labels(), fontsize=6.5, loc="upper center",
                        bbox_to_anchor=(0.5, -0.02), frameon=False)
    axes[row, 2].plot(p["ts"], p["scores"], ".-", color="k", lw=1, ms=3)
    axes[row, 2].set_title(r"the score $S_c(x + t\varepsilon)$ (pre-softmax)", fontsize=8)
    for axis in axes[row, 1:]:
        axis.set_xlabel("t", fontsize=8)
        axis.tick_params(labelsize=7)
figure.suptitle(rf"SmoothGrad Fig. 2 on a photo: $\varepsilon \sim N(0, \sigma^2)$, $\sigma$ = "
                rf"{100 * FIG2_SIGMA:g}% of the input's range, {FIG2_POINTS} points; circles: the 3 pixels",
                fontsize=9)
add_credit(figure, [FIG2_PHOTO], list(models))
lesson.save(figure, "14_path_fig2.png")

# %% [markdown]
# ## 4. Fig. 3 — the noise level
#
# SmoothGrad on SqueezeNet at noise levels 0% (the vanilla gradient) to 50% on five photos,
# every map with the same seed and the paper's $n$ = 50: 5 photos x 5 levels x 50 = 1,250
# gradients, the bulk of this lesson's run time.
#
# To *measure* what the eye sees we print, averaged over the photos:
#
# - **speckle**: the total variation of the displayed map (mean absolute difference between
#   neighbouring gray levels) — salt-and-pepper noise makes it large;
# - **change from the previous level**: the mean absolute difference of the displayed gray
#   levels (0..1) between successive noise levels — how much each 10% step still changes
#   the picture.
#
# The Fig. 4 photo's 10% map keeps its individual gradients (a `method=` callable that keeps a
# copy, as in lesson 06): 100 of them, the first 50 for this figure, all of them for Fig. 4.

# %%
def smoothgrad_keeping_samples(model, x, target, n, noise_level, seed):
    """(SmoothGrad map (1, 3, H, W), the n gradients behind it (n, 3, H, W))."""
    kept = []

    def gradient_and_keep(net, noisy, noisy_target, **kwargs):
        maps = M.vanilla_gradient(net, noisy, noisy_target, **kwargs)
        kept.append(maps)        # smoothgrad calls us once per batch of noisy copies, in sample order
        return maps

    smooth = M.smoothgrad(model, x, target, method=gradient_and_keep, n=n, noise_level=noise_level,
                          batch_size=BATCH, seed=seed)
    return smooth, np.concatenate(kept)


inputs, pictures, labels, targets = [], [], [], []
for photo_name in PHOTOS:
    x, shown, top5 = load(photo_name, sweep_net)
    inputs.append(x)
    pictures.append(shown)
    labels.append(f"{short(top5[0][1])} {top5[0][2]:.2f}")
    targets.append(top5[0][0])
inputs, targets = np.concatenate(inputs), np.array(targets)
fig4_row = PHOTOS.index(FIG4_PHOTO)
others = [row for row in range(len(PHOTOS)) if row != fig4_row]
sweep = {}
for level in LEVELS:                         # all photos in one call: n noisy copies of each, BATCH per pass
    if level == FIG4_NOISE:                  # the Fig. 4 photo's gradients are kept (section 5)
        _, fig4_samples = smoothgrad_keeping_samples(sweep_net, inputs[fig4_row:fig4_row + 1],
                                                     targets[fig4_row:fig4_row + 1], max(SIZES), level, seed=0)
        maps = np.empty_like(inputs)
        maps[fig4_row] = fig4_samples[:N_FIG3].mean(axis=0)
        maps[others] = M.smoothgrad(sweep_net, inputs[others], targets[others], n=N_FIG3, noise_level=level,
                                    batch_size=BATCH, seed=0)
        sweep[level] = maps
    else:
        sweep[level] = M.smoothgrad(sweep_net, inputs, targets, n=N_FIG3, noise_level=level,
                                    batch_size=BATCH, seed=0)
print(f"\nnoise sweep on squeezenet1.1, n = {N_FIG3}, photos: {', '.join(PHOTOS)}")
print(f"{'noise level':>12} {'speckle':>9} {'change from previous level':>28}   per photo")
for k, level in enumerate(LEVELS):
    tv = speckle(sweep[level])
    change = gray_change(sweep[level], sweep[LEVELS[k - 1]]) if k else None
    shown_change = f"{change.mean():>28.3f}" if k else f"{'-':>28}"
    per_photo = " ".join(f"{value:.3f}" for value in (change if k else tv))
    print(f"{100 * level:>11.0f}% {tv.mean():>9.3f} {shown_change}   "
          f"{'change' if k else 'speckle'}: {per_photo}")

# %%
columns = len(LEVELS) + 1
figure = Figure(figsize=(1.55 * columns + 1.3, 1.6 * len(PHOTOS) + 1.0), layout="constrained")
axes = figure.subplots(len(PHOTOS), columns, squeeze=False)
for row in range(len(PHOTOS)):
    show(axes[row, 0], pictures[row], "input" if row == 0 else None)
    axes[row, 0].set_ylabel(labels[row], fontsize=7)
    for column, level in enumerate(LEVELS, start=1):
        title = (f"noise {100 * level:g}%" + (" (vanilla)" if level == 0 else "")) if row == 0 else None
        image = show(axes[row, column], gray(sweep[level][row:row + 1])[0], title)
figure.suptitle(rf"SmoothGrad Fig. 3: SqueezeNet, n = {N_FIG3}, noise level $\sigma/(x_{{max}} - x_{{min}})$ "
                rf"from 0% to {100 * LEVELS[-1]:g}%; |M|, 99th-pct cap", fontsize=9)
viz.colorbar(figure, image, axes[:, 1:].ravel().tolist(), GRAY_LABEL, fraction=0.025)
add_credit(figure, PHOTOS, ["squeezenet1.1"])
lesson.save(figure, "14_noise_sweep_fig3.png")

# %% [markdown]
# ## 5. Fig. 4 — the sample size
#
# SmoothGrad at 10% noise on the cat with the first $n$ of the 100 gradients kept above, for
# $n$ = 1 (one noisy gradient: as speckled as the vanilla one) up to 100. The numbers: the
# relative L2 change of the raw map from the previous $n$, and the change of the displayed gray
# levels. Lesson 06 measured on MNIST that the distance to the limit falls like $1/\sqrt n$;
# successive changes should shrink accordingly.

# %%
running = np.cumsum(fig4_samples.astype(np.float64), axis=0) / np.arange(1, len(fig4_samples) + 1)[:, None, None, None]
at_size = {n: running[n - 1:n] for n in SIZES}
print(f"\nsample-size sweep on squeezenet1.1, {FIG4_PHOTO}, {100 * FIG4_NOISE:g}% noise")
print(f"{'n':>5} {'speckle':>9} {'raw change from previous n':>28} {'gray-level change':>19}")
for k, n in enumerate(SIZES):
    tv = speckle(at_size[n])[0]
    if k:
        previous = at_size[SIZES[k - 1]]
        print(f"{n:>5} {tv:>9.3f} {relative_change(at_size[n], previous)[0]:>28.3f} "
              f"{gray_change(at_size[n], previous)[0]:>19.4f}")
    else:
        print(f"{n:>5} {tv:>9.3f} {'-':>28} {'-':>19}")

# %%
x4, shown4, top4 = load(FIG4_PHOTO, sweep_net)
figure = Figure(figsize=(1.75 * (len(SIZES) + 1) + 1.2, 3.0), layout="constrained")
axes = figure.subplots(1, len(SIZES) + 1)
show(axes[0], shown4, f"input: {short(top4[0][1])}")
for axis, n in zip(axes[1:], SIZES):
    image = show(axis, gray(at_size[n])[0], f"n = {n}")
figure.suptitle(f"SmoothGrad Fig. 4: SqueezeNet, {100 * FIG4_NOISE:g}% noise, the first n of "
                f"{max(SIZES)} samples; |M|, 99th-pct cap", fontsize=9)
viz.colorbar(figure, image, axes[1:].tolist(), GRAY_LABEL)
add_credit(figure, [FIG4_PHOTO], ["squeezenet1.1"])
lesson.save(figure, "14_sample_size_fig4.png")

# %% [markdown]
# ## 6. §3.1 — from a map to a picture
#
# A map has three signed numbers per pixel; a picture has one gray level. The paper's choices
# (§3.1), all in `minisg.viz`, on the cat's SqueezeNet maps of Fig. 1:
#
# - **absolute value** $|M|$ summed over channels (the paper's choice for ImageNet), versus the
#   **positive part** (evidence *for* the class, lesson 04's choice on MNIST) and the **signed**
#   sum on a blue-gray-red scale;
# - the **99th-percentile cap** versus scaling by the maximum: a few extreme pixels otherwise
#   set the scale and the rest of the map goes black. We print how far the maximum lies above
#   the 99th percentile;
# - **× input**: $M \odot x$ with $x$ the *network's input*. What "input" means matters: SqueezeNet's
#   input is the photo minus a mean colour, so pixels near that mean colour become 0 whatever
#   their gradient (MobileNetV2's: zero at mid-gray). On MNIST lesson 07 met the same blind spot on
#   black pixels.

# %%
shown1, _, vanilla1, smooth1 = fig1["squeezenet1.1"]
x1, _, _ = load(FIG1_PHOTO, sweep_net)
rows = {"vanilla gradient": vanilla1, f"SmoothGrad, n = {FIG1_N}": smooth1}
for row_name, m in rows.items():
    values = viz.reduce_channels(m[0], "absolute")
    print(f"{row_name}: max |M| is {values.max() / np.percentile(values, 99):.1f}x its 99th percentile; "
          f"uncapped, {100 * (values / values.max() > 0.25).mean():.2f}% of the pixels are brighter than "
          f"1/4 gray, capped {100 * (gray(m)[0] > 0.25).mean():.1f}%")

display = {
    "|M|, 99th-pct cap": lambda m: gray(m)[0],
    "|M|, no cap (÷ max)": lambda m: gray(m, percentile=100)[0],
    "positive part, cap": lambda m: gray(m, mode="positive")[0],
    "|M × input|, cap": lambda m: gray(viz.multiply_by_input(m, x1))[0],
    "signed, cap": lambda m: viz.diverging(m)[0],
}
figure = Figure(figsize=(1.75 * (len(display) + 1) + 1.2, 5.4), layout="constrained")
axes = figure.subplots(2, len(display) + 1)
for row, (row_name, m) in enumerate(rows.items()):
    show(axes[row, 0], shown1, "input" if row == 0 else None)
    axes[row, 0].set_ylabel(row_name, fontsize=8)
    for column, (name, draw) in enumerate(display.items(), start=1):
        signed = name.startswith("signed")
        image = show(axes[row, column], draw(m), name if row == 0 else None, signed=signed)
        if signed:
            signed_image = image
        else:
            gray_image = image
figure.suptitle("SmoothGrad §3.1: one map, five pictures (SqueezeNet, cat; top: vanilla gradient, "
                f"bottom: SmoothGrad, n = {FIG1_N}, {100 * FIG1_NOISE:.0f}% noise)", fontsize=9)
viz.colorbar(figure, gray_image, axes[:, 1:-1].ravel().tolist(), "|M|, its positive part or |M x input|, "
             "/ its 99th percentile ('no cap': / its maximum)", location="bottom")
viz.colorbar(figure, signed_image, axes[:, -1].tolist(), "signed M / 99th percentile of |M|", location="bottom")
add_credit(figure, [FIG1_PHOTO], ["squeezenet1.1"])
lesson.save(figure, "14_display_choices.png")

# %% [markdown]
# ## 7. What the figures show (numbers from a full run; yours are printed above)
#
# - **Fig. 1.** On both networks the vanilla gradient is speckle over the whole frame; SmoothGrad
#   (n = 50, 15%) gathers it on the cat — eyes, ears, the outline of the head — and lowers the
#   speckle (total variation of the shown map) from 0.129 to 0.101 on SqueezeNet and from 0.152
#   to 0.129 on MobileNetV2. MobileNetV2's maps stay grainier; SqueezeNet's show a faint grid,
#   the footprint of its stride-2 convolutions and pools. Both networks agree on the class
#   (Egyptian cat 0.72 and 0.85), with the other cats next.
# - **Fig. 2.** Along $x + t\varepsilon$ (21 points, $\sigma$ = 1% of the range) the score moves by
#   0.16% per step of $dt$ = 0.05 on average, the gradient by 22% (relative L2) — on both networks,
#   about 140 times more. The three pixels' $r_i(t)$ wander over ranges of 0.1-0.3 of the largest
#   partial, jump by up to 0.09 between neighbouring points, and on MobileNetV2 two of them change
#   sign 3 and 6 times, while the score curve is smooth. That is the paper's Fig. 2 and lesson 05's
#   MNIST finding, on a real photo: the score is smooth at this scale, its derivative is not.
# - **Fig. 3.** The speckle is lowest at **10%** (0.090; vanilla 0.111) and grows from 20% on
#   (0.098, 0.126, 0.137, 0.140 at 20-50%). In the pictures the objects are clearest at 10-20%:
#   the owl's face and outline, the cat's eyes and ears, the bun of the hot dog. From 30% the maps
#   fill with a diffuse gray haze (the owl's body even becomes a dark hole at 40-50%); only the
#   dragonfly, on a plain background, keeps a compact blob, and the hot dog the bright rim of
#   its bun. This is the paper's finding (10-20%
#   best on Inception) and *not* lesson 06's MNIST one, where the sweet spot was 20-40% and 50%
#   only blurred the strokes: a high-contrast digit keeps its class under far more noise than a
#   photo. (SqueezeNet calls the owl a *ruffed grouse*, 0.57: the map explains the network's class,
#   right or wrong.) Part of the haze at 30-50% is sampling noise — more noise needs more
#   samples — so compare neighbouring columns, not absolute gray.
# - **Fig. 4.** The speckle falls steadily with $n$: 0.096 (n = 1), 0.100, 0.092, 0.085, 0.072,
#   0.065 (n = 100), and the picture's change from the previous $n$ shrinks: 0.097, 0.068, 0.060,
#   0.056 (20 to 50), 0.036 (50 to 100) gray levels. The pictures at 50 and 100 look alike, the
#   paper's "diminishing returns". But the raw map is far from converged: from 50 to 100 samples
#   it still moves by 41% of its norm (relative L2), whereas on MNIST (lesson 06) the gray levels
#   moved by only 0.005 between 50 and 100. A 150,528-number gradient of a deep network is mostly
#   per-sample noise; what converges fast is the coarse structure the eye sees through the cap.
# - **§3.1.** The maximum lies 3.4x (vanilla) and 5.2x (SmoothGrad) above the 99th percentile, so
#   without the cap only 1.8% and 0.5% of the pixels are brighter than a quarter gray (24.7% and
#   22.7% with it): the uncapped map is a black square with a few dots. The signed map alternates
#   red and blue from pixel to pixel in the vanilla gradient — on photos the sign carries little,
#   which is why the paper shows $|M|$ for ImageNet — while SmoothGrad's signed map has coherent
#   red and blue edges along the contours. The positive part looks like $|M|$ with half the
#   evidence. $|M \times$ input$|$ sharpens the cat's outline, but part of what it shows is the
#   photo itself (its distance from SqueezeNet's mean colour), not the network's sensitivity.
#
# ## Exercises
#
# 1. Rerun the noise sweep with $n$ = 100 (change `N_FIG3`). Does the haze at 30-50% shrink,
#    and does 10% stay the best level by the speckle number?
# 2. Fig. 1 shows SqueezeNet's grid pattern. Which layers of `squeezenet1.1` have stride 2, and
#    what period would their pattern have in the 224x224 map? Check it with `np.fft` on the map.
# 3. Redo Fig. 3 on MobileNetV2 for one photo. Is its best noise level the same as SqueezeNet's?
# 4. Multiply by the *photo* in $[0, 1]$ instead of the network's input for × input. Which pixels
#    change the most, and why does the choice matter for SqueezeNet and MobileNetV2 differently?

# %%
lesson.finish()
