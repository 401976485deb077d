"""The `minisg` command line: one subcommand per job, each a thin layer over the library.

Every option is checked before any work starts (the option types below). Every failure is one
line on stderr naming the option, what was expected and what came, with exit code 2 for bad input
and 1 for an internal error (MINISG_DEBUG=1 shows the traceback instead); Ctrl-C (or SIGTERM)
stops with one line and exit code 130 (143), leaving every file as it was or complete.
"""
import argparse
import contextlib
import math
import os
import re
import shlex
import signal
import sys
import threading

# ---------------------------------------------------------------------------- option types
# argparse calls these on an option's text before any work starts; the ArgumentTypeError they
# raise becomes one line naming the option: "minisg train: error: --lr: expected a finite
# number > 0, got inf".


def _refused(expected, text, parsed=True):
    shown = text if parsed else repr(text)  # a number as typed; anything else quoted
    return argparse.ArgumentTypeError(f"expected {expected}, got {shown}")


def int_between(minimum, maximum=None, why=""):
    """An option type: an integer >= minimum (and <= maximum when given); `why` explains a maximum."""
    expected = f"an integer >= {minimum}" if maximum is None else f"an integer from {minimum} to {maximum:,}{why}"

    def integer(text):
        try:
            value = int(text)
        except ValueError:
            raise _refused(expected, text, parsed=False) from None
        if value < minimum or (maximum is not None and value > maximum):
            raise _refused(expected, text)
        return value
    return integer


def float_above(minimum, inclusive, maximum=None):
    """An option type: a finite number > minimum (>= with inclusive), and <= maximum when given."""
    expected = f"a finite number {'>=' if inclusive else '>'} {minimum:g}"
    expected += "" if maximum is None else f" and <= {maximum:,}"

    def number(text):
        try:
            value = float(text)
        except ValueError:
            raise _refused(expected, text, parsed=False) from None
        if (not math.isfinite(value) or value < minimum or (value == minimum and not inclusive)
                or (maximum is not None and value > maximum)):
            raise _refused(expected, text)
        return value
    return number


def path_text(text):
    """An option type: a path; an empty one is refused (it would quietly mean the default or "here")."""
    if not text.strip():
        raise _refused("a path", text, parsed=False)
    return text


positive_int = int_between(1)
nonnegative_int = int_between(0)
finite_positive_float = float_above(0, inclusive=False)
nonnegative_float = float_above(0, inclusive=True)
# Samples and path steps of one map: more would run for hours (the papers use n <= 100, steps <= 300).
CLI_MAX_SAMPLES = 10_000   # explain --n, --steps (the library allows checks.MAX_SAMPLES)
sample_count = int_between(1, CLI_MAX_SAMPLES, why=" (more would run for hours)")
time_limit = float_above(0, inclusive=False, maximum=86_400)   # seconds: a day at most


def input_file(text):
    """An option type: a path to a file that exists and can be read (not a folder)."""
    from .. import files
    reason = files.unreadable_reason(text)
    if reason:
        raise argparse.ArgumentTypeError(f"expected a readable file, got {text!r}, which {reason}")
    return text


def _digit_model(name, option="--model"):
    """`name` unless it is an ImageNet network, which a command on MNIST digits cannot use."""
    from .explain_photo import is_photo_model
    if is_photo_model(name):
        raise ValueError(f"{option}: expected an MNIST model (a shipped name such as mnist_cnn, or an .npz "
                         f"checkpoint), got {name!r}, an ImageNet network (it explains photos: minisg explain "
                         f"PHOTO --model {name})")
    return name


def _cmd_bench(args):
    if args.memory:
        if args.network is not None or args.vs_torch or args.breakdown or args.device != "cpu":
            raise ValueError("--memory: runs alone on the CPU; drop --network, --vs-torch, --breakdown and --device gpu")
        from . import bench_memory
        bench_memory.run()
        return
    if args.network is not None:
        from . import bench_networks
        bench_networks.run(network=args.network, network_file=args.network_file, image=args.image,
                           vs_torch=args.vs_torch, repeats=args.repeats, warmup=args.warmup,
                           rounds=args.rounds, breakdown=args.breakdown, device=args.device)
        return
    if args.network_file is not None or args.image is not None:
        raise ValueError("--network-file and --image need --network")
    from . import bench
    bench.run(device=args.device, vs_torch=args.vs_torch, repeats=args.repeats, warmup=args.warmup,
              rounds=args.rounds, breakdown=args.breakdown)


