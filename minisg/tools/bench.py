"""Throughput benchmarks, with PyTorch (and Captum) side by side when they are installed.

Workloads on the paper's MNIST CNN:
  train                 forward + backward + Adam step, batch 128, random data
  saliency              forward + gradient of the target logit w.r.t. the input, batch 50
  smoothgrad            SmoothGrad, n = 50 noisy copies of one MNIST digit, in one batch of 50
  integrated_gradients  Integrated Gradients, 50 path points of one digit, in one batch of 50
PyTorch runs the same workloads on the same weights and inputs in a separate process
(bench_torch.py) with the same thread count. The two take turns: in each of `rounds` rounds,
every workload is timed in PyTorch and then in minisg (median of `repeats` runs each). A round's
ratio is minisg time / PyTorch time; the report gives the median over rounds and the range,
so that a machine whose speed drifts during the run shows it instead of hiding it.
Nothing here is a test: speed is only ever measured, never asserted.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from .. import backend, methods, models, parallel
from .. import functional as F
from ..autograd import Tensor, grad
from ..optim import Adam
from .timing import median_seconds

LABELS = {
    "train": ("train (fwd+bwd+Adam), batch 128", 128),
    "saliency": ("saliency (fwd + input gradient), batch 50", 50),
    "smoothgrad": ("SmoothGrad n=50, one digit (vs Captum NoiseTunnel)", 1),
    "integrated_gradients": ("Integrated Gradients 50 steps, one digit (vs Captum)", 1),
}


def _sync(device):
    if device == "gpu":
        backend.cupy_or_error().cuda.runtime.deviceSynchronize()


def make_inputs(seed=0):
    """Random training/saliency batches and one real test digit, shared with PyTorch."""
    from .. import data
    rng = np.random.default_rng(seed)
    images, labels = data.load_mnist("test")
    return {
        "x_train": rng.random((128, 1, 28, 28), dtype=np.float32),
        "y_train": rng.integers(0, 10, 128),
        "x_saliency": rng.random((50, 1, 28, 28), dtype=np.float32),
        "targets": rng.integers(0, 10, 50),
        "digit": images[:1].copy(),
        "digit_target": np.asarray(labels[0]),
        "smoothgrad_stdev": np.asarray(0.15 * float(images[0].max() - images[0].min())),
    }


def minisg_workloads(model, inputs, device):
    """name -> closure running one workload in minisg."""
    xp = backend.xp_for(device)
    optimizer = Adam(model.parameters(), lr=1e-4)
    x_train = Tensor(xp.asarray(inputs["x_train"]))
    x_sal = xp.asarray(inputs["x_saliency"])
    digit, target = inputs["digit"], int(inputs["digit_target"])

    def train_step():
        model.train()
        loss = F.cross_entropy(model(x_train), inputs["y_train"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        _sync(device)

    def saliency_step():
        model.eval()
        x = Tensor(x_sal, requires_grad=True)
        score = model(x)[np.arange(len(inputs["targets"])), inputs["targets"]].sum()
        grad(score, x)
        _sync(device)

    def smoothgrad_step():
        methods.smoothgrad(model, digit, target, n=50, stdev=float(inputs["smoothgrad_stdev"]),
                           batch_size=50, seed=0)
        _sync(device)

    def integrated_gradients_step():
        methods.integrated_gradients(model, digit, target, steps=50, batch_size=50)
        _sync(device)

    return {"train": train_step, "saliency": saliency_step, "smoothgrad": smoothgrad_step,
            "integrated_gradients": integrated_gradients_step}


def threads_in_use():
    """The cores minisg uses (its batch slices, BLAS): MINISG_THREADS, default all cores."""
    return parallel.get_threads()


class TorchTimer:
    """bench_torch.py in a clean process, answering one workload's timing at a time."""

    def __init__(self, model, inputs, threads, device):
        self._folder = tempfile.TemporaryDirectory()
        path = os.path.join(self._folder.name, "inputs.npz")
        np.savez(path, **model.state_dict(), **inputs)
        env = dict(os.environ)  # minisg sets no variable: PyTorch runs as its users run it
        command = [sys.executable, "-m", "minisg.tools.bench_torch", "--inputs", path, "--threads", str(threads),
                   "--device", device]
        # stderr to a file, not a pipe: nobody reads a pipe while it runs, and a full one would stall it
        self._stderr = open(os.path.join(self._folder.name, "stderr.txt"), "w+")
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._stderr, text=True, env=env)
        self.header = self._read()

    def _read(self):
        line = self._process.stdout.readline()
        if not line:
            self._process.wait()
            self._stderr.seek(0)
            raise OSError(f"the PyTorch process of --vs-torch stopped: {self._stderr.read()[-2000:]}")
        return json.loads(line)

    def seconds(self, name, repeats, warmup):
        self._process.stdin.write(f"{name} {repeats} {warmup}\n")
        self._process.stdin.flush()
        return self._read()[name]

    def close(self):
        if self._process.poll() is None:
            try:
                self._process.communicate("quit\n", timeout=60)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._stderr.close()
        self._folder.cleanup()


