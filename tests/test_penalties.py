"""Training with input-gradient penalties: double backprop equals finite differences."""
import numpy as np
import pytest

from minisg import Tensor, gradcheck
from minisg.models import penalties
from minisg.models import training as train
from small_models import tiny_cnn


@pytest.mark.parametrize("grad_weight,smooth_weight", [(0.5, 0.0), (0.0, 0.7), (0.3, 0.2)])
def test_penalty_gradient_matches_finite_differences(grad_weight, smooth_weight):
    rng = np.random.default_rng(0)
    model = tiny_cnn(seed=0)
    images = rng.uniform(0.05, 1.0, (3, 1, 8, 8))
    labels = np.array([0, 2, 1])
    names = [name for name, _ in model.named_parameters()]

    def loss_of(*params):
        """The penalised loss as a function of the weights (gradcheck's tensors put in place)."""
        originals = list(model.parameters())
        _swap_parameters(model, params)
        try:
            loss, _, _ = penalties.penalised_loss(model, images, labels, grad_weight, smooth_weight)
        finally:
            _swap_parameters(model, originals)
        return loss

    start = [p.numpy().copy() for p in model.parameters()]
    assert gradcheck(loss_of, start, atol=1e-6, rtol=1e-5), names


def _swap_parameters(model, tensors):
    """Put the given Tensors in place of the model's parameters (by attribute)."""
    slots = [(layer, attribute) for layer in model.layers.values()
             for attribute in ("weight", "bias") if getattr(layer, attribute, None) is not None]
    for (layer, attribute), tensor in zip(slots, tensors):
        setattr(layer, attribute, tensor)


def test_penalty_terms_are_what_the_docstring_says():
    g = Tensor(np.arange(8, dtype=np.float64).reshape(2, 1, 2, 2))
    # image 0: [[0,1],[2,3]] -> sum of squares 14; image 1: [[4,5],[6,7]] -> 126; mean 70
    assert penalties.gradient_penalty(g).item() == pytest.approx(70.0)
    # each image: vertical diffs 2,2 -> 8; horizontal 1,1 -> 2; total 10 per image; mean 10
    assert penalties.smoothness_penalty(g).item() == pytest.approx(10.0)


def test_zero_weights_give_plain_cross_entropy():
    rng = np.random.default_rng(1)
    model = tiny_cnn(seed=1)
    images = rng.random((2, 1, 8, 8))
    loss, _, parts = penalties.penalised_loss(model, images, np.array([0, 1]))
    assert parts == {}
    loss_penalised, _, parts = penalties.penalised_loss(model, images, np.array([0, 1]), 1.0, 1.0)
    assert loss_penalised.item() == pytest.approx(loss.item() + parts["grad_penalty"] + parts["smooth_penalty"])


def test_negative_penalty_weight_is_refused(tmp_path):
    config = train.TrainConfig(out=str(tmp_path / "x.npz"), grad_penalty_weight=-1.0)
    with pytest.raises(ValueError, match=r"grad_penalty_weight \(--penalty-weight\): expected a finite number >= 0, got -1.0"):
        train.train(config)
