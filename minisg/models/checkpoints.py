"""Checkpoints: save (atomic) and load (validated), and the registry of architectures.

A checkpoint is an ``.npz`` of float32 arrays in PyTorch layout (conv weight (out, in, kh, kw),
linear weight (out, in), flatten order (C, H, W)) named like ``conv1.weight``, plus ``meta``:
a JSON string with the architecture, training config, seed, test accuracy and minisg version.

A checkpoint written by ``minisg train`` also holds the optimizer state, as arrays named
``optim.<key>`` in the same file (one file, one rename: weights and optimizer state always belong
to the same step). ``load`` and ``read_checkpoint`` ignore them; ``read_training_checkpoint``
returns them for ``--resume``.
"""
import json
import zipfile
from pathlib import Path

import numpy as np

from .. import __version__, files
from .paper_cnn import mnist_cnn

MODELS_DIR = files.shipped("models")  # in the installed package, or data/models in a checkout
SHIPPED = ("mnist_cnn", "mnist_cnn_noise", "mnist_cnn_gradpen", "mnist_cnn_smoothpen")


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, or does not fit the model."""


ARCHITECTURES = {"mnist_cnn": mnist_cnn}


def register_architecture(name, builder):
    """Let load() rebuild other models (e.g. the scene model) from the name in their meta."""
    ARCHITECTURES[name] = builder


OPTIM_PREFIX = "optim."   # arrays of the optimizer state inside a training checkpoint


def save_arrays(path, arrays):
    """Write a dict of arrays to an .npz atomically (files.atomic_write: a temp file beside it,
    then one rename).

    A crash mid-write leaves any earlier file at `path` intact; the temp file of a killed run is
    removed by the next write to `path`.
    """
    path = Path(path)
    with files.atomic_write(path) as handle:
        np.savez(handle, **arrays)
    return path


def load_arrays(path):
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def save(model, path, meta=None, optimizer_state=None):
    """Write the model's float32 weights and `meta` (a JSON-able dict) to `path` atomically.

    optimizer_state: a dict of arrays (Optimizer.state_dict()) stored in the same file as
    ``optim.<key>``, so that weights and optimizer state are replaced together or not at all.
    """
    meta = dict(meta or {})
    meta.setdefault("minisg_version", __version__)
    arrays = {name: value.astype(np.float32) for name, value in model.state_dict().items()}
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    for key, value in (optimizer_state or {}).items():
        arrays[OPTIM_PREFIX + key] = np.asarray(value)
    return save_arrays(path, arrays)


def resolve(name_or_path):
    """A shipped model's name ('mnist_cnn', ...) or a path -> the checkpoint's Path."""
    text = str(name_or_path)
    if text in SHIPPED or (not text.endswith(".npz") and (MODELS_DIR / f"{text}.npz").exists()):
        return MODELS_DIR / f"{text}.npz"
    return Path(text)


def read_checkpoint(name_or_path):
    """(arrays dict, meta dict) from a checkpoint, or CheckpointError naming the file and problem.

    The arrays are the model's weights only: a training checkpoint's optimizer state is left out.
    """
    arrays, meta, _ = read_training_checkpoint(name_or_path)
    return arrays, meta


def read_training_checkpoint(name_or_path):
    """(weights, meta, optimizer state) of a checkpoint; the optimizer state is a dict without
    the ``optim.`` prefix, or None when the checkpoint has none (e.g. written by ``save`` alone)."""
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
    optimizer_state = {key[len(OPTIM_PREFIX):]: arrays.pop(key) for key in list(arrays)
                       if key.startswith(OPTIM_PREFIX)}
    return arrays, meta, optimizer_state or None


def load(name_or_path, dtype=np.float32, device=None):
    """Rebuild a model from a checkpoint (architecture from meta), in eval mode.

    Every parameter key and shape is checked; the error names the file and the key.
    """
    arrays, meta = read_checkpoint(name_or_path)
    path = resolve(name_or_path)
    architecture = meta.get("architecture", "mnist_cnn")
    if architecture not in ARCHITECTURES:
        from . import scene_cnn  # noqa: F401  (registers the scene model's architecture)
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