def _grad_penalty_weight(args):
    if args.grad_penalty is None:
        if args.penalty_weight is not None:
            raise ValueError("--penalty-weight needs --grad-penalty L2")
        return 0.0
    if args.penalty_weight is None:
        raise ValueError("--penalty-weight: expected a finite number > 0 with --grad-penalty L2, got none")
    return args.penalty_weight


def _cmd_train(args):
    from ..models import training as train
    config = train.TrainConfig(
        task=args.task, out=args.out, epochs=args.epochs, max_steps=args.steps, batch_size=args.batch_size,
        lr=args.lr, noise_level=args.noise_level, grad_penalty_weight=_grad_penalty_weight(args),
        smoothness_weight=args.smoothness_penalty, seed=args.seed, train_subset=args.train_subset,
        eval_subset=args.eval_subset, device=args.device, resume=args.resume, overwrite=args.overwrite,
        progress=not args.no_progress)
    config.command = "minisg " + " ".join(shlex.quote(a) for a in args.argv)
    # --task scenes goes to scenes.train_scenes. Ctrl-C, SIGTERM and a busy or bad --out reach
    # main(), which prints one line (exit 130, 143, 2); the last finished epoch's checkpoint stays.
    train.train(config)
    return 0


def _cmd_evaluate_model(args):
    from .. import data
    from ..models import training as train
    from .demo import load_model_option
    model = load_model_option(_digit_model(args.model, "model"), "model", device=args.device)  # meta checked here
    if model.meta.get("architecture") == "scene_cnn":  # multi-label: scored on test scenes, not digits
        from ..models import scene_cnn as scenes
        if args.split != "test":
            raise ValueError(f"--split: expected test for a scene model (scored on the test scenes), got {args.split}")
        print(f"{args.model}: test scenes {scenes.evaluate_scenes(model, scenes.evaluation_scenes('test'))}")
        return
    images, labels = data.load_mnist(args.split)
    acc = train.accuracy(model, images, labels)
    stored = model.meta.get("test_accuracy")
    print(f"{args.model}: {args.split} accuracy {acc:.4f} on {len(labels)} images"
          + (f" (stored in meta: {stored:.4f})" if stored is not None and args.split == "test" else ""))


def _cmd_check(args):
    from ..classroom import grading as check
    return check.main(args.number, args.file, time_limit=args.time_limit, hint=args.hint)


def _cmd_book(args):
    from . import book
    return book.run(args.out, quick=args.quick, only=args.lessons, lessons_dir=args.lessons_dir)


def _cmd_exercises(args):
    from ..classroom import grading as check
    for path in check.copy_stubs(args.number, args.dest):
        print(f"wrote {path}")
    print(f"solve them, then grade with: minisg check {args.number}"
          + (f" (run in {args.dest})" if args.dest else ""))


def _cmd_evaluate(args):
    from ..evaluation import report as evaluate
    evaluate.run(quick=args.quick, out_dir=args.out)


def _cmd_demo(args):
    from . import demo
    demo.run_demo(out=args.out, model_name=_digit_model(args.model), count=args.count)


