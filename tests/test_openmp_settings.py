"""minisg leaves the OpenMP settings of other libraries alone (kernels/cpu_threads.py).

Numba's OpenMP layer, started by minisg's first kernel call, would set the calling thread's
OpenMP thread count to Numba's own and turn nested regions on, in an OpenMP runtime loaded for
the whole process (PyTorch's libgomp). Each check runs in a fresh process: the layer starts once.
"""
import os
import subprocess
import sys
import textwrap

import pytest

_FIRST_MINISG_CALL = """
    import numpy as np
    from minisg.kernels import cpu
    cpu.relu_forward(np.ones(4, np.float32))        # starts Numba's threading layer
    import numba
    print(numba.threading_layer())
"""

# the system's libgomp loaded for the whole process, as PyTorch loads its own
_WITH_LIBGOMP = textwrap.dedent("""
    import ctypes, os
    try:
        gomp = ctypes.CDLL("libgomp.so.1", mode=os.RTLD_GLOBAL)
    except OSError:
        print("no libgomp"); raise SystemExit
    gomp.omp_set_num_threads(1)
    gomp.omp_set_max_active_levels(1)
""") + textwrap.dedent(_FIRST_MINISG_CALL) + textwrap.dedent("""
    print(gomp.omp_get_max_threads(), gomp.omp_get_max_active_levels())
""")

_WITH_TORCH = textwrap.dedent("""
    import torch
    torch.set_num_threads(1)
    torch.get_num_threads()                         # PyTorch sets up its threads here
""") + textwrap.dedent(_FIRST_MINISG_CALL) + textwrap.dedent("""
    print(torch.get_num_threads())
""")


def _run(script):
    """The script's printed words, in a fresh process where Numba's own thread count is 2."""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NUMBA_NUM_THREADS": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


def test_the_first_kernel_call_keeps_the_settings_of_a_shared_openmp_runtime():
    words = _run(_WITH_LIBGOMP)
    if words[0] != "omp":
        pytest.skip(f"Numba's OpenMP layer is not used here ({' '.join(words)})")
    threads, levels = int(words[1]), int(words[2])
    assert (threads, levels) == (1, 1), (
        f"after minisg's first kernel call the OpenMP runtime has {threads} threads and "
        f"{levels} active levels; expected the 1 and 1 set before it")


def test_pytorch_keeps_its_thread_count():
    pytest.importorskip("torch", reason="PyTorch is the library whose setting is checked")
    words = _run(_WITH_TORCH)
    if words[0] != "omp":
        pytest.skip(f"Numba's threading layer here is {words[0]}, not OpenMP")
    assert int(words[1]) == 1, f"torch.set_num_threads(1) became {words[1]} after minisg's first kernel call"
