"""`minisg demo` (every method on a few test digits, one figure) and `minisg explain` (your image).

Pixel maps are shown the paper's way (absolute value, capped at the 99th percentile); CAM
maps as a heatmap over the digit. Each method is timed on the whole batch.
"""
import time
from pathlib import Path

import numpy as np

from .. import data, methods, models, viz
from ..models import networks
from ..autograd import Tensor, no_grad

# the papers' settings where they give them (SmoothGrad: n=50, 10-20% noise; SGCAM++: n=5, 0.3);
# occlusion's are its defaults, listed so that the figure states them
METHOD_SETTINGS = {
    "smoothgrad": dict(n=50, noise_level=0.15, seed=0),
    "integrated_gradients": dict(steps=50),
    "smooth_gradcam_pp": dict(n=5, noise_level=0.3, seed=0),
    "occlusion": dict(patch=4, stride=2),
}


def first_digits(count):
    """Indices of the first test images of classes 0, 1, 2, ... (one per class)."""
    _, labels = data.load_mnist("test")
    return [int(np.flatnonzero(labels == digit)[0]) for digit in range(count)]


def picture_of(name, maps, images):
    """What a figure cell shows for one method's maps."""
    if name in methods.CAM_METHODS:
        return viz.overlay_cam(images, maps)
    return viz.to_grayscale(maps, mode="absolute")


def panel_title(name, seconds):
    """A column's title: the method's name, its settings (METHOD_SETTINGS) and its time, e.g.
    "SmoothGrad\nn = 50, 15% noise\n0.61 s"."""
    return f"{viz.method_title(name, METHOD_SETTINGS.get(name))}\n{seconds:.2f} s"


def colour_scale_of(name):
    """What the colour bar under a method's column says (see picture_of)."""
    return viz.CAM_SCALE if name in methods.CAM_METHODS else viz.P99_LABEL


def warm_up(model, images, names, extra=None):
    """Run each method once on one image, so that timings exclude compiling the kernels."""
    for name in names:
        methods.METHODS[name](model, images[:1], **_settings(name, extra))


def _settings(name, extra):
    return {**METHOD_SETTINGS.get(name, {}), **(extra or {}).get(name, {})}


def compute_all(model, images, names=None, log=print, extra=None):
    """{method: maps} and {method: seconds} for every (or the named) method on `images`.

    The times exclude compilation: every method runs once on one image first.
    """
    names = names or list(methods.METHODS)
    warm_up(model, images, names, extra)
    maps, seconds = {}, {}
    for name in names:
        settings = _settings(name, extra)
        started = time.perf_counter()
        maps[name] = methods.METHODS[name](model, images, **settings)
        seconds[name] = time.perf_counter() - started
        log(f"  {name:22s} {seconds[name]:7.2f} s")
    return maps, seconds


def load_model_option(name, option="--model", device=None):
    """models.load(name) for a command's option: a name or file that is no model (missing, not
    a checkpoint, non-finite weights, bad meta ...) is one error that starts with the option."""
    try:
        return models.load(name, device=device)
    except (ValueError, FileNotFoundError, networks.NetworkFileError) as exc:   # CheckpointError, OnnxImportError
        raise ValueError(f"{option} {name}: {exc}") from None


def run_demo(out="minisg_demo.png", model_name="mnist_cnn", count=4, log=print):
    """Every method on `count` test digits (classes 0..count-1); writes one comparison PNG."""
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or not 1 <= count <= 10:
        raise ValueError(f"--count: expected an integer from 1 to 10, got {count!r}")
    viz.check_figure_path(out, "--out")
    model = load_model_option(model_name)
    images, labels = data.load_mnist("test")
    chosen = first_digits(count)
    x = images[chosen]
    log(f"model {model_name} (test accuracy {model.meta.get('test_accuracy', float('nan')):.4f}); "
        f"test digits {chosen} (labels {labels[chosen].tolist()}); time per method for all {count}:")
    maps, seconds = compute_all(model, x, log=log)
    columns = {name: picture_of(name, value, x) for name, value in maps.items()}
    titles = [panel_title(name, seconds[name]) for name in columns]          # compilation excluded
    path = viz.figure_grid(x, columns, out, titles=titles,
                           row_labels=[f"label {label}" for label in labels[chosen]],
                           colorbars={name: colour_scale_of(name) for name in columns},
                           title=f"Every method on {model_name} (pixel maps: |M|, 99th-percentile cap; CAMs over the "
                                 f"digit); time for all {count} digit{'s' if count > 1 else ''}")
    log(f"wrote {path}")
    return path, seconds


def read_digit_image(path, invert=None, log=print):
    """A user's image -> (1, 1, 28, 28) float32 in [0, 1], white digit on black like MNIST.

    Colour becomes grayscale. Polarity: `invert` True/False, or None to decide from the border
    (a bright border means a dark digit on white paper, which gets inverted). The digit's ink is
    cropped, scaled to fit 20x20 and centred in 28x28, as MNIST's own preprocessing did.
    """
    path = Path(path)
    gray = np.asarray(open_image(path, "image").convert("L"), dtype=np.float32) / 255.0
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if invert is None:
        invert = bool(border.mean() > 0.5)
        log(f"note: {'dark digit on a light background: inverted' if invert else 'light digit on a dark background: kept'}"
            f" (border mean {border.mean():.2f}; override with --invert/--no-invert)")
    if invert:
        gray = 1.0 - gray
    return _centre_like_mnist(gray, path, log)


