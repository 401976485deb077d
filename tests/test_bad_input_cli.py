"""Bad input to the `minisg` command: every option is checked before any work, and every failure
is one line on stderr, `minisg CMD: error: OPTION: expected ..., got VALUE`, with exit code 2 --
never a traceback, never a silent result. Commands run in this process through cli.main (the
grading worker and two cases through a subprocess, to see the real stderr)."""
import json
import subprocess
import sys

import numpy as np
import pytest

from imagenet_files import imagenet_dir, require
from minisg import models
from minisg.tools import cli
from test_cli import _digit_png


def refused(capsys, argv):
    """Run `minisg *argv`; it must exit with code 2 and one line on stderr, which is returned."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own errors exit inside parse_args
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith(f"minisg {argv[0]}: error: "), err
    assert "Traceback" not in err
    return err


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A working folder with a digit image, a text file and a subfolder; the current folder."""
    _digit_png(tmp_path / "digit.png")
    (tmp_path / "notes.txt").write_text("not an image, not a checkpoint\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


# (argv, what the one line must say: the option and the bad value, with what was expected)
CASES = [
    (["demo", "--count", "0"], "--count: expected an integer from 1 to 10, got 0"),
    (["demo", "--count", "11"], "--count: expected an integer from 1 to 10, got 11"),
    (["demo", "--count", "1.5"], "--count: expected an integer from 1 to 10, got '1.5'"),
    (["demo", "--out", "sub"], "--out sub: is a folder"),
    (["demo", "--out", "digit.png/x.png"], "--out digit.png/x.png: digit.png is a file, not a folder"),
    (["demo", "--model", "squeezenet1.1"], "--model: expected an MNIST model"),
    (["explain", "missing.png"], "image: expected a readable file, got 'missing.png', which does not exist"),
    (["explain", "sub"], "image: expected a readable file, got 'sub', which is a folder"),
    (["explain", "notes.txt"], "image notes.txt: not a readable image file"),
    (["explain", "digit.png", "--n", "0"], "--n: expected an integer from 1 to 10,000"),
    (["explain", "digit.png", "--n", "1e9"], "--n: expected an integer from 1 to 10,000 (more would run for hours), "
                                             "got '1e9'"),
    (["explain", "digit.png", "--n", "100000"], "got 100000"),
    (["explain", "digit.png", "--steps", "0", "--method", "integrated_gradients"],
     "--steps: expected an integer from 1 to 10,000"),
    (["explain", "digit.png", "--noise-level", "nan"], "--noise-level: expected a finite number >= 0, got nan"),
    (["explain", "digit.png", "--noise-level", "-0.1"], "--noise-level: expected a finite number >= 0, got -0.1"),
    (["explain", "digit.png", "--noise-level", "inf"], "--noise-level: expected a finite number >= 0, got inf"),
    (["explain", "digit.png", "--noise-level", "1e300"], "--noise-level: "),
    (["explain", "digit.png", "--method", "nope"], "--method: expected one of "),
    (["explain", "digit.png", "--target", "12", "--method", "vanilla"], "--target: expected class indices in [0, 10), "
                                                                         "got 12"),
    (["explain", "digit.png", "--target", "cat"],
     "--target: expected a digit class 0-9 for --model mnist_cnn, got 'cat'"),
    (["explain", "digit.png", "--layer", "nope", "--method", "gradcam"], "--layer: unknown layer 'nope'"),
    (["explain", "digit.png", "--layer", "relu2"], "--layer applies to CAM methods"),
    (["explain", "digit.png", "--out", "sub"], "--out sub: is a folder"),
    (["explain", "digit.png", "--model", "squeezenet1.1", "--invert"], "--invert/--no-invert apply to digit images"),
    (["bench", "--repeats", "0"], "--repeats: expected an integer >= 1, got 0"),
    (["bench", "--warmup", "-1"], "--warmup: expected an integer >= 0, got -1"),
    (["bench", "--rounds", "0"], "--rounds: expected an integer >= 1, got 0"),
    (["bench", "--image", "missing.png", "--network", "squeezenet1.1"], "--image: expected a readable file, got "
                                                                         "'missing.png'"),
    (["bench", "--network-file", "sub", "--network", "squeezenet1.1"], "--network-file: expected a readable file, "
                                                                        "got 'sub', which is a folder"),
    (["bench", "--image", "digit.png"], "--network-file and --image need --network"),
    (["train", "--lr", "inf"], "--lr: expected a finite number > 0, got inf"),
    (["train", "--lr", "nan"], "--lr: expected a finite number > 0, got nan"),
    (["train", "--lr", "0"], "--lr: expected a finite number > 0, got 0"),
    (["train", "--train-subset", "0"], "--train-subset: expected an integer >= 1, got 0"),
    (["train", "--train-subset", "-5"], "--train-subset: expected an integer >= 1, got -5"),
    (["train", "--eval-subset", "0"], "--eval-subset: expected an integer >= 1, got 0"),
    (["train", "--epochs", "0"], "--epochs: expected an integer >= 1, got 0"),
    (["train", "--steps", "0"], "--steps: expected an integer >= 1, got 0"),
    (["train", "--batch-size", "0"], "--batch-size: expected an integer >= 1, got 0"),
    (["train", "--noise-level", "-1"], "--noise-level: expected a finite number >= 0, got -1"),
    (["train", "--grad-penalty", "L2", "--penalty-weight", "inf"], "--penalty-weight: expected a finite number > 0, "
                                                                   "got inf"),
    (["train", "--grad-penalty", "L2"], "--penalty-weight: expected a finite number > 0 with --grad-penalty L2, "
                                        "got none"),
    (["train", "--penalty-weight", "1"], "--penalty-weight needs --grad-penalty L2"),
    (["train", "--smoothness-penalty", "nan"], "--smoothness-penalty: expected a finite number >= 0, got nan"),
    (["train", "--seed", "-1"], "--seed: expected an integer >= 0, got -1"),
    (["train", "--seed", "1.5"], "--seed: expected an integer >= 0, got '1.5'"),
    (["train", "--task", "nope"], "--task: expected one of 'mnist', 'scenes', got 'nope'"),
    (["train", "--out", "sub"], "--out sub: is a folder"),
    (["train", "--out", "net.txt"], "--out net.txt: cannot write a .txt file"),
    (["evaluate-model", "missing.npz"], "checkpoint missing.npz does not exist"),
    (["evaluate-model", "sub"], "checkpoint sub is a folder"),
    (["evaluate-model", "squeezenet1.1"], "model: expected an MNIST model"),
    (["evaluate-model", "mnist_cnn", "--split", "nope"], "--split: expected one of "),
    (["evaluate", "--out", "digit.png"], "--out digit.png: is a file; expected a folder"),
    (["exercises", "05"], "number: expected a lesson with exercises (01, "),
    (["exercises", "abc"], "got 'abc'"),
    (["exercises", "06", "--dest", "digit.png"], "--dest: expected a folder, got 'digit.png', which is a file"),
    (["check", "05"], "number: expected a lesson with exercises (01, "),
    (["check", "abc"], "number: expected a lesson (e.g. 06) or one exercise (e.g. 06.2), got 'abc'"),
    (["check", "06.9"], "number: expected one of lesson 06's exercises (06.1, 06.2), got '06.9'"),
    (["check", "06", "--file", "missing.py"],
     "--file: expected a readable file, got 'missing.py', which does not exist"),
    (["check", "06", "--file", "sub"], "--file: expected a readable file, got 'sub', which is a folder"),
    (["check", "06", "--time-limit", "0"], "--time-limit: expected a finite number > 0 and <= 86,400, got 0"),
    (["check", "06", "--time-limit", "nan"], "--time-limit: expected a finite number > 0 and <= 86,400, got nan"),
    (["check", "06", "--time-limit", "-1"], "--time-limit: expected a finite number > 0 and <= 86,400, got -1"),
    (["check", "06", "--time-limit", "1e300"], "--time-limit: expected a finite number > 0 and <= 86,400, got 1e300"),
    (["exercises", "06", "--dest", "digit.png/x"], "--dest: expected a folder, got 'digit.png/x', under the file "
                                                   "'digit.png'"),
    (["explain", "digit.png", "--out", ""], "--out: expected a path, got ''"),
    (["explain", "digit.png", "--model", ""], "--model: expected a path, got ''"),
    (["evaluate", "--out", " "], "--out: expected a path, got ' '"),
    (["demo", "--out", ""], "--out: expected a path, got ''"),
    (["train", "--out", ""], "--out: expected a path, got ''"),
    (["exercises", "06", "--dest", ""], "--dest: expected a path, got ''"),
    (["evaluate-model", ""], "model: expected a path, got ''"),
    (["explain", "digit.png", "--model", "missing.npz"], "--model missing.npz: checkpoint missing.npz does not exist"),
    (["explain", "digit.png", "--model", "notes.txt"], "--model notes.txt: checkpoint notes.txt is not a minisg "
                                                       "checkpoint"),
    (["demo", "--model", "sub"], "--model sub: checkpoint sub is a folder, not a file"),
    (["evaluate-model", "notes.txt"], "model notes.txt: checkpoint notes.txt is not a minisg checkpoint"),
]


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(argv) for argv, _ in CASES])
def test_a_bad_option_is_one_line_naming_it_and_its_value(folder, capsys, argv, message):
    before = sorted(path.name for path in folder.iterdir())
    assert message in refused(capsys, argv)
    assert sorted(path.name for path in folder.iterdir()) == before        # nothing was written


