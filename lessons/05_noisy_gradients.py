# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 05 — Why gradients are noisy: derivatives that jump
#
# SmoothGrad's explanation of noisy sensitivity maps (§3, Fig. 2) is that the gradient of a
# ReLU network is not a smooth function of the input: the score $S_c$ is, but its partial
# derivatives **fluctuate sharply at small scales**. The paper shows it by walking from an
# image $x$ to a slightly perturbed copy $x + \varepsilon$,
#
# $$x(t) = x + t\,\varepsilon, \qquad t \in [0, 1], \qquad \varepsilon_i \sim \mathcal N(0,\ 0.01^2),$$
#
# and plotting one pixel's partial derivative along the way, as a fraction of the largest
# entry of the gradient at the same point,
#
# $$r_i(t) = \frac{\partial S_c / \partial x_i\,(x(t))}{\max_j \big|\partial S_c / \partial x_j\,(x(t))\big|} .$$
#
# The final image is indistinguishable from $x$ to a human, yet $r_i(t)$ jumps around. If the
# map is this sensitive to invisible changes, averaging it over a neighbourhood of $x$ —
# SmoothGrad — is a natural fix (lesson 06).
#
# We repeat the experiment on the trained MNIST network (pixels in $[0, 1]$, so
# $\sigma = 0.01$ is 1% of the pixel range; the paper's images were ImageNet photographs).
# Choices made here: the denominator uses $\max_j |\cdot|$ (the magnitude of the largest
# entry), and the class $c$ is the prediction on the clean image, fixed along the path.
#
# Run: `python lessons/05_noisy_gradients.py [--quick]`; figures go to `lessons/out/05_*.png`.

# %%
import sys
import time
import warnings
from pathlib import Path

import numpy as np

# In a source checkout, use the minisg beside the lessons (installed or not); anywhere else the installed one.
REPO = Path(__file__).resolve().parents[1] if "__file__" in globals() else Path.cwd().parent  # Jupyter: no __file__
if (REPO / "minisg" / "__init__.py").is_file():
    sys.path.insert(0, str(REPO))

from minisg import data, models, parallel, viz  # noqa: E402
from minisg import methods as M  # noqa: E402
from minisg.classroom.lesson import setup  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

# --quick for a fast pass, --sigma S, --out DIR for the figures (minisg/classroom/lesson.py)
lesson = setup("05", "partial derivatives along x + t * eps (SmoothGrad Fig. 2)",
               quick="coarser path, two images for the statistics",
               options={"--sigma": dict(type=float, default=0.01, help="std of eps (the paper: 0.01)")})
SIGMA = lesson.sigma                                       # the paper's eps ~ N(0, 0.01^2)
T_MAIN = np.linspace(0, 1, 101 if lesson.quick else 1001)  # the path of the figure
T_STATS = np.linspace(0, 1, 51 if lesson.quick else 201)   # the paths of the statistics over images
STAT_IMAGES = 2 if lesson.quick else 10
CHANGE_TOL = 1e-4                              # a partial "changed" if it moved by > 1e-4 of max|M|


# %% [markdown]
# ## 1. The path, and the gradient at every point of it
#
# All points of the path go through the network as one batch; `methods.vanilla_gradient`
# returns $\partial S_c/\partial x$ at each of them (the target class held fixed). The path
# $x + t\varepsilon$ is not clipped to $[0, 1]$: it leaves it by a few hundredths, which the
# methods warn about; here that is intended, so the warning is silenced.

# %%
model = models.load("mnist_cnn")
test_x, test_y = data.load_mnist("test")
index = data.find_digit(3, "test")                 # the first "3" of the test set
x = test_x[index:index + 1]
rng = np.random.default_rng(2017)
eps = (SIGMA * rng.standard_normal(x.shape)).astype(np.float32)


