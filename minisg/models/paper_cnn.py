"""The SmoothGrad paper's MNIST network ("Deep MNIST for Experts"), minisg/methods/METHODS.md §1."""
import numpy as np

from .. import nn
from ..checks import check_int, check_probability

INPUT_SHAPE = (1, 28, 28)   # one grey MNIST digit: fc1 fixes the size
INPUT_RANGE = (0.0, 1.0)    # pixels / 255, as data.load_mnist gives them


def mnist_cnn(seed=0, dtype=np.float32, dropout=0.5):
    """"Deep MNIST for Experts" (minisg/methods/METHODS.md §1): 28x28x1 -> 10 logits, relu2 is 14x14x64.

    Weights ~ truncated normal (std 0.1, redrawn beyond 2 std), biases 0.1, as the tutorial.
    """
    check_int("seed", seed, low=0)
    check_probability("dropout", dropout)
    rng = np.random.default_rng(seed)
    init = ("truncated_normal", 0.1)
    common = dict(init=init, bias_init=0.1, rng=rng, dtype=dtype)
    model = nn.Sequential(
        ("conv1", nn.Conv2d(1, 32, 5, padding=2, **common)),
        ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(32, 64, 5, padding=2, **common)),
        ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(7 * 7 * 64, 1024, **common)),
        ("relu3", nn.ReLU()),
        ("dropout", nn.Dropout(dropout, seed=seed + 1)),
        ("fc2", nn.Linear(1024, 10, **common)),
    )
    model.default_cam_layer = "relu2"   # the last conv layer: CAM methods' default (METHODS.md §1)
    model.architecture = "mnist_cnn"    # the builder's name: checkpoints.save writes it to meta
    model.input_shape, model.input_range = INPUT_SHAPE, INPUT_RANGE
    return model
