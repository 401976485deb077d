"""smooth_gradcam_pp(variant="torchcam") against torch-cam 0.5.0's SmoothGradCAMpp itself.

Both run the same weights (minisg's model copied into an equal torch.nn.Sequential) on the
same noisy inputs: torch-cam's noise distribution is replaced by one that hands back, sample
by sample, the very draws minisg makes from `seed`. Everything is float64, so the only
differences left are rounding in the two engines' convolutions: ~1e-16 of the map's peak on
the tiny net (tolerance 1e-13). On the MNIST net torch-cam's alpha denominator
2 m2 + sum_ab A m3 (unclipped) nearly cancels, down to ~1/1000 of its terms, and amplifies that
rounding to ~1e-11 of the peak (tolerance 1e-10). A wrong formula is far outside either: eps
1e-7 instead of 1e-8 alone moves the maps by 1e-4 (tiny net) and 7e-3 (MNIST net) of the
peak. The raw maps are compared (normalized=False; upsample=False: torch-cam does not upsample).

Skipped unless torch and torchcam 0.5.x are installed (CI installs neither); there, the maps
recorded in tests/fixtures/ by the last test here stand in for torch-cam.
"""
from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the comparison with torch-cam needs torch")
torchcam = pytest.importorskip("torchcam", reason="the comparison with torch-cam needs torchcam 0.5.0")
if not torchcam.__version__.startswith("0.5."):
    pytest.skip(f"variant='torchcam' reproduces torch-cam 0.5.x; torchcam {torchcam.__version__} is installed",
                allow_module_level=True)
from torchcam.methods import SmoothGradCAMpp  # noqa: E402

from minisg import methods as M, models, nn  # noqa: E402
from minisg.methods.smooth_gradcam_pp import TORCHCAM_EPS  # noqa: E402
from small_models import tiny_cnn  # noqa: E402


def torch_copy(model):
    """The same network in torch, same layer names, same weights, same dtype, eval mode."""
    layers = OrderedDict()
    for name, layer in model.named_children():
        if isinstance(layer, nn.Conv2d):
            out_channels, in_channels, kh, kw = layer.weight.shape
            layers[name] = torch.nn.Conv2d(in_channels, out_channels, (kh, kw), stride=layer.stride,
                                           padding=layer.padding, bias=layer.bias is not None)
        elif isinstance(layer, nn.Linear):
            out_features, in_features = layer.weight.shape
            layers[name] = torch.nn.Linear(in_features, out_features, bias=layer.bias is not None)
        elif isinstance(layer, nn.ReLU):
            layers[name] = torch.nn.ReLU()
        elif isinstance(layer, nn.MaxPool2d):
            layers[name] = torch.nn.MaxPool2d(layer.kernel_size, layer.stride)
        elif isinstance(layer, nn.Flatten):
            layers[name] = torch.nn.Flatten()
        elif isinstance(layer, nn.Dropout):
            layers[name] = torch.nn.Dropout(layer.p)
        else:
            raise TypeError(f"no torch counterpart for {layer!r}")
    net = torch.nn.Sequential(layers).to(torch.float64)
    net.load_state_dict({name: torch.from_numpy(np.array(value, dtype=np.float64))
                         for name, value in model.state_dict().items()})
    return net.eval()


class ReplayedNoise:
    """Stands in for torch-cam's Normal(0, std): sample m returns noise[:, m] (N, C, H, W)."""

    def __init__(self, noise):
        self.noise, self.calls = noise, 0

    def sample(self, shape):
        drawn = self.noise[:, self.calls]
        assert tuple(shape) == drawn.shape
        self.calls += 1
        return torch.from_numpy(drawn)


def torchcam_maps(model, x, target, layer, n, stdev, seed, normalized=False):
    """torch-cam's SmoothGradCAMpp on minisg's noise draws: x + stdev * z, z from default_rng(seed)."""
    noise = stdev * np.random.default_rng(seed).standard_normal((len(x), n) + x.shape[1:])  # as data.gaussian_noise_batches draws it
    net = torch_copy(model)
    with SmoothGradCAMpp(net, layer, num_samples=n, std=stdev, input_shape=x.shape[1:]) as extractor:
        distribution = extractor._distrib            # torch-cam's own: zero mean, absolute std
        assert float(distribution.mean) == 0 and float(distribution.stddev) == pytest.approx(stdev)
        extractor._distrib = replayed = ReplayedNoise(noise)
        net(torch.from_numpy(x))
        (cam,) = extractor(class_idx=target, normalized=normalized)
    assert replayed.calls == n                       # every noisy sample used our draws
    return cam.numpy()