def _cmd_explain(args):
    from . import demo, explain_photo
    settings = dict(n=args.n, noise_level=args.noise_level, steps=args.steps)
    if explain_photo.is_photo_model(args.model):
        if args.invert is not None:
            raise ValueError(f"--invert/--no-invert apply to digit images (the MNIST models), not --model {args.model}")
        explain_photo.explain_photo(args.image, model=args.model, method=args.method, target=args.target,
                                    layer=args.layer, out=args.out, **settings)
        return
    target = args.target
    if target is not None:
        try:
            target = int(target)
        except ValueError:
            raise ValueError(f"--target: expected a digit class 0-9 for --model {args.model}, got {target!r} "
                             f"(class names need an ImageNet --model: squeezenet1.1, mobilenet_v2 or an .onnx file)"
                             ) from None
    demo.explain(args.image, method=args.method, target=target, layer=args.layer, out=args.out,
                 model_name=args.model, invert=args.invert, **settings)


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage is in --help) that starts with the option:
    "--lr: expected ..., got ...", "--method: expected one of ..., got ..."."""

    def error(self, message):
        message = re.sub(r"^argument ", "", message)
        message = re.sub(r"invalid choice: (.*) \(choose from (.*)\)$", r"expected one of \2, got \1", message)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    from .. import __version__
    parser = _OneLineParser(prog="minisg", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"minisg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)

    demo = sub.add_parser("demo", help="every method on a few test digits: one comparison figure and timings")
    demo.add_argument("--out", type=path_text, default="minisg_demo.png", help="the PNG to write")
    demo.add_argument("--model", type=path_text, default="mnist_cnn", help="shipped name or checkpoint path")
    demo.add_argument("--count", type=int_between(1, 10), default=4, help="how many digits (classes 0..count-1)")
    demo.set_defaults(run=_cmd_demo)

    from ..methods import METHODS
    explain = sub.add_parser("explain", help="a sensitivity map of your own digit image or, with an ImageNet "
                                             "--model, of a photo (PNG/JPEG)")
    explain.add_argument("image", type=input_file,
                         help="a picture of one digit (or, with an ImageNet --model, a photo), any size, grayscale "
                              "or colour")
    explain.add_argument("--method", default="smoothgrad", choices=sorted(METHODS))
    explain.add_argument("--target", default=None,
                         help="class to explain (default: the prediction): an index, or with an ImageNet --model "
                              "a class name such as 'Egyptian cat' (any case, or a unique prefix)")
    explain.add_argument("--layer", default=None,
                         help="layer for CAM methods (default: the model's, relu2 for MNIST; a tensor name such "
                              "as fire9/concat_1 for an ONNX network)")
    explain.add_argument("--out", type=path_text, default=None,
                         help="PNG to write (default: IMAGE_METHOD.png beside it)")
    explain.add_argument("--model", type=path_text, default="mnist_cnn",
                         help="shipped name or checkpoint path (digits), or an ImageNet network: squeezenet1.1, "
                              "mobilenet_v2 or a path to an .onnx file (photos)")
    explain.add_argument("--n", type=sample_count, default=None, help="noisy samples of smoothgrad (default 50) and "
                                                              "smooth_gradcam_pp (default 5)")
    explain.add_argument("--noise-level", type=nonnegative_float, default=None,
                         help="noise stdev / input range of smoothgrad (default 0.15) and smooth_gradcam_pp (0.3)")
    explain.add_argument("--steps", type=sample_count, default=None,
                         help="path steps of integrated_gradients (default 50)")
    polarity = explain.add_mutually_exclusive_group()
    polarity.add_argument("--invert", dest="invert", action="store_true", default=None,
                          help="the digit is dark on a light background")
    polarity.add_argument("--no-invert", dest="invert", action="store_false",
                          help="the digit is light on a dark background, like MNIST")
    explain.set_defaults(run=_cmd_explain)

    bench = sub.add_parser("bench", help="throughput of training and saliency steps (vs PyTorch if installed)")
    bench.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    bench.add_argument("--vs-torch", action="store_true",
                       help="time PyTorch/Captum on the same model: in a separate process, then in this one")
    bench.add_argument("--repeats", type=positive_int, default=10)
    bench.add_argument("--warmup", type=nonnegative_int, default=3)
    bench.add_argument("--rounds", type=positive_int, default=3, help="turns of PyTorch then minisg per workload")
    bench.add_argument("--breakdown", action="store_true", help="then time each minisg workload kernel by kernel")
    bench.add_argument("--network", choices=["squeezenet1.1"], default=None,
                       help="sensitivity maps of one 224x224 image on this ImageNet network instead of MNIST")
    bench.add_argument("--network-file", type=input_file, default=None, metavar="PATH",
                       help="the network's ONNX file (default: the cached or downloaded one)")
    bench.add_argument("--image", type=input_file, default=None, metavar="PATH",
                       help="with --network: a photo to explain (default: a seeded random picture)")
    bench.add_argument("--memory", action="store_true",
                       help="instead: peak memory of SmoothGrad (100 digits, n=2000) and occlusion, each in a child "
                            "process (minutes; python -m minisg.tools.bench_memory -h for other sizes)")
    bench.set_defaults(run=_cmd_bench)

    train = sub.add_parser("train", help="train the MNIST CNN (optionally with input noise)")
    train.add_argument("--task", choices=["mnist", "scenes"], default="mnist",
                       help="mnist: the paper's digit classifier; scenes: the multi-digit scene model")
    train.add_argument("--out", type=path_text, default=None,
                       help="checkpoint path (.npz); default mnist_cnn_trained.npz (scene_cnn_trained.npz for "
                            "--task scenes) in the current folder; an existing file is refused unless --resume "
                            "or --overwrite; the shipped checkpoints are never written")
    train.add_argument("--epochs", type=positive_int, default=3)
    train.add_argument("--steps", type=positive_int, default=None, help="stop after this many steps")
    train.add_argument("--batch-size", type=positive_int, default=50)
    train.add_argument("--lr", type=finite_positive_float, default=1e-4)
    train.add_argument("--noise-level", type=nonnegative_float, default=0.0,
                       help="Gaussian input noise, stdev as a fraction of each image's range")
    train.add_argument("--grad-penalty", choices=["L2"], default=None,
                       help="penalise the squared L2 norm of d(true logit)/d(input) (double backprop)")
    train.add_argument("--penalty-weight", type=finite_positive_float, default=None, help="weight of --grad-penalty")
    train.add_argument("--smoothness-penalty", type=nonnegative_float, default=0.0, metavar="W",
                       help="weight of the squared differences of input gradients between neighbouring pixels")
    train.add_argument("--seed", type=nonnegative_int, default=0)
    train.add_argument("--train-subset", type=positive_int, default=None, help="use only the first K training images")
    train.add_argument("--eval-subset", type=positive_int, default=None, help="evaluate on the first K images")
    train.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    existing = train.add_mutually_exclusive_group()
    existing.add_argument("--resume", action="store_true", help="continue from the checkpoint at --out")
    existing.add_argument("--overwrite", action="store_true",
                          help="replace an existing --out (it stays as it was until the first epoch is saved)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(run=_cmd_train)

    evaluate_model = sub.add_parser("evaluate-model", help="accuracy of a checkpoint on MNIST")
    evaluate_model.add_argument("model", type=path_text,
                                help="shipped name (mnist_cnn, mnist_cnn_noise) or a .npz path")
    evaluate_model.add_argument("--split", default="test", choices=["test", "val", "train", "train_full"])
    evaluate_model.add_argument("--device", choices=["cpu", "gpu"], default=None)
    evaluate_model.set_defaults(run=_cmd_evaluate_model)

    evaluate = sub.add_parser("evaluate", help="measure every method: localisation, faithfulness, sanity, noise")
    evaluate.add_argument("--quick", action="store_true", help="a few images and small n (seconds)")
    evaluate.add_argument("--out", type=path_text, default="evaluation",
                          help="folder for the table (.md, .csv) and curves")
    evaluate.set_defaults(run=_cmd_evaluate)

    exercises = sub.add_parser("exercises", help="copy the exercise stubs exNN_*.py of a lesson here")
    exercises.add_argument("number", help="lesson number, e.g. 06")
    exercises.add_argument("--dest", type=path_text, default=None, help="folder to copy them into (default: here); "
                           "existing files are never replaced")
    exercises.set_defaults(run=_cmd_exercises)

    check = sub.add_parser("check", help="grade a classroom exercise file (exNN_*.py)")
    check.add_argument("number", help="lesson number (e.g. 06) or one exercise (e.g. 06.2)")
    check.add_argument("--file", type=input_file, default=None,
                       help="the file to grade (default: exNN_*.py here, else lessons/exercises/exNN_*.py)")
    check.add_argument("--time-limit", type=time_limit, default=None, metavar="S",
                       help="seconds each exercise may take (default 60, or $MINISG_CHECK_TIME_LIMIT)")
    check.add_argument("--hint", action="store_true",
                       help="also print each failed exercise's approach (its own hint, nearly the answer)")
    check.set_defaults(run=_cmd_check)

    book = sub.add_parser("book", help="execute the lessons as notebooks and write them as an offline HTML site "
                                       "(needs pip install \"minisg[book]\")")
    book.add_argument("--out", type=path_text, required=True,
                      help="folder for the site: new, empty, or a book written before "
                      "(its files are replaced; nothing else in it is touched)")
    book.add_argument("--quick", action="store_true", help="run each lesson with --quick (seconds each)")
    book.add_argument("--lessons", nargs="+", default=None, metavar="NN", help="only these lessons, e.g. 01 06")
    book.add_argument("--lessons-dir", type=path_text, default=None,
                      help="the lesson files (default: lessons/ of the source checkout)")
    book.set_defaults(run=_cmd_book)
    for command in sub.choices.values():  # so that main() names the option a library error is about
        command.set_defaults(options={action.dest: action.option_strings[-1] for action in command._actions
                                      if action.option_strings and action.dest != "help"})
    return parser


class Terminated(BaseException):  # like KeyboardInterrupt: no `except Exception` swallows it
    """SIGTERM, turned into an exception so that cleanup code runs as for Ctrl-C."""


@contextlib.contextmanager
def _sigterm_raises():
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _user_errors():
    """The exceptions that mean 'bad input or environment': one line, exit code 2."""
    import zipfile

    from ..backend import DeviceError
    from ..classroom.grading import UsageError
    from ..data import DataError
    from ..files import FileBusyError
    from ..models import CheckpointError
    from ..models.networks import NetworkFileError
    return (DeviceError, UsageError, DataError, CheckpointError, FileBusyError, NetworkFileError,
            zipfile.BadZipFile, ValueError, KeyError, TypeError, OSError)


def _one_line(error, options):
    """A user error's message on one line. A message about a library parameter that is also one
    of the command's options ("noise_level: expected ...") names the option ("--noise-level: ...")."""
    if isinstance(error, KeyError) and error.args:
        text = str(error.args[0])
    elif isinstance(error, OSError) and error.strerror and error.filename:
        text = f"{error.filename}: {error.strerror}"
    else:
        text = str(error) or type(error).__name__
    name, colon, rest = text.partition(":")
    if colon and name in options:
        text = options[name] + colon + rest
    return " ".join(line.strip() for line in text.splitlines())


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    command, options = "minisg", {}
    debug = bool(os.environ.get("MINISG_DEBUG"))  # the whole traceback, for minisg's developers
    try:
        with _sigterm_raises():
            args = build_parser().parse_args(argv)
            args.argv = argv
            command, options = f"minisg {args.command}", args.options
            return args.run(args) or 0
    except KeyboardInterrupt:
        print(f"{command}: interrupted; files written so far are complete, nothing half-written",
              file=sys.stderr)
        return 130
    except Terminated:
        print(f"{command}: terminated; files written so far are complete, nothing half-written",
              file=sys.stderr)
        return 143
    except _user_errors() as exc:
        if debug:
            raise
        print(f"{command}: error: {_one_line(exc, options)}", file=sys.stderr)
        return 2
    except MemoryError as exc:
        if debug:
            raise
        print(f"{command}: error: out of memory ({_one_line(exc, {})}): ask for less work at once "
              f"(fewer images, samples or steps, a smaller --batch-size)", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 -- a bug in minisg, not in the input: still one line
        if debug:
            raise
        print(f"{command}: internal error: {type(exc).__name__}: {_one_line(exc, {})} (MINISG_DEBUG=1 shows "
              f"the traceback; please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
