"""The fast kernels (cpu: Numba + BLAS, gpu: CuPy) against the loop reference, plus adjoint
identities. Every test runs once per backend; the gpu case is skipped without CuPy and a GPU."""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minisg.kernels import cpu, cpu_im2col, cpu_layout, cpu_sparse, cpu_winograd, reference

FAST = settings(max_examples=25, deadline=None)
DTYPES = [np.float64, np.float32]


def _gpu_or_skip():
    try:
        import cupy
    except ImportError:
        pytest.skip("gpu backend: CuPy is not installed")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("gpu backend: no CUDA GPU")
    except Exception as exc:  # CuPy raises its own CUDA error types
        pytest.skip(f"gpu backend: no usable CUDA GPU ({exc})")
    from minisg.kernels import gpu
    return cupy, gpu


class Backend:
    """Runs one kernel module on its own kind of arrays; takes and returns NumPy arrays."""

    def __init__(self, name, module, to_device, to_host):
        self.name, self.module = name, module
        self._to_device, self._to_host = to_device, to_host

    def __call__(self, kernel, *args):
        args = [self._to_device(a) if isinstance(a, np.ndarray) else a for a in args]
        out = getattr(self.module, kernel)(*args)
        if isinstance(out, tuple):
            return tuple(self._to_host(o) for o in out)
        return self._to_host(out)


CPU = Backend("cpu", cpu, lambda a: a, lambda a: a)


# module scope: hypothesis runs many examples per test and must not share function fixtures
@pytest.fixture(scope="module", params=["cpu", "gpu"])
def backend(request):
    if request.param == "gpu":
        cupy, gpu = _gpu_or_skip()
        return Backend("gpu", gpu, cupy.asarray, cupy.asnumpy)
    return CPU


def assert_close(actual, expected):
    """Equal up to rounding: relative to each value and to the array's largest magnitude (the
    error of a long sum, and more so of a Winograd one, scales with its terms, not its result)."""
    eps = 1e-10 if expected.dtype == np.float64 else 1e-4
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=eps, atol=eps * scale)


def rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


