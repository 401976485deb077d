"""Bad inputs to the data loaders, scenes, mini-batches and photo helpers: each gets one error
naming the argument and the bad value (never a traceback from deep inside NumPy or Pillow)."""
import re

import numpy as np
import pytest

from minisg import data
from minisg.data import DataError
from minisg.models import networks


def raises(error, message, call):
    """call() raises `error` whose message matches `message` (a regex); returns the message."""
    with pytest.raises(error, match=message) as caught:
        call()
    return str(caught.value)


# ---------------------------------------------------------------------------- MNIST files and splits

@pytest.mark.parametrize("split", ["validation", "TEST", "", None, 3, ["train"]])
def test_an_unknown_split_is_named_with_the_valid_ones(split):
    raises(DataError, rf"split: expected one of 'train', 'val', 'test', 'train_full', got {re.escape(repr(split))}",
           lambda: data.load_mnist(split))


@pytest.mark.parametrize("root", [3, b"/tmp", ["data"]])
def test_a_root_that_is_no_path_is_named(root):
    raises(TypeError, r"root: expected a file path \(str or pathlib.Path\)", lambda: data.load_mnist("test", root=root))


def test_a_root_that_is_a_file_or_an_empty_folder_is_named(tmp_path):
    not_a_folder = tmp_path / "mnist.txt"
    not_a_folder.write_text("x")
    raises(DataError, r"mnist.txt: is a file, not a folder of MNIST files \(given as root=\)",
           lambda: data.load_mnist("test", root=not_a_folder))
    raises(DataError, r"MNIST file not found .*given as root=", lambda: data.load_mnist("test", root=tmp_path))


def test_read_idx_names_a_folder_a_missing_file_and_a_bad_checksum_argument(tmp_path):
    raises(DataError, rf"{re.escape(str(tmp_path))}: is a folder, not a file", lambda: data.read_idx(tmp_path))
    raises(DataError, r"nothing.gz: file not found", lambda: data.read_idx(tmp_path / "nothing.gz"))
    raises(TypeError, r"path: expected a file path", lambda: data.read_idx(None))
    labels = data.MNIST_DIR / "t10k-labels-idx1-ubyte.gz"
    raises(ValueError, r"expected_sha256: expected 64 hexadecimal digits or None, got 'abc'",
           lambda: data.read_idx(labels, expected_sha256="abc"))


# ---------------------------------------------------------------------------- scenes

BAD_SCENES = [
    (dict(n=0), r"n: expected an int >= 1, got 0"),
    (dict(n=-3), r"n: expected an int >= 1, got -3"),
    (dict(n=2.5), r"n: expected an int >= 1, got 2.5"),
    (dict(n=True), r"n: expected an int >= 1, got True"),
    (dict(n="4"), r"n: expected an int >= 1, got '4'"),
    (dict(canvas="big"), r"canvas: expected an int side or \(height, width\), ints >= 1, got 'big'"),
    (dict(canvas=56.0), r"canvas: expected .*got 56.0"),
    (dict(canvas=(0, 56)), r"canvas: expected .*got \(0, 56\)"),
    (dict(canvas=(56,)), r"canvas: expected .*got \(56,\)"),
    (dict(digits=(0, 2)), r"digits: expected \(fewest, most\), two ints with 1 <= fewest <= most, got \(0, 2\)"),
    (dict(digits=(3, 2)), r"digits: expected .*got \(3, 2\)"),
    (dict(digits=("a", 2)), r"digits: expected .*got \('a', 2\)"),
    (dict(digits=2), r"digits: expected .*got 2"),
    (dict(seed=-1), r"seed: expected an int >= 0, got -1"),
    (dict(seed=1.5), r"seed: expected an int >= 0, got 1.5"),
    (dict(seed="abc"), r"seed: expected an int >= 0, got 'abc'"),
    (dict(seed=True), r"seed: expected an int >= 0, got True"),
    (dict(same_class="yes"), r"same_class: expected True or False, got 'yes'"),
    (dict(distinct_classes=1), r"distinct_classes: expected True or False, got 1"),
    (dict(split="nope"), r"split: expected one of .*got 'nope'"),
]


