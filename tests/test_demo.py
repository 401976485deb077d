"""minisg demo and minisg explain: the figure is written, user images are read sensibly."""
import numpy as np
from PIL import Image

from minisg import data, viz
from minisg.tools import cli
from minisg.tools import demo


def test_demo_writes_one_figure_with_every_method(tmp_path, capsys):
    out = tmp_path / "demo.png"
    assert cli.main(["demo", "--out", str(out), "--count", "1"]) == 0
    printed = capsys.readouterr().out
    assert out.stat().st_size > 10_000
    for name in ("vanilla", "smoothgrad", "integrated_gradients", "gradcam_pp", "smooth_gradcam_pp", "occlusion"):
        assert name in printed


def test_demo_panels_name_each_method_with_its_settings_and_colour_bar():
    assert demo.panel_title("smoothgrad", 0.613) == "SmoothGrad\nn = 50, 15% noise\n0.61 s"
    assert demo.panel_title("smooth_gradcam_pp", 0.1) == "Smooth Grad-CAM++\nn = 5, 30% noise\n0.10 s"
    assert demo.panel_title("integrated_gradients", 1) == "Integrated Gradients\n50 steps\n1.00 s"
    assert demo.panel_title("vanilla", 0.04) == "Gradient\n0.04 s"
    assert demo.colour_scale_of("gradcam") == viz.CAM_SCALE and demo.colour_scale_of("vanilla") == viz.P99_LABEL


def _write_big_black_on_white_digit(path):
    """An MNIST test digit as a person might draw it: dark ink on white, 140x100, RGB."""
    digit = data.load_mnist("test")[0][0, 0]                     # a 7
    ink = Image.fromarray(((1 - digit) * 255).astype(np.uint8)).resize((100, 140))
    canvas = Image.new("RGB", (140, 180), "white")
    canvas.paste(ink.convert("RGB"), (20, 20))
    canvas.save(path)


def test_a_users_image_is_inverted_centred_and_classified(tmp_path, capsys):
    path = tmp_path / "my_seven.png"
    _write_big_black_on_white_digit(path)
    x = demo.read_digit_image(path)
    assert x.shape == (1, 1, 28, 28) and x.dtype == np.float32
    assert x[0, 0, :, :4].max() == 0 and x[0, 0, :, -4:].max() == 0   # centred with a margin
    notes = capsys.readouterr().out
    assert "inverted" in notes and "resized from 140x180" in notes
    out = tmp_path / "map.png"
    assert cli.main(["explain", str(path), "--method", "gradcam_pp", "--out", str(out)]) == 0
    assert "predicted class 7" in capsys.readouterr().out
    assert out.exists()


def exit_status(argv):
    """minisg's exit status for argv: what cli.main returns, or the code of the SystemExit that
    argparse raises when it refuses an argument itself."""
    try:
        return cli.main(argv)
    except SystemExit as exit:
        return exit.code


def test_explain_errors_are_clear(tmp_path, capsys):
    assert exit_status(["explain", str(tmp_path / "none.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    assert exit_status(["explain", str(not_an_image)]) == 2
    assert "not a readable image" in capsys.readouterr().err
    blank = tmp_path / "blank.png"
    Image.new("L", (30, 30), 0).save(blank)
    assert exit_status(["explain", str(blank), "--no-invert"]) == 2
    assert "found no ink" in capsys.readouterr().err
    _write_big_black_on_white_digit(tmp_path / "d.png")
    assert exit_status(["explain", str(tmp_path / "d.png"), "--method", "vanilla", "--layer", "relu1"]) == 2
    assert "--layer applies to CAM methods" in capsys.readouterr().err
    assert exit_status(["explain", str(tmp_path / "d.png"), "--method", "gradcam", "--layer", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
