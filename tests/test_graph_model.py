"""GraphModel: a DAG of named nodes run by minisg's ops; taps, the CAM layer, parameters (no ONNX needed)."""
import numpy as np
import pytest

import minisg
from minisg import nn
from minisg.models.graph import GraphError, GraphModel, Node, topological_order


def _branching_model(dtype=np.float64, seed=0):
    """x (2x6x6) -> conv a (3) | conv b (2, stride 1, pad 1) -> concat -> relu -> global pool -> gemm 4."""
    rng = np.random.default_rng(seed)
    weights = {"wa": rng.normal(size=(3, 2, 1, 1)), "wb": rng.normal(size=(2, 2, 3, 3)), "bb": rng.normal(size=2),
               "fc_w": rng.normal(size=(4, 5)), "fc_b": rng.normal(size=4)}
    conv = {"strides": (1, 1), "pads": (0, 0, 0, 0), "groups": 1}
    nodes = [
        Node("Conv", ("x", "wa"), ("a",), conv, "conv_a"),
        Node("Conv", ("x", "wb", "bb"), ("b",), {**conv, "pads": (1, 1, 1, 1)}, "conv_b"),
        Node("Concat", ("a", "b"), ("ab",), {"axis": 1}),
        Node("Relu", ("ab",), ("ab_relu",)),
        Node("GlobalAveragePool", ("ab_relu",), ("pooled",)),
        Node("Flatten", ("pooled",), ("flat",), {"axis": 1}),
        Node("Gemm", ("flat", "fc_w", "fc_b"), ("scores",),
             {"alpha": 1.0, "beta": 1.0, "trans_a": False, "trans_b": True}),
    ]
    return GraphModel(nodes, weights, "x", "scores", input_shape=(2, 6, 6), dtype=dtype), weights


def _numpy_reference(x, w):
    """The same network in plain NumPy (1x1 conv a, 3x3 conv b with padding 1)."""
    a = np.einsum("oc,nchw->nohw", w["wa"][:, :, 0, 0], x)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    b = np.zeros((x.shape[0], 2, 6, 6))
    for i in range(3):
        for j in range(3):
            b += np.einsum("oc,nchw->nohw", w["wb"][:, :, i, j], padded[:, :, i:i + 6, j:j + 6])
    b += w["bb"][None, :, None, None]
    pooled = np.maximum(np.concatenate([a, b], axis=1), 0).mean(axis=(2, 3))
    return pooled @ w["fc_w"].T + w["fc_b"]


def test_a_branching_graph_computes_what_numpy_computes():
    model, weights = _branching_model()
    x = np.random.default_rng(1).normal(size=(3, 2, 6, 6))
    np.testing.assert_allclose(model(minisg.tensor(x, dtype=np.float64)).numpy(), _numpy_reference(x, weights),
                               rtol=1e-12, atol=1e-12)


def test_nodes_given_in_any_order_run_in_topological_order():
    model, _ = _branching_model()
    shuffled = GraphModel(list(reversed(model.nodes)), {k: p.numpy() for k, p in model.weights.items()}, "x",
                          "scores", dtype=np.float64)
    assert shuffled.tensor_names.index("ab") > shuffled.tensor_names.index("b")
    x = minisg.tensor(np.ones((1, 2, 6, 6)), dtype=np.float64)
    np.testing.assert_array_equal(shuffled(x).numpy(), model(x).numpy())


def test_tensor_names_list_every_node_output_in_execution_order():
    model, _ = _branching_model()
    assert model.tensor_names == ["a", "b", "ab", "ab_relu", "pooled", "flat", "scores"]


def test_run_with_taps_returns_activations_in_the_autograd_graph():
    model, weights = _branching_model()
    x = minisg.tensor(np.random.default_rng(2).normal(size=(2, 2, 6, 6)), dtype=np.float64)
    scores, taps = model.run_with_taps(x, ["ab_relu", "a"])
    np.testing.assert_array_equal(scores.numpy(), model(x).numpy())
    assert set(taps) == {"ab_relu", "a"} and taps["ab_relu"].shape == (2, 5, 6, 6)
    # scores = W mean(A) + b, so dS_k/dA = W[k] / 36 at every pixel
    (d_score,) = minisg.grad(scores[:, 3].sum(), [taps["ab_relu"]])
    expected = np.broadcast_to(weights["fc_w"][3][None, :, None, None] / 36, (2, 5, 6, 6))
    np.testing.assert_allclose(d_score.numpy(), expected, rtol=1e-12)


def test_an_unknown_tap_name_is_a_value_error_naming_the_argument_and_valid_names():
    model, _ = _branching_model()
    expected = r"layer: unknown layer 'relu9'; valid layer names include a, b, ab, \.\.\., pooled, flat, scores"
    with pytest.raises(ValueError, match=expected):
        model.run_with_taps(np.zeros((1, 2, 6, 6)), ["relu9"])


