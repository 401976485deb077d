"""Lesson 16 (Smooth Grad-CAM++ on real photos) runs end to end with --quick and writes its figures.

The lesson needs the ImageNet networks and photos (never copied into the repository): the test
skips, saying where it looked, when they are missing. It runs the lesson as a student would
(tests/lesson_runs.py: a subprocess, --quick, --out in a temporary folder) and checks that it
finishes, announces exactly the figures below, and that each is a real PNG over 10 kB.
"""

from imagenet_files import require
from lesson_runs import assert_finished_with_figures, run_quick

LESSON = "16_smooth_gradcam_pp_photos.py"
TIMEOUT_S = 240  # a quick run takes about 20 s on a loaded 2-core machine; the margin is for worse
MIN_BYTES = 10_000
FIGURES = ["16_three_cams_fig1_squeezenet1_1.png", "16_three_cams_fig1_mobilenet_v2.png", "16_localisation.png",
           "16_smoothing_sweep.png", "16_feature_maps_fig2.png", "16_neurons_figs4_5.png"]
NEEDED = [("squeezenet1.1_fp16.onnx",), ("synset_words.txt",), ("mobilenet_v2_1.0_224.onnx",),
          ("imagenet_labels_1001.txt",), ("photos", "dog_segmentation.png"), ("photos", "dog_segmentation_mask.png")]


def test_lesson_16_quick_run_writes_its_figures(tmp_path):
    for parts in NEEDED:
        require(*parts)
    out = tmp_path / "out"
    result, log = run_quick(LESSON, out, TIMEOUT_S)
    assert_finished_with_figures(result, log, out, "16", FIGURES, min_bytes=MIN_BYTES)