def test_every_option_has_a_checked_type_or_is_a_name(monkeypatch):
    """A new option without a type= gets noticed: every option either parses its value (type=,
    choices=, a flag) or is a name/path that the library checks itself (listed here)."""
    free_text = {"demo": {"--out", "--model"}, "explain": {"--target", "--layer", "--out", "--model"},
                 "train": {"--out"}, "evaluate-model": {"model"}, "evaluate": {"--out"},
                 "exercises": {"number", "--dest"}, "check": {"number"},
                 "book": {"--out", "--lessons", "--lessons-dir"}}
    parser = cli.build_parser()
    (commands,) = [action for action in parser._actions if action.dest == "command"]
    unchecked = []
    for name, command in commands.choices.items():
        for action in command._actions:
            label = action.option_strings[-1] if action.option_strings else action.dest
            if action.dest == "help" or action.nargs == 0 or action.choices or action.type is not None:
                continue
            if label not in free_text.get(name, set()):
                unchecked.append(f"{name} {label}")
    assert unchecked == []


# ------------------------------------------------------------------------------ checks before any work

def test_eval_subset_0_fails_before_any_training(folder, capsys, monkeypatch):
    from minisg import data
    from minisg.models import training

    def no_work(*args, **kwargs):
        raise AssertionError("training started")
    monkeypatch.setattr(training, "train", no_work)
    monkeypatch.setattr(data, "load_mnist", no_work)
    for value in ("0", "-5"):
        err = refused(capsys, ["train", "--eval-subset", value, "--train-subset", "100", "--out", "net.npz"])
        assert f"--eval-subset: expected an integer >= 1, got {value}" in err
    assert not (folder / "net.npz").exists()


