"""Optimizers: SGD (with momentum) and Adam. Updates work on the raw arrays, outside any graph."""
import numpy as np

from . import kernels
from .checks import check_number, check_probability


def _checked_params(params):
    """params (model.parameters(): an iterable of Parameters) as a non-empty list."""
    from .autograd import Tensor
    if isinstance(params, Tensor) or not hasattr(params, "__iter__"):
        hint = " (pass model.parameters())" if callable(getattr(params, "parameters", None)) else ""
        raise TypeError(f"params: expected a list of Parameters{hint}, got {type(params).__name__}")
    params = list(params)
    if not params:
        raise ValueError("params: expected at least one Parameter, got an empty list")
    wrong = [p for p in params if not (isinstance(p, Tensor) and p.requires_grad)]
    if wrong:
        raise TypeError(f"params: expected Parameters (Tensors with requires_grad=True), got {wrong[0]!r:.80}")
    return params


class Optimizer:
    def __init__(self, params, lr):
        self.params = _checked_params(params)
        self.lr = check_number("lr", lr, positive=True)

    def zero_grad(self):
        """Forget accumulated gradients (backward() adds into .grad)."""
        for p in self.params:
            p.grad = None

    def step(self):
        for index, p in enumerate(self.params):
            if p.grad is not None:
                self.update(index, p, p.grad.data)

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


class SGD(Optimizer):
    """p -= lr * v with v = momentum * v + grad (PyTorch's convention)."""

    def __init__(self, params, lr=0.01, momentum=0.0):
        super().__init__(params, lr)
        self.momentum = check_probability("momentum", momentum)     # in [0, 1): 1 or more never forgets
        self.velocity = [None] * len(self.params)

    def update(self, index, p, grad):
        if self.momentum:
            v = self.velocity[index]
            v = grad.copy() if v is None else v * self.momentum + grad
            self.velocity[index] = v
            grad = v
        p.data -= p.dtype.type(self.lr) * grad


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction; defaults as TensorFlow and PyTorch.

    The update runs as one fused kernel per parameter (kernels/: Numba on the CPU, CuPy on
    the GPU): NumPy would make seven passes over each 13 MB weight matrix.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas: expected a pair (beta1, beta2) of numbers in [0, 1), got {betas!r}")
        self.beta1, self.beta2 = (check_probability("betas", beta) for beta in betas)
        self.eps = check_number("eps", eps, positive=True)
        self.steps = 0
        self.m = [p.xp.zeros_like(p.data) for p in self.params]
        self.v = [p.xp.zeros_like(p.data) for p in self.params]

    def step(self):
        self.steps += 1
        super().step()

    def update(self, index, p, grad):
        # both bias corrections folded into the step size (the form of Kingma & Ba's Algorithm 1
        # end note, as TensorFlow's Adam): m_hat / sqrt(v_hat) = m / sqrt(v) * sqrt(1-b2^t) / (1-b1^t)
        step = self.lr * np.sqrt(1 - self.beta2 ** self.steps) / (1 - self.beta1 ** self.steps)
        kernels.for_array(p.data).adam_update(p.data, grad, self.m[index], self.v[index], step,
                                              self.beta1, self.beta2, self.eps)

    def state_dict(self):
        from .backend import to_numpy
        state = {"steps": np.asarray(self.steps)}
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            state[f"m.{i}"], state[f"v.{i}"] = to_numpy(m), to_numpy(v)
        return state

    def load_state_dict(self, state):
        self.steps = int(state["steps"])
        for i, p in enumerate(self.params):
            self.m[i] = p.xp.asarray(state[f"m.{i}"])
            self.v[i] = p.xp.asarray(state[f"v.{i}"])
