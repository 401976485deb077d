# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 13 — Penalising the input gradient while training: do the maps sharpen?
#
# SmoothGrad cleans up a noisy sensitivity map *after* training, by averaging over noisy
# copies of the input. Its §4 ("Conclusion and future work") suggests attacking the noise at
# its source instead: train the network so that its gradients are well behaved, for instance
# by penalising "the size of partial derivatives" or "differences in partial derivatives of
# the class score with respect to neighboring pixels". Lesson 09 tried the cheapest
# relative of that idea, training with input noise. Here we try the two penalties themselves.
#
# For a batch of $B$ images $x_b$ with labels $y_b$ and logits $S(x)$, write the map of the
# true class as
#
# $$G_b = \frac{\partial S_{y_b}(x_b)}{\partial x_b} \in \mathbb R^{28 \times 28}.$$
#
# The two penalties (`minisg.models.penalties`) are
#
# $$P_{\text{grad}} = \frac1B \sum_b \sum_{i,j} G_b[i,j]^2, \qquad
#   P_{\text{smooth}} = \frac1B \sum_b \Big(\sum_{i,j} \big(G_b[i{+}1,j]-G_b[i,j]\big)^2
#                                  + \sum_{i,j} \big(G_b[i,j{+}1]-G_b[i,j]\big)^2\Big),$$
#
# and training minimises $\mathrm{CE} + \lambda P$ for one of them. $P_{\text{grad}}$ is a close
# relative of Drucker and LeCun's "double backpropagation" (1992), which penalised the input
# gradient of the loss rather than of the class score. $P_{\text{smooth}}$ is a squared total
# variation of the map: it does not care how large $G$ is, only how much it jumps from one
# pixel to the next.
#
# **Double backprop.** $P$ is a function of $G$, and $G$ is itself the result of a backward
# pass. To train we need $\partial P / \partial \theta$ for the weights $\theta$, i.e. we must
# differentiate *through the backward pass*. minisg does this the way PyTorch does: the first
# backward pass runs with `create_graph=True`, so every operation it performs (the transposed
# convolutions, the ReLU masks, the max-pool routing) is recorded as an ordinary graph, and a
# second `loss.backward()` walks back through both the forward and the first backward pass.
# For a ReLU network this is well defined even though ReLU'' = 0 almost everywhere: with the
# ReLU and max-pool switches held fixed, $G$ is a sum over paths of products of weights, a
# polynomial in $\theta$, so $P$ has a perfectly good gradient with respect to $\theta$. (With
# respect to $x$ it is zero almost everywhere: for fixed weights $G$ is piecewise constant in $x$.)
#
# We compare four shipped networks of the same architecture: `mnist_cnn` (plain),
# `mnist_cnn_noise` (input noise, lesson 09), `mnist_cnn_gradpen` ($P_{\text{grad}}$,
# $\lambda = 0.01$) and `mnist_cnn_smoothpen` ($P_{\text{smooth}}$, $\lambda = 0.003$).
#
# Run: `python lessons/13_future_work.py [--quick]`; figures go to `lessons/out/13_*.png`. A full
# run takes about 60 s on two CPU cores (see the lessons index), `--quick` a few seconds.

# %%
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

# In a source checkout, use the minisg beside the lessons (installed or not); anywhere else the installed one.
REPO = Path(__file__).resolve().parents[1] if "__file__" in globals() else Path.cwd().parent  # Jupyter: no __file__
if (REPO / "minisg" / "__init__.py").is_file():
    sys.path.insert(0, str(REPO))

from matplotlib.figure import Figure  # noqa: E402

from minisg import Tensor, data, grad, models, nn, viz  # noqa: E402
from minisg.evaluation import report as evaluate  # noqa: E402
from minisg.evaluation import metrics  # noqa: E402
from minisg.models import penalties  # noqa: E402
from minisg import functional as F  # noqa: E402
from minisg.optim import Adam  # noqa: E402
from minisg.classroom.lesson import Count, setup  # noqa: E402

