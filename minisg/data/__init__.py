"""MNIST for minisg: read the original IDX files, split them, batch them, add noise, build scenes.

The four original MNIST files (gzip-compressed IDX) ship with minisg (``data/mnist/`` of the
repository, ``minisg/_shipped/mnist`` when installed).
Everything here is plain NumPy and deterministic given a seed or a ``numpy.random.Generator``.

- ``read_idx``     — one IDX file -> read-only uint8 array, with every check the format allows;
- ``load_mnist``   — "train" (first 55,000), "val" (last 5,000 of the training set),
                     "train_full" (all 60,000) or "test" (10,000): float32 images in [0, 1]
                     shaped (N, 1, 28, 28) and int64 labels;
- ``batches``      — shuffled mini-batches for one epoch;
- ``add_noise``    — SmoothGrad's Gaussian noise, scaled by each image's own value range;
- ``make_scenes``  — larger canvases holding several digits, with boxes and ink masks, for
                     the Grad-CAM++ lessons (several objects, several occurrences of a class);
- ``two_digit_image`` — one digit on the left, one on the right (discriminativity lessons);
  ``find_digit`` gives the index of the nth digit of a class to put there.

Any problem with the data files raises ``DataError`` with the file's path, what is wrong and
what to do about it.
"""
import functools
import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass
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

# A scene pixel belongs to a digit's ink mask when it is brighter than this (pixels in [0, 1]).
# 0.1 drops the faint anti-aliased rim that MNIST digits have, keeping the stroke itself.
MASK_THRESHOLD = 0.1
# Empty pixels kept between two digits' boxes in a scene, so digits never touch.
SCENE_GAP = 1
# make_scenes re-draws the positions of a scene's digits at most this many times.
MAX_PLACEMENT_TRIES = 100


class DataError(ValueError):
    """A data file is missing, corrupt, or not what minisg expects."""


# ----------------------------------------------------------------------------- IDX files

def read_idx(path, expected_sha256=None):
    """Read one IDX file (gzip-compressed or plain) into a read-only uint8 array.

    Checks the magic number, the dimensions, that the payload has exactly the size the
    dimensions announce, and, when given, the SHA-256 of the uncompressed bytes.
    The result is cached per file, hence read-only: copy it before changing it.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (looked for {path.resolve()}); {README_HINT}")
    stat = path.stat()
    # mtime and size are part of the cache key, so a file replaced on disk is read again.
    return _read_idx_cached(str(path), stat.st_mtime_ns, stat.st_size, expected_sha256)


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
        return Path(root).expanduser()
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


def _raw_split(split, root=None):
    """Read-only uint8 images (N, 28, 28) and labels (N,) of one split (views, no copy)."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; valid splits are {', '.join(map(repr, SPLITS))}")
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
    images, labels = _raw_split(split, root)
    return _to_float_images(images), labels.astype(np.int64)


