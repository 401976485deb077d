"""BLAS's thread counts, for the tests that check who limits them (parallel, kernel sharing)."""
import pytest
from threadpoolctl import threadpool_info


def blas_threads():
    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def multithreaded_blas():
    """BLAS's thread counts, skipping the test where limiting them to one would show nothing."""
    before = blas_threads()
    if not before or max(before) <= 1:
        pytest.skip(f"BLAS runs on one thread already here ({before}): nothing to limit")
    return before
