"""Pretrained ImageNet CNNs by name: a card per network, the checked download, labels, preprocessing.

    from minisg import models
    from minisg.models import networks
    model = models.load("squeezenet1.1")                 # downloaded once, then read from the cache
    photo = networks.load_photo("cat.png")               # (H, W, 3) uint8 RGB
    x = networks.preprocess(model.card, photo)           # (1, 3, 224, 224), as the network was trained
    names = networks.labels(model.card, "path/to/labels/folder")
    networks.top_k(model(x).numpy(), model.card, k=5, label_names=names)  # [(285, 'Egyptian cat', 0.72), ...]
    target = networks.class_index(model.card, "egyptian cat", names)      # 285 (286 for mobilenet_v2)
    shown = networks.deprocess(model.card, x)            # (224, 224, 3) uint8 RGB: what the network saw

A card says everything needed to feed a photo to the network and read its answer: the input
size, the channel order, ``input = (pixel - mean) * scale`` for pixels in [0, 255], the label
file, and where the weights come from. Files are kept in ``$MINISG_HOME/networks`` if
MINISG_HOME is set, else in the user's cache (``minisg.files.cache_dir()/networks``).
"""
import difflib
import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import files


@dataclass(frozen=True)
class NetworkCard:
    name: str
    file_name: str
    sha256: str
    size_bytes: int
    input_size: int          # square input, pixels per side
    channel_order: str       # "RGB" or "BGR": the order of the input's 3 channels
    mean: tuple              # per channel, in channel_order, subtracted from pixels in [0, 255]
    scale: float             # then multiplied: input = (pixel - mean) * scale
    label_file: str
    num_classes: int
    label_offset: int        # output index i is ImageNet class i - label_offset (1: index 0 = background)
    url: str                 # None where the file has no public download
    licence: str
    description: str = ""

    @property
    def input_shape(self):
        """(3, S, S): one preprocessed photo."""
        return (3, self.input_size, self.input_size)

    @property
    def input_range(self):
        """(low, high) of preprocess's values: pixels 0 and 255 through (pixel - mean) * scale,
        the lowest and highest over the channels (SqueezeNet: (-123, 151); MobileNetV2: (-1, 1))."""
        mean = np.asarray(self.mean, dtype=np.float64)
        return (float(((0.0 - mean) * self.scale).min()), float(((255.0 - mean) * self.scale).max()))


CARDS = {card.name: card for card in (
    NetworkCard(
        name="squeezenet1.1",
        file_name="squeezenet1.1_fp16.onnx",
        sha256="21f25e3d9254af93e6218a359469fac714a017b3f9035c0f5c4acbf9a3ff7233",
        size_bytes=2_484_091,
        input_size=224, channel_order="BGR", mean=(104.0, 117.0, 123.0), scale=1.0,
        label_file="synset_words.txt", num_classes=1000, label_offset=0,
        url="https://github.com/microsoft/Windows-Machine-Learning/raw/master/SharedContent/models/SqueezeNet_fp16.onnx",
        licence="MIT (Microsoft, Windows-Machine-Learning SharedContent/models/SqueezeNet_fp16.onnx); "
                "weights from DeepScale/SqueezeNet, BSD-2-Clause",
        description="SqueezeNet 1.1 (1.24 M parameters, float16 weights, ONNX opset 7); conv10 has one map "
                    "per class, global average pooling gives the scores"),
    NetworkCard(
        name="mobilenet_v2",
        file_name="mobilenet_v2_1.0_224.onnx",
        sha256="fdc96e639f5759ec579f0ac3ecda2fe50153d34b3c146c26ccbf34e1ceab99f6",
        size_bytes=13_981_870,
        input_size=224, channel_order="RGB", mean=(127.5, 127.5, 127.5), scale=1 / 127.5,
        label_file="imagenet_labels_1001.txt", num_classes=1001, label_offset=1,
        url=None,
        licence="Apache-2.0 (Google, google-coral/test_data mobilenet_v2_1.0_224_quant.tflite, "
                "de-quantised to float and written as ONNX opset 13)",
        description="MobileNetV2 1.0/224 (3.49 M parameters, float32, ONNX opset 13); 1001 outputs, "
                    "index 0 is 'background'"),
)}

LABEL_SOURCES = {
    "synset_words.txt": "Tencent/ncnn on GitHub, examples/synset_words.txt (BSD-3-Clause)",
    "imagenet_labels_1001.txt": "google-coral/test_data on GitHub, the labels of its ImageNet models (Apache-2.0)",
}


class NetworkFileError(RuntimeError):
    """A network's file is not here and cannot be downloaded; the message says where to put it."""


