"""Score every noise type x level x denoiser: classifier accuracy, PSNR and SSIM.

The result is the tidy source table (one row per noise, level, denoiser, classifier);
everything people read (pivots, metrics.json, plots) is derived from it in ``tables``.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Collection, Mapping
from contextlib import contextmanager

import keras
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from pipeline import metrics
from pipeline.restorer import NO_DENOISER, Restorer, admit

log = logging.getLogger(__name__)

GAIN_COLUMNS = ("gain", "gain_low", "gain_high")


def restore(model: keras.Model | None, images: np.ndarray, batch_size: int) -> np.ndarray:
    """Denoise a batch (``None``: no denoiser) under the input contract: the input and the output
    are clipped to [0, 1]."""
    images = admit(images)
    if model is None:
        return images
    out = model.predict(images, batch_size=batch_size, verbose=0)
    return np.clip(out.reshape(images.shape), 0.0, 1.0).astype(np.float32)


def model_restorer(model: keras.Model, batch_size: int) -> Restorer:
    """A blind learned denoiser as a :data:`Restorer`."""
    return lambda images, kind, level: restore(model, images, batch_size)


class Stopwatch:
    """Wall seconds accumulated per named phase: ``with watch("classify"): ...``."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, phase: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - start


def image_quality(restored: np.ndarray, clean: np.ndarray) -> dict[str, float]:
    """Mean per-image PSNR and SSIM of ``restored`` against ``clean``."""
    return {
        "psnr": float(np.mean(metrics.psnr(clean, restored))),
        "ssim": float(np.mean(metrics.ssim(clean, restored))),
    }


def classify(
    restored: np.ndarray, labels: np.ndarray, classifier: keras.Model, batch_size: int
) -> tuple[float, np.ndarray]:
    """Accuracy of ``classifier`` on ``restored`` and its predicted digits."""
    probabilities = classifier.predict(restored, batch_size=batch_size, verbose=0)
    return metrics.accuracy(probabilities, labels), probabilities.argmax(axis=-1)


