"""The references of `minisg bench --network squeezenet1.1 --vs-torch`: PyTorch (+ Captum, torchcam)
and onnxruntime, on the very weights of the network's ONNX file.

PyTorch's SqueezeNet 1.1 is built here by hand (no torchvision): conv1 3x3/2 + relu, max pool
3x3/2 (ceil_mode, as Caffe's), fire modules (squeeze 1x1 conv + relu; expand 1x1 and 3x3 convs +
relu; concatenated), conv10 1x1 + relu, global average pooling. Its weights are the ONNX file's
initializers, copied by name (``fire2/squeeze1x1_w_0`` -> ``fire2.squeeze.weight``), float16
converted to float32. The trailing Softmax of the file is left out, as minisg leaves it out:
every model returns the (N, 1000) class scores.

onnxruntime runs the same file with its weights and tensors converted to float32 in memory
(the file itself is float16: its scores agree with float32 ones to ~1e-3 only), with the
pre-softmax scores ``pool10_1`` as an extra output. The file as is (float16) is timed too.
Nothing here imports minisg's engine.
"""
import warnings

import numpy as np

from .timing import median_seconds

FIRES = {  # name: (input channels, squeeze, expand 1x1, expand 3x3)
    "fire2": (64, 16, 64, 64), "fire3": (128, 16, 64, 64),
    "fire4": (128, 32, 128, 128), "fire5": (256, 32, 128, 128),
    "fire6": (256, 48, 192, 192), "fire7": (384, 48, 192, 192),
    "fire8": (384, 64, 256, 256), "fire9": (512, 64, 256, 256),
}
POOL_AFTER = ("conv1", "fire3", "fire5")   # max pool 3x3/2 after these
CAM_LAYER = "relu10"                       # the module whose output is minisg's 'conv10_2'
ONNX_LOGITS = "pool10_1"                   # the file's pre-softmax scores


def onnx_weights(path):
    """{initializer name: float32 array} of an ONNX file."""
    import onnx
    from onnx import numpy_helper
    graph = onnx.load(str(path)).graph
    return {t.name: numpy_helper.to_array(t).astype(np.float32) for t in graph.initializer}


def _torch_names():
    """{torch parameter name: ONNX initializer name}."""
    names = {"conv1.weight": "conv1_w_0", "conv1.bias": "conv1_b_0",
             "conv10.weight": "conv10_w_0", "conv10.bias": "conv10_b_0"}
    for fire in FIRES:
        for part, onnx_part in (("squeeze", "squeeze1x1"), ("expand1x1", "expand1x1"), ("expand3x3", "expand3x3")):
            names[f"{fire}.{part}.weight"] = f"{fire}/{onnx_part}_w_0"
            names[f"{fire}.{part}.bias"] = f"{fire}/{onnx_part}_b_0"
    return names


def build_squeezenet(torch, weights, device="cpu"):
    """SqueezeNet 1.1 (eval mode, float32) with `weights` (onnx_weights) copied in by name."""
    nn = torch.nn

    class Fire(nn.Module):
        def __init__(self, inputs, squeeze, expand1, expand3):
            super().__init__()
            self.squeeze = nn.Conv2d(inputs, squeeze, 1)
            self.expand1x1 = nn.Conv2d(squeeze, expand1, 1)
            self.expand3x3 = nn.Conv2d(squeeze, expand3, 3, padding=1)
            self.relu = nn.ReLU()

        def forward(self, x):
            s = self.relu(self.squeeze(x))
            return torch.cat([self.relu(self.expand1x1(s)), self.relu(self.expand3x3(s))], 1)

    class SqueezeNet11(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 3, stride=2)
            self.relu1 = nn.ReLU()
            for name, sizes in FIRES.items():
                setattr(self, name, Fire(*sizes))
            self.conv10 = nn.Conv2d(512, 1000, 1)
            self.relu10 = nn.ReLU()
            self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)

        def forward(self, x):
            x = self.pool(self.relu1(self.conv1(x)))
            for name in FIRES:
                x = getattr(self, name)(x)
                if name in POOL_AFTER:
                    x = self.pool(x)
            x = self.relu10(self.conv10(x))         # dropout: identity in eval mode
            return x.mean(dim=(2, 3))

    net = SqueezeNet11()
    parameters = dict(net.named_parameters())
    with torch.no_grad():
        for torch_name, onnx_name in _torch_names().items():
            value = torch.from_numpy(np.ascontiguousarray(weights[onnx_name]))
            if value.shape != parameters[torch_name].shape:
                raise ValueError(f"{onnx_name}: shape {tuple(value.shape)}, the network needs "
                                 f"{tuple(parameters[torch_name].shape)}")
            parameters[torch_name].copy_(value)
    return net.to(device).eval()


# ---------------------------------------------------------------------------- onnxruntime

def float32_model_bytes(path, extra_output=ONNX_LOGITS):
    """The ONNX file as float32 (initializers and tensor types), with `extra_output` as an output."""
    import onnx
    from onnx import TensorProto, numpy_helper
    model = onnx.load(str(path))
    graph = model.graph
    for index, tensor in enumerate(graph.initializer):
        if tensor.data_type == TensorProto.FLOAT16:
            graph.initializer[index].CopyFrom(
                numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float32), tensor.name))
    for info in list(graph.input) + list(graph.output) + list(graph.value_info):
        if info.type.tensor_type.elem_type == TensorProto.FLOAT16:
            info.type.tensor_type.elem_type = TensorProto.FLOAT
    if extra_output and extra_output not in [o.name for o in graph.output]:
        graph.output.append(onnx.helper.make_tensor_value_info(extra_output, TensorProto.FLOAT, None))
    return model.SerializeToString()


