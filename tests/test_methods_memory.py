"""Memory bounded by batch_size, not by N*n (issue 16): the sampling methods hold one chunk of
rows (noisy copies, path points, hidden patches) at a time and keep running sums.

Each method is checked against a reference written here that holds everything at once, as the
methods did before: the same numbers (bit for bit where the sums run in the same order), for
batch sizes that split an image's samples across chunks. Memory is checked with tracemalloc
(NumPy's buffers are traced): the peak must not grow with n or with the number of patches.
"""
import tracemalloc

import numpy as np
import pytest

import minisg
from minisg import data, methods as M, nn
from minisg.methods._common import layer_gradients
from minisg.methods._running import RunningSum, RunningVariance, chunk_size, runs
from minisg.methods.gradcam import cam_from_weights, finish_cam, gradcampp_alpha
from minisg.methods.integrated_gradients import path_points_and_weights
from minisg.methods.occlusion import patch_starts
from minisg.methods.smooth_gradcam_pp import torchcam_weights
from small_models import tiny_cnn

BATCH_SIZES = [None, 1, 3, 7, 64]     # 3 and 7 split an image's n = 5 samples across chunks


def conv_pool_model(seed=0, dtype=np.float64):
    """conv + relu + global average pooling + linear: any image size (occlusion of big images)."""
    common = dict(rng=np.random.default_rng(seed), dtype=dtype)
    return nn.Sequential(("conv", nn.Conv2d(1, 4, 3, padding=1, **common)), ("relu", nn.ReLU()),
                         ("pool", nn.GlobalAvgPool2d()), ("fc", nn.Linear(4, 3, **common)))


@pytest.fixture
def images():
    x = np.random.default_rng(1).random((3, 1, 8, 8))
    x[1] = 0.25                                           # a constant image: sigma 0, its clean map
    return x


# ----------------------------------------------------------------------------- references: all at once

def all_noisy_copies(x, n, noise_level, seed):
    """(N*n, C, H, W): every noisy copy at once, as minisg drew them before (float64 draws)."""
    sigmas = data.noise_stdevs(x, noise_level)
    return data.gaussian_noise(x, sigmas, np.random.default_rng(seed), copies=n, dtype=np.float64), sigmas


def reduce_all(maps, kind):
    if kind == "mean":
        return maps.mean(axis=1)
    if kind == "squared":
        return (maps * maps).mean(axis=1)
    deviation = maps - maps.mean(axis=1, keepdims=True)           # two-pass variance
    return (deviation * deviation).mean(axis=1)


def smoothgrad_all_at_once(model, x, target, method, n, noise_level, kind, seed, batch_size=None, **kwargs):
    noisy, sigmas = all_noisy_copies(x, n, noise_level, seed)
    if batch_size is not None:
        kwargs["batch_size"] = batch_size
    kwargs = {key: np.repeat(value, n, axis=0) if isinstance(value, np.ndarray) and value.ndim == 4 else value
              for key, value in kwargs.items()}
    maps = np.asarray(method(model, noisy, np.repeat(target, n), **kwargs)).reshape((len(x), n) + x.shape[1:])
    result = reduce_all(maps, kind)
    constant = sigmas == 0
    result[constant] = reduce_all(maps[constant, :1], kind)
    return result.astype(x.dtype)


def integrated_gradients_all_at_once(model, x, target, steps, rule="right", batch_size=None):
    alphas, weights = path_points_and_weights(steps, rule)
    step = x.astype(np.float64)                                   # baseline 0
    path = (alphas.reshape(1, -1, 1, 1, 1) * step[:, None]).reshape((-1,) + x.shape[1:]).astype(x.dtype)
    gradients = M.vanilla_gradient(model, path, np.repeat(target, steps), batch_size=batch_size)
    gradients = gradients.reshape((len(x), steps) + x.shape[1:]).astype(np.float64)
    return (step * np.tensordot(weights, gradients, axes=([0], [1]))).astype(x.dtype)


