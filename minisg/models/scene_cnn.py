"""The scene model: a small fully-convolutional CNN that names every digit class on a canvas.

MNIST's one-digit images cannot ask "which of these digits?" or "all three sevens?". Scenes
can (``minisg.data.make_scenes``: 56x56 canvases with 1-4 digits, each with its own ink mask).
This module trains a model for them, so lesson 12 and ``minisg evaluate`` can score saliency
maps on scenes.

The model (``scene_cnn``), 56x56x1 in, 10 logits out, one per class, multi-label:

    conv1 5x5 1->16  relu1  pool1   -> 28x28x16
    conv2 3x3 16->32 relu2  pool2   -> 14x14x32
    conv3 3x3 32->64 relu3          -> 14x14x64   (the last conv layer)
    conv4 1x1 64->10                -> 14x14x10   (one "class map" per digit class)
    gap (global average pool)       -> 10 logits

Fully convolutional: each class map says where on the canvas that class is seen, and the
global average turns it into one score (the CAM architecture of Zhou et al. 2016). Each logit
gets its own sigmoid: p_c = sigmoid(z_c) is the probability that class c is in the scene, so
several classes can be present at once. The loss is the mean binary cross-entropy,

    BCE(z, y) = -[y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))] = softplus(z) - y z,

written with softplus so that it never overflows.

Training data (``train_scenes``): fresh scenes every epoch, drawn from the MNIST "train"
split with a seed derived from (config.seed, epoch), so a run is reproducible and the model
sees new digit combinations each epoch. Validation scenes come from the "val" split, test
scenes from the "test" split; both are generated once with fixed seeds.

The shipped ``data/models/scene_cnn.npz`` was trained on the CPU by (recorded command; train
can no longer write into data/models, so give another --out to reproduce it)

    minisg train --task scenes --out data/models/scene_cnn.npz --epochs 8 --batch-size 32 --lr 3e-3 --seed 0

(2,504 Adam steps on 80,000 scenes, about two CPU-minutes): test mAP 0.979 on 2,000 scenes.
"""
import dataclasses
import time

import numpy as np

from .. import backend, data, models, nn, parallel
from .. import functional as F
from ..autograd import Tensor
from ..optim import Adam

CANVAS = 56                   # side of the square scene canvas, pixels
DIGITS_PER_SCENE = (1, 4)     # fewest and most digits of a training scene
SCENES_PER_EPOCH = 10_000     # fresh training scenes per epoch (config.train_subset overrides)
EVAL_SCENES = 2_000           # validation and test scenes (config.eval_subset overrides)
VAL_SEED, TEST_SEED = 1_000_001, 2_000_002   # fixed: every run is scored on the same scenes
DECISION_THRESHOLD = 0.5      # a class counts as present when sigmoid(logit) > 0.5, i.e. logit > 0
CAM_LAYER = "relu3"           # the last conv layer: the usual choice for Grad-CAM


def _class_prior_logit():
    """log(p / (1 - p)) for p = P(a given class is in a training scene).

    A scene holds k = 1..4 digits (equally likely), each of a class drawn from 10: a class
    is absent with probability 0.9^k, so p = 1 - mean(0.9^k) = 0.226 and the logit is -1.23.
    """
    fewest, most = DIGITS_PER_SCENE
    absent = np.mean([(1 - 1 / data.NUM_CLASSES) ** k for k in range(fewest, most + 1)])
    return float(np.log((1 - absent) / absent))


CLASS_PRIOR_LOGIT = _class_prior_logit()


# ----------------------------------------------------------------------------- the model

def scene_cnn(seed=0, dtype=np.float32):
    """The fully-convolutional scene model (see the module docstring).

    Weights ~ He initialisation (truncated normal, std sqrt(2 / fan_in)), which keeps the
    activations' scale through the four conv layers. Biases 0, except the class maps': they
    start at CLASS_PRIOR_LOGIT, so the untrained model already predicts how often a class is
    present instead of spending its first hundred steps learning that.
    """
    rng = np.random.default_rng(seed)

    def conv(in_channels, out_channels, size, bias=0.0):
        std = float(np.sqrt(2.0 / (in_channels * size * size)))
        return nn.Conv2d(in_channels, out_channels, size, padding=size // 2, init=("truncated_normal", std),
                         bias_init=bias, rng=rng, dtype=dtype)

    model = nn.Sequential(
        ("conv1", conv(1, 16, 5)),
        ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2)),
        ("conv2", conv(16, 32, 3)),
        ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(2)),
        ("conv3", conv(32, 64, 3)),
        ("relu3", nn.ReLU()),
        ("conv4", conv(64, data.NUM_CLASSES, 1, bias=CLASS_PRIOR_LOGIT)),
        ("gap", nn.GlobalAvgPool2d()),
    )
    model.default_cam_layer = CAM_LAYER   # CAM methods' layer when given none (METHODS.md §7)
    model.architecture = "scene_cnn"      # the builder's name: checkpoints.save writes it to meta
    # fully convolutional: any canvas size works (trained on CANVAS x CANVAS); pixels in [0, 1]
    model.input_shape, model.input_range = (1, None, None), (0.0, 1.0)
    return model


