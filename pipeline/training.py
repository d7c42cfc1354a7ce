"""Training loops: denoisers on fresh noise every epoch, the classifier on clean digits.

Both stop early on the validation split (never the test set) and restore the best weights.
Extra Keras callbacks (dvclive's) are passed in by the stage.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import keras
import numpy as np

from pipeline.noise import corrupt_mix

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the backend, and ask TensorFlow for deterministic ops."""
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


class FreshNoisePairs(keras.utils.PyDataset):
    """(noisy, clean) batches; every epoch draws a new subset and new noise from the recipes."""

    def __init__(
        self,
        clean: np.ndarray,
        levels: Mapping[str, Sequence[float]],
        batch_size: int,
        seed: int,
        epoch_size: int | None = None,
        clean_fraction: float = 0.0,
    ):
        super().__init__()
        self.clean_all = clean
        self.levels = levels
        self.batch_size = batch_size
        self.seed = seed
        self.epoch_size = min(epoch_size or len(clean), len(clean))
        self.clean_fraction = clean_fraction
        self.epoch = 0
        self._draw()

    def _draw(self) -> None:
        rng = np.random.default_rng([self.seed, self.epoch])
        chosen = rng.permutation(len(self.clean_all))[: self.epoch_size]
        self.clean = self.clean_all[chosen]
        self.noisy = corrupt_mix(self.clean, self.levels, rng, self.clean_fraction)

    def __len__(self) -> int:
        return math.ceil(self.epoch_size / self.batch_size)

    def __getitem__(self, index: int):
        batch = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.noisy[batch], self.clean[batch]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._draw()


def early_stopping(patience: int) -> keras.callbacks.EarlyStopping:
    return keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=patience, restore_best_weights=True, verbose=1
    )


def train_denoiser(
    model: keras.Model,
    x_train: np.ndarray,
    x_val: np.ndarray,
    levels: Mapping[str, Sequence[float]],
    *,
    seed: int,
    loss: str,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    patience: int,
    epoch_size: int | None = None,
    clean_fraction: float = 0.0,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> keras.callbacks.History:
    """Fit ``model`` noisy -> clean; validation noise is drawn once so val_loss is comparable."""
    train = FreshNoisePairs(x_train, levels, batch_size, seed, epoch_size, clean_fraction)
    val_noisy = corrupt_mix(x_val, levels, np.random.default_rng([seed, 10**6]), clean_fraction)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=["mse"])
    log.info("training %s on %d noisy images per epoch", model.name, train.epoch_size)
    return model.fit(
        train,
        validation_data=(val_noisy, x_val),
        epochs=epochs,
        callbacks=[early_stopping(patience), *callbacks],
    )


def train_classifier(
    model: keras.Model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    patience: int,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> keras.callbacks.History:
    """Fit the classifier on clean images with early stopping on validation loss."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        callbacks=[early_stopping(patience), *callbacks],
    )
