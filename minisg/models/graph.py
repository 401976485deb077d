"""A model that is a graph of named tensors: what an ONNX file holds, run by minisg's own ops.

A ``Sequential`` passes one tensor from layer to layer. Real CNNs branch and merge (SqueezeNet's
fire modules concatenate two convolutions, MobileNetV2 adds residuals), so a ``GraphModel`` is
a list of ``Node``s instead: each reads tensors by name and writes tensors under new names::

    Node("Conv", inputs=("data", "conv1_w", "conv1_b"), outputs=("conv1",),
         attributes={"strides": (2, 2), "pads": (0, 0, 0, 0), "groups": 1})

Weights are named tensors too (``nn.Parameter``s, so ``parameters()``, ``state_dict()``,
``astype`` and ``to`` work as for any Module). Op types and input orders are ONNX's; the
attributes are already in the form the op needs (minisg/models/onnx_import.py translates them).

Every tensor a node computes keeps its name, so a sensitivity-map method can look inside:

    scores, taps = model.run_with_taps(x, ["conv10_2"])     # one forward pass
    dS_dA = minisg.autograd.grad(scores[0, 285], taps["conv10_2"])
"""
import math
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from .. import backend, nn
from .. import functional as F
from ..autograd import FLOAT_DTYPES, Tensor, as_tensor, is_grad_enabled


@dataclass(frozen=True, eq=False)  # eq=False: two nodes are the same node only if they are one object
class Node:
    """One operation: ``outputs = op_type(*inputs, **attributes)``; inputs and outputs are tensor names."""
    op_type: str
    inputs: tuple
    outputs: tuple
    attributes: dict = field(default_factory=dict)
    name: str = ""

    def describe(self):
        """How an error message names this node (ONNX node names may be empty)."""
        label = f" {self.name!r}" if self.name else ""
        return f"{self.op_type} node{label} (output {self.outputs[0]!r})"


class GraphError(ValueError):
    """A graph that cannot run: an unknown op, a tensor used before it is computed, a cycle."""


# ---------------------------------------------------------------------------- padding helpers

def _same_pads(input_hw, kernel_hw, strides, upper):
    """(top, left, bottom, right) of TensorFlow's SAME padding: output size = ceil(input / stride).

    The total padding of an axis is split in two; SAME_UPPER puts the odd pixel at the end
    (bottom/right), SAME_LOWER at the beginning.
    """
    begin, end = [], []
    for size, kernel, stride in zip(input_hw, kernel_hw, strides):
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        small, large = total // 2, total - total // 2
        begin.append(small if upper else large)
        end.append(large if upper else small)
    return (begin[0], begin[1], end[0], end[1])


def _resolve_pads(pads, x, kernel_hw, strides):
    """pads is a 4-tuple (top, left, bottom, right), or 'SAME_UPPER'/'SAME_LOWER' (depends on x's size)."""
    if isinstance(pads, str):
        return _same_pads(x.shape[2:], kernel_hw, strides, upper=pads == "SAME_UPPER")
    return tuple(pads)


# ---------------------------------------------------------------------------- the ops
# Padding goes to F as ONNX gives it, (top, left, bottom, right): TensorFlow's SAME is uneven.

def _conv(x, weight, bias=None, *, strides, pads, groups):
    pads = _resolve_pads(pads, x, weight.shape[2:], strides)
    return F.conv2d(x, weight, bias, stride=strides, padding=pads, groups=groups)


def _max_pool(x, *, kernel_shape, strides, pads, ceil_mode):
    pads = _resolve_pads(pads, x, kernel_shape, strides)
    return F.max_pool2d(x, kernel_shape, strides, padding=pads, ceil_mode=ceil_mode)


def _average_pool(x, *, kernel_shape, strides, pads, ceil_mode, count_include_pad):
    pads = _resolve_pads(pads, x, kernel_shape, strides)
    return F.avg_pool2d(x, kernel_shape, strides, padding=pads, ceil_mode=ceil_mode,
                        count_include_pad=count_include_pad)


def _gemm(a, b, c=None, *, alpha, beta, trans_a, trans_b):
    """alpha * A' B' + beta * C, where A' is A or A transposed (and B' likewise)."""
    y = F.matmul(F.transpose(a) if trans_a else a, F.transpose(b) if trans_b else b)
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        y = y + (c if beta == 1.0 else c * beta)
    return y


def _batch_norm(x, scale, bias, mean, var, *, epsilon):
    # ONNX's input order is (X, scale, B, mean, var); F.batch_norm's is (x, mean, var, weight, bias)
    return F.batch_norm(x, mean, var, scale, bias, epsilon)


def _reshape(x, *, shape):
    """ONNX Reshape: 0 keeps the input's size on that axis, -1 is inferred."""
    target = [x.shape[axis] if size == 0 else size for axis, size in enumerate(shape)]
    return F.reshape(x, tuple(target))


