"""One way to time a step, shared by the benchmarks (NumPy only: the PyTorch child imports it too)."""
import time

import numpy as np


def seconds_per_run(step, repeats, warmup, sync=None):
    """Wall-clock seconds of `repeats` runs of step() after `warmup` untimed ones.

    sync() (e.g. a GPU synchronisation) runs after the warm-up and after each run, so that
    queued work is counted in the run that queued it.
    """
    sync = sync or (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - started)
    return times


def median_seconds(step, repeats, warmup, sync=None):
    return float(np.median(seconds_per_run(step, repeats, warmup, sync)))
