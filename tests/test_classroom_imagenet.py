"""Where the photo lessons find the networks and photos (minisg/classroom/imagenet.py)."""
import pytest

from minisg.classroom import imagenet
from imagenet_files import require


def test_missing_folder_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(imagenet.ENV, str(tmp_path / "nowhere"))
    monkeypatch.setattr(imagenet, "_beside_the_repository", lambda: tmp_path / "also_nowhere")
    assert not imagenet.available()
    with pytest.raises(imagenet.ImageNetFilesMissing, match=r"looked in .*nowhere.*also_nowhere.*MINISG_IMAGENET_DIR"):
        imagenet.folder()


def test_every_course_photo_has_a_credit_line():
    folder = require("photos", "cat.png").parent
    photos = sorted(p.name for p in folder.iterdir() if not p.name.endswith("_mask.png"))
    assert photos and all(imagenet.credit(name).startswith("Photo: ") for name in photos)


def test_a_network_and_a_photo_as_the_lessons_load_them():
    require("squeezenet1.1_fp16.onnx")
    from minisg import parallel
    model = imagenet.network("squeezenet1.1")
    x = imagenet.network_input(model, imagenet.photo("cat.png"))
    assert x.shape == (1, 3, 224, 224)
    assert imagenet.label_names(model)[int(parallel.logits(model, x).argmax())] == "Egyptian cat"
    assert "SqueezeNet" in imagenet.network_credit(model)
