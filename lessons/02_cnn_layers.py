# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 02 — Convolution and max-pooling: from loops to kernels
#
# The paper's MNIST network is two convolution + max-pool stages and two dense layers. This
# lesson opens the two CNN layers up:
#
# 1. the definitions, as plain loops (`minisg/kernels/reference.py`, the oracle);
# 2. convolution as **im2col + one matrix product**, in a few lines of NumPy;
# 3. max-pooling, which also records **where** each maximum was (the argmax) so the backward
#    pass can route the gradient there — with MNIST's black background, most windows are
#    ties, and the rule "first maximum in row-major order" decides, provided the tied values
#    are computed bit-identical (the tie step of the convolutions);
# 4. the same operations as compiled Numba kernels (`minisg/kernels/cpu_*.py`), all three
#    versions timed side by side (and CuPy on a GPU, when there is one).
#
# Run: `python lessons/02_cnn_layers.py [--quick]`; figures go to `lessons/out/02_*.png`.

# %%
import importlib.util
import sys
import timeit
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# In a source checkout, use the minisg beside the lessons (installed or not); anywhere else the installed one.
REPO = Path(__file__).resolve().parents[1] if "__file__" in globals() else Path.cwd().parent  # Jupyter: no __file__
if (REPO / "minisg" / "__init__.py").is_file():
    sys.path.insert(0, str(REPO))

import minisg  # noqa: E402
from minisg import Tensor, data, files, grad, models, viz  # noqa: E402
from minisg import functional as F  # noqa: E402
from minisg.kernels import cpu as numba_kernels  # noqa: E402
from minisg.kernels import reference  # noqa: E402
from minisg.classroom.lesson import setup  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

# --quick for a fast pass, --out DIR for the figures (minisg/classroom/lesson.py)
lesson = setup("02", "convolution and max-pooling kernels, timed",
               quick="small batches, one repeat (a few seconds)")


# %% [markdown]
# ## 1. What a convolution computes
#
# A deep-learning "convolution" is a cross-correlation. For an input $x$ of shape
# $(N, C, H, W)$, zero-padded by $p$, and weights $w$ of shape $(O, C, K_h, K_w)$, with stride $s$,
#
# $$y_{n,o,i,j} = \sum_{c=0}^{C-1}\sum_{a=0}^{K_h-1}\sum_{b=0}^{K_w-1}
#      x^{\text{pad}}_{n,\,c,\,i s + a,\,j s + b}\; w_{o,c,a,b},
#  \qquad O_H = \Big\lfloor \frac{H + 2p - K_h}{s} \Big\rfloor + 1 .$$
#
# The MNIST model uses $5\times5$ kernels, stride 1 and padding 2 ("SAME": $O_H = H$).
# `reference.conv2d_forward` is exactly this formula as four nested loops. Its two backward
# passes follow from the fact that $y$ is linear in $x$ and in $w$: the input gradient
# $\partial L/\partial x$ hands every $\bar y_{n,o,i,j}\, w_o$ back to the window it came from
# (a *transposed* convolution), and the weight gradient sums $\bar y_{n,o,i,j}$ times that window.
#
# ## 2. im2col: a convolution is a matrix product
#
# Copy every window into one column of a matrix: `cols[n]` has one row per $(c, a, b)$ —
# $C K_h K_w$ rows — and one column per output position $(i, j)$ — $O_H O_W$ columns. Then
#
# $$y_n = W_{\text{mat}}\; \text{cols}_n, \qquad W_{\text{mat}} = w \text{ reshaped to } (O,\; C K_h K_w),$$
#
# one matrix product per image, which BLAS runs near the machine's peak. The price is memory:
# every input value is copied $K_h K_w = 25$ times. NumPy's `sliding_window_view` builds all
# windows as a *view* (no copy yet); the reshape at the end makes the copy.

# %%
def im2col(x, kernel_hw, stride, padding):
    """cols (N, C*KH*KW, OH*OW): row (c, a, b), column i*OW + j holds x_pad[n, c, i*sh + a, j*sw + b]."""
    (kh, kw), (sh, sw), (ph, pw) = kernel_hw, stride, padding
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    windows = sliding_window_view(x_pad, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]  # (N, C, OH, OW, kh, kw)
    n, c, oh, ow = windows.shape[:4]
    return windows.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, oh * ow), (oh, ow)


