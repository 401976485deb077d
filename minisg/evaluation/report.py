"""`minisg evaluate`: every sensitivity-map method, measured against MNIST's free ground truth.

The SmoothGrad paper says "there is no ground truth to allow for quantitative evaluation".
On MNIST there is: a digit's ink is its mask. run() computes every method of
``minisg.methods.METHODS`` and scores the maps with ``minisg.evaluation.metrics``, in three tables:

1. Digits (the paper's MNIST model, ``mnist_cnn``): MNIST test digits, the map of the true
   class against the digit's own ink mask (pointing game, relevance mass, rank accuracy),
   faithfulness to the model (deletion and insertion curves), visual noise (total variation,
   high-frequency energy) and a sanity check (cascading randomisation).
2. Scenes (``scene_cnn`` of ``minisg.models.scene_cnn``): 56x56 canvases of several test digits.
   Does the map pick the target digit among distractors of other classes? Does it separate
   two digits of different classes (discriminativity)? Does it cover every occurrence when
   one class appears two or three times (Grad-CAM++'s claim)?
3. Training noise x inference noise (SmoothGrad §3.5): ``mnist_cnn`` vs ``mnist_cnn_noise``
   (trained with 10 % input noise) x vanilla gradient vs SmoothGrad, on the digit metrics.

Everything is deterministic: the digits are the first ones of each class in the test split,
the scenes are drawn with fixed seeds, the noise of SmoothGrad and Smooth Grad-CAM++ is seeded.
Outputs (in ``out_dir``): ``results.md`` (Markdown tables, mean ± standard error over images),
``results.csv`` (the same numbers, one row per table, method and metric), the mean deletion and
insertion curves, and example maps, as PNGs. Nothing is written until every number has been
computed, and each file is replaced atomically (temp file + os.replace): a run that fails
leaves the previous results as they were.

The work is split by stage, and this module re-exports each stage's names (lessons 12 and 13
call them as ``report.digit_set``, ``report.digit_scores``, ...):

  report_setup.py    settings (FULL, QUICK), the digits and scenes, computing the maps
  report_tables.py   scoring the maps: the three tables
  report_text.py     results.md and results.csv
  report_figures.py  the PNGs
"""
import dataclasses
import os
import time
from pathlib import Path

from .. import files, models
from ..checks import check_flags
from ..methods import METHODS
from .report_figures import curves_png, digit_examples_png, scene_examples_png
from .report_setup import (DIGIT_MODEL, FULL, NOISE_TABLE_METHODS, NOISY_DIGIT_MODEL, QUICK, Settings, digit_set,
                           scene_sets)
from .report_tables import detection_rates, digit_table, noise_table, scene_jobs, scene_table
from .report_text import report_markdown, results_csv

# Re-exported, so that lessons 12 and 13 and the tests reach every stage through this module.
from .report_figures import displayed  # noqa: F401
from .report_setup import (DIGIT_CAM_LAYER, SCENE_MODEL, compute_maps, method_options,  # noqa: F401
                           scene_targets, warm_up)
from .report_tables import digit_scores, occurrence_shares, scene_scores, summarise  # noqa: F401
from .report_text import DIGIT_COLUMNS, SCENE_COLUMNS, table_markdown  # noqa: F401


def run(quick=False, out_dir="evaluation", progress=True, settings=None):
    """Compute all three tables and write them to `out_dir`; returns the results as a dict.

    quick=True uses QUICK (a few images, small n: seconds, for tests), else FULL (the papers'
    settings, 100 digits, 3 x 50 scenes: about 3 CPU-minutes, 6 minutes on a busy two-core
    machine). `settings` (a Settings) overrides both.
    """
    _check_options(quick, progress, settings)
    check_out_dir(out_dir)
    with files.exclusive(out_dir, "--out"):  # a second run on the same folder is refused
        results, outputs = _compute(quick, settings, progress)
        write_files_atomically(out_dir, outputs)
    return results


def _check_options(quick, progress, settings):
    check_flags(quick=quick, progress=progress)
    if settings is not None and not isinstance(settings, Settings):
        raise TypeError(f"settings: expected None or a Settings (e.g. report.QUICK), got {settings!r}")


def _compute(quick, settings, progress):
    """All three tables as a dict, and {file name: bytes} of the reports."""
    from tqdm import tqdm

    settings = settings or (QUICK if quick else FULL)
    started = time.perf_counter()
    digits, sets = digit_set(settings.digits), scene_sets(settings.scenes)
    jobs = len(METHODS) + len(NOISE_TABLE_METHODS) + len(scene_jobs())
    timings = {}
    with tqdm(total=jobs, disable=not progress, unit="method") as bar:
        digit_rows, curves, digit_maps = digit_table(digits, settings, bar, timings)
        noise_rows = noise_table(digits, settings, bar, digit_rows)
        scene_rows, scene_maps = scene_table(sets, settings, bar, timings)
    results = {
        "settings": dataclasses.asdict(settings), "quick": quick,
        "tables": {"digits": digit_rows, "scenes": scene_rows, "noise": noise_rows},
        "curves": curves, "timings": timings, "detection": detection_rates(sets),
        "digit_accuracy": _digit_accuracy(digits), "ink_share": float(digits.masks.mean()),
        "elapsed": time.perf_counter() - started,
    }
    outputs = {
        "results.md": report_markdown(results).encode(),
        "results.csv": results_csv(results).encode(),
        "deletion_curves.png": curves_png(curves, "deletion"),
        "insertion_curves.png": curves_png(curves, "insertion"),
        "examples_digits.png": digit_examples_png(digits, digit_maps),
        "examples_scenes.png": scene_examples_png(sets, scene_maps),
    }
    return results, outputs


def _digit_accuracy(digits):
    """{model name: accuracy} of the two digit models on the evaluated digits."""
    from ..models.training import predict
    return {name: float((predict(models.load(name), digits.images) == digits.labels).mean())
            for name in (DIGIT_MODEL, NOISY_DIGIT_MODEL)}


def write_files_atomically(out_dir, outputs):
    """Write {file name: bytes} into out_dir: all to a staging folder first, then os.replace each.

    Until the first replace nothing in out_dir has changed; each replace is atomic, so every
    file is either the old one or the new one, never half written.
    """
    with files.staging_folder(out_dir) as staging:
        for name, content in outputs.items():
            with open(staging / name, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
        for name in outputs:
            os.replace(staging / name, Path(out_dir) / name)


def check_out_dir(out_dir, argument="--out"):
    """Refuse, before any work, an output folder that is a file or cannot be written."""
    out_dir = files.as_path(out_dir, argument)
    if out_dir.exists() and not out_dir.is_dir():
        raise files.OutputPathError(f"{argument} {out_dir}: is a file; expected a folder")
    files.check_output_path(out_dir / "results.md", argument)
    return out_dir