def _flatten(x, *, axis):
    """ONNX Flatten: always 2-D, (prod of the axes before `axis`, prod of the rest)."""
    axis = axis % x.ndim if axis < 0 else axis
    return F.reshape(x, (int(np.prod(x.shape[:axis], dtype=np.int64)), -1))


def _softmax(x, *, axis, coerce_2d):
    """Softmax along `axis`; before opset 13, ONNX flattened the axes from `axis` on into one."""
    if not coerce_2d:
        return F.softmax(x, axis=axis)
    axis = axis % x.ndim
    flat = _flatten(x, axis=axis)
    return F.reshape(F.softmax(flat, axis=1), x.shape)


def _identity(x):
    return x


OPS = {
    "Add": F.add,
    "AveragePool": _average_pool,
    "BatchNormalization": _batch_norm,
    "Clip": lambda x, *, min, max: F.clip(x, min=min, max=max),  # noqa: A002 (ONNX's names)
    "Concat": lambda *xs, axis: F.concat(list(xs), axis),
    "Conv": _conv,
    "Dropout": _identity,  # inference: dropout does nothing
    "Flatten": _flatten,
    "Gemm": _gemm,
    "GlobalAveragePool": lambda x: F.global_avg_pool2d(x),
    "Identity": _identity,
    "LeakyRelu": lambda x, *, alpha: F.leaky_relu(x, alpha),
    "MatMul": F.matmul,
    "MaxPool": _max_pool,
    "Mul": F.mul,
    "Pad": lambda x, *, pad_width, value: F.pad(x, pad_width, value=value),
    "Relu": lambda x: F.relu(x),
    "Reshape": _reshape,
    "Sigmoid": lambda x: F.sigmoid(x),
    "Softmax": _softmax,
    "Sub": F.sub,
}
SUPPORTED_OPS = tuple(sorted(OPS))


def run_node(node, inputs):
    """The node's output tensors (a tuple) from its input tensors."""
    result = OPS[node.op_type](*inputs, **node.attributes)
    return result if isinstance(result, tuple) else (result,)


# ---------------------------------------------------------------------------- graph checks

def unsupported_op_error(op_type, where, supported=SUPPORTED_OPS):
    return GraphError(f"{where}: op {op_type!r} is not supported by minisg; supported ops: "
                      f"{', '.join(sorted(supported))}")


def topological_order(nodes, available):
    """The nodes ordered so that each runs after the nodes computing its inputs.

    available: the names known before any node runs (the input and the weights). A node whose
    input is never computed, or a cycle, is a GraphError naming the node.
    """
    known, ordered, waiting = set(available), [], list(nodes)
    while waiting:  # one pass when the nodes come sorted, as in ONNX files
        still_waiting = []
        for node in waiting:
            if all(name in known for name in node.inputs):
                ordered.append(node)
                known.update(node.outputs)
            else:
                still_waiting.append(node)
        if len(still_waiting) == len(waiting):
            node = waiting[0]
            missing = [name for name in node.inputs if name not in known]
            raise GraphError(f"{node.describe()}: input {missing[0]!r} is computed by no node "
                             f"(or the graph has a cycle)")
        waiting = still_waiting
    return ordered


def _free_after(nodes, keep):
    """For node i, the tensors that no later node reads: the forward pass drops them after node i
    (the autograd graph still holds those a backward pass needs)."""
    last_use = {}
    for position, node in enumerate(nodes):
        for name in node.inputs:
            last_use[name] = position
    free = [[] for _ in nodes]
    produced = {name for node in nodes for name in node.outputs}
    for name, position in last_use.items():
        if name in produced and name not in keep:
            free[position].append(name)
    return free


# ---------------------------------------------------------------------------- the model

# Ops that turn a feature map into a vector; the CAM layer is the map that reaches the first of them.
_TO_VECTOR = ("GlobalAveragePool", "Flatten", "Reshape", "Gemm", "MatMul")
# Ops between the last activation and that vector which leave the activation's meaning alone.
_PASS_THROUGH = ("AveragePool", "MaxPool", "Dropout", "Identity")


def _as_tap(tensor):
    """A tapped tensor that no gradient reaches (frozen weights, an input without requires_grad:
    every sensitivity method's case) becomes a leaf that requires grad, so that the nodes after
    it are recorded and grad(score, tap) exists: as if the model were split there."""
    if tensor.requires_grad or not is_grad_enabled() or tensor.dtype not in FLOAT_DTYPES:
        return tensor
    return Tensor(tensor.data, requires_grad=True)