def conv2d_forward_numpy(x, w, stride, padding):
    cols, (oh, ow) = im2col(x, w.shape[2:], stride, padding)
    y = w.reshape(w.shape[0], -1) @ cols                       # (O, K) @ (N, K, P) -> (N, O, P)
    return y.reshape(x.shape[0], w.shape[0], oh, ow)


def conv2d_backward_weight_numpy(x, gy, kernel_hw, stride, padding):
    """dL/dw: for every image, gy_mat (O, P) @ cols.T (P, K); summed over the images."""
    cols, _ = im2col(x, kernel_hw, stride, padding)
    n, o = gy.shape[:2]
    gw = np.tensordot(gy.reshape(n, o, -1), cols, axes=([0, 2], [0, 2]))   # (O, K)
    return gw.reshape(o, x.shape[1], *kernel_hw)


# %% [markdown]
# The input gradient is the transpose of the same picture: $\overline{\text{cols}}_n =
# W_{\text{mat}}^\top \bar y_n$, then every column entry is *added back* to the pixel it was
# copied from — `col2im`, the adjoint of im2col. Writing `col2im` and the input gradient is
# exercise 02.1/02.2, so this lesson leaves them to you: if your `ex02_cnn_layers.py` already
# passes, section 5 times your version too.
#
# Check the NumPy versions against the loops, in float64, on cases with stride and padding:

# %%
rng = np.random.default_rng(0)
cases = [((2, 3, 7, 7), (4, 3, 3, 3), (1, 1), (1, 1)),
         ((2, 3, 8, 9), (5, 3, 3, 2), (2, 2), (0, 1)),
         ((1, 2, 10, 10), (3, 2, 5, 5), (1, 1), (2, 2))]
for x_shape, w_shape, stride, padding in cases:
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    y_ref = reference.conv2d_forward(x, w, stride, padding)
    gy = rng.standard_normal(y_ref.shape)
    gw_ref = reference.conv2d_backward_weight(x, gy, w_shape[2:], stride, padding)
    gx_ref = reference.conv2d_backward_input(gy, w, x_shape[2:], stride, padding)
    errors = {
        "numpy fwd": np.abs(conv2d_forward_numpy(x, w, stride, padding) - y_ref).max(),
        "numpy bwd_w": np.abs(conv2d_backward_weight_numpy(x, gy, w_shape[2:], stride, padding) - gw_ref).max(),
        "numba fwd": np.abs(numba_kernels.conv2d_forward(x, w, stride, padding) - y_ref).max(),
        "numba bwd_in": np.abs(numba_kernels.conv2d_backward_input(gy, w, x_shape[2:], stride, padding) - gx_ref).max(),
        "numba bwd_w": np.abs(numba_kernels.conv2d_backward_weight(x, gy, w_shape[2:], stride, padding) - gw_ref).max(),
    }
    # the adjoint identity behind backward: <conv(x), gy> == <x, conv_T(gy)>
    adjoint = abs(np.sum(y_ref * gy) - np.sum(x * gx_ref))
    print(f"x{x_shape} w{w_shape} stride {stride} pad {padding}: max |error| vs reference "
          + ", ".join(f"{k} {v:.1e}" for k, v in errors.items()) + f"; adjoint identity off by {adjoint:.1e}")

# %% [markdown]
# ## 3. Max-pooling and its argmax
#
# A $2\times2$ max-pool with stride 2 keeps the largest value of each window,
# $y_{n,c,i,j} = \max_{a,b<2} x_{n,c,2i+a,2j+b}$. Its derivative is 1 for the winning element
# and 0 for the others, so the backward pass needs to know **which** element won: forward
# records `argmax` (the flat index $r\cdot W + q$ in the image plane), and backward *scatters*
# each $\bar y$ to that position. Where two elements tie, the max has no derivative; minisg
# picks the **first maximum in row-major order** (a strict `>` while scanning the window).
#
# Here is a NumPy version for non-overlapping windows (stride = kernel), which reshapes the
# image into windows and lets `argmax` — which returns the first of equal maxima — choose:

