"""Exact max-pool ties: identical input patches give bit-identical convolution outputs, so a
window's gradient goes to its first maximum whatever the conv algorithm, BLAS kernel, thread
count or batch (minisg/kernels/cpu_ties.py). Then minisg's maps equal PyTorch/Captum's on
clean digits, and equal each other across machines' settings."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from minisg.kernels import array_ties, cpu, cpu_ties

DTYPES = [np.float32, np.float64]


# ----------------------------------------------------------------------------------------------
# The kernel: against a brute-force grouping of patches
# ----------------------------------------------------------------------------------------------

def _patches(x, kernel_hw, stride, padding):
    """(N, OH*OW) list of each output position's padded patch as bytes (-0.0 as +0.0)."""
    (kh, kw), (sh, sw), (ph, pw) = kernel_hw, stride, padding
    padded = np.pad(x + x.dtype.type(0), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    N, _, Hp, Wp = padded.shape
    OH, OW = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    return [[padded[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw].tobytes()
             for i in range(OH) for j in range(OW)] for n in range(N)], (OH, OW)


def _expected(x, y, kernel_hw, stride, padding):
    """y with every position's output replaced by the first identical patch's (brute force)."""
    patches, (OH, OW) = _patches(x, kernel_hw, stride, padding)
    out = y.copy().reshape(y.shape[0], y.shape[1], -1)
    for n, image in enumerate(patches):
        first = {}
        for q, patch in enumerate(image):
            out[n, :, q] = out[n, :, first.setdefault(patch, q)]
    return out.reshape(y.shape)


def _inputs_with_repeats(rng, dtype, N=3, C=4, H=9, W=11):
    """Random images with flat zero and non-zero regions, repeated blocks and a -0.0."""
    x = rng.normal(size=(N, C, H, W)).astype(dtype)
    x[0, :, :4, :] = 0.0                                      # black: equal to the zero padding
    x[1, :, 2:7, 3:9] = rng.normal(size=(C, 1, 1)).astype(dtype)  # a flat non-zero region
    x[2, :, 0:3, 0:3] = x[2, :, 5:8, 6:9]                    # a block repeated elsewhere
    x[0, 1, 0, 0] = -0.0
    return x


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geometry", [((1, 1), (1, 1), (0, 0)), ((3, 3), (1, 1), (1, 1)), ((5, 5), (1, 1), (2, 2)),
                                      ((2, 3), (2, 1), (0, 1)), ((3, 3), (2, 2), (0, 0))])
@pytest.mark.parametrize("equalise", [cpu_ties.equalise, array_ties.equalise], ids=["numba", "arrays"])
def test_equalise_copies_the_first_identical_patch(dtype, geometry, equalise):
    rng = np.random.default_rng(0)
    x = _inputs_with_repeats(rng, dtype)
    kernel_hw, stride, padding = geometry
    patches, (OH, OW) = _patches(x, *geometry)
    y = rng.normal(size=(len(x), 5, OH, OW)).astype(dtype)   # distinct values: a copy shows
    expected = _expected(x, y, *geometry)
    assert not np.array_equal(expected, y)                    # the inputs do repeat patches
    np.testing.assert_array_equal(equalise(x, y.copy(), *geometry), expected)


def test_equalise_leaves_distinct_patches_alone():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 8, 8))
    y = rng.normal(size=(2, 4, 8, 8))
    for equalise in (cpu_ties.equalise, array_ties.equalise):
        np.testing.assert_array_equal(equalise(x, y.copy(), (3, 3), (1, 1), (1, 1)), y)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("winograd", [False, True])
def test_conv_gives_identical_patches_identical_outputs(dtype, winograd, monkeypatch):
    """Both CPU algorithms (Winograd is the one whose tiles round equal values differently)."""
    monkeypatch.setattr(cpu, "_FAST_GEMM", not winograd)
    monkeypatch.setattr(cpu, "_WINOGRAD_DTYPES", tuple(map(np.dtype, DTYPES)))
    rng = np.random.default_rng(2)
    x = _inputs_with_repeats(rng, dtype, N=4, C=16, H=14, W=14)
    w = rng.normal(size=(16, 16, 5, 5)).astype(dtype)
    y = cpu.conv2d_forward(x, w, (1, 1), (2, 2))
    patches, _ = _patches(x, (5, 5), (1, 1), (2, 2))
    flat = y.reshape(len(x), 16, -1)
    for n, image in enumerate(patches):
        first = {}
        for q, patch in enumerate(image):
            np.testing.assert_array_equal(flat[n, :, q], flat[n, :, first.setdefault(patch, q)])


