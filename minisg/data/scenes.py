"""Digit scenes: MNIST digits pasted onto larger canvases, with their boxes and ink masks.

- ``make_scenes``     — canvases holding several digits, for the Grad-CAM++ lessons (several
                        objects, several occurrences of a class);
- ``two_digit_image`` — one digit on the left, one on the right (discriminativity lessons);
  ``find_digit`` gives the index of the nth digit of a class to put there.

Deterministic given a seed: the digits, their positions and everything derived from them.
"""
from dataclasses import dataclass

import numpy as np

from ..checks import check_flags, check_int, is_int
from .mnist import IMAGE_SIDE, NUM_CLASSES, raw_split

# A scene pixel belongs to a digit's ink mask when it is brighter than this (pixels in [0, 1]).
# 0.1 drops the faint anti-aliased rim that MNIST digits have, keeping the stroke itself.
MASK_THRESHOLD = 0.1
# Empty pixels kept between two digits' boxes in a scene, so digits never touch.
SCENE_GAP = 1
# make_scenes re-draws the positions of a scene's digits at most this many times.
MAX_PLACEMENT_TRIES = 100
MAX_PIXELS = 2**31   # n * height * width of make_scenes: 8 GiB of float32 images


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
    n = check_int("n", n)
    height, width = _canvas_shape(canvas)
    if n * height * width > MAX_PIXELS:
        raise ValueError(f"n, canvas: expected at most {MAX_PIXELS:,} pixels in all (8 GiB of float32), got n={n} "
                         f"scenes of {height}x{width}")
    fewest, most = _check_scene_arguments(digits, same_class, distinct_classes)
    rng = np.random.default_rng(check_int("seed", seed, low=0))
    raw_images, raw_labels = raw_split(split, root)
    by_class = [np.flatnonzero(raw_labels == c) for c in range(NUM_CLASSES)]

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


def _pair_of_ints(name, value, expected, one_for_both=False):
    """A pair of ints (or, one_for_both, one int for both) as a tuple (ValueError naming `name`)."""
    pair = (value, value) if one_for_both and is_int(value) else value
    if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not all(is_int(v) for v in pair):
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _canvas_shape(canvas):
    height, width = _pair_of_ints("canvas", canvas, "an int side or (height, width), ints >= 1", one_for_both=True)
    if height < 1 or width < 1:
        raise ValueError(f"canvas: expected an int side or (height, width), ints >= 1, got {canvas!r}")
    return height, width


def _check_scene_arguments(digits, same_class, distinct_classes):
    expected = "(fewest, most), two ints with 1 <= fewest <= most"
    fewest, most = _pair_of_ints("digits", digits, expected)
    if not 1 <= fewest <= most:
        raise ValueError(f"digits: expected {expected}, got {digits!r}")
    check_flags(same_class=same_class, distinct_classes=distinct_classes)
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
        raise ValueError(f"canvas: two_digit_image needs a canvas of at least (28, 56), got {canvas!r}")
    raw_images, raw_labels = raw_split(split, root)
    i, j = (check_int(name, index, 0, len(raw_labels) - 1) for name, index in (("i", i), ("j", j)))
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
    digit_class, nth = check_int("digit_class", digit_class, 0, NUM_CLASSES - 1), check_int("nth", nth, low=0)
    _, labels = raw_split(split, root)
    matches = np.flatnonzero(labels == digit_class)
    if not 0 <= nth < len(matches):
        raise ValueError(f"nth: expected an index below {len(matches)} (the images of class {digit_class} in split "
                         f"{split!r}), got {nth}")
    return int(matches[nth])
