"""Derived tables on a small hand-made scores table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest, norm

from pipeline.tables import (
    accuracy_pivot,
    add_intervals,
    curve_table,
    gain_table,
    headline_table,
    markdown_tables,
    summary,
)

N = 50
DENOISERS = ["none", "cae"]

# (noise, level, denoiser, accuracy, psnr, ssim); level 0 is the shared clean score
ROWS = [
    ("gaussian", 0.0, "none", 0.98, np.inf, 1.0),
    ("gaussian", 0.0, "cae", 0.96, 30.0, 0.95),
    ("gaussian", 0.1, "none", 0.90, 20.0, 0.60),
    ("gaussian", 0.1, "cae", 0.94, 26.0, 0.90),
    ("gaussian", 0.5, "none", 0.40, 8.0, 0.10),
    ("gaussian", 0.5, "cae", 0.80, 18.0, 0.70),
    ("speckle", 0.0, "none", 0.98, np.inf, 1.0),
    ("speckle", 0.0, "cae", 0.96, 30.0, 0.95),
    ("speckle", 0.4, "none", 0.70, 15.0, 0.40),
    ("speckle", 0.4, "cae", 0.62, 14.0, 0.50),
]


@pytest.fixture
def scores() -> pd.DataFrame:
    frame = pd.DataFrame(ROWS, columns=["noise", "level", "denoiser", "accuracy", "psnr", "ssim"])
    frame.insert(3, "classifier", "cnn")
    frame["n_images"] = N
    # a second classifier that every derived table must ignore (they use the first one)
    other = frame.assign(classifier="other", accuracy=0.0, psnr=0.0, ssim=0.0)
    return pd.concat([frame, other], ignore_index=True)


def wilson_by_hand(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    z = norm.ppf(0.5 + confidence / 2)
    p = correct / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return centre - half, centre + half


def test_add_intervals_wilson_bounds(scores):
    out = add_intervals(scores, seen_noise=["gaussian", "poisson"])
    assert len(out) == len(scores)
    assert "accuracy_low" not in scores  # input not modified
    for row in out.itertuples():
        correct = round(row.accuracy * N)
        ci = binomtest(correct, N).proportion_ci(method="wilson")
        assert row.accuracy_low == pytest.approx(ci.low, abs=1e-12)
        assert row.accuracy_high == pytest.approx(ci.high, abs=1e-12)
        low, high = wilson_by_hand(correct, N)
        assert row.accuracy_low == pytest.approx(max(low, 0.0), abs=1e-9)
        assert row.accuracy_high == pytest.approx(min(high, 1.0), abs=1e-9)
        assert row.accuracy_low <= row.accuracy <= row.accuracy_high


def test_add_intervals_known_value():
    row = {"noise": "blur", "level": 0.5, "denoiser": "none", "classifier": "cnn", "accuracy": 0.9}
    frame = pd.DataFrame([{**row, "psnr": 1.0, "ssim": 0.5, "n_images": 100}])
    out = add_intervals(frame, seen_noise=[])
    # Wilson 95% interval for 90/100
    assert out["accuracy_low"].iloc[0] == pytest.approx(0.825634, abs=1e-6)
    assert out["accuracy_high"].iloc[0] == pytest.approx(0.944771, abs=1e-6)
    assert not out["seen_in_training"].iloc[0]


def test_add_intervals_seen_in_training(scores):
    out = add_intervals(scores, seen_noise={"gaussian": [0.1], "blur": [0.5]})  # a mapping works too
    assert out["seen_in_training"].dtype == bool
    np.testing.assert_array_equal(out["seen_in_training"], out["noise"] == "gaussian")


def test_accuracy_pivot(scores):
    table = accuracy_pivot(scores, "gaussian", DENOISERS)
    assert list(table.columns) == DENOISERS
    assert list(table.index) == [0.0, 0.1, 0.5]
    np.testing.assert_allclose(table["none"], [98.0, 90.0, 40.0])
    np.testing.assert_allclose(table["cae"], [96.0, 94.0, 80.0])
    reordered = accuracy_pivot(scores, "speckle", ["cae", "none"])
    assert list(reordered.columns) == ["cae", "none"]
    np.testing.assert_allclose(reordered.loc[0.4], [62.0, 70.0])


def test_accuracy_pivot_rounds_to_two_decimals(scores):
    scores.loc[0, "accuracy"] = 0.123456
    assert accuracy_pivot(scores, "gaussian", DENOISERS).loc[0.0, "none"] == 12.35


def test_curve_table(scores):
    table = curve_table(scores, "speckle", DENOISERS)
    assert list(table.columns) == ["level", "none", "cae"]
    np.testing.assert_allclose(table.to_numpy(), [[0.0, 0.98, 0.96], [0.4, 0.70, 0.62]])


def test_summary(scores):
    result = summary(scores, "gaussian", 0.5)
    assert set(result) == {"none", "cae"}
    per_classifier = {"mean_gaussian_accuracy_cnn", "mean_gaussian_accuracy_other"}  # every classifier
    keys = {"clean_accuracy", "mean_noisy_accuracy", "gaussian_0.5_accuracy"} | per_classifier
    assert set(result["none"]) == keys
    assert set(result["cae"]) == keys | {
        "gaussian_0.5_psnr",
        "gaussian_0.5_ssim",
        "mCE",
        "mean_gap_recovered",
    }
    assert result["none"]["mean_gaussian_accuracy_cnn"] == pytest.approx((0.90 + 0.40) / 2)
    assert result["none"]["mean_gaussian_accuracy_other"] == 0.0
    # CE per noise type: summed error over noisy levels / the same for no denoiser
    ce_gaussian, ce_speckle = (0.06 + 0.20) / (0.10 + 0.60), 0.38 / 0.30
    assert result["cae"]["mCE"] == pytest.approx((ce_gaussian + ce_speckle) / 2, abs=1e-4)
    gap_gaussian = ((0.94 - 0.90) / (0.98 - 0.90) + (0.80 - 0.40) / (0.98 - 0.40)) / 2
    gap_speckle = (0.62 - 0.70) / (0.98 - 0.70)
    assert result["cae"]["mean_gap_recovered"] == pytest.approx((gap_gaussian + gap_speckle) / 2, abs=1e-4)
    # means over level > 0 only: gaussian 0.1, gaussian 0.5, speckle 0.4
    assert result["none"]["clean_accuracy"] == 0.98
    assert result["none"]["mean_noisy_accuracy"] == pytest.approx((0.90 + 0.40 + 0.70) / 3, abs=1e-4)
    assert result["cae"]["clean_accuracy"] == 0.96
    assert result["cae"]["mean_noisy_accuracy"] == pytest.approx((0.94 + 0.80 + 0.62) / 3, abs=1e-4)
    assert result["cae"]["gaussian_0.5_accuracy"] == 0.80
    assert result["cae"]["gaussian_0.5_psnr"] == 18.0
    assert result["cae"]["gaussian_0.5_ssim"] == 0.70
    assert result["none"]["gaussian_0.5_accuracy"] == 0.40
    assert set(summary(scores, "gaussian", 0.5, ["cae"])) == {"cae"}  # only the denoisers asked for


def test_summary_headline_key_format(scores):
    assert "speckle_0.4_accuracy" in summary(scores, "speckle", 0.4)["cae"]
    assert summary(scores, "gaussian", 0.1)["cae"]["gaussian_0.1_psnr"] == 26.0


def test_markdown_tables(scores):
    text = markdown_tables(add_intervals(scores, ["gaussian"]), DENOISERS)
    assert text.startswith("# Classifier accuracy (%) by noise level and denoiser")
    assert "## gaussian (seen in denoiser training), classifier cnn" in text
    assert "## speckle (unseen by the denoisers), classifier other" in text
    assert text.count("\n## ") == 4  # noise types x classifiers
    assert text.index("## gaussian") < text.index("## speckle")
    speckle = text[
        text.index("## speckle") : text.index("## speckle (unseen by the denoisers), classifier other")
    ]
    lines = [line for line in speckle.splitlines() if line.startswith("|")]
    header, body = lines[0], lines[2:]
    assert [cell.strip() for cell in header.split("|")[1:-1]] == ["level", "none", "cae"]
    assert [[float(cell) for cell in line.split("|")[1:-1]] for line in body] == [
        [0.0, 98.0, 96.0],
        [0.4, 70.0, 62.0],
    ]


def test_headline_table(scores):
    text = headline_table(scores, "gaussian", DENOISERS)
    header = text.splitlines()[0]
    assert "gaussian sigma →" in header
    assert "0.1" in header and "0.5" in header
    rows = {line.split("|")[1].strip(): line for line in text.splitlines()[2:]}
    assert set(rows) == {"none", "cae"}
    assert [float(cell) for cell in rows["cae"].split("|")[2:-1]] == [96.0, 94.0, 80.0]


def test_gain_table(scores):
    """One row per denoiser (not the baseline), the first classifier's gain in points with its
    interval, levels as columns."""
    gains = scores.assign(gain=scores["accuracy"] - 0.5, gain_low=-0.0123, gain_high=0.456)
    gains.loc[gains["denoiser"] == "none", ["gain", "gain_low", "gain_high"]] = np.nan
    text = gain_table(gains, "gaussian", DENOISERS)
    lines = text.splitlines()
    assert [cell.strip() for cell in lines[0].split("|")[1:-1]] == ["gaussian sigma →", "0", "0.1", "0.5"]
    assert len(lines) == 3  # header, rule, cae only
    cells = [cell.strip() for cell in lines[2].split("|")[1:-1]]
    assert cells == [
        "cae",
        "+46.00 (-1.23 to +45.60)",
        "+44.00 (-1.23 to +45.60)",
        "+30.00 (-1.23 to +45.60)",
    ]
