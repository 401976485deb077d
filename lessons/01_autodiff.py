# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 01 — Automatic differentiation, from the graph up
#
# Every method in the two papers starts from one quantity: the derivative of a class score
# with respect to something (the input pixels for SmoothGrad, a layer's activations for
# Grad-CAM++). Grad-CAM++ even needs the 2nd and 3rd derivatives. This lesson builds the
# tool that computes them, `minisg`'s reverse-mode autodiff engine, and checks it.
#
# 1. Tensors remember how they were made: a **graph** of Functions.
# 2. **Reverse mode** walks that graph backwards, applying the chain rule once per Function.
# 3. Because every backward pass is written with differentiable ops, the backward pass is a
#    graph too: **gradients of gradients** (2nd, 3rd derivatives) come for free.
# 4. **gradcheck** compares all of this with finite differences — and finite differences have
#    their own errors, which we measure.
#
# Run it: `python lessons/01_autodiff.py` (add `--quick` for a fast pass). Figures go to
# `lessons/out/01_*.png`.

# %%
import sys
import time
from pathlib import Path

import numpy as np

# In a source checkout, use the minisg beside the lessons (installed or not); anywhere else the installed one.
REPO = Path(__file__).resolve().parents[1] if "__file__" in globals() else Path.cwd().parent  # Jupyter: no __file__
if (REPO / "minisg" / "__init__.py").is_file():
    sys.path.insert(0, str(REPO))

import minisg  # noqa: E402
from minisg import Function, Tensor, grad  # noqa: E402
from minisg import functional as F  # noqa: E402
from minisg.classroom.lesson import setup  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

# --quick for a fast pass, --out DIR for the figures (minisg/classroom/lesson.py)
lesson = setup("01", "autodiff, higher derivatives, gradcheck", quick="smaller grids (a few seconds)")


# %% [markdown]
# ## 1. A Tensor and its graph
#
# A `Tensor` holds an array. If it was computed from other tensors that need gradients, it
# also holds its `creator`: the `Function` (an op such as `Mul` or `Tanh`) that produced it,
# and through that Function's `inputs`, everything upstream. Take
#
# $$L(x, w) = \sum_i \tanh(x_i w_i).$$
#
# Computing `L` runs three Functions, `Mul`, `Tanh` and `Sum`, and records them.

# %%
x = minisg.tensor([0.5, -1.0, 2.0], requires_grad=True)
w = minisg.tensor([1.5, 0.3, -0.4], requires_grad=True)
L = F.tanh(x * w).sum()


def show_graph(t, depth=0, seen=None):
    """Print the Functions that produced `t`, newest first, one level of indent per step back."""
    seen = set() if seen is None else seen
    pad = "    " * depth
    if t.creator is None:
        print(f"{pad}leaf {t.shape} {t.dtype} requires_grad={t.requires_grad}")
        return
    f = t.creator
    again = " (shown above)" if id(f) in seen else ""
    print(f"{pad}{f.name} -> output {t.shape}, generation {f.generation}{again}")
    if again:
        return
    seen.add(id(f))
    for parent in f.inputs:
        show_graph(parent, depth + 1, seen)


print("L =", L.item())
show_graph(L)

# %% [markdown]
# ## 2. Reverse mode: the chain rule, one Function at a time
#
# Write the computation as a chain $x \to u = x \odot w \to y = \tanh(u) \to L = \sum y$.
# The chain rule for the gradient of the scalar $L$ reads, from the output backwards,
#
# $$\frac{\partial L}{\partial y_i} = 1, \qquad
#   \frac{\partial L}{\partial u_i} = \frac{\partial L}{\partial y_i}\,(1 - \tanh^2 u_i), \qquad
#   \frac{\partial L}{\partial x_i} = \frac{\partial L}{\partial u_i}\, w_i .$$
#
# Each Function only needs to know its own local rule: given $\bar y = \partial L/\partial y$
# (the *cotangent* arriving at its output) return $\bar u = \bar y\, \partial y/\partial u$ for each
# input. That is a vector–Jacobian product, and `backward()` runs them in reverse topological
# order (latest Function first). One backward pass gives the gradient with respect to *every*
# input, whatever their number: that is why a whole sensitivity map (784 partial derivatives)
# costs a small multiple of one forward pass, not 784 of them.