def assert_same_map(ours, theirs, of_peak):
    peak = np.abs(theirs).max()
    assert peak > 0 and ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=of_peak * peak)


@pytest.mark.parametrize("n, stdev, seed, target", [(1, 0.3, 0, 0), (4, 0.3, 1, 1), (7, 0.8, 2, [2, 0, 1])])
def test_tiny_cnn_matches_torchcam(n, stdev, seed, target):
    model, x = tiny_cnn(seed=3), np.random.default_rng(4).random((3, 1, 8, 8))
    for layer in ("relu2", "conv2", "relu1"):
        ours = M.smooth_gradcam_pp(model, x, target, layer=layer, n=n, stdev=stdev, seed=seed,
                                   variant="torchcam", upsample=False)
        assert_same_map(ours, torchcam_maps(model, x, target, layer, n, stdev, seed), of_peak=1e-13)


def test_shipped_mnist_model_matches_torchcam():
    """torch-cam's defaults (num_samples=4, std=0.3) on the shipped MNIST net, relu2 (64 x 14 x 14)."""
    model = models.load("mnist_cnn", dtype=np.float64)
    x = np.random.default_rng(5).random((2, 1, 28, 28))
    ours = M.smooth_gradcam_pp(model, x, 3, layer="relu2", n=4, stdev=0.3, seed=6, variant="torchcam",
                               upsample=False)
    assert_same_map(ours, torchcam_maps(model, x, 3, "relu2", 4, 0.3, 6), of_peak=1e-10)
    # the paper variant is a different method: far apart
    paper = M.smooth_gradcam_pp(model, x, 3, layer="relu2", n=4, stdev=0.3, seed=6, upsample=False)
    assert np.abs(paper - ours).max() > 0.01 * np.abs(ours).max()


def test_torchcam_normalisation_is_min_max_of_the_raw_map():
    """torch-cam's default normalized=True map, from ours: (L - min L) / (max(L - min L) + 1e-8)."""
    model, x = tiny_cnn(seed=7), np.random.default_rng(8).random((3, 1, 8, 8))
    ours = M.smooth_gradcam_pp(model, x, 1, n=3, stdev=0.3, seed=9, variant="torchcam", upsample=False)
    shifted = ours - ours.min(axis=(1, 2), keepdims=True)
    expected = shifted / (shifted.max(axis=(1, 2), keepdims=True) + TORCHCAM_EPS)
    theirs = torchcam_maps(model, x, 1, "relu2", 3, 0.3, 9, normalized=True)
    np.testing.assert_allclose(theirs, expected, rtol=0, atol=1e-9)


def recorded_cases():
    """torch-cam's raw maps on tiny_cnn(seed=3): what tests/fixtures/ keeps for runs without torch."""
    x = np.random.default_rng(4).random((3, 1, 8, 8))
    cases = {}
    for case, (n, stdev, seed, target) in enumerate([(1, 0.3, 0, 0), (4, 0.3, 1, 1), (7, 0.8, 2, [2, 0, 1])]):
        for layer in ("relu2", "conv2", "relu1"):
            cases[f"{case}_{layer}"] = dict(
                x=x, n=n, stdev=stdev, seed=seed, target=np.asarray(target), layer=np.asarray(layer),
                torchcam=torchcam_maps(tiny_cnn(seed=3), x, target, layer, n, stdev, seed))
    return cases


def test_the_recorded_torchcam_maps_are_what_torchcam_computes():
    """The fixture that test_methods_smooth_gradcam_pp.py checks minisg against (without torch) is
    torch-cam's output; MINISG_RECORD_TORCHCAM=1 writes it anew."""
    import os
    from pathlib import Path
    path = Path(__file__).parent / "fixtures" / "torchcam_0.5_smooth_gradcam_pp.npz"
    cases = recorded_cases()
    if os.environ.get("MINISG_RECORD_TORCHCAM"):
        np.savez(path, **{f"{name}.{key}": value for name, case in cases.items() for key, value in case.items()})
    with np.load(path) as recorded:
        for name, case in cases.items():
            np.testing.assert_array_equal(recorded[f"{name}.x"], case["x"])
            assert_same_map(recorded[f"{name}.torchcam"], case["torchcam"], of_peak=1e-15)
