"""ONNX import: small graphs built with onnx.helper, and the two real ImageNet networks, against onnxruntime."""
import sys

import numpy as np
import pytest

import minisg
import minisg.onnx
from minisg import models
from minisg.models.graph import GraphError
from minisg.models.onnx_import import OnnxImportError, from_proto, load_onnx

from imagenet_files import photo, require

onnx = pytest.importorskip("onnx", reason="the ONNX import needs the onnx package (pip install 'minisg[onnx]')")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _ort():
    return pytest.importorskip("onnxruntime", reason="the comparisons need onnxruntime (the [test] extra)")


# ---------------------------------------------------------------------------- building small graphs

def _model(nodes, input_shape, weights=None, opset=13, output="y", initializers_as_inputs=False, fp16=False):
    """A ModelProto: input 'x' (float32, input_shape with any batch), output `output`, `weights` as
    initializers (float16 ones where fp16)."""
    arrays = {name: np.asarray(value) for name, value in (weights or {}).items()}
    if fp16:
        arrays = {name: a.astype(np.float16) if a.dtype.kind == "f" else a for name, a in arrays.items()}
    tensors = [numpy_helper.from_array(array, name) for name, array in arrays.items()]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *input_shape[1:]])]
    if initializers_as_inputs:  # as old exporters wrote: every weight is a graph input too
        inputs += [helper.make_tensor_value_info(t.name, t.data_type, t.dims) for t in tensors]
    graph = helper.make_graph(nodes, "test", inputs, [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
                              initializer=tensors)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    proto.ir_version = 3 if opset < 9 else 7 if opset < 15 else 8  # what onnxruntime expects of the opset
    return proto


def _ort_run(proto, x, names=(), one_by_one=True):
    """onnxruntime's output (and the named intermediate tensors) for input x, one image at a time
    (the real files fix the batch size at 1) unless the graph mixes the images of a batch."""
    ort = _ort()
    proto = _with_outputs(proto, names)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    batches = [x[i:i + 1] for i in range(len(x))] if one_by_one else [x]
    outputs = [session.run(None, {input_name: batch}) for batch in batches]
    results = [np.concatenate(parts) for parts in zip(*outputs)]
    return results[0], dict(zip(names, results[1:]))


def _with_outputs(proto, names):
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    for name in names:
        copy.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    return copy


def _ours(proto, x, dtype=np.float32):
    return from_proto(proto, dtype=dtype)(x.astype(dtype)).numpy()


def _rng(seed=0):
    return np.random.default_rng(seed)


def _conv_weights(rng, out, inp, k):
    return rng.normal(0, 0.3, size=(out, inp, k, k)).astype(np.float32), rng.normal(size=out).astype(np.float32)


# ---------------------------------------------------------------------------- ops against onnxruntime

def test_grouped_strided_conv_with_asymmetric_pads_matches_onnxruntime():
    rng = _rng(1)
    w, b = _conv_weights(rng, 6, 2, 3)  # 4 input channels in 2 groups
    w2, _ = _conv_weights(rng, 6, 1, 3)  # depthwise: one filter per channel
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], group=2, strides=[2, 2], pads=[0, 0, 1, 1],
                              kernel_shape=[3, 3], name="grouped"),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Conv", ["r", "w2"], ["y"], group=6, pads=[1, 2, 0, 1], name="depthwise")]
    proto = _model(nodes, [1, 4, 9, 8], {"w": w, "b": b, "w2": w2})
    x = rng.normal(size=(2, 4, 9, 8)).astype(np.float32)
    expected, _ = _ort_run(proto, x)
    np.testing.assert_allclose(_ours(proto, x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
def test_auto_pad_of_conv_and_max_pool_matches_onnxruntime(auto_pad):
    rng = _rng(2)
    w, b = _conv_weights(rng, 3, 2, 4)  # an even kernel: SAME pads unevenly
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], strides=[2, 2], auto_pad=auto_pad),
             helper.make_node("MaxPool", ["c"], ["y"], kernel_shape=[3, 2], strides=[2, 1], auto_pad=auto_pad)]
    proto = _model(nodes, [1, 2, 11, 10], {"w": w, "b": b}, opset=11)
    x = rng.normal(size=(1, 2, 11, 10)).astype(np.float32)
    expected, _ = _ort_run(proto, x)
    got = _ours(proto, x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("ceil_mode", [0, 1])
@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_pools_with_pads_and_ceil_mode_match_onnxruntime(ceil_mode, count_include_pad):
    nodes = [helper.make_node("MaxPool", ["x"], ["m"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 1],
                              ceil_mode=ceil_mode),
             helper.make_node("AveragePool", ["x"], ["a"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 1],
                              ceil_mode=ceil_mode, count_include_pad=count_include_pad),
             helper.make_node("Concat", ["m", "a"], ["y"], axis=1)]
    proto = _model(nodes, [1, 2, 8, 9], opset=11)
    x = _rng(3).normal(size=(2, 2, 8, 9)).astype(np.float32)
    expected, _ = _ort_run(proto, x)
    got = _ours(proto, x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_concat_flatten_gemm_and_elementwise_ops_match_onnxruntime():
    rng = _rng(4)
    w, b = _conv_weights(rng, 3, 3, 1)
    fc = rng.normal(size=(5, 6 * 16)).astype(np.float32)  # (out, in): used with transB=1
    weights = {"w": w, "b": b, "fc": fc, "fc_b": rng.normal(size=5).astype(np.float32),
               "shift": rng.normal(size=(1, 3, 1, 1)).astype(np.float32),
               "proj": rng.normal(size=(5, 4)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"]),
             helper.make_node("Sub", ["c", "shift"], ["s"]),
             helper.make_node("Sigmoid", ["s"], ["g"]),
             helper.make_node("Mul", ["x", "g"], ["gated"]),
             helper.make_node("LeakyRelu", ["c"], ["lr"], alpha=0.2),
             helper.make_node("Add", ["lr", "shift"], ["added"]),
             helper.make_node("Concat", ["gated", "added"], ["cat"], axis=1),
             helper.make_node("Identity", ["cat"], ["same"]),
             helper.make_node("Flatten", ["same"], ["flat"], axis=1),
             helper.make_node("Gemm", ["flat", "fc", "fc_b"], ["h"], transB=1, alpha=0.5, beta=2.0),
             helper.make_node("MatMul", ["h", "proj"], ["y"])]
    proto = _model(nodes, [1, 3, 4, 4], weights)
    x = rng.normal(size=(3, 3, 4, 4)).astype(np.float32)
    expected, _ = _ort_run(proto, x)
    np.testing.assert_allclose(_ours(proto, x), expected, rtol=1e-5, atol=1e-5)


def test_gemm_with_transposed_a_matches_onnxruntime():
    rng = _rng(5)
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "fc"], ["t"], transA=0, transB=0),
             helper.make_node("Gemm", ["t", "sq", "bias"], ["y"], transA=1, alpha=2.0)]
    weights = {"fc": rng.normal(size=(12, 4)).astype(np.float32), "sq": rng.normal(size=(3, 2)).astype(np.float32),
               "bias": rng.normal(size=(4, 2)).astype(np.float32)}
    proto = _model(nodes, [3, 3, 2, 2], weights, opset=11)
    x = rng.normal(size=(3, 3, 2, 2)).astype(np.float32)
    expected, _ = _ort_run(proto, x, one_by_one=False)  # transA: the batch axis is Gemm's K
    np.testing.assert_allclose(_ours(proto, x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("opset", [7, 9, 15])
def test_batch_normalization_matches_onnxruntime(opset):
    rng = _rng(6)
    stats = {"scale": rng.uniform(0.5, 2, 3), "bias": rng.normal(size=3), "mean": rng.normal(size=3),
             "var": rng.uniform(0.5, 2, 3)}
    node = helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y"], epsilon=1e-3)
    proto = _model([node], [1, 3, 4, 5], {k: v.astype(np.float32) for k, v in stats.items()}, opset=opset)
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    expected, _ = _ort_run(proto, x)
    np.testing.assert_allclose(_ours(proto, x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("opset", [7, 10, 11, 13])
def test_clip_bounds_as_attributes_before_opset_11_and_as_inputs_after(opset):
    if opset < 11:
        nodes = [helper.make_node("Clip", ["x"], ["c"], min=-0.5, max=0.7),
                 helper.make_node("Clip", ["c"], ["y"], min=0.0)]  # no max: unbounded above
        weights = {}
    else:
        nodes = [helper.make_node("Clip", ["x", "low", "high"], ["c"]),
                 helper.make_node("Clip", ["c", "zero", ""], ["y"])]
        weights = {"low": np.float32(-0.5), "high": np.float32(0.7), "zero": np.float32(0.0)}
    proto = _model(nodes, [1, 2, 3, 3], weights, opset=opset)
    x = _rng(7).normal(size=(1, 2, 3, 3)).astype(np.float32)
    expected, _ = _ort_run(proto, x)
    np.testing.assert_array_equal(_ours(proto, x), expected)
    assert expected.min() == 0.0 and expected.max() == pytest.approx(0.7)


@pytest.mark.parametrize("opset", [7, 13])
def test_pad_as_attribute_before_opset_11_and_as_input_after(opset):
    pads = [0, 0, 1, 2, 0, 0, 2, 0]  # begins of the 4 axes, then their ends
    if opset < 11:
        node = helper.make_node("Pad", ["x"], ["y"], pads=pads, value=1.5)
        weights = {}
    else:
        node = helper.make_node("Pad", ["x", "pads", "value"], ["y"])
        weights = {"pads": np.array(pads, dtype=np.int64), "value": np.array(1.5, dtype=np.float32)}
    proto = _model([node], [1, 2, 3, 3], weights, opset=opset)
    x = _rng(8).normal(size=(2, 2, 3, 3)).astype(np.float32)
    expected, _ = _ort_run(proto, x)
    assert expected.shape == (2, 2, 6, 5)
    np.testing.assert_array_equal(_ours(proto, x), expected)


def test_reshape_with_a_batch_of_one_written_in_the_file_runs_any_batch():
    rng = _rng(9)
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["flat"]),
             helper.make_node("Constant", [], ["shape2"], value=numpy_helper.from_array(np.array([1, 3, 8], np.int64))),
             helper.make_node("Reshape", ["flat", "shape2"], ["y"])]
    proto = _model(nodes, [1, 6, 2, 2], {"shape": np.array([1, -1], dtype=np.int64)})
    x = rng.normal(size=(4, 6, 2, 2)).astype(np.float32)
    got = _ours(proto, x)
    assert got.shape == (4, 3, 8)
    np.testing.assert_array_equal(got, x.reshape(4, 3, 8))
    one, _ = _ort_run(proto, x[:1])
    np.testing.assert_array_equal(got[:1], one)


def test_dropout_with_its_mask_output_unused_is_the_identity():
    nodes = [helper.make_node("Dropout", ["x"], ["d", "mask"], ratio=0.5), helper.make_node("Relu", ["d"], ["y"])]
    proto = _model(nodes, [1, 2, 2, 2], opset=10)
    x = _rng(10).normal(size=(1, 2, 2, 2)).astype(np.float32)
    np.testing.assert_array_equal(_ours(proto, x), np.maximum(x, 0))
    assert from_proto(proto).tensor_names == ["d", "y"]


@pytest.mark.parametrize("opset,after", [(7, None), (11, "Flatten"), (13, "Reshape")])
def test_a_trailing_softmax_is_dropped_and_the_scores_come_as_n_by_classes(opset, after):
    rng = _rng(11)
    w, b = _conv_weights(rng, 10, 3, 1)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"]),
             helper.make_node("GlobalAveragePool", ["c"], ["scores"]),
             helper.make_node("Softmax", ["scores"], ["prob" if after else "y"], axis=1)]
    weights = {"w": w, "b": b}
    if after == "Flatten":
        nodes.append(helper.make_node("Flatten", ["prob"], ["y"]))
    elif after == "Reshape":
        nodes.append(helper.make_node("Reshape", ["prob", "shape"], ["y"]))
        weights["shape"] = np.array([1, 10], dtype=np.int64)
    proto = _model(nodes, [1, 3, 5, 5], weights, opset=opset)
    x = rng.normal(size=(1, 3, 5, 5)).astype(np.float32)
    probabilities, taps = _ort_run(proto, x, ["scores"])
    model = from_proto(proto)
    scores = model(x).numpy()
    assert scores.shape == (1, 10) and model.output_name == "scores" and model.meta["dropped_softmax"]
    np.testing.assert_allclose(scores, taps["scores"].reshape(1, 10), rtol=1e-5, atol=1e-6)
    softmax = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(softmax, probabilities.reshape(1, 10), rtol=1e-5)


@pytest.mark.parametrize("opset", [7, 13])
def test_a_softmax_inside_the_network_follows_its_opset_rule(opset):
    """Before opset 13 Softmax(axis=1) normalises over all of C*H*W; from 13 over axis 1 alone."""
    nodes = [helper.make_node("Softmax", ["x"], ["s"], axis=1), helper.make_node("Relu", ["s"], ["y"])]
    proto = _model(nodes, [1, 2, 2, 3], opset=opset)
    x = _rng(12).normal(size=(2, 2, 2, 3)).astype(np.float32)
    expected, _ = _ort_run(proto, x)
    np.testing.assert_allclose(_ours(proto, x), expected, rtol=1e-5, atol=1e-7)


def test_old_style_initializers_listed_as_inputs_and_float16_weights():
    rng = _rng(13)
    w, b = _conv_weights(rng, 4, 3, 3)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"])]
    proto = _model(nodes, [1, 3, 5, 5], {"w": w, "b": b}, opset=7, initializers_as_inputs=True, fp16=True)
    model = from_proto(proto)
    assert model.input_name == "x" and model.input_shape == (3, 5, 5)
    assert all(p.dtype == np.float32 for p in model.parameters())
    np.testing.assert_array_equal(model.weights["w"].numpy(), w.astype(np.float16).astype(np.float32))
    assert from_proto(proto, dtype=np.float64).dtype == np.float64
    x = rng.normal(size=(2, 3, 5, 5)).astype(np.float32)
    plain = _model(nodes, [1, 3, 5, 5], {"w": w.astype(np.float16).astype(np.float32),
                                         "b": b.astype(np.float16).astype(np.float32)}, opset=7)
    expected, _ = _ort_run(plain, x)
    np.testing.assert_allclose(model(x).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_taps_equal_onnxruntime_intermediates_and_the_gradient_flows_in_float64():
    rng = _rng(14)
    w, b = _conv_weights(rng, 4, 2, 3)
    w2, b2 = _conv_weights(rng, 4, 1, 3)
    weights = {"w": w, "b": b, "w2": w2, "b2": b2, "lo": np.float32(0), "hi": np.float32(6),
               "fc": rng.normal(size=(3, 8)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c1"], strides=[2, 2], pads=[0, 0, 1, 1]),
             helper.make_node("Clip", ["c1", "lo", "hi"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], group=4, pads=[1, 1, 1, 1]),
             helper.make_node("Clip", ["c2", "lo", "hi"], ["r2"]),
             helper.make_node("Add", ["r1", "r2"], ["res"]),
             helper.make_node("MaxPool", ["res"], ["p"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
             helper.make_node("Concat", ["p", "p"], ["cat"], axis=1),
             helper.make_node("GlobalAveragePool", ["cat"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1)]
    proto = _model(nodes, [1, 2, 7, 7], weights, opset=13)
    x = rng.normal(size=(2, 2, 7, 7)).astype(np.float32)
    expected, inside = _ort_run(proto, x, ["r1", "res", "cat"])
    model = from_proto(proto)
    assert model.default_cam_layer == "cat"
    scores, taps = model.run_with_taps(x, ["r1", "res", "cat"])
    np.testing.assert_allclose(scores.numpy(), expected, rtol=1e-5, atol=1e-5)
    for name, value in inside.items():
        np.testing.assert_allclose(taps[name].numpy(), value, rtol=1e-5, atol=1e-5, err_msg=name)

    model64 = from_proto(proto, dtype=np.float64)
    x64 = minisg.tensor(x[:1].astype(np.float64), requires_grad=True)
    (gradient,) = minisg.grad(model64(x64)[0, 1], [x64])
    assert np.all(np.isfinite(gradient.numpy())) and np.abs(gradient.numpy()).max() > 1e-3
    assert minisg.gradcheck(lambda inp: model64(inp), [x[:1].astype(np.float64)])


# ---------------------------------------------------------------------------- errors

def _one_node_model(node, opset=13, shape=(1, 1, 4, 4), weights=None):
    return _model([node], list(shape), weights, opset=opset)


def test_an_unsupported_op_names_the_op_the_node_and_the_supported_list():
    proto = _one_node_model(helper.make_node("Tanh", ["x"], ["y"], name="squash"))
    with pytest.raises(GraphError, match=r"Tanh node 'squash' \(output 'y'\): op 'Tanh' is not supported by "
                                         r"minisg; supported ops: Add, AveragePool, .*Constant, .*Sub"):
        from_proto(proto)


@pytest.mark.parametrize("node,message", [
    (helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 2], name="p"),
     r"MaxPool node 'p' \(output 'y'\): dilations \[2, 2\] are not supported, expected all 1"),
    (helper.make_node("Pad", ["x", "pads"], ["y"], mode="reflect", name="pad"),
     r"Pad node 'pad' \(output 'y'\): mode 'reflect' is not supported, expected 'constant'"),
    (helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3, 3], name="c3"),
     r"Conv node 'c3' \(output 'y'\): kernel_shape \[3, 3, 3\]: minisg runs 2-D images"),
])
def test_unsupported_attributes_are_named(node, message):
    weights = {"pads": np.zeros(8, dtype=np.int64), "w": np.ones((1, 1, 3, 3), np.float32)}
    proto = _model([node], [1, 1, 4, 4], {name: weights[name] for name in node.input[1:]}, opset=13)
    with pytest.raises(OnnxImportError, match=message):
        from_proto(proto)


def test_an_unsupported_auto_pad_and_an_opset_out_of_range_are_named():
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="c")
    proto = _one_node_model(conv, weights={"w": np.ones((1, 1, 3, 3), np.float32)})
    proto.graph.node[0].attribute.append(helper.make_attribute("auto_pad", "SAME_ANYWHERE"))
    with pytest.raises(OnnxImportError, match=r"Conv node 'c' \(output 'y'\): auto_pad 'SAME_ANYWHERE' is not "
                                              r"supported, expected NOTSET, VALID, SAME_UPPER or SAME_LOWER"):
        from_proto(proto)
    proto = _one_node_model(helper.make_node("Relu", ["x"], ["y"]))
    proto.opset_import[0].version = 6
    with pytest.raises(OnnxImportError, match="ONNX opset 6: minisg reads opsets 7 to 17"):
        from_proto(proto)


def test_a_used_mask_output_is_refused_by_name():
    nodes = [helper.make_node("Dropout", ["x"], ["d", "mask"], name="drop"),
             helper.make_node("Cast", ["mask"], ["m"], to=TensorProto.FLOAT),
             helper.make_node("Add", ["d", "m"], ["y"])]
    proto = _model(nodes, [1, 1, 2, 2], opset=10)
    with pytest.raises(OnnxImportError, match=r"Dropout node 'drop' \(output 'd'\): its output 'mask' is used"):
        from_proto(proto)


def test_a_runtime_computed_clip_bound_is_refused_by_name():
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Clip", ["x", "r"], ["y"], name="clip")]
    proto = _model(nodes, [1, 1, 2, 2], opset=13)
    with pytest.raises(OnnxImportError, match=r"Clip node 'clip' .*input 1 \(min\) 'r' must be a constant"):
        from_proto(proto)


def test_without_the_onnx_package_the_error_says_what_to_install(monkeypatch, tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(_one_node_model(helper.make_node("Relu", ["x"], ["y"])), str(path))
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "minisg\[onnx\]"'):
        load_onnx(path)


def test_load_paths_models_load_and_minisg_onnx_agree(tmp_path):
    path = tmp_path / "relu.onnx"
    onnx.save(_one_node_model(helper.make_node("Relu", ["x"], ["y"])), str(path))
    x = np.array([[[[-1.0, 2.0], [3.0, -4.0]]]], dtype=np.float32)
    for model in (load_onnx(path), minisg.onnx.load(path), models.load(str(path)), models.load(path)):
        assert model.card is None and not model.training and model.meta["source"] == str(path)
        np.testing.assert_array_equal(model(np.tile(x, (1, 1, 2, 2))).numpy(), np.maximum(np.tile(x, (1, 1, 2, 2)), 0))
    with pytest.raises(FileNotFoundError, match="no such ONNX file"):
        load_onnx(tmp_path / "absent.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf at all \xff\xff")
    with pytest.raises(OnnxImportError, match="junk.onnx.*not a readable ONNX file"):
        load_onnx(tmp_path / "junk.onnx")


# ---------------------------------------------------------------------------- the real networks

def _float32_copy(proto):
    """The model with float16 weights and tensors widened to float32 (onnxruntime then computes in
    float32, as minisg does)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    for index, init in enumerate(copy.graph.initializer):
        if init.data_type == TensorProto.FLOAT16:
            copy.graph.initializer[index].CopyFrom(
                numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float32), init.name))
    for value in list(copy.graph.input) + list(copy.graph.output) + list(copy.graph.value_info):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT16:
            value.type.tensor_type.elem_type = TensorProto.FLOAT
    return copy


@pytest.fixture(scope="module")
def squeezenet():
    path = require("squeezenet1.1_fp16.onnx")
    return models.load(path), _float32_copy(onnx.load(str(path)))


@pytest.fixture(scope="module")
def mobilenet():
    path = require("mobilenet_v2_1.0_224.onnx")
    return models.load(path), onnx.load(str(path))


def _photos_batch(card, names):
    from minisg.models import networks
    return np.concatenate([networks.preprocess(card, photo(name)) for name in names])


PHOTOS = ["cat.png", "parrot.jpg", "hot_dog.jpg", "dragonfly.png"]


def _relative_error(ours, reference):
    return float(np.abs(ours - reference).max() / np.abs(reference).max())


def test_squeezenet_logits_and_taps_equal_onnxruntime(squeezenet):
    model, reference = squeezenet
    assert model.card.name == "squeezenet1.1" and model.input_shape == (3, 224, 224)
    assert model.output_name == "pool10_1" and model.meta["dropped_softmax"] == "softmaxout_1"
    assert model.default_cam_layer == "conv10_2"
    assert sum(p.size for p in model.parameters()) == pytest.approx(1.24e6, rel=0.01)
    x = _photos_batch(model.card, PHOTOS)
    expected, inside = _ort_run(reference, x, ["fire5/concat_1", "conv10_2"])
    scores, taps = model.run_with_taps(x, ["fire5/concat_1", "conv10_2"])
    assert scores.shape == (len(PHOTOS), 1000)
    assert _relative_error(scores.numpy(), inside["conv10_2"].mean(axis=(2, 3))) < 1e-4
    for name, value in inside.items():
        assert _relative_error(taps[name].numpy(), value) < 1e-4, name
    softmax = np.exp(scores.numpy() - scores.numpy().max(axis=1, keepdims=True))
    assert _relative_error(softmax / softmax.sum(axis=1, keepdims=True), expected.reshape(-1, 1000)) < 1e-4


def test_mobilenet_logits_and_taps_equal_onnxruntime(mobilenet):
    model, reference = mobilenet
    assert model.card.name == "mobilenet_v2" and model.input_shape == (3, 224, 224)
    assert model.default_cam_layer == "last_conv_relu6" and model.meta["dropped_softmax"] is None
    x = _photos_batch(model.card, PHOTOS[:2])
    expected, inside = _ort_run(reference, x, ["block4_add", "last_conv_relu6"])
    scores, taps = model.run_with_taps(x, ["block4_add", "last_conv_relu6"])
    assert scores.shape == (2, 1001)
    assert _relative_error(scores.numpy(), expected) < 1e-4
    for name, value in inside.items():
        assert _relative_error(taps[name].numpy(), value) < 1e-4, name


def test_a_batch_equals_one_image_at_a_time(squeezenet):
    model, _ = squeezenet
    x = _photos_batch(model.card, PHOTOS[:3])
    together = model(x).numpy()
    for i in range(len(x)):
        np.testing.assert_allclose(model(x[i:i + 1]).numpy(), together[i:i + 1], rtol=1e-5, atol=1e-4)


def test_the_class_score_gradient_reaches_the_photo_and_the_cam_layer(squeezenet):
    model, _ = squeezenet
    x = minisg.tensor(_photos_batch(model.card, ["cat.png"]), requires_grad=True)
    scores, taps = model.run_with_taps(x, [model.default_cam_layer])
    top = int(np.argmax(scores.numpy()[0]))
    d_input, d_cam = minisg.grad(scores[0, top], [x, taps[model.default_cam_layer]])
    for gradient in (d_input.numpy(), d_cam.numpy()):
        assert np.all(np.isfinite(gradient)) and np.abs(gradient).max() > 0
    # score = mean over the 13x13 map of relu(conv10)[top]: dS/dA is 1/169 on that map, 0 elsewhere
    np.testing.assert_allclose(d_cam.numpy()[0, top], 1 / 169, rtol=1e-6)
    assert np.abs(np.delete(d_cam.numpy()[0], top, axis=0)).max() == 0
