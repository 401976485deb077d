"""minisg train never loses or silently replaces a file: output checks, locks, one-file checkpoints.

Each test trains a few steps at most (tiny subsets); the refusals are checked with a spy on
data.load_mnist, so that a refused run provably did no work.
"""
import hashlib
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from minisg import data, files, models
from minisg.tools import cli
from minisg.models import training as train
from minisg.optim import Adam

TINY = ["--steps", "2", "--batch-size", "16", "--train-subset", "64", "--eval-subset", "50", "--no-progress"]


def tiny_config(out, **overrides):
    settings = dict(out=str(out), epochs=1, max_steps=2, batch_size=16, lr=1e-3, train_subset=64,
                    eval_subset=50, progress=False, seed=0)
    settings.update(overrides)
    return train.TrainConfig(**settings)


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if training starts (it loads MNIST first)."""
    def spy(*args, **kwargs):
        raise AssertionError("training started although the run should have been refused")
    monkeypatch.setattr(data, "load_mnist", spy)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def temps_of(path):
    return sorted(path.parent.glob(f".{path.name}.*{files.TEMP_SUFFIX}"))


# ---------------------------------------------------------------------------- the default --out

def test_default_out_is_a_new_file_in_the_current_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    shipped = files.shipped("models", "mnist_cnn.npz")
    before = digest(shipped) if shipped.exists() else None
    assert cli.main(["train", *TINY]) == 0
    assert (tmp_path / "mnist_cnn_trained.npz").is_file()
    assert models.load(tmp_path / "mnist_cnn_trained.npz").meta["complete"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist_cnn_trained.npz"]  # no lock, temp, side file
    if before is not None:
        assert digest(shipped) == before
    assert train.default_out("scenes") == "scene_cnn_trained.npz"
    assert train.TrainConfig().out is None

    # a second run without --out finds the default taken: refused like any other existing --out
    capsys.readouterr()
    written = digest(tmp_path / "mnist_cnn_trained.npz")
    assert cli.main(["train", *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert "--out mnist_cnn_trained.npz: already exists" in err and len(err.splitlines()) == 1
    assert digest(tmp_path / "mnist_cnn_trained.npz") == written


@pytest.mark.parametrize("name", ["mnist_cnn", "scene_cnn"])
def test_a_shipped_checkpoint_is_never_written_even_with_overwrite(name, no_training, capsys):
    shipped = files.shipped("models", f"{name}.npz")
    if not shipped.exists():
        pytest.skip(f"{shipped} not present")
    before = digest(shipped)
    task = "scenes" if name == "scene_cnn" else "mnist"
    for extra in ([], ["--overwrite"], ["--resume"] if task == "mnist" else []):
        assert cli.main(["train", "--task", task, "--out", str(shipped), *extra, *TINY]) == 2
        err = capsys.readouterr().err
        assert "--out" in err and "shipped" in err
    # through another spelling of the same path, too
    other = shipped.parent / ".." / shipped.parent.name / shipped.name
    with pytest.raises(files.OutputPathError, match="shipped"):
        train.train(tiny_config(other, overwrite=True, task=task))
    assert digest(shipped) == before
    assert not (shipped.parent / f"{shipped.name}.lock").exists()


# ---------------------------------------------------------------------------- an existing --out

def test_an_existing_out_is_refused_without_resume_or_overwrite(tmp_path, no_training, capsys):
    out = tmp_path / "precious.npz"
    out.write_bytes(b"not mine to replace")
    with pytest.raises(files.OutputPathError, match=r"--out .*precious.npz: already exists; pass --resume"):
        train.train(tiny_config(out))
    assert cli.main(["train", "--out", str(out), *TINY]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    with pytest.raises(files.OutputPathError, match="already exists"):
        train.train(tiny_config(out, task="scenes"))
    assert out.read_bytes() == b"not mine to replace"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.npz"]


def test_overwrite_replaces_an_existing_out(tmp_path, capsys):
    out = tmp_path / "old.npz"
    out.write_bytes(b"an old file")
    assert cli.main(["train", "--out", str(out), "--overwrite", *TINY]) == 0
    meta = models.read_checkpoint(out)[1]
    assert meta["complete"] and meta["progress"]["step"] == 2 and meta["config"]["overwrite"] is True
    with pytest.raises(SystemExit) as exit_:   # one or the other, said by the argument parser
        cli.main(["train", "--out", str(out), "--overwrite", "--resume", *TINY])
    assert exit_.value.code == 2 and "not allowed with" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--resume and --overwrite exclude each other"):
        train.train(tiny_config(out, overwrite=True, resume=True))


# ---------------------------------------------------------------------------- unwritable --out

@pytest.mark.parametrize("case", ["folder", "under_a_file", "not_npz", "read_only"])
def test_an_unwritable_out_is_refused_before_any_training(tmp_path, case, no_training, capsys):
    if case == "folder":
        out, message = tmp_path / "adir.npz", "is a folder"
        out.mkdir()
    elif case == "under_a_file":
        (tmp_path / "afile").write_text("x")
        out, message = tmp_path / "afile" / "sub" / "net.npz", "is a file, not a folder"
    elif case == "not_npz":
        out, message = tmp_path / "net.pt", "cannot write a .pt file"
    else:
        if os.geteuid() == 0:
            pytest.skip("root may write anywhere")
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        out, message = locked / "net.npz", "no permission"
    try:
        with pytest.raises(files.OutputPathError, match=message):
            train.train(tiny_config(out))
        assert cli.main(["train", "--out", str(out), *TINY]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"minisg train: error: --out {out}") and err.count("\n") == 1
    finally:
        if case == "read_only":
            locked.chmod(0o755)


# ---------------------------------------------------------------------------- one writer per path

def test_a_second_writer_of_the_same_out_is_refused(tmp_path, no_training, capsys):
    out = tmp_path / "net.npz"
    with files.exclusive(out, "--out"):   # as another minisg train process holds it
        with pytest.raises(files.FileBusyError, match="--out .*net.npz: another minisg process"):
            train.train(tiny_config(out))
        with pytest.raises(files.FileBusyError):
            train.train(tiny_config(out, task="scenes"))
        assert cli.main(["train", "--out", str(out), *TINY]) == 2
        assert "another minisg process" in capsys.readouterr().err
    assert not out.exists()


# ---------------------------------------------------------------------------- one-file checkpoints

def test_weights_and_optimizer_state_are_one_file(tmp_path):
    out = tmp_path / "net.npz"
    train.train(tiny_config(out), log=lambda *_: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.npz"]   # no .optim.npz side file
    weights, meta, optimizer_state = models.read_training_checkpoint(out)
    assert int(optimizer_state["steps"]) == meta["progress"]["step"] == 2
    assert optimizer_state["m.0"].shape == weights["conv1.weight"].shape
    assert not any(key.startswith("optim.") for key in models.read_checkpoint(out)[0])
    models.load(out)   # a training checkpoint stays a loadable model


def _checkpoint_at_step(path, step, optimizer_state=True):
    """A training checkpoint of an untrained model, as if written after `step` steps (no training)."""
    model = models.mnist_cnn(seed=0)
    optimizer = Adam(model.parameters())
    optimizer.steps = step
    config = tiny_config(path, epochs=1)
    meta = {"architecture": "mnist_cnn", "config": {**config.__dict__},
            "progress": {"epoch": 1, "step": step, "seconds": 0.0, "val_accuracy": [0.1]}, "complete": False}
    models.save(model, path, meta, optimizer_state=optimizer.state_dict() if optimizer_state else None)
    return optimizer.state_dict()


def test_resume_without_optimizer_state_is_a_named_error(tmp_path, no_training):
    out = tmp_path / "net.npz"
    _checkpoint_at_step(out, 2, optimizer_state=False)
    with pytest.raises(models.CheckpointError, match=r"net.npz: the checkpoint holds no optimizer state.*--overwrite"):
        train.train(tiny_config(out, resume=True))
    plain = tmp_path / "plain.npz"
    models.save(models.mnist_cnn(), plain, {"architecture": "mnist_cnn"})
    with pytest.raises(models.CheckpointError, match="records no training progress"):
        train.train(tiny_config(plain, resume=True))


def test_an_old_style_side_file_of_another_step_is_refused(tmp_path, no_training):
    out = tmp_path / "net.npz"
    state = _checkpoint_at_step(out, 4, optimizer_state=False)
    side = tmp_path / "net.npz.optim.npz"
    # an older minisg was killed while writing the side file: it still holds step 2
    models.save_arrays(side, {f"optim.{k}": v for k, v in {**state, "steps": np.asarray(2)}.items()})
    before = digest(out), digest(side)
    with pytest.raises(models.CheckpointError,
                       match=r"old-style optimizer file .*net.npz.optim.npz is from step 2, the checkpoint from step 4"):
        train.train(tiny_config(out, resume=True, epochs=2))
    assert (digest(out), digest(side)) == before


def test_an_old_style_side_file_of_the_same_step_is_resumed_and_then_retired(tmp_path):
    out = tmp_path / "net.npz"
    state = _checkpoint_at_step(out, 4, optimizer_state=False)
    side = tmp_path / "net.npz.optim.npz"
    models.save_arrays(side, {f"optim.{k}": v for k, v in state.items()})
    log = []
    train.train(tiny_config(out, resume=True, epochs=1), log=log.append)   # epoch 1 is done: test, save
    assert any("resuming from" in line and "step 4" in line for line in log)
    assert not side.exists()
    assert int(models.read_training_checkpoint(out)[2]["steps"]) == 4


# ---------------------------------------------------------------------------- SIGKILL

KILLED_RUN = r"""
import sys, time
import numpy as np
from minisg.models import training as train