class ChecksumError(ValueError):
    """A file's sha256 is not the one on the network's card."""


def card(name):
    """The card of a known network, or KeyError listing the known names."""
    if not isinstance(name, str) or name not in CARDS:
        raise KeyError(f"network {name!r} is not known; known networks: {', '.join(CARDS)}")
    return CARDS[name]


def networks_dir():
    """$MINISG_HOME/networks, else files.cache_dir()/networks."""
    home = os.environ.get("MINISG_HOME", "").strip()
    return (Path(home).expanduser() if home else files.cache_dir()) / "networks"


def file_path(network):
    """Where the network's file is kept (whether it is there yet or not)."""
    return networks_dir() / network.file_name


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def card_for_file(path):
    """The card of a network file recognised by its sha256, else by its file name; None if neither.

    Only a file of a card's size is hashed: a large unrelated model is not read twice.
    """
    path = Path(path)
    size = path.stat().st_size
    if any(network.size_bytes == size for network in CARDS.values()):
        digest = sha256_of(path)
        for network in CARDS.values():
            if network.sha256 == digest:
                return network
    return next((network for network in CARDS.values() if network.file_name == path.name), None)


# ---------------------------------------------------------------------------- loading

def load(name, dtype=np.float32, device=None, progress=True):
    """The network `name` as a GraphModel with its card; downloaded on first use where it can be."""
    from .checkpoints import check_load_options
    from .onnx_import import load_onnx, require_onnx  # here: `onnx` is needed only to load a network
    network = card(name)
    dtype, device = check_load_options(dtype, device)
    require_onnx()  # before a download that could not be used
    return load_onnx(fetch(network, progress=progress), dtype=dtype, device=device, card=network)


def fetch(network, progress=True):
    """The path of the network's checked file: the cached one, else downloaded into the cache."""
    path = file_path(network)
    if not path.exists():
        if network.url is None:
            raise NetworkFileError(_missing_message(network, path, "it has no public download"))
        files.check_output_path(path, argument="MINISG_HOME (the networks folder)")
        with files.exclusive(path, argument=f"downloading {network.name} to"):
            if not path.exists():  # another process may have finished it while we waited for the lock
                download(network, path, progress)
    _check_sha256(path, network)
    return path


def _missing_message(network, path, reason):
    source = f"download it from {network.url}" if network.url else "use a copy you have"
    return (f"network {network.name!r}: the file {network.file_name} is not at {path} and {reason}. "
            f"Put the file there ({source}; sha256 {network.sha256}), set MINISG_HOME to a folder whose "
            f"networks/ holds it, or load it by path: models.load('/path/to/{network.file_name}')")


def _check_sha256(path, network):
    digest = sha256_of(path)
    if digest != network.sha256:
        raise ChecksumError(f"network {network.name!r}: {path} has sha256 {digest}, expected {network.sha256}; "
                            f"the file is damaged or another one: delete it to download it again")


def _open_url(url):
    """The HTTP response (tests replace this function: they never use the network)."""
    return urllib.request.urlopen(url, timeout=60)


def download(network, path, progress=True):
    """Download the network's file to `path` through a temporary file, checking its sha256 as it
    comes; a failed or wrong download leaves nothing at `path`."""
    from tqdm.auto import tqdm
    try:
        response = _open_url(network.url)
    except (urllib.error.URLError, OSError) as exc:
        raise NetworkFileError(_missing_message(network, path, f"downloading it failed ({exc})")) from exc
    digest = hashlib.sha256()
    total = int(response.headers.get("Content-Length") or network.size_bytes)
    with response, files.atomic_write(path) as handle, \
            tqdm(total=total, unit="B", unit_scale=True, desc=network.file_name, disable=not progress) as bar:
        for block in _blocks(response, network, path):
            handle.write(block)
            digest.update(block)
            bar.update(len(block))
        if digest.hexdigest() != network.sha256:  # raised inside atomic_write: the temp file goes
            raise ChecksumError(f"network {network.name!r}: the download from {network.url} has sha256 "
                                f"{digest.hexdigest()}, expected {network.sha256}; nothing was kept")
    return path


def _blocks(response, network, path):
    """The response's bytes in blocks; a connection lost mid-way is a NetworkFileError."""
    while True:
        try:
            block = response.read(1 << 16)
        except (urllib.error.URLError, OSError) as exc:
            raise NetworkFileError(_missing_message(network, path, f"the download broke off ({exc})")) from exc
        if not block:
            return
        yield block


# ---------------------------------------------------------------------------- labels and photos

