"""`minisg bench --network squeezenet1.1`: the minisg side runs, and the PyTorch-built SqueezeNet
is the ONNX file's network (skipped, with the reason, where the file or torch is missing)."""
import pytest

from imagenet_files import require


def test_minisg_side_runs_on_the_real_file():
    pytest.importorskip("onnx")
    from minisg.tools import bench_networks
    path = require("squeezenet1.1_fp16.onnx")
    lines = []
    # n=10 keeps it short; the workloads are those of the benchmark (n=50 there)
    results = bench_networks.run(network_file=path, repeats=1, warmup=0, rounds=1, n=10, batch_size=10,
                                 log=lines.append)
    assert set(results) == {"forward", "vanilla_gradient", "smoothgrad", "gradcam_pp"}
    assert all(row["minisg_ms"] > 0 and row["references"] == {} for row in results.values())
    assert any("conv10_2" in line for line in lines)


def test_torch_squeezenet_equals_onnxruntime_and_minisg():
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from minisg import parallel
    from minisg.models import networks
    from minisg.models.onnx_import import load_onnx
    from minisg.tools import bench_networks, bench_networks_torch as theirs
    path = require("squeezenet1.1_fp16.onnx")
    card = networks.card("squeezenet1.1")
    net = theirs.build_squeezenet(torch, theirs.onnx_weights(path))
    onnxruntime = theirs.onnxruntime_sessions(path)["onnxruntime"]   # the file takes one image at a time
    model = load_onnx(path, card=card)
    for seed in (0, 1):
        x = bench_networks.make_input(card, seed=seed)
        torch_scores, ort_scores, ours = theirs.logits(torch, net, x), onnxruntime(x), parallel.logits(model, x)
        assert torch_scores.shape == ort_scores.shape == (1, 1000)
        assert bench_networks.relative_difference(torch_scores, ort_scores) < 1e-4
        assert bench_networks.relative_difference(ours, ort_scores) < 1e-4
    # the hand-written Grad-CAM++ sees the same layer as minisg's default (conv10_2)
    assert theirs.gradcam_pp_torch(torch, net, torch.from_numpy(x[:1]), int(ours[0].argmax())).shape == (1, 224, 224)
