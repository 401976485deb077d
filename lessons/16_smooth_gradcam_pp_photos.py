# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 16 — Smooth Grad-CAM++ on real photos, measured
#
# Lesson 11 reproduced Smooth Grad-CAM++'s figures (Omeiza et al. 2019) on MNIST and found
# the method within about 3% of Grad-CAM++ (relative L2 of the normalised maps at the paper's
# $n$ = 5, $\sigma$ = 0.3). The paper's own figures are ImageNet photos. Does the smoothing
# matter there? Here the same three CAMs — Grad-CAM, Grad-CAM++, Smooth Grad-CAM++ — run on
# two pretrained ImageNet networks (SqueezeNet 1.1 and MobileNetV2, imported from ONNX) and
# on real photos, with the paper's figures (Figs. 1, 2, 4, 5) and two measurements:
#
# - **localisation** on the two photos that come with a segmentation mask (pointing game and
#   the share of the map on the object), and
# - **how far Smooth Grad-CAM++ moves from Grad-CAM++** as the noise level $\sigma$ and the
#   number of samples $n$ grow.
#
# **The noise convention.** minisg's `noise_level` is SmoothGrad's: for each image,
# $\sigma_{\text{abs}} = \text{noise\_level} \cdot (\max x - \min x)$, computed on the
# *network's input*. SqueezeNet's input is BGR pixels minus the mean (a range of about 255),
# MobileNetV2's is $\text{pixel}/127.5 - 1$ (a range of about 2): `noise_level=0.3` is the same
# photo-relative noise, 30% of the pixel range, on both — and the same as lesson 11's
# $\sigma$ = 0.3 on MNIST digits in $[0, 1]$. (The paper's code passes `std_dev=0.3` as an
# absolute standard deviation; on an ImageNet-normalised tensor, which spans about 4.5 units,
# that is nearer 7% of the range, between our 0.1 and 0.3 — both are in the sweep below.)
#
# Run: `python lessons/16_smooth_gradcam_pp_photos.py [--quick]`; figures go to
# `lessons/out/16_*.png`. The networks and photos are not part of minisg: the lesson reads
# them from `$MINISG_IMAGENET_DIR` (or `../shared/imagenet` beside the repository).

# %%
import sys
from pathlib import Path

import numpy as np

# In a source checkout, use the minisg beside the lessons (installed or not); anywhere else the installed one.
REPO = Path(__file__).resolve().parents[1] if "__file__" in globals() else Path.cwd().parent  # Jupyter: no __file__
if (REPO / "minisg" / "__init__.py").is_file():
    sys.path.insert(0, str(REPO))

from matplotlib import colormaps  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from minisg import Tensor, grad, no_grad, viz  # noqa: E402
from minisg import methods as M  # noqa: E402
from minisg.classroom import imagenet  # noqa: E402
from minisg.classroom.lesson import setup  # noqa: E402
from minisg.evaluation import localisation  # noqa: E402
from minisg.models import networks  # noqa: E402

# --quick for a fast pass, --out DIR for the figures (minisg/classroom/lesson.py)
lesson = setup("16", "Smooth Grad-CAM++ on real photos, measured",
               quick="one photo, n = 2 noisy samples, a tiny sweep (seconds)")

imagenet.stop_unless_available("16")   # without the files: one line, no figures

N_SAMPLES = 2 if lesson.quick else 5             # the paper's nsamples = 5
NOISE = 0.3                                       # the paper's std_dev = 0.3, read as a noise level
SETTINGS = f"n = {N_SAMPLES}, noise level {NOISE}"  # how titles state them
PHOTOS = ["dog_segmentation.png"] + ([] if lesson.quick else ["bird_segmentation.png", "cat.png"])
# The masks: bird_segmentation_mask has 3 on the bird; dog_segmentation_mask is the Oxford trimap
# shifted by one (0 dog, 1 background, 2 boundary): the object is the dog without its boundary.
MASKS = {"dog_segmentation.png": ("dog_segmentation_mask.png", 0),
         "bird_segmentation.png": ("bird_segmentation_mask.png", 3)}
# Per network: the last feature map before the classifier, and an earlier one.
LAYERS = {"squeezenet1.1": ("fire9/concat_1", "fire7/concat_1"),
          "mobilenet_v2": ("last_conv_relu6", "block13_expand_relu6")}
# The sweep of section 3 (SqueezeNet, its earlier layer): noise levels at n = N_SAMPLES, and
# sample sizes at sigma = NOISE. (The full sigma x n grid on three photos would cost ~500 passes
# through the network: minutes on a laptop's CPU.)
SWEEP_NOISE = [NOISE, 1.0] if lesson.quick else [0.1, NOISE, 0.5, 1.0]
SWEEP_N = [N_SAMPLES] if lesson.quick else [N_SAMPLES, 10, 25]
TOP_FILTERS = 1 if lesson.quick else 2            # single feature maps shown in Fig. 2
NEURON_NETWORKS = ["squeezenet1.1"]               # Figs. 4-5: SqueezeNet's 13x13 grid (MobileNetV2's is 7x7)
MNIST_DISTANCE = 0.03                             # lesson 11: relative L2 at n = 5, sigma = 0.3 on MNIST

