"""results.md and results.csv of `minisg evaluate`: the three tables, their settings and legends."""
import csv
import io
import os
import platform

from .. import data
from ..models import scene_cnn as scenes
from . import metrics
from .report_setup import (DIGIT_CAM_LAYER, DIGIT_MODEL, NOISY_DIGIT_MODEL, SCENE_CAM_LAYER, SCENE_EXTRA_CAM_LAYER,
                           SCENE_MODEL, SCENE_SEEDS)

DIGIT_COLUMNS = {
    "pointing": "pointing ↑", "mass": "mass ↑", "mass_abs": "mass abs ↑", "rank": "rank acc ↑",
    "deletion": "deletion AUC ↓", "insertion": "insertion AUC ↑", "total_variation": "TV ↓",
    "high_frequency": "HF energy ↓", "rand_top": "rand ρ top ↓", "rand_all": "rand ρ all ↓",
}
SCENE_COLUMNS = {
    "target_share": "target share ↑", "pointing": "pointing ↑", "discriminativity": "discrim. ↑",
    "repeats_mass": "repeats mass ↑", "weakest_share": "weakest share ↑",
}
TABLE_COLUMNS = {"digits": DIGIT_COLUMNS, "scenes": SCENE_COLUMNS, "noise": DIGIT_COLUMNS}

SCENE_LEGEND = (
    "target share: positive relevance on the target digit / on all digits of a scene with 2-4 "
    "digits of different classes (1/K if the map does not choose). pointing: the maximum within "
    "the tolerance of the target's ink. discrim.: share on the target minus share on the other "
    "digit, two digits of different classes, in [-1, 1]. repeats: 2-3 digits of one class; "
    "repeats mass: share of all relevance on them; weakest share: K x the smallest share of one "
    "occurrence among the occurrences' relevance (1 = shared evenly, 0 = one occurrence ignored). "
    f"Rows without @: CAM layer {SCENE_CAM_LAYER}, where the head "
    "(1x1 conv + global average) is linear: Grad-CAM equals CAM and Smooth Grad-CAM++ equals "
    f"Grad-CAM++ exactly. Rows @{SCENE_EXTRA_CAM_LAYER}: the CAM methods one conv layer earlier."
)


def table_markdown(rows, columns):
    """results_tables of rows {method: {metric: (mean, se)}} with display names for the metrics."""
    renamed = {method: {columns.get(k, k): v for k, v in scores.items()} for method, scores in rows.items()}
    markdown, _ = metrics.results_tables(renamed)
    return markdown


def _settings_lines(results):
    """The bullet list under the title: what was run, on which images, with which settings."""
    s = results["settings"]
    detection = ", ".join(f"{name} {rate:.0%}" for name, rate in results["detection"].items())
    accuracy = ", ".join(f"{name} {acc:.0%}" for name, acc in results["digit_accuracy"].items())
    return [
        f"- run: {'quick (for tests, not for conclusions)' if results['quick'] else 'full'}; "
        f"elapsed {results['elapsed']:.0f} s on {os.cpu_count()} CPU core(s) ({platform.machine()}); "
        "every number is mean ± standard error over images",
        f"- digits: the first {s['digits']} MNIST test digits taking classes 0-9 in turn; the map is "
        f"of the true class; mask = ink > {data.MASK_THRESHOLD}; accuracy on them: {accuracy}",
        f"- cascading randomisation: the first {s['randomised_digits']} of those digits",
        f"- scenes: {s['scenes']} per set, {scenes.CANVAS}x{scenes.CANVAS} canvases of test digits "
        f"(seeds {SCENE_SEEDS}); the target is digit 0 of each scene, its class the map's class; "
        f"scene_cnn says the target's class is present in: {detection}",
        f"- SmoothGrad n={s['smoothgrad_n']}, noise level {s['smoothgrad_noise']}; Integrated Gradients "
        f"{s['ig_steps']} steps (right Riemann, black baseline); Smooth Grad-CAM++ n={s['sgcam_n']}, "
        f"noise level {s['sgcam_noise']}; occlusion patch {s['occlusion_patch']} stride "
        f"{s['occlusion_stride']}; CAM layer {DIGIT_CAM_LAYER} (mnist_cnn), {SCENE_CAM_LAYER} (scene_cnn); "
        f"seed {s['seed']}",
        f"- pointing game tolerance {s['digit_pointing_tolerance']} px on digits, "
        f"{s['scene_pointing_tolerance']} px on scenes; deletion/insertion: "
        f"{s['curve_steps']} steps to black (0), softmax probability of the true class",
    ]


def _digit_legend(ink_share):
    """What table 1's columns mean; chance for mass and rank is the ink's share of the image."""
    return (
        "pointing: the map's maximum lies on the digit's ink (Zhang et al. 2016; ties shared). mass: share of the "
        "map's positive part on the ink (Arras et al. 2022); mass abs: the same with |map|, as "
        "SmoothGrad displays maps. rank acc: share of the K highest pixels on the ink, K = ink "
        "pixels (Arras et al. 2022). deletion / insertion AUC: area under the true class's "
        "probability as the highest-ranked pixels are blacked out / revealed on black (Petsiuk et al. "
        "2018). TV: mean |difference| of neighbouring pixels of the displayed map; HF energy: share "
        "of its spectral energy above 0.25 cycles/pixel (visual noise; 0 = smooth). rand ρ: Spearman "
        "correlation of |map| after re-initialising the top layer / all layers (Adebayo et al. 2018); "
        "low = the map depends on what the model learned; constant maps are left out. ↑ higher is "
        "better, ↓ lower is better. Chance for mass and rank acc is the ink's share of the image "
        f"(here {ink_share:.2f})."
    )


def _cost_lines(timings):
    """The milliseconds per image of every method, on digits and on scenes."""
    nan = float("nan")
    return [
        "| method | digit maps (ms/image) | scene maps (ms/image) |",
        "|---|---|---|",
        *[f"| {name} | {t.get('digits', nan):.1f} | {t.get('scenes', nan):.1f} |" for name, t in timings.items()],
    ]


def report_markdown(results):
    """results.md: a header with the settings, then the three tables and what their columns mean."""
    tables = results["tables"]
    lines = [
        "# Sensitivity maps measured against MNIST's ground truth (`minisg evaluate`)",
        "",
        *_settings_lines(results),
        "",
        f"## 1. One digit: {DIGIT_MODEL}",
        "",
        table_markdown(tables["digits"], DIGIT_COLUMNS),
        _digit_legend(results["ink_share"]),
        "",
        f"## 2. Scenes: {SCENE_MODEL}",
        "",
        table_markdown(tables["scenes"], SCENE_COLUMNS),
        SCENE_LEGEND,
        "",
        "## 3. Training noise × inference noise (SmoothGrad §3.5)",
        "",
        table_markdown(tables["noise"], DIGIT_COLUMNS),
        f"{NOISY_DIGIT_MODEL} was trained with input noise (noise level 0.1); same digits and metrics as table 1.",
        "",
        "## Cost",
        "",
        *_cost_lines(results["timings"]),
        "",
    ]
    return "\n".join(lines)


def results_csv(results):
    """results.csv: one row per (table, method, metric) with mean, stderr and the display name."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["table", "method", "metric", "mean", "stderr", "column"])
    for table, rows in results["tables"].items():
        for method, scores in rows.items():
            for metric, (mean, stderr) in scores.items():
                writer.writerow([table, method, metric, repr(mean), repr(stderr),
                                 TABLE_COLUMNS[table].get(metric, metric)])
    return buffer.getvalue()
