"""Bad inputs to models, checkpoints and training: each gets one error naming the argument, the
field or the tensor, and the bad value; a diverging training writes nothing.

Models also record what they read (``input_shape``, ``input_range``), which the methods check x
against. Broken checkpoints are built in tmp_path from a fresh mnist_cnn (or the shipped one).
"""
import copy
import hashlib
import json

import numpy as np
import pytest

from minisg import data, models
from minisg.models import networks
from minisg.models import training as train
from minisg.models.cell_model import cell_model
from minisg.models.scene_cnn import scene_cnn
from minisg.tools import cli


# ---------------------------------------------------------------------------- input_shape, input_range

def test_the_shipped_architectures_record_their_input():
    assert (models.mnist_cnn().input_shape, models.mnist_cnn().input_range) == ((1, 28, 28), (0.0, 1.0))
    assert (scene_cnn().input_shape, scene_cnn().input_range) == ((1, None, None), (0.0, 1.0))
    cells = cell_model(models.mnist_cnn())
    assert (cells.input_shape, cells.input_range) == ((1, None, None), (0.0, 1.0))


def test_the_input_survives_casts_moves_copies_and_splits():
    model = models.mnist_cnn()
    model.astype(np.float64).to("cpu")
    model.load_state_dict(model.state_dict())
    for kept in (model, copy.deepcopy(model), model.split("relu2")[0]):
        assert (kept.input_shape, kept.input_range) == ((1, 28, 28), (0.0, 1.0))
    assert model.split("relu2")[1].input_shape is None   # the head reads activations, not images


def test_checkpoints_write_the_input_to_meta_and_old_ones_get_their_architectures(tmp_path):
    path = models.save(models.mnist_cnn(), tmp_path / "net.npz", {"note": "no architecture given"})
    meta = models.read_checkpoint(path)[1]
    assert meta["architecture"] == "mnist_cnn"
    assert meta["input_shape"] == [1, 28, 28] and meta["input_range"] == [0.0, 1.0]
    loaded = models.load(path, dtype=np.float64)
    assert (loaded.input_shape, loaded.input_range) == ((1, 28, 28), (0.0, 1.0))
    # a checkpoint written before minisg recorded the input (the shipped ones): from the architecture
    old = _rewrite(path, tmp_path / "old.npz", meta=lambda m: [m.pop("input_shape"), m.pop("input_range")])
    assert "input_shape" not in models.read_checkpoint(old)[1]
    assert models.load(old).input_shape == (1, 28, 28) and models.load(old).input_range == (0.0, 1.0)
    # a model trained on another range says so in its meta
    other = _rewrite(path, tmp_path / "other.npz", meta=lambda m: m.update(input_range=[-1, 1]))
    assert models.load(other).input_range == (-1.0, 1.0)


def test_network_cards_give_the_range_of_preprocessed_photos():
    squeezenet, mobilenet = networks.CARDS["squeezenet1.1"], networks.CARDS["mobilenet_v2"]
    assert squeezenet.input_shape == (3, 224, 224) and squeezenet.input_range == (-123.0, 151.0)
    assert mobilenet.input_range == (-1.0, 1.0)
    white = networks.preprocess(squeezenet, np.full((5, 5, 3), 255, np.uint8))
    black = networks.preprocess(squeezenet, np.zeros((5, 5, 3), np.uint8))
    assert black.min() == squeezenet.input_range[0] and white.max() == squeezenet.input_range[1]


def _onnx_model(path, dims):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    weight = numpy_helper.from_array(np.full((2, 3, 1, 1), 0.5, np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("GlobalAveragePool", ["c"], ["p"]),
         helper.make_node("Flatten", ["p"], ["y"], axis=1)], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[weight])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 7
    onnx.save(proto, str(path))
    return path


@pytest.mark.parametrize("dims, shape", [(["N", 3, 8, 8], (3, 8, 8)), (["N", 3, "H", "W"], (3, None, None)),
                                         (None, None)])
