"""Training loops: denoisers on fresh noise every epoch, the classifier on clean digits.

Both stop early on the validation split (never the test set) and restore the best weights.
Extra Keras callbacks (dvclive's) are passed in by the stage.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Literal

import keras
import numpy as np

from pipeline.noise import corrupt_mix
from pipeline.params import ClassifierParams, EpochParams, FitParams, GuidedParams

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the backend, and ask TensorFlow for deterministic ops."""
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


class FreshNoisePairs:
    """(noisy, target) batches of one epoch; :meth:`draw_epoch` draws the next epoch's subset,
    its order and its noise from the recipes (from the seed and the epoch's number, so a rerun
    replays them).

    ``targets``: ``"clean"`` (denoisers), ``"labels"`` (a classifier; needs ``labels``) or
    ``"both"`` ({"image": clean, "probs": labels}, the task-guided fine-tune). Empty ``levels``
    give the clean images (the clean classifier). With ``fresh=False`` the subset and its noise
    are drawn once and only their order changes between epochs (the seeds' "noise drawn once"
    recipe). ``clean_fraction`` and ``type_weights`` shape the mix (``corrupt_mix``).
    :func:`training_batches` feeds them to ``fit``.
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
        labels: np.ndarray | None = None,
        targets: Literal["clean", "labels", "both"] = "clean",
        type_weights: Mapping[str, float] | None = None,
    ):
        if targets != "clean" and labels is None:
            raise ValueError(f"targets={targets!r} needs labels")
        self.fresh = fresh
        self.clean_all = clean
        self.labels_all = np.zeros(len(clean), dtype=np.int64) if labels is None else np.asarray(labels)
        self.targets = targets
        self.levels = levels
        self.batch_size = batch_size
        self.seed = seed
        self.epoch_size = epoch_size or len(clean)  # above len(clean): images repeat within an epoch
        self.clean_fraction = clean_fraction
        self.type_weights = type_weights
        self.epochs_drawn = 0

    def draw_epoch(self) -> None:
        """Draw the next epoch: a new subset under new noise (or, not ``fresh``, a new order)."""
        rng = np.random.default_rng([self.seed, self.epochs_drawn])
        if not self.fresh and self.epochs_drawn > 0:
            order = rng.permutation(self.epoch_size)
            self.clean, self.noisy, self.labels = self.clean[order], self.noisy[order], self.labels[order]
        else:
            rounds = -(-self.epoch_size // len(self.clean_all))
            chosen = np.concatenate([rng.permutation(len(self.clean_all)) for _ in range(rounds)])
            chosen = chosen[: self.epoch_size]
            self.clean, self.labels = self.clean_all[chosen], self.labels_all[chosen]
            self.noisy = corrupt_mix(self.clean, self.levels, rng, self.clean_fraction, self.type_weights)
        self.epochs_drawn += 1

    def __len__(self) -> int:
        return math.ceil(self.epoch_size / self.batch_size)

    def __getitem__(self, index: int):
        if not self.epochs_drawn:
            raise RuntimeError("no epoch drawn yet: call draw_epoch() first")
        batch = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.pair(self.noisy[batch], self.clean[batch], self.labels[batch])

    def pair(self, noisy: np.ndarray, clean: np.ndarray, labels: np.ndarray):
        """One (inputs, targets) batch in the structure ``targets`` asks for."""
        if self.targets == "clean":
            return noisy, clean
        if self.targets == "labels":
            return noisy, labels
        return noisy, {"image": clean, "probs": labels}


def _without_autotune(dataset):
    """``dataset`` with tf.data's autotuning off.

    Keras re-creates its data iterators at every epoch boundary, and destroying an iterator
    whose pipeline is autotuned waits for tf.data's autotuning thread to wake; that thread
    sleeps longer the longer the fit runs, which stalled epoch starts by 10-40 s with the CPU
    idle (README, *Run time*).
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def validation_batches(x: np.ndarray, y, batch_size: int):
    """Validation pairs as a batched ``tf.data.Dataset`` without autotuning (``y``: array or
    dict of arrays); Keras would wrap raw arrays in an autotuned one."""
    import tensorflow as tf

    return _without_autotune(tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size))


