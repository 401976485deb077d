"""Small float64 networks shared by the method tests (fast, and exact enough for 1e-12 checks)."""
import numpy as np

from minisg import nn


def tiny_cnn(seed=0, bias=True, dtype=np.float64, dropout=None):
    """1x8x8 -> conv 3 -> relu1 -> pool -> conv 4 -> relu2 (4x4x4) -> pool -> fc 6 -> relu3 -> fc 3."""
    common = dict(rng=np.random.default_rng(seed), dtype=dtype, bias=bias)
    head = [("dropout", nn.Dropout(dropout))] if dropout is not None else []
    return nn.Sequential(
        ("conv1", nn.Conv2d(1, 3, 3, padding=1, **common)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(3, 4, 3, padding=1, **common)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()), ("fc1", nn.Linear(16, 6, **common)), ("relu3", nn.ReLU()),
        *head, ("fc2", nn.Linear(6, 3, **common)))


def linear_head_model(seed=0):
    """conv + relu1 (the layer, 4 x 6 x 6), then a head linear in A: S = sum V A + b."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(("conv1", nn.Conv2d(1, 4, 3, padding=1, rng=rng, dtype=np.float64)), ("relu1", nn.ReLU()),
                         ("flatten", nn.Flatten()), ("fc", nn.Linear(4 * 36, 3, rng=rng, dtype=np.float64)))
