"""The checks of lesson 12's exercises (ex12_measuring_maps.py): relevance mass and the deletion
curve, against minisg.evaluation.metrics."""
import numpy as np

from .expect import Mismatch, as_array, expect_array, expect_close, matches, mlp
from .registry import exercise

@exercise("12.1", "relevance mass", ["relevance_mass"],
          approach="r = max(channel sum, 0); sum(r * mask) / sum(r) per image, 0 when sum(r) == 0",
          section="2. Localisation: does the map sit on the digit?")
def check_relevance_mass(ex):
    from ..evaluation import metrics

    rng = np.random.default_rng(121)
    maps = rng.standard_normal((4, 2, 5, 5))
    maps[2] = -np.abs(maps[2])                   # no positive relevance at all: score 0
    masks = rng.random((4, 5, 5)) > 0.6
    masks[:, 2, 2] = True
    got = expect_array(ex.relevance_mass(maps, masks), "relevance_mass", (4,), np.float64)
    if np.isnan(got[2]):
        raise Mismatch("an image with no positive relevance scored NaN", hint="return 0 where sum(r) == 0")
    absolute = [metrics.relevance_mass(np.abs(maps.sum(axis=1)), masks),       # |channel sum|
                metrics.relevance_mass(maps, masks, relevance="absolute")]     # channel sum of |M|
    hint = None
    if any(matches(got, wrong) for wrong in absolute):
        hint = "that counts absolute values: relevance is the positive part, np.maximum(channel sum, 0)"
    expect_close(got, metrics.relevance_mass(maps, masks), "relevance_mass of (N, C, H, W) maps", hint=hint)
    flat_maps = rng.standard_normal((4, 5, 5))
    expect_close(ex.relevance_mass(flat_maps, masks), metrics.relevance_mass(flat_maps, masks),
                 "relevance_mass of (N, H, W) maps")


@exercise("12.2", "deletion curve", ["deletion_curve"],
          approach="order = np.argsort(-channel_sum, kind='stable'); after step s zero the first (s*P)//steps "
                   "pixels in every channel; score = softmax probability of the target",
          section="3. Faithfulness: deletion and insertion")
def check_deletion_curve(ex):
    from ..evaluation import metrics

    rng = np.random.default_rng(122)
    model, x, target = mlp(122, sizes=(18, 10, 4)), rng.random((2, 2, 3, 3)), np.array([1, 3])
    ties = np.zeros((2, 3, 3))
    ties[0, 1, 1], ties[1, 0, 2] = 1.0, -1.0      # everything else tied: row-major order
    cases = [(rng.standard_normal((2, 2, 3, 3)), 9), (rng.standard_normal((2, 2, 3, 3)), 4), (ties, 4)]
    for maps, steps in cases:
        fractions, scores = metrics.deletion_curve(model, x, maps, target, steps=steps)
        answer = ex.deletion_curve(model, x, maps, target, steps)
        if not isinstance(answer, tuple) or len(answer) != 2:
            raise Mismatch("deletion_curve must return a pair (fractions, scores)")
        what = f"for maps of shape {maps.shape} and steps={steps}"
        expect_close(answer[0], fractions, f"the fractions {what}")
        got = as_array(answer[1], "scores")
        mistakes = [(metrics.deletion_curve(model, x, maps, target, steps=steps, score="logit")[1],
                     "those are the target's logits: the score is its softmax probability")]
        if maps is not ties:  # the tied maps test the tie order; the other maps, the direction
            mistakes.append((metrics.deletion_curve(model, x, -maps, target, steps=steps)[1],
                             "you removed the LEAST relevant pixels first"))
        hint = next((text for wrong, text in mistakes if matches(got, wrong)), None)
        expect_close(got, scores, f"the scores {what}", hint=hint)
