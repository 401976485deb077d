"""How Numba's OpenMP threads wait between parallel loops, set before they start.

Numba's OpenMP workers otherwise spin for milliseconds after each parallel loop and starve the
BLAS threads that run right after them on a small machine (measured: 8 ms lost per chunk on 2
cores, a training step 4 times slower). The OpenMP runtime reads OMP_WAIT_POLICY once, when
Numba starts its threads: at the first call of a parallel kernel (compiled then, or loaded from
the cache), or at a call such as ``numba.get_num_threads()``. So ``prepare()`` runs at the start
of every public function of ``cpu`` (only the first call does anything), and must run before
anything else that starts the threads (as in tools/bench.py). Imports leave os.environ alone.

A user's own setting (OMP_WAIT_POLICY or GOMP_SPINCOUNT) wins. Caveats: a process has one
OpenMP runtime, so it has no effect when another library started it first (PyTorch imported
and used before minisg's first kernel call), and PyTorch started later gets the setting too; ``user_environment()`` is
the environment to hand to a child process (the benchmarks' PyTorch) without it.
"""
import os
import threading

_lock = threading.Lock()
_prepared = False
_set_by_minisg = False  # True once minisg has put its own OMP_WAIT_POLICY into os.environ


def prepare():
    """Set OMP_WAIT_POLICY=PASSIVE unless the user chose a wait policy (first call only)."""
    global _prepared, _set_by_minisg
    if _prepared:
        return
    with _lock:  # a second thread waits until the variable is in place
        if not _prepared and "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
            _set_by_minisg = True
        _prepared = True


def user_environment():
    """A copy of os.environ without the OMP_WAIT_POLICY that minisg set (the user's own stays)."""
    env = dict(os.environ)
    if _set_by_minisg:
        env.pop("OMP_WAIT_POLICY", None)
    return env
