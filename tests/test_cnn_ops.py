"""The ops of classic ImageNet CNNs (SqueezeNet, MobileNetV2): grouped and depthwise conv2d with
uneven padding, max/avg pooling with padding and ceil_mode, pad, concat, leaky_relu, clip/relu6,
sigmoid, batch_norm, global_avg_pool2d, and their nn Modules.

Each op is gradient-checked in float64 to first and second order (its backward is made of
differentiable ops), compared with PyTorch where torch is installed, and the depthwise kernels
(Numba, and the whole-array version the GPU runs) with the reference loops.
"""
import numpy as np
import pytest

import minisg
from minisg import F, Tensor, gradcheck, gradgradcheck, nn
from minisg.kernels import array_depthwise, cpu, reference


def spread(shape, rng, step=0.1):
    """Distinct values `step` apart, none at 0: no max-pool ties, no point on a kink."""
    size = int(np.prod(shape))
    return ((rng.permutation(size) - size / 2 + 0.5) * step).reshape(shape)


def torch_or_skip():
    return pytest.importorskip("torch")


def assert_close_to_torch(ours, theirs):
    """Same values in float64 up to the rounding of short sums."""
    np.testing.assert_allclose(ours.numpy() if isinstance(ours, Tensor) else ours,
                               theirs.detach().numpy(), rtol=1e-12, atol=1e-12)


def torch_grads(torch, f, arrays, cotangent_seed=0):
    """f(*torch tensors), and d<u, f>/d(each input) for a random u."""
    inputs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = f(*inputs)
    u = torch.tensor(np.random.default_rng(cotangent_seed).standard_normal(tuple(y.shape)))
    grads = torch.autograd.grad(y, inputs, u)
    return y, grads


def minisg_grads(f, arrays, cotangent_seed=0):
    inputs = [Tensor(a, requires_grad=True) for a in arrays]
    y = f(*inputs)
    u = np.random.default_rng(cotangent_seed).standard_normal(y.shape)
    return y, minisg.grad(y, inputs, grad_outputs=Tensor(u))


def assert_same_as_torch(ours, theirs, arrays):
    """Forward values and the gradients of every input agree with PyTorch's."""
    torch = torch_or_skip()
    y, grads = minisg_grads(ours, arrays)
    y_torch, grads_torch = torch_grads(torch, theirs, arrays)
    assert y.shape == tuple(y_torch.shape)
    assert_close_to_torch(y, y_torch)
    for g, g_torch in zip(grads, grads_torch):
        assert_close_to_torch(g, g_torch)


def torch_pad_4(torch, x, pads, value=0.0):
    """Our (top, left, bottom, right) padding done explicitly in torch (whose order is
    (left, right, top, bottom))."""
    top, left, bottom, right = pads
    return torch.nn.functional.pad(x, (left, right, top, bottom), value=value)


# ----------------------------------------------------------------------------------------------
# conv2d: groups, depthwise, uneven padding
# ----------------------------------------------------------------------------------------------

CONV_CASES = {
    # name: (x shape, weight shape, stride, padding, groups)
    "two_groups": ((1, 4, 5, 5), (4, 2, 3, 3), 1, 1, 2),
    "three_groups_stride": ((2, 6, 5, 4), (3, 2, 2, 3), (2, 1), (1, 0), 3),
    "depthwise": ((1, 3, 5, 5), (3, 1, 3, 3), 1, 1, 3),
    "depthwise_stride_2": ((2, 2, 6, 5), (2, 1, 3, 2), 2, (1, 2), 2),
    "depthwise_two_per_channel": ((1, 2, 4, 4), (4, 1, 3, 3), 1, 1, 2),
    "depthwise_uneven_padding": ((1, 2, 5, 5), (2, 1, 3, 3), 2, (0, 0, 1, 1), 2),  # MobileNetV2's
    "dense_uneven_padding": ((1, 2, 4, 5), (3, 2, 2, 2), 1, (1, 0, 0, 2), 1),
    "grouped_uneven_padding": ((1, 4, 4, 4), (2, 2, 3, 3), (1, 2), (2, 1, 0, 1), 2),
}


def conv_case(name, seed=1):
    x_shape, w_shape, stride, padding, groups = CONV_CASES[name]
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])]

    def f(x, w, b):
        return F.conv2d(x, w, b, stride=stride, padding=padding, groups=groups)

    return f, arrays


@pytest.mark.parametrize("name", sorted(CONV_CASES))
def test_conv2d_groups_first_and_second_order(name):
    f, arrays = conv_case(name)
    assert gradcheck(f, arrays)
    assert gradgradcheck(f, arrays)


def test_depthwise_conv2d_squared_second_order():
    """A nonlinear function of the depthwise output: the second derivative in x is not zero."""
    f, (x, w, _) = conv_case("depthwise_stride_2")
    assert gradgradcheck(lambda x, w: f(x, w, None) ** 2, [x, w])


