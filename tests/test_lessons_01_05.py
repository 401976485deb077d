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


def test_the_environment_passes_options_where_there_is_no_command_line(tmp_path, monkeypatch):
    """MINISG_LESSON_ARGS: how a notebook runner (minisg book) asks for --quick; the command line wins."""
    from minisg.classroom.lesson import setup

    monkeypatch.setenv("MINISG_LESSON_ARGS", f"--quick --out '{tmp_path / 'from env'}'")
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher", "-f", "kernel.json"])
    lesson = setup("01", "a title", quick="fast")
    assert lesson.quick and lesson.out == tmp_path / "from env" and lesson.out.is_dir()
    monkeypatch.setattr(sys, "argv", ["lesson", "--out", str(tmp_path / "from argv")])
    assert setup("01", "a title", quick="fast").out == tmp_path / "from argv"
    monkeypatch.delenv("MINISG_LESSON_ARGS")
    assert not setup("01", "a title", quick="fast").quick


def _one_figure_and_one_grid(lesson):
    import numpy as np
    from matplotlib.figure import Figure

    figure = Figure()
    figure.subplots().plot([0, 1])
    return (lesson.save(figure, "01_plot.png"),
            lesson.figure_grid(np.zeros((1, 1, 4, 4)), {"map": np.ones((1, 4, 4))}, "01_grid.png"))


def test_in_a_notebook_kernel_figures_are_shown_inline_and_no_value_is_left(tmp_path, monkeypatch):
    IPython = pytest.importorskip("IPython")
    import IPython.display
    from minisg.classroom.lesson import setup

    monkeypatch.setattr(sys, "argv", ["lesson", "--out", str(tmp_path)])
    lesson = setup("01", "a title", quick="fast")
    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)              # IPython imported, no kernel
    assert _one_figure_and_one_grid(lesson) == (None, None) and shown == []

    class Shell:
        kernel = object()

    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell())           # inside a Jupyter kernel
    assert _one_figure_and_one_grid(lesson) == (None, None)
    written = [(tmp_path / name).read_bytes() for name in ("01_plot.png", "01_grid.png")]
    assert [image.data for image in shown] == written


def test_a_script_never_imports_ipython(tmp_path):
    script = ("import sys; from minisg.classroom.lesson import setup; lesson = setup('01', 't', quick='q'); "
              "from matplotlib.figure import Figure; lesson.save(Figure(), 'x.png'); print('IPython' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script, "--out", str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"wrote {tmp_path / 'x.png'}", "False"]


def test_a_lesson_executed_as_a_notebook_shows_its_figures_and_no_stray_values(tmp_path, monkeypatch):
    """What a student sees in Jupyter: the lesson converted by jupytext and run cell by cell."""
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = jupytext.read(ROOT / "lessons" / "01_autodiff.py")
    monkeypatch.setenv("MINISG_LESSON_ARGS", f"--quick --out {tmp_path}")
    for name, value in SINGLE_THREADED.items():
        monkeypatch.setenv(name, value)
    nbclient.NotebookClient(notebook, timeout=TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "lessons")}}).execute()
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) == len(LESSONS["01_autodiff.py"])
    assert not [output for output in outputs if output["output_type"] in ("execute_result", "error")]
    assert "PosixPath" not in str(outputs)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(LESSONS["01_autodiff.py"])
