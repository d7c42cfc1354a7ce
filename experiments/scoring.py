"""The validation scoring the experiments share (one fixed noise draw per level); not itself run."""

from __future__ import annotations

import numpy as np

from pipeline.evaluation import classify, image_quality, restore
from pipeline.noise import corrupt

SCORE_SEED = 7


def noise_scores(model, clean: np.ndarray, levels, classifier=None, labels=None, kind="gaussian") -> dict:
    """PSNR/SSIM (and the classifier's accuracy) of ``model``'s output at each level of noise
    ``kind`` (keys ``psnr_<level>`` for Gaussian noise, ``psnr_<kind>_<level>`` for the others)."""
    scores = {}
    for level in levels:
        noisy = corrupt(clean, kind, level, np.random.default_rng(SCORE_SEED)) if level else clean
        denoised = restore(model, noisy, batch_size=512)
        key = str(level) if kind == "gaussian" else f"{kind}_{level}"
        if level:
            quality = image_quality(denoised, clean)
            scores[f"psnr_{key}"] = round(quality["psnr"], 3)
            scores[f"ssim_{key}"] = round(quality["ssim"], 4)
        if classifier is not None:
            scores[f"accuracy_{key}"] = round(classify(denoised, labels, classifier, 1024)[0], 4)
    return scores
