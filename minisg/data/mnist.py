"""MNIST from its original IDX files: read and check them, split them, load float images.

- ``read_idx``   — one IDX file -> read-only uint8 array, with every check the format allows;
- ``load_mnist`` — "train" (first 55,000), "val" (last 5,000 of the training set),
                   "train_full" (all 60,000) or "test" (10,000): float32 images in [0, 1]
                   shaped (N, 1, 28, 28) and int64 labels.

Any problem with the data files raises ``DataError`` with the file's path, what is wrong and
what to do about it.
"""
import functools
import gzip
import hashlib
import os
import zlib
from pathlib import Path

import numpy as np

from .. import files

# Shipped with minisg (in the installed package, or data/mnist in a checkout); MINISG_DATA or a
# root= argument point elsewhere.
MNIST_DIR = files.shipped("mnist")
DATA_DIR_ENV_VAR = "MINISG_DATA"
README_HINT = f"see {MNIST_DIR / 'README.md'}"

# SHA-256 and size of the UNCOMPRESSED files (the .gz wrappers may differ between gzip
# versions; the bytes inside must not). Copied from data/mnist/README.md.
MNIST_FILES = {
    "train-images-idx3-ubyte": ("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 47040016),
    "train-labels-idx1-ubyte": ("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 60008),
    "t10k-images-idx3-ubyte": ("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 7840016),
    "t10k-labels-idx1-ubyte": ("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10008),
}

# IDX magic number: two zero bytes, a type code, the number of dimensions.
IDX_MAGIC_LABELS = 0x00000801  # unsigned bytes, 1 dimension
IDX_MAGIC_IMAGES = 0x00000803  # unsigned bytes, 3 dimensions
IDX_TYPE_UINT8 = 0x08

NUM_CLASSES = 10
IMAGE_SIDE = 28
TRAIN_SIZE = 60_000
VAL_SIZE = 5_000  # the last 5,000 training images, held out for validation
SPLITS = ("train", "val", "test", "train_full")


class DataError(ValueError):
    """A data file is missing, corrupt, or not what minisg expects."""


# ----------------------------------------------------------------------------- IDX files

def read_idx(path, expected_sha256=None):
    """Read one IDX file (gzip-compressed or plain) into a read-only uint8 array.

    Checks the magic number, the dimensions, that the payload has exactly the size the
    dimensions announce, and, when given, the SHA-256 of the uncompressed bytes.
    The result is cached per file, hence read-only: copy it before changing it.
    """
    path = files.as_path(path)
    reason = files.unreadable_reason(path)
    if reason == "does not exist":
        raise DataError(f"{path}: file not found (looked for {path.resolve()}); {README_HINT}")
    if reason:
        raise DataError(f"{path}: {reason}; {README_HINT}")
    if expected_sha256 is not None and not _is_sha256(expected_sha256):
        raise ValueError(f"expected_sha256: expected 64 hexadecimal digits or None, got {expected_sha256!r}")
    stat = path.stat()
    # mtime and size are part of the cache key, so a file replaced on disk is read again.
    return _read_idx_cached(str(path), stat.st_mtime_ns, stat.st_size, expected_sha256)


def _is_sha256(text):
    digits = text.strip().lower() if isinstance(text, str) else ""
    return len(digits) == 64 and all(c in "0123456789abcdef" for c in digits)


@functools.lru_cache(maxsize=8)
def _read_idx_cached(path, _mtime_ns, _size, expected_sha256):
    data = _uncompressed_bytes(path)
    dims, header_size = _parse_idx_header(path, data)
    _check_payload_size(path, data, dims, header_size)
    if expected_sha256 is not None:
        _check_sha256(path, data, expected_sha256)
    # frombuffer on immutable bytes gives a read-only array: callers cannot corrupt the cache.
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(dims)


def _uncompressed_bytes(path):
    raw = Path(path).read_bytes()
    if not raw.startswith(b"\x1f\x8b"):  # the gzip magic; anything else is read as plain IDX
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"{path}: corrupt gzip stream ({exc}); the file was damaged or cut off while "
            f"copying — copy the original file again ({README_HINT})"
        ) from exc


def _parse_idx_header(path, data):
    """Return (dims, header size in bytes) after checking the magic number."""
    if len(data) < 4:
        raise DataError(f"{path}: only {len(data)} bytes, too short for an IDX header; {README_HINT}")
    magic = int.from_bytes(data[:4], "big")
    if magic not in (IDX_MAGIC_LABELS, IDX_MAGIC_IMAGES):
        raise DataError(
            f"{path}: magic number is 0x{magic:08X}, expected 0x{IDX_MAGIC_LABELS:08X} (labels) or "
            f"0x{IDX_MAGIC_IMAGES:08X} (images): {_describe_magic(data[:4])}; this is not an "
            f"original MNIST IDX file — copy the original again ({README_HINT})"
        )
    ndim = data[3]
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(f"{path}: the file ends inside its IDX header ({len(data)} bytes); the file is truncated")
    dims = tuple(int.from_bytes(data[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    return dims, header_size


def _describe_magic(first4):
    """Say in words why the first four bytes are not an MNIST magic number."""
    if first4[:2] != b"\x00\x00":
        return "an IDX file starts with two zero bytes"
    if first4[2] != IDX_TYPE_UINT8:
        return f"type code 0x{first4[2]:02X} is not 0x08 (unsigned byte), the only type MNIST uses"
    return f"{first4[3]} dimensions, MNIST files have 1 (labels) or 3 (images)"


def _check_payload_size(path, data, dims, header_size):
    expected = int(np.prod(dims, dtype=np.int64))
    actual = len(data) - header_size
    if actual < expected:
        raise DataError(
            f"{path}: truncated — the header announces dims {dims} ({expected} bytes of data) but "
            f"only {actual} bytes follow; copy the original file again ({README_HINT})"
        )
    if actual > expected:
        raise DataError(
            f"{path}: {actual - expected} unexpected bytes after the {expected} bytes that dims "
            f"{dims} announce; the file is not an original MNIST file ({README_HINT})"
        )


def _check_sha256(path, data, expected_sha256):
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256.strip().lower():
        raise DataError(
            f"{path}: SHA-256 of the uncompressed bytes is {actual}, expected {expected_sha256}; the "
            f"file is corrupt or not the original MNIST — restore it from the repository "
            f"(reinstall minisg, or git checkout -- data/mnist in a checkout) or copy the original file again ({README_HINT})"
        )


# ----------------------------------------------------------------------------- MNIST splits

def mnist_dir(root=None):
    """The folder holding the MNIST files: root=, else $MINISG_DATA, else the repository's data/mnist."""
    if root is not None:
        return files.as_path(root, "root").expanduser()
    from_env = os.environ.get(DATA_DIR_ENV_VAR, "").strip()
    return Path(from_env).expanduser() if from_env else MNIST_DIR


def _where_the_folder_came_from(root):
    if root is not None:
        return "given as root="
    if os.environ.get(DATA_DIR_ENV_VAR, "").strip():
        return f"from the {DATA_DIR_ENV_VAR} environment variable"
    return "the files shipped with minisg"


def _mnist_file(name, root):
    """Read one of the four MNIST files (NAME.gz or plain NAME) with its checksum checked."""
    folder = mnist_dir(root)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder}: is a file, not a folder of MNIST files ({_where_the_folder_came_from(root)})")
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            expected_sha256, _ = MNIST_FILES[name]
            return read_idx(candidate, expected_sha256)
    raise DataError(
        f"{folder / (name + '.gz')}: MNIST file not found (looked for {name}.gz and {name} in "
        f"{folder.resolve()}, {_where_the_folder_came_from(root)}); put the four original MNIST "
        f"files there, or point {DATA_DIR_ENV_VAR} or root= at the folder that holds them ({README_HINT})"
    )


def _raw_pair(prefix, root):
    """uint8 images (N, 28, 28) and labels (N,) of 'train' or 't10k', checked for consistency."""
    images = _mnist_file(f"{prefix}-images-idx3-ubyte", root)
    labels = _mnist_file(f"{prefix}-labels-idx1-ubyte", root)
    # The checksums already pin the contents; these checks keep the code honest if they change.
    if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE) or labels.shape != images.shape[:1]:
        raise DataError(f"{mnist_dir(root)}: {prefix} images {images.shape} and labels {labels.shape} do not match")
    return images, labels


def raw_split(split, root=None):
    """Read-only uint8 images (N, 28, 28) and labels (N,) of one split (views, no copy)."""
    if not isinstance(split, str) or split not in SPLITS:
        raise DataError(f"split: expected one of {', '.join(map(repr, SPLITS))}, got {split!r}")
    if split == "test":
        return _raw_pair("t10k", root)
    images, labels = _raw_pair("train", root)
    first_val = TRAIN_SIZE - VAL_SIZE
    if split == "train":
        return images[:first_val], labels[:first_val]
    if split == "val":
        return images[first_val:], labels[first_val:]
    return images, labels  # "train_full"


def load_mnist(split, root=None):
    """Images float32 (N, 1, 28, 28) in [0, 1] (pixel / 255) and labels int64 (N,) of a split.

    split: "train" (first 55,000 training images), "val" (last 5,000 training images),
    "train_full" (all 60,000) or "test" (the 10,000 test images).
    root: folder with the four MNIST files (default: $MINISG_DATA, else data/mnist).
    The files are decoded once per process; each call returns fresh arrays you may modify.
    """
    images, labels = raw_split(split, root)
    return _to_float_images(images), labels.astype(np.int64)


def _to_float_images(raw_images):
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1], a new array."""
    images = raw_images.astype(np.float32)
    images /= 255.0  # in place: the training set is 170 MB as float32, one copy is enough
    return images[:, None, :, :]
