"""The papers' visualisation choices (minisg/methods/METHODS.md §10) and figure grids.

- to_grayscale: |M| (or its positive part) summed over channels, capped at the 99th
  percentile: clip((v - min) / (p99 - min), 0, 1); zeros when p99 == min.
- diverging: signed maps to [-1, 1] (v / p99(|v|), clipped), zero stays at 0. Shown on the
  blue-gray-red colormap with vmin=-1, vmax=1: -1 blue, 0 gray, +1 red. (PAIR's diverging
  code puts zero at 0.5 while its README says [-1, 1]; here the range is [-1, 1].)
- discriminativity(M1, M2) = scale01(M1) - scale01(M2) in [-1, 1], on the same colormap.
- multiply_by_input: M * x (note the blind spot: black pixels always get 0).
- overlay_cam: a CAM heatmap over the digit, as RGB.
- figure_grid: one row per image, one column per method, with colour bars that say what the
  colours mean (P99_LABEL, SIGNED_LABEL, CAM_SCALE), saved atomically (PNG, JPEG, PDF, SVG,
  ... by the path's suffix); method_title names a method and its settings for a panel.
- colorbar: the one way every minisg figure draws a labelled colour bar.

All of these are invariant to positive scaling of the map: scale bugs show up in the
completeness and Euler tests, not in pictures. matplotlib is used without pyplot (Agg
canvas), so nothing opens a window and no global backend is changed.
"""
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LinearSegmentedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib import colormaps

from . import files
from .checks import check_finite_array, check_int, check_number, check_real, is_number

BLUE_GRAY_RED = LinearSegmentedColormap.from_list("blue_gray_red", [(0, 0, 1), (0.5, 0.5, 0.5), (1, 0, 0)])
MODES = ("absolute", "positive", "signed")


def _per_image(function, maps, *args, **kwargs):
    """Apply a one-map function to each map of an (N, C, H, W) batch."""
    return np.stack([function(m, *args, **kwargs) for m in maps])


def reduce_channels(saliency, mode="absolute"):
    """(C, H, W) or (H, W) -> (H, W): |M| summed, relu(M) summed, or M summed (signed)."""
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {list(MODES)}, got {mode!r}")
    saliency = _finite_map("saliency", saliency)
    saliency = saliency[None] if saliency.ndim == 2 else saliency
    if saliency.ndim != 3:
        raise ValueError(f"saliency: expected (C, H, W) or (H, W), got shape {saliency.shape}")
    if mode == "absolute":
        return np.abs(saliency).sum(axis=0)
    if mode == "positive":
        return np.maximum(saliency, 0).sum(axis=0)
    return saliency.sum(axis=0)


def to_grayscale(saliency, mode="absolute", percentile=99):
    """A map as an image in [0, 1] (absolute, positive) or [-1, 1] (signed, see diverging).

    clip((v - min) / (p - min), 0, 1) with p the `percentile` of v: the top 1% are capped so a
    few outliers do not turn the rest black. A flat map (p == min) gives zeros.
    (N, C, H, W) batches give (N, H, W).
    """
    saliency = _finite_map("saliency", saliency)
    if saliency.ndim == 4:
        return _per_image(to_grayscale, saliency, mode, percentile)
    if mode == "signed":
        return diverging(saliency, percentile)
    percentile = _check_percentile(percentile)
    values = reduce_channels(saliency, mode)
    low, cap = values.min(), np.percentile(values, percentile)
    if cap <= low:
        return np.zeros_like(values)
    return np.clip((values - low) / (cap - low), 0, 1)


def diverging(saliency, percentile=99):
    """A signed map in [-1, 1]: v / p(|v|), clipped; 0 stays 0. Zeros when p(|v|) == 0."""
    saliency = _finite_map("saliency", saliency)
    if saliency.ndim == 4:
        return _per_image(diverging, saliency, percentile)
    percentile = _check_percentile(percentile)
    values = reduce_channels(saliency, "signed")
    cap = np.percentile(np.abs(values), percentile)
    if cap <= 0:
        return np.zeros_like(values)
    return np.clip(values / cap, -1, 1)


