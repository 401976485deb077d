"""Training the MNIST CNN with Adam, optionally with Gaussian input noise (SmoothGrad §3.5).

One epoch = one pass over the 55,000 training images in a seeded random order. After every
epoch the model is checked on the 5,000 validation images and a checkpoint is written
atomically (with the optimizer state in the same file, so `resume=True` continues from it).
Ctrl-C stops at once and leaves the last complete checkpoint as it was. At the end the 10,000
test images give the accuracy stored in the checkpoint's meta.

Every setting is checked before any work (``TrainConfig.validate``: the error names the setting
and its flag). A loss or a weight that turns NaN or inf stops training at once with
``TrainingDiverged``, naming the step and the learning rate: no diverged checkpoint is written.

The output file (``claim_output``): checked before any work starts; an existing file is only
replaced with ``resume`` or ``overwrite``; the shipped checkpoints are never written; one
process at a time writes it (a lock held for the whole run); every write goes through
``files.atomic_write``, whose temporary file of a killed run is removed by the next run.
"""
import contextlib
import dataclasses
import math
import time
import zipfile
from pathlib import Path

import numpy as np

from .. import backend, data, files, models, parallel
from ..checks import check_choice, check_flags, check_int, check_number
from . import CheckpointError
from .checkpoints import in_shipped_models
from ..optim import Adam
from .penalties import penalised_loss

LEGACY_OPTIM_SUFFIX = ".optim.npz"   # minisg <= 0.x kept the optimizer state in X.npz.optim.npz


def default_out(task="mnist"):
    """The checkpoint a run without --out writes: a new file in the current folder."""
    return f"{'scene_cnn' if task == 'scenes' else 'mnist_cnn'}_trained.npz"


@dataclasses.dataclass
class TrainConfig:
    out: str | None = None          # None: default_out(task), in the current folder
    task: str = "mnist"             # "mnist" (digits) or "scenes" (multi-digit canvases, scenes.py)
    epochs: int = 3
    max_steps: int | None = None    # stop early after this many steps (tests, quick runs)
    batch_size: int = 50
    lr: float = 1e-4
    noise_level: float = 0.0        # input noise stdev as a fraction of each image's range
    grad_penalty_weight: float = 0.0  # weight of mean ||dS_y/dx||^2 (penalties.py, double backprop)
    smoothness_weight: float = 0.0    # weight of the neighbouring-pixel gradient differences
    seed: int = 0
    train_subset: int | None = None  # use only the first K training images (tests)
    eval_subset: int | None = None   # evaluate on the first K val/test images (tests)
    device: str = "cpu"
    resume: bool = False            # continue from the checkpoint at `out`
    overwrite: bool = False         # replace an existing `out` (otherwise it is refused)
    progress: bool = True
    command: str = ""               # the command line that produced the checkpoint (for meta)

    def validate(self):
        """Check every setting before any work (no data loaded, nothing written): TypeError or
        ValueError naming the setting, its command-line flag, what it expects and what it got."""
        check_choice(_named("task"), self.task, ("mnist", "scenes"))
        for name in ("epochs", "batch_size"):
            check_int(_named(name), getattr(self, name))
        check_int(_named("max_steps"), self.max_steps, optional="all")
        check_int(_named("seed"), self.seed, low=0)
        check_number(_named("lr"), self.lr, positive=True)
        for name in ("noise_level", "grad_penalty_weight", "smoothness_weight"):
            check_number(_named(name), getattr(self, name))
        # MNIST subsets take the first K images of a split; scenes are drawn, as many as asked
        mnist = self.task == "mnist"
        check_int(_named("train_subset"), self.train_subset, optional="all", high=data.TRAIN_SIZE - data.VAL_SIZE if mnist else None)
        check_int(_named("eval_subset"), self.eval_subset, optional="all", high=data.VAL_SIZE if mnist else None)
        check_choice(_named("device"), self.device, ("cpu", "gpu"))
        check_flags(**{_named(name): getattr(self, name) for name in ("resume", "overwrite", "progress")})
        if self.out is not None:
            files.as_path(self.out, "train: out (--out)")
        if not isinstance(self.command, str):
            raise TypeError(f"train: command: expected a string, got {self.command!r}")
        if self.resume and self.overwrite:
            raise ValueError("train: --resume and --overwrite exclude each other (continue the "
                             "checkpoint, or replace it)")


