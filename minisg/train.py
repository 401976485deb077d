"""Training the MNIST CNN with Adam, optionally with Gaussian input noise (SmoothGrad §3.5).

One epoch = one pass over the 55,000 training images in a seeded random order. After every
epoch the model is checked on the 5,000 validation images and a checkpoint is written
atomically (with the optimizer state, so `resume=True` continues from it). Ctrl-C stops at
once and leaves the last complete checkpoint as it was. At the end the 10,000 test images
give the accuracy stored in the checkpoint's meta.
"""
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from . import backend, data, models
from . import functional as F
from .autograd import Tensor, no_grad
from .optim import Adam
from .penalties import penalised_loss


@dataclasses.dataclass
class TrainConfig:
    out: str = "data/models/mnist_cnn.npz"
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
    resume: bool = False
    progress: bool = True
    command: str = ""               # the command line that produced the checkpoint (for meta)

    def validate(self):
        checks = [("task", self.task in ("mnist", "scenes")), ("epochs", self.epochs >= 1), ("batch_size", self.batch_size >= 1),
                  ("lr", self.lr > 0), ("noise_level", self.noise_level >= 0),
                  ("grad_penalty_weight", self.grad_penalty_weight >= 0),
                  ("smoothness_weight", self.smoothness_weight >= 0),
                  ("max_steps", self.max_steps is None or self.max_steps >= 1)]
        for name, ok in checks:
            if not ok:
                raise ValueError(f"train: {name} is {getattr(self, name)!r}, which is out of range")


def predict(model, images, batch_size=500):
    """Class predictions for float32 images (N,1,28,28), in eval mode, without a graph."""
    model.eval()
    xp = model.parameters()[0].xp
    predictions = []
    with no_grad():
        for start in range(0, len(images), batch_size):
            logits = model(Tensor(xp.asarray(images[start:start + batch_size])))
            predictions.append(backend.to_numpy(logits.data.argmax(axis=1)))
    return np.concatenate(predictions)


def accuracy(model, images, labels):
    return float((predict(model, images) == labels).mean())


def _limit(images, labels, count):
    return (images, labels) if count is None else (images[:count], labels[:count])


def _optimizer_arrays(optimizer):
    return {f"optim.{k}": np.asarray(v) for k, v in optimizer.state_dict().items()}


def _save(model, optimizer, config, path, progress_meta):
    """Checkpoint = model weights + meta; the optimizer state goes into a side file `.optim.npz`."""
    meta = {"architecture": "mnist_cnn", "config": dataclasses.asdict(config), **progress_meta}
    models.save(model, path, meta)
    optim_path = Path(str(path) + ".optim.npz")
    models.save_arrays(optim_path, _optimizer_arrays(optimizer))


def train(config, log=print):
    """Train per `config`; returns (model, meta). Writes config.out after every epoch."""
    config.validate()
    backend.set_device(config.device)
    train_x, train_y = _limit(*data.load_mnist("train"), config.train_subset)
    val_x, val_y = _limit(*data.load_mnist("val"), config.eval_subset)
    model = models.mnist_cnn(seed=config.seed).to(config.device)
    optimizer = Adam(model.parameters(), lr=config.lr)
    state = {"epoch": 0, "step": 0, "seconds": 0.0, "val_accuracy": []}
    if config.resume and Path(config.out).exists():
        state = _resume(model, optimizer, config, log)

    try:
        for epoch in range(state["epoch"], config.epochs):
            rng = np.random.default_rng([config.seed, epoch])  # one stream per epoch: resumable
            started = time.perf_counter()
            model.train()
            finished = _run_epoch(model, optimizer, config, train_x, train_y, rng, epoch, state)
            state["seconds"] += time.perf_counter() - started
            state["dropout_rng"] = model["dropout"].rng.bit_generator.state  # so resume is exact
            state["epoch"] = epoch + 1
            state["val_accuracy"].append(accuracy(model, val_x, val_y))
            log(f"epoch {epoch + 1}: validation accuracy {state['val_accuracy'][-1]:.4f}, "
                f"{state['step']} steps, {state['seconds']:.0f} s")
            _save(model, optimizer, config, config.out, {"progress": state, "complete": False})
            if finished:
                break
    except KeyboardInterrupt:
        log(f"interrupted: {config.out} holds the last complete epoch ({state['epoch']})")
        raise

    test_x, test_y = _limit(*data.load_mnist("test"), config.eval_subset)
    meta = {
        "progress": state, "complete": True,
        "test_accuracy": accuracy(model, test_x, test_y), "test_images": int(len(test_y)),
        "train_seconds": round(state["seconds"], 1),
        "images_per_second": round(state["step"] * config.batch_size / max(state["seconds"], 1e-9), 1),
    }
    _save(model, optimizer, config, config.out, meta)
    log(f"test accuracy {meta['test_accuracy']:.4f} on {meta['test_images']} images; wrote {config.out}")
    return model.eval(), models.read_checkpoint(config.out)[1]


def _run_epoch(model, optimizer, config, train_x, train_y, rng, epoch, state):
    """One pass over the data; returns True when max_steps is reached."""
    from tqdm import tqdm

    xp = model.parameters()[0].xp
    steps_per_epoch = -(-len(train_x) // config.batch_size)
    bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not config.progress,
               unit="step", leave=False)
    correct = seen = 0
    for images, labels in data.batches(train_x, train_y, config.batch_size, rng):
        if config.noise_level > 0:
            images = data.add_noise(images, config.noise_level, rng)
        loss, logits, _ = penalised_loss(model, xp.asarray(images), labels,
                                         config.grad_penalty_weight, config.smoothness_weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        state["step"] += 1
        correct += int((backend.to_numpy(logits.data.argmax(axis=1)) == labels).sum())
        seen += len(labels)
        bar.update(1)
        bar.set_postfix(loss=f"{float(loss.item()):.3f}", acc=f"{correct / seen:.3f}")
        if config.max_steps is not None and state["step"] >= config.max_steps:
            bar.close()
            return True
    bar.close()
    return False


def _resume(model, optimizer, config, log):
    arrays, meta = models.read_checkpoint(config.out)
    model.load_state_dict(arrays)
    optim_path = Path(str(config.out) + ".optim.npz")
    if optim_path.exists():
        saved = models.load_arrays(optim_path)
        optimizer.load_state_dict({k[len("optim."):]: v for k, v in saved.items()})
    state = meta.get("progress", {"epoch": 0, "step": 0, "seconds": 0.0, "val_accuracy": []})
    if "dropout_rng" in state:
        model["dropout"].rng.bit_generator.state = state["dropout_rng"]
    log(f"resuming from {config.out}: epoch {state['epoch']}, step {state['step']}")
    return state


def describe(meta):
    return json.dumps(meta, indent=2, sort_keys=True)
