"""Tests of minisg.data: the real MNIST files, broken files, batches, noise and digit scenes."""
import gzip
import hashlib
import shutil

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minisg import data
from minisg.data import (
    DataError, MNIST_FILES, add_noise, batches, find_digit, load_mnist, make_scenes, read_idx,
    two_digit_image,
)


def idx_bytes(array, magic=None):
    """The IDX encoding of a uint8 array (header + payload), optionally with a wrong magic."""
    array = np.asarray(array, dtype=np.uint8)
    magic = (0x0800 | array.ndim) if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_gz(path, payload):
    path.write_bytes(gzip.compress(payload))
    return path


def sha256(payload):
    return hashlib.sha256(payload).hexdigest()


# ----------------------------------------------------------------------------- the real files

@pytest.mark.parametrize("split, size", [("train", 55_000), ("val", 5_000), ("test", 10_000), ("train_full", 60_000)])
def test_split_shapes_dtypes_and_ranges(split, size):
    images, labels = load_mnist(split)
    assert images.shape == (size, 1, 28, 28) and images.dtype == np.float32
    assert labels.shape == (size,) and labels.dtype == np.int64
    assert images.min() == 0.0 and images.max() == 1.0
    assert set(np.unique(labels)) == set(range(10))


def test_first_labels_and_mean_pixels_match_the_readme():
    train_images, train_labels = load_mnist("train_full")
    test_images, test_labels = load_mnist("test")
    assert train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert train_images.mean(dtype=np.float64) * 255 == pytest.approx(33.3184, abs=1e-4)
    assert test_images.mean(dtype=np.float64) * 255 == pytest.approx(33.7912, abs=1e-4)


def test_val_is_the_held_out_tail_of_the_training_set():
    full_images, full_labels = load_mnist("train_full")
    train_images, train_labels = load_mnist("train")
    val_images, val_labels = load_mnist("val")
    np.testing.assert_array_equal(np.concatenate([train_images, val_images]), full_images)
    np.testing.assert_array_equal(np.concatenate([train_labels, val_labels]), full_labels)
    # Disjoint as images too: no validation image also appears in the training split.
    train_keys = {row.tobytes() for row in (train_images[:, 0] * 255).astype(np.uint8)}
    assert not any(row.tobytes() in train_keys for row in (val_images[:, 0] * 255).astype(np.uint8))


def test_callers_cannot_corrupt_the_cache():
    images, labels = load_mnist("test")
    images[:] = 0.5
    labels[:] = 3
    again_images, again_labels = load_mnist("test")
    assert again_labels[:3].tolist() == [7, 2, 1]
    assert again_images.mean(dtype=np.float64) * 255 == pytest.approx(33.7912, abs=1e-4)
    raw = read_idx(data.MNIST_DIR / "t10k-labels-idx1-ubyte.gz")
    assert not raw.flags.writeable


def test_unknown_split_lists_the_valid_ones():
    with pytest.raises(DataError, match="'train', 'val', 'test', 'train_full'"):
        load_mnist("validation")


# ----------------------------------------------------------------------------- broken files