def _to_float_images(raw_images):
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1], a new array."""
    images = raw_images.astype(np.float32)
    images /= 255.0  # in place: the training set is 170 MB as float32, one copy is enough
    return images[:, None, :, :]


# ----------------------------------------------------------------------------- batches and noise

def batches(images, labels, batch_size, rng, shuffle=True, drop_last=False):
    """Yield (x, y) mini-batches covering one epoch, in an order drawn from `rng`.

    rng: a numpy.random.Generator seeded by the caller (unused when shuffle=False).
    drop_last: skip the final batch when it is smaller than batch_size.
    Arguments are checked at the call, not at the first next().
    """
    if len(images) != len(labels):
        raise ValueError(f"images and labels differ in length: {len(images)} vs {len(labels)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if shuffle and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    order = rng.permutation(len(images)) if shuffle else np.arange(len(images))
    return _batch_generator(images, labels, int(batch_size), order, drop_last)


def _batch_generator(images, labels, batch_size, order, drop_last):
    for start in range(0, len(order), batch_size):
        chosen = order[start:start + batch_size]
        if drop_last and len(chosen) < batch_size:
            return
        yield images[chosen], labels[chosen]


def add_noise(images, noise_level, rng):
    """Add SmoothGrad's Gaussian noise: stdev = noise_level * (max - min) of each image.

    images: array (N, ...) — axis 0 indexes images; each image's range is taken over all
    its pixels, so a constant image gets no noise. A fresh draw from `rng` on every call;
    the result is not clipped, and has the input's float dtype (float32 for integer input).
    noise_level 0 returns an unchanged copy without drawing from `rng`.
    """
    if not np.isfinite(noise_level) or noise_level < 0:
        raise ValueError(f"noise_level must be a finite number >= 0, got {noise_level!r}")
    images = np.asarray(images)
    dtype = images.dtype if np.issubdtype(images.dtype, np.floating) else np.dtype(np.float32)
    noisy = images.astype(dtype, copy=True)
    if noise_level == 0 or noisy.size == 0:
        return noisy
    per_image = noisy.reshape(len(noisy), -1)
    value_range = per_image.max(axis=1) - per_image.min(axis=1)
    stdev = (noise_level * value_range).reshape((-1,) + (1,) * (noisy.ndim - 1))
    noise = rng.standard_normal(noisy.shape, dtype=np.float64 if dtype == np.float64 else np.float32)
    noisy += (stdev * noise).astype(dtype)
    return noisy


# ----------------------------------------------------------------------------- digit scenes

@dataclass(frozen=True)
class Scenes:
    """Canvases holding several MNIST digits, with everything needed to score a saliency map.

    images:        float32 (N, 1, H, W), pixels in [0, 1]
    labels:        float32 (N, 10), multi-hot: 1 for each class present in the scene
    digit_labels:  list of N lists, the class of each digit of a scene
    boxes:         list of N lists of (top, left, bottom, right), each digit's tight ink box
                   (bottom and right exclusive, like slices: image[top:bottom, left:right])
    masks:         bool (N, max_digits, H, W), mask[k] = ink pixels (> MASK_THRESHOLD) of digit k;
                   slots k >= count are all False
    count:         int64 (N,), number of digits in each scene
    source_indices: list of N lists, index of each digit in its MNIST split
    """
    images: np.ndarray
    labels: np.ndarray
    digit_labels: list
    boxes: list
    masks: np.ndarray
    count: np.ndarray
    source_indices: list

    def __len__(self):
        return len(self.images)


def make_scenes(n, split="test", canvas=56, digits=(1, 4), seed=0, same_class=False,
                distinct_classes=False, root=None):
    """Build `n` deterministic scenes of `digits[0]`..`digits[1]` MNIST digits each.

    Every digit is pasted (np.maximum) as its TIGHT ink crop — the bounding box of its
    nonzero pixels, about 20x20 instead of the 28x28 frame — at a random position where that
    box stays SCENE_GAP pixels clear of every other digit's box: boxes never overlap, so
    the digits can be packed densely while each mask and box belongs to exactly one digit.

    split: the MNIST split digits come from ("train" scenes use "train", "test" scenes "test").
    canvas: side of the square canvas, or (height, width).
    same_class: all digits of a scene share one class (Grad-CAM++'s multiple occurrences).
    distinct_classes: all digits of a scene have different classes (discriminativity).
    Raises ValueError when digits cannot be placed after MAX_PLACEMENT_TRIES attempts.
    """
    n = int(n)
    height, width = _canvas_shape(canvas)
    fewest, most = _check_scene_arguments(n, digits, same_class, distinct_classes)
    raw_images, raw_labels = _raw_split(split, root)
    by_class = [np.flatnonzero(raw_labels == c) for c in range(NUM_CLASSES)]
    rng = np.random.default_rng(seed)

    images = np.zeros((n, 1, height, width), np.float32)
    labels = np.zeros((n, NUM_CLASSES), np.float32)
    masks = np.zeros((n, most, height, width), bool)
    count = np.zeros(n, np.int64)
    digit_labels, boxes, source_indices = [], [], []
    for s in range(n):
        count[s] = rng.integers(fewest, most + 1)
        chosen = _pick_digits(rng, int(count[s]), len(raw_labels), by_class, same_class, distinct_classes)
        crops = [_ink_crop(raw_images[i]) for i in chosen]
        corners = _place_boxes(rng, [crop.shape for crop in crops], (height, width))
        scene_boxes = []
        for k, (crop, (top, left)) in enumerate(zip(crops, corners)):
            box = (top, left, top + crop.shape[0], left + crop.shape[1])
            _paste(images[s, 0], masks[s, k], crop, box)
            scene_boxes.append(box)
        scene_labels = [int(raw_labels[i]) for i in chosen]
        labels[s, scene_labels] = 1.0
        digit_labels.append(scene_labels)
        boxes.append(scene_boxes)
        source_indices.append([int(i) for i in chosen])
    return Scenes(images, labels, digit_labels, boxes, masks, count, source_indices)


def _canvas_shape(canvas):
    height, width = (canvas, canvas) if np.isscalar(canvas) else canvas
    if int(height) < 1 or int(width) < 1:
        raise ValueError(f"canvas must be positive, got {canvas!r}")
    return int(height), int(width)


def _check_scene_arguments(n, digits, same_class, distinct_classes):
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n!r}")
    fewest, most = (int(d) for d in digits)
    if not 1 <= fewest <= most:
        raise ValueError(f"digits must be (fewest, most) with 1 <= fewest <= most, got {digits!r}")
    if same_class and distinct_classes and most > 1:
        raise ValueError("same_class and distinct_classes cannot both hold for scenes of 2 or more digits")
    if distinct_classes and most > NUM_CLASSES:
        raise ValueError(f"distinct_classes allows at most {NUM_CLASSES} digits per scene, got digits={digits!r}")
    return fewest, most


def _pick_digits(rng, count, num_images, by_class, same_class, distinct_classes):
    """Indices (into the split) of the `count` digits of one scene; no image is used twice."""
    if same_class:
        return rng.choice(by_class[rng.integers(NUM_CLASSES)], size=count, replace=False)
    if distinct_classes:
        classes = rng.choice(NUM_CLASSES, size=count, replace=False)
        return np.array([rng.choice(by_class[c]) for c in classes])
    return rng.choice(num_images, size=count, replace=False)


def _ink_box(raw_digit):
    """(top, left, bottom, right) of the digit's nonzero pixels inside its 28x28 frame."""
    rows = np.flatnonzero(raw_digit.any(axis=1))
    cols = np.flatnonzero(raw_digit.any(axis=0))
    if len(rows) == 0:  # a blank image (none in MNIST): keep the whole frame
        return 0, 0, raw_digit.shape[0], raw_digit.shape[1]
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _ink_crop(raw_digit):
    """The digit's tight crop (rows and columns holding ink) as float32 in [0, 1]."""
    top, left, bottom, right = _ink_box(raw_digit)
    return raw_digit[top:bottom, left:right].astype(np.float32) / 255.0


def _place_boxes(rng, sizes, canvas_hw):
    """Top-left corners for boxes of `sizes` that keep SCENE_GAP apart; retried from scratch."""
    for _ in range(MAX_PLACEMENT_TRIES):
        placed = []
        for height, width in sizes:
            corner = _random_free_corner(rng, height, width, placed, canvas_hw)
            if corner is None:
                break  # this layout left no room: start the scene over
            placed.append((*corner, corner[0] + height, corner[1] + width))
        else:
            return [(top, left) for top, left, _, _ in placed]
    raise ValueError(
        f"could not place {len(sizes)} digits (ink boxes {sizes}) without overlap on a "
        f"{canvas_hw[0]}x{canvas_hw[1]} canvas after {MAX_PLACEMENT_TRIES} tries; use a larger "
        f"canvas or fewer digits per scene"
    )


def _random_free_corner(rng, height, width, placed, canvas_hw):
    """A uniformly drawn top-left corner where a height x width box fits, or None."""
    rows, cols = canvas_hw[0] - height + 1, canvas_hw[1] - width + 1
    if rows < 1 or cols < 1:
        return None
    free = np.ones((rows, cols), bool)
    for top, left, bottom, right in placed:
        # Corners whose box would come within SCENE_GAP pixels of this placed box.
        free[max(0, top - height - SCENE_GAP + 1):bottom + SCENE_GAP,
             max(0, left - width - SCENE_GAP + 1):right + SCENE_GAP] = False
    candidates = np.flatnonzero(free)
    if len(candidates) == 0:
        return None
    return tuple(int(v) for v in np.unravel_index(rng.choice(candidates), free.shape))


def _paste(image, mask, crop, box):
    """Paste a crop into image[box] with np.maximum and mark its ink in mask."""
    top, left, bottom, right = box
    image[top:bottom, left:right] = np.maximum(image[top:bottom, left:right], crop)
    mask[top:bottom, left:right] = crop > MASK_THRESHOLD


@dataclass(frozen=True)
class TwoDigitImage:
    """One image with a digit on the left and one on the right.

    image: float32 (1, H, W) — one sample; image[None] is a batch of one
    labels: float32 (10,), multi-hot
    digit_labels: (left class, right class)
    masks: bool (2, H, W), ink masks (> MASK_THRESHOLD) of the left and right digit
    boxes: [(top, left, bottom, right)] tight ink boxes, bottom/right exclusive
    """
    image: np.ndarray
    labels: np.ndarray
    digit_labels: tuple
    masks: np.ndarray
    boxes: list


def two_digit_image(i, j, split="test", canvas=(28, 56), root=None):
    """Digit number i of `split` in the left half of the canvas, digit number j in the right.

    i, j: indices into the split (find_digit gives the index of a class). Each 28x28 digit
    is centred in its half, so the canvas must be at least 28 high and 56 wide.
    """
    height, width = _canvas_shape(canvas)
    if height < IMAGE_SIDE or width < 2 * IMAGE_SIDE:
        raise ValueError(f"two_digit_image needs a canvas of at least (28, 56), got {canvas!r}")
    raw_images, raw_labels = _raw_split(split, root)
    image = np.zeros((height, width), np.float32)
    masks = np.zeros((2, height, width), bool)
    top = (height - IMAGE_SIDE) // 2
    half = width // 2
    lefts = ((half - IMAGE_SIDE) // 2, half + (width - half - IMAGE_SIDE) // 2)
    boxes = []
    for k, (index, left) in enumerate(zip((i, j), lefts)):
        ink_top, ink_left, ink_bottom, ink_right = _ink_box(raw_images[index])
        box = (top + ink_top, left + ink_left, top + ink_bottom, left + ink_right)
        crop = _ink_crop(raw_images[index])
        _paste(image, masks[k], crop, box)
        boxes.append(box)
    digit_labels = (int(raw_labels[i]), int(raw_labels[j]))
    labels = np.zeros(NUM_CLASSES, np.float32)
    labels[list(digit_labels)] = 1.0
    return TwoDigitImage(image[None], labels, digit_labels, masks, boxes)


def find_digit(digit_class, split="test", nth=0, root=None):
    """Index in `split` of the nth image of class `digit_class` (for two_digit_image)."""
    _, labels = _raw_split(split, root)
    matches = np.flatnonzero(labels == digit_class)
    if not 0 <= nth < len(matches):
        raise ValueError(f"split {split!r} has {len(matches)} images of class {digit_class!r}, asked for number {nth}")
    return int(matches[nth])
