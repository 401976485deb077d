"""Tensor and backprop semantics: accumulation, grad(), no_grad, dtypes, errors, devices."""
import numpy as np
import pytest

import minisg
from minisg import F, Tensor, tensor


def test_backward_accumulates_into_grad_until_reset():
    x = tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * x.numpy())
    x.zero_grad()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3, 3, 3])


def test_grad_returns_without_touching_dot_grad():
    x = tensor([1.0, -2.0], requires_grad=True)
    (g,) = minisg.grad((x ** 3).sum(), x)
    np.testing.assert_allclose(g.numpy(), 3 * x.numpy() ** 2)
    assert x.grad is None


def test_a_tensor_used_twice_sums_both_paths():
    x = tensor(2.0, requires_grad=True)
    y = x * x + x * 3.0   # dy/dx = 2x + 3
    y.backward()
    assert x.grad.item() == pytest.approx(7.0)


def test_gradient_of_an_intermediate_result():
    x = tensor([0.5, 1.5], requires_grad=True)
    h = F.exp(x)
    (g,) = minisg.grad((h * h).sum(), h)
    np.testing.assert_allclose(g.numpy(), 2 * np.exp(x.numpy()), rtol=1e-6)


def test_second_and_third_derivative_of_a_scalar_function():
    x = tensor(0.7, dtype=np.float64, requires_grad=True)
    y = F.tanh(x)
    (d1,) = minisg.grad(y, x, create_graph=True)
    (d2,) = minisg.grad(d1, x, create_graph=True)
    (d3,) = minisg.grad(d2, x)
    t = np.tanh(0.7)
    assert d1.item() == pytest.approx(1 - t ** 2)
    assert d2.item() == pytest.approx(-2 * t * (1 - t ** 2))
    assert d3.item() == pytest.approx(-2 * (1 - t ** 2) ** 2 + 4 * t ** 2 * (1 - t ** 2))


def test_without_create_graph_the_gradient_has_no_graph():
    x = tensor([1.0, 2.0], requires_grad=True)
    (g,) = minisg.grad((x ** 2).sum(), x)
    assert not g.requires_grad and g.creator is None


def test_no_grad_records_nothing():
    x = tensor([1.0], requires_grad=True)
    with minisg.no_grad():
        y = x * 2.0
    assert not y.requires_grad and y.creator is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_non_scalar_backward_without_grad_says_so():
    x = tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"scalar.*shape \(2,\)"):
        (x * 2.0).backward()
    (x * 2.0).backward(grad=np.array([1.0, 10.0], dtype=np.float32))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 20.0])


def test_backward_grad_of_the_wrong_shape_is_refused():
    x = tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"grad has shape \(3,\) but the output has shape \(2,\)"):
        (x * 2.0).backward(grad=np.ones(3, dtype=np.float32))


def test_unused_input_is_an_error_unless_allowed():
    x, z = tensor([1.0], requires_grad=True), tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="do not depend"):
        minisg.grad((x * 2.0).sum(), [x, z])
    gx, gz = minisg.grad((x * 2.0).sum(), [x, z], allow_unused=True)
    assert gz.numpy().tolist() == [0.0]


def test_shape_mismatch_names_the_op_and_both_shapes():
    a, b = tensor(np.ones((2, 3))), tensor(np.ones((4,)))
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\)"):
        a + b
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(2, 3\) do not align"):
        a @ a
    with pytest.raises(ValueError, match=r"linear: input \(2, 3\) and weight \(5, 4\)"):
        F.linear(a, tensor(np.ones((5, 4))))
    with pytest.raises(ValueError, match=r"reshape: cannot reshape a tensor of shape \(2, 3\) into \(4,\)"):
        a.reshape(4)


def test_float32_float64_mix_is_refused_and_ints_are_promoted():
    a32 = tensor(np.ones(3, dtype=np.float32))
    a64 = tensor(np.ones(3, dtype=np.float64))
    with pytest.raises(TypeError, match="mul: dtype mismatch float32 vs float64"):
        a32 * a64
    ints = tensor(np.arange(3))
    assert (a32 * ints).dtype == np.float32
    assert (a64 + 1).dtype == np.float64       # Python numbers take the tensor's dtype
    assert (a32 * 2.5).dtype == np.float32
    with pytest.raises(TypeError, match="requires_grad needs a float32 or float64 tensor"):
        Tensor(np.arange(3), requires_grad=True)
    with pytest.raises(TypeError, match="exp: needs a float32 or float64 tensor"):
        F.exp(ints)


def test_python_floats_default_to_float32():
    assert tensor([1.0, 2.0]).dtype == np.float32
    assert tensor(np.zeros(2)).dtype == np.float64   # arrays keep their dtype


