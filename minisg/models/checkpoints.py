"""Checkpoints: save (atomic) and load (validated), and the registry of architectures.

A checkpoint is an ``.npz`` of float32 arrays in PyTorch layout (conv weight (out, in, kh, kw),
linear weight (out, in), flatten order (C, H, W)) named like ``conv1.weight``, plus ``meta``:
a JSON string with the architecture, training config, seed, test accuracy, minisg version and
the model's input shape and range (``input_shape``, ``input_range``; older checkpoints get them
from their architecture).

A checkpoint written by ``minisg train`` also holds the optimizer state, as arrays named
``optim.<key>`` in the same file (one file, one rename: weights and optimizer state always belong
to the same step). ``load`` and ``read_checkpoint`` ignore them; ``read_training_checkpoint``
returns them for ``--resume``.

Reading checks everything before a model is built: that the file is an .npz zip archive, that
every array is finite, and every known meta field (``META_FIELDS``): a bad checkpoint fails at
load, naming the file and the field or tensor, never later in the middle of a run.
"""
import inspect
import json
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .. import __version__, backend, files
from ..checks import check_float_dtype
from .checkpoint_meta import check_meta, shape_and_range
from .paper_cnn import mnist_cnn

MODELS_DIR = files.shipped("models")  # in the installed package, or data/models in a checkout
SHIPPED = ("mnist_cnn", "mnist_cnn_noise", "mnist_cnn_gradpen", "mnist_cnn_smoothpen")
ZIP_STARTS = (b"PK\x03\x04", b"PK\x05\x06")   # a zip archive's first bytes (the second: an empty one)


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, malformed, or does not fit the model."""


ARCHITECTURES = {"mnist_cnn": mnist_cnn}


def register_architecture(name, builder):
    """Let load() rebuild other models (e.g. the scene model) from the name in their meta."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"name: expected an architecture name (a non-empty str), got {name!r}")
    if not callable(builder):
        raise TypeError(f"builder: expected a function that builds the model (builder(dtype=...)), got {builder!r}")
    ARCHITECTURES[name] = builder


def known_architectures():
    from . import scene_cnn  # noqa: F401  (registers the scene model's architecture)
    return sorted(ARCHITECTURES)


OPTIM_PREFIX = "optim."   # arrays of the optimizer state inside a training checkpoint


def check_load_options(dtype, device):
    """(dtype as np.dtype, device) of a load, checked before any file is read: float32 or float64;
    None, 'cpu' or 'gpu' (a GPU that is not there is named here, not after the load)."""
    resolved = check_float_dtype("dtype", dtype)
    if device is not None:
        if device not in ("cpu", "gpu"):
            raise backend.DeviceError(f"device: expected None, 'cpu' or 'gpu', got {device!r}")
        if device == "gpu":
            backend.cupy_or_error()
    return resolved, device


# ---------------------------------------------------------------------------- writing

def save_arrays(path, arrays):
    """Write a dict of arrays to an .npz atomically (files.atomic_write: a temp file beside it,
    then one rename).

    A crash mid-write leaves any earlier file at `path` intact; the temp file of a killed run is
    removed by the next write to `path`.
    """
    path = files.check_output_path(files.as_path(path), "path")
    if not isinstance(arrays, dict):
        raise TypeError(f"arrays: expected a dict of name: array, got {type(arrays).__name__}")
    with files.atomic_write(path) as handle:
        np.savez(handle, **arrays)
    return path


def in_shipped_models(path):
    """Whether `path` lies in the folder of the checkpoints shipped with minisg."""
    return MODELS_DIR.resolve() in Path(path).resolve().parents


def _numeric_state(optimizer_state):
    """An optimizer's state_dict() (None, or a dict of numeric arrays) as {key: array}."""
    if optimizer_state is None:
        return {}
    if not isinstance(optimizer_state, dict):
        raise TypeError(f"optimizer_state: expected None or a dict of arrays (Optimizer.state_dict()), got "
                        f"{type(optimizer_state).__name__} {optimizer_state!r:.80}")
    state = {}
    for key, value in optimizer_state.items():
        try:
            state[key] = np.asarray(backend.to_numpy(value) if hasattr(value, "dtype") else value)
        except (TypeError, ValueError):
            state[key] = None                                  # ragged lists: no array
        if state[key] is None or state[key].dtype.kind not in "biuf":
            raise TypeError(f"optimizer_state: expected a dict of numeric arrays, got {value!r:.80} for key {key!r}")
    return state