class GraphModel(nn.Module):
    """A DAG of named nodes run in topological order; see the module docstring.

    nodes         Node list (any order; sorted here)
    weights       {name: array}: become float Parameters of `dtype`
    input_name    the name of the one input tensor; output_name: the tensor the model returns
    input_shape   e.g. (3, 224, 224), without the batch axis, None on an axis of any size; None if
                  unknown. Checked at every forward pass
    card          the network card (minisg.models.networks) or None; its input_range (the values
                  of a preprocessed photo) becomes the model's
    squeeze_output  return an output of shape (N, C, 1, 1) as (N, C) (class scores)
    """

    def __init__(self, nodes, weights, input_name, output_name, input_shape=None, card=None,
                 dtype=np.float32, squeeze_output=True):
        super().__init__()
        xp = backend.default_xp()
        self.weights = OrderedDict((name, nn.Parameter(xp.asarray(np.asarray(value).astype(dtype))))
                                   for name, value in weights.items())
        self.input_name, self.output_name = input_name, output_name
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.card, self.squeeze_output, self.meta = card, squeeze_output, {}
        self.input_range = card.input_range if card is not None else None
        for node in nodes:
            if node.op_type not in OPS:
                raise unsupported_op_error(node.op_type, node.describe())
        self.nodes = topological_order(nodes, [input_name, *self.weights])
        self._tensor_names = [name for node in self.nodes for name in node.outputs]
        if output_name not in self._tensor_names:
            raise GraphError(f"output_name {output_name!r} is computed by no node")
        self._free = _free_after(self.nodes, keep={output_name})

    # ---- Module protocol: the weights are the parameters
    def named_parameters(self, prefix=""):
        for name, parameter in self.weights.items():
            yield prefix + name, parameter

    @property
    def tensor_names(self):
        """Every tensor a node computes, in execution order: the names run_with_taps accepts."""
        return list(self._tensor_names)

    @property
    def dtype(self):
        return next(iter(self.weights.values())).dtype if self.weights else np.dtype(np.float32)

    # ---- running
    def forward(self, x):
        output, _ = self.run_with_taps(x, [])
        return output

    def run_with_taps(self, x, names):
        """(output, {name: tensor}) from one forward pass; the tapped tensors stay in the autograd
        graph, so grad(score, taps[name]) is the score's gradient with respect to that activation."""
        names = [names] if isinstance(names, str) else list(dict.fromkeys(names))
        self._check_tap_names(names)
        values = self._run(self._checked_input(x), keep=set(names))
        return self._as_scores(values[self.output_name]), {name: values[name] for name in names}

    def _run(self, x, keep):
        values = {self.input_name: x, **self.weights}
        for node, free in zip(self.nodes, self._free):
            outputs = run_node(node, [values[name] for name in node.inputs])
            for name, output in zip(node.outputs, outputs):
                values[name] = _as_tap(output) if name in keep else output
            for name in free:
                if name not in keep:
                    del values[name]
        return values

    def _checked_input(self, x):
        if not isinstance(x, Tensor):  # an array: take the model's dtype and device
            xp = next(iter(self.weights.values())).xp if self.weights else backend.default_xp()
            x = as_tensor(xp.asarray(x, dtype=self.dtype))
        expected = self.input_shape
        if expected is not None and (x.ndim != len(expected) + 1 or any(
                size is not None and size != actual for size, actual in zip(expected, x.shape[1:]))):
            shown = ", ".join("any" if s is None else str(s) for s in expected)
            raise ValueError(f"x: expected shape (N, {shown}), got {x.shape}")
        if x.dtype != self.dtype:
            raise TypeError(f"x: dtype {x.dtype} but the model's weights are {self.dtype}; cast the input "
                            f"with x.astype(...) or the model with model.astype(...)")
        return x

    def _as_scores(self, y):
        if self.squeeze_output and y.ndim > 2 and all(size == 1 for size in y.shape[2:]):
            return F.reshape(y, (y.shape[0], -1))
        return y

    def _check_tap_names(self, names):
        known = set(self._tensor_names)
        for name in names:
            if name not in known:
                some = ", ".join(self._tensor_names[:3] + ["..."] + self._tensor_names[-3:])
                raise ValueError(f"layer: unknown layer {name!r}; valid layer names include {some} "
                                 f"({len(known)} in all: model.tensor_names)")

    # ---- facts about the graph
    @property
    def default_cam_layer(self):
        """The last 4-D activation before global pooling: the input of the first op that turns the
        feature maps into a vector, followed back through pooling and dropout. None if no such op."""
        producers = {name: node for node in self.nodes for name in node.outputs}
        for node in self.nodes:
            if node.op_type in _TO_VECTOR:
                name = node.inputs[0]
                while name in producers and producers[name].op_type in _PASS_THROUGH:
                    name = producers[name].inputs[0]
                return name if name in producers else None
        return None

    def producer(self, name):
        """The node that computes tensor `name`."""
        for node in self.nodes:
            if name in node.outputs:
                return node
        raise KeyError(f"no node computes {name!r}")

    def __repr__(self):
        count = sum(p.size for p in self.parameters())
        title = self.card.name if self.card is not None else "graph"
        return (f"GraphModel({title!r}: {len(self.nodes)} nodes, {count / 1e6:.2f} M parameters, "
                f"input {self.input_shape}, output {self.output_name!r}, "
                f"default_cam_layer {self.default_cam_layer!r})")