# ----------------------------------------------------------------------------------------------
# Maps: equal to PyTorch / Captum on the shipped weights, on clean test digits
# ----------------------------------------------------------------------------------------------

TOLERANCE = {np.float32: 1e-6, np.float64: 1e-12}   # of each map's peak


@pytest.fixture(scope="module")
def digits():
    from minisg.data.mnist import load_mnist
    images, _ = load_mnist("test")
    return images[:16]


def _torch_net(torch, model, dtype):
    from minisg.tools.bench_torch import build_net
    weights = {k: np.asarray(v, dtype) for k, v in model.state_dict().items()}
    torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
    return build_net(torch, weights, "cpu").to(torch_dtype).eval()


def _assert_maps_equal(mine, theirs, dtype):
    peak = np.abs(theirs).reshape(len(theirs), -1).max(axis=1)
    worst = (np.abs(mine - theirs).reshape(len(theirs), -1).max(axis=1) / peak).max()
    assert worst <= TOLERANCE[dtype], f"largest difference {worst:.3g} of a map's peak"


def _captum_cases(captum, torch, x, baseline):
    from captum import attr
    yield "vanilla_gradient", {}, lambda net, t: attr.Saliency(net).attribute(x, target=t, abs=False)
    yield "gradient_x_input", {}, lambda net, t: attr.InputXGradient(net).attribute(x, target=t)
    yield "guided_backprop", {}, lambda net, t: attr.GuidedBackprop(net).attribute(x, target=t)
    yield "deconvnet", {}, lambda net, t: attr.Deconvolution(net).attribute(x, target=t)
    for rule in ("right", "left", "middle"):
        for name, b in (("zero", None), ("grey", baseline)):
            base = 0.0 if b is None else torch.from_numpy(b)
            yield (f"integrated_gradients[{rule}, {name} baseline]", dict(rule=rule, steps=8, baseline=b),
                   lambda net, t, rule=rule, base=base: attr.IntegratedGradients(net).attribute(
                       x, baselines=base, target=t, n_steps=8, method=f"riemann_{rule}"))


@pytest.mark.parametrize("dtype", DTYPES)
def test_maps_equal_captum_on_clean_digits(dtype, digits):
    torch = pytest.importorskip("torch")
    captum = pytest.importorskip("captum")
    from minisg import methods, models
    model = models.load("mnist_cnn", dtype=dtype)
    net = _torch_net(torch, model, dtype)
    images = digits.astype(dtype)
    x = torch.from_numpy(images)
    target = net(x).argmax(axis=1)
    baseline = np.full_like(images, 0.25)
    for name, options, captum_map in _captum_cases(captum, torch, x, baseline):
        method = getattr(methods, name.split("[")[0])
        mine = method(model, images, target.numpy(), **options)
        theirs = captum_map(net, target).detach().numpy()
        try:
            _assert_maps_equal(mine, theirs, dtype)
        except AssertionError as error:
            raise AssertionError(f"{name}: {error}") from None


@pytest.mark.parametrize("dtype", DTYPES)
def test_trapezoid_ig_equals_torch(dtype, digits):
    """Captum's trapezoid weights sum to (m-1)/m (METHODS.md), so the reference is PyTorch's
    gradients at minisg's documented points and weights."""
    torch = pytest.importorskip("torch")
    from minisg import methods, models
    from minisg.methods.integrated_gradients import path_points_and_weights
    model = models.load("mnist_cnn", dtype=dtype)
    net = _torch_net(torch, model, dtype)
    images, baseline = digits.astype(dtype), np.full(digits.shape, 0.25, dtype)
    target = net(torch.from_numpy(images)).argmax(axis=1)
    alphas, weights = path_points_and_weights(8, "trapezoid")
    for b in (np.zeros_like(images), baseline):
        step = (images - b).astype(np.float64)
        total = 0.0
        for alpha, weight in zip(alphas, weights):
            point = torch.from_numpy((b + alpha * step).astype(dtype)).requires_grad_()
            net(point).gather(1, target[:, None]).sum().backward()
            total = total + weight * point.grad.numpy().astype(np.float64)
        theirs = step * total
        mine = methods.integrated_gradients(model, images, target.numpy(), baseline=b, steps=8, rule="trapezoid")
        _assert_maps_equal(mine, theirs, dtype)


