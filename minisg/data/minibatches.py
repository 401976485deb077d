"""Shuffled mini-batches for one training epoch."""
import numpy as np


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
        raise ValueError(f"images and labels differ in length: {len(images)} vs {len(labels)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size: expected an int >= 1, got {batch_size!r}")
    for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name}: expected True or False, got {flag!r}")
    if shuffle and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator (np.random.default_rng(seed)), got "
                        f"{type(rng).__name__}")
    order = rng.permutation(len(images)) if shuffle else np.arange(len(images))
    return _batch_generator(images, labels, int(batch_size), order, drop_last)


def _batch_generator(images, labels, batch_size, order, drop_last):
    for start in range(0, len(order), batch_size):
        chosen = order[start:start + batch_size]
        if drop_last and len(chosen) < batch_size:
            return
        yield images[chosen], labels[chosen]