models = {name: imagenet.network(name) for name in LAYERS}
for name, model in models.items():
    print(f"{name}: {imagenet.network_credit(model)}; layers {', '.join(LAYERS[name])}")


def smooth_pp(model, x, target, **kw):
    """Smooth Grad-CAM++ with the paper's settings and seed 0 (unless overridden). Every call here
    passes the target (the clean photo's top class): without one, each call would first run the
    network once more to find it."""
    options = dict(n=N_SAMPLES, noise_level=NOISE, seed=0)
    options.update(kw)
    return M.smooth_gradcam_pp(model, x, target, **options)


def normalised(maps):
    """Each map divided by its max (all-zero maps stay zero)."""
    maps = np.asarray(maps, dtype=np.float64)
    peaks = maps.reshape(len(maps), -1).max(axis=1).reshape(-1, 1, 1)
    return np.where(peaks > 0, maps / np.where(peaks > 0, peaks, 1), 0)


def distances(maps, reference):
    """(1 - Pearson correlation, relative L2) of each normalised map to its reference: two (N,) arrays."""
    a = normalised(maps).reshape(len(maps), -1)
    b = normalised(reference).reshape(len(reference), -1)
    correlation = np.array([np.corrcoef(u, v)[0, 1] for u, v in zip(a, b)])
    return 1 - correlation, np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)


def object_mask(model, photo_name):
    """The photo's segmentation mask, cropped and resized exactly as the photo is for the network
    (centre square, then input size) but with nearest neighbour, as bool (S, S)."""
    from PIL import Image
    file_name, object_value = MASKS[photo_name]
    labels = imagenet.mask(file_name)
    if labels.shape != imagenet.photo(photo_name).shape[:2]:
        raise ValueError(f"{file_name}: shape {labels.shape} differs from {photo_name}'s")
    height, width = labels.shape
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2     # as networks.square_photo
    square = Image.fromarray(labels.astype(np.uint8)).crop((left, top, left + side, top + side))
    size = model.card.input_size
    return np.asarray(square.resize((size, size), Image.NEAREST)) == object_value


def gray(picture):
    """(S, S, 3) uint8 -> (1, S, S) in [0, 1]: the heat maps are overlaid on the photo in gray."""
    return (picture.astype(np.float64) @ [0.299, 0.587, 0.114] / 255)[None]


def credits(photo_names, network_names):
    """The credit lines of the photos and networks shown, one line per photo source and per network."""
    lines = {}
    for name in photo_names:
        lines.setdefault(imagenet.credit(name), []).append(name.split(".")[0])
    photos = [f"{', '.join(names)}: {line}" for line, names in lines.items()]
    return "\n".join(photos + [imagenet.network_credit(models[name]) for name in network_names])