# --quick for a fast pass, --digits N, --out DIR for the figures (minisg/classroom/lesson.py)
lesson = setup("13", "training with input-gradient penalties", quick="two digits, small n, few steps (seconds)",
               options={"--digits": Count("test digits in the table", full=100, quick=2)})

DIGITS = lesson.digits                          # the digits of `minisg evaluate` (classes 0-9 in turn)
SHOWN = min(DIGITS, 6)                          # of which the first SHOWN go into the figure
# evaluate's settings: SmoothGrad n = 50 at noise level 0.15 (the paper's), deletion in 50 steps
SETTINGS = dataclasses.replace(evaluate.QUICK if lesson.quick else evaluate.FULL, digits=DIGITS)
TIMED_STEPS = 1 if lesson.quick else 12         # training steps timed per configuration
MODEL_NAMES = ["mnist_cnn", "mnist_cnn_noise", "mnist_cnn_gradpen", "mnist_cnn_smoothpen"]
SHORT = {"mnist_cnn": "plain", "mnist_cnn_noise": "input noise", "mnist_cnn_gradpen": "grad penalty",
         "mnist_cnn_smoothpen": "smooth penalty"}
MAP_METHODS = {"vanilla": "gradient", "smoothgrad": "SmoothGrad"}


# %% [markdown]
# ## 1. Double backprop, checked by finite differences
#
# Before trusting the trained networks, check the machinery. A tiny float64 network (one
# 3x3 conv with two channels, ReLU, max-pool, a linear layer) on three random 4x4 images:
# we compute $\partial(\mathrm{CE} + 0.3 P_{\text{grad}} + 0.2 P_{\text{smooth}})/\partial W$
# for the conv weight $W$ by double backprop, and by central differences
# $\big(L(W + h e_k) - L(W - h e_k)\big) / 2h$ for each of its 18 entries. To see that the
# second pass matters, we also compute what one would get by treating $G$ as a constant (as
# if the penalty were just a number added to the loss): then the penalty contributes nothing
# to the gradient, and the result is just the cross-entropy's gradient.

# %%
def tiny_network(rng):
    return nn.Sequential(
        ("conv1", nn.Conv2d(1, 2, 3, padding=1, rng=rng, dtype=np.float64)),
        ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc", nn.Linear(8, 3, rng=rng, dtype=np.float64)),
    )


rng = np.random.default_rng(0)
tiny = tiny_network(rng)
tiny_images = rng.uniform(0.05, 1.0, (3, 1, 4, 4))
tiny_labels = np.array([0, 2, 1])
GRAD_WEIGHT, SMOOTH_WEIGHT = 0.3, 0.2
weight = tiny["conv1"].weight


def tiny_loss():
    loss, _, _ = penalties.penalised_loss(tiny, tiny_images, tiny_labels, GRAD_WEIGHT, SMOOTH_WEIGHT)
    return loss


(double_backprop,) = grad(tiny_loss(), [weight])
double_backprop = double_backprop.numpy()

h = 1e-6
finite_differences = np.zeros_like(double_backprop)
for k in np.ndindex(weight.shape):
    original = weight.data[k]
    weight.data[k] = original + h
    plus = tiny_loss().item()
    weight.data[k] = original - h
    minus = tiny_loss().item()
    weight.data[k] = original
    finite_differences[k] = (plus - minus) / (2 * h)

# "G as a constant": the penalty's value is added, but its graph is cut (no second pass)
x_tiny = Tensor(tiny_images, requires_grad=True)
logits = tiny(x_tiny)
G = penalties.true_class_input_gradient(logits, x_tiny, tiny_labels).detach()
first_order_loss = (F.cross_entropy(logits, tiny_labels) + penalties.gradient_penalty(G) * GRAD_WEIGHT
                    + penalties.smoothness_penalty(G) * SMOOTH_WEIGHT)
(first_order,) = grad(first_order_loss, [weight])
first_order = first_order.numpy()

print(f"penalised loss of the tiny network: {tiny_loss().item():.6f}; "
      f"largest |dL/dW| entry {np.abs(finite_differences).max():.4f}")
print(f"double backprop   vs finite differences: max |difference| = "
      f"{np.abs(double_backprop - finite_differences).max():.2e}")
