"""The fields of a checkpoint's meta that minisg reads, and their checks.

A checkpoint's meta is a JSON object. The fields minisg reads (``META_FIELDS``) are checked when
a checkpoint is read, and before ``save`` writes one, so that a bad value is named at load, not
when a report prints it minutes later. Other fields belong to the user and are kept as they are.
"""
import math
from ..checks import is_int, is_number


def _is_number(value, low=-math.inf, high=math.inf):
    """A real number in [low, high] (NaN never is; JSON has no other non-finite values)."""
    return is_number(value) and low <= value <= high


def _is_count(value, low=0):
    return is_int(value) and value >= low


def _is_shape(value):
    return isinstance(value, list) and len(value) == 3 and all(s is None or _is_count(s, 1) for s in value)


def _is_range(value):
    return (isinstance(value, list) and len(value) == 2 and all(_is_number(v) and math.isfinite(v) for v in value)
            and value[0] < value[1])


_FRACTION = (lambda v: _is_number(v, 0.0, 1.0), "a number in [0, 1]")
_COUNT = (_is_count, "an int >= 0")
_NONNEGATIVE = (lambda v: _is_number(v, 0.0), "a number >= 0")
_TEXT = (lambda v: isinstance(v, str), "a string")

# field: (check, what is expected), or a dict of the fields of a nested object
PROGRESS_FIELDS = {"epoch": _COUNT, "step": _COUNT, "seconds": _NONNEGATIVE,
                   "val_accuracy": (lambda v: isinstance(v, list) and all(_is_number(a, 0, 1) for a in v),
                                    "a list of numbers in [0, 1]")}
CONFIG_FIELDS = {"epochs": _COUNT, "batch_size": _COUNT, "seed": _COUNT, "lr": _NONNEGATIVE,
                 "noise_level": _NONNEGATIVE, "grad_penalty_weight": _NONNEGATIVE,
                 "smoothness_weight": _NONNEGATIVE, "device": _TEXT, "command": _TEXT}
META_FIELDS = {
    "architecture": (lambda v: isinstance(v, str), "an architecture name (a string)"),
    "architecture_args": (lambda v: isinstance(v, dict), "an object of the architecture's arguments"),
    "minisg_version": _TEXT,
    "complete": (lambda v: isinstance(v, bool), "true or false"),
    "config": CONFIG_FIELDS,
    "progress": PROGRESS_FIELDS,
    "test_accuracy": _FRACTION, "test_images": _COUNT,
    "test_mAP": _FRACTION, "test_exact_match": _FRACTION, "test_label_accuracy": _FRACTION, "test_scenes": _COUNT,
    "train_seconds": _NONNEGATIVE, "images_per_second": _NONNEGATIVE,
    "canvas": (lambda v: _is_count(v, 1), "an int >= 1"),
    "digits_per_scene": (lambda v: isinstance(v, list) and len(v) == 2 and all(_is_count(d, 1) for d in v),
                         "[fewest, most], two ints >= 1"),
    "input_shape": (_is_shape, "[C, H, W], each an int >= 1 or null (any size)"),
    "input_range": (_is_range, "[low, high], two finite numbers with low < high"),
}


def _short(value, most=80):
    text = repr(value)
    return text if len(text) <= most else text[:most] + "..."


def check_meta(meta, where, error, fields=META_FIELDS, prefix=""):
    """Raise `error` naming `where`, the field, what it should be and what it is, unless every
    field of `fields` that meta has passes its check (nested objects field by field)."""
    if not isinstance(meta, dict):
        name = f" field {prefix[:-1]!r}" if prefix else ""
        raise error(f"{where}{name}: expected a JSON object ({{\"field\": value, ...}}), got "
                    f"{type(meta).__name__} {_short(meta)}")
    for field, rule in fields.items():
        if field not in meta:
            continue
        if isinstance(rule, dict):
            check_meta(meta[field], where, error, rule, prefix + field + ".")
            continue
        is_valid, expected = rule
        if not is_valid(meta[field]):
            raise error(f"{where} field {prefix + field!r}: expected {expected}, got {_short(meta[field])}")


def shape_and_range(meta, shape, value_range):
    """(input_shape, input_range) of a loaded model: meta's where it has them, else the
    architecture's `shape` and `value_range`. Meta's shape must agree with every axis the
    architecture fixes (ValueError)."""
    if "input_shape" in meta:
        recorded = tuple(meta["input_shape"])
        if shape is not None and any(fixed is not None and fixed != size for fixed, size in zip(shape, recorded)):
            raise ValueError(f"meta field 'input_shape': {list(recorded)} does not fit the architecture, whose "
                             f"input is {tuple(shape)}")
        shape = recorded
    if "input_range" in meta:
        value_range = tuple(float(v) for v in meta["input_range"])
    return shape, value_range
