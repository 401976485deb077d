"""Batch parallelism (minisg.parallel): slices, threads, and results equal to one thread's."""
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from minisg import methods as M, nn, parallel
from blas_limits import blas_threads, multithreaded_blas
from small_models import tiny_cnn


@pytest.fixture
def two_threads():
    before = parallel.get_threads()
    parallel.set_threads(2)
    yield
    parallel.set_threads(before)


@pytest.mark.parametrize("count, parts", [(10, 2), (7, 3), (50, 2), (3, 5), (1, 1)])
def test_slices_cover_the_range_in_order(count, parts):
    pieces = parallel.slices(count, parts)
    assert [i for start, stop in pieces for i in range(start, stop)] == list(range(count))
    sizes = [stop - start for start, stop in pieces]
    assert len(pieces) == min(count, parts) and max(sizes) - min(sizes) <= 1


def test_small_batches_and_nested_calls_stay_in_one_thread(two_threads):
    assert parallel.thread_count_for(parallel.MIN_IMAGES_PER_THREAD * 2 - 1) == 1
    assert parallel.thread_count_for(parallel.MIN_IMAGES_PER_THREAD * 2) == 2
    inner = parallel.map_slices(lambda start, stop: parallel.thread_count_for(1000), 40)
    assert inner == [1, 1]                                     # no pool inside the pool
    names = parallel.map_slices(lambda start, stop: threading.current_thread().name, 40)
    assert all(name.startswith("minisg") for name in names) and len(names) == 2
    assert parallel.map_slices(lambda start, stop: (start, stop), 40, on_cpu=False) == [(0, 40)]


def test_blas_gets_its_threads_back_even_after_an_error(two_threads):
    before = multithreaded_blas()
    seen = parallel.map_slices(lambda start, stop: blas_threads(), 40)
    assert all(threads == [1] * len(before) for threads in seen)
    assert blas_threads() == before

    def fails(start, stop):
        if start == 0:
            raise KeyError("slice 0 fails")
        return start
    with pytest.raises(KeyError, match="slice 0 fails"):
        parallel.map_slices(fails, 40)
    assert blas_threads() == before


def test_callers_in_several_threads_each_get_single_threaded_blas(two_threads):
    """map_slices from two user threads at once: every slice runs with BLAS on one thread,
    and BLAS's own setting is back once both are done."""
    before = multithreaded_blas()
    seen, started = [], threading.Barrier(2, timeout=30)

    def caller():
        started.wait()
        seen.extend(parallel.map_slices(lambda start, stop: blas_threads(), 40))

    callers = [threading.Thread(target=caller, daemon=True) for _ in range(2)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in callers)      # no deadlock
    assert len(seen) == 4 and all(threads == [1] * len(before) for threads in seen)
    assert blas_threads() == before


@pytest.mark.parametrize("method", ["vanilla_gradient", "guided_backprop", "deconvnet", "integrated_gradients",
                                    "gradcam", "gradcam_pp", "occlusion"])
def test_maps_from_two_threads_equal_one_threads(method, two_threads):
    """Per-thread state (the ReLU rule, grad mode) must not leak between slices."""
    model, x = tiny_cnn(), np.random.default_rng(3).random((40, 1, 8, 8))
    target = np.arange(40) % 3
    together, logits_together = getattr(M, method)(model, x, target), parallel.logits(model, x)
    parallel.set_threads(1)
    alone, logits_alone = getattr(M, method)(model, x, target), parallel.logits(model, x)
    assert np.abs(alone).max() > 0
    np.testing.assert_allclose(together, alone, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(logits_together, logits_alone, rtol=1e-12, atol=1e-15)


def test_map_batches_joins_batches_in_order(two_threads):
    seen = []

    def work(start, stop):
        seen.append((start, stop))
        return np.arange(start, stop), np.arange(start, stop) * 2.0
    first, second = parallel.map_batches(work, 50, batch_size=20)
    np.testing.assert_array_equal(first, np.arange(50))
    np.testing.assert_array_equal(second, np.arange(50) * 2.0)
    assert max(stop - start for start, stop in seen) <= 10 and len(seen) == 5   # 20, 20, 10; sliced in two
    np.testing.assert_array_equal(parallel.map_batches(lambda a, b: np.arange(a, b), 7, 3), np.arange(7))
    with pytest.raises(ValueError, match=r"batch_size: expected an int >= 1, got 0"):
        parallel.map_batches(work, 5, 0)


def test_logits_run_in_eval_mode_without_a_graph_and_restore_the_flags(two_threads):
    fc, drop = nn.Linear(16, 3, rng=np.random.default_rng(0), dtype=np.float64), nn.Dropout(0.5)
    model = nn.Sequential(("fc", fc), ("drop", drop))
    x = np.random.default_rng(1).random((40, 16)).astype(np.float32)    # cast to the model's dtype
    weight, bias = fc.weight.numpy(), fc.bias.numpy()
    logits = parallel.logits(model, x, batch_size=15)
    assert type(logits) is np.ndarray and logits.dtype == np.float64
    np.testing.assert_allclose(logits, x.astype(np.float64) @ weight.T + bias, rtol=1e-12)
    assert model.training and drop.training and fc.weight.requires_grad
    np.testing.assert_allclose(parallel.logits(model, x), logits, rtol=1e-12)


def test_thread_setting_is_checked(monkeypatch):
    with pytest.raises(ValueError, match=r"set_threads: expected an int >= 1, got 0"):
        parallel.set_threads(0)
    monkeypatch.setattr(parallel, "_threads", None)
    monkeypatch.setenv("MINISG_THREADS", "two")
    with pytest.raises(ValueError, match=r"MINISG_THREADS: expected an int >= 1, got 'two'"):
        parallel.get_threads()
    monkeypatch.setenv("MINISG_THREADS", "3")
    assert parallel.get_threads() == 3


def test_set_threads_is_refused_inside_a_slice(two_threads):
    def inside(start, stop):
        with pytest.raises(RuntimeError, match="set_threads: called from a minisg worker thread"):
            parallel.set_threads(1)
        return True
    assert parallel.map_slices(inside, 40) == [True, True]


def test_numbas_workqueue_layer_runs_everything_in_the_calling_thread():
    """Numba's fallback threading layer aborts the process when two threads run its parallel
    kernels at once: minisg must notice and not slice there."""
    script = ("import numpy as np; from minisg import parallel, methods as M\n"
              "from small_models import tiny_cnn\n"
              "parallel.set_threads(2)\n"
              "maps = M.vanilla_gradient(tiny_cnn(), np.random.default_rng(0).random((40, 1, 8, 8)), 1)\n"
              "print(maps.shape, parallel._concurrent_kernels)\n")
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).resolve().parent, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "(40, 1, 8, 8) False"
