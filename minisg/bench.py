"""Throughput benchmarks (images/second), with PyTorch side by side when it is installed.

Two workloads on the paper's MNIST CNN, on random data:
  train     forward + backward + Adam step, batch 128
  saliency  forward + gradient of the target logit with respect to the input, batch 50
PyTorch (if importable) runs the same model with the same weights and thread count in the
same process, so the ratio compares like with like. Nothing here is a test: speed is only
ever measured, never asserted.
"""
import os
import time

import numpy as np

from . import backend, models
from . import functional as F
from .autograd import Tensor, grad
from .optim import Adam


def _time_it(step, repeats, warmup):
    """Median seconds of `step()` over `repeats` runs after `warmup` runs."""
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


def minisg_steps(device, batch_train=128, batch_saliency=50, seed=0):
    """Closures for one training step and one saliency step in minisg."""
    rng = np.random.default_rng(seed)
    xp = backend.xp_for(device)
    model = models.mnist_cnn(seed=seed).to(device)
    optimizer = Adam(model.parameters(), lr=1e-4)
    x_train = Tensor(xp.asarray(rng.random((batch_train, 1, 28, 28), dtype=np.float32)))
    y_train = rng.integers(0, 10, batch_train)
    x_sal = xp.asarray(rng.random((batch_saliency, 1, 28, 28), dtype=np.float32))
    targets = np.asarray(rng.integers(0, 10, batch_saliency))

    def train_step():
        model.train()
        loss = F.cross_entropy(model(x_train), y_train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        _sync(device)

    def saliency_step():
        model.eval()
        x = Tensor(x_sal, requires_grad=True)
        logits = model(x)
        score = logits[np.arange(batch_saliency), targets].sum()
        grad(score, x)
        _sync(device)

    return model, train_step, saliency_step


def torch_steps(model, threads, batch_train=128, batch_saliency=50, seed=0, device="cpu"):
    """The same model and workloads in PyTorch, or None when torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    dev = "cuda" if device == "gpu" else "cpu"
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(3136, 1024), torch.nn.ReLU(), torch.nn.Dropout(0.5),
        torch.nn.Linear(1024, 10)).to(dev)
    state = model.state_dict()
    names = ["conv1", "conv2", "fc1", "fc2"]
    torch_layers = [m for m in net if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        for name, layer in zip(names, torch_layers):
            layer.weight.copy_(torch.from_numpy(state[f"{name}.weight"]))
            layer.bias.copy_(torch.from_numpy(state[f"{name}.bias"]))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    rng = np.random.default_rng(seed)
    x_train = torch.from_numpy(rng.random((batch_train, 1, 28, 28), dtype=np.float32)).to(dev)
    y_train = torch.from_numpy(rng.integers(0, 10, batch_train)).to(dev)
    x_sal = torch.from_numpy(rng.random((batch_saliency, 1, 28, 28), dtype=np.float32)).to(dev)
    targets = torch.from_numpy(rng.integers(0, 10, batch_saliency)).to(dev)

    def sync():
        if dev == "cuda":
            torch.cuda.synchronize()

    def train_step():
        net.train()
        loss = torch.nn.functional.cross_entropy(net(x_train), y_train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        sync()

    def saliency_step():
        net.eval()
        x = x_sal.clone().requires_grad_(True)
        score = net(x)[torch.arange(batch_saliency), targets].sum()
        torch.autograd.grad(score, x)
        sync()

    return train_step, saliency_step, torch.__version__


def threads_in_use():
    """Threads Numba uses (NUMBA_NUM_THREADS, default: all cores)."""
    try:
        import numba
        return numba.get_num_threads()
    except ImportError:
        return os.cpu_count()


def run(device="cpu", vs_torch=False, repeats=10, warmup=3, log=print):
    """Print and return {workload: {"minisg": img/s, "torch": img/s?, "ratio": torch_time/minisg_time?}}."""
    backend.set_device(device)
    threads = threads_in_use()
    model, train_step, saliency_step = minisg_steps(device)
    results = {}
    workloads = [("train (fwd+bwd+Adam), batch 128", 128, train_step),
                 ("saliency (fwd + input gradient), batch 50", 50, saliency_step)]
    torch_parts = torch_steps(model, threads, device=device) if vs_torch else None
    if vs_torch and torch_parts is None:
        log("PyTorch is not installed: measuring minisg alone (pip install torch to compare)")
    log(f"device {device}, {threads} threads, median of {repeats} runs after {warmup} warm-up runs")
    for index, (label, batch, step) in enumerate(workloads):
        seconds = _time_it(step, repeats, warmup)
        row = {"minisg": batch / seconds, "minisg_ms": 1000 * seconds}
        line = f"{label:44s} minisg {row['minisg']:9.1f} img/s ({row['minisg_ms']:.1f} ms)"
        if torch_parts is not None:
            torch_seconds = _time_it(torch_parts[index], repeats, warmup)
            row.update(torch=batch / torch_seconds, torch_ms=1000 * torch_seconds,
                       time_ratio=seconds / torch_seconds)
            line += (f" | torch {torch_parts[2]} {row['torch']:9.1f} img/s ({row['torch_ms']:.1f} ms)"
                     f" | minisg time / torch time = {row['time_ratio']:.2f}x")
        log(line)
        results[label] = row
    return results
