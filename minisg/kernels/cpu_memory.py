"""Freed arrays stay with the process, so a step does not fault in fresh pages every time.

A training step at batch 128 allocates and frees about 70 MB of arrays (measured: the heap
grew by that much and shrank back). glibc's malloc takes them from the heap and, when the free
space at the heap's top grows past its trim threshold (by default twice the largest array it
has unmapped so far), gives it back to the system; the next step then faults in fresh pages.
Whether the top is free at the end of a step depends on the heap's layout, which any other code
in the process changes. Measured: after one PyTorch training step in the same process,
minisg's steps took 3,700-5,000 page faults each (3 runs of 4; before it, none) and ran about
16% slower (median of five processes).

So on the first CPU kernel call, minisg asks glibc (mallopt) to keep up to TRIM_THRESHOLD of
free heap, and to serve arrays up to MMAP_THRESHOLD (the most glibc allows) from the heap
rather than from fresh mappings. The process's memory then stays at its peak instead of
shrinking between steps. MINISG_KEEP_FREED_MEMORY=0 leaves malloc as it was; other C
libraries (musl, macOS) are left alone.
"""
import ctypes
import os
import platform
import threading

TRIM_THRESHOLD = 256 << 20   # bytes of free heap top kept: 3.5 times a training step's 70 MB
MMAP_THRESHOLD = 32 << 20    # glibc's maximum on 64-bit systems (HEAP_MAX_SIZE / 2)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3   # mallopt's parameter numbers (malloc.h)

_lock = threading.Lock()
_state = {}   # "set": whether the thresholds are set, once decided


def enabled():
    """MINISG_KEEP_FREED_MEMORY: 1 (the default) or 0; a bad value is named."""
    setting = os.environ.get("MINISG_KEEP_FREED_MEMORY", "").strip()
    if setting not in ("", "0", "1"):
        raise ValueError(f"MINISG_KEEP_FREED_MEMORY: expected 0 or 1, got {setting!r}")
    return setting != "0"


def keep_freed_memory():
    """Set glibc's two thresholds, once per process; returns whether they are set."""
    with _lock:
        if "set" not in _state:
            _state["set"] = enabled() and platform.libc_ver()[0] == "glibc" and _mallopt()
        return _state["set"]


def _mallopt():
    libc = ctypes.CDLL(None)
    # mallopt returns 1 on success; a refusal leaves glibc's dynamic thresholds in place
    return (libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