# %%
L.backward()
by_hand = w.numpy() * (1 - np.tanh(x.numpy() * w.numpy()) ** 2)
print("x.grad (backprop):", x.grad.numpy())
print("x.grad (by hand): ", by_hand)
print("w.grad (backprop):", w.grad.numpy(), " by hand:", x.numpy() * (1 - np.tanh(x.numpy() * w.numpy()) ** 2))

# %% [markdown]
# **Gradients accumulate.** As in PyTorch, `backward()` *adds* into `.grad`. Run it twice and
# you get twice the gradient — the reason every training loop calls `zero_grad()`.
# `minisg.grad(outputs, inputs)` returns the gradients instead and leaves `.grad` alone.

# %%
L2 = F.tanh(x * w).sum()
L2.backward()
print("after a second backward, x.grad / by_hand =", x.grad.numpy() / by_hand)
x.zero_grad()
(gx,) = grad(F.tanh(x * w).sum(), x)
print("minisg.grad gives", gx.numpy(), "and x.grad stays", x.grad)

# %% [markdown]
# ### Writing your own Function
#
# A Function has two halves. `forward(self, *arrays)` works on plain NumPy arrays; it records
# nothing. `backward(self, g)` receives the cotangent `g` as a **Tensor** and must return
# the input's cotangent as a Tensor built from minisg ops. Here is $y = x^3$ with
# $\partial L/\partial x = g \cdot 3x^2$, written twice: the right way, and a version whose
# backward drops to NumPy. Both give the right first derivative.

# %%
class Cube(Function):
    def forward(self, x):
        return x ** 3

    def backward(self, g):
        x = self.inputs[0]                  # the input Tensor, kept by Function.__call__
        return g * 3.0 * x * x              # minisg ops: this expression is itself a graph


class CubeNumpyBackward(Function):
    def forward(self, x):
        return x ** 3

    def backward(self, g):
        x = self.inputs[0]
        return g * Tensor(3.0 * x.data ** 2)  # correct numbers, but a constant: the graph is cut


z = minisg.tensor([0.5, -1.5, 2.0], requires_grad=True, dtype=np.float64)
for op in (Cube, CubeNumpyBackward):
    (first,) = grad(op()(z).sum(), z, create_graph=True)
    print(f"{op.__name__:18s} dy/dx = {first.numpy()}  (3x^2 = {3 * z.numpy() ** 2})  "
          f"differentiable again: {first.requires_grad}")

# %% [markdown]
# The second version cannot be differentiated again — which the next section needs.
# (Exercise 01.1 asks you to write `Exp.backward` the right way.)
#
# ## 3. Gradients of gradients
#
# With `create_graph=True`, the backward pass is *recorded*: the gradient comes back as a
# Tensor with its own graph, and `grad` can be applied to it again. For an elementwise
# function $f$ applied to a vector $x$, the Jacobian is diagonal, so
# $\partial \big(\sum_i f(x_i)\big)/\partial x_i = f'(x_i)$: summing and differentiating gives every
# derivative at once, and repeating it gives $f''$, $f'''$. For $f = \tanh$, with $t = \tanh x$,
#
# $$f' = 1 - t^2,\qquad f'' = -2t(1 - t^2),\qquad f''' = -2(1 - t^2)(1 - 3t^2).$$

# %%
grid = np.linspace(-3, 3, 41 if lesson.quick else 241)
xs = minisg.tensor(grid, requires_grad=True, dtype=np.float64)
f0 = F.tanh(xs)
(d1,) = grad(f0.sum(), xs, create_graph=True)
(d2,) = grad(d1.sum(), xs, create_graph=True)
(d3,) = grad(d2.sum(), xs)
t = np.tanh(grid)
closed = {"f' ": 1 - t ** 2, "f''": -2 * t * (1 - t ** 2), "f'''": -2 * (1 - t ** 2) * (1 - 3 * t ** 2)}
autodiff = {"f' ": d1.numpy(), "f''": d2.numpy(), "f'''": d3.numpy()}
print(f"tanh on {len(grid)} points in [-3, 3], float64: max |autodiff - closed form|")
for key in closed:
    print(f"  {key}: {np.abs(autodiff[key] - closed[key]).max():.2e}")