def test_train_lr_inf_writes_no_checkpoint(folder, capsys):
    err = refused(capsys, ["train", "--lr", "inf", "--steps", "1", "--train-subset", "50", "--out", "net.npz"])
    assert "--lr: expected a finite number > 0, got inf" in err
    assert list(folder.glob("net.npz*")) == []


# ------------------------------------------------------------------------------ bad checkpoints

def write_checkpoint(path, change_meta=None, change_arrays=None):
    """The shipped mnist_cnn's arrays and meta, changed, written raw (np.savez: no checks)."""
    arrays, meta = models.read_checkpoint("mnist_cnn")
    arrays = {name: value.copy() for name, value in arrays.items()}
    meta = change_meta(dict(meta)) if change_meta else meta
    if change_arrays:
        change_arrays(arrays)
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
    return path


def nan_weight(arrays):
    arrays["conv1.weight"][0, 0, 0, 0] = np.nan


def test_explain_with_a_nan_weight_checkpoint_is_refused_and_writes_nothing(folder, capsys):
    write_checkpoint(folder / "nan.npz", change_arrays=nan_weight)
    err = refused(capsys, ["explain", "digit.png", "--model", "nan.npz", "--method", "vanilla"])
    assert "nan.npz" in err and "conv1.weight" in err and ("NaN" in err or "non-finite" in err)
    assert not (folder / "digit_vanilla.png").exists()