def along_path(model, x, eps, ts, target):
    """(gradients (T, 28, 28), scores (T,)) at x + t * eps for every t, class `target` fixed."""
    path = (x + ts[:, None, None, None] * eps).astype(x.dtype)
    with warnings.catch_warnings():                    # the path leaves [0, 1] on purpose (see above)
        warnings.filterwarnings("ignore", message="x: expected values in the model's input range")
        gradients = M.vanilla_gradient(model, path, np.repeat(target, len(ts)))[:, 0]
    scores = parallel.logits(model, path)[:, target[0]]
    return gradients, scores


target = parallel.logits(model, x).argmax(axis=1)
started = time.perf_counter()
grads, scores = along_path(model, x, eps, T_MAIN, target)
peak = np.abs(grads).reshape(len(T_MAIN), -1).max(axis=1)            # max_j |dS_c/dx_j| at each t
ratio = grads / peak[:, None, None]                                   # r_i(t)
print(f"test image {index} (label {test_y[index]}, predicted {target[0]}): {len(T_MAIN)} points on the path, "
      f"{time.perf_counter() - started:.1f} s")
print(f"eps: std {eps.std():.4f}, max |eps_i| {np.abs(eps).max():.4f}, |eps| / |x| = "
      f"{np.linalg.norm(eps) / np.linalg.norm(x):.4f}")
print(f"S_c along the path: {scores[0]:.4f} at t=0, {scores[-1]:.4f} at t=1; largest distance from the "
      f"straight line between them: {np.abs(scores - (scores[0] + T_MAIN * (scores[-1] - scores[0]))).max():.5f}")
print(f"max_j |dS_c/dx_j| along the path: from {peak.min():.4f} to {peak.max():.4f}")

# %% [markdown]
# ## 2. Four pixels, followed along the path
#
# Which pixel to show is a choice, so here are four, and the table prints their numbers.
# Three are the **most variable** pixel (largest range of $r_i(t)$ along the path) of their
# kind — on the stroke ($x_i \ge 0.5$), on its edge ($0.05 < x_i < 0.5$), in the background
# ($x_i = 0$) — picked *after* looking, so they show the effect at its largest; the fourth is
# a pixel drawn at random (seeded) among those with $|r_i(0)| > 0.1$, for a typical picture.

# %%
image = x[0, 0]
ranges = ratio.max(axis=0) - ratio.min(axis=0)


def most_variable(mask):
    return np.unravel_index(np.where(mask, ranges, -1).argmax(), image.shape)


candidates = np.argwhere(np.abs(ratio[0]) > 0.1)
random_pixel = tuple(candidates[np.random.default_rng(5).integers(len(candidates))])
pixels = {"stroke, most variable": most_variable(image >= 0.5),
          "edge, most variable": most_variable((image > 0.05) & (image < 0.5)),
          "background, most var.": most_variable(image == 0),
          "random pixel": random_pixel}


def describe(series):
    """(range, largest jump between neighbouring t, number of t-steps where it changed)."""
    steps = np.abs(np.diff(series))
    return series.max() - series.min(), steps.max(), int((steps > CHANGE_TOL).sum())


print(f"{'pixel':23s}{'(row, col)':>11s}{'x_i':>6s}{'r_i(0)':>8s}{'r_i(1)':>8s}{'min r':>8s}{'max r':>8s}"
      f"{'range':>7s}{'max jump':>9s}{'first step':>11s}{'changes':>9s}")
for name, (row, col) in pixels.items():
    series = ratio[:, row, col]
    value_range, jump, changes = describe(series)
    print(f"{name:23s}{str((int(row), int(col))):>11s}{image[row, col]:6.2f}{series[0]:8.3f}{series[-1]:8.3f}"
          f"{series.min():8.3f}{series.max():8.3f}{value_range:7.3f}{jump:9.3f}{series[1] - series[0]:+11.3f}{changes:9d}")
print(f"all 784 pixels: median range of r_i {np.median(ranges):.3f}, 90th percentile {np.percentile(ranges, 90):.3f}, "
      f"max {ranges.max():.3f}")