def smooth_gradcam_pp_all_at_once(model, x, target, layer, n, noise_level, seed, variant, batch_size=None):
    A, g = layer_gradients(model, x, target, layer, batch_size)
    noisy, sigmas = all_noisy_copies(x, n, noise_level, seed)
    noisy_A, noisy_g = layer_gradients(model, noisy, np.repeat(target, n), layer, batch_size)
    samples_A, samples_g = (a.reshape((len(x), n) + A.shape[1:]) for a in (noisy_A, noisy_g))
    samples_A[sigmas == 0], samples_g[sigmas == 0] = A[sigmas == 0, None], g[sigmas == 0, None]
    squared = samples_g * samples_g
    m1, m2, m3 = samples_g.mean(axis=1), squared.mean(axis=1), (squared * samples_g).mean(axis=1)
    if variant == "paper":
        alpha = gradcampp_alpha(A, m2, m3, where=m2 > 0)
        cam = cam_from_weights((alpha * np.maximum(m1, 0)).sum(axis=(2, 3)), A)
    else:
        weights = torchcam_weights(A, m2, m3, samples_g[:, -1])
        cam = np.maximum(np.nansum(weights[:, :, None, None] * samples_A[:, -1], axis=1), 0)
    return finish_cam(cam, x.shape[2:], True, False)


def occlusion_all_at_once(model, x, target, patch, stride, batch_size=None):
    count, channels, height, width = x.shape
    corners = [(r, c) for r in patch_starts(height, patch, stride) for c in patch_starts(width, patch, stride)]
    hidden = np.repeat(x[:, None], len(corners), axis=1)
    for p, (r, c) in enumerate(corners):
        hidden[:, p, :, r:r + patch, c:c + patch] = 0.0
    clean = minisg.parallel.logits(model, x, batch_size)[np.arange(count), target]
    occluded = minisg.parallel.logits(model, hidden.reshape((-1,) + x.shape[1:]), batch_size)
    drop = clean[:, None] - occluded.reshape(count, len(corners), -1)[np.arange(count), :, target]
    total, covered = np.zeros((count, height, width)), np.zeros((height, width))
    for p, (r, c) in enumerate(corners):
        total[:, r:r + patch, c:c + patch] += drop[:, p, None, None]
        covered[r:r + patch, c:c + patch] += 1
    return np.repeat((total / covered).astype(x.dtype)[:, None], channels, axis=1)


# ----------------------------------------------------------------------------- the same numbers

@pytest.mark.parametrize("batch_size", [None, 1, 3, 7, 64, 1000])
def test_noise_drawn_in_chunks_is_the_one_big_draw(batch_size):
    x = np.random.default_rng(0).random((4, 1, 5, 5)).astype(np.float32)
    sigmas = data.noise_stdevs(x, 0.2)
    whole = data.gaussian_noise(x, sigmas, np.random.default_rng(9), copies=6, dtype=np.float64)
    pieces = list(M._running.noisy_batches(x, 6, sigmas, np.random.default_rng(9), batch_size))
    assert [stop - start for start, stop, _ in pieces] == [len(rows) for _, _, rows in pieces]
    assert all(len(rows) <= (batch_size or 256) for _, _, rows in pieces)
    np.testing.assert_array_equal(np.concatenate([rows for _, _, rows in pieces]), whole)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_smoothgrad_equals_all_at_once(images, batch_size, dtype):
    model, x, target = tiny_cnn(seed=2, dtype=dtype), images.astype(dtype), np.array([0, 2, 1])
    for kind in ("mean", "squared", "vargrad"):
        ours = M.smoothgrad(model, x, target, n=5, noise_level=0.3, kind=kind, seed=4, batch_size=batch_size)
        reference = smoothgrad_all_at_once(model, x, target, M.vanilla_gradient, 5, 0.3, kind, 4, batch_size)
        assert ours.dtype == dtype
        if kind == "vargrad":      # Welford in float64 against a two-pass variance in the maps' dtype
            tolerance = 1e-12 if dtype == np.float64 else 1e-6
            np.testing.assert_allclose(ours, reference, rtol=tolerance, atol=tolerance * np.abs(reference).max())
            assert ours.min() >= 0 and np.all(ours[1] == 0)
        else:
            np.testing.assert_array_equal(ours, reference)