def test_evaluate_model_with_a_string_accuracy_fails_before_evaluating(folder, capsys, monkeypatch):
    from minisg import data
    from minisg.models import training

    def no_work(*args, **kwargs):
        raise AssertionError("the model was evaluated")
    monkeypatch.setattr(training, "accuracy", no_work)
    monkeypatch.setattr(data, "load_mnist", no_work)
    write_checkpoint(folder / "acc.npz", change_meta=lambda meta: {**meta, "test_accuracy": "high"})
    err = refused(capsys, ["evaluate-model", "acc.npz"])
    assert "acc.npz" in err and "test_accuracy" in err and "'high'" in err


@pytest.mark.parametrize("command", [["evaluate-model"], ["demo", "--model"], ["explain", "digit.png", "--model"]])
def test_files_that_are_no_checkpoint_are_named(folder, capsys, command):
    np.save(folder / "one_array.npy", np.zeros(3))
    (folder / "one_array.npy").rename(folder / "renamed_npy.npz")
    (folder / "notes.txt").rename(folder / "renamed_text.npz")
    write_checkpoint(folder / "list_meta.npz", change_meta=lambda meta: [1, 2])
    write_checkpoint(folder / "list_arch.npz", change_meta=lambda meta: {**meta, "architecture": ["mnist_cnn"]})
    write_checkpoint(folder / "bad_args.npz", change_meta=lambda meta: {**meta, "architecture_args": {"width": 3}})
    for name, says in (("renamed_npy.npz", ".npy"), ("renamed_text.npz", "zip"), ("list_meta.npz", "meta"),
                       ("list_arch.npz", "'architecture'"), ("bad_args.npz", "width")):
        err = refused(capsys, [*command, name])
        assert name in err and says in err and "allow_pickle" not in err, err


# ------------------------------------------------------------------------------ main's mapping

def test_a_library_parameter_is_named_as_its_option(capsys, monkeypatch):
    from minisg.tools import demo

    def fails(*args, **kwargs):
        raise ValueError("noise_level: expected noise that fits float32, got noise_level=1e+30")
    monkeypatch.setattr(demo, "explain", fails)
    err = refused(capsys, ["explain", __file__])            # any readable file passes the option's type
    assert err.startswith("minisg explain: error: --noise-level: expected noise that fits float32")


