"""Known networks: cards, the checked download (never over the network here), labels, preprocessing,
and the README's top-1 labels of the photos."""
import dataclasses
import hashlib
import io
import os
import re
import sys
import urllib.error

import numpy as np
import pytest

from minisg import files, models
from minisg.models import networks

from imagenet_files import imagenet_dir, photo, require


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """Every test gets an empty MINISG_HOME, and any real download attempt fails the test."""
    monkeypatch.setenv("MINISG_HOME", str(tmp_path / "home"))

    def no_network(url):
        raise AssertionError(f"a test tried to download {url}")

    monkeypatch.setattr(networks, "_open_url", no_network)
    return tmp_path / "home"


def _serve(monkeypatch, name, payload, tmp_path, sha256=None):
    """Point the card `name` at a local file:// URL holding `payload` (urllib reads it like a download)."""
    source = tmp_path / "served.bin"
    source.write_bytes(payload)
    card = dataclasses.replace(networks.CARDS[name], url=source.as_uri(), size_bytes=len(payload),
                               sha256=sha256 or hashlib.sha256(payload).hexdigest())
    monkeypatch.setitem(networks.CARDS, name, card)
    monkeypatch.setattr(networks, "_open_url", lambda url: networks.urllib.request.urlopen(url))
    return card


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ---------------------------------------------------------------------------- cards and folders

def test_the_cards_hold_what_feeding_a_photo_needs():
    squeeze, mobile = networks.card("squeezenet1.1"), networks.card("mobilenet_v2")
    assert (squeeze.channel_order, squeeze.mean, squeeze.scale) == ("BGR", (104.0, 117.0, 123.0), 1.0)
    assert (mobile.channel_order, mobile.mean, mobile.scale) == ("RGB", (127.5,) * 3, 1 / 127.5)
    assert (squeeze.num_classes, squeeze.label_offset, mobile.num_classes, mobile.label_offset) == (1000, 0, 1001, 1)
    assert squeeze.url.endswith("SqueezeNet_fp16.onnx") and mobile.url is None
    assert all(len(c.sha256) == 64 and c.licence for c in networks.CARDS.values())
    with pytest.raises(KeyError, match="network 'resnet50' is not known; known networks: squeezenet1.1, mobilenet_v2"):
        networks.card("resnet50")


def test_the_networks_folder_is_minisg_home_else_the_user_cache(monkeypatch, tmp_path):
    assert networks.networks_dir() == tmp_path / "home" / "networks"
    monkeypatch.delenv("MINISG_HOME")
    monkeypatch.setenv("MINISG_CACHE_DIR", str(tmp_path / "cache"))
    assert networks.networks_dir() == files.cache_dir() / "networks" == tmp_path / "cache" / "networks"


# ---------------------------------------------------------------------------- download

def test_a_download_is_checked_written_whole_and_shows_progress(monkeypatch, tmp_path, home, capsys):
    payload = os.urandom(300_000)
    card = _serve(monkeypatch, "squeezenet1.1", payload, tmp_path)
    path = networks.fetch(card)
    assert path == home / "networks" / card.file_name and path.read_bytes() == payload
    assert _leftovers(path.parent) == [card.file_name]  # no temporary file, no lock file left
    progress = capsys.readouterr().err
    assert card.file_name in progress and "100%" in progress


def test_a_file_already_there_is_used_without_the_network(monkeypatch, tmp_path):
    payload = b"weights" * 1000
    card = _serve(monkeypatch, "squeezenet1.1", payload, tmp_path)
    networks.fetch(card, progress=False)
    monkeypatch.setattr(networks, "_open_url", lambda url: pytest.fail("downloaded a file that was there"))
    assert networks.fetch(card).read_bytes() == payload


def test_a_wrong_checksum_is_named_and_leaves_nothing_in_the_cache(monkeypatch, tmp_path, home):
    card = _serve(monkeypatch, "squeezenet1.1", b"not the network", tmp_path, sha256="0" * 64)
    with pytest.raises(networks.ChecksumError, match=r"the download from file:.*has sha256 [0-9a-f]{64}, "
                                                     r"expected 0{64}; nothing was kept"):
        networks.fetch(card, progress=False)
    assert _leftovers(home / "networks") == []


