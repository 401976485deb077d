"""Lesson 13 runs end to end with --quick and writes every figure it names.

The lesson runs in a subprocess (the interpreter running the tests, cwd = the repository
root) with --quick and --out pointing at a temporary folder, so the figures of a full run in
lessons/out/ are left alone. It passes when it exits 0, prints that it finished, announces
exactly the figures listed here ("wrote PATH" lines), each of them a PNG of non-trivial
size, and its double-backprop check agrees with finite differences.
"""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LESSON = ROOT / "lessons" / "13_future_work.py"
TIMEOUT_S = 300  # a quick run takes under a minute; the margin is for a loaded machine
FIGURES = ["13_maps.png", "13_metrics.png"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIN_BYTES = 5_000  # an empty 1-inch figure is ~2 kB; every real one here is far larger


def test_lesson_13_quick_run_writes_its_figures(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, str(LESSON), "--quick", "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    log = f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
    assert result.returncode == 0, f"lesson 13 exited with {result.returncode}\n{log}"
    assert "lesson 13 finished in" in result.stdout, log

    announced = [Path(p).name for p in re.findall(r"^wrote (.+\.png)\s*$", result.stdout, flags=re.M)]
    assert sorted(announced) == sorted(FIGURES), f"announced {announced}\n{log}"
    for name in FIGURES:
        path = out / name
        assert path.is_file(), f"lesson 13 did not write {name}\n{log}"
        content = path.read_bytes()
        assert content.startswith(PNG_SIGNATURE), f"{name} is not a PNG"
        assert len(content) > MIN_BYTES, f"{name} is only {len(content)} bytes"
    assert not list(out.glob("*.tmp")), "a temporary file was left behind"

    # double backprop vs finite differences, printed by section 1: rounding-level agreement,
    # while holding G constant (no second pass) misses by the size of the gradient
    double = re.search(r"double backprop\s+vs finite differences: max \|difference\| = (\S+)", result.stdout)
    cut = re.search(r"G held constant\s+vs finite differences: max \|difference\| = (\S+)", result.stdout)
    assert double and cut, log
    assert float(double.group(1)) < 1e-6, log
    assert float(cut.group(1)) > 1e-3, log
