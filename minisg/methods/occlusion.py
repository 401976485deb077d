"""Occlusion (Zeiler & Fergus): how much does the target logit drop when a patch is hidden?

A patch x patch square (all channels) slides over the image with `stride`; inside it the
image is set to `baseline`. Every pixel gets the mean drop over the patches that cover it:

    map[n, :, i, j] = mean over patches P containing (i, j) of  S_c(x_n) - S_c(x_n with P hidden)

No gradients: only forward passes, batch_size occluded images at a time. On a linear model
S = w.x + b with baseline 0 and patch=1 it equals gradient x input.
"""
import numbers

import numpy as np

from .. import parallel
from ._checks import check_count, check_target_range
from ._common import evaluation_mode, prepare


def patch_starts(size, patch, stride):
    """Top (or left) edges of the patches along one axis; the last patch touches the far edge."""
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def occlusion(model, x, target=None, patch=4, stride=2, baseline=0.0, batch_size=None):
    """Occlusion map shaped like x (the same value in every channel of a pixel)."""
    patch, stride = check_count("patch", patch), check_count("stride", stride)
    if isinstance(baseline, bool) or not isinstance(baseline, numbers.Real) or not np.isfinite(baseline):
        raise ValueError(f"baseline: expected a finite number (the value of hidden pixels), got {baseline!r}")
    with evaluation_mode(model):
        x, target = prepare(model, x, target, batch_size)
        count, channels, height, width = x.shape
        if patch > min(height, width):
            raise ValueError(f"patch: expected at most the image size {min(height, width)}, got {patch}")
        corners = [(r, c) for r in patch_starts(height, patch, stride) for c in patch_starts(width, patch, stride)]
        hidden = np.repeat(x[:, None], len(corners), axis=1)            # (N, P, C, H, W)
        for p, (r, c) in enumerate(corners):
            hidden[:, p, :, r:r + patch, c:c + patch] = baseline
        rows = np.arange(count)
        clean_logits = parallel.logits(model, x, batch_size)
        clean = clean_logits[rows, check_target_range(target, clean_logits.shape[1])]
        occluded = parallel.logits(model, hidden.reshape((-1,) + x.shape[1:]), batch_size)
        occluded = occluded.reshape(count, len(corners), -1)                 # (N, P, classes)
        drop = clean[:, None] - np.take_along_axis(occluded, target[:, None, None], axis=2)[..., 0]
        total, covered = np.zeros((count, height, width)), np.zeros((height, width))
        for p, (r, c) in enumerate(corners):
            total[:, r:r + patch, c:c + patch] += drop[:, p, None, None]
            covered[r:r + patch, c:c + patch] += 1
        average = (total / covered).astype(x.dtype)
        return np.repeat(average[:, None], channels, axis=1)