# %%
def max_pool2d_forward_numpy(x, k):
    """(y, argmax) of a k x k max-pool with stride k; argmax holds flat plane indices row * W + col."""
    n, c, h, w = x.shape
    oh, ow = h // k, w // k
    windows = x[:, :, :oh * k, :ow * k].reshape(n, c, oh, k, ow, k).transpose(0, 1, 2, 4, 3, 5)
    windows = windows.reshape(n, c, oh, ow, k * k)
    first = windows.argmax(axis=-1)                                  # first maximum on ties
    y = np.take_along_axis(windows, first[..., None], axis=-1)[..., 0]
    rows = np.arange(oh)[:, None] * k + first // k
    cols = np.arange(ow)[None, :] * k + first % k
    return y, rows * w + cols


ties = np.array([[[[0., 0., 1., 3.],
                   [0., 0., 3., 2.],
                   [5., 5., 0., 4.],
                   [5., 1., 4., 4.]]]])
pooled, where = max_pool2d_forward_numpy(ties, 2)
print("input plane:\n", ties[0, 0])
print("pooled:\n", pooled[0, 0], "\nargmax (flat index r*4 + q):\n", where[0, 0])
x_t = Tensor(ties, requires_grad=True)
(g_ties,) = grad(F.max_pool2d(x_t, 2).sum(), x_t)
print("minisg's gradient of sum(maxpool(x)): each window's 1 lands on its first maximum\n", g_ties.numpy()[0, 0])
for k_impl, impl in (("reference", reference.max_pool2d_forward), ("numba", numba_kernels.max_pool2d_forward)):
    same = np.array_equal(impl(ties, (2, 2), (2, 2))[1], where)
    print(f"{k_impl} kernel picks the same argmax on ties: {same}")

# a random test with many ties: small integers
x_int = rng.integers(0, 3, (4, 5, 12, 12)).astype(np.float64)
agree = [np.array_equal(max_pool2d_forward_numpy(x_int, 2)[1], impl(x_int, (2, 2), (2, 2))[1])
         for impl in (reference.max_pool2d_forward, numba_kernels.max_pool2d_forward)]
print(f"argmax on 2880 windows of integers in {{0,1,2}}: numpy == reference {agree[0]}, numpy == numba {agree[1]}")

# %% [markdown]
# How common are ties on MNIST? Count, for test digits, the pooling windows whose maximum
# occurs more than once — on the raw image and at the model's two pooling layers
# (`pool1` after `relu1`, `pool2` after `relu2`, trained model `mnist_cnn`). On the background
# every pixel is 0, and every conv unit sees the same zero window, so its activation is the
# same constant $\max(0, \text{bias})$ in all four positions.

# %%
model = models.load("mnist_cnn")
test_x, test_y = data.load_mnist("test")
n_tie_images = 20 if lesson.quick else 200
sample = test_x[:n_tie_images]


def tie_fraction(activations):
    """Fraction of 2x2/2 windows whose maximum is reached more than once."""
    n, c, h, w = activations.shape
    windows = activations.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
    return float(((windows == windows.max(axis=-1, keepdims=True)).sum(axis=-1) > 1).mean())


with minisg.no_grad():
    relu1 = model.split("relu1")[0](Tensor(sample)).numpy()
    relu2 = model.split("relu2")[0](Tensor(sample)).numpy()
tie_stats = {"raw image": tie_fraction(sample), "pool1 (after relu1)": tie_fraction(relu1),
             "pool2 (after relu2)": tie_fraction(relu2)}
for where_name, fraction in tie_stats.items():
    print(f"{where_name:22s}: {100 * fraction:5.1f}% of windows are ties ({n_tie_images} test digits)")

# %% [markdown]
# So on MNIST the tie rule is not a corner case: it decides where much of the gradient flows.
# A different rule (last maximum, or splitting the gradient equally) gives a different —
# equally "valid" — sensitivity map. `minisg` fixes one rule and documents it
# (`minisg/methods/METHODS.md` §0).
#
# ### Ties that hold in floating point
#
# The rule only decides if tied values are *bit-identical*. In exact arithmetic every
# background window of conv2's output ties: each of its four positions sees the same patch.
# But a fast convolution does not compute every position the same way: Winograd's tiles
# treat the corner of a tile differently from its middle, and BLAS kernels handle the edge
# of a block with other instructions than its middle. Equal sums then differ in the last
# bit, and the "first maximum" is decided by rounding: the map changes with the BLAS kernel,
# the thread count, even with the batch an image came in.
#
# minisg therefore ends every forward convolution with one more step
# (`minisg/kernels/cpu_ties.py`): it finds the output positions whose input patches are
# identical and copies the first one's output over the others. Identical patches are found
# in three cheap passes of the same idea — number the distinct pixels (channel vectors),
# then the distinct rows of KW pixels, then the distinct stacks of KH rows — with a hash
# table whose every match is checked value by value. Below, conv2 of 8 digits in float64
# with Winograd (the algorithm whose rounding differs most), before and after that step.

