"""Where the tests find the ImageNet networks, labels and photos (never copied into the repository).

$MINISG_IMAGENET_DIR if set, else ../shared/imagenet beside the checkout. A test that needs a
file asks ``require(...)``, which skips it with a reason saying where the file was looked for.
"""
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent


def imagenet_dir():
    explicit = os.environ.get("MINISG_IMAGENET_DIR", "").strip()
    return Path(explicit).expanduser() if explicit else REPO.parent / "shared" / "imagenet"


def require(*parts):
    """The path of a file under the ImageNet folder, or skip the test saying which is missing."""
    path = imagenet_dir().joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"needs {path} (set MINISG_IMAGENET_DIR to the folder holding the ImageNet networks, "
                    f"labels and photos/)")
    return path


def photo(name):
    """A photo of photos/ as (H, W, 3) uint8 RGB."""
    from PIL import Image
    with Image.open(require("photos", name)) as image:
        return np.asarray(image.convert("RGB"))