def test_onnx_models_take_the_declared_input_without_the_batch_axis(tmp_path, dims, shape):
    model = models.load(str(_onnx_model(tmp_path / "tiny.onnx", dims)))
    assert model.input_shape == shape and model.input_range is None   # no card: no known range
    assert model(np.zeros((2, 3, 8, 8), np.float32)).shape == (2, 2)
    if shape == (3, 8, 8):
        with pytest.raises(ValueError, match=r"x: expected shape \(N, 3, 8, 8\), got \(1, 3, 9, 8\)"):
            model(np.zeros((1, 3, 9, 8), np.float32))
    card = networks.CARDS["mobilenet_v2"]
    from minisg.models.onnx_import import load_onnx
    assert load_onnx(tmp_path / "tiny.onnx", card=card).input_range == (-1.0, 1.0)


# ---------------------------------------------------------------------------- broken checkpoints

@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    return models.save(models.mnist_cnn(), tmp_path_factory.mktemp("good") / "good.npz")


def _rewrite(source, out, arrays=None, meta=None, raw_meta=None):
    """A copy of checkpoint `source` at `out`, its arrays changed by arrays(dict), its meta by meta(dict)
    or replaced by raw_meta (a string written as is, or an array)."""
    with np.load(source) as archive:
        stored = {key: archive[key] for key in archive.files}
    if arrays:
        arrays(stored)
    if meta:
        changed = json.loads(str(stored["meta"]))
        meta(changed)
        stored["meta"] = np.array(json.dumps(changed))
    if raw_meta is not None:
        stored["meta"] = np.asarray(raw_meta)
    np.savez(out, **stored)
    return out


def _set(key, index, value):
    return lambda arrays: arrays[key].__setitem__(index, value)