figure = Figure(figsize=(7.5, 4))
ax = figure.subplots()
colours = ["k", "tab:blue", "tab:orange", "tab:green"]
ax.plot(grid, t, color=colours[0], label=r"$\tanh x$")
step = max(1, len(grid) // 40)
for colour, key, label in zip(colours[1:], closed, ["f'", "f''", "f'''"]):
    ax.plot(grid, autodiff[key], color=colour, label=f"{label} by autodiff")
    ax.plot(grid[::step], closed[key][::step], "o", ms=4, mfc="none", color=colour,
            label=f"{label} closed form")
ax.axhline(0, color="0.8", lw=0.8)
ax.set_xlabel("x")
ax.set_title(r"$\tanh$ and its derivatives: grad of grad of grad (lines) vs closed forms (circles)", fontsize=9)
ax.legend(fontsize=7, ncol=2)
figure.tight_layout()
lesson.save(figure, "01_higher_derivatives.png")

# %% [markdown]
# ### A preview of Grad-CAM++: exp of a piecewise-linear score
#
# Grad-CAM++ (lesson 10) differentiates $Y = e^{S}$ twice and three times with respect to a
# layer's activations $A$. When $S$ is piecewise linear in $A$ (ReLUs, max-pools, linear
# layers) its own second derivative is zero almost everywhere, so with $g = \partial S/\partial A$
#
# $$\frac{\partial^2 Y}{\partial A_i^2} = e^S g_i^2 ,\qquad \frac{\partial^3 Y}{\partial A_i^3} = e^S g_i^3 .$$
#
# The engine knows nothing about this identity; it just differentiates through ReLU (whose
# mask is a constant of the graph). The diagonal of the Hessian comes from one Hessian–vector
# product per unit vector $e_i$: $H e_i = \partial (g \cdot e_i)/\partial A$.

# %%
rng = np.random.default_rng(1)
W1 = Tensor(rng.standard_normal((6, 5)))
v = Tensor(rng.standard_normal((1, 6)))
a = Tensor(rng.standard_normal((5, 1)), requires_grad=True)
S = (v @ F.relu(W1 @ a)).sum()
Y = F.exp(S)
(dY,) = grad(Y, a, create_graph=True)
(g,) = grad(S, a)
hess_diag, third_diag = [], []
for i in range(5):
    e = np.zeros((5, 1))
    e[i] = 1.0
    (column,) = grad((dY * Tensor(e)).sum(), a, create_graph=True)     # H e_i
    hess_diag.append(column.numpy()[i, 0])
    (third,) = grad((column * Tensor(e)).sum(), a)                       # d/dA_i of H_ii
    third_diag.append(third.numpy()[i, 0])
eS, g_np = np.exp(S.item()), g.numpy()[:, 0]
print("i   d2Y/dA_i^2 autodiff   e^S g_i^2      d3Y/dA_i^3 autodiff   e^S g_i^3")
for i in range(5):
    print(f"{i}   {hess_diag[i]:18.10f}  {eS * g_np[i] ** 2:14.10f}   {third_diag[i]:18.10f}  {eS * g_np[i] ** 3:14.10f}")

# %% [markdown]
# ## 4. Finite differences, and what they can and cannot tell us
#
# The oracle for any derivative is the central difference
#
# $$f'(x) \approx \frac{f(x + h) - f(x - h)}{2h}, \qquad
#   \text{error} \approx \underbrace{\tfrac{h^2}{6}\,|f'''(x)|}_{\text{truncation}}
#   + \underbrace{\frac{\epsilon_{\text{mach}}\,|f(x)|}{h}}_{\text{rounding}} .$$
#
# Shrinking $h$ cuts the truncation error but amplifies rounding, so the error is smallest
# near $h \approx \epsilon_{\text{mach}}^{1/3}$: about $6\cdot10^{-6}$ in float64
# ($\epsilon = 2.2\cdot10^{-16}$) and $5\cdot10^{-3}$ in float32 ($\epsilon = 1.2\cdot10^{-7}$).
# In float32 even a well-chosen step leaves an error of about $10^{-6}$–$10^{-5}$ (relative
# to a derivative of size 2.5), and it jumps by orders of magnitude between neighbouring steps:
# far too coarse to catch a subtle bug. That is why every check in minisg runs in float64.
# (Below about $h = 3\cdot10^{-8}$, $x \pm h$ rounds to $x$ itself in float32: no points.)
#
# We measure it for $f(x) = \tanh(x)\,e^{x}$ at $x = 0.7$, where
# $f'(x) = e^x(\tanh x + 1 - \tanh^2 x)$.

# %%
x0 = 0.7
exact = np.exp(x0) * (np.tanh(x0) + 1 - np.tanh(x0) ** 2)


def f_scalar(value, dtype):
    t = minisg.tensor([value], dtype=dtype)
    return float((F.tanh(t) * F.exp(t)).sum().item())


steps = np.logspace(-1, -12, 12 if lesson.quick else 34)
fd_error = {}
for dtype in (np.float64, np.float32):
    errors = []
    for h in steps:
        # the step that the dtype can actually represent around x0, as one would in practice
        hi, lo = dtype(x0) + dtype(h), dtype(x0) - dtype(h)
        errors.append(abs((f_scalar(hi, dtype) - f_scalar(lo, dtype)) / float(hi - lo) - exact)
                      if hi != lo else np.nan)
    fd_error[np.dtype(dtype).name] = np.array(errors)
xs32 = minisg.tensor([x0], requires_grad=True, dtype=np.float32)
(autodiff32,) = grad((F.tanh(xs32) * F.exp(xs32)).sum(), xs32)
autodiff_error = {"float32": abs(autodiff32.item() - exact)}
xs64 = minisg.tensor([x0], requires_grad=True, dtype=np.float64)
(autodiff64,) = grad((F.tanh(xs64) * F.exp(xs64)).sum(), xs64)
autodiff_error["float64"] = abs(autodiff64.item() - exact)

print(f"f'(0.7) = {exact:.15f}; error of central differences by step h:")
print(f"{'h':>9}  {'float64':>10}  {'float32':>10}")
for h, e64, e32 in zip(steps, fd_error["float64"], fd_error["float32"]):
    print(f"{h:9.1e}  {e64:10.2e}  {e32:10.2e}")
for name in ("float64", "float32"):
    errors = fd_error[name]
    best = np.nanargmin(errors)
    print(f"{name}: best step h = {steps[best]:.1e} with error {errors[best]:.1e}; "
          f"autodiff error {autodiff_error[name]:.1e}")

figure = Figure(figsize=(8.5, 4), layout="constrained")
ax = figure.subplots()
for name, colour in (("float64", "tab:blue"), ("float32", "tab:red")):
    ax.loglog(steps, np.where(fd_error[name] > 0, fd_error[name], np.nan), "o-", ms=3, color=colour,
              label=f"central differences, {name}")
    ax.axhline(max(autodiff_error[name], 1e-17), color=colour, ls="--", lw=1,
               label=f"autodiff, {name}" + (" (exact to print precision)" if autodiff_error[name] == 0 else ""))
    eps = np.finfo(name).eps
    ax.axvline(eps ** (1 / 3), color=colour, ls=":", lw=1)
ax.invert_xaxis()
ax.set_xlabel("step h (dotted: $\\epsilon_{mach}^{1/3}$)")
ax.set_ylabel("|error| of f'(0.7)")
ax.set_title(r"Central differences for $f(x) = \tanh(x)e^x$: truncation ($h^2$) vs rounding ($\epsilon/h$)", fontsize=9)
ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))     # outside: the curves fill the plot
lesson.save(figure, "01_finite_differences.png")

