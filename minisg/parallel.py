"""Batch parallelism on the CPU: independent slices of a batch run at once, one per core.

Why not leave it to the kernels? Each kernel is parallel on its own (Numba's prange, BLAS's
threads), but a backward pass runs dozens of small kernels in a row, and every one of them
wakes the sleeping worker threads and waits for them again. On a small machine those hand-offs
cost about as much as the work (measured on 2 cores: the input gradients of 50 noisy digits
took 25-27 ms on one thread, 22-23 ms with every kernel on two threads, 16-20 ms as two
slices). Images are independent in eval mode, so this module instead gives each thread its
own slice of the batch and runs every kernel single-threaded inside it: one hand-off per
batch instead of one per kernel.

    results = parallel.map_slices(work, count)   # work(start, stop) for a few slices of range(count)
    result = parallel.map_batches(work, count, batch_size)   # batch by batch, each one sliced, joined
    scores = parallel.logits(model, images)      # a model's logits, no graph, as NumPy

Only for the CPU (CuPy arrays stay on one stream), only for batches of at least
MIN_IMAGES_PER_THREAD images per thread, never nested, and only where Numba's threading layer
lets several threads run its kernels at once (OpenMP or TBB; its fallback "workqueue" aborts
the process on concurrent use, so there everything runs in the calling thread).
``MINISG_THREADS=1`` or ``parallel.set_threads(1)`` turns it off. Slice sizes change the
order of BLAS's sums, so results differ from one slice's in the last bits (about 1e-7
relative in float32), never more.

The same workers serve the kernels: a kernel called outside the slices with enough work (a
training batch's convolution, say) shares it out itself (``map_kernel_slices``, through
kernels/cpu_layout.map_images).
"""
import concurrent.futures
import contextlib
import numbers
import os
import threading

import numpy as np

from . import backend, nn
from .autograd import Tensor, no_grad
from .kernels.cpu_threads import count_setting

MIN_IMAGES_PER_THREAD = 8  # below this the slices are too small to pay for the hand-off
DEFAULT_BATCH_SIZE = 256   # images per forward pass when batch_size=None: bounds the memory

_local = threading.local()      # .inside: True in a worker thread (no nesting)
_pool = None
_threads = None
_concurrent_kernels = None       # decided on first use (_kernels_allow_concurrent_calls)
_blas_controller = None
# one batch-parallel region at a time: it already uses every core. Reentrant: a kernel that runs
# in the calling thread inside a region (its one chunk) may share its matrix products in turn.
_region_lock = threading.RLock()


def _default_threads():
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return count_setting("MINISG_THREADS", cores)


def get_threads():
    """Threads that map_slices uses: set_threads's value, else MINISG_THREADS, else the cores."""
    global _threads
    if _threads is None:
        _threads = _default_threads()
    return _threads


def set_threads(count):
    """Use `count` threads from now on (1 turns batch parallelism off). Waits for a running
    batch-parallel region to end; not allowed inside one (its pool cannot wait for itself)."""
    global _threads, _pool
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"set_threads: expected an int >= 1, got {count!r}")
    if getattr(_local, "inside", False):
        raise RuntimeError("set_threads: called from a minisg worker thread; call it outside map_slices")
    with _region_lock:
        if _pool is not None and count != _threads:
            _pool.shutdown(wait=True)
            _pool = None
        _threads = count


def _start_worker():
    """Each pool thread runs its kernels on itself alone (Numba's thread count is per thread)."""
    _local.inside = True
    from .kernels import cpu_threads
    cpu_threads.prepare(1)


def _get_pool(threads):
    """The worker pool, made on first use (call with _region_lock held, as set_threads does)."""
    global _pool
    if _pool is None:
        _pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="minisg",
                                                      initializer=_start_worker)
    return _pool


def _single_threaded_blas():
    """A context in which BLAS runs on one thread (each slice's matrix products stay on its
    core); BLAS's own setting comes back on leaving it. The limit is process-wide, so the
    regions are serialised (_region_lock), and entered and left by the same thread, as
    threadpoolctl requires. The controller is made once: finding the loaded BLAS libraries
    takes 0.7 ms, setting their thread count 7 us."""
    global _blas_controller
    if _blas_controller is None:
        from threadpoolctl import ThreadpoolController
        _blas_controller = ThreadpoolController()
    return _blas_controller.limit(limits=1, user_api="blas")