@pytest.mark.parametrize("error, code, says", [
    (KeyError("name: expected one of a, b, got 'c'"), 2, "error: name: expected one of a, b, got 'c'\n"),
    (FileNotFoundError(2, "No such file or directory", "/nowhere/x"), 2,
     "error: /nowhere/x: No such file or directory"),
    (MemoryError("Unable to allocate 584. GiB"), 2, "error: out of memory (Unable to allocate 584. GiB)"),
    (AttributeError("'list' object has no attribute 'get'"), 1,
     "internal error: AttributeError: 'list' object has no attribute 'get' (MINISG_DEBUG=1 shows the traceback"),
])
def test_every_exception_becomes_one_line(capsys, monkeypatch, error, code, says):
    from minisg.tools import demo

    def fails(*args, **kwargs):
        raise error
    monkeypatch.delenv("MINISG_DEBUG", raising=False)
    monkeypatch.setattr(demo, "run_demo", fails)
    assert cli.main(["demo"]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("minisg demo: ") and says in err, err


def test_minisg_debug_shows_the_traceback(monkeypatch):
    from minisg.tools import demo

    def fails(*args, **kwargs):
        raise ValueError("count: planted")
    monkeypatch.setenv("MINISG_DEBUG", "1")
    monkeypatch.setattr(demo, "run_demo", fails)
    with pytest.raises(ValueError, match="count: planted"):
        cli.main(["demo"])


# ------------------------------------------------------------------------------ the real stderr

@pytest.mark.parametrize("argv, says", [
    (["train", "--lr", "inf", "--out", "net.npz"], "minisg train: error: --lr: expected a finite number > 0, got inf"),
    (["evaluate-model", "renamed_text.npz"], "minisg evaluate-model: error: model renamed_text.npz: checkpoint renamed_text.npz"),
])
def test_no_traceback_reaches_the_terminal(folder, argv, says):
    (folder / "notes.txt").rename(folder / "renamed_text.npz")
    result = subprocess.run([sys.executable, "-m", "minisg", *argv], cwd=folder, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(says) and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------------------ ImageNet networks

def test_photo_targets_and_layers_are_checked_before_the_map(folder, capsys, monkeypatch):
    photo = require("photos", "hot_dog.jpg")
    require("squeezenet1.1_fp16.onnx")
    monkeypatch.setenv("MINISG_IMAGENET_DIR", str(imagenet_dir()))
    base = ["explain", str(photo), "--model", "squeezenet1.1", "--out", str(folder / "map.png")]
    assert "--target: class index 5000 is out of range" in refused(capsys, [*base, "--target", "5000"])
    assert "--target: class 'zzzz' is not a label" in refused(capsys, [*base, "--target", "zzzz"])
    assert "--layer: unknown layer 'nope'" in refused(capsys, [*base, "--method", "gradcam", "--layer", "nope"])
    assert not (folder / "map.png").exists()


# ------------------------------------------------------------------------------ behind `minisg evaluate`

def _linear_model():
    from minisg import nn
    return nn.Sequential(("flatten", nn.Flatten()),
                         ("fc", nn.Linear(16, 3, rng=np.random.default_rng(0), dtype=np.float32)))


def _evaluation_calls():
    from minisg.evaluation import metrics, report, report_setup

    maps, masks = np.ones((2, 1, 4, 4)), np.ones((2, 4, 4), bool)
    x, model = np.ones((2, 1, 4, 4), np.float32), _linear_model()
    return [
        (lambda: metrics.pointing_game(maps, masks, tolerance="1"), "tolerance"),
        (lambda: metrics.pointing_game([[1.0, 2.0], [3.0]], masks), "maps"),
        (lambda: metrics.relevance_mass(np.zeros((0, 1, 4, 4)), masks[:0]), "maps"),
        (lambda: metrics.dilate(None, 1), "masks"),
        (lambda: metrics.dilate(masks, True), "radius"),
        (lambda: metrics.deletion_curve(model, x, maps, 0, baseline=True), "baseline"),
        (lambda: metrics.deletion_curve(model, x, maps, 0, blur_sigma=0.0), "blur_sigma"),
        (lambda: metrics.insertion_curve(model, x, maps, 0, steps=10 ** 7), "steps"),
        (lambda: metrics.model_scores(model, [[1.0], [2.0, 3.0]], 0), "images"),
        (lambda: metrics.gaussian_blur(x, float("nan")), "sigma"),
        (lambda: metrics.high_frequency_energy(maps, cutoff="0.2"), "cutoff"),
        (lambda: metrics.mean_and_stderr(1.5), "values"),
        (lambda: metrics.mean_and_stderr([1.0, 2.0], skip_nan="yes"), "skip_nan"),
        (lambda: metrics.average_ranks([[1.0, 2.0]]), "values"),
        (lambda: metrics.area_under_curve(np.linspace(0, 1, 3), 0.5), "scores"),
        (lambda: report_setup.Settings(digits=0, randomised_digits=1, scenes=1), "Settings.digits"),
        (lambda: report_setup.Settings(digits=3, randomised_digits=5, scenes=1), "Settings.randomised_digits"),
        (lambda: report_setup.Settings(digits=3, randomised_digits=1, scenes=1, smoothgrad_noise=float("inf")),
         "Settings.smoothgrad_noise"),
        (lambda: report.run(quick="yes"), "quick"),
        (lambda: report.run(quick=True, settings={"digits": 3}), "settings"),
        (lambda: report.run(quick=True, out_dir=None), "--out"),
    ]


def test_the_evaluation_functions_name_a_bad_argument():
    for call, name in _evaluation_calls():
        with pytest.raises((ValueError, TypeError)) as caught:
            call()
        assert str(caught.value).startswith(f"{name}: expected "), caught.value


def test_huge_but_meaningful_sizes_are_handled_not_refused():
    from minisg.evaluation import metrics

    masks = np.zeros((1, 5, 6), bool)
    masks[0, 2, 3] = True
    assert metrics.dilate(masks, 2 ** 70).all()            # every pixel is within reach
    x = np.random.default_rng(0).random((1, 1, 8, 8))
    blurred = metrics.gaussian_blur(x, 1e9)                 # nearly flat, and no 1e9-wide kernel
    assert blurred.shape == x.shape and np.isfinite(blurred).all() and blurred.std() < x.std() / 2
