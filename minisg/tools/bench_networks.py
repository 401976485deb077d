"""`minisg bench --network squeezenet1.1`: sensitivity-map workloads on an ImageNet network.

One 224x224 input (a seeded random photo-sized image, or --image PATH, preprocessed as the
network's card says), its predicted class as the target, and four minisg workloads:

  forward           the class scores, no graph (parallel.logits)
  vanilla_gradient  methods.vanilla_gradient: forward + input gradient
  smoothgrad        methods.smoothgrad, n = 50 noisy copies (sigma = 0.15 * the image's range),
                    through the model 25 at a time (BATCH_SIZE: the fastest measured of 10, 25, 50
                    on 2 cores, with a peak memory of ~1.5 GB instead of ~2.8 GB for 50)
  gradcam_pp        methods.gradcam_pp at the model's default layer (conv10_2 for SqueezeNet)

With vs_torch the references run in this process, on the same file's weights and the same
input (tools/bench_networks_torch.py): PyTorch (forward), Captum (Saliency, NoiseTunnel with
the same n, sigma and batch size), torchcam's GradCAMpp (or a Grad-CAM++ in PyTorch), and
onnxruntime's forward. Before anything is timed, the class scores of minisg, PyTorch and
onnxruntime must agree to AGREEMENT (relative to the largest score); if they do not, no ratio
is reported. Timing takes turns as bench.py does: in each round every workload is timed in
each reference and then in minisg (median of `repeats` runs each); a ratio is minisg time /
reference time, the median over rounds with the range.
"""
from pathlib import Path

import numpy as np

from .. import methods, parallel
from ..models import networks
from ..models.onnx_import import load_onnx
from .bench import _check_counts, _summary, breakdown_report, pause_between_turns
from .timing import median_seconds

NETWORKS = ("squeezenet1.1",)
SAMPLES = 50
BATCH_SIZE = 25
NOISE_LEVEL = 0.15
AGREEMENT = 1e-4


def labels(n=SAMPLES, batch_size=BATCH_SIZE, layer="default layer"):
    return {
        "forward": "forward, 1 image (no graph)",
        "vanilla_gradient": "vanilla gradient (fwd + input gradient)",
        "smoothgrad": f"SmoothGrad n={n} (batches of {batch_size})",
        "gradcam_pp": f"Grad-CAM++ at {layer}",
    }


def network_path(network, network_file=None):
    """The network's ONNX file: network_file if given, else the card's (cached or downloaded)."""
    if network not in NETWORKS:
        raise ValueError(f"--network: {network!r} is not benchmarked; choose from {', '.join(NETWORKS)}")
    if network_file is None:
        return networks.fetch(networks.card(network))
    path = Path(network_file)
    if not path.is_file():
        raise FileNotFoundError(f"--network-file: {path} does not exist")
    return path


def make_input(card, image=None, seed=0):
    """(1, 3, S, S) float32: the photo at `image` (a path), else a seeded random uint8 picture."""
    if image is None:
        size = card.input_size
        picture = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
        return networks.preprocess(card, picture)
    from PIL import Image
    with Image.open(image) as picture:
        return networks.preprocess(card, picture.convert("RGB"))


def minisg_workloads(model, x, target, stdev, n=SAMPLES, batch_size=BATCH_SIZE):
    """name -> closure running one workload in minisg (CPU)."""
    def forward():
        parallel.logits(model, x)

    def vanilla_gradient():
        methods.vanilla_gradient(model, x, target)

    def smoothgrad():
        methods.smoothgrad(model, x, target, n=n, stdev=stdev, batch_size=batch_size, seed=0)

    def gradcam_pp():
        methods.gradcam_pp(model, x, target)

    return {"forward": forward, "vanilla_gradient": vanilla_gradient, "smoothgrad": smoothgrad,
            "gradcam_pp": gradcam_pp}


