"""minisg's ONNX import against the same network written by hand in PyTorch, in float64.

A small graph built with onnx.helper uses every op minisg supports (graph.SUPPORTED_OPS: the
test fails if an op is added without being covered here): Pad, Conv (asymmetric pads, grouped,
depthwise, strided), BatchNormalization, Relu, Clip (ReLU6), LeakyRelu, MaxPool (ceil_mode,
asymmetric pads), Sigmoid, Concat, Mul, Add, Sub, AveragePool (pads, count_include_pad=0),
Dropout, Identity, GlobalAveragePool, Flatten, Reshape, MatMul, Gemm and a trailing Softmax
(which the import drops). Its float32 initializers are read by minisg as float64 and cast to
float64 for PyTorch, so both compute in float64 from the same numbers, and everything is
compared to 1e-10 of its largest magnitude: the scores, every intermediate tensor, the input
gradient (minisg.grad, methods.vanilla_gradient, Captum's Saliency), and Grad-CAM and
Grad-CAM++ at two named activations (METHODS.md §7, §8: Grad-CAM++ with minisg's closed-form
derivatives (g, g^2, g^3) and alpha = 0 where g <= 0; the maps at the layer's resolution
(upsample=False) and upsampled as PyTorch's bilinear align_corners=False).

Random weights with a fixed seed and inputs off the kinks keep float64 equality meaningful;
test_a_perturbed_weight_is_caught shows that each comparison fails when one weight of the
PyTorch copy moves by one part in 10^7.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the comparison needs PyTorch")
onnx = pytest.importorskip("onnx", reason="the ONNX import needs the onnx package (pip install 'minisg[onnx]')")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
import torch.nn.functional as TF  # noqa: E402

import minisg  # noqa: E402
from minisg import methods  # noqa: E402
from minisg.models.graph import SUPPORTED_OPS  # noqa: E402
from minisg.models.onnx_import import from_proto, load_onnx  # noqa: E402

RTOL = 1e-10
INPUT_SHAPE = (2, 3, 12, 12)
TARGETS = np.array([1, 3])
CAM_LAYERS = ["relu1", "concat"]  # (N, 8, 12, 12) early, (N, 8, 4, 4) late; both >= 0
# ONNX float attributes are float32: values that float32 holds exactly, so that PyTorch's
# float64 constants are the very numbers minisg reads from the file.
EPSILON, LEAKY, ALPHA, BETA = 2.0 ** -10, 0.125, 0.75, 1.25


# ---------------------------------------------------------------------------- the network, twice

def _weights(seed=0):
    rng = np.random.default_rng(seed)

    def normal(*shape, scale=1.0):
        return (rng.normal(size=shape) * scale).astype(np.float32)

    return {
        "pad_value": np.float32(0.25),
        "w1": normal(8, 3, 3, 3, scale=0.4), "b1": normal(8, scale=0.1),
        "bn_scale": (1 + 0.2 * rng.normal(size=8)).astype(np.float32), "bn_bias": normal(8, scale=0.3),
        "bn_mean": normal(8, scale=0.2), "bn_var": rng.uniform(0.5, 2.0, size=8).astype(np.float32),
        "w_dw": normal(8, 1, 3, 3, scale=2.0), "b_dw": normal(8),         # large: Clip cuts at 0 and at 6
        "w_g2": normal(8, 4, 3, 3, scale=0.3), "b_g2": normal(8, scale=0.1),
        "w_a": normal(4, 8, 1, 1, scale=0.3), "b_a": normal(4, scale=0.1),
        "w_b": normal(4, 8, 3, 3, scale=0.2), "b_b": normal(4, scale=0.1),
        "gain": normal(1, 8, 1, 1, scale=0.5), "shift": normal(8, 1, 1, scale=0.2),
        "proj": normal(128, 8, scale=0.1),
        "fc": normal(5, 8), "fc_b": normal(5),
    }


def _proto(weights, opset=13):
    """The ModelProto: input 'x' (N, 3, 12, 12), output 'prob' = Softmax(logits)."""
    node = helper.make_node
    constants = {"shape": np.array([0, -1], dtype=np.int64)}
    if opset >= 11:  # Pad's pads and value, Clip's bounds: inputs (MaxPool's ceil_mode needs opset 10)
        constants.update(pads=np.array([0, 0, 1, 0, 0, 0, 0, 1], dtype=np.int64),
                         zero=np.float32(0.0), six=np.float32(6.0))
        pad = node("Pad", ["x", "pads", "pad_value"], ["padded"], mode="constant")
        clip = node("Clip", ["dw", "zero", "six"], ["relu6"])
    else:  # before opset 11: attributes
        pad = node("Pad", ["x"], ["padded"], mode="constant", pads=[0, 0, 1, 0, 0, 0, 0, 1],
                   value=float(weights["pad_value"]))
        clip = node("Clip", ["dw"], ["relu6"], min=0.0, max=6.0)
    nodes = [
        pad,                                                                      # (N, 3, 13, 13)
        node("Conv", ["padded", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 0, 0, 1]),
        node("BatchNormalization", ["c1", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["bn1"], epsilon=EPSILON),
        node("Relu", ["bn1"], ["relu1"]),                                         # (N, 8, 12, 12)
        node("Conv", ["relu1", "w_dw", "b_dw"], ["dw"], group=8, strides=[2, 2], pads=[0, 0, 1, 1]),
        clip,                                                                     # (N, 8, 6, 6)
        node("Conv", ["relu6", "w_g2", "b_g2"], ["g2"], group=2, pads=[1, 1, 1, 1]),
        node("LeakyRelu", ["g2"], ["leaky"], alpha=LEAKY),
        node("MaxPool", ["leaky"], ["pool"], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 0, 0],
             ceil_mode=1),                                                        # (N, 8, 4, 4)
        node("Conv", ["pool", "w_a", "b_a"], ["ca"]),
        node("Sigmoid", ["ca"], ["sig"]),
        node("Conv", ["pool", "w_b", "b_b"], ["cb"], pads=[1, 1, 1, 1]),
        node("Relu", ["cb"], ["rb"]),
        node("Concat", ["sig", "rb"], ["concat"], axis=1),                        # (N, 8, 4, 4)
        node("Mul", ["concat", "gain"], ["scaled"]),
        node("Add", ["concat", "scaled"], ["res"]),
        node("Sub", ["res", "shift"], ["mix"]),
        node("AveragePool", ["mix"], ["avg"], kernel_shape=[2, 2], pads=[0, 0, 1, 1], count_include_pad=0),
        node("Dropout", ["avg"], ["drop"]),
        node("Identity", ["drop"], ["same"]),
        node("GlobalAveragePool", ["same"], ["gap"]),
        node("Flatten", ["gap"], ["flat"], axis=1),                               # (N, 8)
        node("Reshape", ["same", "shape"], ["rows"]),                             # (N, 128)
        node("MatMul", ["rows", "proj"], ["mm"]),
        node("Add", ["flat", "mm"], ["h"]),
        node("Gemm", ["h", "fc", "fc_b"], ["logits"], transB=1, alpha=ALPHA, beta=BETA),
        node("Softmax", ["logits"], ["prob"], axis=-1 if opset >= 13 else 1),
    ]
    arrays = {**weights, **constants}
    if opset < 11:
        del arrays["pad_value"]
    initializers = [numpy_helper.from_array(np.asarray(value), name) for name, value in arrays.items()]
    graph = helper.make_graph(nodes, "vs_torch",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 12, 12])],
                              [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 5])],
                              initializer=initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    proto.ir_version = 7
    onnx.checker.check_model(proto)
    return proto


def _torch_forward(w, x):
    """The same network in PyTorch (float64): {tensor name: value}, named as in the ONNX graph.

    w: {name: float64 tensor}. F.pad's order is (left, right, top, bottom); ONNX's pads are
    (top, left, bottom, right), so pads=[1, 0, 0, 1] is F.pad(., (0, 1, 1, 0)).
    """
    t = {"x": x}
    t["padded"] = TF.pad(x, (0, 1, 1, 0), value=float(w["pad_value"]))
    t["c1"] = TF.conv2d(TF.pad(t["padded"], (0, 1, 1, 0)), w["w1"], w["b1"])
    t["bn1"] = TF.batch_norm(t["c1"], w["bn_mean"], w["bn_var"], w["bn_scale"], w["bn_bias"],
                             training=False, eps=EPSILON)
    t["relu1"] = torch.relu(t["bn1"])
    t["dw"] = TF.conv2d(TF.pad(t["relu1"], (0, 1, 0, 1)), w["w_dw"], w["b_dw"], stride=2, groups=8)
    t["relu6"] = torch.clamp(t["dw"], 0.0, 6.0)
    t["g2"] = TF.conv2d(t["relu6"], w["w_g2"], w["b_g2"], padding=1, groups=2)
    t["leaky"] = TF.leaky_relu(t["g2"], LEAKY)
    t["pool"] = TF.max_pool2d(TF.pad(t["leaky"], (1, 0, 1, 0), value=-float("inf")), 2, 2, ceil_mode=True)
    t["ca"] = TF.conv2d(t["pool"], w["w_a"], w["b_a"])
    t["sig"] = torch.sigmoid(t["ca"])
    t["cb"] = TF.conv2d(t["pool"], w["w_b"], w["b_b"], padding=1)
    t["rb"] = torch.relu(t["cb"])
    t["concat"] = torch.cat([t["sig"], t["rb"]], dim=1)
    t["scaled"] = t["concat"] * w["gain"]
    t["res"] = t["concat"] + t["scaled"]
    t["mix"] = t["res"] - w["shift"]
    # count_include_pad=0 with pads at the end only: window sums over window sizes
    sums = TF.avg_pool2d(TF.pad(t["mix"], (0, 1, 0, 1)), 2, 1) * 4
    counts = TF.avg_pool2d(TF.pad(torch.ones_like(t["mix"]), (0, 1, 0, 1)), 2, 1) * 4
    t["avg"] = sums / counts
    t["drop"] = t["same"] = t["avg"]
    t["gap"] = t["same"].mean(dim=(2, 3), keepdim=True)
    t["flat"] = t["gap"].flatten(1)
    t["rows"] = t["same"].reshape(len(x), -1)
    t["mm"] = t["rows"] @ w["proj"]
    t["h"] = t["flat"] + t["mm"]
    t["logits"] = ALPHA * t["h"] @ w["fc"].T + BETA * w["fc_b"]
    return t


def _torch_weights(weights, perturb=None):
    """float64 torch tensors of the float32 weights; perturb: (name, flat index) of an entry moved by 1e-7."""
    result = {name: torch.tensor(np.asarray(value, dtype=np.float64)) for name, value in weights.items()}
    if perturb is not None:
        name, index = perturb
        result[name] = result[name].clone()
        result[name].view(-1)[index] *= 1 + 1e-7
    return result


def _input(seed=1):
    return np.random.default_rng(seed).normal(size=INPUT_SHAPE)


# ---------------------------------------------------------------------------- the PyTorch references

def _torch_scores(w, x):
    return _torch_forward(w, torch.tensor(x))["logits"].detach().numpy()


def _torch_input_gradient(w, x, targets):
    images = torch.tensor(x, requires_grad=True)
    logits = _torch_forward(w, images)["logits"]
    (gradient,) = torch.autograd.grad(logits[np.arange(len(x)), targets].sum(), images)
    return gradient.numpy()


def _torch_layer_gradient(w, x, targets, layer):
    """(A, dS/dA) at the named tensor, S the target logits."""
    images = torch.tensor(x, requires_grad=True)
    t = _torch_forward(w, images)
    (g,) = torch.autograd.grad(t["logits"][np.arange(len(x)), targets].sum(), t[layer])
    return t[layer].detach(), g


def _finish(cam, upsample, normalize):
    if upsample:
        cam = TF.interpolate(cam[:, None], size=INPUT_SHAPE[2:], mode="bilinear", align_corners=False)[:, 0]
    if normalize:
        peak = cam.amax(dim=(1, 2), keepdim=True)
        cam = torch.where(peak > 0, cam / torch.where(peak > 0, peak, torch.ones_like(peak)), torch.zeros_like(cam))
    return cam.numpy()


def _torch_gradcam(w, x, targets, layer, upsample=False, normalize=False):
    """Grad-CAM: w_k = mean_ij dS/dA^k_ij, cam = relu(sum_k w_k A^k)."""
    A, g = _torch_layer_gradient(w, x, targets, layer)
    weights = g.mean(dim=(2, 3), keepdim=True)
    return _finish(torch.relu((weights * A).sum(dim=1)), upsample, normalize)


def _torch_gradcam_pp(w, x, targets, layer, upsample=False, normalize=False):
    """Grad-CAM++ as METHODS.md §8 defines minisg's: with g = dS/dA and S_k = sum_ab A^k_ab,
    alpha = g^2 / (2 g^2 + S_k g^3) where g > 0 and the denominator > 0 (else 0),
    w_k = sum_ij alpha relu(g), cam = relu(sum_k w_k A^k)."""
    A, g = _torch_layer_gradient(w, x, targets, layer)
    layer_sums = A.sum(dim=(2, 3), keepdim=True)
    denominator = 2 * g ** 2 + layer_sums * g ** 3
    valid = (g > 0) & (denominator > 0)
    alpha = torch.where(valid, g ** 2 / torch.where(valid, denominator, torch.ones_like(denominator)),
                        torch.zeros_like(g))
    weights = (alpha * torch.relu(g)).sum(dim=(2, 3), keepdim=True)
    return _finish(torch.relu((weights * A).sum(dim=1)), upsample, normalize)


# ---------------------------------------------------------------------------- comparing

def assert_same(ours, reference, what=""):
    """Equal shapes, and equal values to RTOL of the reference's largest magnitude (float64)."""
    ours, reference = np.asarray(ours), np.asarray(reference)
    assert ours.shape == reference.shape, f"{what}: shape {ours.shape} != {reference.shape}"
    assert ours.dtype == np.float64, f"{what}: dtype {ours.dtype}, expected float64"
    scale = np.abs(reference).max()
    assert scale > 0, f"{what}: an all-zero reference compares nothing"
    error = np.abs(ours - reference).max() / scale
    assert error <= RTOL, f"{what}: relative error {error:.3g} > {RTOL:g}"


