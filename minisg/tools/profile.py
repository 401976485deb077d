"""Where a step's time goes: every kernel and every op, timed while the step runs.

    with op_profile(device) as profile:
        step()
    profile.table(runs=1, wall_seconds=...)

Inside the scope, each public function of the kernel module (conv2d_forward, max_pool2d_forward,
adam_update, ...), the tie step of the convolutions (cpu_ties.equalise) and every Function call
(ReLU, MatMul, Add, ...) is timed. Times are exclusive: an op's time leaves out the kernels it
called, so the rows add up, and what no row covers is Python, autograd bookkeeping and the
methods' NumPy glue. Threads (the methods' batch slices) add their times: with two threads
the rows can add up to twice the wall-clock time.
"""
import contextlib
import threading
import time
from collections import defaultdict

from ..autograd import Function

_KERNEL_FUNCTIONS = ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight",
                     "max_pool2d_forward", "max_pool2d_scatter", "max_pool2d_gather", "adam_update")


class Profile:
    def __init__(self, sync):
        self.sync = sync
        self.seconds = defaultdict(float)
        self.calls = defaultdict(int)
        self._stacks = threading.local()

    def timed(self, name_of, function):
        """function, timing each call under name_of(args) minus the timed calls inside it."""
        def wrapper(*args, **kwargs):
            stack = self._stacks.__dict__.setdefault("children", [])
            stack.append(0.0)
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.sync()
                elapsed = time.perf_counter() - started
                name = name_of(args)
                self.seconds[name] += elapsed - stack.pop()
                self.calls[name] += 1
                if stack:
                    stack[-1] += elapsed
        return wrapper

    def rows(self, runs):
        """[(name, calls per run, ms per run)], the largest first."""
        return sorted(((name, self.calls[name] / runs, 1e3 * seconds / runs)
                       for name, seconds in self.seconds.items()), key=lambda row: -row[2])

    def table(self, runs, wall_seconds, top=12):
        """Lines: the `top` largest rows with their share of the wall-clock time, then the rest."""
        rows = self.rows(runs)
        wall_ms = 1e3 * wall_seconds / runs
        lines = [f"    {name:34s} {calls:6.0f} calls {ms:8.2f} ms {100 * ms / wall_ms:5.1f}%"
                 for name, calls, ms in rows[:top]]
        rest = sum(ms for _, _, ms in rows[top:])
        timed = sum(ms for _, _, ms in rows)
        lines.append(f"    {'other ops and kernels':34s} {'':12s} {rest:8.2f} ms {100 * rest / wall_ms:5.1f}%")
        lines.append(f"    {'Python, autograd, NumPy glue':34s} {'':12s} {wall_ms - timed:8.2f} ms "
                     f"{100 * (wall_ms - timed) / wall_ms:5.1f}%  (negative: threads overlapped)")
        return lines


@contextlib.contextmanager
def op_profile(device="cpu"):
    """Time every kernel and op called inside the scope (see the module docstring)."""
    if device == "gpu":
        from .. import backend
        sync = backend.cupy_or_error().cuda.runtime.deviceSynchronize
        from ..kernels import gpu as module
    else:
        from ..kernels import cpu as module
        sync = lambda: None  # noqa: E731
    profile = Profile(sync)
    patched = [(module, name, getattr(module, name)) for name in _KERNEL_FUNCTIONS]
    patched.append((Function, "__call__", Function.__call__))
    if device != "gpu":
        from ..kernels import cpu_ties
        patched.append((cpu_ties, "equalise", cpu_ties.equalise))
    try:
        for owner, name, original in patched:
            if owner is Function:
                name_of = lambda args: f"op {type(args[0]).__name__}"  # noqa: E731
            else:
                name_of = lambda args, name=name: f"kernel {name}"  # noqa: E731
            setattr(owner, name, profile.timed(name_of, original))
        yield profile
    finally:
        for owner, name, original in patched:
            setattr(owner, name, original)