@pytest.mark.parametrize("batch_size", [None, 2, 3, 5])
def test_smoothgrad_of_guided_backprop_equals_all_at_once(images, batch_size):
    model, target = tiny_cnn(seed=3), np.array([1, 1, 0])
    ours = M.smoothgrad(model, images, target, method="guided_backprop", n=4, seed=5, batch_size=batch_size)
    reference = smoothgrad_all_at_once(model, images, target, M.guided_backprop, 4, 0.15, "mean", 5, batch_size)
    np.testing.assert_array_equal(ours, reference)


def test_vargrad_is_welford_exact_and_never_negative():
    """Far from zero with a small spread (offset / spread = 1e8): E[M^2] - E[M]^2 cancels to
    garbage, Welford's M2 merged run by run stays within rounding of the two-pass variance."""
    rng = np.random.default_rng(6)
    rows = 1e6 + 1e-2 * rng.standard_normal((2, 37, 5))
    variance = RunningVariance(2, (5,))
    for image in range(2):
        for first in range(0, 37, 8):                 # runs of 8, as chunks would give them
            variance.add(image, rows[image, first:first + 8])
    two_pass = ((rows - rows.mean(axis=1, keepdims=True)) ** 2).mean(axis=1)
    np.testing.assert_allclose(variance.variance(), two_pass, rtol=1e-7)   # the rows' own precision: 1e-8
    assert variance.variance().min() > 0
    naive = (rows ** 2).mean(axis=1) - rows.mean(axis=1) ** 2
    assert np.abs(naive / two_pass - 1).max() > 1


def test_running_sum_has_the_bits_of_numpys_mean():
    rows = np.random.default_rng(7).standard_normal((3, 50, 6)).astype(np.float32) * 100
    total = RunningSum(3, (6,), np.float32)
    for image in range(3):
        for first in range(0, 50, 9):
            total.add(image, rows[image, first:first + 9])
    np.testing.assert_array_equal(total.mean(50), rows.mean(axis=1))


