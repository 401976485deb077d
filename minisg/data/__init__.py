"""MNIST for minisg: read the original IDX files, split them, batch them, add noise, build scenes.

The four original MNIST files (gzip-compressed IDX) ship with minisg (``data/mnist/`` of the
repository, ``minisg/_shipped/mnist`` when installed).
Everything here is plain NumPy and deterministic given a seed or a ``numpy.random.Generator``.

- ``mnist``   — ``read_idx`` (one IDX file, every check the format allows) and ``load_mnist``
                ("train", "val", "train_full" or "test": float32 images (N, 1, 28, 28) in
                [0, 1] and int64 labels);
- ``minibatches`` — ``batches``: shuffled mini-batches for one epoch;
- ``noise``   — ``add_noise``: SmoothGrad's Gaussian noise, scaled by each image's own value
                range (``noise_stdevs`` and ``gaussian_noise`` are shared with minisg.methods);
- ``scenes``  — ``make_scenes`` (larger canvases holding several digits, with boxes and ink
                masks) and ``two_digit_image`` / ``find_digit`` (discriminativity lessons).

Any problem with the data files raises ``DataError`` with the file's path, what is wrong and
what to do about it.
"""
from .minibatches import batches
from .mnist import (
    DATA_DIR_ENV_VAR, IMAGE_SIDE, MNIST_DIR, MNIST_FILES, NUM_CLASSES, SPLITS, TRAIN_SIZE, VAL_SIZE, DataError,
    load_mnist, mnist_dir, read_idx,
)
from .noise import add_noise, gaussian_noise, noise_stdevs
from .scenes import MASK_THRESHOLD, Scenes, TwoDigitImage, find_digit, make_scenes, two_digit_image

__all__ = [
    "DATA_DIR_ENV_VAR", "IMAGE_SIDE", "MASK_THRESHOLD", "MNIST_DIR", "MNIST_FILES", "NUM_CLASSES", "SPLITS",
    "TRAIN_SIZE", "VAL_SIZE", "DataError", "Scenes", "TwoDigitImage", "add_noise", "batches", "find_digit",
    "gaussian_noise", "load_mnist", "make_scenes", "mnist_dir", "noise_stdevs", "read_idx", "two_digit_image",
]