def onnxruntime_sessions(path):
    """{label: (session, run(x) -> output)} for float32 (in memory) and the file as is; {} without
    onnxruntime. Sessions keep onnxruntime's default threads."""
    try:
        import onnxruntime as ort
    except ImportError:
        return {}
    providers = ["CPUExecutionProvider"]
    fp32 = ort.InferenceSession(float32_model_bytes(path), providers=providers)
    fp16 = ort.InferenceSession(str(path), providers=providers)
    input_fp32, input_fp16 = fp32.get_inputs()[0].name, fp16.get_inputs()[0].name

    def run_fp32(x):
        return fp32.run([ONNX_LOGITS], {input_fp32: x})[0].reshape(len(x), -1)

    def run_fp16(x):
        return fp16.run(None, {input_fp16: x.astype(np.float16)})[0].reshape(len(x), -1)

    return {"onnxruntime": run_fp32, "onnxruntime fp16 file": run_fp16}


def onnxruntime_version():
    import onnxruntime
    return onnxruntime.__version__


# ---------------------------------------------------------------------------- PyTorch workloads

def logits(torch, net, x):
    with torch.no_grad():
        return net(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def gradcam_pp_torch(torch, net, x, target):
    """Grad-CAM++ at relu10 (closed form, as minisg's), upsampled bilinearly to the input size."""
    taps = {}
    handle = net.relu10.register_forward_hook(lambda module, inputs, output: taps.update(A=output))
    try:
        scores = net(x)
    finally:
        handle.remove()
    A = taps["A"]
    (g,) = torch.autograd.grad(scores[:, target].sum(), A)
    A, g2 = A.detach(), g * g
    denominator = 2 * g2 + A.sum(dim=(2, 3), keepdim=True) * g2 * g
    valid = (g > 0) & (denominator > 0)
    alpha = torch.where(valid, g2 / torch.where(valid, denominator, torch.ones_like(denominator)),
                        torch.zeros_like(g))
    weights = (alpha * g.clamp(min=0)).sum(dim=(2, 3))
    cam = (weights[:, :, None, None] * A).sum(dim=1, keepdim=True).clamp(min=0)
    return torch.nn.functional.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0]


def workloads(torch, net, x, target, stdev, n=50, batch_size=25):
    """({name: closure}, {name: what it runs}): the PyTorch side of each workload PyTorch can run."""
    image = torch.from_numpy(np.ascontiguousarray(x))

    def forward():
        with torch.no_grad():
            net(image)

    steps, labels = {"forward": forward}, {"forward": "PyTorch, no_grad"}
    try:
        from torchcam.methods import GradCAMpp

        def gradcam_pp():
            with GradCAMpp(net, CAM_LAYER) as extractor:
                cam = extractor(class_idx=target, scores=net(image))[0]
            torch.nn.functional.interpolate(cam[:, None], size=image.shape[2:], mode="bilinear",
                                            align_corners=False)
        labels["gradcam_pp"] = "torchcam GradCAMpp + bilinear upsampling"
    except ImportError:
        def gradcam_pp():
            gradcam_pp_torch(torch, net, image, target)
        labels["gradcam_pp"] = "Grad-CAM++ written in PyTorch"
    steps["gradcam_pp"] = gradcam_pp
    try:
        from captum.attr import NoiseTunnel, Saliency
    except ImportError:
        return steps, labels
    saliency = Saliency(net)
    tunnel = NoiseTunnel(Saliency(net))

    quiet = "Input Tensor 0 did not already require gradients"   # Captum's note: it sets them itself

    def vanilla_gradient():
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=quiet)
            saliency.attribute(image, target=target, abs=False)

    def smoothgrad():
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=quiet)
            tunnel.attribute(image, nt_type="smoothgrad", nt_samples=n, nt_samples_batch_size=batch_size,
                             stdevs=stdev, target=target, abs=False)

    steps.update(vanilla_gradient=vanilla_gradient, smoothgrad=smoothgrad)
    labels.update(vanilla_gradient="Captum Saliency",
                  smoothgrad=f"Captum NoiseTunnel(Saliency), batches of {batch_size}")
    return steps, labels


class Reference:
    """One reference library's timed workloads: .steps {name: closure}, .labels, .header text."""

    def __init__(self, name, steps, labels, header):
        self.name, self.steps, self.labels, self.header = name, steps, labels, header

    def seconds(self, workload, repeats, warmup):
        return median_seconds(self.steps[workload], repeats, warmup)


def torch_reference(path, x, target, stdev, n=50, batch_size=25):
    """(Reference, net) for PyTorch in this process, or (None, reason) without torch."""
    try:
        import torch
    except ImportError:
        return None, "torch is not installed (pip install torch captum to compare)"
    net = build_squeezenet(torch, onnx_weights(path))
    steps, labels = workloads(torch, net, x, target, stdev, n, batch_size)
    extras = []
    for module in ("captum", "torchcam"):
        try:
            extras.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            extras.append(f"{module} not installed")
    header = f"PyTorch {torch.__version__} ({torch.get_num_threads()} threads), {', '.join(extras)}"
    return Reference("torch", steps, labels, header), net