# The command-line flag of each setting whose flag is not its name with dashes (minisg train).
_FLAGS = {"max_steps": "--steps", "grad_penalty_weight": "--penalty-weight",
          "smoothness_weight": "--smoothness-penalty", "progress": "--no-progress"}


def _with_flag(name):
    """A setting and its flag: 'batch_size (--batch-size)'."""
    return f"{name} ({_FLAGS.get(name, '--' + name.replace('_', '-'))})"


def _named(name):
    """How a check's error names a setting: 'train: batch_size (--batch-size)'."""
    return f"train: {_with_flag(name)}"


class TrainingDiverged(ValueError):
    """The loss or a weight became NaN or inf: training stopped, and wrote nothing more."""


def diverged(config, step, what):
    """The TrainingDiverged error of `step`, saying what went wrong and which settings to lower."""
    settings = [f"{_with_flag(name)} {getattr(config, name)!r}" for name in
                ("noise_level", "grad_penalty_weight", "smoothness_weight") if getattr(config, name)]
    also = f" (also check {', '.join(settings)})" if settings else ""
    return TrainingDiverged(f"train: training diverged at step {step}: {what}; lr (--lr) {config.lr!r} is "
                            f"too high for it: try a lower one, e.g. 1e-3 or 1e-4{also}")


def check_loss(loss, config, step):
    """The loss as a float, or TrainingDiverged when it is NaN or inf (before backward and step)."""
    value = float(loss.item())
    if not math.isfinite(value):
        raise diverged(config, step, f"the loss is {value}")
    return value


def check_weights(model, config, step):
    """TrainingDiverged naming the parameters holding NaN or inf (before a checkpoint is written)."""
    bad = [name for name, p in model.named_parameters() if not bool(p.xp.isfinite(p.data).all())]
    if bad:
        raise diverged(config, step, f"non-finite weights (NaN or inf) in {bad}")


@contextlib.contextmanager
def claim_output(config):
    """Make config.out safe to write for the whole run, before any work starts; yields its Path.

    Sets config.out to default_out(config.task) when it is None. Refused (OutputPathError, one
    line naming --out): a path that cannot be written (a folder, under a file, read-only, not
    .npz), a path in the folder of shipped checkpoints (even with overwrite), an existing file
    without config.resume or config.overwrite. Held: `out`.lock, so a second writer gets
    files.FileBusyError. Temporary files of an earlier, killed run are removed.
    """
    if config.out is None:
        config.out = default_out(config.task)
    out = files.check_output_path(config.out, "--out", {".npz"})
    if in_shipped_models(out):
        raise files.OutputPathError(
            f"--out {out}: is in the folder of the checkpoints shipped with minisg "
            f"({files.shipped('models')}), which minisg train never writes; train to another path "
            f"(and copy the file there yourself if you mean to replace a shipped model)")
    with files.exclusive(out, "--out"):
        files.remove_stale_temps(out)
        if out.exists() and not (config.resume or config.overwrite):
            raise files.OutputPathError(
                f"--out {out}: already exists; pass --resume to continue training it, --overwrite "
                f"to replace it, or choose another --out")
        yield out


def log_interrupted(log, out, saved_epoch):
    """Say what Ctrl-C left at `out`; saved_epoch: the epoch of this training's checkpoint there,
    None if it holds none."""
    if saved_epoch is not None:
        log(f"interrupted: {out} holds the last complete epoch ({saved_epoch})")
    elif out.exists():
        log(f"interrupted before an epoch finished: {out} was left as it was")
    else:
        log(f"interrupted before the first epoch finished: nothing was written to {out}")


def with_out_status(error, out, saved_epoch):
    """`error` (TrainingDiverged) with what `out` holds added: the checkpoint of this training's
    last finished epoch (saved_epoch), the file as it was before the run, or nothing."""
    held = (f"{out} holds the checkpoint of epoch {saved_epoch}" if saved_epoch is not None else
            f"{out} was left as it was" if out.exists() else f"Nothing was written to {out}")
    return TrainingDiverged(f"{error}. {held}")


