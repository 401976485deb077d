"""Reverse-mode automatic differentiation: Tensor, Function, backward, grad, no_grad.

The one rule that makes higher-order derivatives free: a Function's ``forward`` works on raw
arrays (NumPy or CuPy), but its ``backward`` receives and returns *Tensors* built from minisg
ops. Backpropagation is therefore itself a computation that can be recorded. With
``create_graph=True`` the gradients come back as Tensors with a graph, and differentiating
them again gives 2nd, 3rd, ... derivatives. With ``create_graph=False`` (training) the
backward pass runs under ``no_grad()`` and records nothing.

Gradients **accumulate** into ``.grad`` (as in PyTorch): call ``zero_grad()`` on the optimizer
or module, or set ``t.grad = None``, between steps. ``grad()`` does not touch ``.grad``.
"""
import contextlib
import threading
import weakref

import numpy as np

from . import backend

_state = threading.local()


def is_grad_enabled():
    return getattr(_state, "grad_enabled", True)


@contextlib.contextmanager
def set_grad_enabled(enabled):
    previous = is_grad_enabled()
    _state.grad_enabled = bool(enabled)
    try:
        yield
    finally:
        _state.grad_enabled = previous


def no_grad():
    """Context manager: ops inside record no graph (inference, optimizer updates)."""
    return set_grad_enabled(False)


FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _as_array(value, dtype=None, like=None):
    """Turn a Python number, list or array into an array on the right device."""
    if isinstance(value, Tensor):
        return value.data
    xp = backend.get_array_module(like) if like is not None else backend.default_xp()
    if backend.get_array_module(value) is not np and xp is np:
        raise TypeError("cannot mix a CuPy array into a CPU tensor; move it with .to('cpu') first")
    array = xp.asarray(value, dtype=dtype)
    return array


class Tensor:
    """An n-dimensional array that remembers how it was computed.

    data           the NumPy/CuPy array
    grad           accumulated gradient (a Tensor) after backward(), else None
    requires_grad  whether gradients flow to this tensor
    creator        the Function that produced it (None for leaves)
    """

    __array_priority__ = 1000  # make numpy_array * tensor call Tensor.__rmul__

    def __init__(self, data, requires_grad=False, name=None):
        if isinstance(data, Tensor):
            data = data.data
        if not hasattr(data, "dtype") or not hasattr(data, "shape"):
            data = _as_array(data)
        if data.dtype == np.float16:
            data = data.astype(np.float32)
        if requires_grad and data.dtype not in FLOAT_DTYPES:
            raise TypeError(f"requires_grad needs a float32 or float64 tensor, got dtype {data.dtype}")
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.creator = None
        self.generation = 0
        self.name = name

    # ---- array-like facts -------------------------------------------------------------
    shape = property(lambda self: tuple(self.data.shape))
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: int(self.data.size))
    dtype = property(lambda self: self.data.dtype)
    xp = property(lambda self: backend.get_array_module(self.data))
    device = property(lambda self: backend.device_of(self.data))
    is_leaf = property(lambda self: self.creator is None)

    def __len__(self):
        return self.data.shape[0]

    def __repr__(self):
        text = repr(backend.to_numpy(self.data)).replace("array", "tensor", 1)
        flags = ", requires_grad=True" if self.requires_grad else ""
        where = ", device='gpu'" if self.device == "gpu" else ""
        return f"{text[:-1]}{flags}{where})"

    def numpy(self):
        """A NumPy copy-free view (CPU) or host copy (GPU) of the data."""
        return backend.to_numpy(self.data)

    def item(self):
        if self.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def to(self, device):
        """A copy on 'cpu' or 'gpu' (a differentiable op: gradients flow back across)."""
        from .functional import to_device
        return to_device(self, device)

    def astype(self, dtype):
        from .functional import cast
        return cast(self, dtype)

    def zero_grad(self):
        self.grad = None

    def set_creator(self, function):
        self.creator = function
        self.generation = function.generation + 1

    def backward(self, grad=None, create_graph=False):
        """Backpropagate from this tensor and accumulate d(self)/d(leaf) into each leaf's .grad.

        `grad` is the cotangent (same shape as self); it may be omitted only for a tensor with
        one element. With create_graph=True the stored gradients carry a graph of their own.
        """
        if grad is None and self.size != 1:
            raise RuntimeError(
                f"backward() without `grad` needs a scalar (one-element) tensor; this one has shape "
                f"{self.shape}. Pass grad=<tensor of that shape>, or reduce it first (e.g. .sum())")
        grads = _backpropagate([self], [grad], create_graph, wanted=None)
        for leaf, leaf_grad in grads.items():
            leaf.grad = leaf_grad if leaf.grad is None else _accumulate(leaf.grad, leaf_grad, create_graph)

    # ---- operators (defined in functional/, attached at import time) ----------------
    # __add__, __mul__, __matmul__, __getitem__, sum, mean, reshape, T, ... see functional/__init__.py


