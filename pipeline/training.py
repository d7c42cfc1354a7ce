"""Training loops: denoisers on fresh noise every epoch, classifiers on clean digits or on noise.

Both stop early on the validation split (never the test set) and restore the best weights.
Extra Keras callbacks (dvclive's) are passed in by the stage.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import keras
import numpy as np

from pipeline.feeds import FreshNoisePairs, pair_feeds
from pipeline.noise import NoiseMix
from pipeline.params import ClassifierParams, EpochParams, FitParams

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the backend, and ask TensorFlow for deterministic ops."""
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def early_stopping(patience: int) -> keras.callbacks.EarlyStopping:
    return keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=patience, restore_best_weights=True, verbose=1
    )


def learning_rate_drop(drop_epoch: int) -> keras.callbacks.LearningRateScheduler:
    """Divide the optimizer's learning rate by ten at the start of epoch ``drop_epoch`` (0-based)."""
    return keras.callbacks.LearningRateScheduler(
        lambda epoch, rate: rate / 10 if epoch == drop_epoch else rate
    )


def schedule_callbacks(fit: EpochParams) -> list[keras.callbacks.Callback]:
    """Early stopping on validation loss, and the learning-rate drop if ``fit`` asks for one."""
    drop = [] if fit.drop_epoch is None else [learning_rate_drop(fit.drop_epoch)]
    return [early_stopping(fit.patience), *drop]


def compile_denoiser(model: keras.Model, loss: str, learning_rate: float) -> keras.Model:
    """Adam + ``loss``, tracking MSE so denoisers trained with different losses compare."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=["mse"])
    return model


def fit_denoiser(
    model: keras.Model,
    x_train: np.ndarray,
    x_val: np.ndarray,
    mix: NoiseMix | Mapping[str, Sequence[float]],
    fit: FitParams,
    *,
    seed: int,
    fresh_noise: bool = True,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    validation_seed: int | None = None,
) -> keras.callbacks.History:
    """Fit a compiled ``model`` noisy -> clean with early stopping on the validation pairs."""
    train = FreshNoisePairs(x_train, mix, fit.batch_size, seed, fit.train_size, fresh_noise)
    log.info("training %s on %d noisy images per epoch", model.name, train.epoch_size)
    return fit_pairs(model, train, x_val, x_val, fit, callbacks, validation_seed)


def fit_pairs(
    model: keras.Model,
    train: FreshNoisePairs,
    x_val: np.ndarray,
    val_targets: np.ndarray | Mapping[str, np.ndarray],
    fit: EpochParams,
    callbacks: Sequence[keras.callbacks.Callback],
    validation_seed: int | None = None,
) -> keras.callbacks.History:
    """``model.fit`` on :func:`pair_feeds` with :func:`schedule_callbacks`."""
    train_batches, val_batches = pair_feeds(train, x_val, val_targets, validation_seed)
    return model.fit(
        train_batches,
        shuffle=False,  # every epoch's draw shuffles its images (FreshNoisePairs.draw_epoch)
        validation_data=val_batches,
        epochs=fit.epochs,
        callbacks=[*schedule_callbacks(fit), *callbacks],
    )


def compile_classifier(model: keras.Model, learning_rate: float) -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def train_classifier(
    model: keras.Model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    config: ClassifierParams,
    *,
    seed: int,
    mix: NoiseMix | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    fit: FitParams | None = None,
    validation_seed: int | None = None,
) -> keras.callbacks.History:
    """Fit the classifier with early stopping on validation loss.

    On clean digits, or with ``config.noise_augmentation`` on fresh noise from ``mix`` every
    epoch (validated on the validation split under the same noise, drawn once). ``fit`` (a
    budgeted fit) overrides ``config``'s epochs with its slices of ``train_size`` images.
    """
    if config.noise_augmentation and not (mix and mix.levels):
        raise ValueError("noise_augmentation needs the train_noise mix")
    compile_classifier(model, config.learning_rate)
    mix = mix if config.noise_augmentation else None
    schedule = fit or config
    train = FreshNoisePairs(
        x_train,
        mix,
        schedule.batch_size,
        seed,
        fit.train_size if fit else None,
        labels=y_train,
        targets="labels",
    )
    log.info(
        "training %s on %d %s images per epoch",
        model.name,
        train.epoch_size,
        "freshly noised" if mix else "clean",
    )
    return fit_pairs(model, train, x_val, y_val, schedule, callbacks, validation_seed)


def fit_specialist(
    model: keras.Model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    noise: str,
    level: float,
    fit: FitParams,
    learning_rate: float,
    *,
    seed: int,
    validation_seed: int,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> keras.callbacks.History:
    """Fine-tune a classifier on one noise cell only (fresh draws of ``noise`` at ``level`` every
    epoch), early-stopping on the validation split under that cell: a noise specialist."""
    compile_classifier(model, learning_rate)
    train = FreshNoisePairs(
        x_train, {noise: [level]}, fit.batch_size, seed, fit.train_size, labels=y_train, targets="labels"
    )
    log.info("specialist %s at %s %g: %d images per epoch", model.name, noise, level, train.epoch_size)
    return fit_pairs(model, train, x_val, y_val, fit, callbacks, validation_seed)
