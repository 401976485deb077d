"""The ImageNet networks and photos of the photo lessons, found where the user keeps them.

minisg ships no photos and no ImageNet weights. The lessons read them from a folder laid out
as the course's ``shared/imagenet`` (the ONNX files, the label files, ``photos/``):
``$MINISG_IMAGENET_DIR`` if set, else ``../shared/imagenet`` beside the repository. SqueezeNet
1.1 is also found in minisg's download cache (``models.load("squeezenet1.1")``).

    folder = imagenet.folder()                     # or a clear error saying where it looked
    model = imagenet.network("squeezenet1.1")      # a GraphModel with its card, in eval mode
    image = imagenet.photo("cat.png")              # (H, W, 3) uint8 RGB
    x = imagenet.network_input(model, image)       # (1, 3, 224, 224), as the network expects
    names = imagenet.label_names(model)            # one name per output
    imagenet.credit("cat.png")                     # "Photo: Open Images (CC BY 2.0)"

Every figure with a photo carries its credit line, and every figure with a network its
network's (``network_credit``).
"""
import os
from pathlib import Path

import numpy as np

from .. import models
from ..models import networks

ENV = "MINISG_IMAGENET_DIR"

_OPEN_IMAGES = "Photo: Open Images (CC BY 2.0)"
CREDITS = {
    **{name: _OPEN_IMAGES for name in ("cat.png", "bird.png", "sunflower.png", "dragonfly.png", "hot_dog.jpg",
                                       "parrot.jpg", "owl.jpg", "pets.jpg", "bird_segmentation.png")},
    "grace_hopper.png": "Photo: U.S. Navy, public domain",
    "dog_segmentation.png": "Photo: Oxford-IIIT Pet Dataset (CC BY-SA 4.0)",
}
NETWORK_CREDITS = {
    "squeezenet1.1": "Network: SqueezeNet 1.1 (DeepScale, BSD-2-Clause; ONNX file: Microsoft, MIT)",
    "mobilenet_v2": "Network: MobileNetV2 1.0/224 (Google, Apache-2.0)",
}


class ImageNetFilesMissing(FileNotFoundError):
    pass


def folder():
    """The folder with the networks, labels and photos/, or ImageNetFilesMissing saying where
    it looked and how to point minisg at it."""
    explicit = os.environ.get(ENV, "").strip()
    candidates = [Path(explicit).expanduser()] if explicit else []
    candidates.append(_beside_the_repository())
    for candidate in candidates:
        if (candidate / "photos").is_dir():
            return candidate
    raise ImageNetFilesMissing(
        f"the photo lessons need the ImageNet networks, labels and photos/; looked in "
        f"{', '.join(str(c) for c in candidates)}. Set {ENV} to the folder that holds them.")


def _beside_the_repository():
    return Path(__file__).resolve().parents[2].parent / "shared" / "imagenet"


def available():
    """True when folder() would find the files (lessons and tests skip otherwise)."""
    try:
        folder()
    except ImageNetFilesMissing:
        return False
    return True


def stop_unless_available(lesson_number):
    """In a photo lesson: without the files, one line saying where it looked, then exit 0 (no
    figures), so that running every lesson still works on a machine without them."""
    try:
        folder()
    except ImageNetFilesMissing as missing:
        print(f"lesson {lesson_number} skipped, no figures: {missing}")
        raise SystemExit(0) from None


def network(name, dtype=np.float32):
    """A known network (networks.CARDS) from the folder's ONNX file, else minisg's cache."""
    card = networks.card(name)
    path = folder() / card.file_name
    if not path.is_file():
        return models.load(name, dtype=dtype)
    return models.load(str(path), dtype=dtype)


def photo(name):
    """photos/NAME as (H, W, 3) uint8 RGB."""
    return networks.load_photo(folder() / "photos" / name)


def mask(name):
    """photos/NAME (a segmentation mask) as an (H, W) integer array."""
    from PIL import Image
    with Image.open(folder() / "photos" / name) as image:
        return np.asarray(image)


def network_input(model, image):
    """The photo as the network's input: square centre crop, resized, its channel order and
    scaling (model.card); (1, 3, S, S) float32."""
    return networks.preprocess(model.card, image)


def label_names(model):
    """One class name per output of the network, from the folder's label file."""
    return networks.labels(model.card, folder())


def credit(photo_name):
    """The credit line to show with a photo (the licences ask for it)."""
    return CREDITS[photo_name]


def network_credit(model):
    return NETWORK_CREDITS[model.card.name]