# %%
from minisg import methods  # noqa: E402
from minisg.kernels import cpu_ties, cpu_winograd  # noqa: E402

with minisg.no_grad():
    pool1_out = model.split("pool1")[0](Tensor(sample[:8])).numpy().astype(np.float64)
w2 = model["conv2"].weight.numpy().astype(np.float64)
b2 = model["conv2"].bias.numpy().astype(np.float64)[None, :, None, None]
conv2_rounded = cpu_winograd.conv(pool1_out, w2, (2, 2))          # no tie step
conv2_exact = cpu_ties.equalise(pool1_out, conv2_rounded.copy(), (5, 5), (1, 1), (2, 2))
for label, conv2_out in (("Winograd alone", conv2_rounded), ("with the tie step", conv2_exact)):
    print(f"pool2 windows that tie, {label:18s}: {100 * tie_fraction(np.maximum(conv2_out + b2, 0)):5.1f}%")
print(f"largest change made by the tie step: {np.abs(conv2_exact - conv2_rounded).max():.1e} "
      f"(of values up to {np.abs(conv2_exact).max():.1f})")


def vanilla_without_tie_step(images):
    """The vanilla gradient as it would be if convolutions skipped the tie step."""
    original = cpu_ties.equalise
    cpu_ties.equalise = lambda x, y, *geometry: y
    try:
        return methods.vanilla_gradient(model, images)
    finally:
        cpu_ties.equalise = original


batch_maps = methods.vanilla_gradient(model, sample[:8])
rounded_maps = vanilla_without_tie_step(sample[:8])
alone_maps = np.concatenate([vanilla_without_tie_step(sample[i:i + 1]) for i in range(8)])
peaks = np.abs(batch_maps).reshape(8, -1).max(axis=1)


def share_of_peak(a, b):
    return float((np.abs(a - b).reshape(8, -1).max(axis=1) / peaks).max())


print(f"vanilla maps (float32) without the tie step: up to {100 * share_of_peak(rounded_maps, batch_maps):.0f}% "
      f"of the peak away from minisg's; one image alone vs in a batch of 8: "
      f"{100 * share_of_peak(alone_maps, rounded_maps):.0f}% apart")
worst = int(np.argmax(np.abs(rounded_maps - batch_maps).reshape(8, -1).max(axis=1) / peaks))
figure = Figure(figsize=(9, 2.6), layout="constrained")
panels = [(sample[worst, 0], "test digit", "gray", None, None),
          (batch_maps[worst, 0], "vanilla gradient, exact ties\n(minisg; equals PyTorch)", "RdBu_r", peaks[worst],
           r"$\partial S_c / \partial x_i$"),
          (rounded_maps[worst, 0], "without the tie step:\nties broken by rounding", "RdBu_r", peaks[worst],
           r"$\partial S_c / \partial x_i$"),
          (rounded_maps[worst, 0] - batch_maps[worst, 0],
           f"difference (its own scale:\nup to {100 * share_of_peak(rounded_maps, batch_maps):.0f}% of the peak)",
           "RdBu_r", np.abs(rounded_maps[worst, 0] - batch_maps[worst, 0]).max(), "rounded - exact")]
for index, (image, title, cmap, scale, label) in enumerate(panels):
    ax = figure.add_subplot(1, 4, index + 1)
    shown = ax.imshow(image, cmap=cmap, vmin=None if scale is None else -scale, vmax=scale)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    if scale is not None:
        viz.colorbar(figure, shown, ax, label)
lesson.save(figure, "02_ties.png")

