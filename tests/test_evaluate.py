"""minisg evaluate: every method scored, files written atomically, scene scores on known maps."""
import csv
import math

import numpy as np
import pytest

from minisg import data
from minisg.evaluation import report as evaluate
from minisg.methods import METHODS


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluation")
    return evaluate.run(quick=True, out_dir=str(out), progress=False), out


def test_quick_run_writes_every_file(quick_run):
    _, out = quick_run
    for name in ("results.md", "results.csv", "deletion_curves.png", "insertion_curves.png",
                 "examples_digits.png", "examples_scenes.png"):
        assert (out / name).stat().st_size > 500, name
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []   # no staging folder left
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_method_has_a_finite_row_in_the_digit_and_scene_tables(quick_run):
    results, out = quick_run
    tables = results["tables"]
    assert list(tables["digits"]) == list(METHODS)
    assert set(METHODS) <= set(tables["scenes"])
    assert list(tables["noise"]) == ["mnist_cnn × vanilla", "mnist_cnn × smoothgrad",
                                     "mnist_cnn_noise × vanilla", "mnist_cnn_noise × smoothgrad"]
    markdown = (out / "results.md").read_text()
    for name in METHODS:
        assert f"| {name} |" in markdown
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {row["table"] for row in rows} == {"digits", "scenes", "noise"}
    for row in rows:
        for key in ("mean", "stderr"):
            assert math.isfinite(float(row[key])), row
    digit_metrics = {row["metric"] for row in rows if row["table"] == "digits"}
    assert {"pointing", "mass", "deletion", "insertion", "total_variation", "rand_all"} <= digit_metrics


def test_scores_lie_in_their_ranges(quick_run):
    results, _ = quick_run
    for scores in results["tables"]["digits"].values():
        for metric in ("pointing", "mass", "rank", "deletion", "insertion"):
            assert 0 <= scores[metric][0] <= 1
    for scores in results["tables"]["scenes"].values():
        assert -1 <= scores["discriminativity"][0] <= 1
        assert 0 <= scores["target_share"][0] <= 1


def test_a_failed_run_leaves_the_earlier_results_intact(quick_run, monkeypatch):
    _, out = quick_run
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*args, **kwargs):
        raise RuntimeError("planted failure")

    monkeypatch.setitem(evaluate.METHODS, "vanilla", broken)
    with pytest.raises(RuntimeError, match="planted failure"):
        evaluate.run(quick=True, out_dir=str(out), progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_write_files_atomically_touches_nothing_when_a_file_cannot_be_staged(tmp_path):
    (tmp_path / "results.md").write_text("old")
    with pytest.raises(TypeError):
        evaluate.write_files_atomically(tmp_path, {"a.md": b"new", "results.md": "not bytes"})
    assert (tmp_path / "results.md").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.md"]


def _two_scenes():
    """Hand-made scene masks on 8x8 canvases: scene 0 has digits in slots 0 and 1, scene 1 three digits."""
    masks = np.zeros((2, 3, 8, 8), bool)
    masks[0, 0, 0:2, 0:2] = True
    masks[0, 1, 5:7, 5:7] = True
    masks[1, 0, 0:2, 0:2] = True
    masks[1, 1, 0:2, 5:7] = True
    masks[1, 2, 5:7, 0:2] = True
    return masks, np.array([2, 3])


def test_occurrence_shares_split_the_digits_relevance():
    masks, counts = _two_scenes()
    maps = masks.any(axis=1).astype(float)          # the same relevance on every digit pixel
    maps[1][masks[1, 2]] = 2.0                        # the third digit of scene 1 gets twice as much
    maps[0, 3, 3] = 100.0                             # background relevance does not count
    shares = evaluate.occurrence_shares(maps, masks, counts)
    np.testing.assert_allclose(shares[0], [0.5, 0.5])
    np.testing.assert_allclose(shares[1], [0.25, 0.25, 0.5])
    no_relevance = evaluate.occurrence_shares(np.zeros((2, 8, 8)), masks, counts)
    np.testing.assert_array_equal(no_relevance[1], [0, 0, 0])


def test_scene_scores_of_perfect_and_one_sided_maps():
    masks, counts = _two_scenes()
    scene_set = data.Scenes(np.zeros((2, 1, 8, 8), np.float32), np.zeros((2, 10), np.float32),
                            [[1, 2], [3, 3, 3]], [[], []], masks, counts, [[], []])
    sets = {"distractors": scene_set, "pairs": scene_set, "repeats": scene_set}
    on_target = masks[:, 0].astype(float)
    scores = evaluate.scene_scores(sets, {name: on_target for name in sets}, tolerance=0)
    np.testing.assert_allclose(scores["target_share"], 1)
    np.testing.assert_allclose(scores["pointing"], 1)
    np.testing.assert_allclose(scores["discriminativity"], 1)
    np.testing.assert_allclose(scores["weakest_share"], 0)          # the other occurrences got nothing
    everywhere_on_ink = masks.any(axis=1).astype(float)
    even = evaluate.scene_scores(sets, {name: everywhere_on_ink for name in sets}, tolerance=0)
    np.testing.assert_allclose(even["weakest_share"], 1)
    np.testing.assert_allclose(even["repeats_mass"], 1)


def test_the_digit_set_is_deterministic_and_takes_classes_in_turn():
    digits = evaluate.digit_set(12)
    np.testing.assert_array_equal(digits.labels, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1])
    assert digits.masks.shape == (12, 28, 28) and digits.masks.any(axis=(1, 2)).all()
    assert evaluate.digit_set(12).indices == digits.indices