def test_depthwise_conv2d_third_order():
    """gradgradcheck of the gradient of sum(conv^3): the third derivative of the depthwise maps."""
    f, (x, w, _) = conv_case("depthwise_uneven_padding")

    def gradient(x, w):
        return tuple(minisg.grad((f(x, w, None) ** 3).sum(), [x, w], create_graph=True))

    assert gradgradcheck(gradient, [x, w])


@pytest.mark.parametrize("name", sorted(CONV_CASES))
def test_conv2d_groups_match_torch(name):
    torch = torch_or_skip()
    x_shape, w_shape, stride, padding, groups = CONV_CASES[name]
    pads = (padding,) * 4 if isinstance(padding, int) else padding * 2 if len(padding) == 2 else padding
    f, arrays = conv_case(name)

    def theirs(x, w, b):
        return torch.nn.functional.conv2d(torch_pad_4(torch, x, pads), w, b, stride=stride, groups=groups)

    assert_same_as_torch(f, theirs, arrays)


def test_conv2d_groups_dispatch_to_the_depthwise_kernels(monkeypatch):
    """groups == C runs the depthwise kernels (not a loop of dense convolutions); other groups
    the dense ones."""
    calls = []
    for name in ("depthwise_conv2d_forward", "conv2d_forward"):
        original = getattr(cpu, name)
        monkeypatch.setattr(cpu, name, lambda *a, _o=original, _n=name: calls.append(_n) or _o(*a))
    for case in ("depthwise", "two_groups"):
        f, arrays = conv_case(case)
        f(*[Tensor(a) for a in arrays])
    assert calls == ["depthwise_conv2d_forward", "conv2d_forward", "conv2d_forward"]


def test_depthwise_conv2d_through_the_whole_array_kernels(monkeypatch):
    """The GPU's depthwise kernels (array_depthwise, run here with NumPy) behind F.conv2d:
    same values as the Numba ones, and correct derivatives to second order."""
    f, arrays = conv_case("depthwise_uneven_padding")
    expected = f(*[Tensor(a) for a in arrays]).numpy()
    for name in ("forward", "backward_input", "backward_weight"):
        kernel = f"depthwise_conv2d_{name}"
        monkeypatch.setattr(cpu, kernel, getattr(array_depthwise, kernel))
    np.testing.assert_allclose(f(*[Tensor(a) for a in arrays]).numpy(), expected, rtol=1e-13, atol=1e-13)
    assert gradcheck(f, arrays)
    assert gradgradcheck(f, arrays)


def test_conv2d_argument_errors_name_the_argument():
    x = Tensor(np.zeros((1, 4, 5, 5)))
    with pytest.raises(ValueError, match=r"conv2d: groups=3 must divide the input channels \(4\)"):
        F.conv2d(x, Tensor(np.zeros((3, 1, 3, 3))), groups=3)
    with pytest.raises(ValueError, match=r"input has 4 channels but weight \(4, 1, 3, 3\) expects 2 "
                                         r"\(1 per group, groups=2\)"):
        F.conv2d(x, Tensor(np.zeros((4, 1, 3, 3))), groups=2)
    with pytest.raises(ValueError, match="conv2d: groups must be an int >= 1, got 0"):
        F.conv2d(x, Tensor(np.zeros((4, 4, 3, 3))), groups=0)
    with pytest.raises(ValueError, match=r"conv2d: padding must be .*\(top, left, bottom, right\).*\(1, 2, 3\)"):
        F.conv2d(x, Tensor(np.zeros((4, 4, 3, 3))), padding=(1, 2, 3))
    with pytest.raises(ValueError, match=r"kernel \(7, 7\) is larger than the input \(5, 5\) padded by "
                                         r"\(top, left, bottom, right\) = \(0, 0, 1, 1\)"):
        F.conv2d(x, Tensor(np.zeros((4, 4, 7, 7))), padding=(0, 0, 1, 1))


# ----------------------------------------------------------------------------------------------
# the depthwise kernels against the reference loops
# ----------------------------------------------------------------------------------------------

DEPTHWISE_KERNEL_CASES = [
    # (x shape, kernel (KH, KW), stride, padding)
    ((2, 3, 7, 9), (3, 3), (1, 1), (1, 1)),
    ((2, 3, 8, 7), (3, 2), (2, 1), (0, 2)),
    ((1, 4, 8, 9), (2, 3), (1, 2), (1, 0)),   # stride 2 along the rows of a plane only
    ((1, 2, 5, 5), (5, 5), (2, 2), (2, 2)),
    ((2, 2, 6, 6), (1, 1), (1, 1), (0, 0)),
    ((1, 2, 9, 10), (3, 3), (3, 3), (2, 1)),  # padding only partly read
]
DEPTHWISE_MODULES = {"cpu": cpu, "array_depthwise": array_depthwise}


