"""Hyperparameter search for a configurable U-Net denoiser with keras-tuner.

The search space lives in one place (``_declare_space``); ``build_unet_from`` builds the model from
plain values, so the final fit can rebuild the best model from a JSON of hyperparameters.
keras-tuner only logs a failed trial, so ``run_search`` checks that trials actually completed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import math
import signal
import threading
from collections import Counter
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import keras
import keras_tuner
from keras import layers, ops
from keras_tuner.engine.trial import Trial, TrialStatus

from pipeline.models import IMAGE_SHAPE, bn_block, conv_block, image_head

log = logging.getLogger(__name__)

SPACE_VERSION = "2"  # bump when the search space or the model code changes
OBJECTIVE = keras_tuner.Objective("val_mse", "min")  # not val_loss: the loss is tuned too
SSIM_WEIGHT = 0.1
LOSSES = ("mse", "binary_crossentropy", "mae", "mse_ssim")
RESIDUAL_LOSSES = ("mse", "mae", "mse_ssim")
RESIDUAL_LOSS_KEY = "residual_loss"  # the tuner's name for ``loss`` with the residual head


class TuningError(RuntimeError):
    """The search produced no usable (completed) trial."""


@keras.saving.register_keras_serializable(package="pipeline")
def mse_ssim(y_true, y_pred):
    """Per-image MSE + 0.1 * (1 - SSIM) on (batch, 28, 28) images in [0, 1]."""
    import tensorflow as tf

    y_true = ops.cast(y_true, y_pred.dtype)
    mse = ops.mean(ops.square(y_true - y_pred), axis=(-2, -1))
    ssim = tf.image.ssim(y_true[..., None], y_pred[..., None], max_val=1.0)
    return mse + SSIM_WEIGHT * (1.0 - ssim)


def _declare_space(hp: keras_tuner.HyperParameters) -> dict[str, object]:
    """Register the search space on ``hp`` and return the current values.

    ``loss`` depends on ``residual``: binary cross-entropy needs the sigmoid head, because the
    residual head's clip has no gradient where it clips (a search once picked that pair on noise).
    """
    values = {
        "depth": hp.Choice("depth", [2, 3], default=2),
        "filters": hp.Choice("filters", [8, 16, 24, 32], default=16),
        "batchnorm": hp.Boolean("batchnorm", default=True),
        "upsampling": hp.Choice("upsampling", ["upsample", "transpose"], default="transpose"),
        "residual": hp.Boolean("residual", default=False),
        "dropout": hp.Float("dropout", 0.0, 0.3, step=0.1, default=0.0),
    }
    # Two names: keras-tuner keeps one value per name, so one name under two conditions breaks.
    with hp.conditional_scope("residual", [False]):
        sigmoid_loss = hp.Choice("loss", list(LOSSES), default="mse")
    with hp.conditional_scope("residual", [True]):
        residual_loss = hp.Choice(RESIDUAL_LOSS_KEY, list(RESIDUAL_LOSSES), default="mse")
    values["loss"] = residual_loss if values["residual"] else sigmoid_loss
    values["learning_rate"] = hp.Float("learning_rate", 1e-4, 3e-3, sampling="log", default=1e-3)
    return values


def default_values() -> dict[str, object]:
    """The hp defaults of the search space."""
    return _declare_space(keras_tuner.HyperParameters())


SPACE_KEYS = tuple(default_values())


def _resolve(values: Mapping[str, object]) -> dict[str, object]:
    """Defaults overlaid with ``values``; keras-tuner's ``tuner/*`` bookkeeping keys are dropped."""
    values = {k: v for k, v in values.items() if not k.startswith("tuner/")}
    unknown = sorted(set(values) - set(SPACE_KEYS))
    if unknown:
        raise ValueError(f"unknown hyperparameters {unknown}; allowed: {list(SPACE_KEYS)}")
    return {**default_values(), **values}


