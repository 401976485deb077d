"""Bad input to the engine (layers, ops, tensors, optimizers, gradcheck): one error naming the
argument and the bad value when the object is built or the op is called, never a traceback from
deep inside NumPy and never a layer or optimizer that silently holds a nonsense setting (issue 16)."""
import re

import numpy as np
import pytest

import minisg
from minisg import F, nn, optim, tensor


def raises(error, message, call):
    """call() raises `error` whose message matches the regex `message`."""
    with pytest.raises(error, match=message):
        call()


X = tensor(np.ones((1, 1, 4, 4), np.float32), requires_grad=True)


@pytest.mark.parametrize("call, error, message", [
    (lambda: nn.Conv2d(0, 3, 3), ValueError, r"in_channels: expected an int >= 1, got 0"),
    (lambda: nn.Conv2d(1.5, 3, 3), TypeError, r"in_channels: expected an int >= 1, got 1.5"),
    (lambda: nn.Conv2d(1, True, 3), TypeError, r"out_channels: expected an int >= 1, got True"),
    (lambda: nn.Conv2d(1, 3, 0), ValueError, r"Conv2d: kernel_size must be an int >= 1 or a pair of them, got 0"),
    (lambda: nn.Conv2d(1, 3, 3, stride=0), ValueError, r"Conv2d: stride must be an int >= 1 .*got 0"),
    (lambda: nn.Conv2d(1, 3, 3, padding=-1), ValueError, r"Conv2d: padding must be an int >= 0.*got -1"),
    (lambda: nn.Conv2d(1, 3, 3, dtype="abc"), TypeError, r"dtype: expected float32 or float64 .*got 'abc'"),
    (lambda: nn.Conv2d(1, 3, 3, bias="yes"), TypeError, r"bias: expected True or False, got 'yes'"),
    (lambda: nn.Conv2d(1, 3, 3, rng=5), TypeError, r"rng: expected a numpy.random.Generator .*got int 5"),
    (lambda: nn.Conv2d(1, 3, 3, bias_init=float("nan")), ValueError, r"bias_init: expected a finite number, got nan"),
    (lambda: nn.Linear(0, 3), ValueError, r"in_features: expected an int >= 1, got 0"),
    (lambda: nn.Linear(2, "a"), TypeError, r"out_features: expected an int >= 1, got 'a'"),
    (lambda: nn.Linear(2, 3, dtype=np.int64), TypeError, r"dtype: expected float32 or float64"),
    (lambda: nn.MaxPool2d(0), ValueError, r"MaxPool2d: kernel_size must be an int >= 1 .*got 0"),
    (lambda: nn.AvgPool2d(2, stride=0), ValueError, r"AvgPool2d: stride must be an int >= 1 .*got 0"),
    (lambda: nn.MaxPool2d(2, padding=5), ValueError, r"MaxPool2d: padding must be at most half the window"),
    (lambda: nn.AvgPool2d(2, ceil_mode="yes"), TypeError, r"ceil_mode: expected True or False, got 'yes'"),
    (lambda: nn.Dropout(1.5), ValueError, r"p: expected a number in \[0, 1\), got 1.5"),
    (lambda: nn.Dropout("a"), TypeError, r"p: expected a number in \[0, 1\), got 'a'"),
    (lambda: nn.Dropout(0.5, seed=-1), ValueError, r"seed: expected an int >= 0, got -1"),
    (lambda: nn.BatchNorm2d(0), ValueError, r"num_features: expected an int >= 1, got 0"),
    (lambda: nn.BatchNorm2d(3, eps=0), ValueError, r"eps: expected a finite number > 0, got 0"),
    (lambda: nn.LeakyReLU("a"), TypeError, r"negative_slope: expected a finite number, got 'a'"),
    (lambda: nn.LeakyReLU(float("nan")), ValueError, r"negative_slope: expected a finite number, got nan"),
    (lambda: nn.ZeroPad2d(-1), ValueError, r"ZeroPad2d: padding must be an int >= 0 .*got -1"),
    (lambda: nn.Sequential(3), TypeError, r"layers: expected Modules or \(name, Module\) pairs, got 3 at position 0"),
    (lambda: nn.Sequential(("a", 3)), TypeError, r"layers: expected Modules .*got \('a', 3\)"),
    (lambda: nn.Sequential(nn.Linear), TypeError, r"layers: expected Modules .*class"),
])
def test_a_layer_names_a_bad_argument_when_it_is_built(call, error, message):
    raises(error, message, call)