def assert_kernel_close(actual, expected):
    eps = 1e-12 if expected.dtype == np.float64 else 1e-5
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=eps, atol=eps * scale)


@pytest.mark.parametrize("module", sorted(DEPTHWISE_MODULES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_shape, kernel, stride, padding", DEPTHWISE_KERNEL_CASES)
def test_depthwise_kernels_match_reference(module, dtype, x_shape, kernel, stride, padding):
    kernels = DEPTHWISE_MODULES[module]
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((x_shape[1], 1) + kernel).astype(dtype)
    y = reference.depthwise_conv2d_forward(x, w, stride, padding)
    gy = rng.standard_normal(y.shape).astype(dtype)
    assert_kernel_close(kernels.depthwise_conv2d_forward(x, w, stride, padding), y)
    assert_kernel_close(kernels.depthwise_conv2d_backward_input(gy, w, x_shape[2:], stride, padding),
                        reference.depthwise_conv2d_backward_input(gy, w, x_shape[2:], stride, padding))
    assert_kernel_close(kernels.depthwise_conv2d_backward_weight(x, gy, kernel, stride, padding),
                        reference.depthwise_conv2d_backward_weight(x, gy, kernel, stride, padding))


def test_depthwise_reference_is_the_dense_convolution_of_a_block_diagonal_weight():
    """The oracle itself: depthwise == dense conv2d whose weight is zero between channels."""
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((3, 1, 3, 2))
    dense = np.zeros((3, 3, 3, 2))
    for c in range(3):
        dense[c, c] = w[c, 0]
    np.testing.assert_allclose(reference.depthwise_conv2d_forward(x, w, (2, 1), (1, 1)),
                               reference.conv2d_forward(x, dense, (2, 1), (1, 1)), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("module", sorted(DEPTHWISE_MODULES))
def test_depthwise_kernels_are_adjoint(module):
    """<backward_input(gy), dx> == <gy, forward(dx)> and <backward_weight(x, gy), dw> == <gy, forward(x, dw)>."""
    kernels = DEPTHWISE_MODULES[module]
    rng = np.random.default_rng(4)
    stride, padding = (2, 1), (1, 2)
    x, w, dx, dw = (rng.standard_normal(s) for s in [(2, 3, 7, 6), (3, 1, 3, 3), (2, 3, 7, 6), (3, 1, 3, 3)])
    gy = rng.standard_normal(kernels.depthwise_conv2d_forward(x, w, stride, padding).shape)
    gx = kernels.depthwise_conv2d_backward_input(gy, w, x.shape[2:], stride, padding)
    np.testing.assert_allclose(np.vdot(gx, dx), np.vdot(gy, kernels.depthwise_conv2d_forward(dx, w, stride, padding)),
                               rtol=1e-12)
    gw = kernels.depthwise_conv2d_backward_weight(x, gy, (3, 3), stride, padding)
    np.testing.assert_allclose(np.vdot(gw, dw), np.vdot(gy, kernels.depthwise_conv2d_forward(x, dw, stride, padding)),
                               rtol=1e-12)


@pytest.mark.parametrize("module", sorted(DEPTHWISE_MODULES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("stride", [(1, 1), (1, 2)])
def test_depthwise_forward_is_bit_identical_for_identical_patches(module, dtype, stride):
    """An input that repeats every 3 rows and 4 columns: windows 3 rows or 4 columns apart
    see the same patch and must give the very same bits (max-pool ties stay ties), also
    along the zero padding of the top edge."""
    kernels = DEPTHWISE_MODULES[module]
    rng = np.random.default_rng(5)
    tile = (rng.standard_normal((2, 3, 3, 4)) * 10).astype(dtype)
    x = np.tile(tile, (1, 1, 5, 4))                          # (2, 3, 15, 16)
    w = rng.standard_normal((3, 1, 3, 3)).astype(dtype)
    y = kernels.depthwise_conv2d_forward(x, w, stride, (1, 1))
    column_period = 4 // stride[1]
    inner = y[:, :, 1:-1]                                     # windows away from the top and bottom padding
    np.testing.assert_array_equal(inner[:, :, 3:], inner[:, :, :-3])
    np.testing.assert_array_equal(y[:, :, :, 1 + column_period:-1], y[:, :, :, 1:-1 - column_period])
    assert not np.array_equal(y[:, :, 1:-1, 1], y[:, :, 1:-1, 2])  # the check can fail: values differ


def test_gpu_depthwise_kernels_match_reference():
    """On a machine with CuPy and a GPU: the gpu module's depthwise kernels on CuPy arrays."""
    cupy = pytest.importorskip("cupy")
    if not minisg.gpu_available():
        pytest.skip("gpu backend: no usable CUDA GPU")
    from minisg.kernels import gpu
    for x_shape, kernel, stride, padding in DEPTHWISE_KERNEL_CASES:
        rng = np.random.default_rng(2)
        x, w = rng.standard_normal(x_shape), rng.standard_normal((x_shape[1], 1) + kernel)
        y = reference.depthwise_conv2d_forward(x, w, stride, padding)
        gy = rng.standard_normal(y.shape)
        on_gpu = [cupy.asarray(a) for a in (x, w, gy)]
        assert_kernel_close(cupy.asnumpy(gpu.depthwise_conv2d_forward(on_gpu[0], on_gpu[1], stride, padding)), y)
        assert_kernel_close(cupy.asnumpy(gpu.depthwise_conv2d_backward_input(on_gpu[2], on_gpu[1], x_shape[2:], stride, padding)),
                            reference.depthwise_conv2d_backward_input(gy, w, x_shape[2:], stride, padding))
        assert_kernel_close(cupy.asnumpy(gpu.depthwise_conv2d_backward_weight(on_gpu[0], on_gpu[2], kernel, stride, padding)),
                            reference.depthwise_conv2d_backward_weight(x, gy, kernel, stride, padding))


def test_depthwise_kernels_check_the_weight_shape():
    x = np.zeros((1, 3, 4, 4))
    for kernels in DEPTHWISE_MODULES.values():
        with pytest.raises(ValueError, match=r"w must have shape \(3, 1, KH, KW\) for 3 channels, got \(3, 2, 3, 3\)"):
            kernels.depthwise_conv2d_forward(x, np.zeros((3, 2, 3, 3)), (1, 1), (0, 0))


# ----------------------------------------------------------------------------------------------
# pooling with padding and ceil_mode
# ----------------------------------------------------------------------------------------------

POOL_CASES = {
    # name: (x shape, kernel, stride, padding, ceil_mode)
    "padded": ((1, 2, 5, 5), 3, 2, 1, False),
    "ceil": ((1, 2, 6, 6), 3, 2, 0, True),            # SqueezeNet's max-pools: a last partial window
    "ceil_padded": ((2, 1, 6, 7), 2, 2, 1, True),
    "ceil_window_dropped": ((1, 1, 5, 5), 2, 2, 1, True),  # the ceil window would start in the padding
    "per_axis": ((1, 2, 6, 5), (3, 2), (2, 1), (1, 0), True),
    "uneven_padding": ((1, 2, 5, 6), 3, 2, (0, 1, 1, 0), False),
    "uneven_padding_ceil": ((1, 1, 6, 5), 3, 2, (1, 0, 0, 1), True),
}


def pool_args(name):
    x_shape, kernel, stride, padding, ceil_mode = POOL_CASES[name]
    return spread(x_shape, np.random.default_rng(6)), dict(kernel_size=kernel, stride=stride,
                                                           padding=padding, ceil_mode=ceil_mode)


@pytest.mark.parametrize("name", sorted(POOL_CASES))
def test_max_pool2d_padding_first_and_second_order(name):
    x, args = pool_args(name)
    assert gradcheck(lambda x: F.max_pool2d(x, **args), [x])
    assert gradgradcheck(lambda x: F.max_pool2d(x, **args) ** 2, [x])


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("name", sorted(POOL_CASES))
def test_avg_pool2d_first_and_second_order(name, count_include_pad):
    x, args = pool_args(name)
    assert gradcheck(lambda x: F.avg_pool2d(x, count_include_pad=count_include_pad, **args), [x])
    assert gradgradcheck(lambda x: F.avg_pool2d(x, count_include_pad=count_include_pad, **args) ** 2, [x])


def loop_avg_pool(x, kernel, stride, pads, ceil_mode, count_include_pad):
    """avg_pool2d as plain loops over the windows of the padded plane (any 4-tuple padding):
    a window is clipped to the padded input, and averaged over all its positions or over those
    inside the input."""
    (kh, kw), (sh, sw), (top, left, bottom, right) = kernel, stride, pads
    H, W = x.shape[2:]
    padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    inside = np.pad(np.ones((H, W)), ((top, bottom), (left, right)))

    def count(size, k, s, before, after):
        n = -(-(size + before + after - k) // s) if ceil_mode else (size + before + after - k) // s
        return n if ceil_mode and n * s >= size + before else n + 1

    out = np.zeros(x.shape[:2] + (count(H, kh, sh, top, bottom), count(W, kw, sw, left, right)))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
            window = padded[:, :, rows, cols]
            divisor = window.shape[2] * window.shape[3] if count_include_pad else inside[rows, cols].sum()
            out[:, :, i, j] = window.sum(axis=(2, 3)) / divisor
    return out


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("name", sorted(POOL_CASES))
def test_avg_pool2d_matches_loops_over_the_padded_windows(name, count_include_pad):
    x, args = pool_args(name)
    kernel = minisg.window_args.pair(args["kernel_size"], "k", "test", 1)
    stride = minisg.window_args.pair(args["stride"], "s", "test", 1)
    pads = minisg.window_args.padding4(args["padding"], "test")
    expected = loop_avg_pool(x, kernel, stride, pads, args["ceil_mode"], count_include_pad)
    y = F.avg_pool2d(Tensor(x), count_include_pad=count_include_pad, **args).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-13, atol=1e-13)


def pool_grid():
    """Every small geometry PyTorch accepts: sizes, windows, strides, paddings up to half the window."""
    for size in (4, 5, 6, 7):
        for kernel in (2, 3):
            for stride in (1, 2, 3):
                for padding in range(kernel // 2 + 1):
                    for ceil_mode in (False, True):
                        yield size, kernel, stride, padding, ceil_mode


def test_pool_output_sizes_and_values_match_torch_on_a_grid():
    torch = torch_or_skip()
    rng = np.random.default_rng(7)
    for size, kernel, stride, padding, ceil_mode in pool_grid():
        x = spread((1, 2, size, size + 1), rng)
        args = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
        assert_close_to_torch(F.max_pool2d(Tensor(x), **args), torch.nn.functional.max_pool2d(torch.tensor(x), **args))
        for include in (True, False):
            assert_close_to_torch(F.avg_pool2d(Tensor(x), count_include_pad=include, **args),
                                  torch.nn.functional.avg_pool2d(torch.tensor(x), count_include_pad=include, **args))


@pytest.mark.parametrize("name", ["padded", "ceil", "ceil_padded", "ceil_window_dropped", "per_axis"])
def test_pool_gradients_match_torch(name):
    torch = torch_or_skip()
    x, args = pool_args(name)
    assert_same_as_torch(lambda x: F.max_pool2d(x, **args), lambda x: torch.nn.functional.max_pool2d(x, **args), [x])
    for include in (True, False):
        assert_same_as_torch(lambda x: F.avg_pool2d(x, count_include_pad=include, **args),
                             lambda x: torch.nn.functional.avg_pool2d(x, count_include_pad=include, **args), [x])


@pytest.mark.parametrize("name", ["uneven_padding"])
def test_uneven_pool_padding_matches_torch_on_an_explicitly_padded_input(name):
    """A 4-tuple padding is the unpadded pool of the input padded by hand: with -inf for max,
    with zeros for avg (which then counts the padding, count_include_pad=True)."""
    torch = torch_or_skip()
    x, args = pool_args(name)
    pads, plain = args["padding"], dict(args, padding=0)
    assert_same_as_torch(lambda x: F.max_pool2d(x, **args),
                         lambda x: torch.nn.functional.max_pool2d(torch_pad_4(torch, x, pads, -np.inf), **plain), [x])
    assert_same_as_torch(lambda x: F.avg_pool2d(x, **args),
                         lambda x: torch.nn.functional.avg_pool2d(torch_pad_4(torch, x, pads), **plain), [x])


def test_max_pool2d_padding_never_wins():
    """All-negative input: the zero or -inf of the padding must not be the maximum."""
    x = Tensor(-1.0 - np.arange(16.0).reshape(1, 1, 4, 4), requires_grad=True)
    y = F.max_pool2d(x, 3, 2, padding=1, ceil_mode=True)
    assert np.all(y.numpy() < 0)
    y.sum().backward()
    assert x.grad.numpy().sum() == y.size  # every window's gradient reached an input element


def test_max_pool2d_ties_still_go_to_the_first_maximum_with_padding():
    x = Tensor(np.zeros((1, 1, 3, 3)), requires_grad=True)
    F.max_pool2d(x, 2, 2, padding=1).sum().backward()
    # windows (0,0) (0,1) (1,0) (1,1) of the padded plane start at the input's rows/cols 0 and 1
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])


def test_unpadded_max_pool2d_keeps_the_kernel_path(monkeypatch):
    """No padding, no ceil window: the input goes to the kernel as it is (not a padded copy)."""
    seen = []
    original = cpu.max_pool2d_forward
    monkeypatch.setattr(cpu, "max_pool2d_forward", lambda x, *a: seen.append(x) or original(x, *a))
    x = Tensor(spread((1, 1, 4, 4), np.random.default_rng(8)))
    F.max_pool2d(x, 2)
    F.max_pool2d(x, 3, 2, ceil_mode=True)   # (4 - 3) / 2 rounds up: one more window, padded
    assert seen[0] is x.data and seen[1].shape == (1, 1, 5, 5)


def test_pool_argument_errors():
    x = Tensor(np.zeros((1, 1, 6, 6)))
    with pytest.raises(ValueError, match=r"max_pool2d: padding must be at most half the window \(3, 3\).*\(2, 2, 2, 2\)"):
        F.max_pool2d(x, 3, padding=2)
    with pytest.raises(ValueError, match=r"avg_pool2d: padding must be at most half the window \(2, 2\).*\(0, 0, 2, 0\)"):
        F.avg_pool2d(x, 2, padding=(0, 0, 2, 0))
    with pytest.raises(ValueError, match="avg_pool2d: window 7 is larger than the padded input 6"):
        F.avg_pool2d(x, 7)
    with pytest.raises(ValueError, match="avg_pool2d: stride must be an int >= 1"):
        F.avg_pool2d(x, 2, 0)
    with pytest.raises(ValueError, match=r"global_avg_pool2d: input must be \(N, C, H, W\), got shape \(6, 6\)"):
        F.global_avg_pool2d(Tensor(np.zeros((6, 6))))


def test_window_arguments_may_be_numpy_ints_and_arrays():
    """ONNX attributes often arrive as NumPy values: they work as Python ints do."""
    x = Tensor(spread((1, 2, 6, 6), np.random.default_rng(18)))
    w = Tensor(np.ones((2, 1, 3, 3)))
    np.testing.assert_array_equal(
        F.max_pool2d(x, np.array([3, 3]), np.int64(2), padding=np.array([1, 1, 1, 1]), ceil_mode=np.int64(1)).numpy(),
        F.max_pool2d(x, 3, 2, padding=1, ceil_mode=True).numpy())
    np.testing.assert_array_equal(F.conv2d(x, w, stride=np.array([2, 2]), padding=np.array([0, 0, 1, 1]), groups=np.int64(2)).numpy(),
                                  F.conv2d(x, w, stride=2, padding=(0, 0, 1, 1), groups=2).numpy())


def test_global_avg_pool2d_keeps_the_dims_and_matches_torch():
    torch = torch_or_skip()
    x = np.random.default_rng(9).standard_normal((2, 3, 4, 5))
    assert F.global_avg_pool2d(Tensor(x)).shape == (2, 3, 1, 1)
    assert gradcheck(F.global_avg_pool2d, [x])
    assert gradgradcheck(lambda x: F.global_avg_pool2d(x) ** 2, [x])
    assert_same_as_torch(F.global_avg_pool2d, lambda x: torch.nn.functional.adaptive_avg_pool2d(x, 1), [x])


# ----------------------------------------------------------------------------------------------
# pad, concat, activations, batch_norm
# ----------------------------------------------------------------------------------------------

def test_pad_first_and_second_order_and_values():
    x = np.random.default_rng(10).standard_normal((2, 3, 4))
    widths = ((0, 1), (2, 0), (1, 3))
    y = F.pad(Tensor(x), widths, value=2.5)
    np.testing.assert_array_equal(y.numpy(), np.pad(x, widths, constant_values=2.5))
    assert gradcheck(lambda x: F.pad(x, widths, value=2.5), [x])
    assert gradgradcheck(lambda x: F.pad(x, widths, value=-1.0) ** 2, [x])


def test_pad_backward_crops_and_its_backward_pads():
    x = Tensor(np.ones((1, 2)), requires_grad=True)
    u = Tensor(np.arange(8.0).reshape(2, 4), requires_grad=True)   # the cotangent, differentiated next
    y = F.pad(x, ((1, 0), (0, 2)), value=-np.inf)
    (g,) = minisg.grad(y, x, grad_outputs=u, create_graph=True)
    np.testing.assert_array_equal(g.numpy(), [[4.0, 5.0]])      # the cotangent's inside
    assert type(g.creator).__name__ == "Crop"
    (gu,) = minisg.grad(g, u, grad_outputs=Tensor(np.ones((1, 2))))
    np.testing.assert_array_equal(gu.numpy(), [[0, 0, 0, 0], [1, 1, 0, 0]])  # zeros around, not -inf


def test_pad_errors_name_pad_width():
    x = Tensor(np.zeros((2, 3)))
    for bad in [((1, 1),), ((1, 1), (1, -1)), ((1, 1), (1,)), 1, ((1, 1), (0.5, 1))]:
        with pytest.raises(ValueError, match=r"pad: pad_width must hold one \(before, after\) pair of ints >= 0 per axis \(2 pairs"):
            F.pad(x, bad)


def test_concat_first_and_second_order():
    rng = np.random.default_rng(11)
    a, b, c = rng.standard_normal((2, 1, 3)), rng.standard_normal((2, 3, 3)), rng.standard_normal((2, 2, 3))
    np.testing.assert_array_equal(F.concat([Tensor(a), Tensor(b), Tensor(c)], axis=1).numpy(),
                                  np.concatenate([a, b, c], axis=1))
    assert gradcheck(lambda a, b, c: F.concat([a, b, c], axis=1), [a, b, c])
    assert gradgradcheck(lambda a, b, c: F.concat([a * b[:, :1], b, c], axis=-2) ** 2, [a, b, c])


def test_concat_errors():
    a, b = Tensor(np.zeros((2, 3))), Tensor(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"concat: the shapes must agree except along axis 1, got \[\(2, 3\), \(3, 3\)\]"):
        F.concat([a, b], axis=1)
    with pytest.raises(ValueError, match="concat: axis 2 is out of range"):
        F.concat([a, a], axis=2)
    with pytest.raises(TypeError, match="concat: the tensors must share one dtype"):
        F.concat([a, Tensor(np.zeros((2, 3), np.float32))], axis=0)
    with pytest.raises(ValueError, match="concat: needs at least one tensor"):
        F.concat([])


ACTIVATIONS = {
    # name: (our op, torch's op given the torch module)
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda t: lambda x: t.nn.functional.leaky_relu(x, 0.2)),
    "leaky_relu_default": (F.leaky_relu, lambda t: t.nn.functional.leaky_relu),
    "clip": (lambda x: F.clip(x, -0.36, 0.44), lambda t: lambda x: t.nn.functional.hardtanh(x, -0.36, 0.44)),
    "clip_min_only": (lambda x: F.clip(x, min=-0.36), lambda t: lambda x: t.clamp(x, min=-0.36)),
    "clip_max_only": (lambda x: F.clip(x, max=0.44), lambda t: lambda x: t.clamp(x, max=0.44)),
    "relu6": (lambda x: F.relu6(x * 10), lambda t: lambda x: t.nn.functional.relu6(x * 10)),
    "sigmoid": (F.sigmoid, lambda t: t.sigmoid),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_first_and_second_order(name):
    ours, _ = ACTIVATIONS[name]
    x = spread((3, 4, 5), np.random.default_rng(12), step=0.02)   # odd multiples of 0.01: no bound hit
    assert gradcheck(lambda x: ours(x) * x, [x])   # times x: a nonzero second derivative
    assert gradgradcheck(lambda x: ours(x) * x, [x])


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_match_torch(name):
    torch = torch_or_skip()
    ours, theirs = ACTIVATIONS[name]
    x = spread((3, 4, 5), np.random.default_rng(13), step=0.02)
    assert_same_as_torch(ours, theirs(torch), [x])


def test_clip_gradient_is_zero_on_the_bounds_as_torch_relu6():
    x = Tensor(np.array([-1.0, 0.0, 3.0, 6.0, 7.0]), requires_grad=True)
    (g,) = minisg.grad(F.relu6(x).sum(), x)
    np.testing.assert_array_equal(g.numpy(), [0, 0, 1, 0, 0])
    np.testing.assert_array_equal(F.relu6(x).numpy(), [0, 0, 3, 6, 6])
    torch = pytest.importorskip("torch")
    t = torch.tensor(x.numpy(), requires_grad=True)
    torch.nn.functional.relu6(t).sum().backward()
    np.testing.assert_array_equal(g.numpy(), t.grad.numpy())


def test_leaky_relu_and_clip_errors():
    x = Tensor(np.zeros(3))
    with pytest.raises(ValueError, match="clip: min must be at most max, got min=2 and max=1"):
        F.clip(x, 2, 1)
    with pytest.raises(TypeError, match="clip: max must be a number or None"):
        F.clip(x, 0, "6")
    with pytest.raises(TypeError, match="leaky_relu: negative_slope must be a number"):
        F.leaky_relu(x, None)
    assert F.clip(x) is x   # no bound: nothing to do


def batch_norm_arrays(shape=(2, 3, 2, 2), seed=14):
    rng = np.random.default_rng(seed)
    C = shape[1]
    return [rng.standard_normal(shape), rng.standard_normal(C), rng.uniform(0.5, 2.0, C),
            rng.standard_normal(C), rng.standard_normal(C)]


@pytest.mark.parametrize("shape", [(2, 3, 2, 2), (4, 3), (2, 3, 5)])
def test_batch_norm_first_and_second_order_in_every_argument(shape):
    arrays = batch_norm_arrays(shape)
    assert gradcheck(lambda x, m, v, w, b: F.batch_norm(x, m, v, w, b, eps=1e-3), arrays)
    assert gradgradcheck(lambda x, m, v, w, b: F.batch_norm(x, m, v, w, b, eps=1e-3), arrays)


@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_matches_torch(affine):
    torch = torch_or_skip()
    x, mean, var, weight, bias = batch_norm_arrays()

    def ours(x, *weight_and_bias):
        return F.batch_norm(x, mean, var, *weight_and_bias, eps=1e-3)

    def theirs(x, *weight_and_bias):
        return torch.nn.functional.batch_norm(x, torch.tensor(mean), torch.tensor(var), *weight_and_bias,
                                              training=False, eps=1e-3)

    assert_same_as_torch(ours, theirs, [x, weight, bias] if affine else [x])


def test_batch_norm_takes_arrays_in_the_inputs_dtype_and_checks_shapes():
    x = Tensor(np.ones((1, 2, 3, 3), np.float32))
    y = F.batch_norm(x, np.array([1.0, 0.0]), np.array([4.0, 1.0]), eps=0.0 + 1e-12)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy()[0, :, 0, 0], [0.0, 1.0], atol=1e-6)
    with pytest.raises(ValueError, match=r"batch_norm: running_var must have shape \(2,\) for an input with 2 channels, got \(3,\)"):
        F.batch_norm(x, np.zeros(2), np.ones(3))


def test_get_item_gradient_of_slices_equals_the_general_scatter():
    """Slices take the fast copy in GetItemGrad; an index array the add.at path: same result."""
    g = np.random.default_rng(15).standard_normal((2, 2, 3))
    x = Tensor(np.zeros((2, 5, 3)), requires_grad=True)
    (by_slice,) = minisg.grad(x[:, 1:3], x, grad_outputs=Tensor(g))
    (by_array,) = minisg.grad(x[:, np.array([1, 2])], x, grad_outputs=Tensor(g))
    np.testing.assert_array_equal(by_slice.numpy(), by_array.numpy())
    assert np.count_nonzero(by_slice.numpy()) == g.size


# ----------------------------------------------------------------------------------------------
# nn Modules against torch.nn
# ----------------------------------------------------------------------------------------------

def copy_parameters(ours, theirs, torch):
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.numpy()))
        if ours.bias is not None:
            theirs.bias.copy_(torch.tensor(ours.bias.numpy()))


@pytest.mark.parametrize("groups, padding", [(1, 1), (2, (1, 0)), (4, 1)])
def test_conv2d_module_groups_match_torch(groups, padding):
    torch = torch_or_skip()
    ours = nn.Conv2d(4, 8, 3, stride=2, padding=padding, groups=groups, dtype=np.float64)
    theirs = torch.nn.Conv2d(4, 8, 3, stride=2, padding=padding, groups=groups).double()
    assert ours.weight.shape == tuple(theirs.weight.shape)
    copy_parameters(ours, theirs, torch)
    x = np.random.default_rng(16).standard_normal((2, 4, 7, 6))
    assert_close_to_torch(ours(Tensor(x)), theirs(torch.tensor(x)))
    assert f"groups={groups}" in repr(ours) or groups == 1


def test_conv2d_module_uneven_padding_and_group_errors():
    layer = nn.Conv2d(2, 2, 3, stride=2, padding=(0, 0, 1, 1), groups=2, dtype=np.float64)
    assert layer(Tensor(np.ones((1, 2, 6, 6)))).shape == (1, 2, 3, 3)
    with pytest.raises(ValueError, match=r"Conv2d: groups must be an int >= 1 that divides in_channels \(4\) and out_channels \(6\), got 4"):
        nn.Conv2d(4, 6, 3, groups=4)


def test_pool_and_activation_modules_match_torch():
    torch = torch_or_skip()
    x = spread((2, 3, 7, 7), np.random.default_rng(17), step=0.05)
    pairs = [
        (nn.MaxPool2d(3, 2, padding=1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, padding=1, ceil_mode=True)),
        (nn.MaxPool2d(3, 2, ceil_mode=True), torch.nn.MaxPool2d(3, 2, ceil_mode=True)),
        (nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
         torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)),
        (nn.AvgPool2d(2), torch.nn.AvgPool2d(2)),
        (nn.LeakyReLU(0.1), torch.nn.LeakyReLU(0.1)),
        (nn.ReLU6(), torch.nn.ReLU6()),
        (nn.Sigmoid(), torch.nn.Sigmoid()),
        (nn.ZeroPad2d((1, 2, 0, 3)), torch.nn.ZeroPad2d((1, 2, 0, 3))),
        (nn.ZeroPad2d(1), torch.nn.ZeroPad2d(1)),
    ]
    for ours, theirs in pairs:
        assert_close_to_torch(ours(Tensor(x)), theirs(torch.tensor(x)))
    assert repr(pairs[0][0]) == "MaxPool2d(3, stride=2, padding=1, ceil_mode=True)"


def test_batch_norm_module_matches_torch_eval_and_keeps_running_statistics_in_its_state_dict():
    torch = torch_or_skip()
    ours, theirs = nn.BatchNorm2d(3, eps=1e-3, dtype=np.float64), torch.nn.BatchNorm2d(3, eps=1e-3).double().eval()
    arrays = batch_norm_arrays()
    state = {"weight": arrays[3], "bias": arrays[4], "running_mean": arrays[1], "running_var": arrays[2]}
    ours.load_state_dict(state)
    theirs.load_state_dict({k: torch.tensor(v) for k, v in state.items()}, strict=False)
    assert_close_to_torch(ours(Tensor(arrays[0])), theirs(torch.tensor(arrays[0])))
    saved = ours.state_dict()
    assert sorted(saved) == sorted(state)
    for name, value in state.items():
        np.testing.assert_array_equal(saved[name], value)
    assert [name for name, _ in ours.named_parameters()] == ["weight", "bias"]  # no optimizer step on the statistics
    with pytest.raises(KeyError, match="running_var"):
        ours.load_state_dict({k: v for k, v in state.items() if k != "running_var"})
