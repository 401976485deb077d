"""The `minisg` command line: one subcommand per job, each a thin layer over the library.

Every failure is one line on stderr naming the argument, with exit code 2 (MINISG_DEBUG=1 shows
the traceback instead); Ctrl-C (or SIGTERM) stops with one line and exit code 130 (143), leaving
every file as it was or complete.
"""
import argparse
import contextlib
import os
import shlex
import signal
import sys
import threading


def _cmd_bench(args):
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
    if args.penalty_weight is None or args.penalty_weight <= 0:
        raise ValueError(f"--grad-penalty L2 needs --penalty-weight > 0, got {args.penalty_weight}")
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
    from .. import data, models
    from ..models import training as train
    model = models.load(args.model, device=args.device)
    if model.meta.get("architecture") == "scene_cnn":  # multi-label: scored on test scenes, not digits
        from ..models import scene_cnn as scenes
        print(f"{args.model}: test scenes {scenes.evaluate_scenes(model, scenes.evaluation_scenes('test'))}")
        return
    images, labels = data.load_mnist(args.split)
    acc = train.accuracy(model, images, labels)
    stored = model.meta.get("test_accuracy")
    print(f"{args.model}: {args.split} accuracy {acc:.4f} on {len(labels)} images"
          + (f" (stored in meta: {stored:.4f})" if stored is not None and args.split == "test" else ""))