print(f"G held constant   vs finite differences: max |difference| = "
      f"{np.abs(first_order - finite_differences).max():.2e}  (the penalty's share of the gradient is lost)")

# %% [markdown]
# The first difference is at the level of finite-difference rounding (about $10^{-10}$ with
# $h = 10^{-6}$ in float64); the second is of the size of the gradient itself. The library's
# own tests run the same check on every weight tensor (`tests/test_penalties.py`).
#
# ## 2. What a training step costs
#
# Plain training is a forward and a backward pass. With a penalty, one step is a forward pass,
# a first backward pass (to the input) that records its own graph, the penalty on its result,
# and a second backward pass through both — and the second pass has to go back through the
# operations of the first. Counting passes, expect about twice the work of a plain step (a
# little less, as the Adam update costs the same either way). We time a few steps of Adam at
# the paper's batch size of 50 on this CPU, for plain training and with each penalty (the
# same batches, the configurations interleaved so that a busy machine slows all three alike),
# and compare with the GPU numbers the shipped checkpoints recorded when they were trained.

# %%
train_images, train_labels = data.load_mnist("train")
batch_rng = np.random.default_rng(13)
timed_batches = [batch_rng.choice(len(train_images), 50, replace=False) for _ in range(TIMED_STEPS + 1)]
configurations = {"plain": (0.0, 0.0), "gradient penalty 0.01": (0.01, 0.0),
                  "smoothness penalty 0.003": (0.0, 0.003)}
trainers = {}
for name in configurations:
    network = models.mnist_cnn(seed=0).train()
    trainers[name] = (network, Adam(network.parameters(), lr=1e-4))


def training_step(name, indices):
    network, optimizer = trainers[name]
    grad_weight, smooth_weight = configurations[name]
    started = time.perf_counter()
    loss, _, _ = penalties.penalised_loss(network, train_images[indices], train_labels[indices],
                                          grad_weight, smooth_weight)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return time.perf_counter() - started


step_seconds = {name: [] for name in configurations}
for step, indices in enumerate(timed_batches):
    for name in configurations:
        seconds = training_step(name, indices)
        if step > 0:  # the first step compiles kernels and allocates buffers: not timed
            step_seconds[name].append(seconds)

plain_step = np.median(step_seconds["plain"])
for name, seconds in step_seconds.items():
    median = np.median(seconds)
    print(f"CPU, batch 50, {name:<25} median {1000 * median:7.1f} ms/step over {len(seconds)} steps "
          f"({50 / median:6.0f} images/s), {median / plain_step:.2f}x plain")

shipped = {name: models.load(name) for name in MODEL_NAMES}
gpu_plain = shipped["mnist_cnn"].meta["images_per_second"]
for name in ("mnist_cnn_gradpen", "mnist_cnn_smoothpen"):
    gpu = shipped[name].meta["images_per_second"]
    print(f"GPU (recorded when {name} was trained): {gpu:.0f} vs {gpu_plain:.0f} images/s plain, "
          f"{gpu_plain / gpu:.2f}x per step")

# %% [markdown]
# On the GPU the penalty cost only about 1.36x per step: at batch 50 the small kernels of this
# network do not fill the GPU, and each step's time is dominated by launching kernels rather
# than by arithmetic, so extra work is nearly free. The CPU has no such slack and pays for the
# extra arithmetic: on two cores we measured 1.6x to 1.8x per step in repeated runs, as the
# count of passes predicts. (With a second numerical job competing for the same two cores we
# saw 2.6x to 3.7x: timings on a busy machine measure the machine.)
# That is the price of the idea. It is paid once, at training time; SmoothGrad's price
# (n = 50 gradients instead of one) is paid again for every map.

# %% [markdown]
# ## 3. The four networks
#
# How strong should the penalty be? $\lambda$ only means something next to the sizes of the
# terms it balances, so we first measure them on the trained plain network, on training
# batches in training mode (dropout on), exactly as the training loop sees them.