# %% [markdown]
# ### gradcheck
#
# `minisg.gradcheck(f, inputs)` turns this into a test for any function of any shapes: it
# draws a random cotangent $u$, backpropagates $\sum u \odot f(\text{inputs})$ once, and compares
# every partial derivative with a central difference (float64, $h = 10^{-6}$).
# `gradgradcheck` does the same for the function *input ↦ its gradient*, which checks second
# derivatives. Here both run through a small CNN block — convolution, ReLU, max-pool, a
# linear layer and log-softmax — with respect to the image *and* the weights.

# %%
rng = np.random.default_rng(0)
image = rng.standard_normal((2, 1, 6, 6))
kernel = rng.standard_normal((3, 1, 3, 3)) * 0.5
dense = rng.standard_normal((4, 3 * 3 * 3)) * 0.3


def block(img, ker, lin):
    h = F.max_pool2d(F.relu(F.conv2d(img, ker, padding=1)), 2)
    return F.log_softmax(F.linear(F.flatten(h), lin), axis=1)


for check in (minisg.gradcheck, minisg.gradgradcheck):
    started = time.perf_counter()
    ok = check(block, [image, kernel, dense])
    print(f"{check.__name__}(conv -> relu -> maxpool -> linear -> log_softmax): {ok} "
          f"({image.size + kernel.size + dense.size} inputs, {time.perf_counter() - started:.2f} s)")