def save(model, path, meta=None, optimizer_state=None):
    """Write the model's float32 weights and `meta` (a JSON-able dict) to `path` atomically.

    meta gets, unless it has them: the minisg version, the model's architecture (the builder's
    name, e.g. "mnist_cnn") and its input_shape and input_range. It is checked as load checks it,
    and non-finite weights are refused (ValueError naming them): what save writes, load reads.
    path: an .npz file outside the folder of the shipped checkpoints (never overwritten).
    optimizer_state: a dict of arrays (Optimizer.state_dict()) stored in the same file as
    ``optim.<key>``, so that weights and optimizer state are replaced together or not at all.
    """
    if not hasattr(model, "state_dict"):
        raise TypeError(f"model: expected a minisg Module, got {type(model).__name__}")
    if meta is not None and not isinstance(meta, dict):
        raise TypeError(f"meta: expected a dict of JSON values or None, got {type(meta).__name__}")
    path = files.check_output_path(files.as_path(path), "path", {".npz"})
    if in_shipped_models(path):
        raise files.OutputPathError(f"path {path}: is in the folder of the checkpoints shipped with minisg "
                                    f"({MODELS_DIR}), which save never writes; save to another path")
    optimizer_state = _numeric_state(optimizer_state)
    meta = _completed_meta(model, meta)
    check_meta(meta, where="meta", error=ValueError)
    try:
        text = json.dumps(meta, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"meta: expected JSON values (str, numbers, bools, lists, dicts), got {exc}") from exc
    arrays = {name: value.astype(np.float32) for name, value in model.state_dict().items()}
    bad = _non_finite(arrays)
    if bad:
        raise ValueError(f"model: non-finite weights (NaN or inf) in {bad}; not saved to {path}")
    arrays["meta"] = np.array(text)
    for key, value in optimizer_state.items():
        arrays[OPTIM_PREFIX + key] = value
    return save_arrays(path, arrays)


def _completed_meta(model, meta):
    meta = dict(meta or {})
    meta.setdefault("minisg_version", __version__)
    for name in ("architecture", "input_shape", "input_range"):
        value = getattr(model, name, None)
        if value is not None:
            meta.setdefault(name, list(value) if isinstance(value, tuple) else value)
    return meta


# ---------------------------------------------------------------------------- reading

def resolve(name_or_path):
    """A shipped model's name ('mnist_cnn', ...) or a path -> the checkpoint's Path."""
    text = str(files.as_path(name_or_path, "name_or_path"))
    if not str(name_or_path).strip():                   # Path("") is ".", the current folder
        raise ValueError(f"name_or_path: expected a shipped model's name ({', '.join(SHIPPED)}) or a checkpoint "
                         f"path, got {name_or_path!r}")
    if text in SHIPPED or (not text.endswith(".npz") and (MODELS_DIR / f"{text}.npz").exists()):
        return MODELS_DIR / f"{text}.npz"
    return Path(text)


def load_arrays(path):
    """{name: array} of an .npz file; CheckpointError naming `path` if it is not a readable one."""
    path = files.as_path(path)
    reason = files.unreadable_reason(path)
    if reason:
        raise CheckpointError(f"checkpoint {path} {reason}")
    with open(path, "rb") as handle:
        start = handle.read(6)
    if not start.startswith(ZIP_STARTS):
        raise CheckpointError(f"checkpoint {path} is not a minisg checkpoint (an .npz zip archive): "
                              f"{_what_it_is(start)}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError, KeyError) as exc:
        if "allow_pickle" in str(exc):   # numpy's advice would be to run pickled code: never
            raise CheckpointError(f"checkpoint {path} is not a minisg checkpoint: it holds arrays of Python "
                                  f"objects, which minisg never writes and never loads") from None
        raise CheckpointError(f"checkpoint {path} is truncated or not an .npz file ({type(exc).__name__}: "
                              f"{exc}); a minisg checkpoint is an .npz zip archive: re-train or copy it "
                              f"again") from None


def _what_it_is(start):
    if not start:
        return "the file is empty"
    if start.startswith(b"\x93NUMPY"):
        return "it is one NumPy array (.npy, written by np.save), not an archive of named arrays (np.savez)"
    return f"it starts with {start!r}, where a zip archive starts with b'PK\\x03\\x04'"


def read_checkpoint(name_or_path):
    """(arrays dict, meta dict) from a checkpoint, or CheckpointError naming the file and problem.

    The arrays are the model's weights only: a training checkpoint's optimizer state is left out.
    """
    arrays, meta, _ = read_training_checkpoint(name_or_path)
    return arrays, meta


def read_training_checkpoint(name_or_path):
    """(weights, meta, optimizer state) of a checkpoint; the optimizer state is a dict without
    the ``optim.`` prefix, or None when the checkpoint has none (e.g. written by ``save`` alone).

    Checked: the file, every array (float, finite) and every known meta field (META_FIELDS)."""
    path = resolve(name_or_path)
    reason = files.unreadable_reason(path)
    if reason == "does not exist":
        raise CheckpointError(f"checkpoint {path} does not exist (shipped models: {', '.join(SHIPPED)}; "
                              f"train one with `minisg train --out PATH`)")
    if reason:
        raise CheckpointError(f"checkpoint {path} {reason}")
    arrays = load_arrays(path)
    meta = _meta_of(path, arrays.pop("meta", None))
    _check_arrays(path, arrays)
    optimizer_state = {key[len(OPTIM_PREFIX):]: arrays.pop(key) for key in list(arrays)
                       if key.startswith(OPTIM_PREFIX)}
    return arrays, meta, optimizer_state or None


def _meta_of(path, stored):
    if stored is None:
        raise CheckpointError(f"checkpoint {path} has no 'meta' entry")
    if stored.ndim != 0 or stored.dtype.kind != "U":
        raise CheckpointError(f"checkpoint {path}: 'meta': expected a JSON string, got an array of dtype "
                              f"{stored.dtype} and shape {stored.shape}")
    try:
        meta = json.loads(str(stored))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"checkpoint {path}: 'meta' is not valid JSON ({exc})") from exc
    check_meta(meta, where=f"checkpoint {path}: meta", error=CheckpointError)
    return meta


