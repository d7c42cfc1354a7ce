"""Training loops: denoisers on fresh noise every epoch, the classifier on clean digits.

Both stop early on the validation split (never the test set) and restore the best weights.
Extra Keras callbacks (dvclive's) are passed in by the stage.
"""

from __future__ import annotations

import logging
import math
import time
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
    """(noisy, clean) batches; every epoch draws a new subset and new noise from the recipes.

    With ``fresh=False`` the subset and its noise are drawn once and only their order changes
    between epochs (the seeds' "noise drawn once" recipe).
    """

    def __init__(
        self,
        clean: np.ndarray,
        levels: Mapping[str, Sequence[float]],
        batch_size: int,
        seed: int,
        epoch_size: int | None = None,
        clean_fraction: float = 0.0,
        fresh: bool = True,
    ):
        super().__init__()
        self.fresh = fresh
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
        if not self.fresh and self.epoch > 0:
            order = rng.permutation(self.epoch_size)
            self.clean, self.noisy = self.clean[order], self.noisy[order]
            return
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


def compile_denoiser(model: keras.Model, loss: str, learning_rate: float) -> keras.Model:
    """Adam + ``loss``, tracking MSE so denoisers trained with different losses compare."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=["mse"])
    return model


def noisy_validation(
    x_val: np.ndarray, levels: Mapping[str, Sequence[float]], seed: int, clean_fraction: float = 0.0
) -> np.ndarray:
    """The validation split's noise, drawn once from a fixed seed so every model sees the same pairs."""
    return corrupt_mix(x_val, levels, np.random.default_rng([seed, 10**6]), clean_fraction)


def fit_denoiser(
    model: keras.Model,
    x_train: np.ndarray,
    x_val: np.ndarray,
    levels: Mapping[str, Sequence[float]],
    *,
    seed: int,
    epochs: int,
    batch_size: int,
    patience: int,
    epoch_size: int | None = None,
    clean_fraction: float = 0.0,
    fresh_noise: bool = True,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> keras.callbacks.History:
    """Fit a compiled ``model`` noisy -> clean with early stopping on the validation pairs."""
    train = FreshNoisePairs(x_train, levels, batch_size, seed, epoch_size, clean_fraction, fresh_noise)
    val_noisy = noisy_validation(x_val, levels, seed, clean_fraction)
    log.info("training %s on %d noisy images per epoch", model.name, train.epoch_size)
    return model.fit(
        train,
        validation_data=(val_noisy, x_val),
        epochs=epochs,
        callbacks=[early_stopping(patience), *callbacks],
    )


def train_denoiser(
    model: keras.Model,
    x_train: np.ndarray,
    x_val: np.ndarray,
    levels: Mapping[str, Sequence[float]],
    *,
    loss: str,
    learning_rate: float,
    **fit_options,
) -> keras.callbacks.History:
    """Compile ``model`` and fit it (see :func:`fit_denoiser` for the options)."""
    compile_denoiser(model, loss, learning_rate)
    return fit_denoiser(model, x_train, x_val, levels, **fit_options)


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


def fit_logged(
    model: keras.Model,
    x_train: np.ndarray,
    x_val: np.ndarray,
    levels: Mapping[str, Sequence[float]],
    live_dir: str,
    **fit_options,
) -> dict:
    """:func:`fit_denoiser` with dvclive curves; the run's summary goes to ``live_dir/metrics.json``.

    The summary holds the best validation loss and MSE (MSE compares models trained with
    different losses), epochs run, parameter count and training wall time.
    """
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    start = time.perf_counter()
    with Live(dir=live_dir, save_dvc_exp=False, dvcyaml=None) as live:
        history = fit_denoiser(
            model, x_train, x_val, levels, callbacks=[DVCLiveCallback(live=live)], **fit_options
        ).history
        best = int(np.argmin(history["val_loss"]))
        live.summary["best_val_loss"] = history["val_loss"][best]
        live.summary["best_val_mse"] = history["val_mse"][best]
        live.summary["epochs_run"] = len(history["val_loss"])
        live.summary["train_seconds"] = round(time.perf_counter() - start, 1)
        live.summary["parameters"] = model.count_params()
        return dict(live.summary)