def test_read_idx_round_trips_gzip_and_plain(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    gz = write_gz(tmp_path / "a-idx3-ubyte.gz", idx_bytes(array))
    plain = tmp_path / "a-idx3-ubyte"
    plain.write_bytes(idx_bytes(array))
    np.testing.assert_array_equal(read_idx(gz, sha256(idx_bytes(array))), array)
    np.testing.assert_array_equal(read_idx(plain), array)
    labels = np.array([3, 1, 4], np.uint8)
    np.testing.assert_array_equal(read_idx(write_gz(tmp_path / "l.gz", idx_bytes(labels))), labels)


def test_wrong_checksum_names_file_and_both_hashes(tmp_path):
    payload = bytearray(idx_bytes(np.zeros((2, 28, 28), np.uint8)))
    expected = sha256(bytes(payload))
    payload[100] ^= 0xFF  # one flipped pixel: structure fine, contents not
    path = write_gz(tmp_path / "flipped.gz", bytes(payload))
    with pytest.raises(DataError) as info:
        read_idx(path, expected)
    message = str(info.value)
    assert str(path) in message and "SHA-256" in message
    assert sha256(bytes(payload)) in message and expected in message


def test_truncated_payload_is_reported(tmp_path):
    path = write_gz(tmp_path / "short.gz", idx_bytes(np.ones((3, 28, 28), np.uint8))[:-10])
    with pytest.raises(DataError, match="truncated") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_oversized_payload_is_reported(tmp_path):
    path = write_gz(tmp_path / "long.gz", idx_bytes(np.ones(5, np.uint8)) + b"extra")
    with pytest.raises(DataError, match="5 unexpected bytes") as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("magic, reason", [
    (0x00000802, "2 dimensions"),
    (0x00000D03, "type code 0x0D"),
    (0x3C68746D, "two zero bytes"),  # "<htm": a saved web page instead of the data
])
def test_wrong_magic_number_is_reported(tmp_path, magic, reason):
    path = write_gz(tmp_path / "magic.gz", idx_bytes(np.zeros((2, 2, 2), np.uint8), magic=magic))
    with pytest.raises(DataError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message and f"magic number is 0x{magic:08X}" in message and reason in message


def test_corrupt_gzip_stream_is_a_data_error(tmp_path):
    compressed = bytearray(gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8))))
    cut = tmp_path / "cut.gz"
    cut.write_bytes(bytes(compressed[: len(compressed) // 2]))
    garbled = tmp_path / "garbled.gz"
    compressed[12:20] = b"\xff" * 8
    garbled.write_bytes(bytes(compressed))
    for path in (cut, garbled):
        with pytest.raises(DataError, match="corrupt gzip stream") as info:
            read_idx(path)
        assert str(path) in str(info.value)


def test_missing_file_says_which_and_where(tmp_path):
    with pytest.raises(DataError, match="file not found") as info:
        read_idx(tmp_path / "nope.gz")
    assert "nope.gz" in str(info.value)
    with pytest.raises(DataError) as info:
        load_mnist("test", root=tmp_path)
    message = str(info.value)
    assert "t10k-images-idx3-ubyte.gz" in message and str(tmp_path) in message and "root=" in message


def test_data_folder_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MINISG_DATA", str(tmp_path))
    assert data.mnist_dir() == tmp_path
    with pytest.raises(DataError, match="MINISG_DATA") as info:
        load_mnist("test")
    assert str(tmp_path) in str(info.value)


def test_load_mnist_checks_the_checksum_table(tmp_path):
    shutil.copy(data.MNIST_DIR / "t10k-images-idx3-ubyte.gz", tmp_path)
    labels = bytearray(gzip.decompress((data.MNIST_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    labels[8] = (labels[8] + 1) % 10  # relabel the first test digit: still a valid IDX file
    write_gz(tmp_path / "t10k-labels-idx1-ubyte.gz", bytes(labels))
    with pytest.raises(DataError) as info:
        load_mnist("test", root=tmp_path)
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte.gz" in message and MNIST_FILES["t10k-labels-idx1-ubyte"][0] in message
    # The uncorrupted copy also loads from a plain (uncompressed) file.
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    shutil.copy(data.MNIST_DIR / "t10k-labels-idx1-ubyte.gz", tmp_path / "t10k-labels-idx1-ubyte.gz")
    assert load_mnist("test", root=tmp_path)[1][:3].tolist() == [7, 2, 1]


# ----------------------------------------------------------------------------- batches

@settings(max_examples=40, deadline=None)
@given(size=st.integers(0, 60), batch_size=st.integers(1, 70), seed=st.integers(0, 2**32 - 1))
def test_batches_cover_every_index_once_per_epoch(size, batch_size, seed):
    images = np.arange(size, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    labels = np.arange(size)
    seen = []
    for x, y in batches(images, labels, batch_size, np.random.default_rng(seed)):
        assert 1 <= len(y) <= batch_size
        np.testing.assert_array_equal(x[:, 0], y)  # images and labels stay paired
        seen.extend(y.tolist())
    assert sorted(seen) == list(range(size))


def test_batches_are_deterministic_per_seed_and_drop_last_works():
    labels = np.arange(103)
    images = labels[:, None].astype(np.float32)

    def epoch(seed, **kwargs):
        return [y.tolist() for _, y in batches(images, labels, 10, np.random.default_rng(seed), **kwargs)]

    assert epoch(1) == epoch(1)
    assert epoch(1) != epoch(2)
    assert [len(b) for b in epoch(1, drop_last=True)] == [10] * 10
    assert epoch(None, shuffle=False)[0] == list(range(10))


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_batches_rejects_bad_batch_size_at_the_call(bad):
    with pytest.raises((TypeError, ValueError), match="batch_size"):   # TypeError: not an int
        batches(np.zeros((4, 2)), np.zeros(4), bad, np.random.default_rng(0))


# ----------------------------------------------------------------------------- noise

def test_zero_noise_leaves_images_unchanged():
    images = np.random.default_rng(0).random((3, 1, 5, 5), dtype=np.float32)
    noisy = add_noise(images, 0.0, np.random.default_rng(1))
    np.testing.assert_array_equal(noisy, images)
    assert noisy.dtype == np.float32 and noisy is not images


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_noise_stdev_follows_each_images_range(dtype):
    # Three images with ranges 1, 3 and 0.5: each must get stdev level * its own range.
    base = np.zeros((3, 1, 100, 100), dtype)
    base[0, 0, 0, 0], base[1, 0, 0, 0], base[2, 0, 0, 0] = 1.0, 3.0, 0.5
    level = 0.2
    noisy = add_noise(base, level, np.random.default_rng(0))
    assert noisy.dtype == dtype
    measured = (noisy - base).reshape(3, -1).std(axis=1)
    np.testing.assert_allclose(measured, level * np.array([1.0, 3.0, 0.5]), rtol=0.03)
    other = add_noise(base, level, np.random.default_rng(0))
    np.testing.assert_array_equal(noisy, other)  # same seed, same noise
    assert not np.array_equal(noisy, add_noise(base, level, np.random.default_rng(1)))


def test_noise_is_fresh_on_each_call_and_not_clipped():
    rng = np.random.default_rng(0)
    images, _ = load_mnist("test")
    first, second = add_noise(images[:4], 0.3, rng), add_noise(images[:4], 0.3, rng)
    assert not np.array_equal(first, second)
    assert first.min() < 0 and first.max() > 1


def test_gaussian_noise_copies_follow_their_image_and_draw_in_the_given_dtype():
    images = np.stack([np.zeros((1, 2, 2)), np.ones((1, 2, 2))]).astype(np.float32)
    sigmas = np.array([0.0, 2.0])
    noisy = data.gaussian_noise(images, sigmas, np.random.default_rng(5), copies=3)
    assert noisy.shape == (6, 1, 2, 2) and noisy.dtype == np.float32
    np.testing.assert_array_equal(noisy[:3], 0)                   # sigma 0: image 0's rows unchanged
    expected = 1 + 2 * np.random.default_rng(5).standard_normal((2, 3, 1, 2, 2))[1]   # float64 draws
    np.testing.assert_array_equal(noisy[3:], expected.astype(np.float32))
    np.testing.assert_allclose(data.noise_stdevs(images * 4, 0.5), [0.0, 0.0])   # constant images
    np.testing.assert_allclose(data.noise_stdevs(np.arange(8.0).reshape(2, 4), 0.5), [1.5, 1.5])


def test_negative_noise_level_names_the_argument():
    with pytest.raises(ValueError, match=r"noise_level.*-0\.1"):
        add_noise(np.zeros((1, 4)), -0.1, np.random.default_rng(0))


# ----------------------------------------------------------------------------- scenes

def boxes_overlap(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_scenes_are_deterministic_per_seed():
    one, two = make_scenes(20, seed=3), make_scenes(20, seed=3)
    np.testing.assert_array_equal(one.images, two.images)
    assert one.boxes == two.boxes and one.digit_labels == two.digit_labels
    assert not np.array_equal(one.images, make_scenes(20, seed=4).images)


def test_scene_geometry_labels_and_masks_are_consistent():
    scenes = make_scenes(60, canvas=56, digits=(1, 4), seed=0)
    test_images, test_labels = load_mnist("test")
    assert scenes.images.shape == (60, 1, 56, 56) and scenes.images.dtype == np.float32
    assert scenes.masks.shape == (60, 4, 56, 56) and scenes.masks.dtype == bool
    assert scenes.labels.shape == (60, 10) and scenes.labels.dtype == np.float32
    assert set(scenes.count.tolist()) == {1, 2, 3, 4}
    for s in range(len(scenes)):
        count, boxes = int(scenes.count[s]), scenes.boxes[s]
        assert len(boxes) == len(scenes.digit_labels[s]) == count
        assert scenes.digit_labels[s] == test_labels[scenes.source_indices[s]].tolist()
        expected = np.zeros(10, np.float32)
        expected[scenes.digit_labels[s]] = 1
        np.testing.assert_array_equal(scenes.labels[s], expected)
        for a in range(count):
            top, left, bottom, right = boxes[a]
            assert 0 <= top < bottom <= 56 and 0 <= left < right <= 56
            assert all(not boxes_overlap(boxes[a], boxes[b]) for b in range(a + 1, count))
            mask = scenes.masks[s, a]
            assert mask.any() and not mask[:top].any() and not mask[bottom:].any()
            assert not mask[:, :left].any() and not mask[:, right:].any()
            assert (scenes.images[s, 0][mask] > data.MASK_THRESHOLD).all()
        assert not scenes.masks[s, count:].any()
        # Outside the boxes the canvas is black; the ink equals the source digits' ink.
        total_ink = sum(test_images[i].sum(dtype=np.float64) for i in scenes.source_indices[s])
        assert scenes.images[s].sum(dtype=np.float64) == pytest.approx(total_ink, rel=1e-5)


def test_same_class_and_distinct_classes_are_honoured():
    same = make_scenes(30, digits=(2, 4), same_class=True, seed=1)
    assert all(len(set(labels)) == 1 for labels in same.digit_labels)
    assert all(same.labels[s].sum() == 1 for s in range(30))
    distinct = make_scenes(30, digits=(2, 4), distinct_classes=True, seed=1)
    assert all(len(set(labels)) == len(labels) for labels in distinct.digit_labels)
    np.testing.assert_array_equal(distinct.labels.sum(axis=1), distinct.count)
    with pytest.raises(ValueError, match="same_class and distinct_classes"):
        make_scenes(2, same_class=True, distinct_classes=True)


def test_train_scenes_draw_from_the_training_split():
    scenes = make_scenes(5, split="train", seed=0)
    _, train_labels = load_mnist("train")
    for s in range(5):
        assert scenes.digit_labels[s] == train_labels[scenes.source_indices[s]].tolist()


def test_canvas_too_small_is_a_clear_error():
    with pytest.raises(ValueError, match=r"could not place .* 12x12 canvas"):
        make_scenes(1, canvas=12, digits=(1, 1))
    with pytest.raises(ValueError, match="larger canvas or fewer digits"):
        make_scenes(1, canvas=30, digits=(6, 6))


def test_two_digit_image_left_and_right():
    three, seven = find_digit(3), find_digit(7)
    pair = two_digit_image(three, seven)
    assert pair.image.shape == (1, 28, 56) and pair.masks.shape == (2, 28, 56)
    assert pair.digit_labels == (3, 7)
    assert pair.labels.nonzero()[0].tolist() == [3, 7]
    assert not pair.masks[0][:, 28:].any() and not pair.masks[1][:, :28].any()
    test_images, _ = load_mnist("test")
    np.testing.assert_array_equal(pair.image[0, :, :28], test_images[three, 0])
    np.testing.assert_array_equal(pair.image[0, :, 28:], test_images[seven, 0])
    assert pair.boxes[0][3] <= 28 <= pair.boxes[1][1]