# %% [markdown]
# With the step, the maps equal PyTorch's (Captum's `Saliency`) on the same weights to
# rounding (`tests/test_ties.py`: 1e-6 of the peak in float32, 1e-12 in float64), and
# equal each other across BLAS kernels, thread counts and batches. The step settles exact
# ties only. Two window values that differ by less than float32's rounding are ordered by
# each library's own rounding. On 400 test digits, one float32 vanilla map (and 8 of the
# Integrated Gradients maps with 8 steps) differs from PyTorch's by more than 1e-6 of its
# peak, by up to 2.4%. In float64 all 400 agree to 1e-15. Against float64, PyTorch's float32
# IG maps stray on 6 of those 8 digits and minisg's on 2: neither library is wrong there.
#
# Its cost is small next
# to the convolution: one pass over the input to number its pixels, and on images with
# repeats (a black background) two short passes over the patches — `minisg bench
# --breakdown` lists it as `kernel equalise`.
#
# ## 4. The model's first layer, seen through im2col
#
# For the trained network, im2col of a $28\times28$ digit with a $5\times5$ kernel is a
# $25 \times 784$ matrix: column $i\cdot28+j$ is the $5\times5$ patch centred on pixel $(i, j)$.
# conv1's 32 filters form a $32\times25$ matrix, and their product gives the 32 feature maps.
# We check that this NumPy product matches minisg's `F.conv2d` on the trained weights.

# %%
digit = test_x[:1]
w1 = model["conv1"].weight.numpy()
b1 = model["conv1"].bias.numpy()
cols1, _ = im2col(digit, (5, 5), (1, 1), (2, 2))
maps_numpy = (w1.reshape(32, 25) @ cols1[0]).reshape(32, 28, 28) + b1[:, None, None]
with minisg.no_grad():
    maps_minisg = model["conv1"](Tensor(digit)).numpy()[0]
print(f"conv1 of test digit 0 (label {test_y[0]}): im2col matrix {cols1[0].shape}, "
      f"max |numpy - minisg| = {np.abs(maps_numpy - maps_minisg).max():.1e} (float32)")
relu_maps = np.maximum(maps_numpy, 0)
pooled_maps, _ = max_pool2d_forward_numpy(relu_maps[None], 2)


