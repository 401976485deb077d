"""Read an ONNX file into a GraphModel that runs on minisg's own ops (no onnxruntime, no torch).

The ``onnx`` package only parses the file (``pip install "minisg[onnx]"``). What the import does:

1. every initializer and Constant node becomes a named NumPy array (float16 is widened);
2. the model's input is the one graph input that is not an initializer (files written by old
   exporters list every weight as an input too);
3. a trailing Softmax is dropped, so that the model returns class scores (a sensitivity map
   differentiates the pre-softmax score; a probability saturates);
4. each node is translated into a ``graph.Node``: defaults filled in, the differences between
   opsets 7 to 17 resolved (Clip's bounds and Pad's pads were attributes before opset 11 and
   are inputs after; Softmax's axis changed in 13; ...), and the constant inputs that only set
   a shape or a bound (Reshape's shape, Clip's min) folded into attributes;
5. a node whose inputs are all constants is computed once here, not at every forward pass;
6. the float constants that the remaining nodes read become the model's Parameters.
"""
import numpy as np

from .. import files, no_grad
from ..autograd import Tensor
from .checkpoints import check_load_options
from .graph import SUPPORTED_OPS, GraphModel, Node, run_node, unsupported_op_error

OPSETS = (7, 17)  # the default-domain opset versions this importer knows
FLOAT_MAX = 3.0e38  # a Clip bound beyond this is the exporter's "no bound" (FLT_MAX)
# Ops that only rearrange values: a Softmax followed by these still ends the network.
_RESHAPE_LIKE = ("Reshape", "Flatten", "Identity", "Dropout")


class OnnxImportError(ValueError):
    """An ONNX file that minisg cannot run: the message names the node, op or attribute."""


def require_onnx():
    """The onnx package, or an ImportError saying how to install it."""
    try:
        import onnx
    except ImportError as exc:
        raise ImportError('reading ONNX files needs the onnx package: pip install "minisg[onnx]"') from exc
    return onnx


def load_onnx(path, dtype=np.float32, device=None, card=None):
    """A GraphModel (eval mode) from the ONNX file at `path`.

    dtype:  the Parameters' dtype (float16 weights are widened to it); device: 'cpu' or 'gpu';
    card:   the network card to attach (minisg.models.networks), or None.
    """
    dtype, device = check_load_options(dtype, device)
    onnx = require_onnx()
    path = files.as_path(path)
    reason = files.unreadable_reason(path)
    if reason:
        error = FileNotFoundError if reason == "does not exist" else OnnxImportError
        raise error(f"path {str(path)!r}: no such ONNX file ({reason})")
    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # protobuf's DecodeError and friends: the file is not ONNX
        raise OnnxImportError(f"path {str(path)!r}: not a readable ONNX file ({exc})") from exc
    if not proto.graph.node:             # an empty file parses as an empty ModelProto
        raise OnnxImportError(f"path {str(path)!r}: not a readable ONNX file (it holds no graph"
                              f"{': the file is empty' if path.stat().st_size == 0 else ''})")
    model = from_proto(proto, dtype=dtype, card=card)
    model.meta["source"] = str(path)
    if device is not None:
        model.to(device)
    return model.eval()


def from_proto(proto, dtype=np.float32, card=None):
    """A GraphModel from an in-memory onnx.ModelProto (what load_onnx reads from a file)."""
    graph = _OnnxGraph(proto)
    output_name, dropped = graph.scores_output()
    nodes = [graph.translate(node) for node in graph.nodes_needed_for(output_name)]
    nodes = [node for node in nodes if not graph.fold_if_constant(node)]
    weights = graph.weights_read_by(nodes)
    model = GraphModel(nodes, weights, graph.input_name(), output_name, input_shape=graph.input_shape(),
                       card=card, dtype=dtype)
    model.meta.update(opset=graph.opset, producer=f"{proto.producer_name} {proto.producer_version}".strip(),
                      dropped_softmax=dropped)
    return model