def test_offline_the_error_gives_the_exact_path_and_the_url(monkeypatch, home):
    def offline(url):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(networks, "_open_url", offline)
    card = networks.card("squeezenet1.1")
    expected_path = home / "networks" / "squeezenet1.1_fp16.onnx"
    with pytest.raises(networks.NetworkFileError) as caught:
        models.load("squeezenet1.1")
    message = str(caught.value)
    assert f"is not at {expected_path}" in message and f"download it from {card.url}" in message
    assert "Temporary failure in name resolution" in message and card.sha256 in message
    assert _leftovers(home / "networks") == []


def test_a_connection_lost_mid_download_leaves_nothing(monkeypatch, home):
    class Broken(io.BytesIO):
        headers = {"Content-Length": "1000000"}

        def read(self, size=-1):
            if self.tell() > 0:
                raise ConnectionResetError("connection reset by peer")
            return super().read(100)

    monkeypatch.setattr(networks, "_open_url", lambda url: Broken(b"x" * 1000))
    with pytest.raises(networks.NetworkFileError, match="the download broke off .*connection reset by peer"):
        networks.fetch(networks.card("squeezenet1.1"), progress=False)
    assert _leftovers(home / "networks") == []


def test_mobilenet_by_name_explains_where_its_file_must_be(home):
    expected_path = home / "networks" / "mobilenet_v2_1.0_224.onnx"
    expected = (rf"is not at {re.escape(str(expected_path))} and it has no public download.*"
                r"models.load\('/path/to/mobilenet_v2_1.0_224.onnx'\)")
    with pytest.raises(networks.NetworkFileError, match=expected):
        models.load("mobilenet_v2")


def test_without_the_onnx_package_nothing_is_downloaded(monkeypatch, home):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "minisg\[onnx\]"'):
        models.load("squeezenet1.1")  # the fixture fails the test if a download starts
    assert _leftovers(home / "networks") == []


def test_a_damaged_file_in_the_cache_is_named(home):
    path = home / "networks" / "mobilenet_v2_1.0_224.onnx"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a file")
    with pytest.raises(networks.ChecksumError, match=rf"{re.escape(str(path))} has sha256 .*delete it"):
        networks.fetch(networks.card("mobilenet_v2"))


def test_squeezenet_by_name_downloads_once_then_loads_from_the_cache(monkeypatch, home):
    pytest.importorskip("onnx", reason="loading a network needs the onnx package")
    real = require("squeezenet1.1_fp16.onnx")
    card = networks.card("squeezenet1.1")
    served = dataclasses.replace(card, url=real.as_uri())  # the real file, through urllib, without a network
    monkeypatch.setitem(networks.CARDS, "squeezenet1.1", served)
    monkeypatch.setattr(networks, "_open_url", lambda url: networks.urllib.request.urlopen(url))
    model = models.load("squeezenet1.1")
    assert model.card == served and (home / "networks" / card.file_name).is_file()
    monkeypatch.setattr(networks, "_open_url", lambda url: pytest.fail("downloaded again"))
    again = models.load("squeezenet1.1", dtype=np.float64)
    assert again.dtype == np.float64 and not again.training


def test_a_file_loaded_by_path_is_recognised_by_checksum_or_by_name(tmp_path, home):
    onnx = pytest.importorskip("onnx", reason="loading a network needs the onnx package")
    from onnx import TensorProto, helper
    real = require("mobilenet_v2_1.0_224.onnx")
    renamed = tmp_path / "renamed.onnx"
    renamed.symlink_to(real)
    assert models.load(renamed).card.name == "mobilenet_v2"  # by its sha256
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 2, 2])])
    tiny = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    named = tmp_path / "squeezenet1.1_fp16.onnx"
    onnx.save(tiny, str(named))
    assert models.load(named).card.name == "squeezenet1.1"  # by its file name
    other = tmp_path / "mine.onnx"
    onnx.save(tiny, str(other))
    assert models.load(other).card is None
    (home / "networks").mkdir(parents=True)
    (home / "networks" / "mobilenet_v2_1.0_224.onnx").symlink_to(real)
    assert models.load("mobilenet_v2").card.name == "mobilenet_v2"  # placed where the error said


def test_models_load_still_loads_shipped_checkpoints():
    model = models.load("mnist_cnn")
    assert model.meta["architecture"] == "mnist_cnn" and not model.training


