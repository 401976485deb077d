"""Lessons 06-11 run end to end with --quick and write every figure they name.

Each lesson runs in a subprocess (the interpreter running the tests, cwd = the repository
root) with --quick and --out pointing at a temporary folder, so the figures of a full run in
lessons/out/ are left alone. A lesson passes when it exits 0, prints that it finished,
announces exactly the figures listed here ("wrote PATH" lines), and each of them is a PNG
of non-trivial size.

Lesson 09 is also executed as a notebook, as Jupyter would run it (jupytext and nbclient; skipped
without them): its figures must show inline and no cell may leave a stray value.
"""
import shlex

import pytest

from lesson_runs import ROOT, assert_finished_with_figures, run_quick

TIMEOUT_S = 240  # a quick run takes seconds; the margin is for a loaded machine
NOTEBOOK_LESSONS = ["09_training_with_noise.py"]   # the fastest of these lessons, with figures of both kinds

FIGURES = {
    "06_smoothgrad.py": ["06_noise_sweep_fig10.png", "06_noise_sweep_fig3.png", "06_noise_sweep_numbers.png",
                         "06_sample_size_fig4.png", "06_sample_size_convergence.png"],
    "07_comparing_methods.py": ["07_methods_fig5.png", "07_smoothgrad_on_ig_gbp_fig7.png", "07_signed_maps.png"],
    "08_discriminativity.py": ["08_discriminativity_fig6.png", "08_maps_per_class.png",
                               "08_discriminativity_scores.png"],
    "09_training_with_noise.py": ["09_train_infer_fig8.png", "09_train_infer_numbers.png"],
    "10_gradcam_pp.py": ["10_gradcam_vs_gradcampp.png", "10_derivatives_check.png", "10_smooth_heads.png"],
    "11_smooth_gradcam_pp.py": ["11_three_cams_fig1.png", "11_layers.png", "11_feature_maps_fig2.png",
                                "11_neurons_figs4_5.png", "11_several_digits.png"],
}


@pytest.mark.parametrize("lesson", sorted(FIGURES), ids=lambda name: name[:2])
def test_lesson_quick_run_writes_its_figures(lesson, tmp_path):
    out = tmp_path / "out"
    result, log = run_quick(lesson, out, TIMEOUT_S)
    assert_finished_with_figures(result, log, out, lesson[:2], FIGURES[lesson])


@pytest.mark.parametrize("lesson", NOTEBOOK_LESSONS, ids=lambda name: name[:2])
def test_lesson_executed_as_a_notebook_shows_its_figures_and_no_stray_values(lesson, tmp_path, monkeypatch):
    """What a student sees in Jupyter: the lesson converted by jupytext and run cell by cell. Every
    figure shows below its cell, and no cell ends in a value (a PosixPath, a matplotlib object)."""
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = jupytext.read(ROOT / "lessons" / lesson)
    monkeypatch.setenv("MINISG_LESSON_ARGS", f"--quick --out {shlex.quote(str(tmp_path))}")
    nbclient.NotebookClient(notebook, timeout=TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "lessons")}}).execute()
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) == len(FIGURES[lesson])
    assert not [output for output in outputs if output["output_type"] in ("execute_result", "error")]
    assert "PosixPath" not in str(outputs) and "<matplotlib" not in str(outputs)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(FIGURES[lesson])
