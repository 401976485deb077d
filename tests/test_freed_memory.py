"""minisg keeps freed heap memory (kernels/cpu_memory.py): a step's arrays do not fault in
fresh pages every time, whatever else the process did to the heap's layout."""
import os
import platform
import subprocess
import sys
import textwrap

import pytest

from minisg.kernels import cpu_memory

# Frees 72 MB at the heap's top three times over. With glibc's defaults (trim threshold: twice
# the 24 MB array freed first) the top goes back to the system each time and the next round
# faults its pages in again; with minisg's thresholds it stays.
_ROUNDS = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from minisg.kernels import cpu
    cpu.relu_forward(np.ones(4, np.float32))            # the first CPU kernel call
    size = 24 << 20
    np.ones(size, np.uint8)                             # freed at once: glibc's threshold rises to 24 MB
    def round_of_arrays():
        arrays = [np.ones(size, np.uint8) for _ in range(3)]
        del arrays
    round_of_arrays()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    round_of_arrays()
    round_of_arrays()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
""")


def _page_faults(keep):
    env = {**os.environ, "MINISG_KEEP_FREED_MEMORY": keep}
    done = subprocess.run([sys.executable, "-c", _ROUNDS], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="the thresholds are glibc's")
def test_freed_arrays_are_reused_without_page_faults():
    kept, given_back = _page_faults("1"), _page_faults("0")
    # 144 MB faulted in again: 2,028 faults on the development machine (NumPy asks for huge
    # pages for large arrays; without them it would be 36,864)
    if given_back < 60:
        pytest.skip(f"glibc's defaults kept the memory here too ({given_back} faults): nothing to compare")
    assert kept <= 10, f"{kept} page faults for arrays freed and allocated again (glibc's defaults: {given_back})"


def test_a_bad_setting_is_named(monkeypatch):
    monkeypatch.setenv("MINISG_KEEP_FREED_MEMORY", "yes")
    with pytest.raises(ValueError, match=r"MINISG_KEEP_FREED_MEMORY: expected 0 or 1, got 'yes'"):
        cpu_memory.enabled()
    monkeypatch.setenv("MINISG_KEEP_FREED_MEMORY", "0")
    assert not cpu_memory.enabled()
