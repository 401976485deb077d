"""Modules, named Sequential with split, state_dict, optimizers, and the paper's model."""
import numpy as np
import pytest

import minisg
from minisg import F, Tensor, models, nn, optim


def tiny_net(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        ("conv1", nn.Conv2d(1, 2, 3, padding=1, rng=rng, dtype=dtype)),
        ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc", nn.Linear(8, 3, rng=rng, dtype=dtype)),
    )


def test_named_parameters_follow_pytorch_names_and_layout():
    net = models.mnist_cnn()
    shapes = {name: p.shape for name, p in net.named_parameters()}
    assert shapes == {
        "conv1.weight": (32, 1, 5, 5), "conv1.bias": (32,),
        "conv2.weight": (64, 32, 5, 5), "conv2.bias": (64,),
        "fc1.weight": (1024, 3136), "fc1.bias": (1024,),
        "fc2.weight": (10, 1024), "fc2.bias": (10,),
    }
    assert net.layer_names == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten",
                               "fc1", "relu3", "dropout", "fc2"]


def test_mnist_cnn_init_is_truncated_normal_with_bias_point_one():
    net = models.mnist_cnn(seed=3)
    w = net["fc1"].weight.numpy()
    assert np.abs(w).max() <= 0.2 + 1e-7
    assert 0.08 < w.std() < 0.1  # a normal truncated at 2 std has std ~0.088 * (0.1 / 0.088)
    assert np.all(net["conv2"].bias.numpy() == np.float32(0.1))


def test_mnist_cnn_shapes_and_split():
    net = models.mnist_cnn().eval()
    x = Tensor(np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32))
    body, head = net.split("relu2")
    activations = body(x)
    assert activations.shape == (2, 64, 14, 14)
    np.testing.assert_allclose(head(activations).numpy(), net(x).numpy(), rtol=1e-5)
    with pytest.raises(KeyError, match=r"unknown layer 'relu9'; the layers are \['conv1'"):
        net.split("relu9")


def test_train_and_eval_switch_dropout():
    net = models.mnist_cnn()
    x = Tensor(np.ones((1, 1, 28, 28), dtype=np.float32))
    net.eval()
    np.testing.assert_array_equal(net(x).numpy(), net(x).numpy())
    net.train()
    assert not np.array_equal(net(x).numpy(), net(x).numpy())


def test_state_dict_round_trip_and_errors():
    a, b = tiny_net(0), tiny_net(1)
    b.load_state_dict(a.state_dict())
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(pa.numpy(), pb.numpy(), err_msg=name)
    state = a.state_dict()
    state["fc.weight"] = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"fc.weight has shape \(2, 2\), the model expects \(3, 8\)"):
        b.load_state_dict(state)
    del state["fc.weight"]
    with pytest.raises(KeyError, match=r"missing keys \['fc.weight'\]"):
        b.load_state_dict(state)


def test_sgd_momentum_matches_the_formula():
    p = nn.Parameter(np.array([1.0, 2.0]))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    for _ in range(2):
        opt.zero_grad()
        (p * p).sum().backward()
        opt.step()
    # step 1: v = 2p0 = [2, 4], p1 = p0 - 0.1 v = [0.8, 1.6]
    # step 2: v = 0.9*[2, 4] + 2*p1 = [3.4, 6.8], p2 = p1 - 0.1 v = [0.46, 0.92]
    np.testing.assert_allclose(p.numpy(), [0.46, 0.92])


def test_adam_first_step_moves_each_weight_by_lr():
    p = nn.Parameter(np.array([1.0, -3.0, 0.5]))
    opt = optim.Adam([p], lr=0.01)
    opt.zero_grad()
    (p * Tensor(np.array([2.0, -5.0, 0.1]))).sum().backward()
    opt.step()
    # with bias correction the first update is lr * sign(grad) (up to eps)
    np.testing.assert_allclose(p.numpy(), [0.99, -2.99, 0.49], atol=1e-6)


def test_adam_minimises_a_quadratic():
    p = nn.Parameter(np.array([3.0, -2.0]))
    opt = optim.Adam([p], lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        ((p - Tensor(np.array([1.0, 1.0]))) ** 2).sum().backward()
        opt.step()
    np.testing.assert_allclose(p.numpy(), [1.0, 1.0], atol=1e-2)


def test_optimizer_argument_errors():
    with pytest.raises(ValueError, match="params: expected at least one Parameter, got an empty list"):
        optim.Adam([])
    with pytest.raises(ValueError, match="lr: expected a finite number > 0, got -1"):
        optim.SGD([nn.Parameter(np.zeros(1))], lr=-1)


def test_a_small_cnn_learns_a_separable_task():
    """Two classes: bright top half vs bright bottom half; a few SGD steps must solve it."""
    rng = np.random.default_rng(0)
    x = rng.random((32, 1, 4, 4)) * 0.2
    y = rng.integers(0, 2, 32)
    x[y == 0, :, :2, :] += 0.8
    x[y == 1, :, 2:, :] += 0.8
    net = nn.Sequential(
        ("conv", nn.Conv2d(1, 4, 3, padding=1, rng=rng, dtype=np.float64)),
        ("relu", nn.ReLU()), ("pool", nn.MaxPool2d(2)), ("flatten", nn.Flatten()),
        ("fc", nn.Linear(16, 2, rng=rng, dtype=np.float64)))
    opt = optim.Adam(net.parameters(), lr=0.05)
    for _ in range(60):
        opt.zero_grad()
        F.cross_entropy(net(Tensor(x)), y).backward()
        opt.step()
    assert (net(Tensor(x)).numpy().argmax(1) == y).mean() == 1.0


def test_module_to_gpu_without_gpu_is_a_clear_error():
    if minisg.gpu_available():
        pytest.skip("a GPU is available here")
    with pytest.raises(minisg.DeviceError, match="pip install minisg"):
        tiny_net().to("gpu")


def test_buffers_travel_with_the_parameters_of_a_container():
    """BatchNorm2d's running statistics are buffers: a Sequential saves, loads and casts them."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(("conv", nn.Conv2d(2, 3, 3, rng=rng)), ("bn", nn.BatchNorm2d(3)))
    model["bn"].running_mean = rng.normal(size=3).astype(np.float32)
    state = model.state_dict()
    assert {"bn.running_mean", "bn.running_var", "bn.weight", "conv.weight"} <= set(state)
    other = nn.Sequential(("conv", nn.Conv2d(2, 3, 3)), ("bn", nn.BatchNorm2d(3)))
    other.load_state_dict(state)
    np.testing.assert_array_equal(other["bn"].running_mean, state["bn.running_mean"])
    assert other.astype(np.float64)["bn"].running_var.dtype == np.float64
    with pytest.raises(KeyError, match=r"missing keys \['bn.running_var'\]"):
        other.load_state_dict({k: v for k, v in state.items() if k != "bn.running_var"})