def predict(model, images, batch_size=500):
    """Class predictions for float32 images (N,1,28,28), in eval mode, without a graph."""
    return parallel.logits(model, images, batch_size).argmax(axis=1)


def accuracy(model, images, labels):
    return float((predict(model, images) == labels).mean())


def _limit(images, labels, count):
    return (images, labels) if count is None else (images[:count], labels[:count])


def _legacy_side_file(path):
    return Path(str(path) + LEGACY_OPTIM_SUFFIX)


def _save(model, optimizer, config, progress_meta, log):
    """One file, one rename: model weights + meta + the optimizer state (as ``optim.*``)."""
    meta = {"architecture": "mnist_cnn", "config": dataclasses.asdict(config), **progress_meta}
    models.save(model, config.out, meta, optimizer_state=optimizer.state_dict())
    side = _legacy_side_file(config.out)
    if side.exists():   # the old file's optimizer state; superseded by the one just written
        side.unlink()
        log(f"removed {side}: the optimizer state is now kept inside {config.out}")


def train(config, log=print):
    """Train per `config`; returns (model, meta). Writes config.out after every epoch.

    config.task == "scenes" trains the scene model instead (scenes.train_scenes).
    """
    if config.task == "scenes":
        from . import scene_cnn as scenes
        return scenes.train_scenes(config, log)
    config.validate()
    with claim_output(config) as out:
        return _train(config, out, log)


def _train(config, out, log):
    backend.set_device(config.device)
    model = models.mnist_cnn(seed=config.seed).to(config.device)
    optimizer = Adam(model.parameters(), lr=config.lr)
    state = {"epoch": 0, "step": 0, "seconds": 0.0, "val_accuracy": []}
    saved_epoch = None   # the epoch of the checkpoint at `out`, once it holds one of this training
    if config.resume and out.exists():   # before loading data: a bad checkpoint fails at once
        state = _resume(model, optimizer, config, log)
        saved_epoch = state["epoch"]
    elif config.resume:
        log(f"--resume: {out} does not exist yet; training from scratch")
    else:
        log(f"training into {out}")
    train_x, train_y = _limit(*data.load_mnist("train"), config.train_subset)
    val_x, val_y = _limit(*data.load_mnist("val"), config.eval_subset)
    test_x, test_y = _limit(*data.load_mnist("test"), config.eval_subset)   # a bad file fails now

    try:
        for epoch in range(state["epoch"], config.epochs):
            rng = np.random.default_rng([config.seed, epoch])  # one stream per epoch: resumable
            started = time.perf_counter()
            model.train()
            finished = _run_epoch(model, optimizer, config, train_x, train_y, rng, epoch, state)
            check_weights(model, config, state["step"])   # never a diverged checkpoint
            state["seconds"] += time.perf_counter() - started
            state["dropout_rng"] = model["dropout"].rng.bit_generator.state  # so resume is exact
            state["epoch"] = epoch + 1
            state["val_accuracy"].append(accuracy(model, val_x, val_y))
            log(f"epoch {epoch + 1}: validation accuracy {state['val_accuracy'][-1]:.4f}, "
                f"{state['step']} steps, {state['seconds']:.0f} s")
            _save(model, optimizer, config, {"progress": state, "complete": False}, log)
            saved_epoch = state["epoch"]
            if finished:
                break

        meta = {
            "progress": state, "complete": True,
            "test_accuracy": accuracy(model, test_x, test_y), "test_images": int(len(test_y)),
            "train_seconds": round(state["seconds"], 1),
            "images_per_second": round(state["step"] * config.batch_size / max(state["seconds"], 1e-9), 1),
        }
        _save(model, optimizer, config, meta, log)
    except KeyboardInterrupt:
        log_interrupted(log, out, saved_epoch)
        raise
    except TrainingDiverged as exc:
        raise with_out_status(exc, out, saved_epoch) from None
    log(f"test accuracy {meta['test_accuracy']:.4f} on {meta['test_images']} images; wrote {out}")
    return model.eval(), models.read_checkpoint(out)[1]


