"""Lessons 06-11 run end to end with --quick and write every figure they name.

Each lesson runs in a subprocess (the interpreter running the tests, cwd = the repository
root) with --quick and --out pointing at a temporary folder, so the figures of a full run in
lessons/out/ are left alone. A lesson passes when it exits 0, prints that it finished,
announces exactly the figures listed here ("wrote PATH" lines), and each of them is a PNG
of non-trivial size.
"""
import pytest

from lesson_runs import assert_finished_with_figures, run_quick

TIMEOUT_S = 240  # a quick run takes seconds; the margin is for a loaded machine

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