@pytest.fixture(scope="module", params=[13, 10], ids=["opset13", "opset10"])
def opset(request):
    return request.param


@pytest.fixture(scope="module")
def weights():
    return _weights()


@pytest.fixture(scope="module", params=["from_proto", "load_onnx"])
def model(request, weights, opset, tmp_path_factory):
    proto = _proto(weights, opset)
    if request.param == "from_proto":
        return from_proto(proto, dtype=np.float64)
    path = tmp_path_factory.mktemp("onnx") / f"vs_torch_{opset}.onnx"
    onnx.save(proto, str(path))
    return load_onnx(path, dtype=np.float64)


@pytest.fixture(scope="module")
def reference(weights):
    return _torch_weights(weights)


# ---------------------------------------------------------------------------- the tests

def test_the_graph_covers_every_supported_op(weights, opset):
    used = {node.op_type for node in _proto(weights, opset).graph.node}
    assert used == set(SUPPORTED_OPS), f"not covered: {sorted(set(SUPPORTED_OPS) - used)}"


def test_the_graph_avoids_ties_and_reaches_both_sides_of_each_kink(reference):
    """Random weights put values on both sides of every ReLU, Clip and LeakyRelu, and no max-pool
    window holds its maximum twice: the derivative is the same on both engines, no rule decides it."""
    t = _torch_forward(reference, torch.tensor(_input()))
    for name, low, high in [("bn1", 0, None), ("dw", 0, 6), ("g2", 0, None), ("cb", 0, None)]:
        values = t[name].numpy()
        assert (values < low).mean() > 0.1 and (values > low).mean() > 0.1, name
        assert np.abs(values - low).min() > 1e-6, name
        if high is not None:
            assert (values > high).mean() > 0.02 and np.abs(values - high).min() > 1e-6, name
    padded = TF.pad(t["leaky"], (1, 1, 1, 1), value=-float("inf")).numpy()  # 8 x 8: the 4 x 4 windows of 2 x 2
    windows = np.stack([padded[:, :, i::2, j::2] for i in range(2) for j in range(2)])
    ordered = np.sort(windows, axis=0)
    assert np.all(ordered[-1] - ordered[-2] > 1e-6)  # the largest entry of each window is alone


