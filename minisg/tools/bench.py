"""Throughput benchmarks, with PyTorch (and Captum) side by side when they are installed.

Workloads on the paper's MNIST CNN:
  train                 forward + backward + Adam step, batch 128, random data
  saliency              forward + gradient of the target logit w.r.t. the input, batch 50
  smoothgrad            SmoothGrad, n = 50 noisy copies of one MNIST digit, in one batch of 50
  integrated_gradients  Integrated Gradients, 50 path points of one digit, in one batch of 50
With vs_torch, PyTorch (and Captum) run the same workloads on the same weights and inputs, as
their users run them (an environment minisg has not changed, PyTorch's default threads), twice:

  separate processes  PyTorch in a child process (bench_torch.py), minisg in this one, which
                      has not imported torch;
  one process         then torch is imported here and both run in this process, as in a
                      notebook that compares the two libraries.

The two take turns: in each of `rounds` rounds, every workload is timed in PyTorch and then in
minisg (median of `repeats` runs each). A round's ratio is minisg time / PyTorch time; the
report gives the median over rounds and the range, so that a machine whose speed drifts during
the run shows it instead of hiding it. Then, with breakdown, one more run of each minisg
workload is timed kernel by kernel and op by op (tools/profile.py).
Nothing here is a test: speed is only ever measured, never asserted.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from .. import backend, methods, models, parallel
from . import bench_torch
from .. import functional as F
from ..autograd import Tensor, grad
from ..optim import Adam
from .profile import op_profile
from .timing import median_seconds, seconds_per_run

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


class TorchProcess:
    """bench_torch.py in a clean process, answering one workload's timing at a time."""

    mode = "separate processes"

    def __init__(self, model, inputs, device):
        self._folder = tempfile.TemporaryDirectory()
        path = os.path.join(self._folder.name, "inputs.npz")
        np.savez(path, **model.state_dict(), **inputs)
        env = dict(os.environ)  # minisg sets no variable: PyTorch runs as its users run it
        command = [sys.executable, "-m", "minisg.tools.bench_torch", "--inputs", path, "--device", device]
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


class TorchInProcess:
    """The same PyTorch workloads, imported into this process (after the separate-process runs:
    an import cannot be undone)."""

    mode = "one process"

    def __init__(self, model, inputs, device):
        arrays = {**model.state_dict(), **inputs}
        self.steps, self.sync, self.header = bench_torch.setup(arrays, device)

    def seconds(self, name, repeats, warmup):
        return median_seconds(self.steps[name], repeats, warmup, self.sync)

    def close(self):
        pass


def _summary(minisg_s, torch_s):
    """Median times over rounds, and the median and range of the per-round ratios."""
    row = {"minisg_ms": 1000 * float(np.median(minisg_s))}
    if torch_s:
        ratios = np.asarray(minisg_s) / np.asarray(torch_s)
        row.update(torch_ms=1000 * float(np.median(torch_s)), time_ratio=float(np.median(ratios)),
                   ratio_range=(float(ratios.min()), float(ratios.max())))
    return row


def _check_counts(**counts):
    for name, (value, least) in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name}: expected an int >= {least}, got {value!r}")


def _open_torch(timer_class, model, inputs, device, log):
    """A started PyTorch timer, or None (with the reason logged) when torch is missing."""
    timer = timer_class(model, inputs, device)
    header = timer.header
    if "error" in header:
        log(f"PyTorch: {header['error']} (pip install torch to compare); measuring minisg alone")
        timer.close()
        return None
    captum = f", Captum {header['captum']}" if "captum" in header else ", Captum not installed"
    log(f"PyTorch {header['version']}{captum} ({header['threads']} threads), same weights and inputs, "
        f"{timer.mode}")
    return timer


# A pause between turns: a library's idle threads spin for a while after its last call
# (OpenBLAS's for about 0.2 s, measured) and would take a core from the other's turn.
TURN_PAUSE_S = 0.3


def pause_between_turns():
    time.sleep(TURN_PAUSE_S)


def _time_turns(steps, torch_timer, repeats, warmup, rounds):
    """{name: (minisg seconds per round, torch seconds per round)}."""
    theirs_names = torch_timer.header.get("workloads", []) if torch_timer else []
    times = {name: ([], []) for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            if name in theirs_names:
                pause_between_turns()
                times[name][1].append(torch_timer.seconds(name, repeats, warmup))
                pause_between_turns()
            times[name][0].append(median_seconds(step, repeats, warmup))
    return times


def _report(times, log):
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


def breakdown_report(steps, labels, device, repeats, log):
    """Where each minisg workload's time goes, kernel by kernel and op by op (labels: name ->
    how the report names the workload)."""
    log(f"where minisg's time goes (one profiled batch of {repeats} runs per workload; ms per run):")
    for name, step in steps.items():
        step()
        with op_profile(device) as profile:
            wall = sum(seconds_per_run(step, repeats, 0))
        log(f"  {labels[name]}: {1e3 * wall / repeats:.1f} ms per run while profiled")
        for line in profile.table(repeats, wall):
            log(line)


def run(device="cpu", vs_torch=False, repeats=10, warmup=3, rounds=3, breakdown=False, log=print):
    """Print and return {mode: {workload: {minisg_ms, torch_ms?, time_ratio?, ratio_range?}}},
    mode "minisg" alone, or "separate processes" and "one process" with vs_torch (ratio: minisg /
    torch, the median of the rounds' ratios; times: medians over rounds)."""
    _check_counts(repeats=(repeats, 1), rounds=(rounds, 1), warmup=(warmup, 0))
    backend.set_device(device)
    threads = parallel.get_threads()
    model = models.load("mnist_cnn", device=device)
    inputs = make_inputs()
    log(f"device {device}, minisg on {threads} threads, {rounds} rounds of (PyTorch, minisg) turns, each "
        f"the median of {repeats} runs after {warmup} warm-up runs")
    steps = minisg_workloads(model, inputs, device)
    results = {}
    for timer_class in ((TorchProcess, TorchInProcess) if vs_torch else (None,)):
        torch_timer = _open_torch(timer_class, model, inputs, device, log) if timer_class else None
        try:
            times = _time_turns(steps, torch_timer, repeats, warmup, rounds)
        finally:
            if torch_timer:
                torch_timer.close()
        results[torch_timer.mode if torch_timer else "minisg"] = _report(times, log)
        if torch_timer is None:
            break               # no torch: one minisg run is all there is to report
    if breakdown:
        breakdown_report(steps, {name: label for name, (label, _) in LABELS.items()}, device, repeats, log)
    return results
