"""`minisg explain PHOTO --model squeezenet1.1|PATH.onnx`: one figure of a photo's map on an
ImageNet network; class names as --target; errors on one line naming the argument (exit 2).

The real SqueezeNet and cat.png are used when the shared ImageNet folder is here (else those
tests skip); tiny ONNX models built here test the photo path everywhere.
"""
import numpy as np
import pytest
from PIL import Image

from minisg.tools import cli, explain_photo

from imagenet_files import require

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _save_model(path, nodes, weights, input_shape):
    tensors = [numpy_helper.from_array(np.asarray(a, dtype=np.float32), name) for name, a in weights.items()]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *input_shape])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=tensors)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 7
    onnx.save(proto, str(path))
    return path


def _tiny_classifier(path, size=32, classes=10, stride=1):
    """conv (3 -> 4) -> relu 'features' -> global average pool -> 1x1 conv to `classes` scores."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                              strides=[stride, stride]),
             helper.make_node("Relu", ["c"], ["features"]),
             helper.make_node("Conv", ["features", "w2"], ["scores"]),
             helper.make_node("GlobalAveragePool", ["scores"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["y"], axis=1)]
    weights = {"w": rng.normal(0, 0.02, (4, 3, 3, 3)), "b": rng.normal(0, 0.1, 4),
               "w2": rng.normal(0, 1, (classes, 4, 1, 1))}
    return _save_model(path, nodes, weights, (3, size, size))


@pytest.fixture
def no_labels(tmp_path, monkeypatch):
    """No label file anywhere minisg looks (as in CI)."""
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("MINISG_IMAGENET_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("MINISG_HOME", str(tmp_path / "home"))


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "holiday.jpg"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (150, 200, 3), dtype=np.uint8)).save(path)
    return path


def _one_line_error(capsys, argv):
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own refusal (an option's type: before any work)
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ---------------------------------------------------------------------------- everywhere: tiny models

def test_an_onnx_file_that_is_no_known_network_explains_a_photo_by_index(tmp_path, no_labels, photo, capsys):
    model = _tiny_classifier(tmp_path / "tiny.onnx")
    out = tmp_path / "map.png"
    assert cli.main(["explain", str(photo), "--model", str(model), "--method", "smoothgrad", "--n", "2",
                     "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "tiny: top 5: class " in printed and "no label file" in printed
    assert "smoothgrad (n=2, noise 15%)" in printed
    assert out.read_bytes().startswith(b"\x89PNG") and out.stat().st_size > 10_000
    with Image.open(out) as figure:
        assert figure.size[0] > 1000


@pytest.mark.parametrize("method", ["gradcam_pp", "smooth_gradcam_pp", "integrated_gradients", "occlusion"])
def test_every_kind_of_method_runs_on_a_photo(tmp_path, no_labels, photo, method, capsys):
    model = _tiny_classifier(tmp_path / "tiny.onnx")
    extra = {"smooth_gradcam_pp": ["--n", "2"], "integrated_gradients": ["--steps", "3"]}.get(method, [])
    out = tmp_path / f"{method}.png"
    assert cli.main(["explain", str(photo), "--model", str(model), "--method", method, "--target", "3",
                     "--out", str(out), *extra]) == 0
    printed = capsys.readouterr().out
    assert f"explaining class 3 with {method}" in printed
    assert out.stat().st_size > 10_000
    if method in ("gradcam_pp", "smooth_gradcam_pp"):
        assert "layer scores" in printed            # the model's default_cam_layer


def test_a_known_network_file_gets_its_card_credits_and_indices_without_labels(tmp_path, no_labels, capsys):
    # named as SqueezeNet's file, so it is given SqueezeNet's card: 224x224 BGR input, 1000 classes
    model = _tiny_classifier(tmp_path / "squeezenet1.1_fp16.onnx", size=224, classes=1000, stride=8)
    cat = tmp_path / "cat.png"                       # a course photo's name: its credit line is added
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(cat)
    path, maps, info = explain_photo.explain_photo(cat, model=str(model), method="gradcam", target="7",
                                                   out=tmp_path / "m.png", log=lambda *a: None)
    assert info["network"] == "squeezenet1.1" and info["target"] == 7 and info["names"] is None
    assert "synset_words.txt not found" in info["label_note"]
    assert info["credits"] == ["Photo: Open Images (CC BY 2.0)",
                               "Network: SqueezeNet 1.1 (DeepScale, BSD-2-Clause; ONNX file: Microsoft, MIT)"]
    assert maps.shape == (1, 224, 224) and path.stat().st_size > 10_000
    error = _one_line_error(capsys, ["explain", str(cat), "--model", str(model), "--target", "Egyptian cat"])
    assert "--target: a class name needs the label file" in error and "give the class index" in error
    error = _one_line_error(capsys, ["explain", str(cat), "--model", str(model), "--target", "1000"])
    assert "--target: class index 1000 is out of range" in error


def test_photo_errors_name_the_argument(tmp_path, no_labels, photo, capsys):
    model = str(_tiny_classifier(tmp_path / "tiny.onnx"))
    base = ["--model", model]
    cases = [
        (["explain", str(tmp_path / "none.jpg"), *base], f"image: expected a readable file, got "
         f"'{tmp_path / 'none.jpg'}', which does not exist"),
        (["explain", str(photo), "--model", str(tmp_path / "nowhere.onnx")], "--model " + str(tmp_path / "nowhere.onnx")
         + ": no such file"),
        (["explain", str(photo), *base, "--method", "vanilla", "--layer", "features"], "--layer applies to CAM methods"),
        (["explain", str(photo), *base, "--method", "gradcam", "--layer", "featurs"],
         "--layer: unknown layer 'featurs'"),
        (["explain", str(photo), *base, "--method", "vanilla", "--n", "3"], "--n applies to smoothgrad"),
        (["explain", str(photo), *base, "--n", "0"], "--n: expected an integer from 1 to 10,000"),
        (["explain", str(photo), *base, "--invert"], "--invert/--no-invert apply to digit images"),
        (["explain", str(photo), "--model", "mobilenet_v2"], "--model mobilenet_v2: network 'mobilenet_v2': the file "
         "mobilenet_v2_1.0_224.onnx is not at"),
        (["explain", str(photo), *base, "--out", str(tmp_path / "m.gif")], "cannot write a .gif file"),
    ]
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture")
    cases.append((["explain", str(notes), *base], "not a readable image file"))
    for argv, message in cases:
        error = _one_line_error(capsys, argv)
        assert message in error, (argv, error)
    error = _one_line_error(capsys, ["explain", str(photo), *base, "--method", "gradcam", "--layer", "featurs"])
    assert "close matches: features" in error
    assert list(tmp_path.glob("*.gif")) == [] and not (tmp_path / "holiday_smoothgrad.png").exists()


def test_digit_models_still_take_an_index_only(tmp_path, capsys):
    image = tmp_path / "digit.png"
    Image.new("L", (28, 28), 0).save(image)
    error = _one_line_error(capsys, ["explain", str(image), "--target", "seven"])
    assert "--target: expected a digit class 0-9 for --model mnist_cnn, got 'seven'" in error


# ---------------------------------------------------------------------------- the real SqueezeNet

@pytest.fixture
def squeezenet_and_cat():
    return str(require("squeezenet1.1_fp16.onnx")), str(require("photos", "cat.png"))


def test_smoothgrad_of_the_cat_on_squeezenet(tmp_path, squeezenet_and_cat, capsys):
    model, cat = squeezenet_and_cat
    out = tmp_path / "cat_smoothgrad.png"
    assert cli.main(["explain", cat, "--model", model, "--method", "smoothgrad", "--n", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "squeezenet1.1: top 5: 'Egyptian cat' (285)" in printed
    assert out.stat().st_size > 10_000
    assert cli.main(["explain", cat, "--model", model, "--method", "vanilla", "--target", "egyptian cat",
                     "--out", str(tmp_path / "v.png")]) == 0
    assert "explaining 'Egyptian cat' (285) with vanilla" in capsys.readouterr().out


def test_class_names_and_layers_on_squeezenet(tmp_path, squeezenet_and_cat, capsys):
    model, cat = squeezenet_and_cat
    error = _one_line_error(capsys, ["explain", cat, "--model", model, "--target", "egyptain cat"])
    assert "--target: class 'egyptain cat' is not a label" in error and "'Egyptian cat' (285)" in error
    out = tmp_path / "cat_gradcam_pp.png"
    assert cli.main(["explain", cat, "--model", model, "--method", "gradcam_pp", "--layer", "fire9/concat_1",
                     "--out", str(out)]) == 0
    assert "layer fire9/concat_1" in capsys.readouterr().out and out.stat().st_size > 10_000
    error = _one_line_error(capsys, ["explain", cat, "--model", model, "--method", "gradcam_pp", "--layer",
                                     "fire9/concat"])
    assert "--layer: unknown layer 'fire9/concat'" in error and "fire9/concat_1" in error
