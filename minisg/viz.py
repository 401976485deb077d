"""The papers' visualisation choices (minisg/methods/METHODS.md §10) and figure grids.

- to_grayscale: |M| (or its positive part) summed over channels, capped at the 99th
  percentile: clip((v - min) / (p99 - min), 0, 1); zeros when p99 == min.
- diverging: signed maps to [-1, 1] (v / p99(|v|), clipped), zero stays at 0. Shown on the
  blue-gray-red colormap with vmin=-1, vmax=1: -1 blue, 0 gray, +1 red. (PAIR's diverging
  code puts zero at 0.5 while its README says [-1, 1]; here the range is [-1, 1].)
- discriminativity(M1, M2) = scale01(M1) - scale01(M2) in [-1, 1], on the same colormap.
- multiply_by_input: M * x (note the blind spot: black pixels always get 0).
- overlay_cam: a CAM heatmap over the digit, as RGB.
- figure_grid: one row per image, one column per method, saved atomically (PNG, JPEG, PDF,
  SVG, ... by the path's suffix).

All of these are invariant to positive scaling of the map: scale bugs show up in the
completeness and Euler tests, not in pictures. matplotlib is used without pyplot (Agg
canvas), so nothing opens a window and no global backend is changed.
"""
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib import colormaps

from . import files

BLUE_GRAY_RED = LinearSegmentedColormap.from_list("blue_gray_red", [(0, 0, 1), (0.5, 0.5, 0.5), (1, 0, 0)])
MODES = ("absolute", "positive", "signed")


def _per_image(function, maps, *args, **kwargs):
    """Apply a one-map function to each map of an (N, C, H, W) batch."""
    return np.stack([function(m, *args, **kwargs) for m in maps])


def reduce_channels(saliency, mode="absolute"):
    """(C, H, W) or (H, W) -> (H, W): |M| summed, relu(M) summed, or M summed (signed)."""
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {list(MODES)}, got {mode!r}")
    saliency = np.asarray(saliency, dtype=np.float64)
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
    if np.ndim(saliency) == 4:
        return _per_image(to_grayscale, saliency, mode, percentile)
    if mode == "signed":
        return diverging(saliency, percentile)
    values = reduce_channels(saliency, mode)
    low, cap = values.min(), np.percentile(values, percentile)
    if cap <= low:
        return np.zeros_like(values)
    return np.clip((values - low) / (cap - low), 0, 1)


def diverging(saliency, percentile=99):
    """A signed map in [-1, 1]: v / p(|v|), clipped; 0 stays 0. Zeros when p(|v|) == 0."""
    if np.ndim(saliency) == 4:
        return _per_image(diverging, saliency, percentile)
    values = reduce_channels(saliency, "signed")
    cap = np.percentile(np.abs(values), percentile)
    if cap <= 0:
        return np.zeros_like(values)
    return np.clip(values / cap, -1, 1)


def scale01(values):
    """(v - min) / (max - min) in [0, 1]; zeros when the map is flat."""
    values = np.asarray(values, dtype=np.float64)
    low, high = values.min(), values.max()
    return np.zeros_like(values) if high <= low else (values - low) / (high - low)


def discriminativity(map1, map2, mode="absolute"):
    """scale01(M1) - scale01(M2) in [-1, 1] (red: evidence for class 1, blue: for class 2).

    Each map is first reduced over channels with `mode`. Batches (N, C, H, W) give (N, H, W).
    """
    if np.ndim(map1) == 4:
        return np.stack([discriminativity(a, b, mode) for a, b in zip(map1, map2)])
    return scale01(reduce_channels(map1, mode)) - scale01(reduce_channels(map2, mode))


def multiply_by_input(saliency, image):
    """M * x elementwise: the paper's 'x input' variants (zero on black pixels)."""
    return np.asarray(saliency) * np.asarray(image)


def colorize(values, cmap=BLUE_GRAY_RED, vmin=-1.0, vmax=1.0):
    """(H, W) values -> (H, W, 3) RGB in [0, 1] through a colormap."""
    cmap = colormaps[cmap] if isinstance(cmap, str) else cmap
    scaled = np.clip((np.asarray(values, dtype=np.float64) - vmin) / (vmax - vmin), 0, 1)
    return cmap(scaled)[..., :3]


