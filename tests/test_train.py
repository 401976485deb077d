"""Training on small MNIST subsets: it learns, it resumes, it records what it did."""
import numpy as np
import pytest

from minisg import models
from minisg.tools import cli
from minisg.models import training as train


def small_config(tmp_path, **overrides):
    settings = dict(out=str(tmp_path / "net.npz"), epochs=1, max_steps=150, batch_size=32, lr=1e-3,
                    train_subset=3000, eval_subset=500, progress=False, seed=0)
    settings.update(overrides)
    return train.TrainConfig(**settings)


def test_a_few_hundred_steps_reach_well_above_chance(tmp_path):
    model, meta = train.train(small_config(tmp_path, epochs=3, max_steps=200), log=lambda *_: None)
    assert meta["complete"] and meta["progress"]["step"] == 200
    assert meta["test_accuracy"] > 0.6, meta["test_accuracy"]   # chance is 0.1
    assert meta["test_images"] == 500
    reloaded = models.load(tmp_path / "net.npz")
    for (name, a), (_, b) in zip(model.named_parameters(), reloaded.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_resume_continues_from_the_saved_step(tmp_path):
    log = []
    train.train(small_config(tmp_path, epochs=1, max_steps=None, train_subset=320), log=log.append)
    first = models.read_checkpoint(tmp_path / "net.npz")[1]
    assert first["progress"]["epoch"] == 1 and first["progress"]["step"] == 10
    train.train(small_config(tmp_path, epochs=2, max_steps=None, train_subset=320, resume=True),
                log=log.append)
    second = models.read_checkpoint(tmp_path / "net.npz")[1]
    assert any("resuming from" in line and "step 10" in line for line in log)
    assert second["progress"]["epoch"] == 2 and second["progress"]["step"] == 20
    assert len(second["progress"]["val_accuracy"]) == 2

    # the resumed run equals an uninterrupted two-epoch run, bit for bit
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    train.train(small_config(fresh, epochs=2, max_steps=None, train_subset=320), log=lambda *_: None)
    a = models.read_checkpoint(tmp_path / "net.npz")[0]
    b = models.read_checkpoint(fresh / "net.npz")[0]
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_training_with_noise_records_its_level(tmp_path):
    _, meta = train.train(small_config(tmp_path, max_steps=20, noise_level=0.2), log=lambda *_: None)
    assert meta["config"]["noise_level"] == 0.2


def test_bad_settings_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match=r"noise_level \(--noise-level\): expected a finite number >= 0, got -0.1"):
        train.train(small_config(tmp_path, noise_level=-0.1))
    with pytest.raises(ValueError, match=r"batch_size \(--batch-size\): expected an int >= 1, got 0"):
        train.train(small_config(tmp_path, batch_size=0))


def test_cli_train_records_the_command(tmp_path, capsys):
    out = tmp_path / "cli.npz"
    code = cli.main(["train", "--out", str(out), "--steps", "5", "--batch-size", "16", "--train-subset", "200",
                     "--eval-subset", "100", "--no-progress"])
    assert code == 0
    meta = models.read_checkpoint(out)[1]
    assert meta["config"]["command"].startswith("minisg train --out")
    assert "test accuracy" in capsys.readouterr().out
    assert cli.main(["evaluate-model", str(tmp_path / "missing.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