def test_the_model_reads_the_graph_as_written(model):
    assert model.output_name == "logits" and model.meta["dropped_softmax"] == "prob"
    assert model.input_shape == (3, 12, 12) and model.dtype == np.float64
    assert model.default_cam_layer == "mix"  # GlobalAveragePool, back through Identity, Dropout, AveragePool
    assert set(CAM_LAYERS) <= set(model.tensor_names)


def test_scores_and_every_intermediate_tensor_equal_torch(model, reference):
    x = _input()
    expected = _torch_forward(reference, torch.tensor(x))
    scores, taps = model.run_with_taps(x, model.tensor_names)
    assert_same(scores.numpy(), expected["logits"].numpy(), "logits")
    assert_same(model(x).numpy(), _torch_scores(reference, x), "forward")
    for name in model.tensor_names:
        assert_same(taps[name].numpy(), expected[name].detach().numpy(), name)


def test_the_input_gradient_equals_torch_autograd(model, reference):
    x = _input()
    expected = _torch_input_gradient(reference, x, TARGETS)
    images = minisg.tensor(x, requires_grad=True)
    scores = model(images)
    (ours,) = minisg.grad(scores[0, int(TARGETS[0])] + scores[1, int(TARGETS[1])], [images])
    assert_same(ours.numpy(), expected, "minisg.grad")
    assert_same(methods.vanilla_gradient(model, x, target=TARGETS), expected, "vanilla_gradient")
    for n, target in enumerate(TARGETS):  # one image, one int target
        assert_same(methods.vanilla_gradient(model, x[n:n + 1], target=int(target)), expected[n:n + 1],
                    f"vanilla_gradient of image {n}")


