"""The trained network with its head per 7x7 cell (lessons 08 and 11)."""
import numpy as np
import pytest

from minisg import Tensor, data, methods as M, models, nn, no_grad
from minisg.models.cell_model import cell_model


@pytest.fixture(scope="module")
def model():
    return models.load("mnist_cnn")


@pytest.fixture(scope="module")
def digits():
    return data.load_mnist("test")[0][:20]


def logits(net, x):
    with no_grad():
        return net(Tensor(x)).numpy()


def test_one_cell_is_the_trained_network(model, digits):
    np.testing.assert_allclose(logits(cell_model(model), digits), logits(model, digits), rtol=1e-5, atol=1e-5)


def test_two_digits_side_by_side_average_the_two_halves(model, digits):
    wide = np.concatenate([digits[:10], digits[10:]], axis=3)          # (10, 1, 28, 56)
    halves = 0.5 * (logits(model, digits[:10]) + logits(model, digits[10:]))
    together = logits(cell_model(model), wide)
    # near the seam the convolutions see the other digit's empty border instead of zero
    # padding: close to the halves' average (measured 0.39 of logits up to 17), not equal
    assert 0 < np.abs(together - halves).max() < 0.05 * np.abs(halves).max()
    assert M.gradcam(cell_model(model), wide, 3, layer="relu2").shape == (10, 28, 56)


def test_bad_models_and_small_images_are_refused(model):
    with pytest.raises(ValueError, match=r"cell_model: expected an mnist_cnn .* missing \['fc2'\]"):
        cell_model(nn.Sequential(*[(name, model[name]) for name in model.layer_names[:-1]]))
    with pytest.raises(ValueError, match=r"CellHead: the feature map \(5x5\) is smaller than one 7x7 cell"):
        logits(cell_model(model), np.zeros((1, 1, 20, 20), np.float32))
