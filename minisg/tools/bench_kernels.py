"""Time every kernel on the shapes of the MNIST model, optionally next to PyTorch.

    python -m minisg.tools.bench_kernels                 # cpu, float32, ours only
    python -m minisg.tools.bench_kernels --torch         # plus PyTorch at the same thread count
    python -m minisg.tools.bench_kernels --device gpu --torch

The model: conv5x5 1->32 SAME, relu, maxpool 2x2, conv5x5 32->64 SAME, relu, maxpool 2x2, fc,
trained at batch 128; saliency maps at batch 50 also need conv1's input gradient. PyTorch runs in
a separate process (a process has one OpenMP runtime: neither library's threads should wait on
the other's). minisg's kernels run with one Numba thread each (minisg.kernels.cpu_threads) and
BLAS with its own threads.
Shared machines are noisy: the table shows the minimum and the median of the repeats; compare
minima.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

from .timing import seconds_per_run

CONVS = {  # name: (x shape, w shape); padding 2, stride 1
    "conv1": ((128, 1, 28, 28), (32, 1, 5, 5)),
    "conv2": ((128, 32, 14, 14), (64, 32, 5, 5)),
    "conv1@50": ((50, 1, 28, 28), (32, 1, 5, 5)),
}
POOLS = {"pool1": (128, 32, 28, 28), "pool2": (128, 64, 14, 14)}
# what one training step runs (conv1's input gradient is not needed there)
TRAIN_STEP = ["conv1 fwd", "conv1 bwd_w", "pool1 fwd", "pool1 bwd", "conv2 fwd", "conv2 bwd_in",
              "conv2 bwd_w", "pool2 fwd", "pool2 bwd"]


def _timer(sync, repeats, warmup=2):
    def measure(fn):
        times = seconds_per_run(fn, repeats, warmup, sync)
        return 1e3 * min(times), 1e3 * float(np.median(times))
    return measure


def _cases(xp, dtype):
    """The benchmark's arrays, the same seed for both libraries."""
    rng = np.random.default_rng(0)
    data = {}
    for name, (xs, ws) in CONVS.items():
        x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
        gy = rng.standard_normal((xs[0], ws[0]) + xs[2:]).astype(dtype)
        data[name] = tuple(xp.asarray(a) for a in (x, w, gy))
    for name, xs in POOLS.items():
        x = rng.standard_normal(xs).astype(dtype)
        gy = rng.standard_normal(xs[:2] + (xs[2] // 2, xs[3] // 2)).astype(dtype)
        data[name] = tuple(xp.asarray(a) for a in (x, gy))
    return data


def time_minisg(device, dtype, repeats):
    if device == "gpu":
        import cupy as xp
        from minisg.kernels import gpu as k
        sync = xp.cuda.Device().synchronize
    else:
        xp = np
        from minisg.kernels import cpu as k
        sync = lambda: None  # noqa: E731
    measure = _timer(sync, repeats)
    data = _cases(xp, dtype)
    out = {}
    for name in CONVS:
        x, w, gy = data[name]
        out[f"{name} fwd"] = measure(lambda: k.conv2d_forward(x, w, (1, 1), (2, 2)))
        out[f"{name} bwd_in"] = measure(lambda: k.conv2d_backward_input(gy, w, x.shape[2:], (1, 1), (2, 2)))
        out[f"{name} bwd_w"] = measure(lambda: k.conv2d_backward_weight(x, gy, w.shape[2:], (1, 1), (2, 2)))
    for name in POOLS:
        x, gy = data[name]
        _, argmax = k.max_pool2d_forward(x, (2, 2), (2, 2))
        out[f"{name} fwd"] = measure(lambda: k.max_pool2d_forward(x, (2, 2), (2, 2)))
        out[f"{name} bwd"] = measure(lambda: k.max_pool2d_scatter(gy, argmax, x.shape[2:]))
        out[f"{name} gather"] = measure(lambda: k.max_pool2d_gather(x, argmax))
    return out


def time_torch(device, dtype, repeats, threads):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    dev = "cuda" if device == "gpu" else "cpu"
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    measure = _timer(sync, repeats)
    data = _cases(np, dtype)
    out = {}
    for name in CONVS:
        x, w, gy = (torch.from_numpy(a).to(dev) for a in data[name])
        out[f"{name} fwd"] = measure(lambda: F.conv2d(x, w, padding=2))
        out[f"{name} bwd_in"] = measure(lambda: torch.nn.grad.conv2d_input(x.shape, w, gy, padding=2))
        out[f"{name} bwd_w"] = measure(lambda: torch.nn.grad.conv2d_weight(x, w.shape, gy, padding=2))
    for name in POOLS:
        x, gy = (torch.from_numpy(a).to(dev) for a in data[name])
        xr = x.clone().requires_grad_(True)
        y = F.max_pool2d(xr, 2, 2)
        out[f"{name} fwd"] = measure(lambda: F.max_pool2d(x, 2, 2, return_indices=True))
        out[f"{name} bwd"] = measure(lambda: torch.autograd.grad(y, xr, gy, retain_graph=True))
    return out


def _torch_in_subprocess(args, threads):
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "minisg.tools.bench_kernels", "--torch-worker", "--device", args.device,
           "--dtype", args.dtype, "--repeats", str(args.repeats), "--threads", str(threads)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        print("PyTorch run failed:\n" + done.stderr[-2000:])
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None, help="PyTorch threads (default: cores)")
    parser.add_argument("--torch", action="store_true", help="also time PyTorch (separate process)")
    parser.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    dtype = np.dtype(args.dtype)
    threads = args.threads or len(os.sched_getaffinity(0))
    if args.torch_worker:
        print(json.dumps(time_torch(args.device, dtype, args.repeats, threads)))
        return
    ours = time_minisg(args.device, dtype, args.repeats)
    theirs = _torch_in_subprocess(args, threads) if args.torch else None
    print(f"{args.device}, {args.dtype}, {threads} threads; ms as min / median of {args.repeats}")
    header = f"{'kernel':<18}{'minisg':>16}"
    if theirs:
        header += f"{'torch':>16}{'ratio(min)':>12}"
    print(header)
    for key, (lo, med) in ours.items():
        line = f"{key:<18}{lo:>8.2f} /{med:>6.2f}"
        if theirs and key in theirs:
            tlo, tmed = theirs[key]
            line += f"{tlo:>8.2f} /{tmed:>6.2f}{lo / tlo:>12.2f}"
        print(line)
    total = sum(ours[k][0] for k in TRAIN_STEP)
    line = f"{'train-step convs':<18}{total:>8.2f}        "
    if theirs:
        ttotal = sum(theirs[k][0] for k in TRAIN_STEP)
        line += f"{ttotal:>8.2f}        {total / ttotal:>12.2f}"
    print(line + "   (sum of minima: " + ", ".join(TRAIN_STEP) + ")")


if __name__ == "__main__":
    main()
