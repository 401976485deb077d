# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 10 — Grad-CAM and Grad-CAM++: derivatives of order 1, 2 and 3
#
# Pixel maps (lessons 04–09) differentiate the score with respect to the *input*. Class
# activation maps look one level up, at a convolutional layer's feature maps $A^k$ (channel
# $k$; here `relu2`, 14x14x64): which feature maps matter for class $c$, and where are they
# active?
#
# **Grad-CAM** (Selvaraju et al. 2017) weighs each channel by its average gradient,
#
# $$a_k = \frac{1}{hw}\sum_{ij} \frac{\partial S_c}{\partial A^k_{ij}}, \qquad
#   L^{\text{Grad-CAM}} = \mathrm{relu}\Big(\sum_k a_k A^k\Big).$$
#
# **Grad-CAM++** (Chattopadhay et al. 2018; the Smooth Grad-CAM++ paper's eqs. 1–5) weighs
# every *position* too. With $Y = e^{S_c}$,
#
# $$w_k = \sum_{ij} \alpha^k_{ij}\, \mathrm{relu}\Big(\frac{\partial Y}{\partial A^k_{ij}}\Big),
#   \qquad
#   \alpha^k_{ij} = \frac{\partial^2 Y / \partial (A^k_{ij})^2}
#        {2\,\partial^2 Y / \partial (A^k_{ij})^2 + \sum_{ab} A^k_{ab}\; \partial^3 Y / \partial (A^k_{ij})^3},
#   \qquad L = \mathrm{relu}\Big(\sum_k w_k A^k\Big).$$
#
# Second and third derivatives of a whole network sound expensive. The **exp trick** makes
# them free: write $g = \partial S_c / \partial A^k_{ij}$ and differentiate $Y = e^{S}$ along
# one element,
#
# $$\partial Y = e^S g, \qquad \partial^2 Y = e^S (g^2 + \partial^2 S), \qquad
#   \partial^3 Y = e^S (g^3 + 3 g\, \partial^2 S + \partial^3 S).$$
#
# If everything after the layer is **piecewise linear** (max-pool, linear, ReLU — our head),
# $\partial^2 S = \partial^3 S = 0$ almost everywhere, so
# $\partial^2 Y = e^S g^2$, $\partial^3 Y = e^S g^3$, and $e^S$ cancels in $\alpha$:
#
# $$\alpha^k_{ij} = \frac{g^2}{2 g^2 + S_k\, g^3} = \frac{1}{2 + S_k\, g}
#   \quad (g > 0), \qquad S_k = \sum_{ab} A^k_{ab}.$$
#
# This lesson writes the derivatives out, gets them again from the autodiff engine (double
# and triple backward), checks both with finite differences, and then breaks the trick on
# purpose with a smooth head. Run: `python lessons/10_gradcam_pp.py [--quick]`; figures go to
# `lessons/out/10_*.png`.

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

from minisg import Tensor, data, grad, models, nn, no_grad, viz  # noqa: E402
from minisg.evaluation import metrics  # noqa: E402
from minisg import functional as F  # noqa: E402
from minisg import methods as M  # noqa: E402
from minisg.classroom.lesson import setup  # noqa: E402

# --quick for a fast pass, --out DIR for the figures (minisg/classroom/lesson.py)
lesson = setup("10", "Grad-CAM, Grad-CAM++ and its higher derivatives",
               quick="two images, few checked elements (seconds)")

COUNT = 2 if lesson.quick else 6          # digits for the Grad-CAM vs Grad-CAM++ figure
CHECKED = 20 if lesson.quick else 150     # layer elements checked against finite differences
H = 1e-3                                  # finite-difference step (float64)
MAP_CHANNELS = 8 if lesson.quick else 64  # channels whose true derivatives build the smooth-head maps
LAYER = "relu2"


# %% [markdown]
# ## 1. Grad-CAM and Grad-CAM++ on single digits
#
# Both maps live on the 14x14 grid of `relu2`; they are upsampled bilinearly to 28x28 and
# shown over the digit. Numbers per digit: the share of the (upsampled) map on the ink, the
# share of ink pixels where the map exceeds half its maximum ("coverage": Grad-CAM++ claims
# to capture *whole* objects), and the correlation between the two maps.

# %%
model = models.load("mnist_cnn")
test_images, test_labels = data.load_mnist("test")
x = test_images[:COUNT]
with no_grad():
    logits = model(Tensor(x)).numpy()
target = logits.argmax(axis=1)

