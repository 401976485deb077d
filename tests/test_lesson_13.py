"""Lesson 13 runs end to end with --quick and writes every figure it names.

The lesson runs in a subprocess (the interpreter running the tests, cwd = the repository
root) with --quick and --out pointing at a temporary folder, so the figures of a full run in
lessons/out/ are left alone. It passes when it exits 0, prints that it finished, announces
exactly the figures listed here ("wrote PATH" lines), each of them a PNG of non-trivial
size, and its double-backprop check agrees with finite differences.
"""
import re

from lesson_runs import assert_finished_with_figures, run_quick

LESSON = "13_future_work.py"
TIMEOUT_S = 300  # a quick run takes under a minute; the margin is for a loaded machine
FIGURES = ["13_maps.png", "13_metrics.png"]


def test_lesson_13_quick_run_writes_its_figures(tmp_path):
    out = tmp_path / "out"
    result, log = run_quick(LESSON, out, TIMEOUT_S)
    assert_finished_with_figures(result, log, out, "13", FIGURES)

    # double backprop vs finite differences, printed by section 1: rounding-level agreement,
    # while holding G constant (no second pass) misses by the size of the gradient
    double = re.search(r"double backprop\s+vs finite differences: max \|difference\| = (\S+)", result.stdout)
    cut = re.search(r"G held constant\s+vs finite differences: max \|difference\| = (\S+)", result.stdout)
    assert double and cut, log
    assert float(double.group(1)) < 1e-6, log
    assert float(cut.group(1)) > 1e-3, log