models.register_architecture("scene_cnn", scene_cnn)


def bce_with_logits(logits, targets):
    """Mean binary cross-entropy softplus(z) - y z over every image and class.

    logits: Tensor (N, K); targets: 0/1 array (N, K) (a NumPy array or a Tensor).
    Equal to -mean[y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))], without overflow.
    """
    targets = targets if isinstance(targets, Tensor) else Tensor(logits.xp.asarray(targets, dtype=logits.dtype))
    if targets.shape != logits.shape:
        raise ValueError(f"bce_with_logits: targets have shape {targets.shape}, logits {logits.shape}")
    return F.mean(F.softplus(logits) - targets * logits)


# ----------------------------------------------------------------------------- multi-label metrics

def average_precision(scores, positives):
    """Average precision of one class: the mean, over its positive examples, of the precision
    among all examples scored at least as high as that positive.

    scores: (N,) floats; positives: (N,) bools. Ties are counted pessimistically: a positive
    shares its rank with every example of equal score (precision is taken after the whole tied
    group). NaN when there is no positive example.
    """
    scores, positives = np.asarray(scores, np.float64), np.asarray(positives, bool)
    if not positives.any():
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_positives = scores[order], positives[order]
    # Last index of each group of equal scores, so tied examples share one precision.
    group_end = np.r_[np.flatnonzero(np.diff(sorted_scores) != 0), len(scores) - 1]
    ranks_at_end = np.searchsorted(group_end, np.arange(len(scores)))   # group of each position
    true_positives = np.cumsum(sorted_positives)[group_end][ranks_at_end]
    retrieved = (group_end + 1)[ranks_at_end]
    return float((true_positives / retrieved)[sorted_positives].mean())


def multilabel_metrics(logits, labels):
    """{"mAP", "exact_match", "label_accuracy"} of logits (N, K) against multi-hot labels (N, K).

    mAP: mean over classes of average_precision (classes without a positive left out).
    exact_match: share of images whose K present/absent decisions (logit > 0) are all right.
    label_accuracy: share of the N*K decisions that are right.
    """
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels) > 0.5
    decisions = logits > 0          # sigmoid(z) > DECISION_THRESHOLD = 0.5
    per_class = [average_precision(logits[:, c], labels[:, c]) for c in range(labels.shape[1])]
    return {
        "mAP": float(np.nanmean(per_class)),
        "exact_match": float((decisions == labels).all(axis=1).mean()),
        "label_accuracy": float((decisions == labels).mean()),
    }


def scene_logits(model, images, batch_size=200):
    """Logits (N, 10) of scene images (N, 1, H, W), in eval mode, without a graph."""
    return parallel.logits(model, images, batch_size)


def evaluate_scenes(model, scenes):
    """multilabel_metrics of the model on a Scenes set."""
    return multilabel_metrics(scene_logits(model, scenes.images), scenes.labels)


# ----------------------------------------------------------------------------- scene sets

def training_scenes(config, epoch):
    """This epoch's fresh training scenes (MNIST "train" split), seeded by (seed, epoch)."""
    count = SCENES_PER_EPOCH if config.train_subset is None else config.train_subset
    seed = int(np.random.SeedSequence([config.seed, epoch]).generate_state(1)[0])
    return data.make_scenes(count, split="train", canvas=CANVAS, digits=DIGITS_PER_SCENE, seed=seed)


def evaluation_scenes(split, config=None):
    """The fixed validation ("val") or test ("test") scenes; config.eval_subset sets how many."""
    count = EVAL_SCENES if config is None or config.eval_subset is None else config.eval_subset
    seed = VAL_SEED if split == "val" else TEST_SEED
    return data.make_scenes(count, split=split, canvas=CANVAS, digits=DIGITS_PER_SCENE, seed=seed)


# ----------------------------------------------------------------------------- training