def training_batches(pairs: FreshNoisePairs):
    """``pairs`` as a ``tf.data.Dataset`` without autotuning; one iteration is one epoch.

    Every iteration starts with ``pairs.draw_epoch()``, which shuffles the epoch's images from
    its own seed, and then yields the batches in order: nothing depends on global random state.
    """
    import tensorflow as tf

    def epoch():
        pairs.draw_epoch()
        for index in range(len(pairs)):
            yield pairs[index]

    first = pairs.clean_all[:1]
    example = pairs.pair(first.astype(np.float32), first, pairs.labels_all[:1])
    signature = keras.tree.map_structure(
        lambda array: tf.TensorSpec((None, *array.shape[1:]), tf.as_dtype(array.dtype)), example
    )
    dataset = tf.data.Dataset.from_generator(epoch, output_signature=signature)
    return _without_autotune(dataset.apply(tf.data.experimental.assert_cardinality(len(pairs))))


def validation_feed(
    train: FreshNoisePairs,
    x_val: np.ndarray,
    val_targets: np.ndarray | Mapping[str, np.ndarray],
    validation_seed: int | None = None,
):
    """The validation dataset that goes with ``train``: ``x_val`` under ``train``'s noise (drawn
    once from ``validation_seed``, default ``train.seed``, see :func:`noisy_validation`; none for
    clean ``train``) against ``val_targets``."""
    seed = train.seed if validation_seed is None else validation_seed
    val_noisy = noisy_validation(x_val, train.levels, seed, train.clean_fraction, train.type_weights)
    return validation_batches(val_noisy, val_targets, train.batch_size)


def pair_feeds(
    train: FreshNoisePairs,
    x_val: np.ndarray,
    val_targets: np.ndarray | Mapping[str, np.ndarray],
    validation_seed: int | None = None,
):
    """(training, validation) datasets for ``fit``: ``train``'s epochs and :func:`validation_feed`
    (validation pairs drawn from the data seed, so a training seed changes only the training)."""
    return training_batches(train), validation_feed(train, x_val, val_targets, validation_seed)


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


def noisy_validation(
    x_val: np.ndarray,
    levels: Mapping[str, Sequence[float]],
    seed: int,
    clean_fraction: float = 0.0,
    type_weights: Mapping[str, float] | None = None,
) -> np.ndarray:
    """The validation split's noise, drawn once from a fixed seed so every model sees the same pairs."""
    rng = np.random.default_rng([seed, 10**6])
    return corrupt_mix(x_val, levels, rng, clean_fraction, type_weights)


def fit_denoiser(
    model: keras.Model,
    x_train: np.ndarray,
    x_val: np.ndarray,
    levels: Mapping[str, Sequence[float]],
    fit: FitParams,
    *,
    seed: int,
    clean_fraction: float = 0.0,
    type_weights: Mapping[str, float] | None = None,
    fresh_noise: bool = True,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    validation_seed: int | None = None,
) -> keras.callbacks.History:
    """Fit a compiled ``model`` noisy -> clean with early stopping on the validation pairs."""
    train = FreshNoisePairs(
        x_train,
        levels,
        fit.batch_size,
        seed,
        fit.train_size,
        clean_fraction,
        fresh_noise,
        type_weights=type_weights,
    )
    log.info("training %s on %d noisy images per epoch", model.name, train.epoch_size)
    return _fit_pairs(model, train, x_val, x_val, fit, callbacks, validation_seed)


def _fit_pairs(
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
    levels: Mapping[str, Sequence[float]] | None = None,
    clean_fraction: float = 0.0,
    type_weights: Mapping[str, float] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    fit: FitParams | None = None,
    validation_seed: int | None = None,
) -> keras.callbacks.History:
    """Fit the classifier with early stopping on validation loss.

    On clean digits, or with ``config.noise_augmentation`` on fresh noise from ``levels`` every
    epoch (validated on the validation split under the same noise, drawn once). ``fit`` (a
    budgeted fit) overrides ``config``'s epochs with its slices of ``train_size`` images.
    """
    if config.noise_augmentation and not levels:
        raise ValueError("noise_augmentation needs the train_noise levels")
    compile_classifier(model, config.learning_rate)
    levels = levels if config.noise_augmentation else {}
    schedule = fit or config
    train = FreshNoisePairs(
        x_train,
        levels,
        schedule.batch_size,
        seed,
        fit.train_size if fit else None,
        clean_fraction,
        labels=y_train,
        targets="labels",
        type_weights=type_weights,
    )
    log.info(
        "training %s on %d %s images per epoch",
        model.name,
        train.epoch_size,
        "freshly noised" if levels else "clean",
    )
    return _fit_pairs(model, train, x_val, y_val, schedule, callbacks, validation_seed)


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
    levels = {noise: [level]}
    train = FreshNoisePairs(
        x_train, levels, fit.batch_size, seed, fit.train_size, labels=y_train, targets="labels"
    )
    log.info("specialist %s at %s %g: %d images per epoch", model.name, noise, level, train.epoch_size)
    return _fit_pairs(model, train, x_val, y_val, fit, callbacks, validation_seed)