def labels(network, directory=None):
    """The class names in output order (len == num_classes), from the card's label file.

    The file is read from `directory`, else from the networks folder (networks_dir()).
    Lines ``n01440764 tench, Tinca tinca`` (WordNet id first) give ``tench, Tinca tinca``.
    """
    _check_card(network)
    folder = files.as_path(directory, "directory") if directory is not None else networks_dir()
    path = folder / network.label_file
    if not path.is_file():
        raise FileNotFoundError(f"labels of {network.name!r}: {path} does not exist; put {network.label_file} "
                                f"there or pass directory= (source: {LABEL_SOURCES.get(network.label_file, '?')})")
    names = [_class_name(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(names) != network.num_classes:
        raise ValueError(f"labels of {network.name!r}: {path} has {len(names)} lines, expected "
                         f"{network.num_classes}")
    return names


def _class_name(line):
    first, _, rest = line.strip().partition(" ")
    is_wordnet_id = len(first) == 9 and first[0] == "n" and first[1:].isdigit()
    return rest if is_wordnet_id else line.strip()


def load_photo(path):
    """The photo at `path` as (H, W, 3) uint8 RGB (Pillow reads it: PNG, JPEG, ...; grey, palette
    and RGBA photos are converted to RGB). A missing file or one that is not an image is an error
    naming `path`."""
    from PIL import Image, UnidentifiedImageError
    path = files.as_path(path)
    reason = files.unreadable_reason(path)
    if reason:
        raise FileNotFoundError(f"path {str(path)!r}: no such photo ({reason})")
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise ValueError(f"path {str(path)!r}: not an image Pillow can read ({exc})") from exc


def square_photo(network, image):
    """The photo as the network sees it, before scaling: (S, S, 3) uint8 RGB, S the input size.

    Centre crop to a square (the side is the shorter side; an odd margin leaves the extra
    pixel on the right or bottom), then bilinear resize to S x S (Pillow). This is what the
    README's onnxruntime top-1 table of the shared photos used. Resizing the shorter side to S
    first and then cropping the centre S x S keeps the same region of the photo; crop-then-resize
    is kept because its pixels are exactly those of that table.
    """
    from PIL import Image
    _check_card(network)
    picture = image if isinstance(image, Image.Image) else Image.fromarray(_as_rgb_uint8(image))
    picture = picture.convert("RGB")
    width, height = picture.size
    if width < 1 or height < 1:
        raise ValueError(f"image: expected at least one pixel, got {width}x{height}")
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = picture.crop((left, top, left + side, top + side))
    size = network.input_size
    return np.asarray(square.resize((size, size), Image.BILINEAR), dtype=np.uint8)


def preprocess(network, image):
    """A photo (H, W, 3) uint8 RGB, or a PIL image, as the network's input (1, 3, S, S) float32.

    square_photo (centre crop to a square, bilinear resize to the card's input size, Pillow),
    then the card's channel order and ``(pixel - mean) * scale``. deprocess undoes the last two.
    """
    pixels = square_photo(network, image).astype(np.float32)
    if network.channel_order == "BGR":
        pixels = pixels[:, :, ::-1]
    scaled = (pixels - np.asarray(network.mean, dtype=np.float32)) * np.float32(network.scale)
    return np.ascontiguousarray(scaled.transpose(2, 0, 1)[None], dtype=np.float32)


def deprocess(network, x):
    """A network input (1, 3, H, W) or (3, H, W) as an (H, W, 3) uint8 RGB picture, for display.

    The inverse of preprocess's last steps: ``pixel = input / scale + mean``, the card's channel
    order back to RGB, rounded and clipped to [0, 255]. A minisg Tensor is read as its array.
    """
    _check_card(network)
    array = x.numpy() if hasattr(x, "numpy") and not isinstance(x, np.ndarray) else np.asarray(x)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"x: expected a numeric array, got dtype {array.dtype}")
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3 or array.shape[0] != 3:
        raise ValueError(f"x: expected shape (1, 3, H, W) or (3, H, W), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"x: expected finite values, got NaN or inf in {int((~np.isfinite(array)).sum())} of "
                         f"{array.size}")
    pixels = array.astype(np.float64).transpose(1, 2, 0) / network.scale + np.asarray(network.mean)
    if network.channel_order == "BGR":
        pixels = pixels[:, :, ::-1]
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def top_k(logits, network, k=5, label_names=None):
    """The k most probable classes of one image: [(output index, label name, probability)], best first.

    logits: the network's (num_classes,) or (1, num_classes) output (a NumPy array or a minisg
    Tensor); probabilities are its softmax over all outputs (computed in float64). The index
    is the network's output index (mobilenet_v2's 0 is 'background'); label_names as
    labels() gives them, None reads them with labels(network) from the networks folder.
    """
    _check_card(network)
    scores = logits.numpy() if hasattr(logits, "numpy") and not isinstance(logits, np.ndarray) else logits
    scores = np.asarray(scores)
    if scores.dtype.kind not in "fiu":
        raise TypeError(f"logits: expected a numeric array of scores, got dtype {scores.dtype}")
    scores = scores.astype(np.float64)
    if scores.ndim == 2 and scores.shape[0] == 1:
        scores = scores[0]
    if scores.shape != (network.num_classes,):
        raise ValueError(f"logits: expected one image's scores, shape ({network.num_classes},) or "
                         f"(1, {network.num_classes}) for {network.name!r}, got {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError(f"logits: expected finite scores, got NaN or inf in {int((~np.isfinite(scores)).sum())} "
                         f"of {scores.size}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:   # k > classes: all of them
        raise ValueError(f"k: expected a positive int, got {k!r}")
    names = _checked_names(network, label_names)
    exp = np.exp(scores - scores.max())
    probabilities = exp / exp.sum()
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(int(i), names[i], float(probabilities[i])) for i in order]


class ClassNameError(ValueError):
    """A class name that matches no label of the network, or several; the message lists candidates."""


def class_index(network, name_or_index, label_names=None):
    """The network's output index of a class given by index or by name.

    An int is checked against the number of outputs. A name is matched without regard to case
    against each whole label ("tabby, tabby cat") and each of its comma-separated names
    ("tabby cat"): an exact match first, else a unique prefix ("egyptian" -> "Egyptian cat").
    No match, or several classes matching, is a ClassNameError listing the close matches
    (difflib) or the candidates. label_names: as labels() gives them; None reads labels(network).
    """
    _check_card(network)
    if isinstance(name_or_index, (int, np.integer)) and not isinstance(name_or_index, bool):
        index = int(name_or_index)
        if not 0 <= index < network.num_classes:
            raise IndexError(f"class index {index} is out of range for {network.name!r} "
                             f"({network.num_classes} outputs: 0 to {network.num_classes - 1})")
        return index
    if not isinstance(name_or_index, str) or not name_or_index.strip():
        raise TypeError(f"class: expected a class name (str) or an output index (int), got {name_or_index!r}")
    names = _checked_names(network, label_names)
    query = " ".join(name_or_index.lower().split())
    synonyms = [(i, " ".join(part.lower().split())) for i, label in enumerate(names)
                for part in dict.fromkeys([label, *label.split(",")]) if part.strip()]
    for matches in ({i for i, s in synonyms if s == query}, {i for i, s in synonyms if s.startswith(query)}):
        if len(matches) == 1:
            return matches.pop()
        if matches:
            listed = ", ".join(f"{names[i]!r} ({i})" for i in sorted(matches)[:10])
            more = f" and {len(matches) - 10} more" if len(matches) > 10 else ""
            raise ClassNameError(f"class {name_or_index!r} is ambiguous for {network.name!r}: it matches "
                                 f"{listed}{more}; give more of the name or the index")
    close = difflib.get_close_matches(query, [s for _, s in synonyms], n=10, cutoff=0.6)
    by_synonym = {}
    for i, s in synonyms:
        by_synonym.setdefault(s, i)
    suggestions = list(dict.fromkeys(by_synonym[s] for s in close))[:5]
    hint = (f"; close matches: {', '.join(f'{names[i]!r} ({i})' for i in suggestions)}" if suggestions
            else "; no close matches")
    raise ClassNameError(f"class {name_or_index!r} is not a label of {network.name!r}{hint}")


def _check_card(network):
    if not isinstance(network, NetworkCard):
        raise TypeError(f"network: expected a NetworkCard (networks.card(name), or model.card of a known "
                        f"network), got {type(network).__name__}")


def _checked_names(network, label_names):
    if label_names is not None and (isinstance(label_names, str) or not hasattr(label_names, "__iter__")):
        raise TypeError(f"label_names: expected a list of class names or None, got {type(label_names).__name__}")
    names = labels(network) if label_names is None else list(label_names)
    if not all(isinstance(name, str) for name in names):
        raise TypeError("label_names: expected class names (str), got "
                        f"{next(type(n).__name__ for n in names if not isinstance(n, str))} among them")
    if len(names) != network.num_classes:
        raise ValueError(f"label_names: {len(names)} names, but {network.name!r} has {network.num_classes} outputs")
    return names


def _as_rgb_uint8(image):
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise TypeError(f"image: expected uint8 pixels in [0, 255], got dtype {array.dtype}")
    if array.ndim == 2:  # grey: the same value in all three channels
        return np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"image: expected shape (H, W, 3) RGB (or RGBA, or grey (H, W)), got {array.shape}")
    return array[:, :, :3]
