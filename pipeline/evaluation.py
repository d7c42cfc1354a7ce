"""Score every noise type x level x denoiser: classifier accuracy, PSNR and SSIM.

The result is the tidy source table (one row per noise, level, denoiser, classifier);
everything people read (pivots, metrics.json, plots) is derived from it in ``tables``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import keras
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from pipeline import metrics

log = logging.getLogger(__name__)

NO_DENOISER = "none"


def restore(model: keras.Model | None, images: np.ndarray, batch_size: int) -> np.ndarray:
    """Denoise a batch (identity for ``None``), clipped to [0, 1]."""
    if model is None:
        return images
    out = model.predict(images, batch_size=batch_size, verbose=0)
    return np.clip(out.reshape(images.shape), 0.0, 1.0).astype(np.float32)


def score(
    restored: np.ndarray,
    clean: np.ndarray,
    labels: np.ndarray,
    classifier: keras.Model,
    batch_size: int,
) -> dict[str, float]:
    """Accuracy of ``classifier`` on ``restored`` plus mean PSNR/SSIM against ``clean``."""
    probabilities = classifier.predict(restored, batch_size=batch_size, verbose=0)
    return {
        "accuracy": metrics.accuracy(probabilities, labels),
        "psnr": float(np.mean(metrics.psnr(clean, restored))),
        "ssim": float(np.mean(metrics.ssim(clean, restored))),
        "n_images": int(len(labels)),
    }


def evaluate_grid(
    clean: np.ndarray,
    labels: np.ndarray,
    grids: Mapping[str, tuple[np.ndarray, np.ndarray]],
    denoisers: Mapping[str, keras.Model],
    classifiers: Mapping[str, keras.Model],
    batch_size: int,
) -> pd.DataFrame:
    """Tidy scores for every cell of ``grids`` ({noise: (levels, images[L, N, H, W])}).

    Level 0 is the clean test set for every noise type, so it is scored once and shared.
    """
    models = {NO_DENOISER: None, **denoisers}
    cells = [(kind, level, i) for kind, (levels, _) in grids.items() for i, level in enumerate(levels)]
    clean_scores: dict[tuple[str, str], dict] = {}
    rows = []
    for kind, level, i in tqdm(cells, desc="evaluate grid", unit="cell"):
        noisy = grids[kind][1][i]
        for name, model in models.items():
            restored = None
            for clf_name, classifier in classifiers.items():
                key = (name, clf_name)
                if level == 0 and key in clean_scores:
                    values = clean_scores[key]
                else:
                    if restored is None:
                        restored = restore(model, noisy, batch_size)
                    values = score(restored, clean, labels, classifier, batch_size)
                    if level == 0:
                        clean_scores[key] = values
                rows.append(
                    {
                        "noise": kind,
                        "level": float(level),
                        "denoiser": name,
                        "classifier": clf_name,
                        **values,
                    }
                )
    return pd.DataFrame(rows)


def sample_outputs(
    clean: np.ndarray,
    noisy_by_level: Mapping[float, np.ndarray],
    denoisers: Mapping[str, keras.Model],
) -> dict[str, dict[float, np.ndarray]]:
    """Images for the sample figure: {row: {level: images}}, rows clean, noisy, denoisers."""
    rows: dict[str, dict[float, np.ndarray]] = {"clean": {}, "noisy": {}}
    for level, noisy in noisy_by_level.items():
        rows["clean"][level] = clean
        rows["noisy"][level] = noisy
        for name, model in denoisers.items():
            rows.setdefault(name, {})[level] = restore(model, noisy, len(noisy))
    return rows