def test_a_tap_is_differentiable_even_when_no_gradient_reaches_it_from_below():
    """Frozen weights and an input without requires_grad (every method's case): the tap is made a
    leaf, so grad(score, tap) still exists, and equals the gradient with everything live."""
    model, _ = _branching_model()
    x = np.random.default_rng(5).normal(size=(1, 2, 6, 6))
    live_scores, live_taps = model.run_with_taps(minisg.tensor(x, requires_grad=True, dtype=np.float64), "b")
    (expected,) = minisg.grad(live_scores[0, 1], [live_taps["b"]])
    with nn.evaluation_mode(model):
        scores, taps = model.run_with_taps(x, ["b"])
        (gradient,) = minisg.grad(scores[0, 1], [taps["b"]])
    np.testing.assert_allclose(gradient.numpy(), expected.numpy(), rtol=1e-12)
    assert np.abs(gradient.numpy()).max() > 0


def test_the_default_cam_layer_is_the_last_map_before_global_pooling():
    model, _ = _branching_model()
    assert model.default_cam_layer == "ab_relu"


def test_the_cam_layer_is_found_through_pooling_and_dropout_before_a_flatten():
    """VGG-like: relu -> max pool -> dropout -> flatten -> gemm: Grad-CAM's layer is the relu."""
    rng = np.random.default_rng(0)
    nodes = [Node("Conv", ("x", "w"), ("c",), {"strides": (1, 1), "pads": (0, 0, 0, 0), "groups": 1}),
             Node("Relu", ("c",), ("r",)),
             Node("MaxPool", ("r",), ("p",), {"kernel_shape": (2, 2), "strides": (2, 2), "pads": (0, 0, 0, 0),
                                              "ceil_mode": False}),
             Node("Dropout", ("p",), ("d",)),
             Node("Flatten", ("d",), ("f",), {"axis": 1}),
             Node("MatMul", ("f", "fc"), ("y",))]
    model = GraphModel(nodes, {"w": rng.normal(size=(2, 1, 3, 3)), "fc": rng.normal(size=(8, 3))}, "x", "y")
    assert model.default_cam_layer == "r"
    assert model(np.ones((2, 1, 6, 6), dtype=np.float32)).shape == (2, 3)


def test_weights_are_parameters_with_state_dict_dtype_and_round_trip():
    model, weights = _branching_model(dtype=np.float32)
    assert [name for name, _ in model.named_parameters()] == list(weights)
    assert all(isinstance(p, nn.Parameter) and p.dtype == np.float32 for p in model.parameters())
    state = model.state_dict()
    other, _ = _branching_model(dtype=np.float32, seed=5)
    other.load_state_dict(state)
    x = np.random.default_rng(3).normal(size=(1, 2, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(other(x).numpy(), model(x).numpy())
    model.astype(np.float64)
    assert model.dtype == np.float64 and model(x).dtype == np.float64  # an array takes the model's dtype


def test_a_tensor_of_the_wrong_dtype_or_channels_is_refused_by_name():
    model, _ = _branching_model(dtype=np.float64)
    with pytest.raises(TypeError, match=r"x: dtype float32 but the model's weights are float64"):
        model(minisg.tensor(np.zeros((1, 2, 6, 6)), dtype=np.float32))
    with pytest.raises(ValueError, match=r"x: expected shape \(N, 2, 6, 6\), got \(1, 3, 6, 6\)"):
        model(np.zeros((1, 3, 6, 6)))


def test_the_output_of_shape_n_c_1_1_is_returned_as_class_scores():
    nodes = [Node("Conv", ("x", "w"), ("c",), {"strides": (1, 1), "pads": (0, 0, 0, 0), "groups": 1}),
             Node("GlobalAveragePool", ("c",), ("g",))]
    model = GraphModel(nodes, {"w": np.ones((7, 3, 1, 1))}, "x", "g")
    scores, taps = model.run_with_taps(np.ones((2, 3, 4, 4), dtype=np.float32), ["g"])
    assert scores.shape == (2, 7) and taps["g"].shape == (2, 7, 1, 1)
    np.testing.assert_allclose(scores.numpy(), 3.0)


def test_an_unknown_op_or_a_missing_input_is_a_graph_error_naming_the_node():
    with pytest.raises(GraphError, match=r"Lstm node 'rnn' \(output 'h'\): op 'Lstm' is not supported.*Conv"):
        GraphModel([Node("Lstm", ("x",), ("h",), name="rnn")], {}, "x", "h")
    with pytest.raises(GraphError, match=r"Relu node \(output 'r'\): input 'nowhere' is computed by no node"):
        topological_order([Node("Relu", ("nowhere",), ("r",))], ["x"])
    with pytest.raises(GraphError, match="output_name 'zzz' is computed by no node"):
        GraphModel([Node("Relu", ("x",), ("r",))], {}, "x", "zzz")


def test_gradient_of_the_input_passes_gradcheck_in_float64():
    model, _ = _branching_model()
    x = np.random.default_rng(4).normal(size=(1, 2, 6, 6)) + 0.05  # away from ReLU kinks
    assert minisg.gradcheck(lambda inp: model(inp), [x])


def test_evaluation_mode_freezes_the_graph_parameters():
    model, _ = _branching_model()
    with nn.evaluation_mode(model):
        assert not any(p.requires_grad for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters())


def test_intermediate_tensors_are_released_during_the_forward_pass_unless_tapped():
    """Only what a later node reads (or a tap asks for) stays in the table of values."""
    model, _ = _branching_model()
    values = model._run(minisg.tensor(np.ones((1, 2, 6, 6)), dtype=np.float64), keep={"a"})
    assert "a" in values and "scores" in values
    assert not {"b", "ab", "ab_relu", "pooled", "flat"} & set(values)