# Larger images are refused before they are decoded (a 50-megapixel photo is 200 MB as float32).
MAX_IMAGE_PIXELS = 50_000_000


def open_image(path, argument="image"):
    """A PIL image, fully decoded, or ValueError naming `argument` and what is wrong with the file."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{argument} {path}: does not exist")
    if path.is_dir():
        raise ValueError(f"{argument} {path}: is a folder; expected an image file (PNG, JPEG, ...)")
    try:
        with Image.open(path) as opened:
            width, height = opened.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ValueError(f"{argument} {path}: {width}x{height} is {width * height:,} pixels; "
                                 f"expected at most {MAX_IMAGE_PIXELS:,} (shrink it first)")
            opened.load()
            return opened.copy()
    except Image.DecompressionBombError:  # PIL refuses to open it at all
        raise ValueError(f"{argument} {path}: more than {MAX_IMAGE_PIXELS:,} pixels; expected at most "
                         f"that (shrink it first)") from None
    except UnidentifiedImageError:
        raise ValueError(f"{argument} {path}: not a readable image file (PNG, JPEG, ...)") from None
    except OSError as exc:  # truncated or damaged data, unreadable file
        raise ValueError(f"{argument} {path}: cannot be read ({exc})") from None


def _centre_like_mnist(gray, path, log):
    from PIL import Image

    rows, cols = np.nonzero(gray > 0.2)
    if rows.size == 0:
        raise ValueError(f"image {path}: found no ink (no pixel brighter than 0.2 after polarity)")
    crop = gray[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    scale = 20.0 / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    resized = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize(size, Image.LANCZOS),
                         dtype=np.float32) / 255.0
    canvas = np.zeros((28, 28), dtype=np.float32)
    top, left = (28 - resized.shape[0]) // 2, (28 - resized.shape[1]) // 2
    canvas[top:top + resized.shape[0], left:left + resized.shape[1]] = resized
    if gray.shape != (28, 28):
        log(f"note: resized from {gray.shape[1]}x{gray.shape[0]} to 28x28 (ink cropped, fitted to 20x20, centred)")
    return canvas[None, None]


# The command-line options that change a method's settings, and the methods that take each.
SETTING_OPTIONS = {"n": ("--n", ("smoothgrad", "smooth_gradcam_pp")),
                   "noise_level": ("--noise-level", ("smoothgrad", "smooth_gradcam_pp")),
                   "steps": ("--steps", ("integrated_gradients",))}
LAYER_METHODS = (*sorted(methods.CAM_METHODS), "guided_gradcam")


def check_method(method):
    if method not in methods.METHODS:
        raise ValueError(f"--method: expected one of {sorted(methods.METHODS)}, got {method!r}")
    return method


def method_settings(method, defaults=None, layer=None, **options):
    """The settings `method` runs with: `defaults` (METHOD_SETTINGS), then the options given
    (n=, noise_level=, steps=; None: not given), then layer=. An option the method does not take
    is an error naming it, as is a value out of range."""
    settings = dict((METHOD_SETTINGS if defaults is None else defaults).get(method, {}))
    for key, value in options.items():
        if value is None:
            continue
        flag, takers = SETTING_OPTIONS[key]
        if method not in takers:
            raise ValueError(f"{flag} applies to {', '.join(takers)}, not --method {method}")
        if key == "noise_level":
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{flag}: expected a finite number >= 0, got {value}")
        elif value < 1:
            raise ValueError(f"{flag}: expected an integer >= 1, got {value}")
        settings[key] = value
    if layer is not None:
        if method not in LAYER_METHODS:
            raise ValueError(f"--layer applies to CAM methods {sorted(methods.CAM_METHODS)}, not {method!r}")
        settings["layer"] = layer
    return settings


def explain(image_path, method="smoothgrad", target=None, layer=None, out=None, model_name="mnist_cnn",
            invert=None, log=print, n=None, noise_level=None, steps=None):
    """A sensitivity map of a user's digit image; writes a PNG next to it (or at `out`).

    n, noise_level, steps: the method's settings where it takes them (None: METHOD_SETTINGS)."""
    check_method(method)
    out = Path(out) if out else Path(image_path).with_name(Path(image_path).stem + f"_{method}.png")
    viz.check_figure_path(out, "--out")
    settings = method_settings(method, layer=layer, n=n, noise_level=noise_level, steps=steps)
    model = load_model_option(model_name)
    x = read_digit_image(image_path, invert, log)
    with no_grad():
        logits = model(Tensor(x)).numpy()[0]
    predicted = int(np.argmax(logits))
    log(f"predicted class {predicted} (logit {logits[predicted]:.2f})"
        + ("" if target is None else f"; explaining class {target}"))
    maps = methods.METHODS[method](model, x, target, **settings)
    shown = target if target is not None else predicted
    path = viz.figure_grid(x, {method: picture_of(method, maps, x)}, out, titles=[viz.method_title(method, settings)],
                           title=f"class {shown}", cell_size=2.4, colorbars=colour_scale_of(method))
    log(f"wrote {path}")
    return path, maps