cam = M.gradcam(model, x, target, layer=LAYER, normalize=True)
campp = M.gradcam_pp(model, x, target, layer=LAYER, normalize=True)
cam_small = M.gradcam(model, x, target, layer=LAYER, upsample=False, normalize=True)
campp_small = M.gradcam_pp(model, x, target, layer=LAYER, upsample=False, normalize=True)
lesson.figure_grid(x, {"Grad-CAM": viz.overlay_cam(x, cam), "Grad-CAM++": viz.overlay_cam(x, campp),
                       "Grad-CAM 14x14": cam_small, "Grad-CAM++ 14x14": campp_small},
                   "10_gradcam_vs_gradcampp.png", row_labels=[f"class {c}" for c in target],
                   colorbars={"Grad-CAM": viz.CAM_SCALE, "Grad-CAM++": viz.CAM_SCALE,
                              "Grad-CAM 14x14": "CAM / its maximum", "Grad-CAM++ 14x14": "CAM / its maximum"},
                   title=f"Grad-CAM vs Grad-CAM++ at {LAYER}, each map divided by its max:\n"
                         f"upsampled to 28x28 over the digit, and as computed (14x14)")

ink = x[:, 0] > data.MASK_THRESHOLD
print(f"{'digit':>6} {'mass on ink':>22} {'coverage of ink':>22} {'corr(GC, GC++)':>15}")
print(f"{'':>6} {'Grad-CAM':>11}{'GC++':>11} {'Grad-CAM':>11}{'GC++':>11}")
for i in range(COUNT):
    mass = [metrics.relevance_mass(m[i:i + 1], ink[i:i + 1])[0] for m in (cam, campp)]
    cover = [(m[i][ink[i]] >= 0.5).mean() for m in (cam, campp)]
    corr = np.corrcoef(cam[i].ravel(), campp[i].ravel())[0, 1]
    print(f"{target[i]:>6} {mass[0]:>11.3f}{mass[1]:>11.3f} {cover[0]:>11.3f}{cover[1]:>11.3f} {corr:>15.3f}")

# Why Grad-CAM is so sparse here: look at its channel weights a_k = mean_ij g.
body32, head32 = model.split(LAYER)
with no_grad():
    A32 = body32(Tensor(x)).numpy()
leaf32 = Tensor(A32, requires_grad=True)
(g32,) = grad(head32(leaf32)[np.arange(COUNT), target].sum(), leaf32)
a = g32.numpy().mean(axis=(2, 3))                                        # (N, K) Grad-CAM weights
weighted = (a[:, :, None, None] * A32).sum(axis=1)                        # before Grad-CAM's relu
print(f"Grad-CAM weights a_k < 0 for {100 * (a < 0).mean():.0f}% of the channels; sum_k a_k A^k > 0 at only "
      f"{100 * (weighted > 0).mean():.0f}% of the 14x14 positions (mean over digits). Grad-CAM++ weights are "
      f">= 0 by construction (alpha >= 0 times relu(g)).")

# %% [markdown]
# ## 2. The derivatives, three ways
#
# We split the network at `relu2`: $A$ = body($x$) becomes a leaf, and the head (pool2,
# flatten, fc1, relu3, dropout — off in eval mode — fc2) is a function of $A$ alone. All of
# this runs in float64 so that finite differences are meaningful.
#
# 1. **Closed form**: $g, g^2, g^3$ from one backward pass (all divided by $e^S$).
# 2. **Autodiff**: `M.autodiff_derivatives` differentiates $\tilde Y = e^{S - S_0}$ three
#    times along the one-hot direction $e_i$ of each element (double and triple backward
#    through the engine), giving the true diagonal $\partial^k Y / \partial A_i^k$ over
#    $e^{S_0}$, for any head.
# 3. **Finite differences** of $\tilde Y(t) = e^{S(A + t e_i) - S_0}$ with step $h$:
#    $$\tilde Y' \approx \frac{\tilde Y(h) - \tilde Y(-h)}{2h}, \quad
#      \tilde Y'' \approx \frac{\tilde Y(h) - 2\tilde Y(0) + \tilde Y(-h)}{h^2}, \quad
#      \tilde Y''' \approx \frac{\tilde Y(2h) - 2\tilde Y(h) + 2\tilde Y(-h) - \tilde Y(-2h)}{2h^3}.$$
#
# Finite differences only see the derivative the formulas describe if no kink lies within
# $2h$: a max-pool window whose winner changes, or a ReLU unit crossing zero. (One kink in
# the stencil ruins a third difference, which divides by $h^3 = 10^{-9}$.) So we check
# elements with $g > 0$ — the only elements Grad-CAM++ uses — that win their 2x2 pool window
# by a margin of at least $10h$ and leave every relu3 unit on its side of zero.
#
# We use one digit whose prediction is *not* saturated (top softmax probability below 0.9),
# because section 3 also differentiates the softmax probability, whose derivatives vanish
# for a digit the network is sure about.

