"""What `minisg evaluate` measures: its settings, its test images, and how it computes maps.

Everything here is deterministic: the digits are the first ones of each class in the test
split, the scenes are drawn with fixed seeds, the noise of SmoothGrad and Smooth Grad-CAM++
is seeded. report_tables scores the maps, report_text and report_figures write them up.
"""
import dataclasses
import time

import numpy as np

from .. import data
from ..methods import METHODS
from ..checks import check_int, check_number
from ..models import scene_cnn as scenes

DIGIT_MODEL, NOISY_DIGIT_MODEL, SCENE_MODEL = "mnist_cnn", "mnist_cnn_noise", "scene_cnn"
DIGIT_CAM_LAYER = "relu2"            # mnist_cnn's last conv layer (minisg/methods/METHODS.md §1, §7)
SCENE_CAM_LAYER = scenes.CAM_LAYER   # scene_cnn's last conv layer ("relu3")
SCENE_EXTRA_CAM_LAYER = "relu2"      # an earlier layer, where the head is not linear (see scene_jobs)
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

    def __post_init__(self):  # a bad number fails here, not minutes into run()
        for field in dataclasses.fields(self):
            name, value = f"Settings.{field.name}", getattr(self, field.name)
            if field.type is float:
                check_number(name, value)
            else:
                check_int(name, value, low=0 if field.name == "seed" else 1)
        if self.randomised_digits > self.digits:
            raise ValueError(f"Settings.randomised_digits: expected at most digits ({self.digits}), "
                             f"got {self.randomised_digits}")


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
