"""`minisg explain PHOTO --model squeezenet1.1|PATH.onnx`: a sensitivity map of a photo on an
ImageNet network, as one figure.

The photo is centre-cropped and resized as the network's card says (networks.square_photo);
the map is computed on the network's own input (its channel order and scaling). The figure
shows the photo as the network sees it, the map (pixel methods: |M| summed over channels,
capped at the 99th percentile; CAM methods: the map over its maximum) and the map over the
photo, each with a colour bar; its caption states the method's settings, the class explained
and the network's top 5, and the credit lines of the photo (the course's photos) and network.

Class names come from the card's label file, looked for in $MINISG_IMAGENET_DIR, beside the
ONNX file, then in the networks cache (networks.networks_dir()); without one, classes are shown
by index and the figure says so. An ONNX file that is no known network gets a plain card: RGB
pixels / 255 at the model's own input size.
"""
import difflib
import os
import textwrap
from pathlib import Path

import numpy as np

from .. import files, methods, viz
from ..autograd import Tensor, no_grad
from ..methods._checks import listed
from ..models import networks
from . import demo

# Settings for 224x224 photos: the papers' where they give them; occlusion with 32-pixel patches
# (the digits' 4x4 patch, stride 2, would be 12,321 forward passes here).
PHOTO_SETTINGS = {**demo.METHOD_SETTINGS, "occlusion": dict(patch=32, stride=16)}


def is_photo_model(model):
    """True when --model names an ImageNet network (a card's name) or an ONNX file."""
    return str(model) in networks.CARDS or str(model).lower().endswith(".onnx")


def explain_photo(image_path, model="squeezenet1.1", method="smoothgrad", target=None, layer=None, out=None,
                  n=None, noise_level=None, steps=None, log=print):
    """A map of one photo on an ImageNet network; writes one figure (default PHOTO_METHOD.png
    beside the photo). target: None (the top class), an output index or a class name
    (str: a number is an index). Returns (path, maps, info) with info the facts the figure shows."""
    demo.check_method(method)
    image_path = files.as_path(image_path, "image")
    out = files.as_path(out, "--out") if out else image_path.with_name(image_path.stem + f"_{method}.png")
    viz.check_figure_path(out, "--out")
    settings = demo.method_settings(method, PHOTO_SETTINGS, layer=layer, n=n, noise_level=noise_level, steps=steps)
    model_text = str(model)
    if model_text not in networks.CARDS and not Path(model_text).is_file():
        raise FileNotFoundError(f"--model {model_text}: no such file; expected a path to an .onnx file or "
                                f"a known network ({', '.join(networks.CARDS)})")
    photo = demo.open_image(image_path, "image").convert("RGB")
    network = _load_network(model_text)
    card = network.card or _plain_card(network, model_text)
    names, label_note = _label_names(card, model_text)
    target_index = _target_index(card, target, names, label_note)
    if layer is not None:
        _check_layer(network, layer, model_text)
    if method in demo.LAYER_METHODS:
        settings.setdefault("layer", network.default_cam_layer)
    square = networks.square_photo(card, photo)
    x = networks.preprocess(card, square)
    with no_grad():
        logits = network(Tensor(x)).numpy()[0]
    if logits.shape != (card.num_classes,):
        raise ValueError(f"--model {model_text}: expected {card.num_classes} class scores per image, "
                         f"got output shape {tuple(logits.shape)}")
    top = networks.top_k(logits, card, k=min(5, card.num_classes), label_names=names or _index_names(card))
    shown = top[0][0] if target_index is None else target_index
    log(f"{card.name}: top {len(top)}: " + "; ".join(f"{_class_text(i, names)} {_percent(p)}" for i, _, p in top)
        + ("" if names else f" ({label_note})"))
    log(f"explaining {_class_text(shown, names)} with {method}"
        + (f" ({_settings_text(settings)})" if _settings_text(settings) else ""))
    maps = methods.METHODS[method](network, x, shown, **settings)
    info = dict(network=card.name, method=method, settings=settings, target=shown, top=top, names=names,
                label_note=label_note, credits=_credits(image_path, card),
                probability=float(_softmax(logits)[shown]))
    path = photo_figure(square, maps, method, info, out)
    log(f"wrote {path}")
    return path, maps, info