def mosaic(tiles, columns, gap=1, fill=np.nan):
    """Tile (K, h, w) arrays into one image with `columns` per row."""
    k, h, w = tiles.shape
    rows = -(-k // columns)
    canvas = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap), fill)
    for index, tile in enumerate(tiles):
        r, c = divmod(index, columns)
        canvas[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tile
    return canvas


figure = Figure(figsize=(11, 6.2), layout="constrained")
grid_spec = figure.add_gridspec(2, 4, height_ratios=[1, 1.25])
input_axis = figure.add_subplot(grid_spec[0, 0])
input_axis.imshow(digit[0, 0], cmap="gray", vmin=0, vmax=1)
input_axis.set_title(f"input x (test digit 0, a '{test_y[0]}')", fontsize=8)
ax = figure.add_subplot(grid_spec[0, 1:])
ax.imshow(cols1[0], cmap="gray", aspect="auto", interpolation="nearest", vmin=0, vmax=1)
ax.set_title("im2col(x): 25 rows (a, b) x 784 columns (i*28 + j); column = the 5x5 patch at pixel (i, j)", fontsize=8)
ax.set_xlabel("output position i*28 + j")
ax.set_ylabel("a*5 + b")
filters_axis = figure.add_subplot(grid_spec[1, 0])
scale = np.abs(w1).max()
shown = filters_axis.imshow(mosaic(w1[:, 0], 8), cmap="RdBu_r", vmin=-scale, vmax=scale, interpolation="nearest")
filters_axis.set_title("conv1's 32 trained 5x5 filters\n(rows of W_mat; red +, blue -)", fontsize=8)
viz.colorbar(figure, shown, filters_axis, "filter weight", location="bottom")
top = relu_maps[:8].max()                   # one scale for both panels: pooling keeps the largest values
maps_axis = figure.add_subplot(grid_spec[1, 1:3])
shown = maps_axis.imshow(mosaic(relu_maps[:8], 4), cmap="magma", vmin=0, vmax=top, interpolation="nearest")
maps_axis.set_title("relu(W_mat @ im2col(x) + b): feature maps of filters 0-7 (28x28)", fontsize=8)
pooled_axis = figure.add_subplot(grid_spec[1, 3])
pooled_axis.imshow(mosaic(pooled_maps[0, :8], 2), cmap="magma", vmin=0, vmax=top, interpolation="nearest")
pooled_axis.set_title("after 2x2 max-pool (14x14)", fontsize=8)
viz.colorbar(figure, shown, [maps_axis, pooled_axis], "activation after ReLU (both panels)")
for axis in (input_axis, filters_axis, maps_axis, pooled_axis):
    axis.set_xticks([])
    axis.set_yticks([])
lesson.save(figure, "02_im2col.png")

# %% [markdown]
# ## 5. Reference → NumPy → Numba, timed
#
# Same computation, three implementations, on the model's shapes (float32):
#
# - **reference**: Python loops, a NumPy call per window — readable, very slow;
# - **NumPy**: im2col + matmul above (max-pool by reshaping); the input gradient is your
#   exercise 02.2 and the pool backward your 02.3, timed only once they are solved;
# - **Numba**: `minisg/kernels/cpu_im2col.py`, `cpu_winograd.py`, `cpu_pool.py` (chosen in
#   `cpu.py`) — compiled parallel loops for the data movement, BLAS for the arithmetic, chunked so the column matrices stay in cache, and (in
#   float64 only: its rounding costs float32 too much accuracy) a Winograd transform for the
#   stride-1 $5\times5$ convolutions with many channels; then the tie step (section 3).
#
# Times are milliseconds **per image**, the minimum over repeats (the reference runs on one
# image; the others on a batch). This machine's cores are shared with other jobs, so the
# numbers are noisy — compare orders of magnitude, and re-run to see the spread.

# %%
def exercise_file():
    """Your ex02_cnn_layers.py: beside this lesson (lessons/exercises/), else in the working
    directory (where `minisg exercises 02` copies the stubs), else the untouched stub that
    comes with minisg (minisg.files.exercise_stubs())."""
    for folder in (lesson.folder / "exercises", Path.cwd(), files.exercise_stubs()):
        if (folder / "ex02_cnn_layers.py").is_file():
            return folder / "ex02_cnn_layers.py"
    return lesson.folder / "exercises" / "ex02_cnn_layers.py"   # missing: the import below says so


def load_exercise_module():
    path = exercise_file()
    spec = importlib.util.spec_from_file_location("lesson02_student_ex02", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def student_versions():
    """Your exercise solutions, if they run and match the reference; else None with a reason."""
    found = {}
    try:
        exercise = load_exercise_module()
    except Exception as exc:  # a half-written file must not stop the lesson
        return {"bwd_in": None, "pool bwd": None}, f"could not import {exercise_file()} ({exc})"
    small = np.random.default_rng(5)
    x, w = small.standard_normal((2, 3, 6, 6)), small.standard_normal((4, 3, 3, 3))
    gy = small.standard_normal((2, 4, 6, 6))
    tries = {
        "bwd_in": (lambda: exercise.conv2d_backward_input(gy, w, (6, 6), (1, 1), (1, 1)),
                   reference.conv2d_backward_input(gy, w, (6, 6), (1, 1), (1, 1))),
        "pool bwd": (lambda: exercise.max_pool2d_backward(x, gy[:, :3, :3, :3], (2, 2), (2, 2)),
                     reference.max_pool2d_scatter(gy[:, :3, :3, :3],
                                                  reference.max_pool2d_forward(x, (2, 2), (2, 2))[1], (6, 6))),
    }
    notes = []
    for key, (attempt, expected) in tries.items():
        try:
            ok = np.allclose(attempt(), expected)
        except NotImplementedError:
            ok, why = False, "not solved yet"
        except Exception as exc:
            ok, why = False, f"raised {type(exc).__name__}"
        else:
            why = "does not match the reference yet"
        found[key] = exercise if ok else None
        if not ok:
            notes.append(f"{key}: {why}")
    return found, "; ".join(notes)


def best_ms(function, repeats, sync=lambda: None, warmup=2):
    """The fastest of `repeats` calls of function() (each followed by sync()), in milliseconds."""
    def call():
        function()
        sync()                                     # a GPU runs asynchronously: wait for it

    for _ in range(warmup):                        # JIT compilation, thread pools, caches
        call()
    return 1e3 * min(timeit.repeat(call, number=1, repeat=repeats))


batch = 8 if lesson.quick else 50
repeats = 3 if lesson.quick else 10
ref_repeats = 1 if lesson.quick else 2
data_rng = np.random.default_rng(1)
shapes = {"conv1": ((batch, 1, 28, 28), (32, 1, 5, 5)), "conv2": ((batch, 32, 14, 14), (64, 32, 5, 5))}
arrays = {}
for name, (xs, ws) in shapes.items():
    arrays[name] = (data_rng.standard_normal(xs).astype(np.float32), data_rng.standard_normal(ws).astype(np.float32),
                    data_rng.standard_normal((xs[0], ws[0]) + xs[2:]).astype(np.float32))
pool_x = data_rng.standard_normal((batch, 32, 28, 28)).astype(np.float32)
pool_gy = data_rng.standard_normal((batch, 32, 14, 14)).astype(np.float32)
S, P = (1, 1), (2, 2)
solved, missing = student_versions()


def workloads(k, xp=np):
    """{kernel name: a function that runs it on the batch} for a kernel module k (cpu or gpu)."""
    x1, w1_, _ = (xp.asarray(a) for a in arrays["conv1"])
    x2, w2_, gy2 = (xp.asarray(a) for a in arrays["conv2"])
    px, pgy = xp.asarray(pool_x), xp.asarray(pool_gy)
    _, parg = k.max_pool2d_forward(px, (2, 2), (2, 2))
    return {
        "conv1 fwd": lambda: k.conv2d_forward(x1, w1_, S, P),
        "conv2 fwd": lambda: k.conv2d_forward(x2, w2_, S, P),
        "conv2 bwd_in": lambda: k.conv2d_backward_input(gy2, w2_, (14, 14), S, P),
        "conv2 bwd_w": lambda: k.conv2d_backward_weight(x2, gy2, (5, 5), S, P),
        "pool1 fwd": lambda: k.max_pool2d_forward(px, (2, 2), (2, 2)),
        "pool1 bwd": lambda: k.max_pool2d_scatter(pgy, parg, (28, 28)),
    }


x1, w1r, _ = arrays["conv1"]
x2, w2r, gy2 = arrays["conv2"]
_, ref_arg = reference.max_pool2d_forward(pool_x[:1], (2, 2), (2, 2))
reference_jobs = {
    "conv1 fwd": lambda: reference.conv2d_forward(x1[:1], w1r, S, P),
    "conv2 fwd": lambda: reference.conv2d_forward(x2[:1], w2r, S, P),
    "conv2 bwd_in": lambda: reference.conv2d_backward_input(gy2[:1], w2r, (14, 14), S, P),
    "conv2 bwd_w": lambda: reference.conv2d_backward_weight(x2[:1], gy2[:1], (5, 5), S, P),
    "pool1 fwd": lambda: reference.max_pool2d_forward(pool_x[:1], (2, 2), (2, 2)),
    "pool1 bwd": lambda: reference.max_pool2d_scatter(pool_gy[:1], ref_arg, (28, 28)),
}
numpy_jobs = {
    "conv1 fwd": lambda: conv2d_forward_numpy(x1, w1r, S, P),
    "conv2 fwd": lambda: conv2d_forward_numpy(x2, w2r, S, P),
    "conv2 bwd_in": (lambda: solved["bwd_in"].conv2d_backward_input(gy2, w2r, (14, 14), S, P)) if solved["bwd_in"] else None,
    "conv2 bwd_w": lambda: conv2d_backward_weight_numpy(x2, gy2, (5, 5), S, P),
    "pool1 fwd": lambda: max_pool2d_forward_numpy(pool_x, 2),
    "pool1 bwd": ((lambda: solved["pool bwd"].max_pool2d_backward(pool_x, pool_gy, (2, 2), (2, 2)))
                  if solved["pool bwd"] else None),
}
timings = {"reference": {}, "numpy": {}, "numba": {}}
for name, job in reference_jobs.items():
    timings["reference"][name] = best_ms(job, ref_repeats, warmup=0 if lesson.quick else 1)
for name, job in numpy_jobs.items():
    timings["numpy"][name] = best_ms(job, repeats) / batch if job is not None else np.nan
for name, job in workloads(numba_kernels).items():
    timings["numba"][name] = best_ms(job, repeats) / batch

gpu_note = None
if minisg.gpu_available():
    import cupy
    from minisg.kernels import gpu as gpu_kernels
    timings["gpu (cupy)"] = {name: best_ms(job, repeats, cupy.cuda.Device().synchronize) / batch
                             for name, job in workloads(gpu_kernels, cupy).items()}
else:
    gpu_note = "GPU row skipped: no CuPy / CUDA GPU on this machine (install minisg[gpu] on one to compare)"

columns = list(timings)
print(f"ms per image, float32, min of {repeats} repeats (reference: 1 image, min of {ref_repeats}); "
      f"numpy/numba/gpu on a batch of {batch}. Shared, noisy CPU: compare orders of magnitude.")
print(f"{'kernel':14s}" + "".join(f"{c:>13s}" for c in columns) + f"{'ref/numba':>11s}{'numpy/numba':>13s}")
for name in reference_jobs:
    row = "".join(f"{timings[c][name]:13.3f}" if np.isfinite(timings[c][name]) else f"{'(exercise)':>13s}" for c in columns)
    ratio_ref = timings["reference"][name] / timings["numba"][name]
    ratio_np = timings["numpy"][name] / timings["numba"][name]
    print(f"{name:14s}{row}{ratio_ref:10.0f}x" + (f"{ratio_np:12.1f}x" if np.isfinite(ratio_np) else f"{'-':>13s}"))
if missing:
    print(f"(exercise) rows: your ex02 solutions are timed once they pass — {missing}")
if gpu_note:
    print(gpu_note)

figure = Figure(figsize=(8, 4.2))
ax = figure.subplots()
names = list(reference_jobs)
height = 0.8 / len(columns)
colour_of = {"reference": "tab:gray", "numpy": "tab:blue", "numba": "tab:green", "gpu (cupy)": "tab:purple"}
for index, column in enumerate(columns):
    values = [timings[column][name] for name in names]
    positions = np.arange(len(names)) + index * height
    ax.barh(positions, [v if np.isfinite(v) else 0 for v in values], height, color=colour_of[column], label=column)
    for position, value in zip(positions, values):
        if not np.isfinite(value):
            ax.text(0.01, position, f"{column}: exercise 02.2/02.3 not solved yet", va="center", fontsize=6,
                    transform=ax.get_yaxis_transform())
ax.set_xscale("log")
ax.set_yticks(np.arange(len(names)) + 0.4 - height / 2)
ax.set_yticklabels(names, fontsize=8)
ax.invert_yaxis()
ax.set_xlabel("milliseconds per image (log scale; min of repeats, shared CPU)")
ax.set_title(f"The same kernels three ways (float32, batch {batch})"
             + ("" if gpu_note is None else "; GPU: not available"), fontsize=9)
ax.legend(fontsize=8)
figure.tight_layout()
lesson.save(figure, "02_timing.png")

# %% [markdown]
# What to read in the table (your numbers will differ): the loops are hundreds to thousands
# of times slower than the compiled kernels — two full runs on the 2-core development machine
# measured 273-285x (conv2's weight gradient) to 4,374-6,124x (conv1). im2col + BLAS recovers
# almost all of that: for conv1 (one input channel, a small column matrix) NumPy came within
# 0.9-1.3x of the Numba kernel, for conv2 the Numba kernels were 1.1-1.6x (forward) to
# 3.1-3.6x (weight gradient) faster. The kernels build the column matrix a few images at a
# time, where NumPy's column matrix of a whole batch — 31 MB for conv2 at batch 50, 25 copies
# of a 32-channel input — has to travel through a shared cache and memory bus; and they share
# a batch's chunks between the cores (in float64 they also use the Winograd transform for these
# stride-1 5x5 layers). Pooling is pure data movement: the NumPy version pays for its reshapes
# and copies (19-33x), the compiled loop — unrolled for the 2x2 window — touches every element once.
#
# ## Exercises
#
# 1. The im2col matrix of conv2 for one image is $(32\cdot25) \times 196$. How many bytes is
#    that in float32 for a batch of 50? Why does `kernels/cpu_im2col.py` cut the batch into chunks?
# 2. Show that `col2im` is the adjoint (transpose) of `im2col`: $\langle \text{im2col}(x), C\rangle =
#    \langle x, \text{col2im}(C)\rangle$. Why does that make it the right backward pass?
# 3. With the "last maximum" tie rule, which pixels of the $4\times4$ example would receive
#    the gradient? For a digit, would the sensitivity map change in the background, on the
#    stroke, or both?
# 4. A $3\times3$ max-pool with stride 2 has overlapping windows: can one input element win
#    two windows? What must the backward pass do then?
#
# Graded exercises in `lessons/exercises/ex02_cnn_layers.py`:
#
# - **02.1** `col2im`, the adjoint of im2col;
# - **02.2** `conv2d_backward_input` via col2im;
# - **02.3** `max_pool2d_backward`, first maximum on ties, overlapping windows added up.
#
# Grade them with `minisg check 02` (or `python -m minisg check 02`); then re-run this lesson
# to see your NumPy versions in the timing table.

# %%
lesson.finish()
