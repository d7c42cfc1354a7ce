"""Compute-accuracy curves: a defense's validation accuracy at fixed fractions of its compute.

The curve set is the first ``budget.curve_size`` validation images under every noisy level of
the headline noise, drawn once from the data seed on a stream of its own (never the test grid's
draws). Every contestant is scored on it after each slice of its fit (:class:`ComputeCurve`),
and the ``ceiling`` stage scores every finished defense and the noise specialists on it too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd

from pipeline.budget import Allocation
from pipeline.noise import noisy_grid

VALIDATION_STREAM = 7  # the curve set's own draws of the data seed


@dataclass(frozen=True)
class CurveSet:
    """Validation images under one noise type: ``images[i]`` is every image at ``levels[i]``."""

    noise: str
    levels: tuple[float, ...]
    images: np.ndarray  # (L, N, 28, 28) float32
    labels: np.ndarray  # (N,)


def curve_set(
    x_val: np.ndarray, y_val: np.ndarray, noise: str, levels: Sequence[float], seed: int, size: int
) -> CurveSet:
    """The curve set: the first ``size`` validation images at each noisy level of ``noise``."""
    noisy = tuple(float(level) for level in levels if level > 0)
    if not noisy:
        raise ValueError(f"noise.{noise} has no noisy level to draw a validation curve at")
    x = x_val[:size]
    return CurveSet(noise, noisy, noisy_grid(x, noise, noisy, seed, stream=VALIDATION_STREAM), y_val[:size])


def defense_accuracy(
    curves: CurveSet,
    classifier: keras.Model,
    denoiser: keras.Model | None = None,
    batch_size: int = 500,
) -> dict[float, float]:
    """Accuracy of ``classifier`` (behind ``denoiser``, if any) at each level of ``curves``."""
    scores = {}
    for level, images in zip(curves.levels, curves.images, strict=True):
        if denoiser is not None:
            images = np.clip(denoiser.predict(images, batch_size=batch_size, verbose=0), 0, 1)
            images = images.reshape(curves.images.shape[1:])
        predicted = classifier.predict(images, batch_size=batch_size, verbose=0).argmax(axis=-1)
        scores[level] = float(np.mean(predicted == curves.labels))
    return scores


class ComputeCurve(keras.callbacks.Callback):
    """Scores the defense before the fit and after every slice (epoch) of ``allocation``.

    ``score()`` returns {level: validation accuracy}; each row records the slices done, the
    fraction of the planned compute, the images and FLOPs spent (from ``allocation.start_flops``,
    the compute of what the fit builds on) and the mean accuracy over the levels.
    """

    def __init__(self, score: Callable[[], Mapping[float, float]], allocation: Allocation):
        super().__init__()
        self.score = score
        self.allocation = allocation
        self.rows: list[dict] = []

    def record(self, slices: int) -> None:
        accuracies = self.score()
        a = self.allocation
        self.rows.append(
            {
                "checkpoint": slices,
                "fraction": slices / a.slices,
                "images": slices * a.slice_images,
                "flops": a.start_flops + a.spent(slices),
                "accuracy": float(np.mean(list(accuracies.values()))),
                **{f"accuracy@{level:g}": value for level, value in accuracies.items()},
            }
        )

    def on_train_begin(self, logs=None):
        if not self.rows:
            self.record(0)

    def on_epoch_end(self, epoch, logs=None):
        self.record(epoch + 1)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


def validation_curve_set(params, x_val: np.ndarray, y_val: np.ndarray) -> CurveSet:
    """The curve set ``params`` asks for: its headline noise, ``budget.curve_size`` images."""
    noise = params.evaluate.headline_noise
    return curve_set(x_val, y_val, noise, params.noise[noise], params.seed, params.budget.curve_size)