def test_vanilla_gradient_equals_captum_saliency(model, reference):
    captum_attr = pytest.importorskip("captum.attr", reason="the Saliency comparison needs captum")
    x = _input(seed=2)
    saliency = captum_attr.Saliency(lambda images: _torch_forward(reference, images)["logits"])
    expected = saliency.attribute(torch.tensor(x, requires_grad=True), target=TARGETS.tolist(), abs=False)
    assert_same(methods.vanilla_gradient(model, x, target=TARGETS), expected.detach().numpy(), "Saliency")
    # Saliency's default abs=True is |dS/dx|
    absolute = saliency.attribute(torch.tensor(x, requires_grad=True), target=TARGETS.tolist())
    assert_same(np.abs(methods.vanilla_gradient(model, x, target=TARGETS)), absolute.detach().numpy(), "|Saliency|")


@pytest.mark.parametrize("layer", CAM_LAYERS)
def test_gradcam_equals_a_handwritten_torch_gradcam(model, reference, layer):
    x = _input()
    ours = methods.gradcam(model, x, target=TARGETS, layer=layer, upsample=False)
    expected = _torch_gradcam(reference, x, TARGETS, layer)
    assert ours.shape == (2, *_torch_forward(reference, torch.tensor(x))[layer].shape[2:])
    assert (expected > 0).mean() > 0.2  # a map with something in it
    assert_same(ours, expected, f"Grad-CAM at {layer}")
    assert_same(methods.gradcam(model, x, target=TARGETS, layer=layer, upsample=True, normalize=True),
                _torch_gradcam(reference, x, TARGETS, layer, upsample=True, normalize=True),
                f"Grad-CAM at {layer}, upsampled and normalised")


