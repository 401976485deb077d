"""The PNGs of `minisg evaluate`: mean deletion and insertion curves, and example maps.

Each function returns the PNG's bytes; report.run writes them with the other files, so a
run that fails writes no figure. Matplotlib is imported only when a figure is drawn.
"""
import io

import numpy as np

from . import metrics
from .report_setup import DIGIT_MODEL, SCENE_MODEL


def _new_figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def _png_bytes(figure, dpi=100):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def curves_png(curves, kind):
    """The mean deletion or insertion curve of every method, with its area in the legend."""
    figure = _new_figure(7, 4.5)
    axis = figure.subplots()
    colours = [f"C{i}" for i in range(10)]
    for i, (name, method_curves) in enumerate(curves.items()):
        fractions, mean = method_curves[kind]
        area = metrics.area_under_curve(fractions, mean)
        axis.plot(fractions, mean, color=colours[i % 10], linestyle="-" if i < 10 else "--",
                  label=f"{name} ({area:.3f})")
    better = "lower" if kind == "deletion" else "higher"
    action = "blacked out" if kind == "deletion" else "revealed on black"
    axis.set_xlabel(f"fraction of pixels {action}, most relevant first")
    axis.set_ylabel("probability of the true class (mean)")
    axis.set_title(f"{kind.capitalize()} curves, {DIGIT_MODEL} (area in brackets; {better} is better)", fontsize=10)
    axis.set_ylim(-0.02, 1.02)
    axis.legend(fontsize=7, loc="upper right" if kind == "deletion" else "lower right")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return _png_bytes(figure)


def displayed(maps):
    """Maps as shown in the figures: |map| with the 99th-percentile cap (metrics.normalise_for_display)."""
    return metrics.normalise_for_display(maps)


def _highlight(scene_set, index):
    """RGB (H, W, 3): scene `index` in gray with the ink of every digit of the target's class red."""
    gray = scene_set.images[index, 0]
    rgb = np.stack([gray, gray, gray], axis=-1) * 0.6
    labels = scene_set.digit_labels[index]
    for k, label in enumerate(labels):
        if label == labels[0]:
            rgb[scene_set.masks[index, k]] = [1.0, 0.2, 0.2]
    return rgb


def _grid_png(inputs, columns, title, cell=1.3):
    """A grid with one row per image: the input, then each column's map of it."""
    rows = len(inputs)
    names = ["input"] + list(columns)
    figure = _new_figure(cell * len(names), cell * rows + 0.5)
    axes = figure.subplots(rows, len(names), squeeze=False)
    for column, values in enumerate([inputs] + list(columns.values())):
        for row in range(rows):
            axis = axes[row, column]
            image = values[row]
            axis.imshow(image, cmap=None if image.ndim == 3 else "gray", vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
        axes[0, column].set_title(names[column].replace("_", " ").replace(" @", "\n@"), fontsize=7)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return _png_bytes(figure)


def digit_examples_png(digits, maps_by_method, count=4):
    """The first `count` digits and every method's map of the true class (|map|, 99th-percentile cap)."""
    columns = {name: displayed(maps[:count]) for name, maps in maps_by_method.items()}
    inputs = digits.images[:count, 0]
    return _grid_png(inputs, columns, f"{DIGIT_MODEL}: maps of the true class (|map| capped at the 99th percentile)")


def scene_examples_png(sets, maps_by_row):
    """One scene of each set (target class tinted red) and every row's map of the target's class."""
    inputs = np.stack([_highlight(sets[n], 0) for n in sets])
    columns = {row: displayed(np.concatenate([per_set[n][:1] for n in sets])) for row, per_set in maps_by_row.items()}
    return _grid_png(inputs, columns, f"{SCENE_MODEL}: maps of the red digits' class "
                                      f"(rows: {', '.join(sets)} scenes)")