BROKEN = {
    "nan weight": (dict(arrays=_set("fc1.weight", (0, 0), np.nan)), r"non-finite values .* \['fc1.weight \(1 of"),
    "inf bias": (dict(arrays=_set("conv1.bias", 3, np.inf)), r"non-finite values .*conv1.bias \(1 of 32\)"),
    "nan in the optimizer state": (dict(arrays=lambda a: a.update({"optim.m.0": np.full(3, np.nan)})),
                                   r"non-finite .*optim.m.0"),
    "int weights": (dict(arrays=lambda a: a.update({"fc2.bias": np.arange(10)})),
                    r"tensor 'fc2.bias': expected a float array, got dtype int64"),
    "meta a list": (dict(raw_meta="[1, 2]"), r"meta: expected a JSON object .*got list \[1, 2\]"),
    "meta a string": (dict(raw_meta='"hello"'), r"meta: expected a JSON object .*got str 'hello'"),
    "meta not JSON": (dict(raw_meta="{not json"), r"'meta' is not valid JSON"),
    "meta an array": (dict(raw_meta=np.arange(3.0)), r"'meta': expected a JSON string, got an array of dtype float64"),
    "accuracy a string": (dict(meta=lambda m: m.update(test_accuracy="0.99")),
                          r"meta field 'test_accuracy': expected a number in \[0, 1\], got '0.99'"),
    "accuracy above 1": (dict(meta=lambda m: m.update(test_accuracy=99.2)), r"'test_accuracy'.*got 99.2"),
    "step a string": (dict(meta=lambda m: m.update(progress={"epoch": 1, "step": "ten"})),
                      r"meta field 'progress.step': expected an int >= 0, got 'ten'"),
    "config a list": (dict(meta=lambda m: m.update(config=[1])), r"meta field 'config': expected a JSON object"),
    "no architecture": (dict(meta=lambda m: m.pop("architecture")),
                        r"meta has no 'architecture' field; expected one of \['mnist_cnn', 'scene_cnn'\]"),
    "unknown architecture": (dict(meta=lambda m: m.update(architecture="resnet50")),
                             r"unknown architecture 'resnet50'; known: \['mnist_cnn', 'scene_cnn'\]"),
    "architecture a list": (dict(meta=lambda m: m.update(architecture=["mnist_cnn"])),
                            r"meta field 'architecture': expected an architecture name .*got \['mnist_cnn'\]"),
    "unknown architecture argument": (dict(meta=lambda m: m.update(architecture_args={"width": 2})),
                                      r"'architecture_args': unknown argument\(s\) \['width'\] of 'mnist_cnn'; "
                                      r"known: \['seed', 'dropout'\]"),
    "architecture arguments a list": (dict(meta=lambda m: m.update(architecture_args=[1])),
                                      r"meta field 'architecture_args': expected an object"),
    "a bad architecture argument": (dict(meta=lambda m: m.update(architecture_args={"seed": "abc"})),
                                    r"'architecture_args' \{'seed': 'abc'\} do not build 'mnist_cnn'"),
    "a dropout that is no probability": (dict(meta=lambda m: m.update(architecture_args={"dropout": "x"})),
                                         r"'architecture_args' \{'dropout': 'x'\} do not build 'mnist_cnn': "
                                         r"dropout: expected a number in \[0, 1\), got 'x'"),
    "input shape of another model": (dict(meta=lambda m: m.update(input_shape=[3, 28, 28])),
                                     r"'input_shape': \[3, 28, 28\] does not fit the architecture"),
    "input range reversed": (dict(meta=lambda m: m.update(input_range=[1, 0])),
                             r"meta field 'input_range': expected \[low, high\].*got \[1, 0\]"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_checkpoint_is_named_at_load(tmp_path, good_checkpoint, case):
    change, message = BROKEN[case]
    path = _rewrite(good_checkpoint, tmp_path / "broken.npz", **change)
    with pytest.raises(models.CheckpointError, match=message) as caught:
        models.load(path)
    assert str(path) in str(caught.value)


def _npy(path):
    np.save(path.with_suffix(".npy"), np.zeros(3))
    path.with_suffix(".npy").rename(path)


NOT_CHECKPOINTS = {
    "an .npy renamed": (_npy, r"is not a minisg checkpoint \(an .npz zip archive\): it is one NumPy array"),
    "a text file": (lambda p: p.write_text("weights\n"), r"is not a minisg checkpoint \(an .npz zip archive\): "
                                                          r"it starts with b'weigh"),
    "an empty file": (lambda p: p.write_bytes(b""), r"not a minisg checkpoint .*the file is empty"),
    "a truncated zip": (lambda p: p.write_bytes(models.resolve("mnist_cnn").read_bytes()[:3000]),
                        r"is truncated or not an .npz file \(BadZipFile.*\.npz zip archive"),
    "pickled objects": (lambda p: np.savez(p, meta=np.array("{}"), w=np.array([{}], dtype=object)),
                        r"is not a minisg checkpoint: it holds arrays of Python objects"),
    "a folder": (lambda p: p.mkdir(), r"is a folder, not a file"),
}


@pytest.mark.parametrize("case", sorted(NOT_CHECKPOINTS))
def test_a_file_that_is_no_checkpoint_says_so_without_pickle_advice(tmp_path, case):
    make, message = NOT_CHECKPOINTS[case]
    path = tmp_path / "model.npz"
    make(path)
    with pytest.raises(models.CheckpointError, match=message) as caught:
        models.load(path)
    assert str(path) in str(caught.value) and "allow_pickle" not in str(caught.value)


@pytest.mark.parametrize("dtype", [np.int32, np.float16, "abc", None, bool])
def test_load_takes_float32_or_float64_only(dtype):
    with pytest.raises(TypeError, match=r"dtype: expected float32 or float64 .*got"):
        models.load("mnist_cnn", dtype=dtype)


@pytest.mark.parametrize("device", ["tpu", "CPU", 0])
def test_load_names_a_bad_device(device):
    with pytest.raises(Exception, match=rf"device: expected None, 'cpu' or 'gpu', got {device!r}"):
        models.load("mnist_cnn", device=device)


@pytest.mark.parametrize("name_or_path", [None, 3, ["mnist_cnn"]])
def test_load_names_a_bad_name_or_path(name_or_path):
    with pytest.raises(TypeError, match=r"name_or_path: expected a file path \(str or pathlib.Path\)"):
        models.load(name_or_path)


def test_evaluate_model_fails_at_load_before_reading_mnist(tmp_path, good_checkpoint, monkeypatch, capsys):
    path = _rewrite(good_checkpoint, tmp_path / "bad.npz", meta=lambda m: m.update(test_accuracy="high"))

    def spy(*args, **kwargs):
        raise AssertionError("evaluate-model read MNIST before refusing the checkpoint")
    monkeypatch.setattr(data, "load_mnist", spy)
    assert cli.main(["evaluate-model", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'test_accuracy'" in err and "'high'" in err


@pytest.mark.parametrize("meta, error, message", [
    ([1], TypeError, "meta: expected a dict"),
    ({"test_accuracy": "0.9"}, ValueError, r"meta field 'test_accuracy': expected a number in \[0, 1\], got '0.9'"),
    ({"note": object()}, TypeError, r"meta: expected JSON values"),
])
def test_save_refuses_meta_that_load_would_refuse(tmp_path, meta, error, message):
    with pytest.raises(error, match=message):
        models.save(models.mnist_cnn(), tmp_path / "net.npz", meta)
    assert not (tmp_path / "net.npz").exists()


def test_save_refuses_non_finite_weights(tmp_path):
    model = models.mnist_cnn()
    model["fc2"].bias.data[4] = np.nan
    with pytest.raises(ValueError, match=r"model: non-finite weights .*\['fc2.bias \(1 of 10\)'\]; not saved"):
        models.save(model, tmp_path / "net.npz")
    assert not (tmp_path / "net.npz").exists()


# ---------------------------------------------------------------------------- training settings

@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if training starts: MNIST is read first, scenes are drawn first."""
    def spy(*args, **kwargs):
        raise AssertionError("training started although its settings should have been refused")
    monkeypatch.setattr(data, "load_mnist", spy)
    monkeypatch.setattr(data, "make_scenes", spy)


def tiny_config(out, **overrides):
    settings = dict(out=str(out), epochs=1, max_steps=2, batch_size=16, lr=1e-3, train_subset=64,
                    eval_subset=50, progress=False, seed=0)
    settings.update(overrides)
    return train.TrainConfig(**settings)


BAD_SETTINGS = [
    ("lr", float("inf"), ValueError, r"lr \(--lr\): expected a finite number > 0, got inf"),
    ("lr", float("nan"), ValueError, r"lr \(--lr\): expected a finite number > 0, got nan"),
    ("lr", 0.0, ValueError, r"lr \(--lr\): expected a finite number > 0, got 0.0"),
    ("lr", -1e-3, ValueError, r"lr \(--lr\): .*got -0.001"),
    ("lr", "1e-3", TypeError, r"lr \(--lr\): expected a finite number > 0, got '1e-3'"),
    ("noise_level", -0.1, ValueError, r"noise_level \(--noise-level\): expected a finite number >= 0, got -0.1"),
    ("noise_level", float("inf"), ValueError, r"noise_level \(--noise-level\): .*got inf"),
    ("grad_penalty_weight", float("nan"), ValueError, r"grad_penalty_weight \(--penalty-weight\): .*got nan"),
    ("smoothness_weight", -1.0, ValueError, r"smoothness_weight \(--smoothness-penalty\): .*got -1.0"),
    ("epochs", 0, ValueError, r"epochs \(--epochs\): expected an int >= 1, got 0"),
    ("epochs", 1.5, TypeError, r"epochs \(--epochs\): expected an int >= 1, got 1.5"),
    ("max_steps", 0, ValueError, r"max_steps \(--steps\): expected an int >= 1 or None \(all\), got 0"),
    ("batch_size", 0, ValueError, r"batch_size \(--batch-size\): expected an int >= 1, got 0"),
    ("batch_size", True, TypeError, r"batch_size \(--batch-size\): .*got True"),
    ("seed", -1, ValueError, r"seed \(--seed\): expected an int >= 0, got -1"),
    ("seed", 1.5, TypeError, r"seed \(--seed\): expected an int >= 0, got 1.5"),
    ("seed", "abc", TypeError, r"seed \(--seed\): .*got 'abc'"),
    ("train_subset", 0, ValueError, r"train_subset \(--train-subset\): expected an int from 1 to 55,000 .*got 0"),
    ("train_subset", -5, ValueError, r"train_subset \(--train-subset\): .*got -5"),
    ("train_subset", 60_000, ValueError, r"train_subset \(--train-subset\): .*got 60000"),
    ("eval_subset", 0, ValueError, r"eval_subset \(--eval-subset\): expected an int from 1 to 5,000 .*got 0"),
    ("eval_subset", 2.0, TypeError, r"eval_subset \(--eval-subset\): .*got 2.0"),
    ("task", "cifar", ValueError, r"task \(--task\): expected one of \['mnist', 'scenes'\], got 'cifar'"),
    ("device", "tpu", ValueError, r"device \(--device\): expected one of \['cpu', 'gpu'\], got 'tpu'"),
    ("resume", "no", TypeError, r"resume \(--resume\): expected True or False, got 'no'"),
    ("out", 3, TypeError, r"out \(--out\): expected a file path"),
]


@pytest.mark.parametrize("name, value, error, message", BAD_SETTINGS, ids=[f"{c[0]}={c[1]!r}" for c in BAD_SETTINGS])
def test_bad_training_settings_are_named_before_any_work(tmp_path, no_work, name, value, error, message):
    config = tiny_config(tmp_path / "net.npz")
    setattr(config, name, value)
    with pytest.raises(error, match=message):
        train.train(config, log=lambda *_: None)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, value, message", [("train_subset", 0, r"train_subset \(--train-subset\)"),
                                                  ("eval_subset", -1, r"eval_subset \(--eval-subset\)"),
                                                  ("lr", float("inf"), r"lr \(--lr\)")])
def test_scene_training_checks_its_settings_too(tmp_path, no_work, name, value, message):
    with pytest.raises(ValueError, match=message):
        train.train(tiny_config(tmp_path / "net.npz", task="scenes", **{name: value}), log=lambda *_: None)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flags", [["--lr", "inf"], ["--train-subset", "0"], ["--eval-subset", "0"],
                                   ["--seed", "-1"], ["--batch-size", "0"]])
def test_the_command_line_gets_a_named_error_on_one_line(tmp_path, no_work, capsys, flags):
    """Whether argparse or the library refuses the value, the line names the flag and the value."""
    try:
        code = cli.main(["train", "--out", str(tmp_path / "net.npz"), "--no-progress", *flags])
    except SystemExit as exc:   # argparse's own refusal
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flags[0] in err and flags[1] in err, err
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- divergence

def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_huge_learning_rate_stops_training_and_writes_nothing(tmp_path):
    out = tmp_path / "net.npz"
    with pytest.raises(train.TrainingDiverged, match=r"diverged at step \d+: the loss is (nan|inf).*lr \(--lr\) "
                                                     r"1e\+30 is too high.*Nothing was written to"):
        train.train(tiny_config(out, lr=1e30, max_steps=6), log=lambda *_: None)
    assert list(tmp_path.iterdir()) == []


def test_a_diverged_overwrite_leaves_the_earlier_file_intact(tmp_path):
    out = tmp_path / "net.npz"
    models.save(models.mnist_cnn(seed=3), out)
    before = digest(out)
    with pytest.raises(train.TrainingDiverged, match=r"net.npz was left as it was"):
        train.train(tiny_config(out, lr=1e30, max_steps=6, overwrite=True), log=lambda *_: None)
    assert digest(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.npz"]   # no temp, no lock


def test_a_nan_loss_names_its_step(tmp_path, monkeypatch):
    calls = []
    real = train.penalised_loss

    def nan_on_the_third_step(*args, **kwargs):
        loss, logits, parts = real(*args, **kwargs)
        calls.append(1)
        return (loss * float("nan") if len(calls) == 3 else loss), logits, parts
    monkeypatch.setattr(train, "penalised_loss", nan_on_the_third_step)
    with pytest.raises(train.TrainingDiverged, match=r"diverged at step 3: the loss is nan; lr \(--lr\) 0.001"):
        train.train(tiny_config(tmp_path / "net.npz", max_steps=5), log=lambda *_: None)
    assert list(tmp_path.iterdir()) == []


def test_non_finite_weights_are_never_saved(tmp_path, monkeypatch):
    real_step = train.Adam.step

    def step_into_nan(self):
        real_step(self)
        self.params[0].data[0, 0, 0, 0] = np.inf
    monkeypatch.setattr(train.Adam, "step", step_into_nan)
    with pytest.raises(train.TrainingDiverged, match=r"diverged at step 1: non-finite weights \(NaN or inf\) in "
                                                     r"\['conv1.weight'\]"):
        train.train(tiny_config(tmp_path / "net.npz", max_steps=1), log=lambda *_: None)
    assert list(tmp_path.iterdir()) == []


def test_resume_refuses_a_checkpoint_with_nan_weights(tmp_path, good_checkpoint, no_work):
    out = _rewrite(good_checkpoint, tmp_path / "net.npz", arrays=_set("fc2.weight", (1, 1), np.nan))
    with pytest.raises(models.CheckpointError, match=r"net.npz: non-finite values .*fc2.weight"):
        train.train(tiny_config(out, resume=True), log=lambda *_: None)


def test_scene_training_stops_the_same_way(tmp_path):
    message = r"diverged at step \d+: .*lr \(--lr\) 1e\+30.*Nothing was written"
    with pytest.raises(train.TrainingDiverged, match=message):
        train.train(tiny_config(tmp_path / "scenes.npz", task="scenes", lr=1e30, max_steps=6, train_subset=96,
                                eval_subset=20), log=lambda *_: None)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- save, builders, registry

@pytest.mark.parametrize("state, message", [
    ("abc", r"optimizer_state: expected None or a dict of arrays \(Optimizer.state_dict\(\)\), got str 'abc'"),
    ([1, 2], r"optimizer_state: expected None or a dict of arrays .*got list \[1, 2\]"),
    ({"m.0": [[1.0], [1.0, 2.0]]}, r"optimizer_state: expected a dict of numeric arrays, got \[\[1.0\], \[1.0, 2.0\]\] "
                                   r"for key 'm.0'"),
    ({"m.0": "x"}, r"optimizer_state: expected a dict of numeric arrays, got 'x' for key 'm.0'"),
])
def test_save_names_a_bad_optimizer_state_and_writes_nothing(tmp_path, state, message):
    with pytest.raises(TypeError, match=message):
        models.save(models.mnist_cnn(), tmp_path / "net.npz", optimizer_state=state)
    assert not (tmp_path / "net.npz").exists()


def test_save_never_writes_into_the_shipped_models_nor_a_non_npz_file(tmp_path):
    from minisg.files import OutputPathError
    shipped = models.MODELS_DIR / "never_written_by_a_test.npz"
    try:
        with pytest.raises(OutputPathError, match=r"path .*never_written_by_a_test.npz: is in the folder of the "
                                                  r"checkpoints shipped with minisg"):
            models.save(models.mnist_cnn(), shipped)
    finally:
        shipped.unlink(missing_ok=True)
    with pytest.raises(OutputPathError, match=r"path .*net.txt: cannot write a .txt file; expected one of .npz"):
        models.save(models.mnist_cnn(), tmp_path / "net.txt")


@pytest.mark.parametrize("arguments, error, message", [
    (dict(seed=-1), ValueError, r"seed: expected an int >= 0, got -1"),
    (dict(seed=1.5), TypeError, r"seed: expected an int >= 0, got 1.5"),
    (dict(dropout=1.5), ValueError, r"dropout: expected a number in \[0, 1\), got 1.5"),
    (dict(dropout=float("nan")), ValueError, r"dropout: expected a number in \[0, 1\), got nan"),
    (dict(dropout="a"), TypeError, r"dropout: expected a number in \[0, 1\), got 'a'"),
    (dict(dtype="abc"), TypeError, r"dtype: expected float32 or float64 .*got 'abc'"),
    (dict(dtype=np.int32), TypeError, r"dtype: expected float32 or float64 .*got <class 'numpy.int32'>"),
])
def test_mnist_cnn_names_a_bad_argument(arguments, error, message):
    with pytest.raises(error, match=message):
        models.mnist_cnn(**arguments)


@pytest.mark.parametrize("call, error, message", [
    (lambda tmp: models.load(""), ValueError, r"name_or_path: expected a shipped model's name .*got ''"),
    (lambda tmp: models.register_architecture(3, models.mnist_cnn), TypeError,
     r"name: expected an architecture name \(a non-empty str\), got 3"),
    (lambda tmp: models.register_architecture("mine", None), TypeError, r"builder: expected a function .*got None"),
    (lambda tmp: models.load_arrays(tmp / "missing.npz"), models.CheckpointError, r"missing.npz does not exist"),
    (lambda tmp: models.load_arrays(tmp), models.CheckpointError, r"is a folder, not a file"),
    (lambda tmp: models.save_arrays(tmp / "a.npz", [1, 2]), TypeError, r"arrays: expected a dict of name: array, got list"),
    (lambda tmp: models.save_arrays(tmp, {"a": np.zeros(2)}), ValueError, r"path .*: is a folder; expected a file path"),
])
def test_the_checkpoint_helpers_name_a_bad_argument(tmp_path, call, error, message):
    with pytest.raises(error, match=message):
        call(tmp_path)


def test_an_empty_onnx_file_is_named_as_empty(tmp_path):
    pytest.importorskip("onnx")
    from minisg.models.onnx_import import OnnxImportError
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(OnnxImportError, match=r"empty.onnx': not a readable ONNX file \(it holds no graph: the file "
                                              r"is empty\)"):
        models.load(tmp_path / "empty.onnx")
