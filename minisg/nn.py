"""Layers as Modules (PyTorch names): parameters, train/eval, state_dict, named Sequential."""
import contextlib
import math
import threading
from collections import OrderedDict

import numpy as np

from . import backend
from . import functional as F
from .autograd import FLOAT_DTYPES, Tensor, is_grad_enabled
from .checks import (check_flags, check_float_dtype, check_generator, check_int, check_number, check_probability,
                     check_real, is_int)
from .window_args import check_pool_padding, padding4, pair


class Parameter(Tensor):
    """A Tensor that a Module owns and an optimizer updates (requires_grad=True)."""

    def __init__(self, data):
        super().__init__(data, requires_grad=True)


class Module:
    """Base class: a callable with named sub-modules and parameters.

    Every submodule has a dotted name ("block.conv"); ``run_with_taps(x, names)`` runs the
    model once and also returns those submodules' outputs: how CAM methods read a layer.
    """

    default_cam_layer = None       # CAM methods' layer when given none (None: they pick one)
    # What the model was built to read, for the checks of minisg.methods (None: not recorded):
    # input_shape (C, H, W) of one image, an axis of any size being None (a fully convolutional
    # model: (1, None, None)); input_range (low, high) of the values it was trained on.
    input_shape = None
    input_range = None
    _capture = threading.local()   # .wanted, .taps: what run_with_taps collects in this thread

    def __init__(self):
        self.training = True

    def forward(self, *args):
        raise NotImplementedError

    def __call__(self, *args):
        output = self.forward(*args)
        wanted = getattr(Module._capture, "wanted", None)
        if wanted and id(self) in wanted:          # nothing captured: one lookup, no more
            output = Module._record_tap(output, wanted[id(self)], Module._capture.taps)
        return output

    def named_children(self):
        return [(k, v) for k, v in vars(self).items() if isinstance(v, Module)]

    def named_modules(self, prefix=""):
        """(dotted name, module) for every submodule below this one, depth first:
        ("block", ...), ("block.conv", ...), ("block.relu", ...), ("fc", ...). Not the module itself."""
        for name, child in self.named_children():
            yield prefix + name, child
            yield from child.named_modules(prefix + name + ".")

    @property
    def tensor_names(self):
        """The names run_with_taps accepts: every submodule's dotted name, depth first."""
        return [name for name, _ in self.named_modules()]

    def run_with_taps(self, x, names):
        """(output, {name: Tensor}): ONE forward pass that also returns the named submodules' outputs.

        The taps stay in the autograd graph: grad(score, taps[name]) is dS/dA, and with
        create_graph=True it can be differentiated again. When nothing before a tap needs a
        gradient (frozen parameters, an input without requires_grad: every method's case), the
        tap becomes a leaf, so only what follows it is recorded, as if the model were split
        there. The dict is in call order; a module called twice counts with its last call; a
        submodule that did not run is missing. Per thread: worker threads capture their own.
        """
        wanted = self._modules_to_tap([names] if isinstance(names, str) else names)
        saved = getattr(Module._capture, "wanted", None), getattr(Module._capture, "taps", None)
        Module._capture.wanted, Module._capture.taps = wanted, {}
        try:
            output = self(x)
            return output, Module._capture.taps
        finally:
            Module._capture.wanted, Module._capture.taps = saved   # a run_with_taps inside a forward

    def _modules_to_tap(self, names):
        """{id(submodule): [its requested names]}, or an error naming the unknown one."""
        modules = dict(self.named_modules())
        wanted = {}
        for name in names:
            if name not in modules:
                raise ValueError(f"layer: unknown layer {name!r}; valid layer names: {self.tensor_names}")
            wanted.setdefault(id(modules[name]), []).append(name)
        return wanted

    @staticmethod
    def _record_tap(output, names, taps):
        """Keep a submodule's output under its names (latest call last); make it a leaf when no
        gradient could reach it otherwise, so that the score can be differentiated at it."""
        if (isinstance(output, Tensor) and not output.requires_grad and is_grad_enabled()
                and output.dtype in FLOAT_DTYPES):
            output = Tensor(output.data, requires_grad=True)
        for name in names:
            taps.pop(name, None)
            taps[name] = output
        return output

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

    BUFFERS = ()  # names of plain-array attributes saved with the parameters (BatchNorm2d's statistics)

    def named_buffers(self, prefix=""):
        """(dotted name, array) of every buffer: state that is saved but not trained."""
        for name in self.BUFFERS:
            yield prefix + name, getattr(self, name)
        for name, child in self.named_children():
            yield from child.named_buffers(prefix + name + ".")

    def _map_buffers(self, convert, prefix=""):
        """Replace every buffer, in this module and below, by convert(dotted name, array)."""
        for name in self.BUFFERS:
            setattr(self, name, convert(prefix + name, getattr(self, name)))
        for name, child in self.named_children():
            child._map_buffers(convert, prefix + name + ".")

    def state_dict(self):
        """{name: NumPy array copy} of every parameter and buffer."""
        state = OrderedDict((name, p.numpy().copy()) for name, p in self.named_parameters())
        state.update((name, backend.to_numpy(array).copy()) for name, array in self.named_buffers())
        return state

    def load_state_dict(self, state):
        """Copy arrays into the parameters and buffers; every key and shape must match (the error
        names them)."""
        own = {name: p.data for name, p in self.named_parameters()}
        own.update(self.named_buffers())
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        for name, current in own.items():
            value = np.asarray(backend.to_numpy(state[name]))
            if value.shape != current.shape:
                raise ValueError(f"load_state_dict: {name} has shape {value.shape}, the model expects {current.shape}")

        def converted(name, current):
            return backend.get_array_module(current).asarray(np.asarray(backend.to_numpy(state[name])).astype(current.dtype))

        for name, p in self.named_parameters():
            p.data = converted(name, p.data)
        self._map_buffers(converted)
        return self

    def to(self, device):
        """Move every parameter and buffer to 'cpu' or 'gpu' in place; returns self."""
        for p in self.parameters():
            p.data = backend.to_device(p.data, device)
            p.grad = None
        self._map_buffers(lambda name, array: backend.to_device(array, device))
        return self

    def astype(self, dtype):
        """Cast every parameter and buffer (e.g. to float64 for gradient checks); returns self."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        self._map_buffers(lambda name, array: array.astype(dtype))
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
    rng = check_generator("rng", rng) if rng is not None else np.random.default_rng(0)
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
        values = np.full(size, check_real("bias_init", bias_init))
    return Parameter(backend.default_xp().asarray(values.astype(dtype)))


class Conv2d(Module):
    """Weight (out, in/groups, kh, kw) and bias (out,), PyTorch layout.

    padding: an int, (rows, cols), (top, left, bottom, right) or 'same'. groups splits the
    channels into independent convolutions (groups == in_channels: depthwise), as in F.conv2d.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 init="kaiming", bias_init=None, rng=None, dtype=np.float32, groups=1):
        super().__init__()
        check_int("in_channels", in_channels), check_int("out_channels", out_channels)
        check_flags(bias=bias)
        kh, kw = pair(kernel_size, "kernel_size", "Conv2d", 1)
        pair(stride, "stride", "Conv2d", 1)
        dtype = check_float_dtype("dtype", dtype)
        if isinstance(padding, str) and padding == "same":
            if pair(stride, "stride", "Conv2d", 1) != (1, 1) or kh % 2 == 0 or kw % 2 == 0:
                raise ValueError("Conv2d: padding='same' needs stride 1 and odd kernel sizes")
            padding = (kh // 2, kw // 2)
        padding4(padding, "Conv2d")
        if not is_int(groups) or groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: groups must be an int >= 1 that divides in_channels "
                             f"({in_channels}) and out_channels ({out_channels}), got {groups!r}")
        self.stride, self.padding, self.groups = stride, padding, groups
        fan_in = in_channels // groups * kh * kw
        self.weight = _init_weight((out_channels, in_channels // groups, kh, kw), fan_in, init, rng, dtype)
        self.bias = _init_bias(out_channels, fan_in, bias_init, rng, dtype) if bias else None

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.groups)

    def __repr__(self):
        o, i, kh, kw = self.weight.shape
        groups = f", groups={self.groups}" if self.groups != 1 else ""
        return (f"Conv2d({i * self.groups}, {o}, kernel_size=({kh}, {kw}), stride={self.stride}, "
                f"padding={self.padding}{groups})")


class Linear(Module):
    """Weight (out, in) and bias (out,), PyTorch layout."""

    def __init__(self, in_features, out_features, bias=True, init="kaiming", bias_init=None,
                 rng=None, dtype=np.float32):
        super().__init__()
        check_int("in_features", in_features), check_int("out_features", out_features)
        check_flags(bias=bias)
        dtype = check_float_dtype("dtype", dtype)
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


def _check_pool_arguments(op, kernel_size, stride, padding, ceil_mode):
    """A pooling layer's arguments, checked when it is built (not at its first forward pass)."""
    kernel = pair(kernel_size, "kernel_size", op, 1)
    if stride is not None:
        pair(stride, "stride", op, 1)
    check_pool_padding(padding4(padding, op), kernel, op)
    check_flags(ceil_mode=ceil_mode)


class MaxPool2d(Module):
    """F.max_pool2d: padding (int, (rows, cols) or (top, left, bottom, right)) never wins."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        super().__init__()
        _check_pool_arguments("MaxPool2d", kernel_size, stride, padding, ceil_mode)
        self.kernel_size, self.stride = kernel_size, stride
        self.padding, self.ceil_mode = padding, ceil_mode

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode)

    def __repr__(self):
        extra = (f", padding={self.padding}" if self.padding != 0 else "") + (
            ", ceil_mode=True" if self.ceil_mode else "")
        return f"MaxPool2d({self.kernel_size}, stride={self.stride or self.kernel_size}{extra})"


class Dropout(Module):
    """Inverted dropout in training mode, identity in eval mode. Seeded by its own Generator."""

    def __init__(self, p=0.5, seed=0):
        super().__init__()
        self.p = check_probability("p", p)
        self.rng = np.random.default_rng(check_int("seed", seed, low=0))

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


class AvgPool2d(Module):
    """F.avg_pool2d, with PyTorch's divisor rules (count_include_pad, ceil_mode)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__()
        _check_pool_arguments("AvgPool2d", kernel_size, stride, padding, ceil_mode)
        check_flags(count_include_pad=count_include_pad)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)

    def __repr__(self):
        return (f"AvgPool2d({self.kernel_size}, stride={self.stride or self.kernel_size}, padding="
                f"{self.padding}, ceil_mode={self.ceil_mode}, count_include_pad={self.count_include_pad})")


