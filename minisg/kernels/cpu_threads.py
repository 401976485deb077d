"""How many threads minisg's Numba kernels use: one in each calling thread, unless asked.

A backward pass is dozens of small kernels. An OpenMP team for each one costs about as much
as the work on a small machine, and the team's idle threads spin after each parallel loop,
starving the BLAS threads that run next. How long they spin is decided once per process by
the OpenMP runtime, from OMP_WAIT_POLICY as it was when the runtime was loaded: by Numba, or
earlier by PyTorch when it is imported first. Measured on the 2-core development machine,
training step at batch 128 (fwd + bwd + Adam; medians of 10, runs in separate processes):

    Numba threads        without torch    torch imported first
    2 (Numba's default)  164-208 ms       395-443 ms (the runtime's threads spin)
    1 (minisg's default) 144-165 ms       137-216 ms (a noisy hour; most runs 160-216)

With one Numba thread per calling thread there is no team: the cores go to BLAS, and to
minisg.parallel's batch slices, which run side by side with one Numba thread each. So speed
does not depend on what else the process has loaded, and minisg changes no environment
variable. MINISG_KERNEL_THREADS=N gives kernels called outside the slices N Numba threads.

OpenBLAS's own threads do the same after a matrix product on several threads: they spin for
about 0.2 s (measured: a kernel shared between two threads ran at one thread's speed until
0.2 s after the last product). So a kernel called with a batch shares its work on minisg's
worker threads, which sleep, and runs its products with one BLAS thread (cpu_layout.map_images).

Nor does minisg change PyTorch's thread settings. Numba's OpenMP layer, when it starts (on
minisg's first kernel call), sets the calling thread's OpenMP thread count to Numba's own and
turns nested regions on, in whichever OpenMP runtime its calls resolve to: PyTorch's, when
PyTorch was imported first (it loads its libgomp for the whole process). Measured: after
``torch.set_num_threads(1)``, one minisg call put PyTorch's count back to 2 and its conv2 ran
on two cores. So the first start puts both settings back (openmp_settings_kept).
"""
import contextlib
import ctypes
import os
import threading

from . import cpu_memory

_local = threading.local()
_launch_lock = threading.Lock()
_layer_started = False   # whether a call here has started Numba's threading layer


def count_setting(name, default):
    """The int >= 1 in environment variable `name`, else `default`; a bad value is named."""
    setting = os.environ.get(name, "").strip()
    if not setting:
        return default
    try:
        count = int(setting)
    except ValueError:
        raise ValueError(f"{name}: expected an int >= 1, got {setting!r}") from None
    if count < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {count}")
    return count


def kernel_threads():
    """MINISG_KERNEL_THREADS, else 1 (at most Numba's own thread count)."""
    import numba
    return min(count_setting("MINISG_KERNEL_THREADS", 1), numba.config.NUMBA_NUM_THREADS)


def prepare(count=None):
    """Give this thread's Numba kernels `count` threads (default kernel_threads()); once per thread."""
    if getattr(_local, "count", None) is not None and count is None:
        return
    import numba
    cpu_memory.keep_freed_memory()   # once per process (see there)
    _local.count = kernel_threads() if count is None else count
    global _layer_started
    with _launch_lock:   # the first call starts Numba's threading layer (module docstring)
        with contextlib.nullcontext() if _layer_started else openmp_settings_kept():
            numba.set_num_threads(_local.count)
        _layer_started = True


def _openmp_runtime():
    """The OpenMP functions that Numba's OpenMP layer calls, or None: a runtime loaded for the
    whole process (RTLD_GLOBAL, as PyTorch loads its libgomp) comes first in their lookup,
    then the one the layer itself links."""
    handles = []
    try:
        handles.append(ctypes.CDLL(None))
        from numba.np.ufunc import omppool   # the layer's module; starts no thread
        handles.append(ctypes.CDLL(omppool.__file__))
    except (ImportError, OSError, TypeError):
        pass                                 # no OpenMP layer here (or no C symbol lookup)
    for handle in handles:
        if hasattr(handle, "omp_get_max_threads") and hasattr(handle, "omp_get_max_active_levels"):
            return handle
    return None


@contextlib.contextmanager
def openmp_settings_kept():
    """The calling thread's OpenMP thread count and nesting depth, as they were on entry,
    set again on leaving (OpenMP keeps both per thread)."""
    runtime = _openmp_runtime()
    if runtime is None:
        yield
        return
    threads, levels = runtime.omp_get_max_threads(), runtime.omp_get_max_active_levels()
    try:
        yield
    finally:
        runtime.omp_set_num_threads(threads)
        runtime.omp_set_max_active_levels(levels)
