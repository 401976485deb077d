"""Layers as Modules (PyTorch names): parameters, train/eval, state_dict, named Sequential."""
import contextlib
import math
from collections import OrderedDict

import numpy as np

from . import backend
from . import functional as F
from .autograd import Tensor


class Parameter(Tensor):
    """A Tensor that a Module owns and an optimizer updates (requires_grad=True)."""

    def __init__(self, data):
        super().__init__(data, requires_grad=True)


class Module:
    """Base class: a callable with named sub-modules and parameters."""

    def __init__(self):
        self.training = True

    def forward(self, *args):
        raise NotImplementedError

    def __call__(self, *args):
        return self.forward(*args)

    def named_children(self):
        return [(k, v) for k, v in vars(self).items() if isinstance(v, Module)]

    def named_parameters(self, prefix=""):
        """(dotted name, Parameter) pairs, e.g. ('conv1.weight', ...), in definition order."""
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child.named_parameters(prefix + name + ".")

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def train(self, mode=True):
        self.training = mode
        for _, child in self.named_children():
            child.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def state_dict(self):
        """{name: NumPy array copy} of every parameter."""
        return OrderedDict((name, p.numpy().copy()) for name, p in self.named_parameters())

    def load_state_dict(self, state):
        """Copy arrays into the parameters; every key and shape must match (the error names them)."""
        own = dict(self.named_parameters())
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        for name, p in own.items():
            value = np.asarray(backend.to_numpy(state[name]))
            if value.shape != p.shape:
                raise ValueError(f"load_state_dict: {name} has shape {value.shape}, the model expects {p.shape}")
            p.data = p.xp.asarray(value.astype(p.dtype))
        return self

    def to(self, device):
        """Move every parameter to 'cpu' or 'gpu' in place; returns self."""
        for p in self.parameters():
            p.data = backend.to_device(p.data, device)
            p.grad = None
        return self

    def astype(self, dtype):
        """Cast every parameter (e.g. to float64 for gradient checks); returns self."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        return self

    def __repr__(self):
        return f"{type(self).__name__}()"


def _all_modules(module):
    """module and every module below it (anything with named_children counts)."""
    yield module
    for _, child in getattr(module, "named_children", list)():
        yield from _all_modules(child)


@contextlib.contextmanager
def evaluation_mode(model):
    """Eval mode (dropout off) with frozen parameters; each flag is restored afterwards.

    Freezing (requires_grad=False) keeps the weight gradients, which no sensitivity map needs,
    out of every backward pass: the conv weight gradient would cost as much as the input's.
    A model that is not a Module (a plain function) is left as it is.
    """
    modules = [m for m in _all_modules(model) if isinstance(m, Module)]
    saved = [(m, m.training) for m in modules]
    frozen = [(p, p.requires_grad) for p in (model.parameters() if isinstance(model, Module) else [])]
    for module in modules:
        module.training = False
    for parameter, _ in frozen:
        parameter.requires_grad = False
    try:
        yield model
    finally:
        for module, training in saved:
            module.training = training
        for parameter, requires_grad in frozen:
            parameter.requires_grad = requires_grad


def _truncated_normal(rng, shape, std):
    """Normal(0, std) with draws beyond 2 std redrawn (TensorFlow's truncated_normal)."""
    values = rng.normal(0.0, std, size=shape)
    outside = np.abs(values) > 2 * std
    while outside.any():
        values[outside] = rng.normal(0.0, std, size=int(outside.sum()))
        outside = np.abs(values) > 2 * std
    return values


def _init_weight(shape, fan_in, init, rng, dtype):
    rng = rng if rng is not None else np.random.default_rng(0)
    if init == "kaiming":  # PyTorch's default: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))
        bound = 1.0 / math.sqrt(fan_in)
        values = rng.uniform(-bound, bound, size=shape)
    elif isinstance(init, tuple) and init[0] == "truncated_normal":
        values = _truncated_normal(rng, shape, init[1])
    else:
        raise ValueError(f"init must be 'kaiming' or ('truncated_normal', std), got {init!r}")
    return Parameter(backend.default_xp().asarray(values.astype(dtype)))


def _init_bias(size, fan_in, bias_init, rng, dtype):
    if bias_init is None:
        bound = 1.0 / math.sqrt(fan_in)
        rng = rng if rng is not None else np.random.default_rng(0)
        values = rng.uniform(-bound, bound, size=size)
    else:
        values = np.full(size, bias_init)
    return Parameter(backend.default_xp().asarray(values.astype(dtype)))


class Conv2d(Module):
    """Weight (out, in, kh, kw) and bias (out,), PyTorch layout."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 init="kaiming", bias_init=None, rng=None, dtype=np.float32):
        super().__init__()
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        if padding == "same":
            if stride != 1 or kh % 2 == 0 or kw % 2 == 0:
                raise ValueError("Conv2d: padding='same' needs stride 1 and odd kernel sizes")
            padding = (kh // 2, kw // 2)
        self.stride, self.padding = stride, padding
        fan_in = in_channels * kh * kw
        self.weight = _init_weight((out_channels, in_channels, kh, kw), fan_in, init, rng, dtype)
        self.bias = _init_bias(out_channels, fan_in, bias_init, rng, dtype) if bias else None

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def __repr__(self):
        o, i, kh, kw = self.weight.shape
        return f"Conv2d({i}, {o}, kernel_size=({kh}, {kw}), stride={self.stride}, padding={self.padding})"


class Linear(Module):
    """Weight (out, in) and bias (out,), PyTorch layout."""

    def __init__(self, in_features, out_features, bias=True, init="kaiming", bias_init=None,
                 rng=None, dtype=np.float32):
        super().__init__()
        self.weight = _init_weight((out_features, in_features), in_features, init, rng, dtype)
        self.bias = _init_bias(out_features, in_features, bias_init, rng, dtype) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def __repr__(self):
        return f"Linear({self.weight.shape[1]}, {self.weight.shape[0]})"


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)

    def __repr__(self):
        return "ReLU()"


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride)

    def __repr__(self):
        return f"MaxPool2d({self.kernel_size}, stride={self.stride or self.kernel_size})"


class Dropout(Module):
    """Inverted dropout in training mode, identity in eval mode. Seeded by its own Generator."""

    def __init__(self, p=0.5, seed=0):
        super().__init__()
        self.p = p
        self.rng = np.random.default_rng(seed)

    def forward(self, x):
        return F.dropout(x, self.p, self.training, self.rng)

    def __repr__(self):
        return f"Dropout(p={self.p})"


class Flatten(Module):
    def forward(self, x):
        return F.flatten(x, 1)

    def __repr__(self):
        return "Flatten()"


class Softplus(Module):
    def forward(self, x):
        return F.softplus(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class GlobalAvgPool2d(Module):
    """Mean over H and W: (N, C, H, W) -> (N, C)."""

    def forward(self, x):
        return F.mean(x, axis=(2, 3))


class Sequential(Module):
    """Layers run in order, each with a name: Sequential(("conv1", Conv2d(...)), ("relu1", ReLU()), ...).

    Unnamed layers get their position as name. ``model["relu2"]`` is a layer;
    ``model.split("relu2")`` returns (body up to and including relu2, head after it), so
    ``head(body(x)) == model(x)`` and a method can look at relu2's activations.
    """

    def __init__(self, *layers):
        super().__init__()
        self.layers = OrderedDict()
        for position, item in enumerate(layers):
            name, layer = item if isinstance(item, tuple) else (str(position), item)
            if name in self.layers:
                raise ValueError(f"Sequential: the layer name {name!r} is used twice")
            self.layers[name] = layer

    def named_children(self):
        return list(self.layers.items())

    def forward(self, x):
        for layer in self.layers.values():
            x = layer(x)
        return x

    @property
    def layer_names(self):
        return list(self.layers)

    def __getitem__(self, name):
        if name not in self.layers:
            raise KeyError(f"unknown layer {name!r}; the layers are {self.layer_names}")
        return self.layers[name]

    def split(self, name):
        """(body, head) around layer `name`: body ends with it, head holds what follows."""
        if name not in self.layers:
            raise KeyError(f"unknown layer {name!r}; the layers are {self.layer_names}")
        items = list(self.layers.items())
        cut = [n for n, _ in items].index(name) + 1
        body, head = Sequential(*items[:cut]), Sequential(*items[cut:])
        body.training = head.training = self.training
        return body, head

    def __repr__(self):
        inner = "\n".join(f"  ({name}): {layer!r}" for name, layer in self.layers.items())
        return f"Sequential(\n{inner}\n)"