def cam_figure(pictures, cells, name, row_labels, title, credit_line, cell=2.05):
    """Rows of (photo, overlaid CAMs...) with a colour bar and the credit line at the bottom.

    pictures: one (S, S, 3) uint8 per row; cells: per row, a list of (title, map) pairs."""
    rows, columns = len(pictures), 1 + max(len(row) for row in cells)
    figure = Figure(figsize=(cell * columns + 0.8, cell * rows + 1.1), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    for r, (picture, row) in enumerate(zip(pictures, cells)):
        axes[r, 0].imshow(picture)
        axes[r, 0].set_ylabel(row_labels[r], fontsize=8)
        if r == 0:
            axes[r, 0].set_title("photo (network input)", fontsize=7.5)
        for c, (cell_title, cam) in enumerate(row, start=1):
            axes[r, c].imshow(viz.overlay_cam(gray(picture), cam))
            if r == 0 or c > len(cells[0]) or cell_title != cells[0][c - 1][0]:   # no repeated column titles
                axes[r, c].set_title(cell_title, fontsize=7.5)
        for c in range(len(row) + 1, columns):
            axes[r, c].axis("off")
    for axis in axes.ravel():
        axis.set_xticks([])
        axis.set_yticks([])
    viz.colorbar(figure, ScalarMappable(Normalize(0, 1), colormaps["jet"]), axes.ravel().tolist(),
                 "CAM / its own maximum (over the photo in gray)", fontsize=8, fraction=0.02)
    figure.suptitle(title, fontsize=10)
    figure.supxlabel(credit_line, fontsize=7)
    lesson.save(figure, name)


# The photos as each network sees them (centre square, 224x224), its top class, and the object masks.
inputs, pictures, targets, masks = {}, {}, {}, {}
label_names = {name: imagenet.label_names(model) for name, model in models.items()}
for name, model in models.items():
    x = np.concatenate([imagenet.network_input(model, imagenet.photo(p)) for p in PHOTOS])
    with no_grad():
        logits = model(Tensor(x)).numpy()
    inputs[name], targets[name] = x, logits.argmax(axis=1)
    pictures[name] = [networks.deprocess(model.card, x[i:i + 1]) for i in range(len(PHOTOS))]
    masks[name] = np.stack([object_mask(model, p) for p in PHOTOS if p in MASKS])
    for p, scores in zip(PHOTOS, logits):
        best = networks.top_k(scores, model.card, k=2, label_names=label_names[name])
        print(f"  {name:<14}{p:<24}" + "   ".join(f"{label.split(',')[0]} {prob:.2f}" for _, label, prob in best))


def short_label(name, index):
    return label_names[name][index].split(",")[0]


# %% [markdown]
# ## 1. The paper's Fig. 1: Grad-CAM, Grad-CAM++ and Smooth Grad-CAM++
#
# Each network explains its own top class (printed above: SqueezeNet calls the Samoyed a
# "white wolf"; both call the bird a "kite"). Two layers per network:
#
# - the **last feature map** before the classifier: SqueezeNet's `fire9/concat_1`
#   (13x13x512, followed by the 1x1 convolution `conv10` that has one map per class, a ReLU
#   and global average pooling) and MobileNetV2's `last_conv_relu6` (7x7x1280, followed by
#   global average pooling and a linear layer);
# - an **earlier** one: SqueezeNet's `fire7/concat_1` (13x13x384, two fire modules earlier)
#   and MobileNetV2's `block13_expand_relu6` (14x14x576, before the last stride-2 block).
#
# Smooth Grad-CAM++ uses the paper's $n$ = 5 and $\sigma$ = 0.3 (noise level) with seed 0.

# %%
three = {}       # (network, layer, method) -> maps (photos, 224, 224)
for name, model in models.items():
    x, target = inputs[name], targets[name]
    for layer in LAYERS[name]:
        three[name, layer, "Grad-CAM"] = M.gradcam(model, x, target, layer=layer)
        three[name, layer, "Grad-CAM++"] = M.gradcam_pp(model, x, target, layer=layer)
        three[name, layer, "Smooth Grad-CAM++"] = smooth_pp(model, x, target, layer=layer)
    cells = [[(f"{method}\n{layer}" + (f"\n{SETTINGS}" if method.startswith("Smooth") else ""),
               three[name, layer, method][i])
              for layer in LAYERS[name] for method in ("Grad-CAM", "Grad-CAM++", "Smooth Grad-CAM++")]
             for i in range(len(PHOTOS))]
    labels = [f"{p.split('.')[0]}\nexplained: {short_label(name, c)}" for p, c in zip(PHOTOS, targets[name])]
    cam_figure(pictures[name], cells, f"16_three_cams_fig1_{name.replace('.', '_')}.png", labels,
               f"{name}: Grad-CAM, Grad-CAM++, Smooth Grad-CAM++ (n = {N_SAMPLES}, {viz.noise_label(NOISE)}) "
               f"at two layers",
               credits(PHOTOS, [name]))

print(f"Smooth Grad-CAM++ (n={N_SAMPLES}, sigma={NOISE}) vs Grad-CAM++, mean over {len(PHOTOS)} photos:")
print(f"  {'network':<15}{'layer':<24}{'1 - correlation':>16}{'relative L2':>13}")
paper_setting = {}
for name in models:
    for layer in LAYERS[name]:
        d_corr, d_l2 = distances(three[name, layer, "Smooth Grad-CAM++"], three[name, layer, "Grad-CAM++"])
        paper_setting[name, layer] = d_corr.mean(), d_l2.mean()
        print(f"  {name:<15}{layer:<24}{d_corr.mean():>16.4f}{d_l2.mean():>13.4f}")

# %% [markdown]
# ### Why the last layer gives exactly Grad-CAM++
#
# At both networks' last feature map the table says 0 (to float precision) — not "small",
# zero. The head after the layer explains it:
#
# - **MobileNetV2**: $S_c = \sum_k v_{ck}\, \text{mean}(A^k) + b_c$ is *linear* in $A$, so
#   $g = v_{ck}/(hw)$ is the same for every input, noisy or not; $m_1, m_2, m_3$ are the
#   clean $g, g^2, g^3$, and Smooth Grad-CAM++ is Grad-CAM++ for any $n$ and $\sigma$.
# - **SqueezeNet**: $S_c = \text{mean}_{ij}\, \mathrm{relu}(\sum_k W_{ck} A^k_{ij} + b_c)$, so
#   $g^k_{ij} = W_{ck}\, u_{ij} / (hw)$ with $u_{ij} \in \{0, 1\}$ the ReLU's gate. The noise
#   does move the gates (gates open on the clean photo close on noisy copies), but every
#   moment factorises: with $p_{ij}$ the
#   share of noisy copies whose gate is open, $m_r = (W_{ck}/hw)^r p_{ij}$, and
#   $\alpha = m_2 / (2 m_2 + S_k m_3) = 1/(2 + S_k W_{ck}/hw)$ does not depend on $p$.
#   Then $w_k = \alpha_k\, \mathrm{relu}(W_{ck})/(hw) \cdot \sum_{ij} p_{ij}$: the same
#   factor $\sum_{ij} p_{ij}$ for every channel, which the normalisation removes.
#
# This is a property of global-average-pooling networks, not of photos: the paper used
# VGG-16, whose last convolutional layer is followed by max-pooling and three
# fully-connected layers, where $g$ does depend on the input. To see the smoothing act here
# we must go one or more blocks back.

# %% [markdown]
# ## 2. Localisation, measured on the two photos with masks
#
# The masks are cropped to the centre square and resized to 224x224 exactly as the photos
# are, with nearest neighbour so that they stay binary. Per map: the **pointing game** (is
# the map's maximum on the object? tolerance 0 px) and the **share of the map's mass on the
# object**. A map that ignores the object scores about the object's share of the image on
# the second: printed as "chance".


# %%
masked = [i for i, p in enumerate(PHOTOS) if p in MASKS]
masked_names = [PHOTOS[i].split("_")[0] for i in masked]
area = masks["squeezenet1.1"].mean(axis=(1, 2))       # both networks crop and resize to 224 alike
for short, share in zip(masked_names, area):
    print(f"{short}: the object covers {100 * share:.1f}% of the network input (chance for the mass share)")
METHOD_NAMES = ("Grad-CAM", "Grad-CAM++", "Smooth Grad-CAM++")
scores = {}
print(f"{'network':<15}{'layer':<23}{'method':<19}" + "".join(
    f"{short + ' pointing':>15}{short + ' mass':>11}" for short in masked_names))
for (name, layer, method), maps in three.items():
    pointing = localisation.pointing_game(maps[masked], masks[name])
    mass = localisation.relevance_mass(maps[masked], masks[name])
    scores[name, layer, method] = pointing, mass
    print(f"{name:<15}{layer:<23}{method:<19}" + "".join(f"{p:>15.2f}{m:>11.3f}" for p, m in zip(pointing, mass)))
print(f"{'chance (object area)':<57}" + "".join(f"{'':>15}{a:>11.3f}" for a in area))

figure = Figure(figsize=(max(5.2 * len(masked), 7.5) + 0.4, 4.8), layout="constrained")
axes = figure.subplots(1, len(masked), squeeze=False)[0]
groups = [(name, layer) for name in models for layer in LAYERS[name]]
width = 0.26
for i, axis in enumerate(axes):
    for m, method in enumerate(METHOD_NAMES):
        positions = np.arange(len(groups)) + (m - 1) * width
        values = [scores[name, layer, method][1][i] for name, layer in groups]
        hits = [scores[name, layer, method][0][i] for name, layer in groups]
        axis.bar(positions, values, width, label=method, color=colormaps["tab10"](m))
        for position, value, hit in zip(positions, values, hits):
            axis.text(position, value + 0.01, "hit" if hit == 1 else ("miss" if hit == 0 else f"{hit:.2f}"),
                      ha="center", va="bottom", fontsize=7, rotation=90)
    axis.axhline(area[i], color="k", linestyle=":", linewidth=1.2, label="chance (object's share of the image)")
    axis.set_xticks(np.arange(len(groups)), [f"{name}\n{layer}" for name, layer in groups], fontsize=7)
    axis.set_ylim(0, 1.05)
    axis.set_ylabel("share of the map's mass on the object", fontsize=8)
    axis.set_title(f"{PHOTOS[masked[i]].split('.')[0]}  (above each bar: pointing game, 0 px)", fontsize=9)
axes[0].legend(fontsize=7, loc="upper right")
figure.suptitle("Localisation on the photos with segmentation masks\nGrad-CAM, Grad-CAM++, Smooth Grad-CAM++ "
                f"({SETTINGS})", fontsize=10)
figure.supxlabel(credits([PHOTOS[i] for i in masked], models), fontsize=7)
lesson.save(figure, "16_localisation.png")

# %% [markdown]
# ## 3. How far does the smoothing move the map?
#
# At the earlier layers the head after the layer is deep and piecewise linear, so $g$
# changes with the noise. On SqueezeNet's `fire7/concat_1` we compare Smooth Grad-CAM++ with
# Grad-CAM++ on the same photos for several noise levels (at $n$ = 5) and several sample sizes
# (at $\sigma$ = 0.3): $1 - r$ (Pearson correlation of the two maps) and the relative L2
# distance $\lVert \hat s - \hat r \rVert / \lVert \hat r \rVert$ of the maps divided by
# their maxima (lesson 11's measure), averaged over the photos. If the distance falls as $n$
# grows, it is mostly Monte Carlo scatter; what remains at large $n$ is what the smoothing
# really changes. MobileNetV2's `block13_expand_relu6` at the paper's setting comes from
# section 1. A whole $\sigma \times n$ grid would cost about 500 passes through the network:
# minutes on a CPU.

# %%
SWEEP_NETWORK = "squeezenet1.1"
sweep_layer = LAYERS[SWEEP_NETWORK][1]

# First, what do the noisy copies look like to the network? Two copies per photo and noise level.
rng = np.random.default_rng(0)
x = inputs[SWEEP_NETWORK]
spans = (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3))).reshape(-1, 1, 1, 1, 1)
for sigma in SWEEP_NOISE:
    noisy = (x[:, None] + sigma * spans * rng.standard_normal((len(x), 2) + x.shape[1:])).astype(np.float32)
    with no_grad():
        noisy_top = models[SWEEP_NETWORK](Tensor(noisy.reshape((-1,) + x.shape[1:]))).numpy().argmax(axis=1)
    kept = (noisy_top.reshape(len(x), 2) == targets[SWEEP_NETWORK][:, None]).mean()
    seen = sorted({short_label(SWEEP_NETWORK, c) for c in noisy_top})
    print(f"noise level {sigma:.1f}: {SWEEP_NETWORK} keeps the clean top class on {100 * kept:.0f}% of the noisy "
          f"copies; their top classes: {', '.join(seen)}")

