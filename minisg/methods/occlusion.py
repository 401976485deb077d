"""Occlusion (Zeiler & Fergus): how much does the target logit drop when a patch is hidden?

A patch x patch square (all channels) slides over the image with `stride`; inside it the
image is set to `baseline`. Every pixel gets the mean drop over the patches that cover it:

    map[n, :, i, j] = mean over patches P containing (i, j) of  S_c(x_n) - S_c(x_n with P hidden)

No gradients: only forward passes, batch_size occluded images at a time. The occluded images
are built a chunk at a time too and their drops summed per pixel as they come, so memory does
not grow with the number of patches. On a linear model S = w.x + b with baseline 0 and
patch=1 it equals gradient x input.
"""
import numpy as np

from .. import parallel
from ._checks import check_baseline, check_int, check_target_range
from ._common import clean_logits, evaluation_mode, model_dtype, prepare
from ._running import chunk_size, chunks


def patch_starts(size, patch, stride):
    """Top (or left) edges of the patches along one axis; the last patch touches the far edge."""
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def _coverage(size, starts, patch):
    """How many patches cover each position along one axis (float64, exact counts)."""
    counts = np.zeros(size)
    for start in starts:
        counts[start:start + patch] += 1
    return counts


def occlusion(model, x, target=None, patch=4, stride=2, baseline=0.0, batch_size=None):
    """Occlusion map shaped like x (the same value in every channel of a pixel)."""
    patch, stride = check_int("patch", patch), check_int("stride", stride)
    check_baseline(baseline, model_dtype(model), number_only=True)
    with evaluation_mode(model):
        x, target = prepare(model, x, target, batch_size)
        count, channels, height, width = x.shape
        if patch > min(height, width):
            raise ValueError(f"patch: expected at most the image size {min(height, width)}, got {patch}")
        if stride > patch:                              # pixels between patches would get no value
            raise ValueError(f"stride: expected at most patch ({patch}) so that every pixel is covered, got {stride}")
        tops, lefts = patch_starts(height, patch, stride), patch_starts(width, patch, stride)
        logits = clean_logits(model, x, batch_size)     # the target's range is checked against them
        clean = logits[np.arange(count), check_target_range(target, logits.shape[1])]
        total = np.zeros((count, height, width))        # per pixel: the drops of the patches over it
        patches = len(tops) * len(lefts)                # row i*patches + p: image i with patch p hidden
        for start, stop in chunks(count, patches, chunk_size(batch_size, x.shape[1:], x.itemsize)):
            image, p = np.divmod(np.arange(start, stop), patches)
            corners = [(tops[k // len(lefts)], lefts[k % len(lefts)]) for k in p]
            hidden = x[image]
            for one, (r, c) in zip(hidden, corners):
                one[:, r:r + patch, c:c + patch] = baseline
            scores = parallel.logits(model, hidden, batch_size)[np.arange(stop - start), target[image]]
            for i, (r, c), drop in zip(image, corners, clean[image] - scores):
                total[i, r:r + patch, c:c + patch] += drop
        covered = np.outer(_coverage(height, tops, patch), _coverage(width, lefts, patch))
        average = (total / covered).astype(x.dtype)
        return np.repeat(average[:, None], channels, axis=1)