print(f"(r_i is the fraction of max_j |dS_c/dx_j|; 'changes' counts the {len(T_MAIN) - 1} steps of dt = "
      f"{T_MAIN[1]:.4f} where r_i moved by more than {CHANGE_TOL:g}; 'first step' is r_i(dt) - r_i(0))")

# %% [markdown]
# ## 3. How the whole map moves
#
# For the whole gradient: at how many steps does *any* partial derivative change, how many
# change at each step, and how similar is the map at $t = 0$ to the map one tiny step away
# and at $t = 1$? The first step, from $t = 0$ to $t = dt$, is reported on its own (the
# discussion at the end says why).

# %%
flat = grads.reshape(len(T_MAIN), -1)
moved = np.abs(np.diff(flat, axis=0)) > CHANGE_TOL * peak[1:, None]
changed_steps = moved.any(axis=1)
cosine = lambda a, b: float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))  # noqa: E731
print(f"first step (t = 0 -> {T_MAIN[1]:.4f}, |t eps| about {SIGMA * T_MAIN[1]:.0e} per pixel): "
      f"{moved[0].sum()} of 784 partials moved; largest move {np.abs(ratio[1] - ratio[0]).max():.3f} of max|M|; "
      f"cos(M(0), M(dt)) = {cosine(flat[0], flat[1]):.3f}")
print(f"after it: the gradient changed at {changed_steps[1:].sum()} of {len(T_MAIN) - 2} steps, "
      f"{moved[1:][changed_steps[1:]].sum(axis=1).mean():.0f} of 784 partials on average when it did; "
      f"largest single-step move {np.abs(np.diff(ratio[1:], axis=0)).max():.3f} of max|M|")
print(f"cos(M(0), M(1)) = {cosine(flat[0], flat[-1]):.3f}; cos(M(dt), M(1)) = {cosine(flat[1], flat[-1]):.3f}; "
      f"cos(M(0), M(0.5)) = {cosine(flat[0], flat[len(T_MAIN) // 2]):.3f}")

ink = image > data.MASK_THRESHOLD
first_change = (flat[1] - flat[0]) ** 2
later_change = (flat[-1] - flat[1]) ** 2
share = lambda change, where: change[where.ravel()].sum() / change.sum()  # noqa: E731
print(f"where the map changes (share of the squared change): first step {share(first_change, ink):.3f} on the ink, "
      f"{share(first_change, image == 0):.3f} on black pixels; from t = dt to 1: {share(later_change, ink):.3f} "
      f"on the ink, {share(later_change, image == 0):.3f} on black pixels "
      f"(the ink is {ink.mean():.3f} of the image, black pixels {(image == 0).mean():.3f})")

# the same path in float64 (every 5th point, to save time): the jumps are not rounding noise
every = 1 if lesson.quick else 5
t64 = T_MAIN[::every]
model64 = models.load("mnist_cnn", dtype=np.float64)
grads64, _ = along_path(model64, x.astype(np.float64), eps.astype(np.float64), t64, target)
flat64, flat32 = grads64.reshape(len(t64), -1), flat[::every]
changes = {}
for name, f in (("float32", flat32), ("float64", flat64)):
    top = np.abs(f).max(axis=1)
    changes[name] = int((np.abs(np.diff(f, axis=0)) > CHANGE_TOL * top[1:, None]).any(axis=1).sum())
normalised = lambda f: f / np.abs(f).max(axis=1, keepdims=True)  # noqa: E731
gap = np.abs(normalised(flat32) - normalised(flat64)).max(axis=1)
print(f"float64 check on {len(t64)} points of the path: the gradient changed at {changes['float64']} of {len(t64) - 1} "
      f"steps (float32: {changes['float32']}); r agrees to 1e-3 at {(gap <= 1e-3).sum()} of {len(t64)} points; "
      f"the largest difference, {gap.max():.3f}, is at t = {t64[gap.argmax()]:.3g}")