reference = three[SWEEP_NETWORK, sweep_layer, "Grad-CAM++"]
settings = ([(sigma, N_SAMPLES) for sigma in SWEEP_NOISE] + [(NOISE, n) for n in SWEEP_N if n != N_SAMPLES]
            + [(SWEEP_NOISE[-1], SWEEP_N[-1])] * (SWEEP_N[-1] != N_SAMPLES))    # and the largest noise at the largest n
sweep = {}     # (sigma, n) -> (1 - r, relative L2) per photo
for sigma, n in settings:
    if (sigma, n) == (NOISE, N_SAMPLES):
        maps = three[SWEEP_NETWORK, sweep_layer, "Smooth Grad-CAM++"]
    else:
        maps = smooth_pp(models[SWEEP_NETWORK], inputs[SWEEP_NETWORK], targets[SWEEP_NETWORK], layer=sweep_layer,
                         n=n, noise_level=sigma)
    sweep[sigma, n] = distances(maps, reference)
print(f"{SWEEP_NETWORK} {sweep_layer}: Smooth Grad-CAM++ vs Grad-CAM++, mean over {len(PHOTOS)} photos")
print(f"  {'noise level':>11}{'n':>4}{'1 - correlation':>17}{'relative L2':>13}   per photo (relative L2)")
for (sigma, n), (d_corr, d_l2) in sweep.items():
    print(f"  {sigma:>11.1f}{n:>4}{d_corr.mean():>17.4f}{d_l2.mean():>13.4f}   "
          + "  ".join(f"{v:.3f}" for v in d_l2))
