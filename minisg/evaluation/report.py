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
"""
import csv
import dataclasses
import functools
import io
import os
import platform
import time
from pathlib import Path

import numpy as np

from .. import data, files, models

from . import metrics

from ..models import scene_cnn as scenes
from ..methods import CAM_METHODS, METHODS

DIGIT_MODEL, NOISY_DIGIT_MODEL, SCENE_MODEL = "mnist_cnn", "mnist_cnn_noise", "scene_cnn"
DIGIT_CAM_LAYER = "relu2"            # mnist_cnn's last conv layer (minisg/methods/METHODS.md §1, §7)
SCENE_CAM_LAYER = scenes.CAM_LAYER   # scene_cnn's last conv layer ("relu3")
SCENE_EXTRA_CAM_LAYER = "relu2"      # an earlier layer, where the head is not linear (see _scene_jobs)
SCENE_SEEDS = {"distractors": 12_001, "pairs": 12_002, "repeats": 12_003}
NOISE_TABLE_METHODS = ("vanilla", "smoothgrad")
CHUNK = 10                           # images per method call: bounds memory (occlusion of scenes)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every number that decides what run() measures; FULL and QUICK below."""

    digits: int                    # test digits for tables 1 and 3: classes 0..9 in turn
    randomised_digits: int         # the first of them that also go through cascading randomisation
    scenes: int                    # scenes in each of the three scene sets
    smoothgrad_n: int = 50         # SmoothGrad: the paper's n ...
    smoothgrad_noise: float = 0.15  # ... and noise level sigma / (max - min)
    ig_steps: int = 50             # Integrated Gradients: right Riemann sum with 50 steps
    sgcam_n: int = 5               # Smooth Grad-CAM++: the paper's nsamples = 5 ...
    sgcam_noise: float = 0.3       # ... and std_dev = 0.3
    occlusion_patch: int = 4
    occlusion_stride: int = 2
    curve_steps: int = 50          # deletion / insertion: pixels removed in 50 equal chunks
    digit_pointing_tolerance: float = 0.0  # pixels: the maximum must lie on the ink itself
    scene_pointing_tolerance: float = 2.0  # pixels: near the target's ink (Zhang et al.: 15 px on 224)
    seed: int = 0


FULL = Settings(digits=100, randomised_digits=20, scenes=50)
QUICK = Settings(digits=3, randomised_digits=2, scenes=2, smoothgrad_n=3, ig_steps=4, sgcam_n=2,
                 occlusion_patch=7, occlusion_stride=7, curve_steps=6)


# ----------------------------------------------------------------------------- the test images

@dataclasses.dataclass(frozen=True)
class Digits:
    """MNIST test digits with their ink masks: images (N, 1, 28, 28), labels (N,), masks (N, 28, 28)."""
    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    indices: list