# ----------------------------------------------------------------------------------------------
# Maps: equal across BLAS kernels, thread counts, conv algorithms and batches
# ----------------------------------------------------------------------------------------------

_MAPS_SCRIPT = r"""
import sys, numpy as np
from minisg import methods, models
from minisg.data.mnist import load_mnist
images = load_mnist("test")[0][:48]
model = models.load("mnist_cnn")
np.savez(sys.argv[1], vanilla=methods.vanilla_gradient(model, images, 0),
         guided=methods.guided_backprop(model, images, 0))
"""


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as info:
            return set(" ".join(line for line in info if line.startswith("flags")).split())
    except OSError:
        return set()


def _coretypes():
    """OpenBLAS kernel sets this CPU can run (a forced AVX-512 set on an AVX2 CPU would crash)."""
    flags = _cpu_flags()
    needs = {"Nehalem": "sse4_2", "Sandybridge": "avx", "Haswell": "avx2", "SkylakeX": "avx512f"}
    return [core for core, flag in needs.items() if flag in flags]


def _maps_in_subprocess(tmp_path, name, **env):
    out = tmp_path / f"{name}.npz"
    environment = {**os.environ, **env}
    subprocess.run([sys.executable, "-c", _MAPS_SCRIPT, str(out)], env=environment, check=True,
                   capture_output=True, text=True, timeout=300)
    with np.load(out) as maps:
        return {key: maps[key] for key in maps.files}


def _assert_same_maps(a, b, label):
    for key in a:
        peak = np.abs(a[key]).reshape(len(a[key]), -1).max(axis=1, keepdims=True)
        worst = (np.abs(a[key] - b[key]).reshape(len(a[key]), -1) / peak).max()
        assert worst <= 1e-6, f"{label}: {key} maps differ by {worst:.3g} of their peak"


def test_maps_equal_across_blas_kernels_and_thread_counts(tmp_path):
    cores = _coretypes()
    if len(cores) < 2:
        pytest.skip(f"needs two OpenBLAS kernel sets this CPU runs, found {cores}")
    runs = {f"OPENBLAS_CORETYPE={core}": dict(OPENBLAS_CORETYPE=core) for core in cores}
    runs.update({f"MINISG_THREADS={t}": dict(MINISG_THREADS=str(t)) for t in (1, 2)})
    runs["MINISG_KERNEL_THREADS=2"] = dict(MINISG_KERNEL_THREADS="2")
    maps = {label: _maps_in_subprocess(tmp_path, str(i), **env) for i, (label, env) in enumerate(runs.items())}
    first_label, first = next(iter(maps.items()))
    for label, other in maps.items():
        _assert_same_maps(first, other, f"{first_label} vs {label}")


@pytest.mark.parametrize("dtype, winograd", [(np.float32, False), (np.float64, False), (np.float64, True)])
def test_maps_equal_alone_and_in_a_batch(digits, dtype, winograd, monkeypatch):
    """Winograd serves float64 only (its float32 rounding alone is 3e-6 of the peak)."""
    from minisg import methods, models
    monkeypatch.setattr(cpu, "_FAST_GEMM", not winograd)
    model = models.load("mnist_cnn", dtype=dtype)
    images = digits.astype(dtype)
    batch = {"vanilla": methods.vanilla_gradient(model, images, 0),
             "guided": methods.guided_backprop(model, images, 0)}
    for i in (0, 5, 11):
        alone = {"vanilla": methods.vanilla_gradient(model, images[i:i + 1], 0),
                 "guided": methods.guided_backprop(model, images[i:i + 1], 0)}
        _assert_same_maps({k: v[i:i + 1] for k, v in batch.items()}, alone, f"image {i} alone vs in the batch")