for name in models:
    for layer in LAYERS[name]:
        d_corr, d_l2 = paper_setting[name, layer]
        print(f"  {name} {layer}, noise level {NOISE}, n = {N_SAMPLES}: 1 - r = {d_corr:.4f}, relative L2 = {d_l2:.4f}")

figure = Figure(figsize=(13, 4.3), layout="constrained")
axes = figure.subplots(1, 2)
panels = [(axes[0], SWEEP_NOISE, [(s, N_SAMPLES) for s in SWEEP_NOISE], "noise level σ / (x_max - x_min)",
           f"n = {N_SAMPLES}, several noise levels"),
          (axes[1], SWEEP_N, [(NOISE, n) for n in SWEEP_N], "n (noisy samples)", f"noise level {NOISE}, several n")]
for axis, xs, keys, xlabel, title in panels:
    for k, (measure, colour) in enumerate((("1 - correlation", "tab:blue"), ("relative L2 distance", "tab:red"))):
        means = np.array([sweep[key][k].mean() for key in keys])
        spread = np.array([sweep[key][k].std() for key in keys])
        axis.errorbar(xs, means, yerr=spread, color=colour, marker="o", capsize=3,
                      label=f"{measure} ({SWEEP_NETWORK} {sweep_layer}; bars: spread over photos)")
        mobile = paper_setting["mobilenet_v2", LAYERS["mobilenet_v2"][1]][k]
        paper_x = NOISE if axis is axes[0] else N_SAMPLES
        axis.plot([paper_x], [mobile], marker="s", color=colour, linestyle="none", markerfacecolor="none",
                  markersize=8, label=f"{measure}, mobilenet_v2 {LAYERS['mobilenet_v2'][1]}")
        if axis is axes[0] and (SWEEP_NOISE[-1], SWEEP_N[-1]) in sweep and SWEEP_N[-1] != N_SAMPLES:
            axis.plot([SWEEP_NOISE[-1]], [sweep[SWEEP_NOISE[-1], SWEEP_N[-1]][k].mean()], marker="^", color=colour,
                      linestyle="none", markersize=8, label=f"{measure}, {SWEEP_NETWORK}, n = {SWEEP_N[-1]}")
    axis.axhline(MNIST_DISTANCE, color="gray", linestyle="--",
                 label="relative L2 on MNIST (lesson 11, relu2, n = 5, noise 0.3)")
    axis.axhline(0, color="k", linewidth=0.8, label="both networks' last feature map (exactly 0)")
    axis.set_xlabel(xlabel, fontsize=9)
    axis.set_ylabel("distance from Grad-CAM++", fontsize=9)
    axis.set_title(title, fontsize=9)
    axis.tick_params(labelsize=8)
    axis.set_ylim(bottom=-0.02)