class _OnnxGraph:
    """The parsed graph: its constants, the node computing each tensor, the tensors each reads."""

    def __init__(self, proto):
        self.onnx = require_onnx()
        self.graph = proto.graph
        self.nodes = list(self.graph.node)  # one Python object per node, so that identity can mark them
        self.opset = _default_opset(proto)
        self.constants = {init.name: self._array(init) for init in self.graph.initializer}
        self.producers, self.readers = {}, {}
        for node in self.nodes:
            for name in node.output:
                self.producers[name] = node
            for name in node.input:
                self.readers.setdefault(name, []).append(node)
            if node.op_type == "Constant":
                self.constants[node.output[0]] = self._constant_value(node)

    # ---- values
    def _array(self, tensor_proto):
        array = self.onnx.numpy_helper.to_array(tensor_proto)
        return array.astype(np.float32) if array.dtype == np.float16 else array

    def _constant_value(self, node):
        attributes = self.attributes(node)
        for key, convert in (("value", self._array), ("value_float", np.float32), ("value_floats", np.float32),
                             ("value_int", np.int64), ("value_ints", np.int64)):
            if key in attributes:
                return np.asarray(convert(attributes[key]))
        raise OnnxImportError(f"{describe(node)}: a Constant needs one of value, value_float(s), value_int(s); "
                              f"got {sorted(attributes)}")

    def attributes(self, node):
        values = {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}
        return {key: value.decode() if isinstance(value, bytes) else value for key, value in values.items()}

    def constant(self, node, position, what):
        """The constant array at input `position` of `node`, or None if that optional input is absent."""
        if position >= len(node.input) or node.input[position] == "":
            return None
        name = node.input[position]
        if name not in self.constants:
            raise OnnxImportError(f"{describe(node)}: input {position} ({what}) {name!r} must be a constant "
                                  f"(an initializer or a Constant node); minisg runs graphs of fixed shapes")
        return self.constants[name]

    # ---- the model's input and output
    def input_name(self):
        inputs = [value.name for value in self.graph.input if value.name not in self.constants]
        if len(inputs) != 1:
            raise OnnxImportError(f"the graph must have one input that is not an initializer, got {inputs}")
        return inputs[0]

    def input_shape(self):
        """The input's shape without the batch axis, e.g. (3, 224, 224), None on an axis whose size
        is not fixed (a named or missing dimension); None when the file declares no shape."""
        value = next(v for v in self.graph.input if v.name == self.input_name())
        tensor_type = value.type.tensor_type
        if not tensor_type.HasField("shape") or len(tensor_type.shape.dim) < 2:
            return None
        return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                     for d in tensor_type.shape.dim[1:])

    def scores_output(self):
        """(name of the tensor the model returns, name of the dropped Softmax output or None)."""
        if len(self.graph.output) != 1:
            raise OnnxImportError(f"the graph must have one output, got {[v.name for v in self.graph.output]}")
        name = self.graph.output[0].name
        node = self.producers.get(name)
        while node is not None and node.op_type in _RESHAPE_LIKE:
            node = self.producers.get(node.input[0])
        if node is not None and node.op_type == "Softmax":
            return node.input[0], node.output[0]
        return name, None

    def nodes_needed_for(self, output_name):
        """The nodes that `output_name` depends on, in file order (ONNX files are topologically sorted)."""
        needed, todo = set(), [output_name]
        while todo:
            node = self.producers.get(todo.pop())
            if node is not None and id(node) not in needed:
                needed.add(id(node))
                todo.extend(name for name in node.input if name)
        return [node for node in self.nodes if id(node) in needed and node.op_type != "Constant"]

    # ---- translation
    def translate(self, node):
        if node.domain not in ("", "ai.onnx") or node.op_type not in _TRANSLATORS:
            where = describe(node) + (f" (domain {node.domain!r})" if node.domain not in ("", "ai.onnx") else "")
            raise unsupported_op_error(node.op_type, where, supported=(*SUPPORTED_OPS, "Constant"))
        inputs, attributes, outputs = _TRANSLATORS[node.op_type](node, self)
        return Node(node.op_type, tuple(inputs), tuple(outputs), attributes, node.name)

    def only_first_output(self, node, why):
        """[first output]; the node's other outputs (a mask, running statistics) must be unused."""
        for name in node.output[1:]:
            if name and (name in self.readers or name in (v.name for v in self.graph.output)):
                raise OnnxImportError(f"{describe(node)}: its output {name!r} is used, but {why}")
        return [node.output[0]]

    def fold_if_constant(self, node):
        """Compute a node whose inputs are all constants now; True if it was folded."""
        if not all(name in self.constants for name in node.inputs):
            return False
        with no_grad():
            outputs = run_node(node, [Tensor(self.constants[name]) for name in node.inputs])
        for name, value in zip(node.outputs, outputs):
            self.constants[name] = value.numpy()
        return True

    def weights_read_by(self, nodes):
        weights = {}
        for node in nodes:
            for name in node.inputs:
                if name in self.constants:
                    value = self.constants[name]
                    if value.dtype.kind != "f":
                        raise OnnxImportError(f"{node.describe()}: input {name!r} is an integer constant "
                                              f"(dtype {value.dtype}); minisg's ops take float tensors there")
                    weights[name] = value
        return weights