def digit_set(count):
    """The first `count` test digits taking classes in turn: the 1st 0, the 1st 1, ..., the 2nd 0, ..."""
    indices = [data.find_digit(i % data.NUM_CLASSES, "test", nth=i // data.NUM_CLASSES) for i in range(count)]
    images, labels = data.load_mnist("test")
    images = images[indices]
    return Digits(images, labels[indices], images[:, 0] > data.MASK_THRESHOLD, indices)


def scene_sets(count):
    """The three fixed scene sets of table 2 (56x56 canvases of test digits):

    distractors: 2-4 digits of different classes; the target is digit 0, the others distract.
    pairs:       2 digits of different classes (discriminativity: digit 0 vs digit 1).
    repeats:     2-3 digits of one class (multiple occurrences).
    """
    common = dict(split="test", canvas=scenes.CANVAS)
    return {
        "distractors": data.make_scenes(count, digits=(2, 4), distinct_classes=True,
                                        seed=SCENE_SEEDS["distractors"], **common),
        "pairs": data.make_scenes(count, digits=(2, 2), distinct_classes=True, seed=SCENE_SEEDS["pairs"], **common),
        "repeats": data.make_scenes(count, digits=(2, 3), same_class=True, seed=SCENE_SEEDS["repeats"], **common),
    }


def scene_targets(scene_set):
    """The class of each scene's digit 0: the target of every map of table 2."""
    return np.array([labels[0] for labels in scene_set.digit_labels], dtype=np.int64)


# ----------------------------------------------------------------------------- computing maps

def method_options(name, settings, layer):
    """Keyword arguments for METHODS[name] at the evaluation's settings (the papers' where given)."""
    if name == "smoothgrad":
        return dict(n=settings.smoothgrad_n, noise_level=settings.smoothgrad_noise, seed=settings.seed)
    if name == "integrated_gradients":
        return dict(steps=settings.ig_steps)
    if name == "smooth_gradcam_pp":
        return dict(n=settings.sgcam_n, noise_level=settings.sgcam_noise, seed=settings.seed, layer=layer)
    if name in ("gradcam", "gradcam_pp", "guided_gradcam"):
        return dict(layer=layer)
    if name == "occlusion":
        return dict(patch=settings.occlusion_patch, stride=settings.occlusion_stride)
    return {}


def compute_maps(model, name, images, targets, settings, layer):
    """(maps, seconds): METHODS[name]'s maps of `targets`, CHUNK images per call.

    Seeded methods get one Generator for the whole set, so every chunk draws fresh noise.
    """
    options = method_options(name, settings, layer)
    if "seed" in options:
        options["seed"] = np.random.default_rng(settings.seed)
    started = time.perf_counter()
    parts = [METHODS[name](model, images[start:start + CHUNK], targets[start:start + CHUNK], **options)
             for start in range(0, len(images), CHUNK)]
    return np.concatenate(parts), time.perf_counter() - started


def warm_up(model, images):
    """One small gradient call, so that compiling the kernels is not timed as the first method's cost."""
    METHODS["vanilla"](model, images[:2])


# ----------------------------------------------------------------------------- scoring maps

def digit_scores(model, digits, maps, settings):
    """(per-image scores {metric: (N,)}, mean curves {"deletion"/"insertion": (fractions, mean)}).

    Localisation uses the positive part of the map (metrics' default) and, for mass, also its
    absolute value (what SmoothGrad's figures show). Deletion and insertion replace pixels
    by 0 (black, the absence of ink on MNIST), in order of decreasing signed map value, and
    record the softmax probability of the true class.
    """
    masks, labels, tolerance = digits.masks, digits.labels, settings.digit_pointing_tolerance
    scores = {
        "pointing": metrics.pointing_game(maps, masks, tolerance=tolerance),
        "mass": metrics.relevance_mass(maps, masks),
        "mass_abs": metrics.relevance_mass(maps, masks, relevance="absolute"),
        "rank": metrics.relevance_rank_accuracy(maps, masks),
    }
    curves = {}
    for kind, curve in (("deletion", metrics.deletion_curve), ("insertion", metrics.insertion_curve)):
        fractions, values = curve(model, digits.images, maps, labels, steps=settings.curve_steps, baseline=0.0)
        scores[kind] = metrics.area_under_curve(fractions, values)
        curves[kind] = (fractions, values.mean(axis=0))
    scores["total_variation"] = metrics.total_variation(maps)
    scores["high_frequency"] = metrics.high_frequency_energy(maps)
    return scores, curves


def randomisation_scores(model, name, digits, settings, layer):
    """Cascading randomisation (Adebayo et al. 2018) on the first settings.randomised_digits digits.

    Spearman correlation of |map| before and after re-initialising the top layer only
    ("rand_top") and every layer ("rand_all"). NaN where a map became constant.
    """
    count = settings.randomised_digits
    method = functools.partial(METHODS[name], **method_options(name, settings, layer))  # same noise every time
    result = metrics.cascading_randomisation(model, method, digits.images[:count], digits.labels[:count],
                                             seed=settings.seed)
    return {"rand_top": result.spearman_abs[0], "rand_all": result.spearman_abs[-1]}


def occurrence_shares(maps, scene_masks, counts):
    """For each scene, the share of the digits' positive relevance on each of its digits: a list of (K,) arrays."""
    relevance = metrics.pool_channels(maps, "positive")
    masses = np.einsum("nhw,nkhw->nk", relevance, scene_masks.astype(np.float64))
    shares = []
    for mass, count in zip(masses, counts):
        total = mass[:count].sum()
        shares.append(mass[:count] / total if total > 0 else np.zeros(count))
    return shares


def scene_scores(sets, maps, tolerance):
    """Per-scene scores of table 2 from the maps of each set ({set name: maps}).

    target_share:  positive relevance on the target digit / on all digits (distractors set)
    pointing:      the map's maximum within `tolerance` px of the target's ink (distractors set)
    discriminativity: share on the target minus share on the other digit (pairs set)
    repeats_mass:  share of all relevance on the occurrences of the class (repeats set)
    weakest_share: K x the smallest occurrence's share of the digits' relevance: 1 when the
                   K occurrences share it evenly, 0 when one occurrence gets none (repeats set)
    """
    distractors, pairs, repeats = sets["distractors"], sets["pairs"], sets["repeats"]
    shares = occurrence_shares(maps["repeats"], repeats.masks, repeats.count)
    return {
        "target_share": metrics.target_mass_share(maps["distractors"], distractors.masks, 0),
        "pointing": metrics.pointing_game(maps["distractors"], distractors.masks[:, 0], tolerance=tolerance),
        "discriminativity": metrics.discriminativity(maps["pairs"], pairs.masks[:, 0], pairs.masks[:, 1]),
        "repeats_mass": metrics.relevance_mass(maps["repeats"], repeats.masks.any(axis=1)),
        "weakest_share": np.array([len(s) * s.min() for s in shares]),
    }


def summarise(scores, skip_nan=False):
    """{metric: (mean, standard error)} of per-image scores; all-NaN columns give (nan, nan)."""
    summary = {}
    for metric, values in scores.items():
        values = np.asarray(values, dtype=np.float64)
        if skip_nan and np.isnan(values).all():
            summary[metric] = (float("nan"), float("nan"))
        else:
            summary[metric] = metrics.mean_and_stderr(values, skip_nan=skip_nan)
    return summary


# ----------------------------------------------------------------------------- the three tables

DIGIT_COLUMNS = {
    "pointing": "pointing ↑", "mass": "mass ↑", "mass_abs": "mass abs ↑", "rank": "rank acc ↑",
    "deletion": "deletion AUC ↓", "insertion": "insertion AUC ↑", "total_variation": "TV ↓",
    "high_frequency": "HF energy ↓", "rand_top": "rand ρ top ↓", "rand_all": "rand ρ all ↓",
}
SCENE_COLUMNS = {
    "target_share": "target share ↑", "pointing": "pointing ↑", "discriminativity": "discrim. ↑",
    "repeats_mass": "repeats mass ↑", "weakest_share": "weakest share ↑",
}


def _digit_table(digits, settings, progress, timings):
    """Table 1 (mnist_cnn, every method) -> (rows, mean curves, maps kept for table 3)."""
    model = models.load(DIGIT_MODEL)
    warm_up(model, digits.images)
    rows, curves, kept = {}, {}, {}
    for name in METHODS:
        progress.set_description(f"digits: {name}")
        maps, seconds = compute_maps(model, name, digits.images, digits.labels, settings, DIGIT_CAM_LAYER)
        timings.setdefault(name, {})["digits"] = 1000 * seconds / len(maps)
        scores, curves[name] = digit_scores(model, digits, maps, settings)
        rows[name] = {**summarise(scores),
                      **summarise(randomisation_scores(model, name, digits, settings, DIGIT_CAM_LAYER), skip_nan=True)}
        kept[name] = maps
        progress.update(1)
    return rows, curves, kept


def _noise_table(digits, settings, progress, digit_rows):
    """Table 3: {model} x {vanilla, smoothgrad}; mnist_cnn's rows come from table 1."""
    noisy = {}
    noisy_model = models.load(NOISY_DIGIT_MODEL)
    warm_up(noisy_model, digits.images)
    for name in NOISE_TABLE_METHODS:
        progress.set_description(f"noise table: {name}")
        maps, _ = compute_maps(noisy_model, name, digits.images, digits.labels, settings, DIGIT_CAM_LAYER)
        noisy[name] = summarise(digit_scores(noisy_model, digits, maps, settings)[0])
        progress.update(1)
    rows = {}
    for model_name in (DIGIT_MODEL, NOISY_DIGIT_MODEL):
        for name in NOISE_TABLE_METHODS:
            clean = {k: v for k, v in digit_rows[name].items() if not k.startswith("rand")}
            rows[f"{model_name} × {name}"] = clean if model_name == DIGIT_MODEL else noisy[name]
    return rows


def _scene_jobs():
    """(row name, method, CAM layer) of table 2.

    Every method at the last conv layer (relu3), plus the CAM methods at relu2: after relu3
    scene_cnn's head (1x1 conv + average) is linear, so there Grad-CAM equals CAM and
    Smooth Grad-CAM++ equals Grad-CAM++ exactly (the gradient cannot depend on the noise);
    at relu2 the head is not linear and the noise can matter.
    """
    jobs = [(name, name, SCENE_CAM_LAYER) for name in METHODS]
    jobs += [(f"{name} @{SCENE_EXTRA_CAM_LAYER}", name, SCENE_EXTRA_CAM_LAYER) for name in CAM_METHODS]
    return jobs


def _scene_table(sets, settings, progress, timings):
    """Table 2 (scene_cnn) -> (rows, maps of each job for the examples figure)."""
    model = models.load(SCENE_MODEL)
    names = list(sets)
    warm_up(model, sets[names[0]].images)
    images = np.concatenate([sets[n].images for n in names])
    targets = np.concatenate([scene_targets(sets[n]) for n in names])
    bounds = np.cumsum([0] + [len(sets[n]) for n in names])
    rows, kept = {}, {}
    for row, name, layer in _scene_jobs():
        progress.set_description(f"scenes: {row}")
        maps, seconds = compute_maps(model, name, images, targets, settings, layer)
        if row == name:
            timings.setdefault(name, {})["scenes"] = 1000 * seconds / len(maps)
        per_set = {n: maps[bounds[i]:bounds[i + 1]] for i, n in enumerate(names)}
        rows[row] = summarise(scene_scores(sets, per_set, settings.scene_pointing_tolerance))
        kept[row] = per_set
        progress.update(1)
    return rows, kept


def detection_rates(sets):
    """How often scene_cnn says the target's class is present (logit > 0), per scene set."""
    model = models.load(SCENE_MODEL)
    rates = {}
    for name, scene_set in sets.items():
        logits = scenes.scene_logits(model, scene_set.images)
        rates[name] = float((logits[np.arange(len(logits)), scene_targets(scene_set)] > 0).mean())
    return rates


# ----------------------------------------------------------------------------- run

def run(quick=False, out_dir="evaluation", progress=True, settings=None):
    """Compute all three tables and write them to `out_dir`; returns the results as a dict.

    quick=True uses QUICK (a few images, small n: seconds, for tests), else FULL (the papers'
    settings, 100 digits, 3 x 50 scenes: about 3 CPU-minutes, 6 minutes on a busy two-core
    machine). `settings` overrides both.
    """
    check_out_dir(out_dir)
    with files.exclusive(out_dir, "--out"):  # a second run on the same folder is refused
        results, outputs = _compute(quick, settings, progress)
        write_files_atomically(out_dir, outputs)
    return results


def _compute(quick, settings, progress):
    """All three tables as a dict, and {file name: bytes} of the reports."""
    from tqdm import tqdm

    settings = settings or (QUICK if quick else FULL)
    started = time.perf_counter()
    digits, sets = digit_set(settings.digits), scene_sets(settings.scenes)
    jobs = len(METHODS) + 2 + len(_scene_jobs())
    timings = {}
    with tqdm(total=jobs, disable=not progress, unit="method") as bar:
        digit_rows, curves, digit_maps = _digit_table(digits, settings, bar, timings)
        noise_rows = _noise_table(digits, settings, bar, digit_rows)
        scene_rows, scene_maps = _scene_table(sets, settings, bar, timings)
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
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise files.OutputPathError(f"{argument} {out_dir}: is a file; expected a folder")
    files.check_output_path(out_dir / "results.md", argument)
    return out_dir


# ----------------------------------------------------------------------------- reports

def table_markdown(rows, columns):
    """results_tables of rows {method: {metric: (mean, se)}} with display names for the metrics."""
    renamed = {method: {columns.get(k, k): v for k, v in scores.items()} for method, scores in rows.items()}
    markdown, _ = metrics.results_tables(renamed)
    return markdown


def report_markdown(results):
    """results.md: a header with the settings, then the three tables and what their columns mean."""
    s, tables = results["settings"], results["tables"]
    detection = ", ".join(f"{name} {rate:.0%}" for name, rate in results["detection"].items())
    accuracy = ", ".join(f"{name} {acc:.0%}" for name, acc in results["digit_accuracy"].items())
    timing_rows = [f"| {name} | {t.get('digits', float('nan')):.1f} | {t.get('scenes', float('nan')):.1f} |"
                   for name, t in results["timings"].items()]
    lines = [
        "# Sensitivity maps measured against MNIST's ground truth (`minisg evaluate`)",
        "",
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
        "",
        f"## 1. One digit: {DIGIT_MODEL}",
        "",
        table_markdown(results["tables"]["digits"], DIGIT_COLUMNS),
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
        f"(here {results['ink_share']:.2f}).",
        "",
        f"## 2. Scenes: {SCENE_MODEL}",
        "",
        table_markdown(results["tables"]["scenes"], SCENE_COLUMNS),
        "target share: positive relevance on the target digit / on all digits of a scene with 2-4 "
        "digits of different classes (1/K if the map does not choose). pointing: the maximum within "
        "the tolerance of the target's ink. discrim.: share on the target minus share on the other "
        "digit, two digits of different classes, in [-1, 1]. repeats: 2-3 digits of one class; "
        "repeats mass: share of all relevance on them; weakest share: K x the smallest share of one "
        "occurrence among the occurrences' relevance (1 = shared evenly, 0 = one occurrence ignored). "
        f"Rows without @: CAM layer {SCENE_CAM_LAYER}, where the head "
        "(1x1 conv + global average) is linear: Grad-CAM equals CAM and Smooth Grad-CAM++ equals "
        f"Grad-CAM++ exactly. Rows @{SCENE_EXTRA_CAM_LAYER}: the CAM methods one conv layer earlier.",
        "",
        "## 3. Training noise × inference noise (SmoothGrad §3.5)",
        "",
        table_markdown(results["tables"]["noise"], DIGIT_COLUMNS),
        f"{NOISY_DIGIT_MODEL} was trained with input noise (noise level 0.1); same digits and metrics as table 1.",
        "",
        "## Cost",
        "",
        "| method | digit maps (ms/image) | scene maps (ms/image) |",
        "|---|---|---|",
        *timing_rows,
        "",
    ]
    return "\n".join(lines)


def results_csv(results):
    """results.csv: one row per (table, method, metric) with mean, stderr and the display name."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["table", "method", "metric", "mean", "stderr", "column"])
    columns = {"digits": DIGIT_COLUMNS, "scenes": SCENE_COLUMNS, "noise": DIGIT_COLUMNS}
    for table, rows in results["tables"].items():
        for method, scores in rows.items():
            for metric, (mean, stderr) in scores.items():
                writer.writerow([table, method, metric, repr(mean), repr(stderr), columns[table].get(metric, metric)])
    return buffer.getvalue()


# ----------------------------------------------------------------------------- figures

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
