"""The scene model: shapes, the BCE loss and its gradient, AP, training, checkpoints."""
import sys

import numpy as np
import pytest

import minisg
from minisg import Tensor, gradcheck, models
from minisg.models import scene_cnn as scenes
from minisg.models.training import TrainConfig


def test_scene_cnn_maps_a_canvas_to_ten_logits_through_named_layers():
    model = scenes.scene_cnn(seed=0)
    assert model.layer_names == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2",
                                 "conv3", "relu3", "conv4", "gap"]
    x = Tensor(np.random.default_rng(0).random((3, 1, scenes.CANVAS, scenes.CANVAS), dtype=np.float32))
    assert model(x).shape == (3, 10)
    body, head = model.split(scenes.CAM_LAYER)
    features = body(x)
    assert features.shape == (3, 64, 14, 14)
    np.testing.assert_allclose(head(features).data, model(x).data, rtol=1e-6)


def test_the_untrained_model_predicts_the_class_prior():
    """Black canvas: every feature is 0, so each logit is conv4's bias, log(p / (1 - p))."""
    logits = scenes.scene_cnn()(Tensor(np.zeros((1, 1, 56, 56), np.float32))).data
    np.testing.assert_allclose(logits, scenes.CLASS_PRIOR_LOGIT, rtol=1e-6)
    p = 1 / (1 + np.exp(-scenes.CLASS_PRIOR_LOGIT))
    assert abs(p - (1 - np.mean([0.9 ** k for k in (1, 2, 3, 4)]))) < 1e-9


def test_bce_with_logits_matches_the_textbook_formula_and_never_overflows():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 3, size=(4, 10))
    y = (rng.random((4, 10)) > 0.7).astype(np.float64)
    p = 1 / (1 + np.exp(-z))
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    np.testing.assert_allclose(scenes.bce_with_logits(Tensor(z), y).item(), expected, rtol=1e-12)
    huge = Tensor(np.array([[1000.0, -1000.0]]))
    loss = scenes.bce_with_logits(huge, np.array([[0.0, 1.0]]))
    assert np.isclose(loss.item(), 1000.0)                      # (1000 + 1000) / 2, no inf or nan
    with pytest.raises(ValueError, match="shape"):
        scenes.bce_with_logits(Tensor(z), y[:, :3])


def test_bce_gradient_passes_gradcheck_in_float64():
    rng = np.random.default_rng(2)
    z = rng.normal(0, 2, size=(3, 10))
    y = (rng.random((3, 10)) > 0.5).astype(np.float64)
    assert gradcheck(lambda logits: scenes.bce_with_logits(logits, y), [z])
    # The gradient is (sigmoid(z) - y) / (N K): the textbook result.
    logits = Tensor(z, requires_grad=True)
    scenes.bce_with_logits(logits, y).backward()
    np.testing.assert_allclose(logits.grad.data, (1 / (1 + np.exp(-z)) - y) / z.size, rtol=1e-10)


def test_average_precision_on_hand_worked_rankings():
    assert scenes.average_precision([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    # Positives at ranks 2 and 3: precisions 1/2 and 2/3.
    assert np.isclose(scenes.average_precision([0.9, 0.8, 0.7], [False, True, True]), (1 / 2 + 2 / 3) / 2)
    # A tie between a positive and a negative counts pessimistically: precision 1/2.
    assert np.isclose(scenes.average_precision([0.5, 0.5], [True, False]), 0.5)
    assert np.isnan(scenes.average_precision([0.1, 0.2], [False, False]))


def test_multilabel_metrics():
    logits = np.array([[3.0, -2.0], [-1.0, 2.0], [1.0, 1.0]])
    labels = np.array([[1, 0], [0, 1], [1, 0]])
    result = scenes.multilabel_metrics(logits, labels)
    assert result["exact_match"] == pytest.approx(2 / 3)
    assert result["label_accuracy"] == pytest.approx(5 / 6)
    # class 0: positives scored 3 and 1 rank 1st and 2nd -> AP 1; class 1: positive 2.0 first -> AP 1
    assert result["mAP"] == pytest.approx(1.0)


def test_a_short_training_run_beats_chance_and_its_checkpoint_round_trips(tmp_path):
    out = tmp_path / "scene.npz"
    config = TrainConfig(task="scenes", out=str(out), epochs=2, max_steps=60, batch_size=32, lr=3e-3,
                         train_subset=1600, eval_subset=200, progress=False, command="pytest")
    model, meta = scenes.train_scenes(config, log=lambda *_: None)
    chance = scenes.evaluation_scenes("test", config).labels.mean()   # AP of a random ranking
    assert meta["test_mAP"] > chance + 0.1
    assert meta["architecture"] == "scene_cnn" and meta["complete"]
    assert meta["config"]["command"] == "pytest" and meta["progress"]["step"] == 60
    loaded = models.load(out)
    x = scenes.evaluation_scenes("test", config).images[:4]
    np.testing.assert_allclose(scenes.scene_logits(loaded, x), scenes.scene_logits(model, x), rtol=1e-5, atol=1e-6)


def test_load_finds_the_scene_architecture_by_importing_its_module(tmp_path, monkeypatch):
    path = tmp_path / "untrained.npz"
    models.save(scenes.scene_cnn(seed=3), path, {"architecture": "scene_cnn"})
    monkeypatch.delitem(models.ARCHITECTURES, "scene_cnn")
    monkeypatch.delitem(sys.modules, "minisg.models.scene_cnn")      # load() must import it again
    monkeypatch.delattr(minisg.models, "scene_cnn")
    model = models.load(path)
    assert model.layer_names[-1] == "gap"
    assert "scene_cnn" in models.ARCHITECTURES


def test_the_shipped_scene_model_names_the_digits_of_test_scenes():
    model = models.load("scene_cnn")
    assert model.meta["architecture"] == "scene_cnn" and model.meta["complete"]
    assert model.meta["test_mAP"] >= 0.95
    assert "minisg train --task scenes" in model.meta["config"]["command"]
    fresh = scenes.data.make_scenes(100, split="test", canvas=scenes.CANVAS, seed=7)
    assert scenes.evaluate_scenes(model, fresh)["mAP"] > 0.9


def test_resume_is_refused_for_scenes(tmp_path):
    config = TrainConfig(task="scenes", out=str(tmp_path / "x.npz"), resume=True, progress=False)
    with pytest.raises(ValueError, match="resume"):
        scenes.train_scenes(config)
