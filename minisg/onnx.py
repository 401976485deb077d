"""ONNX files as minisg models: ``minisg.onnx.load(path)`` (the same as ``minisg.models.load(path)``).

The ``onnx`` package parses the file (``pip install "minisg[onnx]"``); minisg's own ops run it.
See minisg/models/onnx_import.py for what is supported.
"""
from .models.onnx_import import OPSETS, OnnxImportError, from_proto, load_onnx
from .models.graph import SUPPORTED_OPS

load = load_onnx

__all__ = ["load", "load_onnx", "from_proto", "OnnxImportError", "SUPPORTED_OPS", "OPSETS"]
