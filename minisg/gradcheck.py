"""Check derivatives against central finite differences, in float64.

gradcheck(f, inputs):     for a random cotangent u, compare the backprop gradient of
                          sum(u * f(inputs)) with (L(x + h e_i) - L(x - h e_i)) / 2h for every
                          element i of every input.
gradgradcheck(f, inputs): the same check applied to the function that maps the inputs to
                          their (create_graph=True) gradients, i.e. to the second derivative.

Both return True or raise GradcheckError with the worst element, so tests read as
``assert gradcheck(f, [x, w])``. Pick inputs away from kinks (ReLU at 0) and ties (max).
"""
import numpy as np

from . import backend
from .autograd import Tensor, grad
from .checks import check_number


class GradcheckError(AssertionError):
    pass


def _check_arguments(f, inputs, eps, atol, rtol):
    """gradcheck's settings, before any evaluation of f."""
    if not callable(f):
        raise TypeError(f"gradcheck: f must be a function of the inputs, got {f!r:.80}")
    if isinstance(inputs, (str, bytes)) or not hasattr(inputs, "__len__") or len(inputs) == 0:
        raise ValueError(f"gradcheck: inputs must be a non-empty list of float64 arrays or Tensors, got {inputs!r:.80}")
    check_number("eps", eps, positive=True)
    check_number("atol", atol), check_number("rtol", rtol)


def _as_float64_inputs(inputs):
    tensors = []
    for position, x in enumerate(inputs):
        data = x.data if isinstance(x, Tensor) else np.asarray(x)
        if data.dtype != np.float64:
            raise TypeError(f"gradcheck: input {position} has dtype {data.dtype}; checks run in float64 "
                            f"(cast with .astype(np.float64)) so that rounding does not hide errors")
        tensors.append(Tensor(data.copy(), requires_grad=True))
    return tensors


def _outputs(f, inputs):
    out = f(*inputs)
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _loss(f, arrays, cotangents):
    """sum_k <u_k, f(arrays)_k> as a float: the scalar whose gradient we check."""
    outs = _outputs(f, [Tensor(a) for a in arrays])
    return float(sum(float(backend.to_numpy((o.data * u).sum())) for o, u in zip(outs, cotangents)))


def gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, seed=0):
    """Backprop gradient of sum(u * f(*inputs)) == central differences, for a random u."""
    _check_arguments(f, inputs, eps, atol, rtol)
    inputs = _as_float64_inputs(inputs)
    outs = _outputs(f, inputs)
    rng = np.random.default_rng(seed)
    cotangents = [o.xp.asarray(rng.standard_normal(o.shape)) for o in outs]
    live = [(o, Tensor(u)) for o, u in zip(outs, cotangents) if o.requires_grad]
    if live:
        analytic = grad([o for o, _ in live], inputs, grad_outputs=[u for _, u in live], allow_unused=True)
    else:  # nothing depends on the inputs: the derivative is zero
        analytic = [Tensor(x.xp.zeros(x.shape)) for x in inputs]

    arrays = [x.data.copy() for x in inputs]
    for position, (array, g) in enumerate(zip(arrays, analytic)):
        g = backend.to_numpy(g.data)
        numeric = np.zeros(array.shape)
        flat = array.reshape(-1)  # a view: editing it perturbs `arrays[position]`
        for i in range(flat.size):
            original = flat[i].copy()
            flat[i] = original + eps
            plus = _loss(f, arrays, cotangents)
            flat[i] = original - eps
            minus = _loss(f, arrays, cotangents)
            flat[i] = original
            numeric.reshape(-1)[i] = (plus - minus) / (2 * eps)
        _compare(g, numeric, atol, rtol, f"input {position}")
    return True


def gradgradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, seed=0):
    """Check second derivatives: gradcheck of x -> d<u, f(x)>/dx built with create_graph=True."""
    _check_arguments(f, inputs, eps, atol, rtol)
    inputs = _as_float64_inputs(inputs)
    rng = np.random.default_rng(seed + 1)
    outs = _outputs(f, inputs)
    cotangents = [Tensor(o.xp.asarray(rng.standard_normal(o.shape))) for o in outs]

    def first_derivative(*xs):
        xs = [x if x.requires_grad else Tensor(x.data, requires_grad=True) for x in xs]
        outs = _outputs(f, xs)
        return tuple(grad(outs, list(xs), grad_outputs=cotangents, create_graph=True, allow_unused=True))

    return gradcheck(first_derivative, inputs, eps=eps, atol=atol, rtol=rtol, seed=seed + 2)


def _compare(analytic, numeric, atol, rtol, what):
    error = np.abs(analytic - numeric)
    allowed = atol + rtol * np.abs(numeric)
    if not np.all(error <= allowed):
        worst = np.unravel_index(np.argmax(error - allowed), error.shape)
        raise GradcheckError(
            f"gradcheck: {what} element {tuple(int(i) for i in worst)}: backprop {analytic[worst]:.8g}, "
            f"finite differences {numeric[worst]:.8g} (|diff| {error[worst]:.3g} > {allowed[worst]:.3g}); "
            f"{int((error > allowed).sum())} of {error.size} elements differ")