# %%
plain = shipped["mnist_cnn"]
plain.train()
measured = []
for indices in timed_batches[:1 if lesson.quick else 4]:
    loss, _, parts = penalties.penalised_loss(plain, train_images[indices], train_labels[indices], 1.0, 1.0)
    cross_entropy = loss.item() - parts["grad_penalty"] - parts["smooth_penalty"]
    measured.append((cross_entropy, parts["grad_penalty"], parts["smooth_penalty"]))
plain.eval()
cross_entropy, p_grad, p_smooth = np.mean(measured, axis=0)
print(f"plain network, {len(measured)} training batch(es) of 50, dropout on: cross-entropy {cross_entropy:.3f}, "
      f"P_grad {p_grad:.0f}, P_smooth {p_smooth:.0f}")
print(f"  weighted: 0.01 x P_grad = {0.01 * p_grad:.2f}, 0.003 x P_smooth = {0.003 * p_smooth:.2f}")

# %% [markdown]
# On the trained plain network $P_{\text{grad}}$ is in the hundreds and $P_{\text{smooth}}$
# about twice as large (the shipped weights were chosen from estimates of about 180 and 420),
# while the cross-entropy is far below 1. So $\lambda = 0.01$ and $0.003$ make the penalty
# comparable to or larger than the loss it is added to: strong enough to change what the
# network learns. In 5-epoch trials, weights 0.001 / 0.0003 reached 98.60% / 98.59% test
# accuracy and 0.01 / 0.003 reached 98.48% / 98.48%; the stronger ones were then trained for
# 10 epochs (11,000 steps), giving the two checkpoints below. The plain and noisy networks
# had 20,000 steps, so the four are not quite on an equal footing.
#
# Next, each network's penalties on our test digits in eval mode (no dropout), computed from
# exactly the maps $G$ that the "gradient" columns below show. The last column,
# $P_{\text{smooth}} / P_{\text{grad}}$, is a scale-free roughness: about 4 for white noise
# (the difference of two independent pixels has twice their variance, and each pixel has
# about two neighbour pairs), near 0 for a map that varies slowly from pixel to pixel.

# %%
digits = evaluate.digit_set(DIGITS)
for network in shipped.values():
    evaluate.warm_up(network, digits.images)

maps = {}
seconds_per_model = {}
for name, network in shipped.items():
    for method in MAP_METHODS:
        maps[(name, method)], seconds = evaluate.compute_maps(network, method, digits.images, digits.labels,
                                                              SETTINGS, evaluate.DIGIT_CAM_LAYER)
        seconds_per_model[(name, method)] = seconds

print(f"{'network':<22}{'train steps':>12}{'test acc':>10}{'P_grad':>16}{'P_smooth':>16}{'roughness':>11}")
penalty_values = {}
for name, network in shipped.items():
    G = Tensor(maps[(name, "vanilla")].astype(np.float64))
    p_grad, p_smooth = penalties.gradient_penalty(G).item(), penalties.smoothness_penalty(G).item()
    penalty_values[name] = (p_grad, p_smooth)
    meta = network.meta
    print(f"{name:<22}{meta['progress']['step']:>12,}{100 * meta['test_accuracy']:>9.2f}%"
          f"{p_grad:>16.2f}{p_smooth:>16.2f}{p_smooth / p_grad:>11.2f}")
plain_grad, plain_smooth = penalty_values["mnist_cnn"]
print(f"relative to the plain network: grad penalty shrinks P_grad "
      f"{plain_grad / penalty_values['mnist_cnn_gradpen'][0]:.1f}x, "
      f"smooth penalty shrinks P_smooth {plain_smooth / penalty_values['mnist_cnn_smoothpen'][1]:.1f}x")
print(f"maps: SmoothGrad n = {SETTINGS.smoothgrad_n}, noise level {SETTINGS.smoothgrad_noise}; "
      f"{sum(seconds_per_model.values()):.0f} s for {len(maps)} sets of {DIGITS} maps")