def _finite_map(name, values):
    """values as a float64 array of at least one finite number (no picture shows NaN)."""
    values = check_finite_array(values, name)
    if values.size == 0:
        raise ValueError(f"{name}: expected at least one value, got shape {values.shape}")
    return values


def _check_percentile(percentile):
    """The cap's percentile: a number in (0, 100] (0 would cap every map at its minimum)."""
    if not is_number(percentile) or not 0 < percentile <= 100:
        error = ValueError if is_number(percentile) else TypeError
        raise error(f"percentile: expected a number in (0, 100], got {percentile!r}")
    return float(percentile)


def scale01(values):
    """(v - min) / (max - min) in [0, 1]; zeros when the map is flat."""
    values = _finite_map("values", values)
    low, high = values.min(), values.max()
    return np.zeros_like(values) if high <= low else (values - low) / (high - low)


def discriminativity(map1, map2, mode="absolute"):
    """scale01(M1) - scale01(M2) in [-1, 1] (red: evidence for class 1, blue: for class 2).

    Each map is first reduced over channels with `mode`. Batches (N, C, H, W) give (N, H, W).
    """
    if np.ndim(map1) == 4:
        if np.shape(map1) != np.shape(map2):
            raise ValueError(f"map2: expected the shape of map1 {np.shape(map1)}, got {np.shape(map2)}")
        return np.stack([discriminativity(a, b, mode) for a, b in zip(map1, map2)])
    first, second = reduce_channels(map1, mode), reduce_channels(map2, mode)
    if first.shape != second.shape:
        raise ValueError(f"map2: expected a map of map1's size {first.shape}, got one of {second.shape}")
    return scale01(first) - scale01(second)


def multiply_by_input(saliency, image):
    """M * x elementwise: the paper's 'x input' variants (zero on black pixels)."""
    saliency, image = _finite_map("saliency", saliency), _finite_map("image", image)
    try:
        np.broadcast_shapes(saliency.shape, image.shape)
    except ValueError:
        raise ValueError(f"image: expected a shape that fits the map's {saliency.shape}, got {image.shape}") from None
    return saliency * image


def colorize(values, cmap=BLUE_GRAY_RED, vmin=-1.0, vmax=1.0):
    """(H, W) values -> (H, W, 3) RGB in [0, 1] through a colormap."""
    cmap = _colormap(cmap)
    vmin, vmax = check_real("vmin", vmin), check_real("vmax", vmax)
    if not vmin < vmax:
        raise ValueError(f"vmax: expected a number above vmin={vmin:g}, got {vmax:g}")
    scaled = np.clip((_finite_map("values", values) - vmin) / (vmax - vmin), 0, 1)
    return cmap(scaled)[..., :3]


def _colormap(cmap):
    """A matplotlib colormap from its name or itself."""
    if isinstance(cmap, str):
        if cmap not in colormaps:
            raise ValueError(f"cmap: expected a matplotlib colormap name (e.g. 'jet', 'gray'), got {cmap!r}")
        return colormaps[cmap]
    if not callable(cmap):
        raise TypeError(f"cmap: expected a colormap or its name, got {cmap!r}")
    return cmap


def _gray_image(image):
    image = _finite_map("image", image)
    image = image[0] if image.ndim == 3 and image.shape[0] == 1 else image
    if image.ndim == 3:                                   # (3, H, W) colour: to (H, W, 3)
        return np.clip(np.moveaxis(image, 0, -1), 0, 1)
    return np.repeat(np.clip(image, 0, 1)[..., None], 3, axis=-1)


