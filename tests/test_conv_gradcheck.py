"""conv2d and max_pool2d: first and second order gradient checks, and a third derivative.

Conv and pool backward passes are Functions themselves (transposed convolution, weight
gradient, scatter/gather with the forward's argmax), so every order of derivative is checked.
"""
import numpy as np
import pytest

import minisg
from minisg import F, Tensor, gradcheck, gradgradcheck

CONV_CASES = [
    # (input shape, weight shape, stride, padding)
    ((1, 1, 5, 5), (1, 1, 3, 3), 1, 0),
    ((2, 3, 5, 6), (2, 3, 3, 3), 1, 1),
    ((1, 2, 6, 5), (3, 2, 3, 2), 2, 1),      # non-square kernel, stride 2
    ((2, 2, 4, 4), (2, 2, 2, 2), 1, 2),      # padding 2
    ((1, 2, 7, 7), (2, 2, 5, 5), (2, 1), (2, 0)),  # per-axis stride and padding
]


@pytest.mark.parametrize("x_shape,w_shape,stride,padding", CONV_CASES)
def test_conv2d_first_and_second_order(x_shape, w_shape, stride, padding):
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])

    def f(x, w, b):
        return F.conv2d(x, w, b, stride=stride, padding=padding)

    assert gradcheck(f, [x, w, b])
    assert gradgradcheck(f, [x, w, b])


def test_conv2d_squared_second_order():
    """A nonlinear function of the conv output, so the second derivative is not zero."""
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((2, 2, 3, 3))
    assert gradgradcheck(lambda x, w: F.conv2d(x, w, padding=1) ** 2, [x, w])


def _tie_free(shape, rng):
    """Distinct values well apart: max-pool has no ties and finite differences stay in one piece."""
    size = int(np.prod(shape))
    return ((rng.permutation(size) - size / 2) * 0.05).reshape(shape)


@pytest.mark.parametrize("shape,kernel,stride", [
    ((2, 3, 4, 4), 2, None),
    ((1, 2, 7, 7), 3, 2),        # overlapping windows: stride < kernel
    ((1, 2, 8, 7), 2, 3),        # gaps: stride > kernel
    ((1, 1, 6, 5), (3, 2), (1, 2)),
])
def test_max_pool2d_first_and_second_order(shape, kernel, stride):
    x = _tie_free(shape, np.random.default_rng(3))
    assert gradcheck(lambda x: F.max_pool2d(x, kernel, stride), [x])
    assert gradgradcheck(lambda x: F.max_pool2d(x, kernel, stride) ** 2, [x])


def test_max_pool_ties_go_to_the_first_maximum():
    x = Tensor(np.zeros((1, 1, 2, 2)), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    assert x.grad.numpy().reshape(-1).tolist() == [1.0, 0.0, 0.0, 0.0]


def _small_cnn_params(rng):
    return [rng.standard_normal((2, 1, 3, 3)) * 0.5, rng.standard_normal(2) * 0.1,
            rng.standard_normal((1, 8)) * 0.3]


def _small_cnn(x, w, b, v):
    """conv -> relu -> pool -> linear -> exp: the chain of the issue's third-derivative test."""
    h = F.max_pool2d(F.relu(F.conv2d(x, w, b, padding=1)), 2)
    return F.exp(F.linear(F.flatten(h), v)).sum()


def test_third_derivative_through_the_cnn():
    """grad three times through conv -> relu -> pool -> linear -> exp matches finite
    differences of the second derivative (taken along fixed directions u, v)."""
    rng = np.random.default_rng(4)
    w, b, v = [Tensor(a) for a in _small_cnn_params(rng)]
    x0 = rng.uniform(0.1, 1.0, (1, 1, 4, 4))
    u1, u2 = rng.standard_normal(x0.shape), rng.standard_normal(x0.shape)

    def second_directional(x_array):
        """d2f/dx2 contracted with u1 (a vector the shape of x), built with create_graph."""
        x = Tensor(x_array, requires_grad=True)
        (g,) = minisg.grad(_small_cnn(x, w, b, v), x, create_graph=True)
        (h,) = minisg.grad((g * Tensor(u1)).sum(), x, create_graph=True)
        return x, h

    x, h = second_directional(x0)
    (third,) = minisg.grad((h * Tensor(u2)).sum(), x)   # third derivative contracted with u1, u2
    eps = 1e-5
    numeric = np.zeros(x0.size)
    for i in range(x0.size):
        step = np.zeros(x0.size)
        step[i] = eps
        plus = (second_directional(x0 + step.reshape(x0.shape))[1].numpy() * u2).sum()
        minus = (second_directional(x0 - step.reshape(x0.shape))[1].numpy() * u2).sum()
        numeric[i] = (plus - minus) / (2 * eps)
    assert np.abs(third.numpy().reshape(-1)).max() > 1e-3  # a real, nonzero third derivative
    np.testing.assert_allclose(third.numpy().reshape(-1), numeric, rtol=1e-4, atol=1e-6)


def test_whole_cnn_gradgradcheck_in_parameters():
    """Double backprop through conv, relu, pool and linear with respect to the weights."""
    rng = np.random.default_rng(5)
    x = Tensor(rng.uniform(0.1, 1.0, (2, 1, 4, 4)))
    params = _small_cnn_params(rng)
    assert gradgradcheck(lambda w, b, v: _small_cnn(x, w, b, v), params)


def test_conv2d_bad_shapes_name_the_op_and_both_shapes():
    x = Tensor(np.zeros((1, 3, 5, 5), dtype=np.float32))
    w = Tensor(np.zeros((2, 2, 3, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"conv2d: input has 3 channels but weight \(2, 2, 3, 3\)"):
        F.conv2d(x, w)
    with pytest.raises(ValueError, match=r"conv2d: input must be \(N, C, H, W\).*\(5, 5\)"):
        F.conv2d(Tensor(np.zeros((5, 5), dtype=np.float32)), w)
    with pytest.raises(ValueError, match="stride must be an int >= 1"):
        F.conv2d(x, Tensor(np.zeros((2, 3, 3, 3), dtype=np.float32)), stride=0)
    with pytest.raises(TypeError, match="float32 and float64"):
        F.conv2d(x, Tensor(np.zeros((2, 3, 3, 3))))
    with pytest.raises(ValueError, match="max_pool2d: window"):
        F.max_pool2d(x, 6)