@pytest.mark.parametrize("arguments, message", BAD_SCENES, ids=[repr(a) for a, _ in BAD_SCENES])
def test_make_scenes_names_each_bad_argument(arguments, message):
    arguments = {"n": 2, **arguments}
    raises((TypeError, ValueError), message, lambda: data.make_scenes(**arguments))  # TypeError: wrong kind


@pytest.mark.parametrize("arguments, message", [
    (dict(i=10_000), r"i: expected an int from 0 to 9,999, got 10000"),
    (dict(i=-1), r"i: expected an int from 0 to 9,999, got -1"),
    (dict(j=1.0), r"j: expected an int from 0 to 9,999, got 1.0"),
    (dict(canvas=(28, 40)), r"canvas: two_digit_image needs a canvas of at least \(28, 56\), got \(28, 40\)"),
])
def test_two_digit_image_names_each_bad_argument(arguments, message):
    arguments = {"i": 0, "j": 1, **arguments}
    raises((TypeError, ValueError), message, lambda: data.two_digit_image(**arguments))


@pytest.mark.parametrize("arguments, message", [
    (dict(digit_class=10), r"digit_class: expected an int from 0 to 9, got 10"),
    (dict(digit_class="3"), r"digit_class: expected an int from 0 to 9, got '3'"),
    (dict(digit_class=3, nth=-1), r"nth: expected an int >= 0, got -1"),
    (dict(digit_class=3, nth=1.5), r"nth: expected an int >= 0, got 1.5"),
    (dict(digit_class=3, nth=5000), r"nth: expected an index below \d+ \(the images of class 3 in split 'test'\), got 5000"),
])
def test_find_digit_names_each_bad_argument(arguments, message):
    raises((TypeError, ValueError), message, lambda: data.find_digit(**arguments))


# ---------------------------------------------------------------------------- mini-batches

@pytest.mark.parametrize("arguments, error, message", [
    (dict(images=[1, 2, 3, 4]), TypeError, r"images: expected an array with one row per example, got list"),
    (dict(labels=np.float64(3.0)), TypeError, r"labels: expected an array with one row per example"),
    (dict(labels=np.zeros(3)), ValueError, r"labels: expected one label per image \(4\), got 3"),
    (dict(batch_size=2.0), TypeError, r"batch_size: expected an int >= 1, got 2.0"),
    (dict(batch_size=True), TypeError, r"batch_size: expected an int >= 1, got True"),
    (dict(labels=np.array(["a"] * 4)), TypeError, r"labels: expected numeric labels .*got dtype <U1"),
    (dict(rng=None), TypeError, r"rng: expected a numpy.random.Generator .*got NoneType None"),
    (dict(shuffle="yes"), TypeError, r"shuffle: expected True or False, got 'yes'"),
    (dict(drop_last=1), TypeError, r"drop_last: expected True or False, got 1"),
    (dict(rng=0), TypeError, r"rng: expected a numpy.random.Generator .*got int"),
])
def test_batches_names_each_bad_argument(arguments, error, message):
    arguments = {"images": np.zeros((4, 2)), "labels": np.zeros(4), "batch_size": 2,
                 "rng": np.random.default_rng(0), **arguments}
    raises(error, message, lambda: data.batches(**arguments))


# ---------------------------------------------------------------------------- photos and cards

SQUEEZENET = networks.CARDS["squeezenet1.1"]
NAMES = [f"class {i}" for i in range(SQUEEZENET.num_classes)]


def test_load_photo_names_a_missing_path_a_folder_and_a_non_image(tmp_path):
    raises(FileNotFoundError, r"path '.*nowhere.png': no such photo \(does not exist\)",
           lambda: networks.load_photo(tmp_path / "nowhere.png"))
    raises(FileNotFoundError, r"no such photo \(is a folder, not a file\)", lambda: networks.load_photo(tmp_path))
    (tmp_path / "notes.png").write_text("not a picture")
    raises(ValueError, r"notes.png': not an image Pillow can read", lambda: networks.load_photo(tmp_path / "notes.png"))
    raises(TypeError, r"path: expected a file path .*got None", lambda: networks.load_photo(None))


