"""What a fit is fed: fresh noisy training pairs every epoch, validation pairs drawn once, both as
non-autotuned ``tf.data`` datasets."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import keras
import numpy as np

from pipeline.noise import NoiseMix


class FreshNoisePairs:
    """(noisy, target) batches of one epoch; :meth:`draw_epoch` draws the next epoch's subset,
    its order and its noise from the recipes (from the seed and the epoch's number, so a rerun
    replays them).

    ``mix`` is the noise drawn (a :class:`~pipeline.noise.NoiseMix`, or just its levels; empty or
    None: the clean images, for the clean classifier). ``targets``: ``"clean"`` (denoisers),
    ``"labels"`` (a classifier; needs ``labels``) or ``"both"`` ({"image": clean, "probs":
    labels}, the task-guided fine-tune). With ``fresh=False`` the subset and its noise are drawn
    once and only their order changes between epochs (the seeds' "noise drawn once" recipe).
    :func:`training_batches` feeds them to ``fit``.
    """

    def __init__(
        self,
        clean: np.ndarray,
        mix: NoiseMix | Mapping[str, Sequence[float]] | None,
        batch_size: int,
        seed: int,
        epoch_size: int | None = None,
        fresh: bool = True,
        labels: np.ndarray | None = None,
        targets: Literal["clean", "labels", "both"] = "clean",
    ):
        if targets != "clean" and labels is None:
            raise ValueError(f"targets={targets!r} needs labels")
        self.fresh = fresh
        self.clean_all = clean
        self.labels_all = np.zeros(len(clean), dtype=np.int64) if labels is None else np.asarray(labels)
        self.targets = targets
        self.mix = NoiseMix.of(mix)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch_size = epoch_size or len(clean)  # above len(clean): images repeat within an epoch
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
            self.noisy = self.mix.draw(self.clean, rng)
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
    idle.
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
    val_noisy = noisy_validation(x_val, train.mix, seed)
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


def noisy_validation(
    x_val: np.ndarray, mix: NoiseMix | Mapping[str, Sequence[float]] | None, seed: int
) -> np.ndarray:
    """The validation split's noise, drawn once from a fixed seed so every model sees the same pairs."""
    return NoiseMix.of(mix).draw(x_val, np.random.default_rng([seed, 10**6]))