@pytest.mark.parametrize("layer", CAM_LAYERS)
def test_gradcam_pp_equals_a_handwritten_torch_gradcam_pp(model, reference, layer):
    x = _input()
    ours = methods.gradcam_pp(model, x, target=TARGETS, layer=layer, upsample=False)
    expected = _torch_gradcam_pp(reference, x, TARGETS, layer)
    assert (expected > 0).mean() > 0.2
    assert_same(ours, expected, f"Grad-CAM++ at {layer}")
    assert_same(methods.gradcam_pp(model, x, target=TARGETS, layer=layer, upsample=True, normalize=True),
                _torch_gradcam_pp(reference, x, TARGETS, layer, upsample=True, normalize=True),
                f"Grad-CAM++ at {layer}, upsampled and normalised")


def test_gradcam_pp_by_autodiff_equals_torch_where_the_head_is_linear(weights, reference):
    """After 'concat' the head (Mul, Add, Sub, AveragePool, GlobalAveragePool, Reshape, MatMul,
    Gemm) is linear: d2S = d3S = 0, so minisg's triple-backward derivatives must give PyTorch's
    closed-form map too."""
    model = from_proto(_proto(weights), dtype=np.float64)
    x = _input()
    ours = methods.gradcam_pp(model, x, target=TARGETS, layer="concat", derivatives="autodiff", upsample=False)
    assert_same(ours, _torch_gradcam_pp(reference, x, TARGETS, "concat"), "Grad-CAM++ (autodiff) at concat")