@pytest.mark.parametrize("image, error, message", [
    (np.zeros((8, 8, 3), np.float32), TypeError, r"image: expected uint8 pixels in \[0, 255\], got dtype float32"),
    (np.zeros((8, 8, 5), np.uint8), ValueError, r"image: expected shape \(H, W, 3\) .*got \(8, 8, 5\)"),
    (np.zeros((0, 8, 3), np.uint8), ValueError, r"image: expected at least one pixel, got 8x0"),
])
def test_preprocess_names_a_bad_image(image, error, message):
    raises(error, message, lambda: networks.preprocess(SQUEEZENET, image))


@pytest.mark.parametrize("call", [
    lambda: networks.preprocess("squeezenet1.1", np.zeros((8, 8, 3), np.uint8)),
    lambda: networks.deprocess(None, np.zeros((3, 8, 8))),
    lambda: networks.top_k(np.zeros(1000), "squeezenet1.1", label_names=NAMES),
    lambda: networks.class_index({"name": "x"}, 3),
    lambda: networks.labels("squeezenet1.1"),
])
def test_a_name_where_a_card_belongs_is_named(call):
    raises(TypeError, r"network: expected a NetworkCard \(networks.card\(name\)", call)


def test_deprocess_and_top_k_refuse_non_finite_or_non_numeric_values():
    x = np.zeros((1, 3, 8, 8), np.float32)
    x[0, 1, 2, 3] = np.nan
    raises(ValueError, r"x: expected finite values, got NaN or inf in 1 of 192",
           lambda: networks.deprocess(SQUEEZENET, x))
    raises(TypeError, r"x: expected a numeric array, got dtype <U1",
           lambda: networks.deprocess(SQUEEZENET, np.full((3, 2, 2), "a")))
    logits = np.zeros(1000)
    logits[7] = np.inf
    raises(ValueError, r"logits: expected finite scores, got NaN or inf in 1 of 1000",
           lambda: networks.top_k(logits, SQUEEZENET, label_names=NAMES))


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "5"])
def test_top_k_names_a_bad_k(k):
    raises(ValueError, rf"k: expected a positive int, got {re.escape(repr(k))}",
           lambda: networks.top_k(np.zeros(1000), SQUEEZENET, k=k, label_names=NAMES))


@pytest.mark.parametrize("label_names, message", [
    ("cat", r"label_names: expected a list of class names or None, got str"),
    (7, r"label_names: expected a list of class names or None, got int"),
    ([1] * 1000, r"label_names: expected class names \(str\), got int among them"),
])
def test_bad_label_names_are_named(label_names, message):
    raises(TypeError, message, lambda: networks.class_index(SQUEEZENET, "cat", label_names))


def test_unknown_networks_and_classes_are_named():
    raises(KeyError, r"network \['squeezenet1.1'\] is not known; known networks: squeezenet1.1, mobilenet_v2",
           lambda: networks.card(["squeezenet1.1"]))
    raises(networks.ClassNameError, r"class 'unicorn' is not a label of 'squeezenet1.1'",
           lambda: networks.class_index(SQUEEZENET, "unicorn", NAMES))
    raises(IndexError, r"class index 1000 is out of range for 'squeezenet1.1' \(1000 outputs: 0 to 999\)",
           lambda: networks.class_index(SQUEEZENET, 1000, NAMES))
    raises(TypeError, r"class: expected a class name \(str\) or an output index \(int\), got 2.5",
           lambda: networks.class_index(SQUEEZENET, 2.5, NAMES))
    raises(TypeError, r"directory: expected a file path", lambda: networks.labels(SQUEEZENET, directory=5))


# ---------------------------------------------------------------------------- noise helpers

IMAGES = np.random.default_rng(0).random((4, 1, 6, 6))
GENERATOR = "numpy.random.Generator"


def draw():
    return np.random.default_rng(0)


def noisy(**changes):
    """data.gaussian_noise of IMAGES with sigma 1, some arguments changed."""
    arguments = {"images": IMAGES, "sigmas": np.ones(4), "rng": draw(), **changes}
    return lambda: data.gaussian_noise(**arguments)