# %% [markdown]
# A check that cannot fail proves nothing. Plant a classic bug — a sigmoid whose backward
# forgets the factor $(1 - s)$ — and gradcheck names the element that disagrees:

# %%
class BuggySigmoid(Function):
    def forward(self, x):
        return 1 / (1 + np.exp(-x))

    def backward(self, g):
        s = F.sigmoid(self.inputs[0])
        return g * s                        # should be g * s * (1 - s)


try:
    minisg.gradcheck(lambda t: BuggySigmoid()(t), [rng.standard_normal(5)])
    print("the bug went unnoticed (this should not happen)")
except minisg.GradcheckError as error:
    print("caught:", error)

# %% [markdown]
# And the cube whose backward dropped to NumPy passes `gradcheck` (its first derivative is
# right) but fails `gradgradcheck`: its gradient carries no graph, so autodiff sees a
# second derivative of zero while finite differences see $6x$.

# %%
cube_input = [np.array([0.5, -1.5, 2.0])]
print("gradcheck(CubeNumpyBackward):", minisg.gradcheck(lambda t: CubeNumpyBackward()(t), cube_input))
try:
    minisg.gradgradcheck(lambda t: CubeNumpyBackward()(t), cube_input)
except minisg.GradcheckError as error:
    print("gradgradcheck(CubeNumpyBackward) caught:", error)
print("gradgradcheck(Cube):", minisg.gradgradcheck(lambda t: Cube()(t), cube_input))

# %% [markdown]
# ### Where finite differences and autodiff *should* disagree: kinks and ties
#
# ReLU has no derivative at 0 and a max has none where two entries tie. Autodiff must pick a
# value: minisg uses ReLU'(0) = 0 and sends a max's gradient to the **first** maximum (row-major).
# A central difference straddles the kink and reports the average slope, 0.5. Neither is
# wrong; they answer different questions. So gradchecks choose inputs away from kinks and ties
# — and on MNIST, whose black background makes max-pool ties the rule rather than the
# exception, the tie rule is a real modelling choice (lesson 02).

# %%
h = 1e-6
kink = minisg.tensor([0.0], requires_grad=True, dtype=np.float64)
(relu_grad,) = grad(F.relu(kink).sum(), kink)
relu_fd = (max(h, 0.0) - max(-h, 0.0)) / (2 * h)
pair = minisg.tensor([1.0, 1.0], requires_grad=True, dtype=np.float64)
(max_grad,) = grad(F.max(pair), pair)
max_fd = [(max(1 + h, 1.0) - max(1 - h, 1.0)) / (2 * h), (max(1.0, 1 + h) - max(1.0, 1 - h)) / (2 * h)]
print(f"ReLU at 0:        autodiff {relu_grad.item():.1f}, central difference {relu_fd:.1f}")
print(f"max(a, b), a = b: autodiff {max_grad.numpy()}, central differences {np.round(max_fd, 6)}")

# %% [markdown]
# ## Exercises
#
# Questions to think about:
#
# 1. The graph of `L` above had generations 0, 1, 2. Why must backward visit Functions in
#    decreasing generation order? Construct a graph in which a naive depth-first order would
#    use a cotangent before all its contributions have been added.
# 2. One backward pass gives all 784 partial derivatives of a logit. How many forward passes
#    would central differences need for the same map, and how many for the *diagonal* of the
#    Hessian by differences of gradients?
# 3. Read the table of section 4: at which $h$ is float32 best, and why does its error then
#    *grow* as $h$ shrinks? What step would you choose for a float64 check of a function whose
#    values are around $10^4$?
# 4. The ReLU network's Hessian diagonal above equals $e^S g^2$ exactly. Would it still if the
#    ReLUs were replaced by softplus? (Lesson 10 answers this.)
#
# Graded exercises in `lessons/exercises/ex01_autodiff.py`:
#
# - **01.1** `Exp.backward`, written so that it can be differentiated again;
# - **01.2** `LogSoftmax.backward` along any axis, also twice differentiable;
# - **01.3** `numerical_gradient`: central differences for every element of an array.
#
# Grade them with `minisg check 01` (or `python -m minisg check 01` without installing).

# %%
lesson.finish()