def tensor(data, requires_grad=False, dtype=None, device=None):
    """Make a leaf Tensor from a number, list or array (copies it).

    Python floats become float32 unless `dtype` says otherwise; integers stay integers.
    """
    from .checks import as_array, check_flags
    check_flags(requires_grad=requires_grad)
    if isinstance(data, Tensor):
        data = data.data
    kind = data.dtype.kind if hasattr(data, "dtype") else as_array("data", data, "numbers or bools").dtype.kind
    if kind not in "biuf":                        # strings, objects (None, dicts), complex numbers
        raise TypeError(f"data: expected numbers or bools, got {type(data).__name__} {data!r:.80}")
    try:
        dtype = None if dtype is None else np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected a NumPy dtype (e.g. np.float32), got {dtype!r}") from None
    if dtype is None and not hasattr(data, "dtype"):  # Python floats: float32
        dtype = np.float32 if kind == "f" else None
    xp = backend.xp_for(device) if device is not None else (
        backend.get_array_module(data) if hasattr(data, "dtype") else backend.default_xp())
    if device is not None:
        data = backend.to_device(data, device) if hasattr(data, "dtype") else data
    array = xp.array(data, dtype=dtype, copy=True)
    return Tensor(array, requires_grad=requires_grad)


def as_tensor(value, like=None):
    """A Tensor as is; numbers and arrays wrapped (numbers take the dtype of `like`)."""
    if isinstance(value, Tensor):
        return value
    if like is not None and np.isscalar(value):
        return Tensor(like.xp.asarray(value, dtype=like.dtype))
    return Tensor(_as_array(value, like=like.data if like is not None else None))


class Function:
    """One differentiable operation.

    Subclasses implement ``forward(self, *arrays) -> array or tuple of arrays`` using only the
    array module and the kernels, and ``backward(self, *grad_outputs) -> tensor or tuple``,
    using only minisg ops on Tensors (return None for an input that needs no gradient).
    Values needed by backward are kept on ``self``: the input Tensors are ``self.inputs``, and
    ``self.needs_input_grad`` says which of them backward must differentiate (grad() may ask
    for fewer than those that require grad; backward must only read ``self``, never write it).
    """

    def __call__(self, *inputs):
        inputs = [as_tensor(x) for x in inputs]
        outputs = self.forward(*[x.data for x in inputs])
        single = not isinstance(outputs, tuple)
        outputs = [Tensor(y) for y in ((outputs,) if single else outputs)]
        if is_grad_enabled() and any(x.requires_grad for x in inputs):
            self.generation = max(x.generation for x in inputs)
            self.inputs = inputs
            self.needs_input_grad = [x.requires_grad for x in inputs]
            # weak references: an output that nobody holds any more simply gets no gradient,
            # and tensor -> creator -> tensor cycles do not keep big arrays alive
            self.outputs = [weakref.ref(y) for y in outputs]
            self.output_meta = [(y.shape, y.dtype) for y in outputs]
            for y in outputs:
                y.requires_grad = y.data.dtype in FLOAT_DTYPES
                y.set_creator(self)
        return outputs[0] if single else tuple(outputs)

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, *grad_outputs):
        raise NotImplementedError

    @property
    def name(self):
        return type(self).__name__


