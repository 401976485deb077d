"""Photos in and out of the ImageNet networks: load_photo, square_photo/preprocess/deprocess, top_k, class_index.

Synthetic images and label lists always run; the shared photos, labels and networks
(tests/imagenet_files.py) are used where present and skipped otherwise.
"""
import re

import numpy as np
import pytest

import minisg
from minisg import models
from minisg.models import networks

from imagenet_files import imagenet_dir, photo, require

CARDS = [networks.card("squeezenet1.1"), networks.card("mobilenet_v2")]
CARD_IDS = [card.name for card in CARDS]


def _synthetic(height=300, width=412, seed=0, noise=20.0):
    """A photo-like uint8 RGB image: smooth ramps plus noise, every channel different."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    ramps = np.stack([255 * rows / height, 255 * cols / width, 128 + 100 * np.sin(rows / 17 + cols / 23)], axis=2)
    return np.clip(ramps + rng.normal(0, noise, size=ramps.shape), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------- load_photo

def test_load_photo_gives_rgb_uint8_from_png_jpeg_grey_and_rgba(tmp_path):
    from PIL import Image
    image = _synthetic(40, 60)
    Image.fromarray(image).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(networks.load_photo(tmp_path / "rgb.png"), image)
    smooth = _synthetic(40, 60, noise=0.0)
    Image.fromarray(smooth).save(tmp_path / "rgb.jpg", quality=95)
    jpeg = networks.load_photo(str(tmp_path / "rgb.jpg"))  # a str path too
    assert jpeg.shape == (40, 60, 3) and jpeg.dtype == np.uint8
    assert np.abs(jpeg.astype(int) - smooth).mean() < 3
    Image.fromarray(image[:, :, 0]).save(tmp_path / "grey.png")
    grey = networks.load_photo(tmp_path / "grey.png")
    assert grey.shape == (40, 60, 3) and np.all(grey == image[:, :, :1])
    Image.fromarray(np.dstack([image, np.full((40, 60), 7, np.uint8)])).save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(networks.load_photo(tmp_path / "rgba.png"), image)


def test_load_photo_names_the_path_when_missing_or_not_an_image(tmp_path):
    missing = tmp_path / "nowhere.png"
    with pytest.raises(FileNotFoundError, match=re.escape(f"path {str(missing)!r}: no such photo")):
        networks.load_photo(missing)
    with pytest.raises(FileNotFoundError, match="no such photo"):
        networks.load_photo(tmp_path)  # a folder is not a photo
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ValueError, match=re.escape(f"path {str(text)!r}: not an image Pillow can read")):
        networks.load_photo(text)


def test_load_photo_reads_the_shared_photos_as_the_tests_helper_does():
    path = require("photos", "cat.png")
    cat = networks.load_photo(path)
    assert cat.dtype == np.uint8 and cat.ndim == 3 and cat.shape[2] == 3
    np.testing.assert_array_equal(cat, photo("cat.png"))


# ---------------------------------------------------------------------------- square_photo, preprocess, deprocess

@pytest.mark.parametrize("card", CARDS, ids=CARD_IDS)
@pytest.mark.parametrize("shape", [(300, 412), (413, 300), (224, 224), (100, 150)])
def test_deprocess_undoes_preprocess_to_the_cropped_resized_photo(card, shape):
    image = _synthetic(*shape)
    x = networks.preprocess(card, image)
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32
    seen = networks.square_photo(card, image)
    assert seen.shape == (224, 224, 3) and seen.dtype == np.uint8
    back = networks.deprocess(card, x)
    assert back.shape == (224, 224, 3) and back.dtype == np.uint8
    assert np.abs(back.astype(int) - seen).max() <= 1  # within rounding
    np.testing.assert_array_equal(networks.deprocess(card, x[0]), back)                # (3, H, W)
    np.testing.assert_array_equal(networks.deprocess(card, minisg.tensor(x)), back)    # a Tensor
    if shape == (224, 224):  # nothing to crop or resize: the very pixels come back
        np.testing.assert_array_equal(back, image)


@pytest.mark.parametrize("card", CARDS, ids=CARD_IDS)
def test_deprocess_undoes_preprocess_on_a_real_photo(card):
    cat = photo("cat.png")
    back = networks.deprocess(card, networks.preprocess(card, cat))
    assert np.abs(back.astype(int) - networks.square_photo(card, cat)).max() <= 1


def test_deprocess_clips_and_knows_the_channel_order():
    squeeze, mobile = CARDS
    x = np.zeros((1, 3, 2, 2), dtype=np.float32)
    x[0, :, 0, 0] = (1.0, 2.0, 3.0)          # squeezenet: BGR minus (104, 117, 123)
    x[0, :, 1, 1] = (500.0, -500.0, 0.0)     # beyond [0, 255]: clipped
    back = networks.deprocess(squeeze, x)
    np.testing.assert_array_equal(back[0, 0], [126, 119, 105])  # R, G, B
    np.testing.assert_array_equal(back[1, 1], [123, 0, 255])
    np.testing.assert_array_equal(networks.deprocess(mobile, np.full((3, 1, 1), -1.0))[0, 0], [0, 0, 0])
    np.testing.assert_array_equal(networks.deprocess(mobile, np.full((3, 1, 1), 1.0))[0, 0], [255, 255, 255])
    for bad in (np.zeros((2, 3, 4, 4)), np.zeros((1, 1, 4, 4)), np.zeros((4, 4, 3))):
        with pytest.raises(ValueError, match=r"x: expected shape \(1, 3, H, W\) or \(3, H, W\)"):
            networks.deprocess(mobile, bad)


def test_the_square_is_the_centre_crop_resized_bilinearly():
    from PIL import Image
    card = CARDS[1]
    image = _synthetic(300, 412)
    left = (412 - 300) // 2
    expected = Image.fromarray(image[:, left:left + 300]).resize((224, 224), Image.BILINEAR)
    np.testing.assert_array_equal(networks.square_photo(card, image), np.asarray(expected))
    np.testing.assert_array_equal(networks.square_photo(card, Image.fromarray(image)), np.asarray(expected))


def test_cropping_then_resizing_keeps_the_region_of_resizing_the_shorter_side_then_cropping():
    """The docstring's claim: both orders show the same part of the photo. On a smooth photo the
    pixels differ only by resampling (a fraction of a level on average, a few at most)."""
    from PIL import Image
    rows, cols = np.mgrid[0:300, 0:600]
    smooth = np.stack([255 * rows / 300, 255 * cols / 600, 128 + 60 * np.sin(rows / 40.0 + cols / 50.0)], axis=2)
    image = np.clip(smooth, 0, 255).astype(np.uint8)
    shorter_first = np.asarray(Image.fromarray(image).resize((448, 224), Image.BILINEAR))[:, 112:336]
    ours = networks.square_photo(CARDS[0], image).astype(int)
    difference = np.abs(ours - shorter_first)
    assert difference.mean() < 1.0 and difference.max() <= 4
    # a crop off-centre by 10 pixels (of 224) would be plainly different: the test can see the region
    assert np.abs(ours[:, :-10] - np.asarray(Image.fromarray(image).resize((448, 224), Image.BILINEAR))
                  [:, 122:336]).mean() > 2


# ---------------------------------------------------------------------------- top_k

def _fake_names(count):
    return [f"class number {i}" for i in range(count)]


def test_top_k_sorts_the_softmax_and_names_each_class():
    card = CARDS[0]
    logits = np.random.default_rng(1).normal(size=1000)
    logits[[3, 77, 500]] = (9.0, 8.0, 7.5)
    names = _fake_names(1000)
    best = networks.top_k(logits, card, k=5, label_names=names)
    probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert [index for index, _, _ in best] == list(np.argsort(-probabilities)[:5])
    assert [index for index, _, _ in best[:3]] == [3, 77, 500]
    assert all(name == names[index] for index, name, _ in best)
    np.testing.assert_allclose([p for _, _, p in best], probabilities[[i for i, _, _ in best]], rtol=1e-12)
    assert all(isinstance(index, int) and isinstance(p, float) for index, _, p in best)
    assert networks.top_k(logits[None].astype(np.float32), card, k=2, label_names=names)[0][:2] == (3, "class number 3")
    assert networks.top_k(minisg.tensor(logits[None]), card, k=1, label_names=names)[0][0] == 3
    assert len(networks.top_k(logits, card, k=2000, label_names=names)) == 1000


def test_top_k_refuses_a_batch_a_wrong_size_and_wrong_names():
    card = CARDS[1]
    names = _fake_names(1001)
    with pytest.raises(ValueError, match=r"logits: expected one image's scores, shape \(1001,\) or \(1, 1001\)"):
        networks.top_k(np.zeros((2, 1001)), card, label_names=names)
    with pytest.raises(ValueError, match=r"got \(1000,\)"):
        networks.top_k(np.zeros(1000), card, label_names=names)
    with pytest.raises(ValueError, match="label_names: 1000 names, but 'mobilenet_v2' has 1001 outputs"):
        networks.top_k(np.zeros(1001), card, label_names=names[:-1])
    with pytest.raises(ValueError, match="k: expected a positive int"):
        networks.top_k(np.zeros(1001), card, k=0, label_names=names)


# The README's table: cat.png's top-1 with onnxruntime (centre crop, bilinear resize to 224).
CAT_TOP1 = {"squeezenet1.1": ("squeezenet1.1_fp16.onnx", 285, 0.72),
            "mobilenet_v2": ("mobilenet_v2_1.0_224.onnx", 286, 0.85)}


@pytest.mark.parametrize("name", list(CAT_TOP1))
def test_the_real_networks_put_egyptian_cat_first_on_cat_png(name):
    pytest.importorskip("onnx", reason="loading a network needs the onnx package")
    file_name, index, probability = CAT_TOP1[name]
    model = models.load(require(file_name))
    names = networks.labels(model.card, imagenet_dir())
    cat = networks.load_photo(require("photos", "cat.png"))
    best = networks.top_k(model(networks.preprocess(model.card, cat)), model.card, k=5, label_names=names)
    assert len(best) == 5 and [p for _, _, p in best] == sorted((p for _, _, p in best), reverse=True)
    assert best[0][:2] == (index, "Egyptian cat")
    assert best[0][2] == pytest.approx(probability, abs=0.02)
    assert networks.class_index(model.card, "Egyptian cat", names) == best[0][0]


# ---------------------------------------------------------------------------- class_index

FAKE_LABELS = ["background", "tabby, tabby cat", "tiger cat", "Persian cat", "Egyptian cat",
               "crane", "crane", "tiger, Panthera tigris", "tiger shark, Galeocerdo cuvieri"]


def _fake_card():
    import dataclasses
    return dataclasses.replace(CARDS[1], name="toy", num_classes=len(FAKE_LABELS))


def test_class_index_by_exact_name_unique_prefix_or_index():
    card = _fake_card()
    assert networks.class_index(card, "Egyptian cat", FAKE_LABELS) == 4
    assert networks.class_index(card, "  EGYPTIAN   cat ", FAKE_LABELS) == 4  # case and spaces
    assert networks.class_index(card, "egypt", FAKE_LABELS) == 4              # a unique prefix
    assert networks.class_index(card, "tabby cat", FAKE_LABELS) == 1          # one of a label's names
    assert networks.class_index(card, "tabby, tabby cat", FAKE_LABELS) == 1   # the whole label
    assert networks.class_index(card, "tiger", FAKE_LABELS) == 7              # exact beats prefix
    assert networks.class_index(card, 3, FAKE_LABELS) == 3
    assert networks.class_index(card, np.int64(8)) == 8                        # an index needs no labels


def test_class_index_errors_name_the_candidates():
    card = _fake_card()
    with pytest.raises(networks.ClassNameError,
                       match=r"class 'egyptain cat' is not a label of 'toy'; close matches: 'Egyptian cat' \(4\)"):
        networks.class_index(card, "egyptain cat", FAKE_LABELS)
    with pytest.raises(networks.ClassNameError, match="class 'qwxz' is not a label of 'toy'; no close matches"):
        networks.class_index(card, "qwxz", FAKE_LABELS)
    with pytest.raises(networks.ClassNameError,
                       match=r"class 'crane' is ambiguous for 'toy': it matches 'crane' \(5\), 'crane' \(6\)"):
        networks.class_index(card, "crane", FAKE_LABELS)
    without_tiger = [label for label in FAKE_LABELS if not label.startswith("tiger,")] + ["lion"]
    with pytest.raises(networks.ClassNameError, match=r"'tiger cat' \(2\), 'tiger shark, Galeocerdo cuvieri' \(7\)"):
        networks.class_index(card, "tiger ", without_tiger)  # a prefix of two classes
    assert issubclass(networks.ClassNameError, ValueError)
    with pytest.raises(IndexError, match=r"class index 9 is out of range for 'toy' \(9 outputs: 0 to 8\)"):
        networks.class_index(card, 9, FAKE_LABELS)
    with pytest.raises(IndexError, match="class index -1 is out of range"):
        networks.class_index(card, -1, FAKE_LABELS)
    with pytest.raises(TypeError, match="class: expected a class name"):
        networks.class_index(card, True, FAKE_LABELS)


@pytest.mark.parametrize("card,expected", [(CARDS[0], 285), (CARDS[1], 286)], ids=CARD_IDS)
def test_class_index_on_the_real_labels(card, expected):
    require(card.label_file)
    names = networks.labels(card, imagenet_dir())
    assert networks.class_index(card, "egyptian cat", names) == expected
    assert names[expected] == "Egyptian cat"
    with pytest.raises(networks.ClassNameError, match=r"close matches: 'Egyptian cat' \(%d\)" % expected):
        networks.class_index(card, "egyptain cat", names)