# %%
model64 = models.load("mnist_cnn", dtype=np.float64)
body, relu_head = model64.split(LAYER)
with no_grad():
    probabilities = F.softmax(model64(Tensor(test_images[:200].astype(np.float64))), axis=1).numpy()
unsure = int(np.flatnonzero(probabilities.max(axis=1) < 0.9)[0])   # the first such test digit
x_check = test_images[unsure:unsure + 1].astype(np.float64)
c = int(probabilities[unsure].argmax())
with no_grad():
    A = body(Tensor(x_check)).numpy()                                # (1, 64, 14, 14)
print(f"checked digit: test #{unsure}, label {test_labels[unsure]}, predicted {c} with p = "
      f"{probabilities[unsure, c]:.3f}; layer {LAYER} has {A.size} elements")


def score_of(head, activations):
    """S_c for a batch of activation tensors (NumPy in, NumPy out, no graph)."""
    with no_grad():
        return head(Tensor(activations)).numpy()[:, c]


def gradient_at(head, activations):
    """g = dS_c/dA by one backward pass."""
    leaf = Tensor(activations, requires_grad=True)
    (g,) = grad(head(leaf)[:, c].sum(), leaf)
    return g.numpy()


def closed_form(g):
    """dY, d2Y, d3Y over e^S when the head is piecewise linear: g, g^2, g^3."""
    g2 = g * g
    return g, g2, g2 * g


def finite_differences(head, activations, elements, h=H):
    """Central differences of exp(S(A + t e_i) - S(A)) in t, for each flat element index i."""
    base = score_of(head, activations)[0]
    values = {}
    for step in (-2, -1, 0, 1, 2):
        shifted = np.repeat(activations, len(elements), axis=0)
        shifted.reshape(len(elements), -1)[np.arange(len(elements)), elements] += step * h
        values[step] = np.exp(score_of(head, shifted) - base)
    first = (values[1] - values[-1]) / (2 * h)
    second = (values[1] - 2 * values[0] + values[-1]) / h ** 2
    third = (values[2] - 2 * values[1] + 2 * values[-1] - values[-2]) / (2 * h ** 3)
    return first, second, third