def _check_arrays(path, arrays):
    """Weights must be float arrays and every float array (weights, optimizer state) finite."""
    for name, array in arrays.items():
        if not name.startswith(OPTIM_PREFIX) and array.dtype.kind != "f":
            raise CheckpointError(f"checkpoint {path}: tensor {name!r}: expected a float array, got dtype "
                                  f"{array.dtype}")
    bad = _non_finite(arrays)
    if bad:
        raise CheckpointError(f"checkpoint {path}: non-finite values (NaN or inf) in tensor(s) {bad}; the "
                              f"training that wrote it diverged or the file was altered: re-train it")


def _non_finite(arrays):
    """Names of the float arrays holding NaN or inf (each with how many of its values)."""
    return [f"{name} ({int((~np.isfinite(a)).sum())} of {a.size})" for name, a in arrays.items()
            if a.dtype.kind == "f" and not np.isfinite(a).all()]


def architecture_of(path, meta):
    """The builder named by meta's 'architecture' (CheckpointError listing the known ones)."""
    known = known_architectures()
    if "architecture" not in meta:
        raise CheckpointError(f"checkpoint {path}: meta has no 'architecture' field; expected one of {known}")
    name = meta["architecture"]
    if name not in known:   # a str here: check_meta refused other types
        raise CheckpointError(f"checkpoint {path}: meta field 'architecture': unknown architecture {name!r}; "
                              f"known: {known}")
    return ARCHITECTURES[name]


def _build(path, meta, dtype):
    builder = architecture_of(path, meta)
    arguments = meta.get("architecture_args", {})
    parameters = inspect.signature(builder).parameters
    accepted = [name for name in parameters if name != "dtype"]
    if not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        unknown = sorted(set(arguments) - set(accepted))
        if unknown:
            raise CheckpointError(f"checkpoint {path}: meta field 'architecture_args': unknown argument(s) "
                                  f"{unknown} of {meta['architecture']!r}; known: {accepted}")
    try:
        return builder(**arguments, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path}: meta field 'architecture_args' {arguments!r} do not build "
                              f"{meta['architecture']!r}: {exc}") from None


def load(name_or_path, dtype=np.float32, device=None):
    """Rebuild a model from a checkpoint (architecture from meta), in eval mode.

    Every parameter key and shape is checked; the error names the file and the key. The model's
    input_shape and input_range come from meta, else from its architecture.
    """
    dtype, device = check_load_options(dtype, device)
    arrays, meta = read_checkpoint(name_or_path)
    path = resolve(name_or_path)
    model = _build(path, meta, dtype)
    try:
        model.load_state_dict(arrays)
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path}: {exc.args[0]}") from exc
    try:
        model.input_shape, model.input_range = shape_and_range(meta, model.input_shape, model.input_range)
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {path}: {exc}") from None
    model.meta = meta
    if device is not None:
        model.to(device)
    return model.eval()