@pytest.mark.parametrize("call, error, message", [
    (lambda: tensor("abc"), TypeError, r"data: expected numbers or bools, got str 'abc'"),
    (lambda: tensor(None), TypeError, r"data: expected numbers or bools, got NoneType None"),
    (lambda: tensor({}), TypeError, r"data: expected numbers or bools, got dict"),
    (lambda: tensor([[1, 2], [3]]), ValueError, r"data: expected numbers or bools, got a list that is no regular array"),
    (lambda: tensor([1.0], requires_grad="yes"), TypeError, r"requires_grad: expected True or False, got 'yes'"),
    (lambda: tensor([1.0], dtype="abc"), TypeError, r"dtype: expected a NumPy dtype .*got 'abc'"),
    (lambda: F.relu(X, rule="bogus"), ValueError, r"relu: rule must be None or one of \['gradient', 'guided', "
                                                  r"'deconv'\], got 'bogus'"),
    (lambda: F.softmax(X, axis=5), ValueError, r"log_softmax: axis 5 is out of range for a tensor with 4 dimensions"),
    (lambda: F.sum(X, axis="a"), TypeError, r"sum: axis must be None, an int or a tuple of ints, got 'a'"),
    (lambda: F.flatten(X, 9), ValueError, r"flatten: start_dim must be an int from 0 to 3, got 9"),
    (lambda: F.upsample_bilinear(X, (0, 0)), ValueError, r"upsample_bilinear: size must be an int >= 1 or a pair"),
    (lambda: F.upsample_bilinear(X, "a"), ValueError, r"upsample_bilinear: size must be .*got 'a'"),
    (lambda: F.dropout(X, "a"), TypeError, r"p: expected a number in \[0, 1\), got 'a'"),
    (lambda: F.cast(X, "bogus"), TypeError, r"cast: dtype must be a NumPy dtype .*got 'bogus'"),
    (lambda: F.broadcast_to(X, (2, 2)), ValueError, r"broadcast_to: a tensor of shape \(1, 1, 4, 4\) cannot be "
                                                    r"broadcast to \(2, 2\)"),
    (lambda: minisg.grad((X * 2).sum(), "abc"), TypeError, r"grad: inputs must be a Tensor or a list of Tensors"),
    (lambda: F.add(X, "a"), TypeError, r"add: expected a Tensor or numbers as the other operand, got 'a'"),
    (lambda: F.pow(X, "a"), TypeError, r"pow: the exponent must be a Python number, got 'a'"),
])
def test_tensors_and_ops_name_a_bad_argument(call, error, message):
    raises(error, message, call)


PARAMS = nn.Linear(2, 2).parameters()


@pytest.mark.parametrize("make", [optim.SGD, optim.Adam])
@pytest.mark.parametrize("arguments, error, message", [
    (dict(lr=float("inf")), ValueError, r"lr: expected a finite number > 0, got inf"),
    (dict(lr=float("nan")), ValueError, r"lr: expected a finite number > 0, got nan"),
    (dict(lr=True), TypeError, r"lr: expected a finite number > 0, got True"),
    (dict(lr="a"), TypeError, r"lr: expected a finite number > 0, got 'a'"),
    (dict(params=None), TypeError, r"params: expected a list of Parameters, got NoneType"),
    (dict(params=nn.Linear(2, 2)), TypeError, r"params: expected a list of Parameters \(pass model.parameters\(\)\)"),
    (dict(params=[np.zeros(3)]), TypeError, r"params: expected Parameters \(Tensors with requires_grad=True\)"),
    (dict(params=[]), ValueError, r"params: expected at least one Parameter, got an empty list"),
])
def test_optimizers_name_a_bad_setting(make, arguments, error, message):
    arguments = {"params": PARAMS, "lr": 0.1, **arguments}
    raises(error, message, lambda: make(**arguments))


@pytest.mark.parametrize("call, error, message", [
    (lambda: optim.SGD(PARAMS, lr=0.1, momentum=1.5), ValueError, r"momentum: expected a number in \[0, 1\), got 1.5"),
    (lambda: optim.SGD(PARAMS, lr=0.1, momentum=-1), ValueError, r"momentum: expected a number in \[0, 1\), got -1"),
    (lambda: optim.Adam(PARAMS, betas=(1.5, 0.9)), ValueError, r"betas: expected a number in \[0, 1\), got 1.5"),
    (lambda: optim.Adam(PARAMS, betas=0.9), TypeError, r"betas: expected a pair \(beta1, beta2\) .*got 0.9"),
    (lambda: optim.Adam(PARAMS, eps=-1), ValueError, r"eps: expected a finite number > 0, got -1"),
])
def test_optimizer_hyperparameters_are_checked(call, error, message):
    raises(error, message, call)


def _square_sum(t):
    return (t * t).sum()


ONES = np.ones(3)


@pytest.mark.parametrize("check", [minisg.gradcheck, minisg.gradgradcheck])
@pytest.mark.parametrize("arguments, error, message", [
    (dict(eps=0), ValueError, r"eps: expected a finite number > 0, got 0"),
    (dict(eps=-1), ValueError, r"eps: expected a finite number > 0, got -1"),
    (dict(eps=float("nan")), ValueError, r"eps: expected a finite number > 0, got nan"),
    (dict(eps="a"), TypeError, r"eps: expected a finite number > 0, got 'a'"),
    (dict(atol=-1), ValueError, r"atol: expected a finite number >= 0, got -1"),
    (dict(rtol=float("nan")), ValueError, r"rtol: expected a finite number >= 0, got nan"),
    (dict(f=3), TypeError, r"gradcheck: f must be a function of the inputs, got 3"),
    (dict(inputs=[]), ValueError, r"gradcheck: inputs must be a non-empty list"),
    (dict(inputs="abc"), ValueError, re.escape("gradcheck: inputs must be a non-empty list of float64 arrays or "
                                               "Tensors, got 'abc'")),
])
def test_gradcheck_names_a_bad_setting(check, arguments, error, message):
    arguments = {"f": _square_sum, "inputs": [ONES], **arguments}
    raises(error, message, lambda: check(**arguments))
