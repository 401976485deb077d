"""Lesson 15 (methods compared on real photos) runs end to end with --quick and writes every figure it names.

The lesson needs the ImageNet networks, labels and photos (never copied into the repository):
the test skips, saying where it looked, when they are missing. Otherwise the lesson runs in a
subprocess (the interpreter running the tests, cwd = the repository root) with --quick and
--out pointing at a temporary folder, so the figures of a full run in lessons/out/ are left
alone. It passes when it exits 0, prints that it finished, announces exactly the figures
listed here ("wrote PATH" lines), each of them a PNG of more than 10 kB.
"""
from imagenet_files import require
from lesson_runs import assert_finished_with_figures, run_quick

LESSON = "15_comparing_methods_photos.py"
TIMEOUT_S = 300  # a quick run takes well under a minute; the margin is for a loaded machine
FIGURES = ["15_methods_fig5.png", "15_smoothgrad_on_ig_gbp_fig7.png", "15_discriminativity_fig6.png",
           "15_localisation_scores.png", "15_localisation_maps.png"]
NEEDED = ["squeezenet1.1_fp16.onnx", "mobilenet_v2_1.0_224.onnx", "synset_words.txt", "imagenet_labels_1001.txt",
          "photos/pets.jpg", "photos/bird_segmentation.png", "photos/bird_segmentation_mask.png",
          "photos/dog_segmentation.png", "photos/dog_segmentation_mask.png"]
MIN_BYTES = 10_000


def test_lesson_15_quick_run_writes_its_figures(tmp_path):
    for name in NEEDED:
        require(*name.split("/"))
    out = tmp_path / "out"
    result, log = run_quick(LESSON, out, TIMEOUT_S)
    assert_finished_with_figures(result, log, out, "15", FIGURES, min_bytes=MIN_BYTES)
    assert "pointing game hit at" in result.stdout, log