class BatchNorm2d(Module):
    """Batch normalisation with fixed running statistics (inference only: it always normalises
    with running_mean and running_var, in training mode too; minisg does not train it).

    weight and bias are Parameters (None with affine=False); running_mean and running_var are
    plain arrays (no gradient, no optimizer step): buffers, which state_dict, load_state_dict,
    to() and astype() handle with the parameters (Module.named_buffers). momentum
    is accepted for PyTorch's signature and unused (it only matters in training).
    """

    BUFFERS = ("running_mean", "running_var")

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, dtype=np.float32):
        super().__init__()
        check_int("num_features", num_features), check_number("eps", eps, positive=True)
        dtype = check_float_dtype("dtype", dtype)
        xp = backend.default_xp()
        self.eps, self.momentum = eps, momentum
        self.weight = Parameter(xp.ones(num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(xp.zeros(num_features, dtype=dtype)) if affine else None
        self.running_mean = xp.zeros(num_features, dtype=dtype)
        self.running_var = xp.ones(num_features, dtype=dtype)

    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.eps)

    def __repr__(self):
        return f"BatchNorm2d({self.running_mean.shape[0]}, eps={self.eps}, affine={self.weight is not None})"


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = check_real("negative_slope", negative_slope)

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def __repr__(self):
        return f"LeakyReLU(negative_slope={self.negative_slope})"


class ReLU6(Module):
    def forward(self, x):
        return F.relu6(x)

    def __repr__(self):
        return "ReLU6()"


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)

    def __repr__(self):
        return "Sigmoid()"


