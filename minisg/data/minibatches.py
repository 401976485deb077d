"""Shuffled mini-batches for one training epoch."""
import numpy as np

from ..checks import check_flags, check_generator, check_int


def batches(images, labels, batch_size, rng, shuffle=True, drop_last=False):
    """Yield (x, y) mini-batches covering one epoch, in an order drawn from `rng`.

    rng: a numpy.random.Generator seeded by the caller (unused when shuffle=False).
    drop_last: skip the final batch when it is smaller than batch_size.
    Arguments are checked at the call, not at the first next().
    """
    for name, array in (("images", images), ("labels", labels)):
        if not hasattr(array, "shape") or len(array.shape) < 1:
            raise TypeError(f"{name}: expected an array with one row per example, got {type(array).__name__}")
    if len(images) != len(labels):
        raise ValueError(f"labels: expected one label per image ({len(images)}), got {len(labels)}")
    if labels.dtype.kind not in "iuf":
        raise TypeError(f"labels: expected numeric labels (class indices, or multi-hot rows), got dtype {labels.dtype}")
    batch_size = check_int("batch_size", batch_size)
    check_flags(shuffle=shuffle, drop_last=drop_last)
    if shuffle:
        check_generator("rng", rng)
    order = rng.permutation(len(images)) if shuffle else np.arange(len(images))
    return _batch_generator(images, labels, int(batch_size), order, drop_last)


def _batch_generator(images, labels, batch_size, order, drop_last):
    for start in range(0, len(order), batch_size):
        chosen = order[start:start + batch_size]
        if drop_last and len(chosen) < batch_size:
            return
        yield images[chosen], labels[chosen]