def confusion_counts(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """10x10 counts, rows true digit, columns predicted digit."""
    return np.bincount(labels.astype(int) * 10 + predicted, minlength=100).reshape(10, 10)


def evaluate_grid(
    clean: np.ndarray,
    labels: np.ndarray,
    grids: Mapping[str, tuple[np.ndarray, np.ndarray]],
    denoisers: Mapping[str, Restorer],
    classifiers: Mapping[str, keras.Model],
    batch_size: int,
    confusion_cell: tuple[str, float] | None = None,
    test_sizes: Mapping[str, int | None] | None = None,
    noise_test_sizes: Mapping[str, int | None] | None = None,
    classifier_noise: Mapping[str, Collection[str]] | None = None,
    classifier_denoisers: Mapping[str, Collection[str]] | None = None,
    correct_sink: dict[tuple[str, str, str, float], np.ndarray] | None = None,
    sink_noise: str | None = None,
    image_metrics: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Tidy scores for every cell of ``grids`` ({noise: (levels, images[L, N, H, W])}).

    ``denoisers`` are restorers; the no-denoiser baseline is added first. ``test_sizes`` scores a
    slow denoiser on the first n test images only (its ``n_images`` column says so), and
    ``noise_test_sizes`` every denoiser on the noisy levels of a noise type (the smaller of the
    two wins). Level 0 is the clean test set for every noise type, so it is scored once, at the
    denoiser's own size, and shared. Each denoiser's row also has its ``gain`` in accuracy over
    no denoiser on the same images with the same classifier, and the paired 95% interval of it
    (``gain_low``, ``gain_high``: :func:`pipeline.metrics.paired_difference`). Also returns the
    confusion counts of every denoiser x classifier at ``confusion_cell`` (long format:
    denoiser, classifier, true, predicted, count), and the wall time spent denoising (per
    denoiser), classifying, computing metrics and in everything else.

    ``classifier_noise`` limits a classifier to some noise types and ``classifier_denoisers`` to
    some denoisers (absent: all; no denoiser is always scored). With
    ``correct_sink``, every cell of ``sink_noise`` (its clean level too; None: every noise type)
    stores which images each denoiser x classifier got right, under (noise, denoiser, classifier,
    level). Without ``image_metrics`` the PSNR and SSIM columns are left out (accuracy only).
    """
    watch, start = Stopwatch(), time.perf_counter()
    models: dict[str, Restorer | None] = {NO_DENOISER: None, **denoisers}
    test_sizes, noise_test_sizes = test_sizes or {}, noise_test_sizes or {}
    cells = [(kind, level, i) for kind, (levels, _) in grids.items() for i, level in enumerate(levels)]
    clean_scores: dict[tuple[str, str], dict] = {}
    clean_correct: dict[tuple[str, str], np.ndarray] = {}
    baseline: dict[tuple[str, float, str], np.ndarray] = {}  # no denoiser's correct answers
    rows, confusions = [], []
    for kind, level, i in tqdm(cells, desc="evaluate grid", unit="cell"):
        for name, restorer in models.items():
            n = test_sizes.get(name) or len(labels)
            if level > 0:
                n = min(n, noise_test_sizes.get(kind) or n)
            noisy = admit(grids[kind][1][i][:n])  # the input contract, for every defense and none
            restored, quality = None, None
            for clf_name, classifier in classifiers.items():
                if kind not in (classifier_noise or {}).get(clf_name, (kind,)):
                    continue
                if restorer is not None and name not in (classifier_denoisers or {}).get(clf_name, (name,)):
                    continue
                key = (name, clf_name)
                if level == 0 and key in clean_scores:
                    values = clean_scores[key]
                else:
                    if restored is None:
                        with watch(f"denoise:{name}"):
                            restored = noisy if restorer is None else restorer(noisy, kind, float(level))
                        with watch("metrics"):  # image quality does not depend on the classifier
                            quality = image_quality(restored, clean[:n]) if image_metrics else {}
                    with watch("classify"):
                        accuracy, predicted = classify(restored, labels[:n], classifier, batch_size)
                    correct = predicted == labels[:n]
                    cell = (kind if level else "", float(level), clf_name)
                    if restorer is None:
                        baseline[cell] = correct
                    with watch("metrics"):
                        paired = gain(correct, baseline[cell])
                    values = {"accuracy": accuracy, **quality, "n_images": int(n), **paired}
                    if level == 0:
                        clean_scores[key] = values
                        clean_correct[key] = correct
                    if confusion_cell == (kind, level):
                        confusions.append(_confusion_frame(labels[:n], predicted, name, clf_name))
                if correct_sink is not None and sink_noise in (None, kind):
                    correct_sink[(kind, name, clf_name, float(level))] = (
                        clean_correct[key] if level == 0 else correct
                    )
                rows.append(
                    {"noise": kind, "level": float(level), "denoiser": name, "classifier": clf_name, **values}
                )
    confusion = pd.concat(confusions, ignore_index=True) if confusions else pd.DataFrame()
    return pd.DataFrame(rows), confusion, timing_summary(watch, time.perf_counter() - start)


def gain(correct: np.ndarray, baseline: np.ndarray) -> dict[str, float]:
    """Accuracy gain of ``correct`` over the first ``len(correct)`` of ``baseline`` and its paired
    95% interval; NaN for the baseline itself."""
    if correct is baseline:
        return dict.fromkeys(GAIN_COLUMNS, float("nan"))
    return dict(zip(GAIN_COLUMNS, metrics.paired_difference(correct, baseline[: len(correct)]), strict=True))


def timing_summary(watch: Stopwatch, total: float) -> dict:
    """Seconds per phase and the share of the grid's wall time outside denoisers and classifiers."""
    denoise = {k.split(":", 1)[1]: round(v, 2) for k, v in watch.seconds.items() if k.startswith("denoise:")}
    forward = sum(denoise.values()) + watch.seconds["classify"]
    return {
        "grid_seconds": round(total, 2),
        "forward_seconds": round(forward, 2),
        "denoise_seconds": denoise,
        "classify_seconds": round(watch.seconds["classify"], 2),
        "metrics_seconds": round(watch.seconds["metrics"], 2),
        "other_seconds": round(total - forward - watch.seconds["metrics"], 2),
        "non_model_fraction": round(1 - forward / total, 4) if total > 0 else 0.0,
    }


def _confusion_frame(
    labels: np.ndarray, predicted: np.ndarray, denoiser: str, classifier: str
) -> pd.DataFrame:
    counts = confusion_counts(labels, predicted)
    true, pred = np.indices(counts.shape)
    return pd.DataFrame(
        {
            "denoiser": denoiser,
            "classifier": classifier,
            "true": true.ravel(),
            "predicted": pred.ravel(),
            "count": counts.ravel(),
        }
    )


def sample_outputs(
    clean: np.ndarray,
    kind: str,
    noisy_by_level: Mapping[float, np.ndarray],
    denoisers: Mapping[str, Restorer],
) -> dict[str, dict[float, np.ndarray]]:
    """Images for the sample figure: {row: {level: images}}, rows clean, noisy, denoisers."""
    rows: dict[str, dict[float, np.ndarray]] = {"clean": {}, "noisy": {}}
    for level, noisy in noisy_by_level.items():
        rows["clean"][level] = clean
        rows["noisy"][level] = noisy
        for name, restorer in denoisers.items():
            rows.setdefault(name, {})[level] = restorer(noisy, kind, level)
    return rows