class ZeroPad2d(Module):
    """Zeros around the (H, W) planes; padding is an int or (left, right, top, bottom) (PyTorch's
    order for this layer, unlike conv2d's (top, left, bottom, right))."""

    def __init__(self, padding):
        super().__init__()
        self.padding = (padding,) * 4 if is_int(padding) else tuple(padding) if hasattr(padding, "__len__") else ()
        if len(self.padding) != 4 or not all(is_int(side) and side >= 0 for side in self.padding):
            raise ValueError(f"ZeroPad2d: padding must be an int >= 0 or (left, right, top, bottom) of them, got "
                             f"{padding!r}")

    def forward(self, x):
        left, right, top, bottom = self.padding
        return F.pad(x, ((0, 0),) * (x.ndim - 2) + ((top, bottom), (left, right)))

    def __repr__(self):
        return f"ZeroPad2d({self.padding})"


class GlobalAvgPool2d(Module):
    """Mean over H and W: (N, C, H, W) -> (N, C)."""

    def forward(self, x):
        return F.mean(x, axis=(2, 3))


class Sequential(Module):
    """Layers run in order, each with a name: Sequential(("conv1", Conv2d(...)), ("relu1", ReLU()), ...).

    Unnamed layers get their position as name. ``model["relu2"]`` is a layer;
    ``model.split("relu2")`` returns (body up to and including relu2, head after it), so
    ``head(body(x)) == model(x)``. (CAM methods read a layer with run_with_taps instead,
    which works on any Module.) A Sequential with a layer named relu2 makes it its
    default_cam_layer: the MNIST networks' last conv layer (METHODS.md §1).
    """

    def __init__(self, *layers):
        super().__init__()
        self.layers = OrderedDict()
        for position, item in enumerate(layers):
            name, layer = item if isinstance(item, tuple) and len(item) == 2 else (str(position), item)
            if not isinstance(name, str) or not callable(layer) or isinstance(layer, type):
                raise TypeError(f"layers: expected Modules or (name, Module) pairs, got {item!r:.80} at position "
                                f"{position}")
            if name in self.layers:
                raise ValueError(f"Sequential: the layer name {name!r} is used twice")
            self.layers[name] = layer
        self.default_cam_layer = "relu2" if "relu2" in self.layers else None

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
        body.input_shape, body.input_range = self.input_shape, self.input_range  # body reads x
        return body, head

    def __repr__(self):
        inner = "\n".join(f"  ({name}): {layer!r}" for name, layer in self.layers.items())
        return f"Sequential(\n{inner}\n)"
