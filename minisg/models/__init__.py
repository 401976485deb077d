"""Models: the paper's MNIST CNN, the networks of the lessons, checkpoints and training.

- ``paper_cnn``   — ``mnist_cnn()``, the SmoothGrad paper's network;
- ``checkpoints`` — ``save``/``load`` (atomic, validated), the shipped models (``SHIPPED``);
- ``cell_model``  — the digit network on wider images, one head per 7x7 cell (lessons 08, 11);
- ``scene_cnn``   — the multi-digit scene network, its training and scores;
- ``training``    — the training loop behind ``minisg train``; ``penalties``: input-gradient
  penalties (double backprop).

    from minisg import models
    model = models.load("mnist_cnn")          # a shipped name or a checkpoint path
"""
from .checkpoints import (ARCHITECTURES, MODELS_DIR, OPTIM_PREFIX, SHIPPED, CheckpointError, load,
                          load_arrays, read_checkpoint, read_training_checkpoint, register_architecture,
                          resolve, save, save_arrays)
from .paper_cnn import mnist_cnn