def _checkpoint_meta(config, state, complete, test=None):
    meta = {"architecture": "scene_cnn", "config": dataclasses.asdict(config),
            "progress": state, "complete": complete,
            "canvas": CANVAS, "digits_per_scene": list(DIGITS_PER_SCENE)}
    if test is not None:
        meta.update({f"test_{name}": value for name, value in test.items()})
    return meta


def train_scenes(config, log=print):
    """Train scene_cnn per `config` (a train.TrainConfig with task="scenes"); returns (model, meta).

    Honours out, epochs, max_steps, batch_size, lr, seed, noise_level (Gaussian input noise
    as in SmoothGrad §3.5), train_subset (scenes per epoch), eval_subset (validation and test
    scenes), device and progress (resume and the gradient penalties are refused, not
    ignored). After every epoch the validation mAP is logged and a
    checkpoint is written atomically (models.save); the final one adds the test metrics.
    resume is not supported for scenes (training takes minutes).

    The output is claimed as for MNIST (train.claim_output): checked before any work, an
    existing file refused without config.overwrite, never a shipped checkpoint, one writer.
    """
    from .training import claim_output

    config.validate()
    if config.resume:
        raise ValueError("train: --resume is not supported for --task scenes (training takes a few minutes)")
    if getattr(config, "grad_penalty_weight", 0) or getattr(config, "smoothness_weight", 0):
        raise ValueError("train: input-gradient penalties are not supported for --task scenes")
    with claim_output(config) as out:
        return _train_scenes(config, out, log)


def _train_scenes(config, out, log):
    from .training import TrainingDiverged, check_weights, log_interrupted, with_out_status

    backend.set_device(config.device)
    log(f"training into {out}")
    model = scene_cnn(seed=config.seed).to(config.device)
    optimizer = Adam(model.parameters(), lr=config.lr)
    val_scenes = evaluation_scenes("val", config)
    state = {"epoch": 0, "step": 0, "seconds": 0.0, "val_mAP": []}

    saved_epoch = None   # the epoch of the checkpoint written to `out`
    try:
        for epoch in range(config.epochs):
            scenes = training_scenes(config, epoch)
            rng = np.random.default_rng([config.seed, epoch, 1])   # batch order and input noise
            started = time.perf_counter()
            finished = _run_epoch(model, optimizer, config, scenes, rng, epoch, state)
            check_weights(model, config, state["step"])   # never a diverged checkpoint
            state["seconds"] += time.perf_counter() - started
            state["epoch"] = epoch + 1
            state["val_mAP"].append(evaluate_scenes(model, val_scenes)["mAP"])
            log(f"epoch {epoch + 1}: validation mAP {state['val_mAP'][-1]:.4f}, "
                f"{state['step']} steps, {state['seconds']:.0f} s")
            models.save(model, out, _checkpoint_meta(config, state, complete=False))
            saved_epoch = state["epoch"]
            if finished:
                break

        test = evaluate_scenes(model, evaluation_scenes("test", config))
        test.update(scenes=int(EVAL_SCENES if config.eval_subset is None else config.eval_subset))
        meta = _checkpoint_meta(config, state, complete=True, test=test)
        meta["train_seconds"] = round(state["seconds"], 1)
        models.save(model, out, meta)
    except KeyboardInterrupt:
        log_interrupted(log, out, saved_epoch)
        raise
    except TrainingDiverged as exc:
        raise with_out_status(exc, out, saved_epoch) from None
    log(f"test mAP {test['mAP']:.4f}, exact match {test['exact_match']:.4f}, label accuracy "
        f"{test['label_accuracy']:.4f} on {test['scenes']} scenes; wrote {out}")
    return model.eval(), models.read_checkpoint(out)[1]


def _run_epoch(model, optimizer, config, scenes, rng, epoch, state):
    """One pass over this epoch's scenes; returns True when config.max_steps is reached."""
    from tqdm import tqdm

    from .training import check_loss

    model.train()
    xp = model.parameters()[0].xp
    steps = -(-len(scenes) // config.batch_size)
    bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{config.epochs}", unit="step",
               disable=not config.progress, leave=False)
    # NumPy's overflow warnings would only come before check_loss's named error
    with bar, np.errstate(over="ignore", invalid="ignore"):
        for images, labels in data.batches(scenes.images, scenes.labels, config.batch_size, rng):
            if config.noise_level > 0:
                images = data.add_noise(images, config.noise_level, rng)
            loss = bce_with_logits(model(Tensor(xp.asarray(images))), labels)
            loss_value = check_loss(loss, config, state["step"] + 1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            state["step"] += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}")
            if config.max_steps is not None and state["step"] >= config.max_steps:
                return True
    return False