def _accumulate(total, extra, create_graph):
    if create_graph:
        return total + extra
    return Tensor(total.data + extra.data)


def _topological_order(outputs):
    """Every Function reachable from `outputs`, latest first (so each runs after its users)."""
    seen, order = set(), []
    stack = [y.creator for y in outputs if y.creator is not None]
    while stack:
        function = stack.pop()
        if id(function) in seen:
            continue
        seen.add(id(function))
        order.append(function)
        stack.extend(x.creator for x in function.inputs if x.creator is not None)
    order.sort(key=lambda f: f.generation, reverse=True)
    return order


def _on_path_to(wanted, order):
    """ids of the tensors through which a gradient can reach `wanted` (grad() needs no others)."""
    on_path = {id(t) for t in wanted}
    for function in reversed(order):  # earliest Functions first
        if any(id(x) in on_path for x in function.inputs):
            on_path.update(id(ref()) for ref in function.outputs if ref() is not None)
    return on_path


def _require_grad(outputs):
    for y in outputs:
        if not y.requires_grad:
            raise RuntimeError("backward/grad: this output does not require grad (no input of it has "
                               "requires_grad=True, or it was computed under no_grad())")


def _check_cotangent(output, grad):
    if grad is None:
        return Tensor(output.xp.ones(output.shape, dtype=output.dtype))
    grad = as_tensor(grad, like=output)
    if grad.shape != output.shape:
        raise ValueError(f"backward: grad has shape {grad.shape} but the output has shape {output.shape}")
    return grad


def _check_input_grad(function, x, g):
    g = as_tensor(g, like=x)
    if g.shape != x.shape:
        raise RuntimeError(f"{function.name}.backward returned a gradient of shape {g.shape} "
                           f"for an input of shape {x.shape}")
    return g


class _Gradients:
    """The gradient of the outputs with respect to each tensor reached so far, summed over the
    paths found so far. Keyed by identity: two tensors with equal values are different nodes.
    (An output no longer alive is None in the lists below; id(None) is never a key.)"""

    def __init__(self, create_graph):
        self.create_graph = create_graph
        self._by_id = {}  # id(tensor) -> (tensor, gradient Tensor)

    def add(self, t, g):
        """One more path's contribution to t's gradient."""
        if id(t) in self._by_id:
            g = _accumulate(self._by_id[id(t)][1], g, self.create_graph)
        self._by_id[id(t)] = (t, g)

    def reach_any(self, tensors):
        return any(id(t) in self._by_id for t in tensors)

    def of_outputs(self, function, outputs):
        """The gradients of `function`'s outputs, with zeros for an output that got none (one
        not used on the way to the result, or no longer alive): backward wants them all."""
        return [self._by_id[id(y)][1] if id(y) in self._by_id else _zeros(function, shape, dtype)
                for y, (shape, dtype) in zip(outputs, function.output_meta)]

    def forget(self, tensors, keep_ids):
        """Drop the gradients of `tensors` except those in keep_ids (None: keep none)."""
        for t in tensors:
            if keep_ids is None or id(t) not in keep_ids:
                self._by_id.pop(id(t), None)

    def items(self):
        return self._by_id.values()


def _zeros(function, shape, dtype):
    return Tensor(function.inputs[0].xp.zeros(shape, dtype=dtype))


def _inputs_to_differentiate(function, on_path):
    """function.needs_input_grad, narrowed to the inputs on the path to what grad() asked for."""
    if on_path is None:
        return function.needs_input_grad
    return [need and id(x) in on_path for x, need in zip(function.inputs, function.needs_input_grad)]