FLOAT_DTYPE = r"dtype: expected float32 or float64 "
MILLION = "expected an int from 1 to 1,000,000, got "


@pytest.mark.parametrize("call, error, message", [
    (lambda: data.add_noise(IMAGES, 0.1, None), TypeError, rf"rng: expected a {GENERATOR} .*got NoneType None"),
    (lambda: data.add_noise(IMAGES, 0.1, 5), TypeError, rf"rng: expected a {GENERATOR} .*got int 5"),
    (lambda: data.add_noise(IMAGES, "0.1", draw()), TypeError, r"noise_level: expected a finite number >= 0, got '0.1'"),
    (lambda: data.add_noise(IMAGES, True, draw()), TypeError, r"noise_level: expected a finite number >= 0, got True"),
    (lambda: data.add_noise(IMAGES, np.ones(4), draw()), TypeError, r"noise_level: expected a finite .*got array"),
    (lambda: data.add_noise(None, 0.1, draw()), TypeError, r"images: expected a numeric \(N, \.\.\.\) array.*got NoneType"),
    (lambda: data.add_noise(IMAGES[:0], 0.1, draw()), ValueError, r"images: expected at least one image .*\(0, 1, 6, 6\)"),
    (lambda: data.add_noise(np.full((2, 3), np.nan), 0.1, draw()), ValueError, r"images: expected finite values, got "
                                                                                r"NaN or inf in 6 of 6"),
    (lambda: data.add_noise(IMAGES.astype(complex), 0.1, draw()), TypeError, r"images: expected .*got dtype complex128"),
    (lambda: data.noise_stdevs(IMAGES, -1), ValueError, r"noise_level: expected a finite number >= 0, got -1"),
    (lambda: data.noise_stdevs(IMAGES, float("nan")), ValueError, r"noise_level: expected a finite number >= 0, got nan"),
    (lambda: data.noise_stdevs(IMAGES, 1e300, dtype=np.float32), ValueError,
     r"noise_level: expected finite noise stdevs >= 0, got 1e\+300, which gives sigmas array\(\[inf"),
    (lambda: data.noise_stdevs(IMAGES, 0.1, dtype=np.int32), TypeError, FLOAT_DTYPE + r".*got <class 'numpy.int32'>"),
    (lambda: data.noise_stdevs("abc", 0.1), TypeError, r"images: expected a numeric .*got str 'abc'"),
    (noisy(sigmas=np.ones(3)), ValueError, r"sigmas: expected 4 noise stdevs, one per image, got shape \(3,\)"),
    (noisy(sigmas=None), TypeError, r"sigmas: expected 4 noise stdevs, one per image, got NoneType None"),
    (noisy(sigmas=-np.ones(4)), ValueError, r"sigmas: expected finite noise stdevs >= 0, got array\(\[-1\."),
    (noisy(sigmas=np.full(4, np.nan)), ValueError, r"sigmas: expected finite noise stdevs >= 0, got array\(\[nan"),
    (noisy(copies=0), ValueError, "copies: " + MILLION + "0"),
    (noisy(copies=1.5), TypeError, "copies: " + MILLION + "1.5"),
    (noisy(copies=2 ** 70), ValueError, "copies: " + MILLION + str(2 ** 70)),
    (noisy(dtype="abc"), TypeError, FLOAT_DTYPE + r".*got 'abc'"),
    (noisy(rng=np.random.RandomState(0)), TypeError, rf"rng: expected a {GENERATOR} .*got RandomState"),
])
def test_the_noise_helpers_name_each_bad_argument(call, error, message):
    raises(error, message, call)


@pytest.mark.parametrize("arguments", [dict(n=2**70), dict(n=2, canvas=2**40)])
def test_scenes_too_big_for_memory_are_named_before_any_allocation(arguments):
    raises(ValueError, r"n, canvas: expected at most 2,147,483,648 pixels in all \(8 GiB of float32\), "
                       r"got n=", lambda: data.make_scenes(**arguments))
