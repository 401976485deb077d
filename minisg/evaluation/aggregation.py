"""Aggregation: per-image scores become "mean ± standard error", and those become tables."""
import csv
import io
import math

import numpy as np

from ..checks import check_flags
from .inputs import as_numpy, check_finite_array


def mean_and_stderr(values, skip_nan=False):
    """(mean, standard error of the mean) of per-image scores, as Python floats.

    stderr = sample std (ddof=1) / sqrt(n); NaN when there is a single value.
    NaN inputs raise ValueError unless skip_nan=True (then they are left out; e.g. Spearman
    of a map that became constant).
    """
    check_flags(skip_nan=skip_nan)
    array = as_numpy(values, "values")
    if array.ndim != 1 or array.dtype.kind not in "biuf":
        got = f"dtype {array.dtype}, shape {array.shape}" if array.ndim else f"{values!r:.80}"
        raise ValueError(f"values: expected a 1-D array of per-image scores, got {got}")
    values = array.astype(np.float64)
    if skip_nan:
        values = values[~np.isnan(values)]
    if values.size == 0:
        raise ValueError("values: expected at least one score, got none" + (" after dropping NaN" if skip_nan else ""))
    values = check_finite_array(values, "values")
    if values.size == 1:
        return float(values[0]), float("nan")
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size))


def _metric_names(results):
    """Every metric of {method: {metric: ...}}, in first-seen order."""
    metrics = []
    for scores in results.values():
        metrics += [name for name in scores if name not in metrics]
    return metrics


def _markdown_table(results, metrics, digits):
    def cell(method, metric):
        if metric not in results[method]:
            return ""
        mean, stderr = results[method][metric]
        return f"{mean:.{digits}f} ± {stderr:.{digits}f}"

    lines = ["| method | " + " | ".join(metrics) + " |",
             "|---" * (len(metrics) + 1) + "|"]
    lines += ["| " + " | ".join([method] + [cell(method, m) for m in metrics]) + " |" for method in results]
    return "\n".join(lines) + "\n"


def _csv_table(results, metrics):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["method"] + [f"{m}_{part}" for m in metrics for part in ("mean", "stderr")])
    for method, scores in results.items():
        row = [method]
        for metric in metrics:
            row += [repr(float(v)) for v in scores[metric]] if metric in scores else ["", ""]
        writer.writerow(row)
    return buffer.getvalue()


def results_tables(results, digits=3):
    """A Markdown table and CSV text from {method: {metric: (mean, stderr)}}.

    Rows are methods, columns metrics (in first-seen order); a missing entry is blank.
    Markdown cells read "mean ± stderr" rounded to `digits`; the CSV keeps full precision in
    two columns per metric, METRIC_mean and METRIC_stderr. Returns (markdown, csv_text).
    """
    metrics = _metric_names(results)
    return _markdown_table(results, metrics, digits), _csv_table(results, metrics)