@st.composite
def conv_cases(draw, max_channels=5):
    """Shapes, strides and paddings of a valid convolution, plus a seed for the data."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H = draw(st.integers(max(1, kh - 2 * ph), kh + 6))
    W = draw(st.integers(max(1, kw - 2 * pw), kw + 6))
    N, C, O = draw(st.integers(1, 3)), draw(st.integers(1, max_channels)), draw(st.integers(1, 4))
    dtype = draw(st.sampled_from(DTYPES))
    return dict(x=(N, C, H, W), w=(O, C, kh, kw), stride=(sh, sw), padding=(ph, pw),
                dtype=dtype, seed=draw(st.integers(0, 2**31)))


def conv_data(case):
    rng = np.random.default_rng(case["seed"])
    x, w = rand(rng, case["x"], case["dtype"]), rand(rng, case["w"], case["dtype"])
    (N, _, H, W), (O, _, kh, kw) = case["x"], case["w"]
    (sh, sw), (ph, pw) = case["stride"], case["padding"]
    gy = rand(rng, (N, O, (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1), case["dtype"])
    return x, w, gy


def check_conv(backend, x, w, gy, stride, padding):
    """All three conv kernels of `backend` against the reference on one case."""
    y = backend("conv2d_forward", x, w, stride, padding)
    assert y.dtype == x.dtype
    assert_close(y, reference.conv2d_forward(x, w, stride, padding))
    gx = backend("conv2d_backward_input", gy, w, x.shape[2:], stride, padding)
    assert gx.dtype == x.dtype and gx.shape == x.shape
    assert_close(gx, reference.conv2d_backward_input(gy, w, x.shape[2:], stride, padding))
    gw = backend("conv2d_backward_weight", x, gy, w.shape[2:], stride, padding)
    assert gw.dtype == x.dtype and gw.shape == w.shape
    assert_close(gw, reference.conv2d_backward_weight(x, gy, w.shape[2:], stride, padding))


# ----------------------------------------------------------------------------------------------
# convolution
# ----------------------------------------------------------------------------------------------

@FAST
@given(case=conv_cases())
def test_conv_matches_reference_on_random_shapes(backend, case):
    x, w, gy = conv_data(case)
    check_conv(backend, x, w, gy, case["stride"], case["padding"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", [
    ((2, 3, 7, 9), (4, 3, 3, 2), (1, 1), (1, 0)),     # non-square kernel, rectangular image
    ((2, 3, 9, 8), (2, 3, 3, 3), (2, 2), (1, 1)),     # stride 2
    ((1, 2, 8, 11), (3, 2, 2, 3), (2, 1), (0, 2)),    # mixed strides and paddings
    ((3, 1, 12, 12), (4, 1, 5, 5), (1, 1), (2, 2)),   # conv1 of the MNIST model, small
    ((2, 8, 6, 6), (5, 8, 5, 5), (1, 1), (2, 2)),     # many channels, SAME padding
    ((2, 2, 5, 5), (3, 2, 5, 5), (1, 1), (0, 0)),     # the kernel covers the whole image
    ((2, 4, 4, 4), (3, 4, 1, 1), (1, 1), (0, 0)),     # 1x1 kernel
    ((1, 3, 10, 10), (2, 3, 3, 3), (3, 3), (2, 2)),   # stride 3, padding only partly read
])
def test_conv_matches_reference_on_listed_shapes(backend, dtype, x_shape, w_shape, stride, padding):
    rng = np.random.default_rng(1)
    x, w = rand(rng, x_shape, dtype), rand(rng, w_shape, dtype)
    gy = rand(rng, reference.conv2d_forward(x, w, stride, padding).shape, dtype)
    check_conv(backend, x, w, gy, stride, padding)


def test_conv_model_shapes(backend):
    """The layers of the MNIST model at batch 2, in float32 (its training dtype)."""
    rng = np.random.default_rng(2)
    for x_shape, w_shape in [((2, 1, 28, 28), (32, 1, 5, 5)), ((2, 32, 14, 14), (64, 32, 5, 5))]:
        x, w = rand(rng, x_shape, np.float32), rand(rng, w_shape, np.float32)
        gy = rand(rng, (2, w_shape[0]) + x_shape[2:], np.float32)
        check_conv(backend, x, w, gy, (1, 1), (2, 2))


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("chunk_bytes", [1, 3000, 1 << 30])
def test_cpu_column_layouts_and_chunking(channels_last, chunk_bytes):
    """Both column-matrix layouts and every chunking (one image, uneven, whole batch)."""
    rng = np.random.default_rng(3)
    cases = [((5, 3, 7, 6), (2, 3, 3, 2), (1, 1), (1, 1)), ((3, 2, 9, 7), (3, 2, 3, 3), (2, 3), (2, 0))]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cpu_im2col, "use_channels_last", lambda C, KW, OW: channels_last)
        mp.setattr(cpu_layout, "CHUNK_BYTES", chunk_bytes)
        for x_shape, w_shape, stride, padding in cases:
            for dtype in DTYPES:
                x, w = rand(rng, x_shape, dtype), rand(rng, w_shape, dtype)
                gy = rand(rng, reference.conv2d_forward(x, w, stride, padding).shape, dtype)
                check_conv(CPU, x, w, gy, stride, padding)


@pytest.mark.parametrize("tile", [2, 4])
@pytest.mark.parametrize("chunk_bytes", [1, 1 << 30])
def test_cpu_winograd_path(tile, chunk_bytes):
    """The Winograd path (stride 1, many channels) forced onto small cases: square and
    non-square kernels, paddings up to and past the kernel (backward_input then falls back),
    ragged last tiles, one image per chunk and the whole batch in one."""
    rng = np.random.default_rng(7)
    cases = [((3, 4, 9, 7), (5, 4, 5, 5), (2, 2)), ((2, 3, 6, 8), (2, 3, 3, 2), (1, 0)),
             ((2, 2, 5, 5), (3, 2, 2, 4), (0, 3)), ((1, 3, 7, 6), (4, 3, 3, 3), (3, 1)),
             ((2, 2, 4, 9), (2, 2, 4, 5), (0, 0))]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cpu, "_FAST_GEMM", False)
        mp.setattr(cpu, "_WINOGRAD_MIN_CHANNELS", 1)
        mp.setattr(cpu, "_WINOGRAD_DTYPES", tuple(map(np.dtype, DTYPES)))
        mp.setattr(cpu_winograd, "TILE", tile)
        mp.setattr(cpu_winograd, "CHUNK_BYTES", chunk_bytes)
        for x_shape, w_shape, padding in cases:
            assert cpu._use_winograd(np.dtype(np.float32), x_shape[1], w_shape[0], *w_shape[2:], (1, 1))
            for dtype in DTYPES:
                x, w = rand(rng, x_shape, dtype), rand(rng, w_shape, dtype)
                gy = rand(rng, reference.conv2d_forward(x, w, (1, 1), padding).shape, dtype)
                check_conv(CPU, x, w, gy, (1, 1), padding)


@FAST
@given(case=conv_cases())
def test_cpu_winograd_on_random_shapes(case):
    """Random cases with the Winograd path allowed at any channel count (strides other than 1
    and kernels it does not handle still take the im2col path)."""
    x, w, gy = conv_data(case)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cpu, "_FAST_GEMM", False)
        mp.setattr(cpu, "_WINOGRAD_MIN_CHANNELS", 1)
        mp.setattr(cpu, "_WINOGRAD_DTYPES", tuple(map(np.dtype, DTYPES)))
        check_conv(CPU, x, w, gy, case["stride"], case["padding"])


@FAST
@given(case=conv_cases(), keep=st.sampled_from([0.0, 0.05, 0.3]))
def test_cpu_input_gradient_from_nonzeros_on_random_shapes(case, keep):
    """The scatter of gy's non-zeros (taken after ReLU + max-pool), forced onto any shape,
    stride and padding, with a gy that is all zero, 5% or 30% non-zero."""
    x, w, gy = conv_data(case)
    gy = gy * (np.random.default_rng(case["seed"] + 2).random(gy.shape) < keep)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cpu, "_SPARSE_MAX_DENSITY", 1.0)
        mp.setattr(cpu, "_SPARSE_MIN_ROW", 1)
        gx = cpu.conv2d_backward_input(gy, w, x.shape[2:], case["stride"], case["padding"])
    assert gx.dtype == x.dtype and gx.shape == x.shape
    assert_close(gx, reference.conv2d_backward_input(gy, w, x.shape[2:], case["stride"], case["padding"]))


def test_cpu_input_gradient_takes_the_sparse_path_only_when_it_pays():
    rng = np.random.default_rng(9)
    w = rand(rng, (64, 32, 5, 5), np.float32)
    dense = rand(rng, (2, 64, 14, 14), np.float32)
    sparse = dense * (rng.random(dense.shape) < 0.1)             # like the MNIST conv2's gradient
    assert cpu._sparse_enough(sparse, 5 * 32) and not cpu._sparse_enough(dense, 5 * 32)
    assert not cpu._sparse_enough(sparse, 5 * 1)                 # conv1: rows of 5 values are too short
    taken = []
    with pytest.MonkeyPatch.context() as mp:
        scatter = cpu_sparse.input_grad
        mp.setattr(cpu_sparse, "input_grad", lambda *args: taken.append(1) or scatter(*args))
        for gy in (sparse, dense):
            assert_close(cpu.conv2d_backward_input(gy, w, (14, 14), (1, 1), (2, 2)),
                         reference.conv2d_backward_input(gy, w, (14, 14), (1, 1), (2, 2)))
    assert taken == [1]                                          # the sparse gy only


def test_winograd_1d_matrices_compute_a_correlation():
    rng = np.random.default_rng(8)
    for m, r in [(2, 3), (4, 3), (4, 5), (5, 4), (2, 5), (3, 2)]:
        AT, G, BT = cpu_winograd.winograd_1d(m, r)
        d, g = rng.standard_normal(m + r - 1), rng.standard_normal(r)
        expected = [d[k:k + r] @ g for k in range(m)]
        np.testing.assert_allclose(AT @ ((G @ g) * (BT @ d)), expected, rtol=1e-12, atol=1e-12)


def check_conv_adjoints(backend, case):
    """<backward_input(gy), dx> == <gy, forward(dx)> and <backward_weight(gy), dw> == <gy, forward(x, dw)>."""
    case = dict(case, dtype=np.float64)
    x, w, gy = conv_data(case)
    rng = np.random.default_rng(case["seed"] + 1)
    dx, dw = rand(rng, x.shape, np.float64), rand(rng, w.shape, np.float64)
    s, p = case["stride"], case["padding"]
    gx = backend("conv2d_backward_input", gy, w, x.shape[2:], s, p)
    np.testing.assert_allclose(np.vdot(gx, dx), np.vdot(gy, backend("conv2d_forward", dx, w, s, p)), rtol=1e-10, atol=1e-10)
    gw = backend("conv2d_backward_weight", x, gy, w.shape[2:], s, p)
    np.testing.assert_allclose(np.vdot(gw, dw), np.vdot(gy, backend("conv2d_forward", x, dw, s, p)), rtol=1e-10, atol=1e-10)


@FAST
@given(case=conv_cases())
def test_conv_adjoint_identities(backend, case):
    check_conv_adjoints(backend, case)


@FAST
@given(case=conv_cases())
def test_cpu_winograd_adjoint_identities(case):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cpu, "_FAST_GEMM", False)
        mp.setattr(cpu, "_WINOGRAD_MIN_CHANNELS", 1)
        mp.setattr(cpu, "_WINOGRAD_DTYPES", tuple(map(np.dtype, DTYPES)))
        check_conv_adjoints(CPU, case)


# ----------------------------------------------------------------------------------------------
# max pooling
# ----------------------------------------------------------------------------------------------

@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    H, W = draw(st.integers(kh, kh + 6)), draw(st.integers(kw, kw + 6))
    # small integers make ties common; continuous values make them rare
    ties = draw(st.booleans())
    return dict(shape=(N, C, H, W), kernel=(kh, kw), stride=(sh, sw), ties=ties,
                dtype=draw(st.sampled_from(DTYPES)), seed=draw(st.integers(0, 2**31)))


def pool_input(case):
    rng = np.random.default_rng(case["seed"])
    if case["ties"]:
        return rng.integers(-2, 3, case["shape"]).astype(case["dtype"])
    return rand(rng, case["shape"], case["dtype"])


def check_pool(backend, x, kernel, stride):
    H, W = x.shape[2:]
    y, argmax = backend("max_pool2d_forward", x, kernel, stride)
    y_ref, argmax_ref = reference.max_pool2d_forward(x, kernel, stride)
    assert y.dtype == x.dtype and argmax.dtype == np.int64
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)
    rng = np.random.default_rng(4)
    gy = rand(rng, y.shape, x.dtype)
    gx = backend("max_pool2d_scatter", gy, argmax, (H, W))
    assert gx.dtype == x.dtype and gx.shape == x.shape
    assert_close(gx, reference.max_pool2d_scatter(gy, argmax, (H, W)))
    gg = rand(rng, x.shape, x.dtype)
    np.testing.assert_array_equal(backend("max_pool2d_gather", gg, argmax), reference.max_pool2d_gather(gg, argmax))


@FAST
@given(case=pool_cases())
def test_pool_matches_reference_on_random_shapes(backend, case):
    check_pool(backend, pool_input(case), case["kernel"], case["stride"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, kernel, stride", [
    ((2, 3, 8, 8), (2, 2), (2, 2)),     # the model's pool (an unrolled kernel on the CPU)
    ((2, 3, 9, 7), (2, 2), (2, 2)),     # the same with odd sizes: the last row/column is left out
    ((2, 2, 9, 7), (3, 3), (2, 2)),     # overlapping windows
    ((1, 2, 8, 10), (2, 2), (3, 3)),    # gaps between windows
    ((2, 1, 7, 9), (3, 2), (1, 2)),     # non-square window, mixed strides
    ((1, 1, 5, 5), (5, 5), (1, 1)),     # one window covers the plane
])
def test_pool_matches_reference_on_listed_shapes(backend, dtype, shape, kernel, stride):
    check_pool(backend, rand(np.random.default_rng(5), shape, dtype), kernel, stride)


@pytest.mark.parametrize("kernel, stride", [((2, 2), (2, 2)), ((3, 3), (2, 2)), ((2, 3), (3, 1))])
def test_pool_ties_choose_the_first_maximum(backend, kernel, stride):
    # an all-zero plane: every window picks its top-left element
    x = np.zeros((1, 2, 7, 8), np.float32)
    _, argmax = backend("max_pool2d_forward", x, kernel, stride)
    OH, OW = argmax.shape[2:]
    top_left = (np.arange(OH)[:, None] * stride[0]) * 8 + np.arange(OW)[None, :] * stride[1]
    np.testing.assert_array_equal(argmax, np.broadcast_to(top_left, argmax.shape))
    # planted equal maxima: the first in row-major window order wins
    x = np.full((1, 1, 6, 6), -1.0)
    x[0, 0, 1, 1] = x[0, 0, 0, 1] = x[0, 0, 1, 0] = 5.0   # window (0, 0) of a 2x2/2: (0,1) first
    x[0, 0, 3, 3] = x[0, 0, 3, 2] = 7.0                    # window (1, 1): (3,2) first
    x[0, 0, 5, 4] = x[0, 0, 5, 5] = x[0, 0, 4, 5] = 2.0    # window (2, 2): (4,5) first
    y, argmax = backend("max_pool2d_forward", x, (2, 2), (2, 2))
    assert argmax[0, 0, 0, 0] == 0 * 6 + 1
    assert argmax[0, 0, 1, 1] == 3 * 6 + 2
    assert argmax[0, 0, 2, 2] == 4 * 6 + 5
    np.testing.assert_array_equal(argmax, reference.max_pool2d_forward(x, (2, 2), (2, 2))[1])


@FAST
@given(seed=st.integers(0, 2**31), shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(2, 9),
                                                   st.integers(2, 9)))
def test_pool_2x2_matches_reference_with_many_ties(backend, seed, shape):
    x = np.random.default_rng(seed).integers(-1, 2, shape).astype(np.float32)
    check_pool(backend, x, (2, 2), (2, 2))


@FAST
@given(case=pool_cases())
def test_pool_adjoint_identity(backend, case):
    """<scatter(gy), gx> == <gy, gather(gx)> with the argmax of a real forward pass."""
    case = dict(case, dtype=np.float64)
    x = pool_input(case)
    _, argmax = backend("max_pool2d_forward", x, case["kernel"], case["stride"])
    rng = np.random.default_rng(case["seed"] + 1)
    gy, gx = rand(rng, argmax.shape, np.float64), rand(rng, x.shape, np.float64)
    lhs = np.vdot(backend("max_pool2d_scatter", gy, argmax, x.shape[2:]), gx)
    rhs = np.vdot(gy, backend("max_pool2d_gather", gx, argmax))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# contract details: inputs untouched, non-contiguous inputs, unsupported dtypes
# ----------------------------------------------------------------------------------------------

def test_inputs_are_not_mutated_and_views_are_accepted(backend):
    rng = np.random.default_rng(6)
    x = rand(rng, (2, 3, 9, 8), np.float64)[:, :, :, ::-1]          # non-contiguous views
    w = rand(rng, (4, 3, 3, 3), np.float64).transpose(0, 1, 3, 2)
    gy = rand(rng, (2, 4, 18, 8), np.float64)[:, :, ::2]
    copies = [a.copy() for a in (x, w, gy)]
    check_conv(backend, x, w, gy, (1, 1), (1, 1))
    y, argmax = backend("max_pool2d_forward", x, (2, 2), (2, 2))
    backend("max_pool2d_scatter", y[:, :, ::-1], argmax, (9, 8))
    backend("max_pool2d_gather", x, argmax)
    for a, c in zip((x, w, gy), copies):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("bad", [np.int64, np.float16])
def test_unsupported_dtype_raises_value_error(backend, bad):
    x = np.ones((1, 1, 4, 4), bad)
    w = np.ones((1, 1, 2, 2), bad)
    with pytest.raises(ValueError, match="float32 and float64"):
        backend("conv2d_forward", x, w, (1, 1), (0, 0))
    with pytest.raises(ValueError, match="float32 and float64"):
        backend("max_pool2d_forward", x, (2, 2), (2, 2))
    with pytest.raises(ValueError, match="float32 and float64"):
        reference.conv2d_forward(x, w, (1, 1), (0, 0))


def test_adam_update_matches_reference(backend):
    """The fused Adam kernel equals the NumPy reference step, float32 and float64."""
    kernels_module, to_device, to_host = backend.module, backend._to_device, backend._to_host
    rng = np.random.default_rng(0)
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-6)):
        arrays = [rng.standard_normal(1000).astype(dtype) for _ in range(2)]
        m, v = rng.standard_normal(1000).astype(dtype), rng.random(1000).astype(dtype)
        expected = [a.copy() for a in (arrays[0], m, v)]
        reference.adam_update(expected[0], arrays[1], expected[1], expected[2], 0.01, 0.9, 0.999, 1e-8)
        got = [to_device(a.copy()) for a in (arrays[0], m, v)]
        kernels_module.adam_update(got[0], to_device(arrays[1]), got[1], got[2], 0.01, 0.9, 0.999, 1e-8)
        for e, g in zip(expected, got):
            np.testing.assert_allclose(to_host(g), e, rtol=tol, atol=tol)


# ----------------------------------------------------------------------------------------------
# threads (cpu_threads): kernels run on the calling thread alone; no environment variable is set
# ----------------------------------------------------------------------------------------------

_THREADS_SCRIPT = """
import os, threading
import numba, numpy as np
from minisg.kernels import cpu
before = dict(os.environ)
cpu.max_pool2d_forward(np.zeros((1, 1, 2, 2), np.float32), (2, 2), (2, 2))
seen = []
def other():
    cpu.max_pool2d_forward(np.zeros((1, 1, 2, 2), np.float32), (2, 2), (2, 2))
    seen.append(numba.get_num_threads())
thread = threading.Thread(target=other)
thread.start(); thread.join()
print(numba.get_num_threads(), seen[0], dict(os.environ) == before)
"""


@pytest.mark.parametrize("setting, expected", [(None, "1 1 True"), ("2", "2 2 True")])
def test_kernels_run_on_the_calling_thread_and_leave_the_environment_alone(setting, expected):
    env = {k: v for k, v in os.environ.items() if k not in ("MINISG_KERNEL_THREADS", "NUMBA_NUM_THREADS")}
    if setting:
        env.update(MINISG_KERNEL_THREADS=setting, NUMBA_NUM_THREADS="2")
    done = subprocess.run([sys.executable, "-c", _THREADS_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == expected


def test_a_bad_kernel_thread_count_is_named(monkeypatch):
    from minisg.kernels import cpu_threads
    monkeypatch.setenv("MINISG_KERNEL_THREADS", "two")
    with pytest.raises(ValueError, match="MINISG_KERNEL_THREADS: expected an int >= 1, got 'two'"):
        cpu_threads.kernel_threads()