# %% [markdown]
# ## 4. The maps side by side
#
# Rows are test digits, columns network × method; each map is shown as the paper shows maps:
# $|G|$, scaled per image with the top 1% saturated. The per-image scaling matters here: the
# gradient penalty shrinks $G$ as a whole, and a uniformly smaller map looks *identical* after
# scaling. Only a change of *shape* can show in the figure — and in every metric below, all of
# which are invariant to the map's scale.

# %%
columns = {f"{SHORT[name]}\n{MAP_METHODS[method]}": viz.to_grayscale(maps[(name, method)][:SHOWN])
           for name in MODEL_NAMES for method in MAP_METHODS}
lesson.figure_grid(digits.images[:SHOWN], columns, "13_maps.png", cell_size=1.45,
                   row_labels=[f"class {c}" for c in digits.labels[:SHOWN]],
                   colorbars="|map| / its 99th percentile",
                   title=f"|map| of the true class, 99th-percentile cap; SmoothGrad n = {SETTINGS.smoothgrad_n}, "
                         f"{viz.noise_label(SETTINGS.smoothgrad_noise)}")

# %% [markdown]
# ## 5. The numbers: localisation, visual noise, faithfulness
#
# The same scores as lesson 12, from `evaluate.digit_scores`, on the 100 test digits of
# `minisg evaluate` (the first ten of each class, classes taken in turn), mean ± standard
# error over digits:
#
# - **localisation** against the digit's ink (pixels > 0.1): *pointing* — does the map's
#   maximum lie on the ink itself (tolerance 0 px, `evaluate.FULL.digit_pointing_tolerance`;
#   tied maxima share the hit); *mass* — share of the map's positive part on the ink (*mass abs*:
#   of $|G|$); *rank acc* — share of the top-$K$ pixels on the ink, $K$ = ink pixels;
# - **visual noise** of the displayed map: total variation (TV) and the share of spectral
#   energy above 0.25 cycles/pixel (HF energy) — both lower = smoother;
# - **faithfulness**: area under the deletion curve (black out pixels in order of the signed
#   map, lower = the map finds what the network uses) and the insertion curve (higher = better).
#
# One caution for reading across networks: deletion and insertion measure the *network's*
# probabilities too. A network that is less confident, or that reacts differently to
# half-erased digits, gets different areas with the same map quality. Within one network,
# gradient vs SmoothGrad is a clean comparison; across networks, the localisation and noise
# columns are the safer ones.

# %%
rows, curves = {}, {}
for name, network in shipped.items():
    for method in MAP_METHODS:
        scores, curves[(name, method)] = evaluate.digit_scores(network, digits, maps[(name, method)], SETTINGS)
        rows[f"{name} × {method}"] = evaluate.summarise(scores)
ink_share = float(digits.masks.mean())
print(f"\n{DIGITS} test digits, true class; ↑ higher is better, ↓ lower is better; chance level of "
      f"mass and rank acc = the ink's share of the image, {ink_share:.3f}\n")
print(evaluate.table_markdown(rows, evaluate.DIGIT_COLUMNS))

# %% [markdown]
# A control for the deletion column: let every network delete pixels in the *same* order, that
# of the plain network's SmoothGrad map. Differences between networks in this row come from the
# networks alone, not from their maps.

# %%
common_order = {}
for name, network in shipped.items():
    fractions, values = metrics.deletion_curve(network, digits.images, maps[("mnist_cnn", "smoothgrad")],
                                               digits.labels, steps=SETTINGS.curve_steps, baseline=0.0)
    common_order[name] = metrics.mean_and_stderr(metrics.area_under_curve(fractions, values))
print("deletion AUC, every network in the plain network's SmoothGrad order: "
      + ", ".join(f"{SHORT[name]} {mean:.3f} ± {stderr:.3f}" for name, (mean, stderr) in common_order.items()))

# %% [markdown]
# The same numbers as bars, with the mean deletion curves:

# %%
panels = [("mass", "mass on ink ↑"), ("pointing", "pointing game ↑"), ("total_variation", "total variation ↓"),
          ("high_frequency", "HF energy ↓"), ("deletion", "deletion AUC ↓")]