def slices(count, parts):
    """`parts` (start, stop) pairs of near-equal size that cover range(count) in order."""
    bounds = [count * k // parts for k in range(parts + 1)]
    return [(bounds[k], bounds[k + 1]) for k in range(parts) if bounds[k + 1] > bounds[k]]


def thread_count_for(count, min_per_thread=MIN_IMAGES_PER_THREAD):
    """How many threads `count` items get, at least min_per_thread each (1: run them in the
    calling thread)."""
    threads = min(get_threads(), count // min_per_thread)
    if threads <= 1 or getattr(_local, "inside", False) or not _kernels_allow_concurrent_calls():
        return 1
    return threads


def _kernels_allow_concurrent_calls():
    """False under Numba's "workqueue" threading layer, which aborts the process when two
    threads run parallel kernels at once. The layer is chosen when the first parallel kernel
    runs, so one tiny kernel runs first."""
    global _concurrent_kernels
    if _concurrent_kernels is None:
        import numba
        import numpy as np
        from .kernels import cpu
        cpu.max_pool2d_forward(np.zeros((1, 1, 2, 2), np.float32), (2, 2), (2, 2))
        _concurrent_kernels = numba.threading_layer() != "workqueue"
    return _concurrent_kernels


def map_slices(work, count, on_cpu=True, min_per_thread=MIN_IMAGES_PER_THREAD):
    """[work(start, stop) for each slice of range(count)], the slices run in parallel threads.

    work must only touch its own slice (its images' results are independent of the others').
    With one thread, or on the GPU (on_cpu False), it is simply work(0, count). Each slice
    holds at least min_per_thread items (the kernels pass their own minimum).
    """
    threads = thread_count_for(count, min_per_thread) if on_cpu else 1
    if threads == 1:
        return [work(0, count)]
    with _region_lock, _single_threaded_blas():
        return _run_slices(work, count, threads)


def _run_slices(work, count, threads):
    pool = _get_pool(get_threads())
    futures = [pool.submit(work, start, stop) for start, stop in slices(count, threads)]
    concurrent.futures.wait(futures)  # all done (or failed) before BLAS gets its threads back
    return [future.result() for future in futures]


def map_kernel_slices(work, count, min_per_thread, uses_blas=False):
    """map_slices for one kernel call of the calling thread (kernels/cpu_layout.py says when).

    With uses_blas, BLAS runs on one thread even when the work is too small to share. Why:
    after a call on several threads, OpenBLAS's idle threads spin for about 0.2 s (measured)
    and take a core from everything else. So minisg's own matrix products never wake them
    (while MINISG_THREADS, or set_threads, allows more than one thread).
    """
    threads = thread_count_for(count, min_per_thread)
    if threads == 1 and not (uses_blas and get_threads() > 1 and not getattr(_local, "inside", False)):
        return [work(0, count)]
    with _region_lock, (_single_threaded_blas() if uses_blas else contextlib.nullcontext()):
        return [work(0, count)] if threads == 1 else _run_slices(work, count, threads)


def batch_bounds(count, batch_size=None):
    """(start, stop) pairs that cover range(count) in pieces of batch_size (None: the default)."""
    size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
    if isinstance(size, bool) or not isinstance(size, numbers.Integral):
        raise TypeError(f"batch_size: expected an int >= 1, got {size!r}")
    if size < 1:
        raise ValueError(f"batch_size: expected an int >= 1, got {size}")
    return [(start, min(start + size, count)) for start in range(0, count, size)]


def map_batches(work, count, batch_size=None, on_cpu=True):
    """work(start, stop) over range(count), batch_size images at a time, joined in order.

    Each batch is cut into slices that run on all cores at once (map_slices), so work must
    only touch its own images. work returns an array, or a tuple of arrays; the pieces are
    concatenated along the first axis (a tuple comes back as a tuple of joined arrays).
    """
    if count == 0:
        raise ValueError("map_batches: expected at least one image, got count 0")
    pieces = []
    for first, last in batch_bounds(count, batch_size):
        pieces += map_slices(lambda start, stop: work(first + start, first + stop), last - first, on_cpu)
    if isinstance(pieces[0], tuple):
        return tuple(np.concatenate(column) for column in zip(*pieces))
    return np.concatenate(pieces)


def logits(model, images, batch_size=None):
    """The model's logits for NumPy images (N, ...), as a NumPy array (N, classes) on the CPU.

    The model runs in eval mode (its flags are restored afterwards) without recording a graph,
    batch_size images per forward pass (None: DEFAULT_BATCH_SIZE), each batch in slices on all
    cores. The images are cast to the model's dtype and moved to its device batch by batch.
    NumPy comes back even for a GPU model: every caller compares, argmaxes or plots the logits.
    """
    parameters = model.parameters() if hasattr(model, "parameters") else []
    xp = parameters[0].xp if parameters else np
    dtype = parameters[0].dtype if parameters else None

    def logits_of_slice(start, stop):
        with no_grad():                            # no_grad is per thread: set it in the worker
            batch = np.ascontiguousarray(images[start:stop], dtype=dtype)
            return backend.to_numpy(model(Tensor(xp.asarray(batch))).data)

    with nn.evaluation_mode(model):
        return map_batches(logits_of_slice, len(images), batch_size, on_cpu=xp is np)
