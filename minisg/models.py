"""The SmoothGrad paper's MNIST CNN, and checkpoints: save (atomic) and load (validated).

A checkpoint is an ``.npz`` of float32 arrays in PyTorch layout (conv weight (out, in, kh, kw),
linear weight (out, in), flatten order (C, H, W)) named like ``conv1.weight``, plus ``meta``:
a JSON string with the architecture, training config, seed, test accuracy and minisg version.
"""
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from . import __version__, nn

MODELS_DIR = Path(__file__).resolve().parent.parent / "data" / "models"
SHIPPED = ("mnist_cnn", "mnist_cnn_noise", "mnist_cnn_gradpen", "mnist_cnn_smoothpen")


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, or does not fit the model."""


def mnist_cnn(seed=0, dtype=np.float32, dropout=0.5):
    """"Deep MNIST for Experts" (METHODS.md §1): 28x28x1 -> 10 logits, relu2 is 14x14x64.

    Weights ~ truncated normal (std 0.1, redrawn beyond 2 std), biases 0.1, as the tutorial.
    """
    rng = np.random.default_rng(seed)
    init = ("truncated_normal", 0.1)
    common = dict(init=init, bias_init=0.1, rng=rng, dtype=dtype)
    return nn.Sequential(
        ("conv1", nn.Conv2d(1, 32, 5, padding=2, **common)),
        ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(32, 64, 5, padding=2, **common)),
        ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(7 * 7 * 64, 1024, **common)),
        ("relu3", nn.ReLU()),
        ("dropout", nn.Dropout(dropout, seed=seed + 1)),
        ("fc2", nn.Linear(1024, 10, **common)),
    )


ARCHITECTURES = {"mnist_cnn": mnist_cnn}


def register_architecture(name, builder):
    """Let load() rebuild other models (e.g. the scene model) from the name in their meta."""
    ARCHITECTURES[name] = builder


def save_arrays(path, arrays):
    """Write a dict of arrays to an .npz atomically: a temp file beside it, then a rename.

    A crash mid-write leaves any earlier file at `path` intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as temp_file:
            np.savez(temp_file, **arrays)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        os.chmod(temp_name, 0o644)  # mkstemp makes files private; a checkpoint is for sharing
        os.replace(temp_name, path)
    except BaseException:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
        raise
    return path


def load_arrays(path):
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def save(model, path, meta=None):
    """Write the model's float32 weights and `meta` (a JSON-able dict) to `path` atomically."""
    meta = dict(meta or {})
    meta.setdefault("minisg_version", __version__)
    arrays = {name: value.astype(np.float32) for name, value in model.state_dict().items()}
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    return save_arrays(path, arrays)


def resolve(name_or_path):
    """A shipped model's name ('mnist_cnn', ...) or a path -> the checkpoint's Path."""
    text = str(name_or_path)
    if text in SHIPPED or (not text.endswith(".npz") and (MODELS_DIR / f"{text}.npz").exists()):
        return MODELS_DIR / f"{text}.npz"
    return Path(text)


def read_checkpoint(name_or_path):
    """(arrays dict, meta dict) from a checkpoint, or CheckpointError naming the file and problem."""
    path = resolve(name_or_path)
    if not path.exists():
        known = ", ".join(SHIPPED)
        raise CheckpointError(f"checkpoint {path} does not exist (shipped models: {known}; "
                              f"train one with `minisg train --out PATH`)")
    try:
        arrays = load_arrays(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise CheckpointError(f"checkpoint {path} is truncated or not an .npz file ({exc}); "
                              f"re-train or copy it again") from exc
    if "meta" not in arrays:
        raise CheckpointError(f"checkpoint {path} has no 'meta' entry")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"checkpoint {path}: 'meta' is not valid JSON ({exc})") from exc
    return arrays, meta


def load(name_or_path, dtype=np.float32, device=None):
    """Rebuild a model from a checkpoint (architecture from meta), in eval mode.

    Every parameter key and shape is checked; the error names the file and the key.
    """
    arrays, meta = read_checkpoint(name_or_path)
    path = resolve(name_or_path)
    architecture = meta.get("architecture", "mnist_cnn")
    if architecture not in ARCHITECTURES:
        from . import scenes  # noqa: F401  (registers the scene model's architecture)
    if architecture not in ARCHITECTURES:
        raise CheckpointError(f"checkpoint {path}: unknown architecture {architecture!r}; "
                              f"known: {sorted(ARCHITECTURES)}")
    model = ARCHITECTURES[architecture](**meta.get("architecture_args", {}), dtype=dtype)
    try:
        model.load_state_dict(arrays)
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path}: {exc.args[0]}") from exc
    model.meta = meta
    if device is not None:
        model.to(device)
    return model.eval()