out, marker = sys.argv[1], sys.argv[2]
real_savez, saves = np.savez, []

def savez_then_hang(file, **arrays):   # the second checkpoint: written to its temp file, then stuck
    real_savez(file, **arrays)
    saves.append(1)
    if len(saves) == 2:
        open(marker, "w").close()
        time.sleep(600)

np.savez = savez_then_hang
train.train(train.TrainConfig(out=out, epochs=3, batch_size=32, lr=1e-3, train_subset=64, eval_subset=50,
                              progress=False, seed=0), log=lambda *_: None)
"""


def test_a_run_killed_while_writing_leaves_the_last_checkpoint_whole(tmp_path):
    out, marker = tmp_path / "net.npz", tmp_path / "writing"
    child = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(out), str(marker)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            if child.poll() is not None:
                pytest.fail(f"the training process ended early: {child.stderr.read().decode()[-2000:]}")
            assert time.monotonic() < deadline, "the training process never reached its second checkpoint"
            time.sleep(0.05)
        assert len(temps_of(out)) == 1   # the second checkpoint, complete in its temp file
        child.kill()                     # SIGKILL: no cleanup code runs
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)

    # the checkpoint of epoch 1 is whole, and its optimizer state is of the same step
    weights, meta, optimizer_state = models.read_training_checkpoint(out)
    assert meta["progress"]["epoch"] == 1 and meta["progress"]["step"] == 2
    assert int(optimizer_state["steps"]) == 2
    models.load(out)
    assert len(temps_of(out)) == 1       # the killed run's temp file is still there...

    log = []
    train.train(train.TrainConfig(out=str(out), epochs=2, batch_size=32, lr=1e-3, train_subset=64,
                                  eval_subset=50, progress=False, seed=0, resume=True), log=log.append)
    assert temps_of(out) == []           # ...until the next run on the same --out
    assert any("resuming from" in line and "step 2" in line for line in log)
    assert models.read_checkpoint(out)[1]["progress"]["step"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.npz", "writing"]   # no lock file left


# ---------------------------------------------------------------------------- Ctrl-C

def _interrupt_on_save(monkeypatch, number):
    """Ctrl-C arrives while the `number`th checkpoint is half written."""
    real_savez, saves = np.savez, []

    def savez(file, **arrays):
        saves.append(1)
        if len(saves) == number:
            file.write(b"half a checkpoint")
            raise KeyboardInterrupt
        real_savez(file, **arrays)

    monkeypatch.setattr(np, "savez", savez)


def test_ctrl_c_keeps_the_last_finished_epoch_and_leaves_no_temp_or_lock(tmp_path, monkeypatch, capsys):
    out = tmp_path / "net.npz"
    _interrupt_on_save(monkeypatch, 2)
    log = []
    with pytest.raises(KeyboardInterrupt):
        train.train(tiny_config(out, epochs=3, max_steps=None, batch_size=32), log=log.append)
    assert log[-1] == f"interrupted: {out} holds the last complete epoch (1)"
    weights, meta, optimizer_state = models.read_training_checkpoint(out)
    assert meta["progress"]["step"] == int(optimizer_state["steps"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.npz"]

    # the command line: the interrupt reaches main(), which exits 130 with one line
    fresh = tmp_path / "cli.npz"
    _interrupt_on_save(monkeypatch, 1)
    assert cli.main(["train", "--out", str(fresh), *TINY]) == 130
    assert "nothing was written" in capsys.readouterr().out
    assert not fresh.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["net.npz"]