figure = Figure(figsize=(13, 7), layout="constrained")
axes = figure.subplots(2, 3).ravel()
SMOOTHGRAD_SETTINGS = f"n = {SETTINGS.smoothgrad_n}, {100 * SETTINGS.smoothgrad_noise:g}% noise"
positions = np.arange(len(MODEL_NAMES))
for axis, (metric, label) in zip(axes, panels):
    for offset, (method, colour) in zip((-0.2, 0.2), zip(MAP_METHODS, ("C0", "C1"))):
        means = [rows[f"{name} × {method}"][metric][0] for name in MODEL_NAMES]
        errors = [rows[f"{name} × {method}"][metric][1] for name in MODEL_NAMES]
        errors = [0 if np.isnan(e) else e for e in errors]
        axis.bar(positions + offset, means, 0.4, yerr=errors, color=colour, capsize=3,
                 label=MAP_METHODS[method] + (f", {SMOOTHGRAD_SETTINGS}" if method == "smoothgrad" else ""))
    axis.set_xticks(positions)
    axis.set_xticklabels([SHORT[name] for name in MODEL_NAMES], fontsize=8)
    axis.set_title(label, fontsize=10)
    axis.grid(axis="y", alpha=0.3)
axes[0].axhline(ink_share, color="gray", linestyle=":", label="mass on ink by chance (the ink's share)")
(common_marks,) = axes[4].plot(positions, [common_order[name][0] for name in MODEL_NAMES], "kx", markersize=9,
                               label="deletion AUC with every network in the plain network's SmoothGrad order")
handles, labels = axes[0].get_legend_handles_labels()                   # the bars and the chance line
figure.legend(handles + [common_marks], labels + [common_marks.get_label()], loc="outside lower center", ncol=2,
              fontsize=8)                                                # below the panels, not on a bar
axis = axes[-1]
for i, name in enumerate(MODEL_NAMES):
    for method, style in zip(MAP_METHODS, ("--", "-")):
        fractions, mean = curves[(name, method)]["deletion"]
        axis.plot(fractions, mean, style, color=f"C{i + 2}", label=f"{SHORT[name]}, {MAP_METHODS[method]}")
axis.set_xlabel("fraction of pixels blacked out (most relevant first)", fontsize=8)
axis.set_ylabel("p(true class), mean", fontsize=8)
axis.set_xlim(0, 0.5)
axis.set_title("deletion curves (first half)", fontsize=10)
axis.legend(fontsize=6)
axis.grid(alpha=0.3)
figure.suptitle(f"Four networks x two methods on {DIGITS} test digits (mean ± standard error)", fontsize=11)
lesson.save(figure, "13_metrics.png")