def _load_network(model_text):
    """The network by path, or by name: from $MINISG_IMAGENET_DIR when its file is there, else the
    cache (downloaded once where it can be). A file that is missing and cannot be fetched is an
    error naming --model."""
    from .. import models
    explicit = os.environ.get("MINISG_IMAGENET_DIR", "").strip()
    if model_text in networks.CARDS and explicit:
        candidate = Path(explicit).expanduser() / networks.CARDS[model_text].file_name
        if candidate.is_file():
            return models.load(str(candidate))
    return demo.load_model_option(model_text)


# ---------------------------------------------------------------------------- what the figure states

def _plain_card(network, path):
    """A card for an ONNX classifier that is no known network: RGB, pixels / 255, its input size."""
    shape = network.input_shape
    if shape is None or len(shape) != 3 or shape[0] != 3 or not all(isinstance(s, int) for s in shape[1:]) \
            or shape[1] != shape[2]:
        raise ValueError(f"--model {path}: expected an image classifier with input shape (N, 3, S, S), "
                         f"got {('N', *shape) if shape else 'an unknown shape'}")
    with no_grad():
        outputs = network(Tensor(np.zeros((1, *shape), dtype=network.dtype))).shape
    if len(outputs) != 2:
        raise ValueError(f"--model {path}: expected class scores of shape (N, classes), got {tuple(outputs)}")
    return networks.NetworkCard(
        name=Path(path).stem, file_name=Path(path).name, sha256="", size_bytes=0, input_size=shape[1],
        channel_order="RGB", mean=(0.0, 0.0, 0.0), scale=1 / 255, label_file="", num_classes=outputs[1],
        label_offset=0, url=None, licence="not a known network: see its file's licence",
        description="an ONNX file that is no known network: fed RGB pixels / 255")


def _label_names(card, model_text):
    """(names, "") from the first label file found, else (None, a note saying where it looked)."""
    if not card.label_file:
        return None, "no label file for this network: classes shown by index"
    folders = []
    explicit = os.environ.get("MINISG_IMAGENET_DIR", "").strip()
    if explicit:
        folders.append(Path(explicit).expanduser())
    if model_text.lower().endswith(".onnx"):
        folders.append(Path(model_text).resolve().parent)
    folders.append(networks.networks_dir())
    for folder in dict.fromkeys(folders):
        if (folder / card.label_file).is_file():
            return networks.labels(card, folder), ""
    looked = ", ".join(str(folder) for folder in dict.fromkeys(folders))
    return None, (f"label file {card.label_file} not found (looked in {looked}): "
                  f"classes shown by index")


def _index_names(card):
    return [f"class {i}" for i in range(card.num_classes)]


def _target_index(card, target, names, label_note):
    if target is None:
        return None
    if isinstance(target, bool) or not isinstance(target, (str, int, np.integer)):
        raise TypeError(f"--target: expected a class index (int) or a class name (str), got {target!r}")
    text = str(target).strip()
    try:
        if text.lstrip("-").isdigit():
            return networks.class_index(card, int(text), names or _index_names(card))
        if names is None:
            raise ValueError(f"a class name needs the label file ({label_note}); give the class index instead")
        return networks.class_index(card, text, names)
    except (IndexError, ValueError, TypeError) as exc:
        raise ValueError(f"--target: {exc}") from None


def _check_layer(network, layer, model_text):
    if not isinstance(layer, str):
        raise TypeError(f"--layer: expected a tensor name (str) of {model_text}, got {layer!r}")
    known = list(network.tensor_names)
    if layer in known:
        return
    close = difflib.get_close_matches(layer, known, n=5, cutoff=0.6)
    hint = f"close matches: {', '.join(close)}" if close else "no close matches"
    raise ValueError(f"--layer: unknown layer {layer!r} of {model_text}; {hint}; the default is "
                     f"{network.default_cam_layer!r}; valid layer names: {listed(known)}")


def _class_text(index, names):
    return f"{names[index]!r} ({index})" if names else f"class {index}"


def _settings_text(settings):
    parts = []
    for key, value in settings.items():
        if key == "seed":
            continue
        parts.append(f"noise {value:.0%}" if key == "noise_level" else f"{key} {value}" if key == "layer"
                     else f"{key}={value}")
    return ", ".join(parts)