axes[1].set_xscale("log")
axes[1].set_xticks(SWEEP_N, [str(n) for n in SWEEP_N])
axes[1].minorticks_off()
handles, legend_labels = axes[0].get_legend_handles_labels()
figure.legend(handles, legend_labels, loc="outside right center", fontsize=7)
figure.suptitle(f"How far Smooth Grad-CAM++ moves from Grad-CAM++ at an earlier layer (mean over {len(PHOTOS)} "
                f"photo{'s' * (len(PHOTOS) > 1)}; 0 at the last feature maps)",
                fontsize=10)
figure.supxlabel(credits(PHOTOS, models), fontsize=7)
lesson.save(figure, "16_smoothing_sweep.png")

# %% [markdown]
# ## 4. The paper's Fig. 2: single feature maps
#
# With `filters=[k]` only channel $k$ is kept: the map is $\mathrm{relu}(w_k A^k)$, with the
# same weight $w_k$ as in the full map. Which channels weigh most? Scanning 512 channels one
# call at a time (as lesson 11 did with 64) would cost 512 Smooth Grad-CAM++ runs; instead we
# compute the Grad-CAM++ weights once, from one backward pass through the taps, and rank the
# channels by the mass they add to the map, $w_k \sum_{ij} A^k_{ij}$. At the last feature
# map that ranking *is* Smooth Grad-CAM++'s (section 1: the weights are Grad-CAM++'s times
# one factor). The weights are checked against `M.gradcam_pp`'s map below.

# %%
def gradcampp_contributions(model, x, layer, target):
    """Channel k's share of the Grad-CAM++ map, w_k * sum(A^k), for one image (the closed form of
    METHODS.md §8), and the largest difference between relu(sum_k w_k A^k) and M.gradcam_pp's map
    (both divided by their maxima)."""
    logits, taps = model.run_with_taps(x, [layer])
    (g,) = grad(logits[0, int(target)], taps[layer])
    A, g = taps[layer].numpy()[0].astype(np.float64), g.numpy()[0].astype(np.float64)
    S = A.sum(axis=(1, 2), keepdims=True)
    alpha = np.where(g > 0, 1 / (2 + S * np.where(g > 0, g, 0)), 0)
    w = (alpha * np.maximum(g, 0)).sum(axis=(1, 2))
    mine = normalised(np.maximum((w[:, None, None] * A).sum(axis=0), 0)[None])
    library = normalised(M.gradcam_pp(model, x, target=[int(target)], layer=layer, upsample=False))
    return w * A.sum(axis=(1, 2)), float(np.abs(mine - library).max())


photo_index = 0                                                    # the dog
fig2_pictures, fig2_cells, fig2_labels, chosen = [], [], [], {}
for name, model in models.items():
    layer = LAYERS[name][0]
    x, target = inputs[name][photo_index:photo_index + 1], targets[name][photo_index]
    contribution, check = gradcampp_contributions(model, x, layer, target)
    share = contribution / contribution.sum()
    order = np.argsort(-contribution)
    top = [int(k) for k in order[:TOP_FILTERS]]
    active = np.flatnonzero(contribution > 0)
    weak = int(active[np.argmin(contribution[active])])             # the least contributing channel that adds anything
    chosen[name] = top[0]
    print(f"{name} {layer}: our weights give M.gradcam_pp's map to {check:.1e} (largest difference, maps divided "
          f"by their max); {len(active)} of {len(contribution)} channels add to the map; the top 3 carry "
          f"{100 * share[order[:3]].sum():.1f}% of it, the top 10 {100 * share[order[:10]].sum():.1f}%")
    row = [(f"Smooth Grad-CAM++\nall {len(contribution)} filters",
            three[name, layer, "Smooth Grad-CAM++"][photo_index])]
    for rank, k in enumerate(top, start=1):
        row.append((f"filter {k} (#{rank})\n{100 * share[k]:.1f}% of the map",
                    smooth_pp(model, x, [target], layer=layer, filters=[k])[0]))
    row.append((f"filter {weak} (weakest)\n{100 * share[weak]:.4f}% of the map",
                smooth_pp(model, x, [target], layer=layer, filters=[weak])[0]))
    fig2_pictures.append(pictures[name][photo_index])
    fig2_cells.append(row)
    fig2_labels.append(f"{name}\n{layer}\nexplained: {short_label(name, target)}")