def _default_opset(proto):
    versions = [entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")]
    opset = versions[0] if versions else None
    if opset is None or not OPSETS[0] <= opset <= OPSETS[1]:
        raise OnnxImportError(f"ONNX opset {opset}: minisg reads opsets {OPSETS[0]} to {OPSETS[1]}; "
                              f"convert the file with onnx.version_converter")
    return opset


def describe(node):
    label = f" {node.name!r}" if node.name else ""
    return f"{node.op_type} node{label} (output {node.output[0]!r})"


# ---------------------------------------------------------------------------- attribute helpers

def _pair(values, node, what):
    values = tuple(int(v) for v in values)
    if len(values) != 2:
        raise OnnxImportError(f"{describe(node)}: {what} {list(values)}: minisg runs 2-D images "
                              f"(N, C, H, W) only, expected 2 values")
    return values


def _no_dilation(node, attributes):
    dilations = tuple(attributes.get("dilations", (1, 1)))
    if any(d != 1 for d in dilations):
        raise OnnxImportError(f"{describe(node)}: dilations {list(dilations)} are not supported, expected all 1")


def _pads(node, attributes):
    """(top, left, bottom, right), or 'SAME_UPPER'/'SAME_LOWER' (computed from the input's size)."""
    auto_pad = attributes.get("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return auto_pad
    if auto_pad == "VALID":
        return (0, 0, 0, 0)
    if auto_pad != "NOTSET":
        raise OnnxImportError(f"{describe(node)}: auto_pad {auto_pad!r} is not supported, expected NOTSET, "
                              f"VALID, SAME_UPPER or SAME_LOWER")
    pads = tuple(int(p) for p in attributes.get("pads", (0, 0, 0, 0)))
    if len(pads) != 4:
        raise OnnxImportError(f"{describe(node)}: pads {list(pads)}: expected 4 values (top, left, bottom, right)")
    return pads


def _present(node, count):
    """The names of the first `count` inputs that are given (optional inputs may be '' or missing)."""
    return [name for name in node.input[:count] if name]


# ---------------------------------------------------------------------------- one translator per op
# Each returns (input names, attributes, output names) of the minisg Node.

def _conv(node, graph):
    attributes = graph.attributes(node)
    _no_dilation(node, attributes)
    if "kernel_shape" in attributes:
        _pair(attributes["kernel_shape"], node, "kernel_shape")
    return (_present(node, 3), {"strides": _pair(attributes.get("strides", (1, 1)), node, "strides"),
                                "pads": _pads(node, attributes), "groups": int(attributes.get("group", 1))},
            node.output[:1])


def _pool_attributes(node, graph):
    attributes = graph.attributes(node)
    _no_dilation(node, attributes)
    return attributes, {"kernel_shape": _pair(attributes["kernel_shape"], node, "kernel_shape"),
                        "strides": _pair(attributes.get("strides", (1, 1)), node, "strides"),
                        "pads": _pads(node, attributes), "ceil_mode": bool(attributes.get("ceil_mode", 0))}


def _max_pool(node, graph):
    _, pool = _pool_attributes(node, graph)
    outputs = graph.only_first_output(node, "minisg's MaxPool does not return the argmax indices")
    return node.input[:1], pool, outputs


def _average_pool(node, graph):
    attributes, pool = _pool_attributes(node, graph)
    pool["count_include_pad"] = bool(attributes.get("count_include_pad", 0))
    return node.input[:1], pool, node.output[:1]


def _clip(node, graph):
    if graph.opset < 11:  # bounds are attributes
        attributes = graph.attributes(node)
        low, high = attributes.get("min"), attributes.get("max")
    else:  # bounds are optional inputs
        low, high = graph.constant(node, 1, "min"), graph.constant(node, 2, "max")
    return node.input[:1], {"min": _bound(low), "max": _bound(high)}, node.output[:1]


def _bound(value):
    """A Clip bound as a float, None for 'no bound'."""
    if value is None:
        return None
    value = float(np.asarray(value).reshape(()))
    return None if abs(value) >= FLOAT_MAX else value


def _pad(node, graph):
    attributes = graph.attributes(node)
    mode = attributes.get("mode", "constant")
    if mode != "constant":
        raise OnnxImportError(f"{describe(node)}: mode {mode!r} is not supported, expected 'constant'")
    if graph.opset < 11:
        pads, value = attributes.get("pads", attributes.get("paddings")), attributes.get("value", 0.0)
    else:
        pads, value = graph.constant(node, 1, "pads"), graph.constant(node, 2, "constant_value")
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    if any(p < 0 for p in pads):
        raise OnnxImportError(f"{describe(node)}: pads {pads}: negative pads (cropping) are not supported")
    half = len(pads) // 2  # ONNX lists all the begins, then all the ends
    pad_width = tuple((pads[axis], pads[axis + half]) for axis in range(half))
    value = 0.0 if value is None else float(np.asarray(value).reshape(()))
    return node.input[:1], {"pad_width": pad_width, "value": value}, node.output[:1]


def _reshape(node, graph):
    shape = [int(s) for s in graph.constant(node, 1, "shape")]
    if graph.attributes(node).get("allowzero", 0) and 0 in shape:
        raise OnnxImportError(f"{describe(node)}: shape {shape} with allowzero=1 makes an empty tensor; "
                              f"not supported")
    if len(shape) > 1 and shape[0] == 1 and node.input[0] not in graph.constants:
        # An exporter traced with one image writes the batch size as a literal 1; 0 (keep the
        # input's size) runs any batch.
        shape[0] = 0
    return node.input[:1], {"shape": tuple(shape)}, node.output[:1]


def _batch_norm(node, graph):
    attributes = graph.attributes(node)
    if attributes.get("training_mode", 0) or not attributes.get("spatial", 1):
        raise OnnxImportError(f"{describe(node)}: training_mode=1 and spatial=0 are not supported, "
                              f"expected an inference BatchNormalization over channels")
    outputs = graph.only_first_output(node, "minisg runs BatchNormalization in inference mode only")
    return _present(node, 5), {"epsilon": float(attributes.get("epsilon", 1e-5))}, outputs


def _softmax(node, graph):
    attributes = graph.attributes(node)
    old_style = graph.opset < 13  # before 13: axis 1 by default, and the axes from it on are flattened
    axis = int(attributes.get("axis", 1 if old_style else -1))
    return node.input[:1], {"axis": axis, "coerce_2d": old_style}, node.output[:1]


def _gemm(node, graph):
    attributes = graph.attributes(node)
    return _present(node, 3), {"alpha": float(attributes.get("alpha", 1.0)),
                               "beta": float(attributes.get("beta", 1.0)),
                               "trans_a": bool(attributes.get("transA", 0)),
                               "trans_b": bool(attributes.get("transB", 0))}, node.output[:1]


def _dropout(node, graph):
    return node.input[:1], {}, graph.only_first_output(node, "minisg's Dropout (identity) makes no mask")


def _with_attributes(defaults):
    """A translator for an op whose inputs pass through and whose attributes are `defaults` or given."""
    def translate(node, graph):
        given = graph.attributes(node)
        values = {key: type(default)(given.get(onnx_name, default)) for key, (onnx_name, default) in defaults.items()}
        return list(node.input), values, node.output[:1]
    return translate


_TRANSLATORS = {
    "Add": _with_attributes({}),
    "AveragePool": _average_pool,
    "BatchNormalization": _batch_norm,
    "Clip": _clip,
    "Concat": _with_attributes({"axis": ("axis", 0)}),
    "Conv": _conv,
    "Dropout": _dropout,
    "Flatten": _with_attributes({"axis": ("axis", 1)}),
    "Gemm": _gemm,
    "GlobalAveragePool": _with_attributes({}),
    "Identity": _with_attributes({}),
    "LeakyRelu": _with_attributes({"alpha": ("alpha", 0.01)}),
    "MatMul": _with_attributes({}),
    "MaxPool": _max_pool,
    "Mul": _with_attributes({}),
    "Pad": _pad,
    "Relu": _with_attributes({}),
    "Reshape": _reshape,
    "Sigmoid": _with_attributes({}),
    "Softmax": _softmax,
    "Sub": _with_attributes({}),
}
assert set(_TRANSLATORS) == set(SUPPORTED_OPS), "every op the graph runs needs a translator, and back"
