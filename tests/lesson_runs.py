"""Running a lesson script as a student would (--quick, figures into a temporary folder)."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIN_BYTES = 5_000  # an empty 1-inch figure is ~2 kB; every real one here is far larger


def run_quick(lesson, out, timeout):
    """(completed process, log text) of `python lessons/LESSON --quick --out OUT` from the repo root."""
    result = subprocess.run([sys.executable, str(ROOT / "lessons" / lesson), "--quick", "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    log = f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
    return result, log


def assert_finished_with_figures(result, log, out, number, figures, min_bytes=MIN_BYTES):
    """Exit 0, 'lesson NN finished', exactly `figures` announced, each a real PNG over
    `min_bytes`, no temp file."""
    assert result.returncode == 0, f"lesson {number} exited with {result.returncode}\n{log}"
    assert f"lesson {number} finished in" in result.stdout, log
    announced = [Path(p).name for p in re.findall(r"^wrote (.+\.png)\s*$", result.stdout, flags=re.M)]
    assert sorted(announced) == sorted(figures), f"announced {announced}\n{log}"
    for name in figures:
        path = out / name
        assert path.is_file(), f"lesson {number} did not write {name}\n{log}"
        content = path.read_bytes()
        assert content.startswith(PNG_SIGNATURE), f"{name} is not a PNG"
        assert len(content) > min_bytes, f"{name} is only {len(content)} bytes\n{log}"
    assert not [p for p in out.iterdir() if not p.name.endswith(".png")], "a temporary file was left behind"