def test_runs_cut_chunks_at_image_boundaries():
    assert list(runs(3, 11, 4)) == [(0, 0, 1, 3), (1, 1, 5, 0), (2, 5, 8, 0)]
    assert list(runs(0, 2, 5)) == [(0, 0, 2, 0)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch_size", [None, 3, 10, 4])
def test_integrated_gradients_equals_all_at_once(batch_size, dtype):
    """The weighted sum now runs in path order; before, BLAS's tensordot summed in an order of
    its own (which even changed with the number of images in the call): last bits only."""
    model, target = tiny_cnn(seed=4, dtype=dtype), np.array([0, 1, 2, 0])
    x = np.random.default_rng(8).random((4, 1, 8, 8)).astype(dtype)
    ours = M.integrated_gradients(model, x, target, steps=5, batch_size=batch_size)
    reference = integrated_gradients_all_at_once(model, x, target, 5, batch_size=batch_size)
    tolerance = 1e-13 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(ours, reference, rtol=tolerance, atol=tolerance * np.abs(reference).max())


@pytest.mark.parametrize("batch_size", [None, 2, 5])
def test_smoothgrad_of_integrated_gradients_with_a_per_image_baseline(images, batch_size):
    model, target = tiny_cnn(seed=5), np.array([2, 0, 1])
    baseline = np.random.default_rng(9).random(images.shape)
    calls = []

    def recorded_ig(model, x, target, **kwargs):
        calls.append((len(x), kwargs["baseline"].shape[0]))
        return M.integrated_gradients(model, x, target, **kwargs)
    ours = M.smoothgrad(model, images, target, method=recorded_ig, n=4, seed=1, batch_size=batch_size,
                        steps=3, baseline=baseline)
    reference = smoothgrad_all_at_once(model, images, target, M.integrated_gradients, 4, 0.15, "mean", 1,
                                       batch_size, steps=3, baseline=baseline)
    np.testing.assert_allclose(ours, reference, rtol=1e-13, atol=1e-13 * np.abs(reference).max())
    assert all(count == rows <= (batch_size or 256) for count, rows in calls)     # the baseline follows
    assert sum(count for count, _ in calls) == 12


@pytest.mark.parametrize("variant", ["paper", "torchcam"])
@pytest.mark.parametrize("batch_size", [None, 2, 5])
def test_smooth_gradcam_pp_equals_all_at_once(images, variant, batch_size):
    model, target = tiny_cnn(seed=6), np.array([1, 0, 2])
    ours = M.smooth_gradcam_pp(model, images, target, layer="relu2", n=5, noise_level=0.4, seed=3, variant=variant,
                               batch_size=batch_size)
    reference = smooth_gradcam_pp_all_at_once(model, images, target, "relu2", 5, 0.4, 3, variant, batch_size)
    np.testing.assert_array_equal(ours, reference)


@pytest.mark.parametrize("batch_size", [None, 1, 7])
def test_occlusion_equals_all_at_once(batch_size):
    model, x, target = conv_pool_model(), np.random.default_rng(10).random((2, 1, 9, 9)), np.array([1, 2])
    ours = M.occlusion(model, x, target, patch=3, stride=2, batch_size=batch_size)
    np.testing.assert_array_equal(ours, occlusion_all_at_once(model, x, target, 3, 2, batch_size))


def test_a_users_method_sees_chunks_of_at_most_batch_size_noisy_images(images):
    calls = []

    def recorded(model, x, target, **kwargs):
        calls.append((x.copy(), np.array(target), kwargs))
        return M.vanilla_gradient(model, x, target, **kwargs)
    M.smoothgrad(tiny_cnn(), images, 2, method=recorded, n=30, noise_level=0.2, seed=0, batch_size=16)
    assert [len(x) for x, _, _ in calls] == [16] * 5 + [10]
    assert all(kwargs == {"batch_size": 16} for _, _, kwargs in calls)
    noisy, _ = all_noisy_copies(images, 30, 0.2, 0)
    np.testing.assert_array_equal(np.concatenate([x for x, _, _ in calls]), noisy)   # in row order
    np.testing.assert_array_equal(np.concatenate([t for _, t, _ in calls]), np.full(90, 2))


def test_a_users_method_with_maps_of_the_wrong_size_is_named(images):
    def wrong_size(model, x, target):
        return np.zeros((len(x), 3))
    expected = r"method: expected maps shaped like its input \(15, 1, 8, 8\), got shape \(15, 3\)"
    with pytest.raises(ValueError, match=expected):
        M.smoothgrad(tiny_cnn(), images, 0, method=wrong_size, n=5, seed=0)


def test_default_chunks_are_256_rows_or_fewer_for_huge_images():
    assert chunk_size(None, (1, 28, 28)) == 256
    assert chunk_size(None, (3, 224, 224)) == 256
    assert chunk_size(None, (3, 4000, 4000), itemsize=4) == 2      # 512 MiB of rows at most
    assert chunk_size(None, (1, 40000, 40000)) == 1
    assert chunk_size(7, (3, 4000, 4000)) == 7


@pytest.mark.skipif(not minisg.gpu_available(), reason="needs CuPy and a CUDA GPU")
def test_on_the_gpu_the_chunks_give_the_all_at_once_maps(images):
    model, target = tiny_cnn(seed=2).to("gpu"), np.array([0, 2, 1])
    ours = M.smoothgrad(model, images, target, n=5, noise_level=0.3, seed=4, batch_size=3)
    reference = smoothgrad_all_at_once(model, images, target, M.vanilla_gradient, 5, 0.3, "mean", 4, 3)
    np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12 * np.abs(reference).max())
    ig = M.integrated_gradients(model, images, target, steps=5, batch_size=3)
    np.testing.assert_allclose(ig, integrated_gradients_all_at_once(model, images, target, 5, batch_size=3),
                               rtol=1e-12, atol=1e-12 * np.abs(ig).max())