def _padding(depth: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Symmetric padding making 28 divisible by 2**depth (28 -> 32 for depth 3)."""
    side = math.ceil(IMAGE_SHAPE[0] / 2**depth) * 2**depth - IMAGE_SHAPE[0]
    return ((side // 2, side - side // 2),) * 2


def _double_conv(x, filters: int, name: str, batchnorm: bool):
    return bn_block(x, filters, name) if batchnorm else conv_block(x, filters, name, convs=2)


def _upsample(x, filters: int, name: str, mode: str):
    if mode == "transpose":
        return layers.Conv2DTranspose(filters, 2, strides=2, name=f"{name}_transpose")(x)
    if mode == "upsample":
        x = layers.UpSampling2D(2, name=f"{name}_upsample")(x)
        return layers.Conv2D(filters, 2, padding="same", activation="relu", name=f"{name}_upconv")(x)
    raise ValueError(f"unknown upsampling {mode!r}")


def _unet(v: Mapping[str, object], name: str) -> keras.Model:
    depth, filters = int(v["depth"]), int(v["filters"])
    inputs = keras.Input(shape=IMAGE_SHAPE, name=f"{name}_input")
    image = layers.Reshape((*IMAGE_SHAPE, 1), name=f"{name}_add_channel")(inputs)
    pad = _padding(depth)
    x = layers.ZeroPadding2D(pad, name=f"{name}_pad")(image) if any(map(any, pad)) else image
    skips = []
    for level in range(1, depth + 1):
        x = _double_conv(x, filters * 2 ** (level - 1), f"{name}_down{level}", bool(v["batchnorm"]))
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"{name}_down{level}_pool")(x)
    x = _double_conv(x, filters * 2**depth, f"{name}_bottom", bool(v["batchnorm"]))
    if float(v["dropout"]) > 0:
        x = layers.Dropout(float(v["dropout"]), name=f"{name}_bottom_dropout")(x)
    for level in range(depth, 0, -1):
        width = filters * 2 ** (level - 1)
        x = _upsample(x, width, f"{name}_up{level}", str(v["upsampling"]))
        x = layers.Concatenate(name=f"{name}_up{level}_concat")([x, skips[level - 1]])
        x = _double_conv(x, width, f"{name}_up{level}", bool(v["batchnorm"]))
    if any(map(any, pad)):
        x = layers.Cropping2D(pad, name=f"{name}_crop")(x)
    return keras.Model(inputs, image_head(x, image, name, bool(v["residual"])), name=name)


def build_unet_from(values: Mapping[str, object], name: str = "unet_tuned") -> keras.Model:
    """Compiled U-Net from plain hyperparameter values (missing keys take the space defaults)."""
    v = _resolve(values)
    losses = RESIDUAL_LOSSES if v["residual"] else LOSSES
    if v["loss"] not in losses:
        head = "the residual head" if v["residual"] else "the sigmoid head"
        raise ValueError(f"loss {v['loss']!r} does not go with {head}; allowed: {list(losses)}")
    model = _unet(v, name)
    loss = mse_ssim if v["loss"] == "mse_ssim" else v["loss"]
    model.compile(optimizer=keras.optimizers.Adam(float(v["learning_rate"])), loss=loss, metrics=["mse"])
    return model


class UNetHyperModel(keras_tuner.HyperModel):
    """The U-Net search space as a keras-tuner HyperModel."""

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        return build_unet_from(_declare_space(hp))


def make_tuner(
    algorithm: Literal["hyperband", "bayesian"],
    directory: str | Path,
    project_name: str,
    *,
    max_epochs: int,
    max_trials: int,
    hyperband_factor: int = 3,
    seed: int,
    overwrite: bool = False,
    distribution_strategy=None,
) -> keras_tuner.Tuner:
    """A tuner minimising val_mse; with ``overwrite=False`` an existing project resumes.

    Hyperband budgets by ``max_epochs``/``hyperband_factor`` (``max_trials`` is ignored); Bayesian
    runs ``max_trials`` trials of the epochs given to ``run_search``.
    """
    if importlib.util.find_spec("tensorboard") is None:
        raise TuningError("keras-tuner imports tensorboard in every trial; install tensorboard")
    if algorithm == "bayesian" and importlib.util.find_spec("sklearn") is None:
        raise TuningError("keras-tuner's Bayesian optimisation needs scikit-learn; install it")
    common = dict(
        hypermodel=UNetHyperModel(),
        objective=OBJECTIVE,
        seed=seed,
        directory=str(directory),
        project_name=project_name,
        overwrite=overwrite,
        distribution_strategy=distribution_strategy,
    )
    if algorithm == "hyperband":
        return keras_tuner.Hyperband(max_epochs=max_epochs, factor=hyperband_factor, **common)
    if algorithm == "bayesian":
        return keras_tuner.BayesianOptimization(max_trials=max_trials, **common)
    raise ValueError(f"unknown tuning algorithm {algorithm!r}; allowed: hyperband, bayesian")


def project_name(algorithm: str, budget: Mapping) -> str:
    """``<algorithm>-<hash>``: a new space version or budget starts a fresh project."""
    key = json.dumps(
        {"space": SPACE_VERSION, "algorithm": algorithm, "budget": budget}, sort_keys=True, default=str
    )
    return f"{algorithm}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _trials(tuner: keras_tuner.Tuner) -> list[Trial]:
    """The oracle's trials; a distributed worker (whose oracle is a gRPC client) reads the trial
    files the chief wrote to the shared project directory."""
    if isinstance(tuner.oracle, keras_tuner.Oracle):
        return list(tuner.oracle.trials.values())
    return [Trial.load(str(path)) for path in sorted(Path(tuner.project_dir).glob("trial_*/trial.json"))]


def trial_counts(tuner: keras_tuner.Tuner) -> Counter:
    """Trials by status."""
    return Counter(trial.status for trial in _trials(tuner))


def _failure_message(tuner: keras_tuner.Tuner, counts: Counter) -> str:
    failed = counts[TrialStatus.FAILED] + counts[TrialStatus.INVALID]
    return (
        f"{counts[TrialStatus.COMPLETED]} of {sum(counts.values())} trials completed, {failed} failed "
        f"(statuses: {dict(counts)}); the errors are in "
        f"{Path(tuner.project_dir) / 'trial_*' / 'trial.json'} (key 'message')"
    )


class _Interrupts:
    """SIGINT/SIGTERM received during a search, raised later at a batch boundary."""

    pending: int | None = None
    count = 0


def _defer(signum, frame):
    _Interrupts.count += 1
    if _Interrupts.count >= 3:  # pressed three times: stop now, wherever that lands
        raise KeyboardInterrupt(f"signal {signum}")
    _Interrupts.pending = signum


def _raise_pending(where: str) -> None:
    if _Interrupts.pending is not None:
        signum, _Interrupts.pending, _Interrupts.count = _Interrupts.pending, None, 0
        raise KeyboardInterrupt(f"signal {signum}, deferred to {where}")


class DeferredInterrupt(keras.callbacks.Callback):
    """Raises a Ctrl-C or SIGTERM received during the search at the next batch boundary.

    Raised at an arbitrary point, a KeyboardInterrupt can be lost (inside a weakref callback
    during garbage collection Python only prints it) or, inside a TensorFlow op, surface as a
    RuntimeError that keras-tuner records as a FAILED trial, which a resumed search never
    reruns. Raised from this callback it passes through keras-tuner, the trial stays RUNNING
    and the resumed search runs it again. A third signal interrupts at once.
    """

    def on_train_batch_end(self, batch, logs=None):
        _raise_pending("a batch boundary")

    def on_test_batch_end(self, batch, logs=None):
        _raise_pending("a batch boundary")


@contextmanager
def deferred_interrupts():
    """Route SIGINT and SIGTERM through :class:`DeferredInterrupt` (main thread only); a signal
    still pending when the block ends (after the last trial) is raised there."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _defer) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
        _raise_pending("the end of the search")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _Interrupts.pending, _Interrupts.count = None, 0


def run_search(tuner: keras_tuner.Tuner, train, validation, epochs: int, callbacks=()) -> dict:
    """Search, then make sure trials completed; raise TuningError if none did.

    keras-tuner stops after three consecutive failed trials with a bare RuntimeError; that also
    becomes a TuningError (a rerun resumes the project). An interrupt leaves the running trial
    RUNNING (see :class:`DeferredInterrupt`), so a rerun resumes it.
    """
    try:
        with deferred_interrupts():
            tuner.search(
                train,
                validation_data=validation,
                epochs=epochs,
                shuffle=False,  # each epoch of ``train`` comes shuffled (FreshNoisePairs.draw_epoch)
                callbacks=[DeferredInterrupt(), *callbacks],
                verbose=1,
            )
    except RuntimeError as error:
        counts = trial_counts(tuner)
        if not counts[TrialStatus.FAILED]:
            raise
        raise TuningError(f"search aborted: {_failure_message(tuner, counts)}") from error
    counts = trial_counts(tuner)
    if counts[TrialStatus.FAILED]:
        log.warning("tuning: %s", _failure_message(tuner, counts))
    if not counts[TrialStatus.COMPLETED]:
        raise TuningError(f"no trial completed: {_failure_message(tuner, counts)}")
    best = _best_trial(tuner)
    return {
        "completed": counts[TrialStatus.COMPLETED],
        "failed": counts[TrialStatus.FAILED] + counts[TrialStatus.INVALID],
        "best_val_mse": float(best.score),
        "best_hyperparameters": _space_values(best.hyperparameters.values),
    }


def _best_trial(tuner: keras_tuner.Tuner) -> keras_tuner.engine.trial.Trial:
    completed = [trial for trial in _trials(tuner) if trial.status == TrialStatus.COMPLETED]
    if not completed:
        raise TuningError(f"no completed trial in {tuner.project_dir}")
    return min(completed, key=lambda trial: trial.score)


def _space_values(values: Mapping[str, object]) -> dict[str, object]:
    """A trial's values as plain space values (the loss under ``loss`` whichever head it goes with)."""
    values = dict(values)
    if RESIDUAL_LOSS_KEY in values:
        values["loss"] = values.pop(RESIDUAL_LOSS_KEY)
    return {key: values[key] for key in SPACE_KEYS if key in values}


def best_hyperparameters(tuner: keras_tuner.Tuner) -> dict:
    """Search-space values of the best completed trial (without keras-tuner's ``tuner/*`` keys)."""
    return _space_values(_best_trial(tuner).hyperparameters.values)


def search_compute(tuner: keras_tuner.Tuner, images_per_epoch: int) -> dict[str, float]:
    """What the search spent: every trial's epochs run x ``images_per_epoch`` images, at
    ``TRAIN_FACTOR`` x its model's forward FLOPs (failed trials count what they ran)."""
    from pipeline.flops import training_flops_per_image

    images, flops = 0, 0.0
    for trial in _trials(tuner):
        epochs = len(trial.metrics.get_history("loss")) if trial.metrics.exists("loss") else 0
        if not epochs:
            continue
        model = build_unet_from(_space_values(trial.hyperparameters.values), name="search_trial")
        images += epochs * images_per_epoch
        flops += epochs * images_per_epoch * training_flops_per_image(model)
    return {"search_images": images, "search_flops": flops}