def relative_difference(a, b):
    """max |a - b| / max |b|."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def check_agreement(scores, log, tolerance=AGREEMENT):
    """True if every pair of {library: scores} agrees to `tolerance`; each pair is logged."""
    names, agree = list(scores), True
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            difference = relative_difference(scores[first], scores[second])
            agree &= difference <= tolerance
            log(f"  scores {first} vs {second}: max difference {difference:.1e} of the largest score "
                f"({'ok' if difference <= tolerance else f'over {tolerance:.0e}'})")
    return agree


def _open_references(path, x, target, stdev, ours, n, batch_size, log):
    """[(reference name, label, closure by workload)], after the scores agree; [] otherwise."""
    from . import bench_networks_torch as theirs
    from .bench_networks_torch import Reference
    references, scores = [], {"minisg": ours}
    reference, net_or_reason = theirs.torch_reference(path, x, target, stdev, n, batch_size)
    if reference is None:
        log(f"PyTorch: {net_or_reason}")
    else:
        import torch
        log(reference.header + ", in this process, same weights and input")
        scores["PyTorch"] = theirs.logits(torch, net_or_reason, x)
        references.append(reference)
    sessions = theirs.onnxruntime_sessions(path)
    if not sessions:
        log("onnxruntime: not installed (pip install onnxruntime to compare)")
    else:
        log(f"onnxruntime {theirs.onnxruntime_version()} (default threads): the file's weights as float32 "
            f"in memory; the float16 file as is for its forward only (not held to {AGREEMENT:.0e})")
        x32 = np.ascontiguousarray(x)
        scores["onnxruntime"] = sessions["onnxruntime"](x32)
        for name, run in sessions.items():
            references.append(Reference(name, {"forward": lambda run=run: run(x32)},
                                        {"forward": "float32" if name == "onnxruntime" else "float16 file"},
                                        name))
        half, probabilities = sessions["onnxruntime fp16 file"](x32), _softmax(ours)
        log(f"  (the float16 file's probabilities vs the softmax of minisg's scores: max difference "
            f"{np.abs(half - probabilities).max():.1e}, top class {int(half.argmax())} vs "
            f"{int(probabilities.argmax())})")
    if len(scores) > 1 and not check_agreement(scores, log):
        log("the libraries' scores disagree: no ratio is reported, minisg is timed alone")
        return []
    return references


def _softmax(scores):
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _time_turns(steps, references, repeats, warmup, rounds):
    """{name: (minisg seconds per round, {reference: seconds per round})}."""
    times = {name: ([], {r.name: [] for r in references if name in r.steps}) for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            for reference in references:
                if name in reference.steps:
                    pause_between_turns()
                    times[name][1][reference.name].append(reference.seconds(name, repeats, warmup))
                    pause_between_turns()
            times[name][0].append(median_seconds(step, repeats, warmup))
    return times


def _report(times, references, names, log):
    results = {}
    what = {(name, r.name): f"  vs {r.name} ({r.labels[name]})" for r in references for name in r.steps}
    width = max(len(label) for label in list(names.values()) + list(what.values())) + 1
    for name, (ours, theirs) in times.items():
        row = _summary(ours, None)
        log(f"{names[name]:{width}s} minisg {row['minisg_ms']:9.1f} ms")
        row["references"] = {}
        for reference, seconds in theirs.items():
            summary = _summary(ours, seconds)
            low, high = summary["ratio_range"]
            log(f"{what[name, reference]:{width}s} {'':6s} {summary['torch_ms']:9.1f} ms   minisg/{reference} time "
                f"{summary['time_ratio']:.2f}x (rounds {low:.2f}-{high:.2f})")
            row["references"][reference] = {"ms": summary["torch_ms"], "time_ratio": summary["time_ratio"],
                                            "ratio_range": summary["ratio_range"]}
        results[name] = row
    return results


def run(network="squeezenet1.1", network_file=None, image=None, vs_torch=False, repeats=5, warmup=1,
        rounds=3, breakdown=False, n=SAMPLES, batch_size=BATCH_SIZE, device="cpu", log=print):
    """Print and return {workload: {minisg_ms, references: {name: {ms, time_ratio, ratio_range}}}}
    (references only with vs_torch and scores that agree)."""
    _check_counts(repeats=(repeats, 1), rounds=(rounds, 1), warmup=(warmup, 0), n=(n, 1),
                  batch_size=(batch_size, 1))
    if device != "cpu":
        raise ValueError("--network: only --device cpu is benchmarked for now")
    path = network_path(network, network_file)
    card = networks.card_for_file(path) or networks.card(network)
    if card.name != network:
        raise ValueError(f"--network-file: {path} is {card.name!r}, not {network!r}")
    model = load_onnx(path, card=card)
    x = make_input(card, image)
    ours = parallel.logits(model, x)
    target = int(ours.argmax(axis=1)[0])
    stdev = float(NOISE_LEVEL * (x.max() - x.min()))
    names = labels(n, batch_size, model.default_cam_layer)
    log(f"{network} ({path}), input {'random seeded picture' if image is None else image} "
        f"{tuple(x.shape)}, target class {target}, SmoothGrad sigma {stdev:.1f}; minisg on "
        f"{parallel.get_threads()} threads, {rounds} rounds of (references, minisg) turns, each the "
        f"median of {repeats} runs after {warmup} warm-up runs")
    references = _open_references(path, x, target, stdev, ours, n, batch_size, log) if vs_torch else []
    steps = minisg_workloads(model, x, target, stdev, n, batch_size)
    times = _time_turns(steps, references, repeats, warmup, rounds)
    results = _report(times, references, names, log)
    if breakdown:
        breakdown_report(steps, names, device, repeats, log)
    return results
