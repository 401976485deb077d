"""Models: the paper's MNIST CNN, the networks of the lessons, checkpoints and training.

- ``paper_cnn``   — ``mnist_cnn()``, the SmoothGrad paper's network;
- ``checkpoints`` — ``save``/``load`` (atomic, validated), the shipped models (``SHIPPED``);
  ``checkpoint_meta``: the meta fields minisg reads, checked at load (and before a save);
- ``cell_model``  — the digit network on wider images, one head per 7x7 cell (lessons 08, 11);
- ``scene_cnn``   — the multi-digit scene network, its training and scores;
- ``training``    — the training loop behind ``minisg train``; ``penalties``: input-gradient
  penalties (double backprop);
- ``graph``       — ``GraphModel``: a DAG of named nodes (branches, residuals), every tensor
  addressable by name;
- ``onnx_import`` — ONNX files (opsets 7-17) as GraphModels on minisg's own ops;
- ``networks``    — pretrained ImageNet CNNs by name: cards, checked download, labels, preprocess.

    from minisg import models
    model = models.load("mnist_cnn")          # a shipped name or a checkpoint path
    model = models.load("squeezenet1.1")      # a known network (downloaded once, checksummed)
    model = models.load("path/model.onnx")    # any ONNX file of supported ops
"""
from pathlib import Path

import numpy as np

from .. import files
from . import checkpoints, networks
from .checkpoints import (ARCHITECTURES, MODELS_DIR, OPTIM_PREFIX, SHIPPED, CheckpointError,
                          load_arrays, read_checkpoint, read_training_checkpoint, register_architecture,
                          resolve, save, save_arrays)
from .graph import GraphModel, Node
from .paper_cnn import mnist_cnn


def load(name_or_path, dtype=np.float32, device=None):
    """A model in eval mode from a shipped name, a checkpoint (.npz), a known network's name
    (networks.CARDS: 'squeezenet1.1', 'mobilenet_v2') or an ONNX file (.onnx).

    An ONNX file recognised as a known network (by sha256 or file name) gets its card
    (``model.card``); other GraphModels have card None. dtype: float32 or float64; device: None
    (where it is), 'cpu' or 'gpu': both checked before anything is read.
    """
    dtype, device = checkpoints.check_load_options(dtype, device)
    text = str(files.as_path(name_or_path, "name_or_path"))
    if text in networks.CARDS:
        return networks.load(text, dtype=dtype, device=device)
    if text.lower().endswith(".onnx"):
        from .onnx_import import load_onnx
        card = networks.card_for_file(text) if Path(text).is_file() else None
        return load_onnx(text, dtype=dtype, device=device, card=card)
    return checkpoints.load(name_or_path, dtype=dtype, device=device)
