"""ReLU and its three backward rules (minisg/methods/METHODS.md §6)."""
import contextlib
import threading

from .. import kernels
from ..autograd import Function, Tensor
from .operands import float_tensor

RELU_RULES = ("gradient", "guided", "deconv")
_relu_rule = threading.local()  # per thread: methods run batches in worker threads


def current_relu_rule():
    """The backward rule that rectifiers created now take (relu, and clip with min=0)."""
    return getattr(_relu_rule, "rule", "gradient")


@contextlib.contextmanager
def relu_rule(rule):
    """Within this scope, ReLUs *created* here backpropagate with `rule`:

    gradient: (z > 0) * R      (the true derivative)
    guided:   (z > 0) * relu(R) (guided backprop: only positive signal, only where z was on)
    deconv:   relu(R)           (deconvnet: the mask of the forward pass is ignored)

    R is the gradient arriving at the ReLU's output, z its forward input. The rule is fixed
    when the ReLU runs forward, so run the forward pass inside the scope.
    """
    if rule not in RELU_RULES:
        raise ValueError(f"relu_rule: rule must be one of {RELU_RULES}, got {rule!r}")
    previous = current_relu_rule()
    _relu_rule.rule = rule
    try:
        yield
    finally:
        _relu_rule.rule = previous


class ReLU(Function):
    def __init__(self, rule):
        self.rule = rule

    def forward(self, x):
        y, self.mask = kernels.for_array(x).relu_forward(x)  # the mask x > 0: a constant of the graph
        return y

    def backward(self, g):
        if self.rule == "deconv":
            return relu(g, rule="gradient")
        mask = Tensor(self.mask.astype(g.dtype))
        if self.rule == "guided":
            return relu(g, rule="gradient") * mask
        return g * mask


def relu(x, rule=None):
    if rule is not None and rule not in RELU_RULES:
        raise ValueError(f"relu: rule must be None or one of {list(RELU_RULES)}, got {rule!r}")
    return ReLU(rule or current_relu_rule())(float_tensor("relu", x))
