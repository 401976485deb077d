"""Lessons 01-05 run end to end with --quick and write every figure they name.

Each lesson runs as a student would run it — ``python lessons/NN_topic.py --quick`` in a fresh
interpreter from the repository root — but with ``--out`` pointing at a temporary folder, so
the test never overwrites the figures of a full run in lessons/out/.

The subprocesses run single-threaded (Numba, OpenMP, BLAS): on a machine whose cores are
shared with other jobs, two-thread parallel regions were measured 6-20x slower than one
thread (lesson 03 --quick: 36-109 s against 6 s), and these tests check behaviour, not speed.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LESSONS = {
    "01_autodiff.py": ["01_higher_derivatives.png", "01_finite_differences.png"],
    "02_cnn_layers.py": ["02_ties.png", "02_im2col.png", "02_timing.png"],
    "03_training.py": ["03_training_noise.png", "03_demo_training.png", "03_validation_accuracy.png"],
    "04_sensitivity_maps.py": ["04_visualisation.png", "04_capping.png"],
    "05_noisy_gradients.py": ["05_noisy_gradients.png", "05_maps_along_path.png"],
}
MIN_PNG_BYTES = 10_000   # a real figure; an empty 800x600 canvas is about 3 kB
TIMEOUT_S = 300          # per lesson; --quick takes a few seconds


SINGLE_THREADED = {name: "1" for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                           "MKL_NUM_THREADS")}


def run_lesson(lesson, out_dir, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "lessons" / lesson), "--quick", "--out", str(out_dir)],
                          cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S,
                          env={**os.environ, **SINGLE_THREADED})


def check_figures(lesson, done, out_dir):
    assert done.returncode == 0, f"{lesson} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    for name in LESSONS[lesson]:
        path = out_dir / name
        assert path.is_file(), f"{lesson} did not write {name}; it printed:\n{done.stdout[-2000:]}"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
        assert path.stat().st_size > MIN_PNG_BYTES, f"{path} is only {path.stat().st_size} bytes"
    announced = re.findall(r"^wrote (\S+\.png)$", done.stdout, flags=re.MULTILINE)
    assert sorted(Path(p).name for p in announced) == sorted(LESSONS[lesson]), announced
    for path in announced:
        assert Path(path).parent == out_dir, f"{lesson} wrote {path} outside --out"
    assert "finished in" in done.stdout


@pytest.mark.parametrize("lesson", sorted(LESSONS))
def test_lesson_runs_quick_and_writes_its_figures(lesson, tmp_path):
    check_figures(lesson, run_lesson(lesson, tmp_path), tmp_path)


def test_a_lesson_runs_from_another_folder(tmp_path):
    """Paths are resolved from the lesson file, not from the current directory."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out_dir = tmp_path / "figures"
    check_figures("01_autodiff.py", run_lesson("01_autodiff.py", out_dir, cwd=elsewhere), out_dir)
    assert list(elsewhere.iterdir()) == []


def test_the_lesson_preamble_reads_its_options_and_finds_its_folder_without_a_file(tmp_path, monkeypatch, capsys):
    """setup() as a notebook calls it: no __file__, Jupyter's own flags in sys.argv."""
    from minisg.classroom.lesson import Count, setup

    (tmp_path / "lessons" / "exercises").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher", "-f", "kernel.json", "--quick"])
    cell = 'lesson = setup("03", "a title", quick="fast", options={"--steps": Count("steps", full=300, quick=15)})'
    namespace = {"setup": setup, "Count": Count}
    exec(cell, namespace)                                    # a notebook's globals have no __file__
    lesson = namespace["lesson"]
    assert lesson.folder == tmp_path / "lessons" and lesson.out == tmp_path / "lessons" / "out"
    assert lesson.out.is_dir() and lesson.quick and lesson.steps == 15
    with pytest.raises(AttributeError, match="no option --mode"):
        lesson.mode

    monkeypatch.setattr(sys, "argv", ["lesson", "--steps", "7", "--out", str(tmp_path / "figures")])
    lesson = setup("03", "a title", quick="fast", options={"--steps": Count("steps", full=300, quick=15)})
    assert lesson.folder == ROOT / "tests" and not lesson.quick and lesson.steps == 7     # the caller's folder
    import numpy as np
    from matplotlib.figure import Figure

    figure = Figure()
    figure.subplots().plot([0, 1])
    lesson.save(figure, "03_plot.png")
    lesson.figure_grid(np.zeros((1, 1, 4, 4)), {"map": np.ones((1, 4, 4))}, "03_grid.png")
    lesson.finish()
    out = capsys.readouterr().out.splitlines()
    figures = tmp_path / "figures"
    assert out[:2] == [f"wrote {figures / '03_plot.png'}", f"wrote {figures / '03_grid.png'}"]
    assert out[2].startswith("lesson 03 finished in ") and "full run" in out[2]
    assert sorted(path.name for path in figures.iterdir()) == ["03_grid.png", "03_plot.png"]