def _gray_image(image):
    image = np.asarray(image, dtype=np.float64)
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
    cam = np.asarray(cam, dtype=np.float64)
    peak = cam.max()
    heat = colorize(cam / peak if peak > 0 else np.zeros_like(cam), cmap, 0.0, 1.0)
    return (1 - alpha) * _gray_image(image) + alpha * heat


def colorbar(figure, image, axes, label, fontsize=7):
    """A colour bar for `image` (what axis.imshow returned, or a ScalarMappable) beside `axes`
    (one axis or a list of them), labelled with what its colours mean; returns the Colorbar.

    Every heat map and signed map in minisg's figures gets one: without it a reader cannot
    tell 0 from 1, or blue from red."""
    bar = figure.colorbar(image, ax=axes, fraction=0.046, pad=0.03, shrink=0.9)
    bar.set_label(label, fontsize=fontsize)
    bar.ax.tick_params(labelsize=fontsize - 1)
    return bar


def noise_label(noise_level):
    """The paper's axis label: the noise level as sigma / (x_max - x_min), in percent."""
    return rf"$\sigma/(x_{{max}} - x_{{min}})$ = {100 * noise_level:g}%"


def _show(axis, values, signed=False):
    """Draw one cell: RGB as is, signed maps on blue-gray-red [-1, 1], others in gray from 0.
    A map is signed when it has a negative value, or when `signed` says so (a difference of
    two maps stays on blue-gray-red even where it happens to be >= 0 everywhere)."""
    values = np.asarray(values)
    if values.ndim == 3 and values.shape[-1] in (3, 4):
        axis.imshow(values)
    elif values.ndim == 3:                               # a raw (C, H, W) map or image
        axis.imshow(to_grayscale(values) if values.shape[0] != 1 else values[0], cmap="gray", vmin=0, vmax=1)
    elif signed or values.min() < 0:
        axis.imshow(values, cmap=BLUE_GRAY_RED, vmin=-1, vmax=1)
    else:
        axis.imshow(values, cmap="gray", vmin=0, vmax=max(1.0, float(values.max())))
    axis.set_xticks([])
    axis.set_yticks([])


def figure_grid(images, columns, path, titles=None, row_labels=None, title=None, cell_size=1.6, dpi=100,
                signed=()):
    """Save a grid (rows: images; first column the input, then one per entry of `columns`).

    images: (N, C, H, W) inputs or None; columns: {name: N maps}, each (H, W) in [0, 1] or
    [-1, 1], (H, W, 3) RGB, or a raw (C, H, W) map (shown with to_grayscale). A map with a
    negative value is drawn on blue-gray-red; `signed` names the columns drawn that way
    whatever their values (True: all of them). titles replaces the column names; row_labels
    (N strings, e.g. noise_label(0.1)) go left of each row.
    The figure is written to a temporary file and renamed, so `path` is never half written; its
    suffix picks the format (FIGURE_FORMATS).
    Returns the Path.
    """
    signed_columns = _signed_columns(signed, columns)
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
    figure = Figure(figsize=(cell_size * len(named), cell_size * rows + (0.4 if title else 0)))
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, len(named), squeeze=False)
    for column, (name, maps) in enumerate(named):
        draw_signed = name in signed_columns and not (images is not None and column == 0)
        for row in range(rows):
            _show(axes[row, column], maps[row], draw_signed)
        axes[0, column].set_title(names[column], fontsize=8)
    for row, label in enumerate(row_labels or []):
        axes[row, 0].set_ylabel(label, fontsize=7)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return _save_atomically(figure, Path(path), dpi)


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
    return files.check_output_path(path, argument, suffixes=FIGURE_FORMATS)


def _save_atomically(figure, path, dpi):
    check_figure_path(path)
    with files.atomic_write(path) as handle:
        figure.savefig(handle, format=FIGURE_FORMATS[path.suffix.lower()], dpi=dpi)
    return path
