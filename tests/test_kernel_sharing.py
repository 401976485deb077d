"""Kernels that share one call's work between the cores (cpu_layout.map_images): the same
values however many threads share it (bit for bit where no BLAS product is cut), and BLAS
kept on one thread throughout."""
import numpy as np
import pytest

from blas_limits import blas_threads, multithreaded_blas
from minisg import parallel
from minisg.kernels import cpu, cpu_im2col, cpu_layout, reference


@pytest.fixture(params=[1, 2, 3], ids=lambda n: f"{n}-threads")
def threads(request, monkeypatch):
    """Run the test with `threads` minisg threads, and every kernel call big enough to share."""
    before = parallel.get_threads()
    parallel.set_threads(request.param)
    monkeypatch.setattr(cpu_layout, "MIN_WORK_PER_THREAD_NS", 0)
    yield request.param
    parallel.set_threads(before)


def bits(array):
    return np.ascontiguousarray(array).view(np.uint8)


def one_thread(kernel, *args):
    """The kernel's result with every kernel in the calling thread."""
    before = parallel.get_threads()
    parallel.set_threads(1)
    try:
        return kernel(*args)
    finally:
        parallel.set_threads(before)


def random(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def assert_close(got, expected, name=""):
    """Equal to rounding, relative to the largest value: BLAS's sums change order with how a
    product is cut, even between OpenBLAS's own thread counts."""
    tolerance = 1e-5 if got.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, expected, rtol=0, atol=tolerance * np.abs(expected).max(), err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shapes", [((7, 30), (30, 201)), ((330, 30), (30, 7)), ((65, 300), (300, 131)),
                                    ((1, 5), (5, 1))])
def test_matmul_is_numpys_product(threads, dtype, shapes):
    """Shared by blocks of columns (more columns) or of rows (more rows)."""
    rng = np.random.default_rng(0)
    a, b = (random(rng, shape, dtype) for shape in shapes)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    assert_close(cpu.matmul(a, b), expected)
    assert_close(cpu.matmul(a, np.asfortranarray(b)), expected)     # a transposed weight
    batched = random(rng, (3,) + shapes[0], dtype)
    assert np.array_equal(cpu.matmul(batched, b), batched @ b)                    # N-D: NumPy's own


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chunk_bytes", [5000, 1 << 30], ids=["many-chunks", "one-chunk"])
def test_convolutions_do_not_depend_on_how_many_threads_share_them(threads, dtype, chunk_bytes, monkeypatch):
    """Forward, input and weight gradients, both column layouts, many chunks side by side or
    one chunk whose matrix products are shared: one thread's result to rounding, and the loop
    reference's. One image (the last cases) runs in the calling thread as it always did."""
    rng = np.random.default_rng(1)
    monkeypatch.setattr(cpu_layout, "CHUNK_BYTES", chunk_bytes)
    for x_shape, w_shape in (((9, 1, 12, 12), (4, 1, 5, 5)), ((9, 6, 8, 8), (5, 6, 3, 3)),
                             ((1, 3, 40, 40), (70, 3, 3, 3)), ((1, 9, 30, 30), (70, 9, 3, 3))):
        x, w = random(rng, x_shape, dtype), random(rng, w_shape, dtype)
        gy = random(rng, reference.conv2d_forward(x, w, (1, 1), (1, 1)).shape, dtype)
        for kernel, exact, args in (
                (cpu_im2col.conv, reference.conv2d_forward, (x, w, (1, 1), (1, 1))),
                (cpu_im2col.input_grad, reference.conv2d_backward_input, (gy, w, x_shape[2:], (1, 1), (1, 1))),
                (cpu_im2col.weight_grad, reference.conv2d_backward_weight, (x, gy, w_shape[2:], (1, 1), (1, 1)))):
            got = kernel(*args)
            assert_close(got, one_thread(kernel, *args), kernel.__name__)
            assert_close(got, exact(*args), kernel.__name__)


def test_per_image_kernels_do_not_depend_on_how_many_threads_share_them(threads):
    rng = np.random.default_rng(2)
    x = random(rng, (7, 3, 10, 10), np.float32)
    x[0, 0, :4, :4] = 0                                      # ties for the tie step
    w = random(rng, (5, 3, 3, 3), np.float32)
    gy = random(rng, (7, 5, 10, 10), np.float32) * (rng.random((7, 5, 10, 10)) < 0.1)
    for kernel, args in ((cpu.conv2d_forward, (x, w, (1, 1), (1, 1))),        # with the tie step
                         (cpu.conv2d_backward_input, (gy, w, (10, 10), (1, 1), (1, 1))),  # sparse gy
                         (cpu.relu_forward, (x,))):
        got, alone = kernel(*args), one_thread(kernel, *args)
        for part, part_alone in zip(got if isinstance(got, tuple) else [got],
                                    alone if isinstance(alone, tuple) else [alone]):
            assert np.array_equal(bits(part), bits(part_alone)), kernel.__name__


def test_adam_update_does_not_depend_on_how_many_threads_share_it(threads):
    rng = np.random.default_rng(3)
    arrays = [random(rng, (1001,), np.float32) for _ in range(4)]
    param, grad, m, v = (a.copy() for a in arrays)
    v = np.abs(v)
    shared = [param.copy(), m.copy(), v.copy()]
    cpu.adam_update(shared[0], grad, shared[1], shared[2], 1e-3, 0.9, 0.999, 1e-8)
    one_thread(cpu.adam_update, param, grad, m, v, 1e-3, 0.9, 0.999, 1e-8)
    for got, expected in zip(shared, (param, m, v)):
        assert np.array_equal(bits(got), bits(expected))


def test_relu_forward_keeps_numpys_values_nan_and_signed_zero():
    x = np.array([[1.5, -2.0, 0.0, -0.0, np.nan, np.inf, -np.inf, 3e-45]], np.float32)
    y, mask = cpu.relu_forward(x)
    assert mask.dtype == bool and mask.tolist() == [[True, False, False, False, False, True, False, True]]
    assert np.array_equal(bits(y), bits(x * (x > 0)))          # NaN stays NaN, as in PyTorch
    y_ref, mask_ref = reference.relu_forward(x)
    assert np.array_equal(bits(y), bits(y_ref)) and np.array_equal(mask, mask_ref)


def test_kernels_run_their_matrix_products_on_one_blas_thread():
    """Even a product too small to share runs with one BLAS thread: a call on several would
    leave OpenBLAS's idle threads spinning on the cores the next kernels want."""
    before = multithreaded_blas()
    previous = parallel.get_threads()
    parallel.set_threads(2)
    try:
        for count in (1, 1000):
            seen = parallel.map_kernel_slices(lambda start, stop: blas_threads(), count, 100, uses_blas=True)
            assert all(threads == [1] * len(before) for threads in seen), (count, seen)
        # without uses_blas, or with minisg on one thread, BLAS keeps its own setting
        assert parallel.map_kernel_slices(lambda start, stop: blas_threads(), 1, 100) == [before]
        parallel.set_threads(1)
        assert parallel.map_kernel_slices(lambda start, stop: blas_threads(), 1000, 1, uses_blas=True) == [before]
    finally:
        parallel.set_threads(previous)
    assert blas_threads() == before