# %% [markdown]
# ## 4. The figure (SmoothGrad Fig. 2)

# %%
figure = Figure(figsize=(12.5, 7.6), layout="constrained")
grid_spec = figure.add_gridspec(2, 3, width_ratios=[1.1, 2.4, 1])
ax = figure.add_subplot(grid_spec[0, 0])
ax.imshow(image, cmap="gray", vmin=0, vmax=1)
colours = ["tab:blue", "tab:green", "tab:purple", "tab:red"]
for colour, (name, (row, col)) in zip(colours, pixels.items()):
    ax.plot(col, row, "s", ms=7, mfc="none", mec=colour, mew=2)
ax.set_title("x (t = 0); squares: the pixels", fontsize=9)
ax.set_xticks([])
ax.set_yticks([])
ax = figure.add_subplot(grid_spec[0, 1])
for colour, (name, (row, col)) in zip(colours, pixels.items()):
    ax.plot(T_MAIN, ratio[:, row, col], color=colour, lw=1, label=f"{name} {int(row), int(col)}")
ax.axhline(0, color="0.7", lw=0.8)
ax.set_ylim(-1.05, 1.05)
ax.set_xlabel("t")
ax.set_ylabel(r"$\partial S_c/\partial x_i\ /\ \max_j |\partial S_c/\partial x_j|$")
ax.set_title(r"Partial derivatives along $x + t\varepsilon$, $\varepsilon \sim N(0, %g^2)$, as a fraction of the max entry"
             % SIGMA, fontsize=9)
ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=4)   # below: lines go anywhere
ax = figure.add_subplot(grid_spec[0, 2])
ax.imshow(np.clip(x[0, 0] + eps[0, 0], 0, 1), cmap="gray", vmin=0, vmax=1)
ax.set_title(r"$x + \varepsilon$ (t = 1)", fontsize=9)
ax.set_xticks([])
ax.set_yticks([])
ax = figure.add_subplot(grid_spec[1, 0])
shown = ax.imshow(eps[0, 0], cmap=viz.BLUE_GRAY_RED, vmin=-3 * SIGMA, vmax=3 * SIGMA)
ax.set_title(r"the noise $\varepsilon$", fontsize=9)
ax.set_xticks([])
ax.set_yticks([])
viz.colorbar(figure, shown, ax, r"$\varepsilon_i$ (colours stop at $\pm 3\sigma$)")
ax = figure.add_subplot(grid_spec[1, 1])
ax.plot(T_MAIN, scores, color="k", lw=1.2, label=r"$S_c(x + t\varepsilon)$ (left axis)")
ax.set_xlabel("t")
ax.set_ylabel("logit S_c")
twin = ax.twinx()
twin.plot(T_MAIN[1:], moved.sum(axis=1), color="tab:orange", lw=0.6, alpha=0.8,
          label="partials that changed since the previous t (right axis)")
twin.set_ylabel("number of the 784 partials", color="tab:orange")
ax.set_title("The score is smooth in t; its gradient changes in jumps", fontsize=9)
lines = ax.get_legend_handles_labels()
more = twin.get_legend_handles_labels()
ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13),
          ncol=2)
ax = figure.add_subplot(grid_spec[1, 2])
ax.plot(T_MAIN, [cosine(flat[0], f) for f in flat], color="tab:blue", label="vs the map at t = 0")
ax.plot(T_MAIN, [cosine(flat[-1], f) for f in flat], color="tab:orange", label="vs the map at t = 1")
ax.set_ylim(-0.05, 1.05)
ax.set_xlabel("t")
ax.set_title("cosine similarity of maps", fontsize=9)
ax.legend(fontsize=7, loc="lower right")                      # free: both curves stay near 1
lesson.save(figure, "05_noisy_gradients.png")

# %% [markdown]
# The maps themselves at a few points of the path — five images no one could tell apart —
# and how each differs from the map at $t = 0$:

# %%
t_show = [0.0, T_MAIN[1], 0.25, 0.5, 1.0]
rows = [int(np.argmin(np.abs(T_MAIN - t))) for t in t_show]
path_images = np.clip(x + T_MAIN[rows][:, None, None, None] * eps, 0, 1)
difference = (grads[rows] - grads[0])[:, None]
scale_of_map = np.percentile(np.abs(grads[0]), 99)
lesson.figure_grid(path_images, {"|M| (p99 cap)": viz.to_grayscale(grads[rows][:, None]),
                                 "signed M": viz.to_grayscale(grads[rows][:, None], "signed"),
                                 "M(t) - M(0)": np.clip(difference[:, 0] / scale_of_map, -1, 1)},
                   "05_maps_along_path.png", row_labels=[f"t = {T_MAIN[r]:.3g}" for r in rows],
                   title="x + t eps, its gradient, and the change since t = 0\n"
                         "(last column on the scale of the t = 0 map: p99 of |M(0)| = full red/blue)",
                   cell_size=1.7, signed=["M(t) - M(0)"],
                   colorbars={"|M| (p99 cap)": viz.P99_LABEL, "signed M": viz.SIGNED_LABEL,
                              "M(t) - M(0)": "(M(t) - M(0)) / p99 of |M(0)|"})
for r in rows[1:]:
    relative = np.linalg.norm(grads[r] - grads[0]) / np.linalg.norm(grads[0])
    print(f"t = {T_MAIN[r]:.3g}: |M(t) - M(0)| / |M(0)| = {relative:.3f}")

# %% [markdown]
# ## 5. Is this one image, or the rule? Statistics over images, and the noise-trained model
#
# The same experiment on the first test digit of each class (a fresh $\varepsilon$ each, seeded),
# for both shipped networks, on a coarser path. Per image, the first step and the rest of the
# path are reported apart: the largest change of any $r_i$ and the cosine similarity across
# the first step; then, over $t \in [dt, 1]$, the median over pixels of the range of $r_i$,
# the largest single-step change, and $\cos(M(dt), M(1))$.

# %%
stat_indices = [data.find_digit(c, "test") for c in range(STAT_IMAGES)]
columns = ["first: max jump", "first: cos", "rest: median range", "rest: max jump", "rest: cos(dt, 1)"]
statistics = {}
for name in ("mnist_cnn", "mnist_cnn_noise"):
    net = model if name == "mnist_cnn" else models.load(name)
    per_image = []
    for k, i in enumerate(stat_indices):
        xi = test_x[i:i + 1]
        eps_i = (SIGMA * np.random.default_rng([2017, k]).standard_normal(xi.shape)).astype(np.float32)
        g, _ = along_path(net, xi, eps_i, T_STATS, parallel.logits(net, xi).argmax(axis=1))
        g = g.reshape(len(T_STATS), -1)
        r = g / np.abs(g).max(axis=1, keepdims=True)
        rest = r[1:]
        per_image.append((np.abs(r[1] - r[0]).max(), cosine(g[0], g[1]),
                          np.median(rest.max(axis=0) - rest.min(axis=0)), np.abs(np.diff(rest, axis=0)).max(),
                          cosine(g[1], g[-1])))
    statistics[name] = np.array(per_image)
    print(f"{name} (dt = {T_STATS[1]:.3f}); per image: label, " + ", ".join(columns))
    for i, values in zip(stat_indices, per_image):
        print(f"   {test_y[i]}  " + "  ".join(f"{v:8.3f}" for v in values))
print(f"\n{'means, ' + str(STAT_IMAGES) + ' images':17s}" + "".join(f"{c:>20s}" for c in columns))
for name, values in statistics.items():
    print(f"{name:17s}" + "".join(f"{v:20.3f}" for v in values.mean(axis=0)))