# ---------------------------------------------------------------------------- labels and preprocessing

def test_labels_come_in_output_order_from_a_folder():
    require("synset_words.txt")
    squeeze = networks.labels(networks.card("squeezenet1.1"), imagenet_dir())
    mobile = networks.labels(networks.card("mobilenet_v2"), imagenet_dir())
    assert len(squeeze) == 1000 and squeeze[0] == "tench, Tinca tinca" and squeeze[285] == "Egyptian cat"
    assert len(mobile) == 1001 and mobile[0] == "background" and mobile[1 + 285] == "Egyptian cat"
    same = sum(a.split(",")[0] == b.split(",")[0] for a, b in zip(mobile[1:], squeeze))
    assert same == 1000  # the same classes in the same order, at index + 1 (a few later names differ)


def test_absent_or_wrong_label_files_are_named(tmp_path, home):
    card = networks.card("squeezenet1.1")
    where = re.escape(str(home / "networks" / "synset_words.txt"))
    with pytest.raises(FileNotFoundError, match=rf"{where} does not exist; put synset_words.txt there or pass directory="):
        networks.labels(card)
    (tmp_path / "synset_words.txt").write_text("n01440764 tench\n")
    with pytest.raises(ValueError, match="has 1 lines, expected 1000"):
        networks.labels(card, tmp_path)


def test_preprocess_crops_the_centre_and_applies_channel_order_and_scaling():
    image = np.zeros((300, 400, 3), dtype=np.uint8)
    image[:, :, :] = (10, 20, 30)
    image[:, :50] = image[:, 350:] = 255  # cut off by the centre crop
    squeeze = networks.preprocess(networks.card("squeezenet1.1"), image)
    assert squeeze.shape == (1, 3, 224, 224) and squeeze.dtype == np.float32
    np.testing.assert_allclose(squeeze[0, :, 112, 112], [30 - 104, 20 - 117, 10 - 123])  # BGR minus mean
    np.testing.assert_allclose(squeeze[0, :, :, 0], squeeze[0, :, :, 112])  # no white stripe left
    mobile = networks.preprocess(networks.card("mobilenet_v2"), image)
    np.testing.assert_allclose(mobile[0, :, 5, 5], (np.array([10, 20, 30]) - 127.5) / 127.5, rtol=1e-6)
    with pytest.raises(TypeError, match="image: expected uint8 pixels"):
        networks.preprocess(networks.card("mobilenet_v2"), image.astype(np.float32))


# The README's table (onnxruntime, centre crop, bilinear resize to 224): first name, probability.
README_TOP1 = {
    "squeezenet1.1": {"cat.png": ("Egyptian cat", 0.72), "parrot.jpg": ("macaw", 0.98),
                      "hot_dog.jpg": ("hotdog", 0.47), "grace_hopper.png": ("bow tie", 0.65),
                      "pets.jpg": ("toy terrier", 0.27), "dragonfly.png": ("dragonfly", 0.84),
                      "dog_segmentation.png": ("white wolf", 0.68), "bird_segmentation.png": ("kite", 0.39)},
    "mobilenet_v2": {"cat.png": ("Egyptian cat", 0.85), "grace_hopper.png": ("military uniform", 0.68),
                     "pets.jpg": ("Italian greyhound", 0.79), "dog_segmentation.png": ("Samoyed", 0.96)},
}


@pytest.mark.parametrize("name,file_name", [("squeezenet1.1", "squeezenet1.1_fp16.onnx"),
                                            ("mobilenet_v2", "mobilenet_v2_1.0_224.onnx")])
def test_the_photos_get_the_readme_top1_labels(name, file_name):
    pytest.importorskip("onnx", reason="loading a network needs the onnx package")
    model = models.load(require(file_name))
    names = networks.labels(model.card, imagenet_dir())
    table = README_TOP1[name]
    x = np.concatenate([networks.preprocess(model.card, photo(p)) for p in table])
    scores = model(x).numpy()
    probabilities = np.exp(scores - scores.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    for row, (photo_name, (label, probability)) in zip(probabilities, table.items()):
        top = int(np.argmax(row))
        assert names[top].split(",")[0] == label, photo_name
        assert row[top] == pytest.approx(probability, abs=0.02), photo_name