def _call_backward(function, output_grads, mask):
    """function.backward for the inputs in `mask` only; a tuple with one entry per input.

    E.g. a saliency map needs d(score)/d(input) only: the weight gradients of every conv and
    linear layer are then never computed. Backward methods read the mask as needs_input_grad;
    a narrower one goes to a shallow copy of the Function, so that the recorded graph stays as
    it is for later backward passes (and for other threads).
    """
    if not any(mask):
        return (None,) * len(function.inputs)
    if mask != function.needs_input_grad:
        function = _with_needs_input_grad(function, mask)
    input_grads = function.backward(*output_grads)
    return input_grads if isinstance(input_grads, tuple) else (input_grads,)


def _with_needs_input_grad(function, mask):
    """A shallow copy of `function` (same inputs and saved values) with another mask; what
    copy.copy does, 5 times faster (it runs for most layers in every grad() call)."""
    narrowed = object.__new__(type(function))
    narrowed.__dict__ = dict(vars(function), needs_input_grad=mask)
    return narrowed


def _backpropagate(outputs, grad_outputs, create_graph, wanted):
    """Run the chain rule from `outputs` back through the graph.

    Returns {tensor: gradient} for the leaves that require grad (wanted=None), or for the
    tensors listed in `wanted` (leaves or intermediate results): then only the Functions and
    inputs on the path to them are differentiated.
    """
    _require_grad(outputs)
    grads = _Gradients(create_graph)
    for y, g in zip(outputs, grad_outputs):
        grads.add(y, _check_cotangent(y, g))
    order = _topological_order(outputs)
    on_path = None if wanted is None else _on_path_to(wanted, order)
    wanted_ids = None if wanted is None else {id(t) for t in wanted}
    with set_grad_enabled(create_graph):
        for function in order:
            results = [ref() for ref in function.outputs]  # None where nobody holds it any more
            if not grads.reach_any(results):
                continue
            mask = _inputs_to_differentiate(function, on_path)
            input_grads = _call_backward(function, grads.of_outputs(function, results), mask)
            for x, g, needed in zip(function.inputs, input_grads, mask):
                if needed and g is not None:
                    grads.add(x, _check_input_grad(function, x, g))
            grads.forget(results, keep_ids=wanted_ids)  # intermediate results, once used
    if wanted is None:
        return {t: g for t, g in grads.items() if t.is_leaf and t.requires_grad}
    return {t: g for t, g in grads.items() if id(t) in wanted_ids}


def grad(outputs, inputs, grad_outputs=None, create_graph=False, allow_unused=False):
    """d(outputs)/d(inputs), contracted with `grad_outputs`; returns a list of Tensors.

    Leaves' ``.grad`` is not changed. An input the outputs do not depend on gets a zero
    gradient (allow_unused=True) or raises. With create_graph=True the results can be
    differentiated again.
    """
    single_output = isinstance(outputs, Tensor)
    outputs = [outputs] if single_output else list(outputs)
    single_input = isinstance(inputs, Tensor)
    inputs = [inputs] if single_input else list(inputs) if isinstance(inputs, (tuple, list)) else None
    if inputs is None or not all(isinstance(x, Tensor) for x in inputs):
        raise TypeError(f"grad: inputs must be a Tensor or a list of Tensors, got {inputs!r:.80}")
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, (Tensor,)) or hasattr(grad_outputs, "shape"):
        grad_outputs = [grad_outputs]
    for y, g in zip(outputs, grad_outputs):
        if g is None and y.size != 1:
            raise RuntimeError(f"grad: the output has shape {y.shape}; pass grad_outputs for a "
                               f"non-scalar output")
    for x in inputs:
        if not x.requires_grad:
            raise RuntimeError(f"grad: an input of shape {x.shape} has requires_grad=False")
    found = _backpropagate(outputs, grad_outputs, create_graph, wanted=inputs)
    results = []
    for x in inputs:
        if x in found:
            results.append(found[x])
        elif allow_unused:
            results.append(Tensor(x.xp.zeros(x.shape, dtype=x.dtype)))
        else:
            raise RuntimeError(f"grad: the outputs do not depend on an input of shape {x.shape} "
                               f"(pass allow_unused=True to get zeros)")
    return results