def pool_margin(activations):
    """For each element, how much it exceeds the other three of its 2x2 max-pool window."""
    a = activations[0]
    k, height, width = a.shape
    windows = a.reshape(k, height // 2, 2, width // 2, 2).transpose(0, 1, 3, 2, 4).reshape(k, height // 2, width // 2, 4)
    margin = np.empty_like(windows)
    for slot in range(4):
        others = np.delete(windows, slot, axis=3).max(axis=3)
        margin[..., slot] = windows[..., slot] - others
    return margin.reshape(k, height // 2, width // 2, 2, 2).transpose(0, 1, 3, 2, 4).reshape(a.shape)


def relu3_unchanged(activations, candidates, h=H):
    """Which candidates leave every relu3 unit on the same side of 0 for all |t| <= 2h."""
    to_fc1, _ = relu_head.split("fc1")                   # pool2 -> flatten -> fc1: relu3's input z
    with no_grad():
        z0 = to_fc1(Tensor(activations)).numpy() > 0
    same = np.ones(len(candidates), bool)
    for step in (-2, -1, 1, 2):
        shifted = np.repeat(activations, len(candidates), axis=0)
        shifted.reshape(len(candidates), -1)[np.arange(len(candidates)), candidates] += step * h
        with no_grad():
            same &= ((to_fc1(Tensor(shifted)).numpy() > 0) == z0).all(axis=1)
    return same


g_relu = gradient_at(relu_head, A)
assert np.array_equal(np.stack(closed_form(g_relu)), np.stack(M.closed_form_derivatives(g_relu)))
candidates = np.flatnonzero((g_relu.ravel() > 0) & (pool_margin(A).ravel() > 10 * H))
shuffled = np.random.default_rng(0).permutation(candidates)[:2 * CHECKED]
smooth_here = relu3_unchanged(A, shuffled)
elements = np.sort(shuffled[smooth_here][:CHECKED])
print(f"{int((g_relu > 0).sum())} elements have g > 0; {len(candidates)} of them win their pool window by more "
      f"than {10 * H:g}; of {len(shuffled)} drawn from those, {int((~smooth_here).sum())} would flip a relu3 unit "
      f"within 2h; checking {len(elements)} kink-free ones")

# %% [markdown]
# ## 3. Three heads: where the exp trick holds and where it breaks
#
# - **relu head, logit score**: the trained network. Piecewise linear after `relu2`.
# - **softplus head, logit score**: the same weights with relu3 replaced by
#   $\mathrm{softplus}(z) = \log(1 + e^z)$, a smooth function: now $\partial^2 S \ne 0$.
# - **relu head, softmax score**: $S = p_c = e^{z_c} / \sum_j e^{z_j}$, the probability
#   instead of the logit. The head is piecewise linear, the *score* is not.
#
# For each we compare the closed form ($g^2, g^3$) with the autodiff diagonal, and the
# autodiff diagonal with finite differences. The printed errors are relative to the largest
# value of that derivative over the checked elements.

# %%
class SoftmaxScore(nn.Module):
    """Wraps a head so that its outputs are softmax probabilities instead of logits."""

    def __init__(self, head):
        super().__init__()
        self.head = head

    def forward(self, activations):
        return F.softmax(self.head(activations), axis=1)


softplus_head = nn.Sequential(*[(name, nn.Softplus() if name == "relu3" else layer)
                                for name, layer in relu_head.layers.items()]).eval()
heads = {"relu head, logit": relu_head, "softplus head, logit": softplus_head,
         "relu head, softmax prob.": SoftmaxScore(relu_head)}

checks = {}
print(f"\n{'head':<26}{'':>4}{'closed vs autodiff':>20}{'FD vs autodiff':>16}{'largest |value|':>17}")
for name, head in heads.items():
    g = gradient_at(head, A)
    started = time.perf_counter()
    auto = [d[0] for d in M.autodiff_derivatives(head, A, np.array([c]), elements=elements)]
    seconds = time.perf_counter() - started
    closed = closed_form(g.ravel()[elements])
    fd = finite_differences(head, A, elements)
    checks[name] = (closed, auto, fd)
    for order in range(3):
        scale = np.abs(auto[order]).max()
        vs_closed = np.abs(closed[order] - auto[order]).max() / scale
        vs_fd = np.abs(fd[order] - auto[order]).max() / scale
        print(f"{name if order == 0 else '':<26}{'d' + str(order + 1) + 'Y':>4}{vs_closed:>20.2e}{vs_fd:>16.2e}"
              f"{scale:>17.3e}")
    print(f"{'':<26}(autodiff: {seconds:.1f} s for {len(elements)} elements)")

# %%
figure = Figure(figsize=(10, 6))
axes = figure.subplots(2, 3)
for column, (name, (closed, auto, fd)) in enumerate(checks.items()):
    for row, order in enumerate((1, 2)):
        axis = axes[row, column]
        low = min(auto[order].min(), closed[order].min())
        high = max(auto[order].max(), closed[order].max())
        axis.plot([low, high], [low, high], color="0.7", lw=1)
        axis.plot(auto[order], closed[order], "o", ms=3, color="C0", label="closed form")
        axis.plot(auto[order], fd[order], "x", ms=3, color="C3", label="finite differences")
        axis.set_xlabel(f"autodiff d{order + 1}Y / e^S", fontsize=8)
        axis.set_title(name, fontsize=9)
        axis.tick_params(labelsize=7)
        axis.locator_params(nbins=4)
    axes[0, column].set_ylabel("closed form / FD: d2Y / e^S", fontsize=8)
    axes[1, column].set_ylabel("closed form / FD: d3Y / e^S", fontsize=8)
axes[0, 0].legend(fontsize=7)
figure.suptitle(f"Grad-CAM++'s 2nd and 3rd derivatives on {len(elements)} elements of {LAYER}: "
                "on the diagonal = agrees with autodiff", fontsize=9)
figure.tight_layout()
lesson.save(figure, "10_derivatives_check.png")

# %% [markdown]
# ## 4. What the broken trick does to the map
#
# Grad-CAM++ only uses elements with $g > 0$, so the true map needs the autodiff diagonal
# only there (in a full run: every such element of all 64 channels; a quick run keeps the 8
# channels with the largest Grad-CAM++ weight and says so in the figure). From the three
# derivatives we build the map as in the formulas above, with `M.gradcampp_alpha` for
# $\alpha$ (0 where $g \le 0$ or where the denominator is not positive — with a smooth head
# it can be). The closed-form map of the same head uses $g, g^2, g^3$ instead: it is what
# `M.gradcam_pp(..., derivatives="closed_form")` would compute for a network with that head.

# %%
def map_from_derivatives(activations, d1, d2, d3):
    alpha = M.gradcampp_alpha(activations, d2, d3, where=d1 > 0)
    weights = (alpha * np.maximum(d1, 0)).sum(axis=(2, 3))                 # (1, K)
    return np.maximum((weights[:, :, None, None] * activations).sum(axis=1), 0), alpha, weights


weights_pp = map_from_derivatives(A, *closed_form(g_relu))[2][0]
channels = np.sort(np.argsort(-weights_pp)[:MAP_CHANNELS])
keep = np.zeros(A.shape[1], bool)
keep[channels] = True
A_kept = A * keep[None, :, None, None]
rows, maps_closed, maps_true = [], [], []
print(f"\nGrad-CAM++ maps from the true derivatives ({len(channels)} channel(s)):")
for name, head in heads.items():
    g = gradient_at(head, A)
    used = np.flatnonzero(((g > 0) & keep[None, :, None, None]).ravel())
    started = time.perf_counter()
    d_true = [np.zeros(A.size) for _ in range(3)]
    for full, part in zip(d_true, M.autodiff_derivatives(head, A, np.array([c]), elements=used)):
        full[used] = part[0]
    d_true = [d.reshape(A.shape) for d in d_true]
    true_map, true_alpha, _ = map_from_derivatives(A_kept, *d_true)
    closed_map, closed_alpha, _ = map_from_derivatives(A_kept, *closed_form(g))
    on = (g > 0) & keep[None, :, None, None]
    denominator = 2 * d_true[1] + A_kept.sum(axis=(2, 3), keepdims=True) * d_true[2]
    off = np.abs(true_alpha - closed_alpha)[on] > 0.1 * closed_alpha[on]
    scale = lambda m: m / m.max() if m.max() > 0 else m  # noqa: E731
    gap = np.abs(scale(true_map) - scale(closed_map)).max()
    print(f"  {name:<25}{len(used):>5} elements, {time.perf_counter() - started:4.1f} s:  alpha off by >10% at "
          f"{100 * off.mean():5.1f}%,  denominator <= 0 at {100 * (denominator[on] <= 0).mean():5.1f}% of them;  "
          f"max |map difference| (each map / its max) = {gap:.3f}")
    rows.append(name)
    maps_closed.append(scale(closed_map[0]))
    maps_true.append(scale(true_map[0]))

if MAP_CHANNELS == A.shape[1]:
    library = M.gradcam_pp(model64, x_check, np.array([c]), layer=LAYER, upsample=False, normalize=True)
    print(f"  check: the relu-head map from autodiff vs M.gradcam_pp (closed form): "
          f"max difference {np.abs(library[0] - maps_true[0]).max():.1e}")


def upsampled(maps):
    """(R, 14, 14) -> (R, 28, 28), bilinear with half-pixel centres (what the CAM methods use)."""
    return F.upsample_bilinear(Tensor(np.stack(maps)[:, None]), (28, 28)).numpy()[:, 0]


closed_up, true_up = upsampled(maps_closed), upsampled(maps_true)
difference = np.clip(true_up - closed_up, -1, 1)
images = np.repeat(x_check.astype(np.float32), len(rows), axis=0)
lesson.figure_grid(images, {"closed form (g^2, g^3)": viz.overlay_cam(images, closed_up),
                            "true derivatives (autodiff)": viz.overlay_cam(images, true_up),
                            "true - closed": difference},
                   "10_smooth_heads.png", row_labels=rows, cell_size=2.0, signed=["true - closed"],
                   colorbars={"closed form (g^2, g^3)": viz.CAM_SCALE, "true derivatives (autodiff)": viz.CAM_SCALE,
                              "true - closed": "true map - closed-form map (each / its max)"},
                   title=f"Grad-CAM++ of test #{unsure} with the exp trick and with the true derivatives"
                         + ("" if MAP_CHANNELS == A.shape[1] else f" ({MAP_CHANNELS} channels, quick run)"))

# %% [markdown]
# ## 5. Why divide by $e^S$?
#
# Every derivative of $Y$ carries the factor $e^{S}$. It cancels in $\alpha$ and only scales
# all weights $w_k$ alike, which normalising the map removes. Keeping it would be harmful:

# %%
largest = float(logits.max())
print(f"largest logit among the digits above: S = {largest:.1f}, e^S = {np.exp(np.float32(largest)):.3e} in float32")
with np.errstate(over="ignore"):
    print(f"a logit of 90 would give e^S = {np.exp(np.float32(90.0))} in float32 (overflow above S = 88.72)")

# %% [markdown]
# ## 6. What we see (numbers from a full run; yours are printed above)
#
# - **Maps.** On this network the two methods disagree more than one might expect
#   (correlation 0.16–0.70). Grad-CAM is sparse: about two thirds of its channel weights
#   $a_k$ are negative, the weighted sum is negative at most positions, and the final ReLU
#   leaves a few hot spots — on the 7, the 2 and the 0 just two or three, on the 1s and the
#   4 a band along the stroke. What survives lies mostly on the ink (mass on ink about 0.5,
#   except the 2), but covers little of it (coverage 0.01–0.84). Grad-CAM++ keeps only
#   positive gradients, so all its weights are non-negative and its map is a positive
#   mixture of feature maps: it covers 65–85% of the ink, and also the digit's surroundings,
#   where relu2 units stay active on the black background (conv biases). Whole-object
#   coverage, the property Grad-CAM++ was designed for, is what we see; "sharper" is not.
#   The case that motivated Grad-CAM++ — several objects of one class — is in lesson 11.
# - **Relu head.** Closed form, autodiff and finite differences agree: closed vs autodiff to
#   rounding error (about 1e-15 relative), finite differences to about 1e-7 for the first
#   and second derivative and 1e-5 for the third, whose difference quotient divides the
#   rounding error of $S$ by $h^3$. On the whole map, the autodiff-built Grad-CAM++ matches
#   `M.gradcam_pp` to 1e-16. Here the exp trick is exact.
# - **Softplus head.** Autodiff still agrees with finite differences, but the closed form
#   misses $\partial^2 S$ and $3 g\,\partial^2 S + \partial^3 S$: 2–3% of the largest
#   $\partial^2 Y$, $\partial^3 Y$, much more for the small ones. $\alpha$ is off by more than
#   10% at about 70% of the elements, the true denominator is not positive at about 30%
#   (there $\alpha$ is undefined and set to 0), and the map's hot spot moves (up to half
#   the map's maximum).
# - **Softmax score.** The closed form is wrong by about 100%: the true $\partial^2 Y$ is
#   *negative* (the probability, 0.84 here, is concave in these directions), so $\alpha$ is
#   negative or undefined almost everywhere and the true Grad-CAM++ of the probability is an
#   empty map, while the closed form still draws a plausible one. Grad-CAM++ of a
#   probability, as some code computes it, is not the formula it claims to be — which is why
#   minisg's specification (`minisg/methods/METHODS.md` §0) insists on the logit.
#
# ## Exercises
#
# 1. Show that for a piecewise-linear head $\alpha = 1/(2 + S_k g)$ lies in $(0, 1/2]$ where
#    $g > 0$. What does $\alpha$ do to a channel with a large total activation $S_k$?
# 2. Grad-CAM++ with a global-average-pooling head $S = \sum_k v_k \,\mathrm{mean}(A^k)$: derive
#    $w_k$ in closed form and compare with Grad-CAM's $a_k$. When do they rank channels
#    differently?
# 3. Replace the finite-difference step $h = 10^{-3}$ by $10^{-1}$ and $10^{-6}$. Which
#    errors grow, and why (truncation or rounding)?
# 4. The softplus head is a different network from the trained one. Sharpen it with
#    $\mathrm{softplus}_\beta(z) = \log(1 + e^{\beta z})/\beta$ for growing $\beta$: does the
#    closed form become right again?
#
# Graded exercises in `lessons/exercises/ex10_gradcam_pp.py`:
#
# - **10.1** `gradcampp_alpha`: $\alpha = g^2 / (2g^2 + S_k g^3)$ where $g > 0$;
# - **10.2** `gradcampp_weights`: $w_k = \sum_{ij} \alpha^k_{ij}\, \mathrm{relu}(g^k_{ij})$.
#
# Grade them with `minisg check 10` (or `python -m minisg check 10`).

# %%
lesson.finish()