cam_figure(fig2_pictures, fig2_cells, "16_feature_maps_fig2.png", fig2_labels,
           f"Smooth Grad-CAM++ ({SETTINGS}) of single feature maps at the last feature layer",
           credits([PHOTOS[photo_index]], models))

# %% [markdown]
# ## 5. The paper's Figs. 4 and 5: single neurons and a region of one feature map
#
# `neurons=[(r, c), ...]` keeps single positions of the layer's grid (13x13 for SqueezeNet's
# `fire9/concat_1`: each position stands for a patch of about 17x17 input pixels);
# `region=True` with two corners keeps the box between them. We select inside the most
# contributing feature map of section 4 (`filters=[k]` together with the neurons): the
# 3x3 box around its strongest activation, that activation alone, the three strongest
# positions, and a 3x3 box in the opposite corner of the grid. (MobileNetV2's last grid is
# 7x7: a neuron there is a 32x32 patch, too coarse to read.)

# %%
fig45_pictures, fig45_cells, fig45_labels = [], [], []
for name in NEURON_NETWORKS:
    model, layer, k = models[name], LAYERS[name][0], chosen[name]
    x, target = inputs[name][photo_index:photo_index + 1], targets[name][photo_index]
    with no_grad():
        _, taps = model.run_with_taps(x, [layer])
    feature = taps[layer].numpy()[0, k]
    size = feature.shape[0]
    strongest = [tuple(int(v) for v in np.unravel_index(p, feature.shape)) for p in np.argsort(-feature.ravel())[:3]]
    r, c = strongest[0]
    box = [(max(r - 1, 0), max(c - 1, 0)), (min(r + 1, size - 1), min(c + 1, size - 1))]
    far = (0 if r >= size // 2 else size - 3, 0 if c >= size // 2 else size - 3)
    far_box = [far, (far[0] + 2, far[1] + 2)]
    selections = {f"filter {k}, all neurons": None,
                  f"region {box[0]}-{box[1]}": dict(neurons=box, region=True),
                  f"neuron {strongest[0]}": dict(neurons=strongest[:1])}
    if not lesson.quick:
        selections[f"3 strongest neurons {', '.join(map(str, strongest))}"] = dict(neurons=strongest)
        selections[f"region {far_box[0]}-{far_box[1]}"] = dict(neurons=far_box, region=True)
    row, whole = [], None
    for title, options in selections.items():
        cam = (fig2_cells[list(models).index(name)][1][1] if options is None
               else smooth_pp(model, x, [target], layer=layer, filters=[k], **options)[0])
        whole = cam.sum() if whole is None else whole
        print(f"  {name:<15}{title:<48} map total {100 * cam.sum() / whole:6.1f}% of filter {k}'s")
        note = "\n(channel inactive there)" if cam.max() == 0 else ""
        row.append((title.replace("neurons (", "neurons\n(") + f"\n{100 * cam.sum() / whole:.0f}% of filter {k}'s "
                    f"total{note}", cam))
    fig45_pictures.append(pictures[name][photo_index])
    fig45_cells.append(row)
    fig45_labels.append(f"{name}\n{layer}, filter {k}\n({size}x{size} grid)")
cam_figure(fig45_pictures, fig45_cells, "16_neurons_figs4_5.png", fig45_labels,
           f"Smooth Grad-CAM++ ({SETTINGS}) of selected neurons of one feature map\n"
           "(positions are (row, column) on the layer's grid; each map scaled by its own maximum)",
           credits([PHOTOS[photo_index]], NEURON_NETWORKS))

# %% [markdown]
# ## 6. What we see (numbers from a full run; yours are printed above)
#
# - **Does Smooth Grad-CAM++ differ from Grad-CAM++ on photos, where it did not on MNIST?
#   It depends on the layer.** At the layer the paper uses, the last convolutional feature
#   map, it does not differ at all on these two networks: the distance is 0 to float
#   precision, for any $n$ and $\sigma$ (section 1 shows why: their heads are global average
#   pooling, linear or with gates that factor out). At the earlier layers it does: at the
#   paper's $n$ = 5, noise level 0.3, the relative L2 distance is 0.17 (SqueezeNet
#   `fire7/concat_1`) and 0.18 (MobileNetV2 `block13_expand_relu6`), about **six times
#   MNIST's 0.03**, and it grows with the noise (0.08 at 0.1, 0.21 at 0.5, 0.24 at 1.0).
#   It is not Monte Carlo scatter: at noise level 0.3 it stays at 0.17-0.18 for $n$ = 5,
#   10 and 25 (and at 1.0, 0.24 with $n$ = 5 and 0.28 with $n$ = 25). Still, the maps keep
#   their shape: the correlation with Grad-CAM++ is 0.95 or more at the paper's setting
#   ($1 - r$ = 0.05 and 0.03), 0.89 at noise level 1.0. The smoothing re-weights the same
#   feature maps and moves emphasis (in Fig. 1 at `fire7/concat_1`: on the dog from the face
#   towards the ear, on the bird partly onto the wall above its head); it does not draw a
#   different map.
# - **The noise is heavy for an ImageNet network.** Already at noise level 0.1 none of the
#   noisy copies keeps SqueezeNet's clean top class (they become "puffer", "velvet",
#   "starfish"...; from 0.3 on "doormat" and "chainlink fence"). The method holds the target
#   at the clean class (METHODS.md §0) and averages the derivatives of that class's score
#   over images the network no longer recognises. On MNIST the network kept reading the digit.
# - **Localisation does not improve.** The pointing game is the same for Grad-CAM++ and
#   Smooth Grad-CAM++ in all eight cases (two photos, four network-layer pairs). The mass
#   on the object moves by a few points, in both directions: -0.03 on both photos at
#   SqueezeNet `fire7/concat_1`, +0.004 (dog) and +0.04 (bird) at MobileNetV2
#   `block13_expand_relu6`; at the last layers it is identical. Two photos are too few for
#   a verdict on the method, but nothing here shows the paper's visible gain.
# - **Grad-CAM++ vs Grad-CAM** matters more than the smoothing: at MobileNetV2's
#   `block13_expand_relu6` Grad-CAM's maximum misses the dog and puts less mass on it than
#   chance (0.35 vs 0.47), Grad-CAM++ hits it (0.52). At the last layers the three maps are
#   close; MobileNetV2's 7x7 maps are coarse and spill onto the background (the bird gets
#   0.30 of the mass, its 0.20 share of the image; every maximum misses it).
# - **Feature maps (Fig. 2).** The evidence is spread thin: 240 of SqueezeNet's 512 and 470
#   of MobileNetV2's 1280 last-layer channels add to the dog's map; the top three carry 9%
#   and 4% of it. Single channels look like part detectors (the top of the head, the ears
#   and outline, a ring around the face), and the weakest contributing channel is one small
#   spot off the dog (drawn at full colour because every map is scaled by its own maximum:
#   judge it by the printed share, a ten-thousandth of a percent).
# - **Neurons (Figs. 4-5).** Inside SqueezeNet's most contributing channel, the 3x3 box
#   around its strongest activation holds about half of the channel's map (53%), that one
#   neuron 14%, the three strongest 33%, and a box in the opposite corner nothing: the
#   channel is not active there. As in lesson 11 a selection is not a slice of the full map
#   (a smaller $S_k$ raises $\alpha$).
#
# ## What cannot be reproduced here, and why
#
# - **SmoothGrad's Fig. 9** (training with noise, on an ImageNet network) needs an ImageNet
#   network trained with noise: we have none and cannot train one on a CPU in a lesson.
#   Lesson 09 does the experiment on MNIST.
# - **The paper's network.** Smooth Grad-CAM++'s figures come from VGG-16, whose last
#   convolutional layer feeds max-pooling and fully-connected layers. Our two small networks
#   end in global average pooling, which makes the method equal to Grad-CAM++ at their last
#   feature maps (section 1): on them the paper's Fig. 1 cannot show a difference, only at
#   earlier layers. We have no VGG-16 (about 500 MB, and minutes per map on a CPU).
# - **The paper's noise.** Its `std_dev=0.3` is absolute on its input tensor; ours is a
#   noise level relative to the input's range (introduction). The sweep's 0.1 and 0.3
#   bracket the likely equivalent.
# - **The paper's photos** are not redistributable; we use the course's photos, and only two
#   of them have masks, so the localisation numbers are anecdotes, not statistics.
# - **Left out for time** (a full run must stay within about two minutes on a 2-core CPU):
#   the whole $\sigma \times n$ grid (we sweep $\sigma$ at $n$ = 5 and $n$ at 0.3, plus one
#   corner), the sweep on MobileNetV2 beyond the paper's setting, Figs. 4-5 on MobileNetV2,
#   and the paper's several-objects figure (`pets.jpg` would serve).
#
# ## Exercises
#
# 1. Prove the claim of section 1 for SqueezeNet numerically: at `fire9/concat_1`, compute
#    $m_1, m_2, m_3$ for one photo yourself and check that every channel's weight is the
#    Grad-CAM++ weight times one common factor. What is that factor?
# 2. Find the noise level at which SqueezeNet keeps the dog's class on half of the noisy
#    copies. Run Smooth Grad-CAM++ at `fire7/concat_1` at that level: is it closer to
#    Grad-CAM++ than at 0.3?
# 3. Pick a layer between `fire7` and `fire9` (e.g. `fire8/concat_1`) and a MobileNetV2
#    block between 13 and 16: plot the distance from Grad-CAM++ against the depth of the
#    layer.
# 4. Run section 2 with `relevance_rank_accuracy` and a 15-pixel pointing tolerance (Zhang
#    et al.'s). Does any ranking of the methods change?

# %%
lesson.finish()