class InferenceMode(keras.layers.Layer):
    """Calls ``model`` with ``training=False`` whatever mode the enclosing model runs in.

    Keras 3's functional models hand their own ``training`` flag to every nested model, which
    overrides a ``training=False`` given when the graph was built: inside ``fit`` a nested
    classifier's dropout would be active.
    """

    def __init__(self, model: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.model = model

    def call(self, inputs):
        return self.model(inputs, training=False)

    @property
    def metrics(self):
        # Not the wrapped model's: a compiled model's "loss" tracker would shadow the outer one.
        return list(self._metrics)


def reseed_random_layers(model: keras.Model, seed: int) -> int:
    """Restart every seed generator in ``model`` (its dropout layers') from ``seed``; returns how many.

    Random layers draw their seeds from Python's ``random`` when they are built, so without
    this a fit through them would depend on what the process drew before loading the model.
    """
    states = [v for v in model.variables if v.name == "seed_generator_state"]
    for index, state in enumerate(states):
        layer_seed = int(np.random.SeedSequence([seed, index]).generate_state(1)[0] >> 1)
        state.assign(np.array([layer_seed, 0], dtype=state.dtype))
    return len(states)


def guided_model(
    denoiser: keras.Model, classifier: keras.Model, classifier_training: bool = True
) -> keras.Model:
    """noisy -> {"image": denoised, "probs": frozen classifier(denoised)}, sharing ``denoiser``'s weights.

    The classifier's weights are frozen; by default it follows the fit's training flag (its
    dropout active while fitting, Keras' default for nested models), and with
    ``classifier_training=False`` it runs in inference mode.
    """
    classifier.trainable = False
    inputs = keras.Input(shape=denoiser.input_shape[1:], name="guided_input")
    image = denoiser(inputs)
    frozen = classifier if classifier_training else InferenceMode(classifier, name="frozen_classifier")
    outputs = {"image": image, "probs": frozen(image)}
    return keras.Model(inputs, outputs, name=f"{denoiser.name}_guided")


def fit_guided(
    denoiser: keras.Model,
    classifier: keras.Model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    levels: Mapping[str, Sequence[float]],
    config: GuidedParams,
    *,
    seed: int,
    clean_fraction: float = 0.0,
    type_weights: Mapping[str, float] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    validation_seed: int | None = None,
) -> keras.callbacks.History:
    """Fine-tune ``denoiser`` on pixel MSE + ``classification_weight`` x the frozen classifier's
    cross-entropy on the denoised images (task-guided denoising); early-stops on the validation
    pairs' combined loss. History keys: ``loss``, ``image_mse``, ``probs_accuracy`` (and val_)."""
    model = guided_model(denoiser, classifier, config.classifier_training)
    reseed_random_layers(classifier, seed)  # its dropout's draws follow ``seed``, not the load order
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss={"image": "mse", "probs": "sparse_categorical_crossentropy"},
        loss_weights={"image": 1.0, "probs": config.classification_weight},
        metrics={"image": ["mse"], "probs": ["accuracy"]},
    )
    train = FreshNoisePairs(
        x_train,
        levels,
        config.batch_size,
        seed,
        config.train_size,
        clean_fraction,
        labels=y_train,
        targets="both",
        type_weights=type_weights,
    )
    log.info(
        "fine-tuning %s with the classifier's loss (weight %g)", denoiser.name, config.classification_weight
    )
    targets = {"image": x_val, "probs": y_val}
    return _fit_pairs(model, train, x_val, targets, config, callbacks, validation_seed)