def _summary(minisg_s, torch_s):
    """Median times over rounds, and the median and range of the per-round ratios."""
    row = {"minisg_ms": 1000 * float(np.median(minisg_s))}
    if torch_s:
        ratios = np.asarray(minisg_s) / np.asarray(torch_s)
        row.update(torch_ms=1000 * float(np.median(torch_s)), time_ratio=float(np.median(ratios)),
                   ratio_range=(float(ratios.min()), float(ratios.max())))
    return row


def run(device="cpu", vs_torch=False, repeats=10, warmup=3, rounds=3, log=print):
    """Print and return {workload: {minisg_ms, torch_ms?, time_ratio?, ratio_range?}} (ratio:
    minisg / torch, the median of the rounds' ratios; times: medians over rounds)."""
    for name, value, least in (("repeats", repeats, 1), ("rounds", rounds, 1), ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name}: expected an int >= {least}, got {value!r}")
    backend.set_device(device)
    threads = threads_in_use()
    model = models.load("mnist_cnn", device=device)
    inputs = make_inputs()
    log(f"device {device}, {threads} threads, {rounds} rounds of (PyTorch, minisg) turns, each the median "
        f"of {repeats} runs after {warmup} warm-up runs")
    slice_threads, torch_timer = parallel.get_threads(), None
    parallel.set_threads(threads)   # the methods' slices get the thread count PyTorch gets
    try:
        torch_timer = TorchTimer(model, inputs, threads, device) if vs_torch else None
        header = torch_timer.header if torch_timer else {}
        if "error" in header:
            log(f"PyTorch: {header['error']} (pip install torch to compare); measuring minisg alone")
            torch_timer.close()
            torch_timer = None
        elif header:
            captum = f", Captum {header['captum']}" if "captum" in header else ", Captum not installed"
            log(f"PyTorch {header['version']}{captum}, same weights and inputs, separate process")
        steps = minisg_workloads(model, inputs, device)
        theirs_names = header.get("workloads", []) if torch_timer else []
        times = {name: ([], []) for name in steps}
        for _ in range(rounds):
            for name, step in steps.items():
                if name in theirs_names:
                    times[name][1].append(torch_timer.seconds(name, repeats, warmup))
                times[name][0].append(median_seconds(step, repeats, warmup))
    finally:
        parallel.set_threads(slice_threads)
        if torch_timer:
            torch_timer.close()
    results = {}
    for name, (ours, theirs) in times.items():
        label, images = LABELS[name]
        row = _summary(ours, theirs)
        row["minisg_images_per_s"] = images * 1000 / row["minisg_ms"]
        line = f"{label:54s} minisg {row['minisg_ms']:8.1f} ms ({row['minisg_images_per_s']:8.1f} img/s)"
        if theirs:
            low, high = row["ratio_range"]
            line += (f" | torch {row['torch_ms']:8.1f} ms | minisg/torch time {row['time_ratio']:.2f}x"
                     f" (rounds {low:.2f}-{high:.2f})")
        log(line)
        results[name] = row
    return results