def overlay_cam(image, cam, alpha=0.5, cmap="jet"):
    """(H, W, 3) RGB: the image in gray, blended with the CAM (scaled by its max) as a heatmap.

    Batches (image (N, C, H, W), cam (N, H, W)) give (N, H, W, 3).
    """
    if np.ndim(cam) == 3:
        return np.stack([overlay_cam(i, c, alpha, cmap) for i, c in zip(image, cam)])
    cam = _finite_map("cam", cam)
    if cam.ndim != 2:
        raise ValueError(f"cam: expected an (H, W) map or an (N, H, W) batch, got shape {cam.shape}")
    alpha = check_real("alpha", alpha)
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha: expected a number in [0, 1] (the heatmap's share), got {alpha!r}")
    gray = _gray_image(image)
    if gray.shape[:2] != cam.shape:
        raise ValueError(f"image: expected the cam's size {cam.shape} ((H, W), (1, H, W) or (3, H, W)), got "
                         f"shape {np.shape(image)}")
    peak = cam.max()
    heat = colorize(cam / peak if peak > 0 else np.zeros_like(cam), cmap, 0.0, 1.0)
    return (1 - alpha) * gray + alpha * heat


def colorbar(figure, image, axes, label, fontsize=7, location=None, fraction=0.046, cax=None):
    """A colour bar for `image` (what axis.imshow returned, or a ScalarMappable) beside `axes`
    (one axis or a list of them), labelled with what its colours mean; returns the Colorbar.
    location: "right" (the default), "left", "top" or "bottom"; fraction: the share of the
    axes' size the bar takes; cax: an axis to draw the bar in instead (then `axes` is unused).

    Every heat map and signed map in minisg's figures gets one: without it a reader cannot
    tell 0 from 1, or blue from red."""
    placement = {} if location is None else {"location": location}
    if cax is not None:
        bar = figure.colorbar(image, cax=cax, **placement)
    else:
        bar = figure.colorbar(image, ax=axes, fraction=fraction, pad=0.03, shrink=0.9, **placement)
    bar.set_label(label, fontsize=fontsize)
    bar.ax.tick_params(labelsize=fontsize - 1)
    return bar


@dataclass(frozen=True)
class Scale:
    """What a colour bar shows: its label, and the colormap and value range of the colours."""
    label: str
    cmap: object = "gray"
    vmin: float = 0.0
    vmax: float = 1.0


# The labels of the papers' two displays (to_grayscale, diverging) and of overlay_cam's colours.
P99_LABEL = "share of the 99th percentile"
SIGNED_LABEL = "signed, / p99 of |M|"
CAM_SCALE = Scale("CAM / its maximum (over the digit)", "jet")


# How figures name the functions of minisg.methods.METHODS.
METHOD_NAMES = {"vanilla": "Gradient", "vanilla_gradient": "Gradient", "gradient_x_input": "Gradient × input",
                "integrated_gradients": "Integrated Gradients", "smoothgrad": "SmoothGrad",
                "guided_backprop": "Guided BackProp", "deconvnet": "Deconvnet", "guided_gradcam": "Guided Grad-CAM",
                "occlusion": "Occlusion", "gradcam": "Grad-CAM", "gradcam_pp": "Grad-CAM++",
                "smooth_gradcam_pp": "Smooth Grad-CAM++"}


_SETTING_WORDS = {"n": "n = {}", "noise_level": "{:g}% noise", "steps": "{} steps", "patch": "{0}x{0} patch",
                  "stride": "stride {}", "layer": "at {}"}


def method_title(method, settings=None, separator="\n"):
    """A panel title: the method's name and the settings that shape its map, e.g.
    method_title("smoothgrad", dict(n=50, noise_level=0.15, seed=0)) == "SmoothGrad\nn = 50, 15% noise".

    method: a key of METHOD_NAMES, or any name (used as given); settings: the method's keyword
    arguments (n, noise_level, steps, patch, stride, layer; others, such as seed, are left out)."""
    if not isinstance(method, str):
        raise TypeError(f"method: expected a method's name (str), got {method!r}")
    if settings is not None and not isinstance(settings, dict):
        raise TypeError(f"settings: expected None or a dict of the method's keyword arguments, got {settings!r}")
    parts = [_SETTING_WORDS[key].format(100 * value if key == "noise_level" else value)
             for key, value in (settings or {}).items() if key in _SETTING_WORDS]
    name = METHOD_NAMES.get(method, method)
    return name + (separator + ", ".join(parts) if parts else "")


def noise_label(noise_level):
    """The paper's axis label: the noise level as sigma / (x_max - x_min), in percent."""
    return rf"$\sigma/(x_{{max}} - x_{{min}})$ = {100 * check_number('noise_level', noise_level):g}%"


def _column_scale(maps, signed):
    """How a column is coloured: None for RGB cells, else a Scale (without a label) shared
    by all its cells: blue-gray-red [-1, 1] when `signed` or any map is negative, else gray
    from 0 to 1 (or to the column's maximum when that is larger)."""
    first = np.asarray(maps[0])
    if first.ndim == 3 and first.shape[-1] in (3, 4):
        return None
    if first.ndim == 3:                                   # raw (C, H, W) maps or images: gray 0..1
        return Scale("", "gray", 0.0, 1.0)
    if signed or min(float(np.min(m)) for m in maps) < 0:
        return Scale("", BLUE_GRAY_RED, -1.0, 1.0)
    return Scale("", "gray", 0.0, max(1.0, max(float(np.max(m)) for m in maps)))


def _show(axis, values, scale):
    """Draw one cell: RGB as is, a raw (C, H, W) map by to_grayscale, others on `scale`."""
    values = np.asarray(values)
    if scale is None:
        axis.imshow(values)
    elif values.ndim == 3:
        axis.imshow(to_grayscale(values) if values.shape[0] != 1 else values[0], cmap="gray", vmin=0, vmax=1)
    else:
        axis.imshow(values, cmap=scale.cmap, vmin=scale.vmin, vmax=scale.vmax)
    axis.set_xticks([])
    axis.set_yticks([])


def figure_grid(images, columns, path, titles=None, row_labels=None, title=None, cell_size=1.6, dpi=100,
                signed=(), colorbars=None):
    """Save a grid (rows: images; first column the input, then one per entry of `columns`).

    images: (N, C, H, W) inputs or None; columns: {name: N maps}, each (H, W) in [0, 1] or
    [-1, 1], (H, W, 3) RGB, or a raw (C, H, W) map (shown with to_grayscale). A column with a
    negative value is drawn on blue-gray-red [-1, 1]; `signed` names the columns drawn that
    way whatever their values (True: all of them); the others are gray from 0 (black) to 1
    (white). titles replaces the column names; row_labels (N strings, e.g. noise_label(0.1))
    go left of each row. Cells keep the maps' aspect ratio (a 28x56 map gets a wide cell).
    colorbars: a label (e.g. P99_LABEL) or a Scale for every map column, or {column name:
    label, Scale or None (no bar)}; None: no colour bars. A label keeps the column's colours; an
    RGB column (e.g. overlay_cam's) needs a Scale that says them (CAM_SCALE). Neighbouring
    columns with the same bar share one, drawn below them; the input column never gets one.
    The figure is written to a temporary file and renamed, so `path` is never half written; its
    suffix picks the format (FIGURE_FORMATS).
    Returns the Path.
    """
    _check_grid_arguments(images, columns, path, titles, row_labels, cell_size, dpi)
    signed_columns = _signed_columns(signed, columns)
    requested = _requested_bars(colorbars, columns)
    named = ([("input", images)] if images is not None else []) + list(columns.items())
    rows = len(named[0][1])
    if any(len(maps) != rows for _, maps in named):
        raise ValueError(f"columns: expected {rows} maps in every column, got "
                         f"{ {name: len(maps) for name, maps in named} }")
    names = [name for name, _ in named]
    if titles is not None:
        if len(titles) != len(columns):
            raise ValueError(f"titles: expected {len(columns)} titles (one per column), got {len(titles)}")
        names = (["input"] if images is not None else []) + list(titles)
    first_map = 1 if images is not None else 0
    scales = [_column_scale(maps, name in signed_columns and column >= first_map)
              for column, (name, maps) in enumerate(named)]
    bars = [None] * first_map + [_bar_scale(requested.get(name), scales[column], name)
                                 for column, (name, _) in enumerate(named) if column >= first_map]
    layout = _GridLayout(rows, len(named), cell_size, _height_per_width(named[-1][1][0]), title, names,
                         row_labels, _bar_runs(bars))
    figure = Figure(figsize=layout.size)
    FigureCanvasAgg(figure)
    for column, (name, maps) in enumerate(named):
        for row in range(rows):
            axis = figure.add_axes(layout.cell(row, column))
            _show(axis, maps[row], scales[column])
            if row == 0:
                axis.set_title(names[column], fontsize=8)
            if column == 0 and row_labels:
                axis.set_ylabel(row_labels[row], fontsize=7)
    if title:
        figure.suptitle(title, fontsize=9, y=layout.title_y, va="top")
    for first, last, scale in layout.bar_runs:
        cmap = colormaps[scale.cmap] if isinstance(scale.cmap, str) else scale.cmap
        colorbar(figure, ScalarMappable(Normalize(scale.vmin, scale.vmax), cmap), None,
                 layout.wrapped(scale.label, first, last), location="bottom",
                 cax=figure.add_axes(layout.bar(first, last)))
    return _save_atomically(figure, Path(path), dpi)


MAX_CELL_INCHES, MAX_DPI = 20, 1200   # beyond these a figure has more pixels than matplotlib draws


def _check_grid_arguments(images, columns, path, titles, row_labels, cell_size, dpi):
    """figure_grid's arguments before any drawing: one error naming the first bad one."""
    check_figure_path(path, "path")
    if not isinstance(columns, dict) or not columns:
        raise TypeError(f"columns: expected a non-empty dict {{name: N maps}}, got {columns!r:.80}")
    for name, maps in [("images", images)] * (images is not None) + list(columns.items()):
        label = name if name == "images" else f"columns[{name!r}]"
        if isinstance(maps, (str, bytes)) or not hasattr(maps, "__len__") or len(maps) == 0:
            raise TypeError(f"{label}: expected a non-empty sequence of maps (one per row), got {maps!r:.80}")
        for row, values in enumerate(maps):
            if _finite_map(f"{label}[{row}]", values).ndim not in (2, 3):
                raise ValueError(f"{label}[{row}]: expected an (H, W), (H, W, 3) or (C, H, W) map, got shape "
                                 f"{np.shape(values)}")
    for name, texts in (("titles", titles), ("row_labels", row_labels)):
        if texts is not None and (isinstance(texts, str) or not hasattr(texts, "__len__")):
            raise TypeError(f"{name}: expected a list of strings, got {texts!r:.80}")
    rows = len(next(iter(columns.values())))
    if row_labels is not None and len(row_labels) != rows:
        raise ValueError(f"row_labels: expected {rows} labels (one per row), got {len(row_labels)}")
    if not 0 < check_number("cell_size", cell_size, positive=True) <= MAX_CELL_INCHES:
        raise ValueError(f"cell_size: expected a number of inches in (0, {MAX_CELL_INCHES}], got {cell_size!r}")
    check_int("dpi", dpi, high=MAX_DPI)


class _GridLayout:
    """Where figure_grid puts its cells, titles and colour bars (inches, then figure fractions)."""
    GAP = 0.08          # between cells
    MARGIN = 0.08       # around the figure
    LINE = 0.15         # one line of 8-point text
    BAR = 0.1           # a colour bar's thickness

    def __init__(self, rows, columns, cell_size, height_per_width, title, names, row_labels, bar_runs):
        self.bar_runs = bar_runs
        self.cell_width = cell_size - self.GAP
        self.cell_height = self.cell_width * height_per_width
        self.left = self.MARGIN + (self.LINE * max(map(_lines, row_labels)) + 0.08 if row_labels else 0)
        title_height = 1.2 * self.LINE * _lines(title) + 0.08 if title else 0
        self.top = self.MARGIN + title_height + self.LINE * max(map(_lines, names)) + 0.05
        grid_height = rows * self.cell_height + (rows - 1) * self.GAP
        self.bar_top = self.top + grid_height + 0.1
        label_lines = max((_lines(self.wrapped(scale.label, first, last)) for first, last, scale in bar_runs),
                          default=0)
        bars_height = 0.1 + self.BAR + 0.17 + self.LINE * label_lines if bar_runs else 0
        self.size = (self.left + columns * cell_size - self.GAP + self.MARGIN,
                     self.top + grid_height + bars_height + self.MARGIN)
        self.title_y = 1 - self.MARGIN / self.size[1]

    def _box(self, left, top, width, height):
        """A box given in inches from the top left, as matplotlib's (left, bottom, width, height)."""
        figure_width, figure_height = self.size
        return (left / figure_width, 1 - (top + height) / figure_height, width / figure_width, height / figure_height)

    def cell(self, row, column):
        return self._box(self.left + column * (self.cell_width + self.GAP),
                         self.top + row * (self.cell_height + self.GAP), self.cell_width, self.cell_height)

    def _span(self, first, last):
        """Inches from the left edge of column `first` to the right edge of column `last`."""
        return (last - first + 1) * self.cell_width + (last - first) * self.GAP

    def bar(self, first, last):
        """A bar under columns first..last, centred: 90% of their width, at most 3.5 inches."""
        span = self._span(first, last)
        length = min(0.9 * span, 3.5)
        return self._box(self.left + first * (self.cell_width + self.GAP) + (span - length) / 2, self.bar_top,
                         length, self.BAR)

    def wrapped(self, label, first, last):
        """The label broken into lines that fit under its bar (7-point text)."""
        return textwrap.fill(label, width=max(12, int(self._span(first, last) * 72 / 3.9)))


def _height_per_width(cell):
    """The aspect ratio of one cell: (H, W), (H, W, 3) and (C, H, W) arrays."""
    cell = np.asarray(cell)
    height, width = cell.shape[-2:] if cell.ndim == 3 and cell.shape[-1] not in (3, 4) else cell.shape[:2]
    return height / width


def _lines(text):
    return str(text).count("\n") + 1 if text else 0


def _bar_runs(bars):
    """[(first column, last column, Scale)] for each run of neighbouring columns with one Scale."""
    runs = []
    for column, scale in enumerate(bars):
        if scale is None:
            continue
        if runs and runs[-1][1] == column - 1 and runs[-1][2] == scale:
            runs[-1] = (runs[-1][0], column, scale)
        else:
            runs.append((column, column, scale))
    return runs


def _requested_bars(colorbars, columns):
    """{column name: label or Scale} from figure_grid's `colorbars` (None entries dropped)."""
    if colorbars is None:
        return {}
    if isinstance(colorbars, (str, Scale)):
        return {name: colorbars for name in columns}
    if not isinstance(colorbars, dict):
        raise ValueError(f"colorbars: expected a label, a Scale or {{column name: label}}, got {colorbars!r}")
    unknown = sorted(str(name) for name in colorbars if name not in columns)
    if unknown:
        raise ValueError(f"colorbars: expected names of columns {list(columns)}, got unknown {unknown}")
    return {name: bar for name, bar in colorbars.items() if bar is not None}


def _bar_scale(request, drawn, name):
    """The Scale of one column's bar: a label on the colours it was drawn with, or a Scale."""
    if request is None or isinstance(request, Scale):
        return request
    if drawn is None:
        raise ValueError(f"colorbars: column {name!r} is RGB; expected a Scale that names its colormap "
                         f"(e.g. viz.CAM_SCALE), got the label {request!r}")
    return Scale(str(request), drawn.cmap, drawn.vmin, drawn.vmax)


def _signed_columns(signed, columns):
    """The set of column names `signed` asks for: True (all), False/None (none), one name, or
    an iterable of names; unknown names are an error that lists the columns."""
    if signed is True:
        return set(columns)
    if signed is False or signed is None:
        return set()
    names = {signed} if isinstance(signed, str) else set(signed)
    unknown = sorted(str(name) for name in names if name not in columns)
    if unknown:
        raise ValueError(f"signed: expected True, False or names of columns {list(columns)}, got unknown {unknown}")
    return names


# What a figure can be written as (matplotlib's writers); the path's suffix picks the format.
FIGURE_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".pdf": "pdf", ".svg": "svg",
                  ".webp": "webp", ".tif": "tiff", ".tiff": "tiff"}


def check_figure_path(path, argument="out"):
    """Refuse, before any work, a figure path that cannot be written or has an unknown suffix."""
    return files.check_output_path(files.as_path(path, argument), argument, suffixes=FIGURE_FORMATS)


def _save_atomically(figure, path, dpi):
    check_figure_path(path)
    with files.atomic_write(path) as handle:
        figure.savefig(handle, format=FIGURE_FORMATS[path.suffix.lower()], dpi=dpi)
    return path
