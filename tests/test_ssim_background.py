"""experiments.ssim_background: a faint grey background costs SSIM far more than PSNR."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.ssim_background import background_scores
from pipeline import metrics


def digits() -> np.ndarray:
    clean = np.zeros((4, 28, 28), np.float32)
    clean[:, 8:20, 12:16] = 1.0  # a bar on black, like a "1"
    return clean


def test_a_grey_background_halves_ssim_and_the_floor_restores_it():
    clean = digits()
    grey = np.where(clean == 0, 0.02, clean).astype(np.float32)
    scores = background_scores(grey, clean, floor=0.05)
    assert scores["background_mean"] == scores["background_p90"] == pytest.approx(0.02)
    assert scores["psnr"] == pytest.approx(10 * np.log10(1 / (0.02**2 * (clean == 0).mean())), abs=1e-3)
    assert scores["psnr"] > 30 and scores["ssim"] < 0.5  # c1 = 1e-4 against a mean of 0.02
    assert scores["ssim_floored"] == 1.0 and scores["psnr_floored"] == pytest.approx(
        float(np.mean(metrics.psnr(clean, clean)))
    )


def test_the_floor_leaves_outputs_above_it():
    clean = digits()
    bright = np.where(clean == 0, 0.1, clean).astype(np.float32)
    scores = background_scores(bright, clean, floor=0.05)
    assert (scores["psnr_floored"], scores["ssim_floored"]) == (scores["psnr"], scores["ssim"])
