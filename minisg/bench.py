"""Throughput benchmarks, with PyTorch (and Captum) side by side when they are installed.

Workloads on the paper's MNIST CNN:
  train                 forward + backward + Adam step, batch 128, random data
  saliency              forward + gradient of the target logit w.r.t. the input, batch 50
  smoothgrad            SmoothGrad, n = 50 noisy copies of one MNIST digit, in one batch of 50
  integrated_gradients  Integrated Gradients, 50 path points of one digit, in one batch of 50
PyTorch runs the same workloads on the same weights and inputs in a separate process
(bench_torch.py) with the same thread count, and the ratio is minisg time / PyTorch time.
Nothing here is a test: speed is only ever measured, never asserted.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from . import backend, methods, models
from . import functional as F
from .autograd import Tensor, grad
from .optim import Adam

LABELS = {
    "train": ("train (fwd+bwd+Adam), batch 128", 128),
    "saliency": ("saliency (fwd + input gradient), batch 50", 50),
    "smoothgrad": ("SmoothGrad n=50, one digit (vs Captum NoiseTunnel)", 1),
    "integrated_gradients": ("Integrated Gradients 50 steps, one digit (vs Captum)", 1),
}


def median_seconds(step, repeats, warmup):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def _sync(device):
    if device == "gpu":
        backend.cupy_or_error().cuda.runtime.deviceSynchronize()


def make_inputs(seed=0):
    """Random training/saliency batches and one real test digit, shared with PyTorch."""
    from . import data
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
    """Threads Numba uses (NUMBA_NUM_THREADS, default: all cores)."""
    from .kernels import cpu  # noqa: F401  first: it sets the OpenMP wait policy before Numba's threads start
    import numba
    return numba.get_num_threads()


def torch_timings(model, inputs, threads, device, repeats, warmup):
    """Run bench_torch.py in a clean process; {} with a note when torch is missing."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "inputs.npz")
        np.savez(path, **model.state_dict(), **inputs)
        env = dict(os.environ)
        from .kernels import cpu
        if getattr(cpu, "_SET_OMP_WAIT_POLICY", False):
            env.pop("OMP_WAIT_POLICY", None)  # minisg's own setting, not the user's: not for torch
        command = [sys.executable, "-m", "minisg.bench_torch", "--inputs", path, "--threads", str(threads),
                   "--device", device, "--repeats", str(repeats), "--warmup", str(warmup)]
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench_torch failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(device="cpu", vs_torch=False, repeats=10, warmup=3, log=print):
    """Print and return {workload: {minisg_ms, torch_ms?, time_ratio?}} (ratio: minisg / torch)."""
    backend.set_device(device)
    threads = threads_in_use()
    model = models.load("mnist_cnn", device=device)
    inputs = make_inputs()
    log(f"device {device}, {threads} threads, median of {repeats} runs after {warmup} warm-up runs")
    theirs = torch_timings(model, inputs, threads, device, repeats, warmup) if vs_torch else {}
    if "error" in theirs:
        log(f"PyTorch: {theirs['error']} (pip install torch to compare); measuring minisg alone")
    elif theirs:
        captum = f", Captum {theirs['captum']}" if "captum" in theirs else ", Captum not installed"
        log(f"PyTorch {theirs['version']}{captum}, same weights and inputs, separate process")
    results = {}
    for name, step in minisg_workloads(model, inputs, device).items():
        label, images = LABELS[name]
        seconds = median_seconds(step, repeats, warmup)
        row = {"minisg_ms": 1000 * seconds, "minisg_images_per_s": images / seconds}
        line = f"{label:54s} minisg {1000 * seconds:8.1f} ms ({images / seconds:8.1f} img/s)"
        if name in theirs:
            row.update(torch_ms=1000 * theirs[name], time_ratio=seconds / theirs[name])
            line += f" | torch {row['torch_ms']:8.1f} ms | minisg/torch time {row['time_ratio']:.2f}x"
        log(line)
        results[name] = row
    return results