# %% [markdown]
# ## What we found, compared with the paper
#
# Numbers quoted from a full run; `--quick` uses coarser paths and fewer images.
#
# - **The effect is there.** Along a path on which no pixel moves by more than about 0.03,
#   the score changes smoothly (within 0.008 of a straight line) while its gradient changes
#   in discrete jumps — at about a quarter of the 1,000 steps of $dt = 0.001$, about 90
#   partials at once on average, a few times nearly all 784. Single pixels' normalised derivatives
#   step up and down, and some change sign (the "stroke" pixel above goes from $-0.13$ to
#   $+0.07$). This is the piecewise-linear picture the paper describes: every jump is a ReLU
#   switching or a max-pool changing its winner.
# - **But it is milder than the paper's Fig. 2 suggests, once past the first step.** Over
#   $t \in [dt, 1]$ the median pixel's $r_i$ moves by only about 0.08–0.10 of the largest
#   entry, the largest single step is about 0.16–0.18, and the map at $t = 1$ stays close to
#   the map at $t = dt$ (cosine about 0.95–0.96). The paper's example is an Inception network
#   on an ImageNet photograph, whose derivative it describes as fluctuating sharply; on this
#   small MNIST network the fluctuation is real but moderate, and a perturbation of 0.01 does
#   not move the map very far. We report that rather than hunt for a more dramatic pixel: the
#   most variable pixels are shown, labelled as such, next to a random one.
# - **The largest jump is the first one, and it is specific to MNIST.** Between $t = 0$ and
#   $t = 0.001$ (a change of about $10^{-5}$ per pixel) 516 of 784 partials move, one of them
#   by 0.44 of the largest entry, and the cosine with the clean map drops to about 0.9
#   (0.84 on average over ten digits with $dt = 0.005$). All of that change (100% of its
#   squared size) sits on black pixels, away from the digit: the "change since $t = 0$" column
#   of the second figure shows it along the border, where conv1's windows are all zero and
#   max-pool windows tie exactly (lessons 02 and 04). At $t = 0$ the gradient there is
#   whatever the first-maximum rule picks; any perturbation breaks the ties. The later
#   changes, from $t = dt$ to 1, are spread over the image roughly in proportion to area
#   (80% on the black pixels, which are 73% of it). The clean image is a special,
#   non-generic point of the input space, where values tie and a rule, not rounding, must
#   pick the winner: with minisg's exact tie step (lesson 02) float32 and float64 agree
#   there too. The "float64 check" line above says how often they agree to $10^{-3}$ and
#   where they differ most: in our run at all 201 points checked (largest difference below
#   0.001), and both precisions see the gradient change at the same 146 of 200 steps.
# - **The noise-trained network** (lesson 03) behaves the same way, slightly steadier
#   on these ten digits (mean cosine 0.965 against 0.951, median range 0.069 against 0.082) —
#   a small difference on a small sample.
#
# Either way, the gradient at a single point is partly an accident of where exactly that
# point lies, which is the motivation for SmoothGrad: average the map over many nearby points,
# $\hat M_c(x) = \frac1n \sum_{k} M_c(x + \varepsilon_k)$, with noise much larger than 0.01
# (lesson 06).
#
# ## Exercises
#
# 1. A ReLU network's score is piecewise linear in $x$. Between two jumps, what is the
#    gradient doing? Sketch $r_i(t)$ for a network with a single hidden ReLU layer.
# 2. Replace $\sigma = 0.01$ by 0.001 and by 0.1 (`--sigma 0.1`). How do the number of changes
#    and the cosine similarity $\cos(M(0), M(1))$ scale? What would you expect for a smooth
#    network (softplus instead of ReLU)?
# 3. Why does the score $S_c(x + t\varepsilon)$ stay so close to a straight line, if its slope
#    keeps jumping?
# 4. Perturb only the ink pixels (multiply $\varepsilon$ by the mask `x > 0.1`). Does the first
#    jump disappear? Why?
#
# There is no graded exercise for this lesson; lesson 06's exercises build SmoothGrad.

# %%
lesson.finish()