# %% [markdown]
# ## 6. What we see (numbers from a full run; yours are printed above)
#
# **The penalties did what they were trained to do.** On the test digits the gradient
# penalty made $P_{\text{grad}}$ about 45 times smaller than the plain network's, the
# smoothness penalty made $P_{\text{smooth}}$ about 60 times smaller, and both lowered the
# scale-free roughness $P_{\text{smooth}}/P_{\text{grad}}$: 2.2 for the plain network, 2.0
# with input noise, 1.25 with the gradient penalty, 0.7 with the smoothness penalty. The
# smoothness penalty shrank the gradient as a whole too ($P_{\text{grad}}$ 6.5 instead of 127):
# the cheapest way to make neighbouring derivatives agree is to make them all small.
#
# **Do the maps sharpen? Yes, measurably — with a caveat about what "sharp" looks like.**
#
# - One plain gradient of a penalised network is about as good as 50-sample SmoothGrad on the
#   plain network. Mass on the ink goes from 0.30 (plain) to 0.42 (gradient penalty) and 0.44
#   (smoothness penalty), against 0.43 for the plain network's SmoothGrad (chance: 0.17);
#   rank accuracy from 0.34 to 0.44 / 0.48 (plain SmoothGrad 0.47). The visual noise falls as
#   far or further: total variation 0.194 → 0.131 / 0.114 (plain SmoothGrad 0.132),
#   high-frequency energy 0.58 → 0.34 / 0.20 (plain SmoothGrad 0.33). In the figure the
#   gradient-penalty network's gradient traces the strokes with far less speckle.
# - SmoothGrad still helps on top, by less: the most mass on the ink goes with SmoothGrad on
#   the penalised networks (0.51 and 0.50), and the best rank accuracy, total variation and
#   HF energy belong to the smoothness-penalty network with SmoothGrad (0.53, 0.097, 0.14).
#   SmoothGrad raises mass by 0.13 on the plain network but by 0.09 and 0.06 on the
#   penalised ones — the training did part of its work.
# - "Smooth" is not the same as "sharp". The smoothness penalty's maps are made of soft blobs
#   about a stroke wide; many sit on the strokes, but some sit beside them or in the
#   background (look at the 0 and the 2), and the closed top of the 4 lights up as a filled
#   triangle: regions rather than strokes. It is a low-pass filter learned into the network,
#   and it has the typical look of one. Even the best maps put only about half their
#   positive relevance on the ink.
# - The pointing game (is the single largest value on the ink?) rises from 0.75 for the plain
#   gradient to 0.89–0.96 for everything else; with standard errors of ±0.02–0.03 the other
#   seven rows are within about two standard errors of each other.
# - Faithfulness is mixed, and the control row is needed to read it. The smoothness penalty's
#   plain gradient deletes well (area 0.12, against 0.18 for the plain network's gradient and
#   0.10–0.11 for SmoothGrad on the plain and noise-trained networks); the gradient-penalty
#   network's gradient is no better than the plain one's (0.18), its SmoothGrad worse than the
#   plain network's (0.15 against 0.10), and both penalised networks have lower (worse)
#   insertion areas. But when every network deletes pixels in the same order (the
#   plain network's SmoothGrad map), the penalised networks score 0.20 and 0.17 against the
#   plain one's 0.10: they are simply harder to talk out of their answer by blacking out
#   pixels — unsurprising for networks trained to have small input gradients. With their own
#   maps they do better than with the borrowed order (0.15 < 0.20, 0.11 < 0.17), so their maps
#   do point at what *they* use. Across networks, deletion and insertion areas compare
#   networks as much as maps.
#
# **What it costs.** Accuracy dropped a little (98.86% and 99.05% against 99.20%, though on
# 11,000 steps against 20,000), and each training step cost about 1.7x on this CPU (1.36x on
# the GPU). The penalty has to be chosen before training and changes the network being
# explained — SmoothGrad explains the network you already have. And this is one seed, one
# weight per penalty and 100 digits: a small experiment, enough to say that the paper's
# suggestion works on MNIST, not how far it carries to larger images and networks.
#
# ## Exercises
#
# 1. The gradient penalty makes $G$ smaller but the displayed maps are scaled per image. Show
#    the four networks' gradient maps on one *common* scale (the plain network's 99th
#    percentile). What does the gradient-penalty network's map look like now, and what does
#    that say about what the penalty changed?
# 2. The penalties were computed on the true class's map $G$, and so were all the maps of
#    this lesson. Nothing penalised the maps of the *other* classes. Compute the roughness
#    $P_{\text{smooth}}/P_{\text{grad}}$ of the map of the second most likely class on each
#    network. Did the smoothing carry over?
# 3. Section 1 cut the graph of $G$ with `.detach()`. Name two other ways a training loop can
#    cut it by accident (think of how $G$ is computed). What would such a loop then minimise,
#    and how would you notice from the logged loss terms?
# 4. For a network that is *linear* in $x$ ($S = Wx + b$), write $P_{\text{grad}}$ and
#    $P_{\text{smooth}}$ in terms of $W$. Which familiar regularisers are they? What does that
#    suggest the penalties do to the first conv layer of our network?
# 5. Train your own penalised network for a few hundred steps on a subset
#    (`minisg train --steps 300 --train-subset 5000 --smoothness-penalty 0.03 --out my.npz`) and
#    compare its roughness with a plain network trained the same way. How large must
#    $\lambda$ be before the accuracy drops noticeably?
#
# Central finite differences, the tool of section 1, are graded in lesson 01's exercises
# (exercise 01.3, `minisg check 01`).

# %%
lesson.finish()