def _cmd_check(args):
    from ..classroom import grading as check
    return check.main(args.number, args.file, time_limit=args.time_limit)


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
    demo.run_demo(out=args.out, model_name=args.model, count=args.count)


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
    """argparse, but a usage error is one line (the usage is in --help)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    from .. import __version__
    parser = _OneLineParser(prog="minisg", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"minisg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)

    demo = sub.add_parser("demo", help="every method on a few test digits: one comparison figure and timings")
    demo.add_argument("--out", default="minisg_demo.png", help="the PNG to write")
    demo.add_argument("--model", default="mnist_cnn", help="shipped name or checkpoint path")
    demo.add_argument("--count", type=int, default=4, help="how many digits (classes 0..count-1)")
    demo.set_defaults(run=_cmd_demo)

    from ..methods import METHODS
    explain = sub.add_parser("explain", help="a sensitivity map of your own digit image or, with an ImageNet "
                                             "--model, of a photo (PNG/JPEG)")
    explain.add_argument("image", help="a picture of one digit (or, with an ImageNet --model, a photo), any size, "
                                       "grayscale or colour")
    explain.add_argument("--method", default="smoothgrad", choices=sorted(METHODS))
    explain.add_argument("--target", default=None,
                         help="class to explain (default: the prediction): an index, or with an ImageNet --model "
                              "a class name such as 'Egyptian cat' (any case, or a unique prefix)")
    explain.add_argument("--layer", default=None,
                         help="layer for CAM methods (default: the model's, relu2 for MNIST; a tensor name such "
                              "as fire9/concat_1 for an ONNX network)")
    explain.add_argument("--out", default=None, help="PNG to write (default: IMAGE_METHOD.png beside it)")
    explain.add_argument("--model", default="mnist_cnn",
                         help="shipped name or checkpoint path (digits), or an ImageNet network: squeezenet1.1, "
                              "mobilenet_v2 or a path to an .onnx file (photos)")
    explain.add_argument("--n", type=int, default=None, help="noisy samples of smoothgrad (default 50) and "
                                                              "smooth_gradcam_pp (default 5)")
    explain.add_argument("--noise-level", type=float, default=None,
                         help="noise stdev / input range of smoothgrad (default 0.15) and smooth_gradcam_pp (0.3)")
    explain.add_argument("--steps", type=int, default=None, help="path steps of integrated_gradients (default 50)")
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
    bench.add_argument("--repeats", type=int, default=10)
    bench.add_argument("--warmup", type=int, default=3)
    bench.add_argument("--rounds", type=int, default=3, help="turns of PyTorch then minisg per workload")
    bench.add_argument("--breakdown", action="store_true", help="then time each minisg workload kernel by kernel")
    bench.add_argument("--network", choices=["squeezenet1.1"], default=None,
                       help="sensitivity maps of one 224x224 image on this ImageNet network instead of MNIST")
    bench.add_argument("--network-file", default=None, metavar="PATH",
                       help="the network's ONNX file (default: the cached or downloaded one)")
    bench.add_argument("--image", default=None, metavar="PATH",
                       help="with --network: a photo to explain (default: a seeded random picture)")
    bench.set_defaults(run=_cmd_bench)

    train = sub.add_parser("train", help="train the MNIST CNN (optionally with input noise)")
    train.add_argument("--task", choices=["mnist", "scenes"], default="mnist",
                       help="mnist: the paper's digit classifier; scenes: the multi-digit scene model")
    train.add_argument("--out", default=None,
                       help="checkpoint path (.npz); default mnist_cnn_trained.npz (scene_cnn_trained.npz for "
                            "--task scenes) in the current folder; an existing file is refused unless --resume "
                            "or --overwrite; the shipped checkpoints are never written")
    train.add_argument("--epochs", type=int, default=3)
    train.add_argument("--steps", type=int, default=None, help="stop after this many steps")
    train.add_argument("--batch-size", type=int, default=50)
    train.add_argument("--lr", type=float, default=1e-4)
    train.add_argument("--noise-level", type=float, default=0.0,
                       help="Gaussian input noise, stdev as a fraction of each image's range")
    train.add_argument("--grad-penalty", choices=["L2"], default=None,
                       help="penalise the squared L2 norm of d(true logit)/d(input) (double backprop)")
    train.add_argument("--penalty-weight", type=float, default=None, help="weight of --grad-penalty")
    train.add_argument("--smoothness-penalty", type=float, default=0.0, metavar="W",
                       help="weight of the squared differences of input gradients between neighbouring pixels")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--train-subset", type=int, default=None, help="use only the first K training images")
    train.add_argument("--eval-subset", type=int, default=None, help="evaluate on the first K images")
    train.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    existing = train.add_mutually_exclusive_group()
    existing.add_argument("--resume", action="store_true", help="continue from the checkpoint at --out")
    existing.add_argument("--overwrite", action="store_true",
                          help="replace an existing --out (it stays as it was until the first epoch is saved)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(run=_cmd_train)

    evaluate_model = sub.add_parser("evaluate-model", help="accuracy of a checkpoint on MNIST")
    evaluate_model.add_argument("model", help="shipped name (mnist_cnn, mnist_cnn_noise) or a .npz path")
    evaluate_model.add_argument("--split", default="test", choices=["test", "val", "train", "train_full"])
    evaluate_model.add_argument("--device", choices=["cpu", "gpu"], default=None)
    evaluate_model.set_defaults(run=_cmd_evaluate_model)

    evaluate = sub.add_parser("evaluate", help="measure every method: localisation, faithfulness, sanity, noise")
    evaluate.add_argument("--quick", action="store_true", help="a few images and small n (seconds)")
    evaluate.add_argument("--out", default="evaluation", help="folder for the table (.md, .csv) and curves")
    evaluate.set_defaults(run=_cmd_evaluate)

    exercises = sub.add_parser("exercises", help="copy the exercise stubs exNN_*.py of a lesson here")
    exercises.add_argument("number", help="lesson number, e.g. 06")
    exercises.add_argument("--dest", default=None, help="folder to copy them into (default: here); "
                           "existing files are never replaced")
    exercises.set_defaults(run=_cmd_exercises)

    check = sub.add_parser("check", help="grade a classroom exercise file (exNN_*.py)")
    check.add_argument("number", help="lesson number (e.g. 06) or one exercise (e.g. 06.2)")
    check.add_argument("--file", default=None,
                       help="the file to grade (default: exNN_*.py here, else lessons/exercises/exNN_*.py)")
    check.add_argument("--time-limit", type=float, default=None, metavar="S",
                       help="seconds each exercise may take (default 60, or $MINISG_CHECK_TIME_LIMIT)")
    check.set_defaults(run=_cmd_check)
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
    from ..backend import DeviceError
    from ..classroom.grading import UsageError
    from ..data import DataError
    from ..files import FileBusyError
    from ..models import CheckpointError
    return (DeviceError, UsageError, DataError, CheckpointError, FileBusyError, ValueError, KeyError,
            TypeError, OSError)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    command = "minisg"
    try:
        with _sigterm_raises():
            args = build_parser().parse_args(argv)
            args.argv = argv
            command = f"minisg {args.command}"
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
        if os.environ.get("MINISG_DEBUG"):  # the whole traceback, for minisg's developers
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"{command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
