"""Lesson 12 runs end to end with --quick, prints its numbers and writes every figure it names.

The lesson runs in a subprocess (cwd = the repository root) with --out pointing at a
temporary folder, so the figures of a full run in lessons/out/ are left alone.
"""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 240  # a quick run takes seconds; the margin is for a loaded machine
FIGURES = ["12_masks.png", "12_maps_vs_masks.png", "12_deletion_insertion.png", "12_randomisation.png",
           "12_smoothgrad_n.png", "12_scenes_repeats.png"]


def test_lesson_12_quick_run_writes_its_figures_and_prints_the_table(tmp_path):
    out = tmp_path / "out"
    lesson = ROOT / "lessons" / "12_measuring_maps.py"
    result = subprocess.run([sys.executable, str(lesson), "--quick", "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "lesson 12 finished" in result.stdout
    written = sorted(Path(p).name for p in re.findall(r"^wrote (.+\.png)$", result.stdout, flags=re.M))
    assert written == sorted(FIGURES)
    for name in FIGURES:
        content = (out / name).read_bytes()
        assert content[:8] == b"\x89PNG\r\n\x1a\n" and len(content) > 5_000, name
    # The table built with evaluate's functions, one row per method, and the scene table.
    assert "| integrated_gradients |" in result.stdout and "| smooth_gradcam_pp @relu2 |" in result.stdout
    assert "deletion AUC" in result.stdout and "weakest share" in result.stdout