# ----------------------------------------------------------------------------- bounded memory

def peak_bytes(work):
    """The highest traced allocation (bytes) while work() runs, above what was allocated before."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        work()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def big_enough_images(count=2, seed=11):
    """32x32 images: a noisy copy (8 KB) outweighs the kernels' fixed scratch space (~0.5 MB)."""
    return np.random.default_rng(seed).random((count, 1, 32, 32))


def test_smoothgrad_memory_does_not_grow_with_n():
    model, x = conv_pool_model(), big_enough_images()
    M.smoothgrad(model, x, 0, n=4, seed=0, batch_size=8)                 # compile and warm up first
    peaks = {n: peak_bytes(lambda: M.smoothgrad(model, x, 0, n=n, seed=0, batch_size=8, kind="vargrad"))
             for n in (25, 200)}
    assert peaks[200] < 1.5 * peaks[25], peaks
    # the measurement can see it: holding all N*n noisy copies and maps at once grows with n
    everything = {n: peak_bytes(lambda: smoothgrad_all_at_once(model, x, np.zeros(2, int), M.vanilla_gradient, n,
                                                               0.15, "vargrad", 0, 8)) for n in (25, 200)}
    assert everything[200] > 4 * everything[25], everything


def test_integrated_gradients_memory_does_not_grow_with_steps():
    model, x = conv_pool_model(), big_enough_images()
    M.integrated_gradients(model, x, 0, steps=4, batch_size=8)
    peaks = {steps: peak_bytes(lambda: M.integrated_gradients(model, x, 0, steps=steps, batch_size=8))
             for steps in (25, 200)}
    assert peaks[200] < 1.5 * peaks[25], peaks


def test_smooth_gradcam_pp_memory_does_not_grow_with_n():
    model, x = conv_pool_model(), big_enough_images()
    M.smooth_gradcam_pp(model, x, 0, layer="relu", n=4, seed=0, batch_size=8)
    peaks = {n: peak_bytes(lambda: M.smooth_gradcam_pp(model, x, 0, layer="relu", n=n, seed=0, batch_size=8))
             for n in (25, 200)}
    assert peaks[200] < 1.5 * peaks[25], peaks


def test_occlusion_memory_does_not_grow_with_the_number_of_patches():
    model, x = conv_pool_model(), big_enough_images()
    M.occlusion(model, x, 0, patch=4, stride=4, batch_size=8)
    counts = {stride: len(patch_starts(32, 4, stride)) ** 2 for stride in (4, 1)}
    assert counts == {4: 64, 1: 841}
    peaks = {stride: peak_bytes(lambda: M.occlusion(model, x, 0, patch=4, stride=stride, batch_size=8))
             for stride in (4, 1)}
    assert peaks[1] < 1.5 * peaks[4], peaks
    everything = {stride: peak_bytes(lambda: occlusion_all_at_once(model, x, np.zeros(2, int), 4, stride, 8))
                  for stride in (4, 1)}
    assert everything[1] > 4 * everything[4], everything


# ----------------------------------------------------------------------------- the benchmark tool

def test_bench_memory_reports_the_peak_rss_of_a_child_process(capsys):
    from minisg.tools import bench_memory
    report = bench_memory.measure("occlusion", side=56, patch=28, stride=28, batch_size=4)
    assert "(4 patches)" in report["label"] and report["seconds"] > 0
    assert report["peak_rss_mb"] >= report["rss_before_mb"] > 10        # MB: the interpreter alone is more
    assert bench_memory.describe(report).startswith(report["label"] + ": peak RSS ")
    with pytest.raises(ValueError, match=r"workload: expected one of \['smoothgrad', 'occlusion'\], got 'gradcam'"):
        bench_memory.measure("gradcam")
    with pytest.raises(SystemExit):
        bench_memory.main(["smoothgrad", "--side", "30"])
    assert "--side: not an option of the smoothgrad workload" in capsys.readouterr().err
