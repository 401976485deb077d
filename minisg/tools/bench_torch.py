"""The PyTorch side of `minisg bench --vs-torch`: in its own process, and (setup) in minisg's.

In its own process it loads the very weights minisg uses from an .npz and then serves timings,
so that minisg.tools.bench can take turns with it, workload by workload (a shared machine's
speed drifts within a minute; turns put both libraries under the same drift):

    first line out:  {"version": ..., "threads": ..., "captum": ..., "workloads": [...]}
                     (or {"error": ...})
    each line in:    "<workload> <repeats> <warmup>"   ->   out: {"<workload>": median seconds}
    line "quit" (or end of input) ends it.

Captum's NoiseTunnel(Saliency) and IntegratedGradients are timed too when Captum is installed.
Of minisg, only the timing helper is used here (importing the package loads no kernel).
"""
import argparse
import json
import sys

import numpy as np

from .timing import median_seconds


def build_net(torch, weights, device):
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(3136, 1024), torch.nn.ReLU(), torch.nn.Dropout(0.5),
        torch.nn.Linear(1024, 10)).to(device)
    layers = [m for m in net if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        for name, layer in zip(["conv1", "conv2", "fc1", "fc2"], layers):
            layer.weight.copy_(torch.from_numpy(weights[f"{name}.weight"]))
            layer.bias.copy_(torch.from_numpy(weights[f"{name}.bias"]))
    return net


def workloads(torch, net, inputs, device):
    """name -> closure, the same workloads as minisg.tools.bench (same inputs, same batch sizes)."""
    x_train = torch.from_numpy(inputs["x_train"]).to(device)
    y_train = torch.from_numpy(inputs["y_train"]).to(device)
    x_sal = torch.from_numpy(inputs["x_saliency"]).to(device)
    targets = torch.from_numpy(inputs["targets"]).to(device)
    digit = torch.from_numpy(inputs["digit"]).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)

    def train_step():
        net.train()
        loss = torch.nn.functional.cross_entropy(net(x_train), y_train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def saliency_step():
        net.eval()
        x = x_sal.clone().requires_grad_(True)
        torch.autograd.grad(net(x)[torch.arange(len(targets)), targets].sum(), x)

    steps = {"train": train_step, "saliency": saliency_step}
    try:
        from captum.attr import IntegratedGradients, NoiseTunnel, Saliency
    except ImportError:
        return steps
    target = int(inputs["digit_target"])
    noise_tunnel = NoiseTunnel(Saliency(net))
    integrated = IntegratedGradients(net)
    stdev = float(inputs["smoothgrad_stdev"])

    def smoothgrad_step():
        net.eval()
        noise_tunnel.attribute(digit, nt_type="smoothgrad", nt_samples=50, nt_samples_batch_size=50,
                               stdevs=stdev, target=target, abs=False)

    def integrated_gradients_step():
        net.eval()
        integrated.attribute(digit, target=target, n_steps=50, internal_batch_size=50)

    steps.update(smoothgrad=smoothgrad_step, integrated_gradients=integrated_gradients_step)
    return steps


def serve(steps, sync, lines, reply):
    """Answer timing requests (see the module docstring) until "quit" or the end of `lines`."""
    for line in lines:
        words = line.split()
        if not words or words[0] == "quit":
            break
        name, repeats, warmup = words[0], int(words[1]), int(words[2])
        reply({name: median_seconds(steps[name], repeats, warmup, sync)})


def setup(arrays, device):
    """(workloads, sync, header) for the weights and inputs in `arrays`; header {"error": ...}
    when torch is not installed. PyTorch keeps its default thread settings, as its users do."""
    try:
        import torch
    except ImportError:
        return {}, None, {"error": "torch is not installed"}
    torch_device = "cuda" if device == "gpu" else "cpu"
    net = build_net(torch, arrays, torch_device)
    sync = torch.cuda.synchronize if torch_device == "cuda" else (lambda: None)
    steps = workloads(torch, net, arrays, torch_device)
    header = {"version": torch.__version__, "threads": torch.get_num_threads(), "workloads": list(steps)}
    try:
        import captum
        header["captum"] = captum.__version__
    except ImportError:
        pass
    return steps, sync, header


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", required=True, help=".npz with weights and inputs")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    def reply(message):
        print(json.dumps(message), flush=True)

    with np.load(args.inputs) as archive:
        arrays = {k: archive[k] for k in archive.files}
    steps, sync, header = setup(arrays, args.device)
    reply(header)
    if "error" not in header:
        serve(steps, sync, sys.stdin, reply)
    return 0


if __name__ == "__main__":
    sys.exit(main())