def _run_epoch(model, optimizer, config, train_x, train_y, rng, epoch, state):
    """One pass over the data; returns True when max_steps is reached."""
    from tqdm import tqdm

    xp = model.parameters()[0].xp
    steps_per_epoch = -(-len(train_x) // config.batch_size)
    bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not config.progress,
               unit="step", leave=False)
    correct = seen = 0
    # NumPy's overflow warnings would only come before check_loss's named error
    with bar, np.errstate(over="ignore", invalid="ignore"):
        for images, labels in data.batches(train_x, train_y, config.batch_size, rng):
            if config.noise_level > 0:
                images = data.add_noise(images, config.noise_level, rng)
            loss, logits, _ = penalised_loss(model, xp.asarray(images), labels,
                                             config.grad_penalty_weight, config.smoothness_weight)
            loss_value = check_loss(loss, config, state["step"] + 1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            state["step"] += 1
            correct += int((backend.to_numpy(logits.data.argmax(axis=1)) == labels).sum())
            seen += len(labels)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.3f}", acc=f"{correct / seen:.3f}")
            if config.max_steps is not None and state["step"] >= config.max_steps:
                return True
    return False


def _resume(model, optimizer, config, log):
    """Load weights, optimizer state and progress of the checkpoint at config.out.

    The optimizer state must belong to the checkpoint's step, or CheckpointError: inside the
    checkpoint (written in one rename with the weights), or, for a checkpoint of an older minisg,
    in its side file X.npz.optim.npz if that file's step is the checkpoint's step.
    """
    path = Path(config.out)
    start_over = "pass --overwrite instead of --resume to train from scratch"
    arrays, meta, optimizer_state = models.read_training_checkpoint(path)
    if models.checkpoints.architecture_of(path, meta) is not models.mnist_cnn:
        raise CheckpointError(f"--resume {path}: a {meta['architecture']} checkpoint, not one of the MNIST CNN "
                              f"(--task mnist); {start_over}")
    state = meta.get("progress")
    if not isinstance(state, dict) or not {"epoch", "step"} <= set(state):
        raise CheckpointError(f"--resume {path}: the checkpoint records no training progress (it was "
                              f"not written by minisg train); {start_over}")
    try:
        model.load_state_dict(arrays)
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"--resume {path}: {exc.args[0]}") from exc
    source = path
    if optimizer_state is None:
        optimizer_state, source = _legacy_optimizer_state(path, state["step"], start_over)
    saved_step = int(np.asarray(optimizer_state.get("steps", -1)))
    if saved_step != state["step"]:
        raise CheckpointError(f"--resume {path}: the optimizer state in {source} is from step {saved_step}, "
                              f"the weights from step {state['step']}; {start_over}")
    try:
        optimizer.load_state_dict(optimizer_state)
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"--resume {path}: the optimizer state in {source} does not fit the model "
                              f"({exc}); {start_over}") from exc
    if "dropout_rng" in state:
        try:
            model["dropout"].rng.bit_generator.state = state["dropout_rng"]
        except (TypeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"--resume {path}: meta field 'progress.dropout_rng' is not a random "
                                  f"generator's state ({exc!r}); {start_over}") from None
    state.setdefault("seconds", 0.0)
    state.setdefault("val_accuracy", [])
    log(f"resuming from {path}: epoch {state['epoch']}, step {state['step']}")
    return state


def _legacy_optimizer_state(path, step, start_over):
    """(optimizer state, side file) of a checkpoint written by an older minisg, which kept it in
    X.npz.optim.npz: usable only if written at the checkpoint's step (a run killed between the
    two writes left them apart)."""
    side = _legacy_side_file(path)
    if not side.exists():
        raise CheckpointError(f"--resume {path}: the checkpoint holds no optimizer state, so training "
                              f"cannot continue where it stopped; {start_over}")
    try:
        saved = models.load_arrays(side)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise CheckpointError(f"--resume {path}: its old-style optimizer file {side} is unreadable "
                              f"({exc}); {start_over}") from exc
    state = {key[len(models.OPTIM_PREFIX):]: value for key, value in saved.items()
             if key.startswith(models.OPTIM_PREFIX)}
    saved_step = int(np.asarray(state.get("steps", -1)))
    if saved_step != step:
        raise CheckpointError(f"--resume {path}: its old-style optimizer file {side} is from step "
                              f"{saved_step}, the checkpoint from step {step} (a run was stopped between "
                              f"writing the two); {start_over}")
    return state, side

