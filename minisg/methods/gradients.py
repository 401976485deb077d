"""The vanilla gradient and gradient x input (METHODS.md §2 and §4)."""
from ._common import evaluation_mode, input_gradients, prepare


def vanilla_gradient(model, x, target=None, batch_size=None):
    """The sensitivity map M_c(x) = dS_c/dx, shaped like x.

    S_c is the pre-softmax logit of class `target` (None: the predicted class).
    For a linear model S = w.x + b it is w everywhere.
    """
    with evaluation_mode(model):
        x, target = prepare(model, x, target, batch_size)
        return input_gradients(model, x, target, batch_size)


def gradient_x_input(model, x, target=None, batch_size=None):
    """x * dS_c/dx, elementwise.

    Zero wherever x is zero (MNIST's black background). On a bias-free ReLU/max-pool/linear
    network S is positively 1-homogeneous, so Euler's theorem gives sum(x * M) = S_c(x).
    """
    with evaluation_mode(model):
        x, target = prepare(model, x, target, batch_size)
        return x * input_gradients(model, x, target, batch_size)
