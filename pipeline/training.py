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


class PatienceThenDrop(keras.callbacks.Callback):
    """Early stopping that ends only the constant-rate phase of a fit.

    Once validation loss has not improved for ``patience`` epochs, or at the scheduled drop
    (``epochs - drop_epochs``, whichever comes first), the best weights are restored, the
    learning rate is divided by ten and ``drop_epochs`` more epochs run; then the fit stops and
    the best weights (on validation loss, over the whole fit) are restored. Without a drop it
    is plain early stopping, so a plateau can no longer skip the low-rate epochs.
    """

    def __init__(self, patience: int, epochs: int, drop_epochs: int = 0):
        super().__init__()
        self.patience, self.epochs, self.drop_epochs = patience, epochs, drop_epochs

    def on_train_begin(self, logs=None):
        self.best, self.best_weights, self.wait, self.stop_at = np.inf, None, 0, None

    def on_epoch_begin(self, epoch, logs=None):
        if self.drop_epochs and self.stop_at is None and epoch == self.epochs - self.drop_epochs:
            self._drop(epoch - 1)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        if logs["val_loss"] < self.best:
            self.best, self.best_weights, self.wait = logs["val_loss"], self.model.get_weights(), 0
        else:
            self.wait += 1
        if self.stop_at is not None:
            self.model.stop_training = epoch >= self.stop_at
        elif self.wait >= self.patience:
            if self.drop_epochs:
                log.info("validation loss flat for %d epochs: the low-rate epochs start now", self.wait)
                self._drop(epoch)
            else:
                self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)

    def _drop(self, epoch: int) -> None:
        """Restore the best weights and run ``drop_epochs`` epochs after ``epoch`` at a tenth of
        the learning rate."""
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
        rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.model.optimizer.learning_rate = rate / 10
        self.stop_at = epoch + self.drop_epochs


def schedule_callbacks(fit: EpochParams) -> list[keras.callbacks.Callback]:
    """Early stopping on validation loss that ends only the constant-rate phase (the low-rate
    epochs ``fit.lr_drop_epochs`` always run: :class:`PatienceThenDrop`)."""
    return [PatienceThenDrop(fit.patience, fit.epochs, fit.lr_drop_epochs)]


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