def _credits(image_path, card):
    from ..classroom import imagenet
    lines = []
    name = Path(image_path).name
    if name in imagenet.CREDITS:
        lines.append(imagenet.CREDITS[name])
    lines.append(imagenet.NETWORK_CREDITS.get(card.name, f"Network: {card.name} ({card.licence})"))
    return lines


def _percent(p):
    return f"{p:.1%}" if p >= 0.001 or p == 0 else "<0.1%"


def _softmax(logits):
    scores = np.asarray(logits, dtype=np.float64)
    exp = np.exp(scores - scores.max())
    return exp / exp.sum()


# ---------------------------------------------------------------------------- the figure

def photo_figure(square, maps, method, info, out):
    """One figure: the photo as the network sees it | the map | the map over the photo, with
    colour bars, a title and a caption; written atomically. Returns the Path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.figure import Figure

    photo = np.asarray(square, dtype=np.float64) / 255.0
    cam = method in methods.CAM_METHODS
    if cam:
        values = np.asarray(maps, dtype=np.float64)[0]
        peak = values.max()
        values = np.clip(values / peak, 0, 1) if peak > 0 else np.zeros_like(values)
        map_title, bar_label, cmap = f"{method} map", "CAM / its maximum", "jet"
    else:
        values = viz.to_grayscale(np.asarray(maps)[0], mode="absolute")
        map_title, bar_label, cmap = f"|{method}| map", "|M| summed over channels, 99th-percentile cap", "gray"
    names = info["names"]
    target = info["target"]
    figure = Figure(figsize=(12.6, 6.6))
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(1, 7, width_ratios=[1, 0.1, 1, 0.05, 0.3, 1, 0.05], left=0.02, right=0.94,
                               top=0.83, bottom=0.33, wspace=0.05)
    axes = [figure.add_subplot(grid[0, i]) for i in (0, 2, 5)]
    bars = [figure.add_subplot(grid[0, i]) for i in (3, 6)]
    axes[0].imshow(photo)
    side = photo.shape[0]
    axes[0].set_title(f"the photo as {info['network']} sees it ({side}x{side})", fontsize=10)
    shown = axes[1].imshow(values, cmap=cmap, vmin=0, vmax=1)
    axes[1].set_title(map_title, fontsize=10)
    figure.colorbar(shown, cax=bars[0]).set_label(bar_label, fontsize=8)
    axes[2].imshow(photo.mean(axis=2), cmap="gray", vmin=0, vmax=1)
    heat = axes[2].imshow(values, cmap="jet", vmin=0, vmax=1, alpha=0.5 if cam else 0.9 * values)
    axes[2].set_title("the map over the photo (in grey)", fontsize=10)
    bar = figure.colorbar(ScalarMappable(norm=heat.norm, cmap=heat.cmap), cax=bars[1])
    bar.set_label("map value" + ("" if cam else " (opacity grows with it)"), fontsize=8)
    for axis in axes:
        axis.set_xticks([])
        axis.set_yticks([])
    settings = _settings_text(info["settings"])
    figure.suptitle(f"{method}" + (f" ({settings})" if settings else "") + f" on {info['network']}\n"
                    f"explaining {_class_text(target, names)}, probability {_percent(info['probability'])}",
                    fontsize=12)
    lines = [f"Top {len(info['top'])} of {info['network']}:"]
    lines += [f"  {rank}. {_class_text(i, names)}  {_percent(p)}" + ("   <- explained" if i == target else "")
              for rank, (i, _, p) in enumerate(info["top"], 1)]
    if target not in [i for i, _, _ in info["top"]]:
        lines.append(f"  explained: {_class_text(target, names)}  {_percent(info['probability'])}")
    figure.text(0.02, 0.27, "\n".join(lines), fontsize=9, va="top", ha="left", family="monospace")
    notes = list(info["credits"])
    if info["label_note"]:
        notes.insert(0, textwrap.fill(f"Note: {info['label_note']}", 70))
    figure.text(0.98, 0.03, "\n".join(notes), fontsize=8, va="bottom", ha="right", color="0.3",
                multialignment="right")
    return viz._save_atomically(figure, Path(out), dpi=100)