@pytest.mark.parametrize("perturb", [("w1", 0), ("w_dw", 0), ("fc", 8)], ids=["w1", "w_dw", "fc"])
def test_a_perturbed_weight_is_caught(weights, perturb):
    """One weight of the PyTorch copy moved by one part in 10^7: every comparison above fails.
    (w1 comes before both CAM layers, w_dw between them, fc in the head after both: its entry
    [1, 0] weighs class 1, a target.)"""
    model = from_proto(_proto(weights), dtype=np.float64)
    wrong = _torch_weights(weights, perturb=perturb)
    x = _input()
    checks = [
        lambda: assert_same(model(x).numpy(), _torch_scores(wrong, x)),
        lambda: assert_same(methods.vanilla_gradient(model, x, target=TARGETS),
                            _torch_input_gradient(wrong, x, TARGETS)),
        lambda: assert_same(methods.gradcam(model, x, target=TARGETS, layer="concat", upsample=False),
                            _torch_gradcam(wrong, x, TARGETS, "concat")),
        lambda: assert_same(methods.gradcam_pp(model, x, target=TARGETS, layer="concat", upsample=False),
                            _torch_gradcam_pp(wrong, x, TARGETS, "concat")),
        lambda: assert_same(methods.gradcam(model, x, target=TARGETS, layer="relu1", upsample=False),
                            _torch_gradcam(wrong, x, TARGETS, "relu1")),
        lambda: assert_same(methods.gradcam_pp(model, x, target=TARGETS, layer="relu1", upsample=False),
                            _torch_gradcam_pp(wrong, x, TARGETS, "relu1")),
    ]
    for number, check in enumerate(checks):
        with pytest.raises(AssertionError, match="relative error"):
            check()
