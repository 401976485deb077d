"""Lesson 14 (SmoothGrad's photo figures on ImageNet networks) runs with --quick and writes its
figures when the ImageNet files are there, and without them says where it looked and exits 0.

The quick run is skipped, with the reason, when the networks and photos are not found
(tests/imagenet_files.py). The run without files points MINISG_IMAGENET_DIR at an empty folder
and hides the ../shared/imagenet fallback by running the lesson through a small launcher that
moves minisg.classroom.imagenet's notion of its own location (the fallback is derived from it)
into the temporary folder.
"""
import os
import subprocess
import sys

import pytest

from imagenet_files import require
from lesson_runs import ROOT, assert_finished_with_figures, run_quick

TIMEOUT_S = 240  # a quick run takes well under 30 s; the margin is for a loaded machine
LESSON = "14_smoothgrad_photos.py"
FIGURES = ["14_photo_fig1.png", "14_path_fig2.png", "14_noise_sweep_fig3.png", "14_sample_size_fig4.png",
           "14_display_choices.png"]
MIN_FIGURE_BYTES = 10_000


def test_lesson_14_quick_run_writes_its_figures(tmp_path):
    for name in ("squeezenet1.1_fp16.onnx", "mobilenet_v2_1.0_224.onnx", "synset_words.txt",
                 "imagenet_labels_1001.txt"):
        require(name)
    for name in ("cat.png", "parrot.jpg"):
        require("photos", name)
    out = tmp_path / "out"
    result, log = run_quick(LESSON, out, TIMEOUT_S)
    assert_finished_with_figures(result, log, out, "14", FIGURES, min_bytes=MIN_FIGURE_BYTES)
    assert "top-5 on cat.png" in result.stdout, log
    assert "noise sweep on squeezenet1.1" in result.stdout, log
    assert "sample-size sweep on squeezenet1.1" in result.stdout, log


LAUNCHER = """
import runpy, sys
sys.path.insert(0, {root!r})
from minisg.classroom import imagenet
imagenet.__file__ = {fake!r}          # folder()'s fallback is <its parents[2]>/../shared/imagenet
sys.argv = [{lesson!r}, "--quick", "--out", {out!r}]
runpy.run_path({lesson!r}, run_name="__main__")
"""


def test_lesson_14_without_the_files_says_where_it_looked_and_exits_0(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    fake = tmp_path / "repo" / "minisg" / "classroom" / "imagenet.py"   # fallback: tmp_path/shared/imagenet
    out = tmp_path / "out"
    lesson = ROOT / "lessons" / LESSON
    code = LAUNCHER.format(root=str(ROOT), fake=str(fake), lesson=str(lesson), out=str(out))
    env = {**os.environ, "MINISG_IMAGENET_DIR": str(empty)}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env=env)
    log = f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
    assert result.returncode == 0, log
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, log
    assert lines[0].startswith("lesson 14 skipped, no figures:"), log
    assert str(empty) in lines[0] and str(tmp_path / "shared" / "imagenet") in lines[0], log
    assert "MINISG_IMAGENET_DIR" in lines[0], log
    assert not list(out.glob("*.png")), "figures were written without the files"


def test_the_launcher_really_hides_the_fallback(tmp_path, monkeypatch):
    """The trick the test above relies on: imagenet.folder() derives its fallback from __file__."""
    from minisg.classroom import imagenet
    monkeypatch.setenv("MINISG_IMAGENET_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(imagenet, "__file__", str(tmp_path / "repo" / "minisg" / "classroom" / "imagenet.py"))
    assert not imagenet.available()
    with pytest.raises(imagenet.ImageNetFilesMissing, match="MINISG_IMAGENET_DIR"):
        imagenet.folder()