def test_cross_entropy_label_errors():
    logits = tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\), got 3"):
        F.cross_entropy(logits, np.array([0, 3]))
    with pytest.raises(ValueError, match="labels must be 2 integers"):
        F.cross_entropy(logits, np.array([0.0, 1.0]))


def test_cross_entropy_value():
    logits = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    expected = -np.mean([np.log(np.exp(logits[0, 1]) / np.exp(logits[0]).sum()),
                         np.log(np.exp(logits[1, 0]) / np.exp(logits[1]).sum())])
    assert F.cross_entropy(tensor(logits), np.array([1, 0])).item() == pytest.approx(expected)


def test_log_softmax_does_not_overflow():
    out = F.log_softmax(tensor(np.array([[1000.0, 0.0]]))).numpy()
    np.testing.assert_allclose(out, [[0.0, -1000.0]])


def test_relu_rules_differ_only_in_backward():
    z = tensor(np.array([1.0, -1.0, 2.0, -2.0]), requires_grad=True)
    upstream = np.array([1.0, 1.0, -1.0, -1.0])
    results = {}
    for rule in ("gradient", "guided", "deconv"):
        with minisg.relu_rule(rule):
            y = F.relu(z)
        np.testing.assert_allclose(y.numpy(), [1, 0, 2, 0])
        (results[rule],) = minisg.grad(y, z, grad_outputs=upstream)
    np.testing.assert_allclose(results["gradient"].numpy(), [1, 0, -1, 0])
    np.testing.assert_allclose(results["guided"].numpy(), [1, 0, 0, 0])
    np.testing.assert_allclose(results["deconv"].numpy(), [1, 1, 0, 0])
    with pytest.raises(ValueError, match="rule must be one of"):
        with minisg.relu_rule("bogus"):
            pass


def test_upsample_bilinear_matches_half_pixel_convention():
    x = np.arange(4, dtype=np.float64).reshape(1, 1, 1, 4)
    out = F.upsample_bilinear(tensor(x), (1, 8)).numpy().reshape(-1)
    # half-pixel centres: output i samples (i + 0.5) / 2 - 0.5, clamped to [0, 3]
    np.testing.assert_allclose(out, [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3])


def test_dropout_is_inverted_and_off_in_eval():
    x = tensor(np.ones((1000,)))
    y = F.dropout(x, 0.5, True, np.random.default_rng(0)).numpy()
    assert set(np.unique(y)) == {0.0, 2.0}
    assert abs(y.mean() - 1.0) < 0.1
    assert F.dropout(x, 0.5, False) is x
    with pytest.raises(ValueError, match=r"p: expected a number in \[0, 1\), got 1.0"):
        F.dropout(x, 1.0)


def test_gpu_without_cupy_or_gpu_says_how_to_install():
    if minisg.gpu_available():
        pytest.skip("a GPU is available here")
    with pytest.raises(minisg.DeviceError, match=r"pip install minisg\[gpu\]"):
        minisg.set_device("gpu")
    with pytest.raises(minisg.DeviceError, match=r"pip install minisg\[gpu\]"):
        tensor([1.0]).to("gpu")
    with pytest.raises(minisg.DeviceError, match="device must be one of"):
        minisg.set_device("tpu")
    assert minisg.get_device() == "cpu"


def test_grad_computes_only_what_lies_on_the_path_to_its_inputs(monkeypatch):
    """A saliency map asks for d(score)/d(input): no weight gradient may be computed."""
    from minisg import conv, nn

    calls = []
    original = conv.Conv2dWeightGrad.forward
    monkeypatch.setattr(conv.Conv2dWeightGrad, "forward",
                        lambda self, *a: calls.append(1) or original(self, *a))
    layer = nn.Conv2d(1, 2, 3, padding=1, dtype=np.float64)
    x = tensor(np.random.default_rng(0).random((1, 1, 4, 4)), requires_grad=True)
    (gx,) = minisg.grad(F.relu(layer(x)).sum(), x)
    assert calls == [] and gx.shape == x.shape
    F.relu(layer(x)).sum().backward()   # backward() fills every parameter's .grad
    assert calls == [1] and layer.weight.grad is not None


def test_grad_leaves_the_graph_as_it_was_for_a_later_backward():
    """grad() skips the weight gradients, but the same graph still gives them to backward()."""
    from minisg import nn

    layer = nn.Conv2d(1, 2, 3, padding=1, dtype=np.float64)
    x = tensor(np.random.default_rng(1).random((1, 1, 4, 4)), requires_grad=True)
    y = F.relu(layer(x)).sum()
    (gx,) = minisg.grad(y, x)
    y.backward()
    assert layer.weight.grad is not None and layer.weight.grad.shape == layer.weight.shape
    np.testing.assert_allclose(x.grad.numpy(), gx.numpy())
