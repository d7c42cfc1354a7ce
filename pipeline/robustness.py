"""Robustness metrics derived from the tidy scores table.

Definitions (accuracies are fractions; "noisy levels" are the levels > 0 of a noise type):

- ``clean_cost``: accuracy on clean images without the denoiser minus with it (same
  classifier): what passing clean digits through the denoiser costs.
- ``mean_accuracy``: mean accuracy over the noisy levels, i.e. the area under the
  accuracy-vs-level curve with the levels as equally weighted points.
- ``gap_recovered`` at a level: (acc_denoised - acc_noisy) / (acc_clean - acc_noisy), where
  acc_noisy and acc_clean are the same classifier's accuracy without a denoiser at that
  level and on clean images; 1 = all the lost accuracy is won back, 0 = none, < 0 = worse.
  Undefined (NaN) where the noise costs less than 0.5 points (nothing to recover).
- ``corruption_error`` (CE, after ImageNet-C's mCE, Hendrycks & Dietterich 2019): the
  summed top-1 error over the noisy levels divided by that of the baseline (the first
  classifier, no denoiser) on the same noise type. Below 1 beats the baseline. ``mCE`` is
  its mean over noise types.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.metrics import wilson_interval

MIN_GAP = 0.005
KEYS = ["denoiser", "classifier", "noise"]


def _with_reference(scores: pd.DataFrame, baseline_denoiser: str) -> pd.DataFrame:
    """Attach the same classifier's no-denoiser accuracy at each level and on clean images."""
    none = scores[scores["denoiser"] == baseline_denoiser]
    noisy_ref = none[["classifier", "noise", "level", "accuracy"]].rename(columns={"accuracy": "acc_noisy"})
    clean_ref = (
        none[none["level"] == 0]
        .groupby("classifier", as_index=False)["accuracy"]
        .first()
        .rename(columns={"accuracy": "acc_clean"})
    )
    merged = scores.merge(noisy_ref, on=["classifier", "noise", "level"]).merge(clean_ref, on="classifier")
    return merged


def gap_recovered(scores: pd.DataFrame, baseline_denoiser: str = "none") -> pd.DataFrame:
    """Per-row gap recovered (NaN where there is no gap); rows of the baseline are dropped."""
    rows = _with_reference(scores, baseline_denoiser)
    rows = rows[(rows["denoiser"] != baseline_denoiser) & (rows["level"] > 0)].copy()
    gap = rows["acc_clean"] - rows["acc_noisy"]
    rows["gap_recovered"] = np.where(
        gap >= MIN_GAP, (rows["accuracy"] - rows["acc_noisy"]) / gap.where(gap >= MIN_GAP), np.nan
    )
    return rows[[*KEYS, "level", "accuracy", "acc_noisy", "acc_clean", "gap_recovered"]]


def robustness_table(scores: pd.DataFrame, baseline_denoiser: str = "none") -> pd.DataFrame:
    """One row per denoiser x classifier x noise type with the metrics defined above."""
    baseline_classifier = scores["classifier"].iloc[0]
    rows = _with_reference(scores, baseline_denoiser)
    noisy = rows[rows["level"] > 0]
    clean = rows[rows["level"] == 0]
    base = noisy[(noisy["denoiser"] == baseline_denoiser) & (noisy["classifier"] == baseline_classifier)]
    base_error = (1 - base["accuracy"]).groupby(base["noise"]).sum()

    table = noisy.groupby(KEYS, sort=False).agg(
        mean_accuracy=("accuracy", "mean"), summed_error=("accuracy", lambda a: (1 - a).sum())
    )
    table["corruption_error"] = (
        table["summed_error"] / base_error.reindex(table.index.get_level_values("noise")).to_numpy()
    )
    clean_acc = clean.groupby(KEYS, sort=False)["accuracy"].first()
    clean_ref = clean.groupby(KEYS, sort=False)["acc_clean"].first()
    table["clean_accuracy"] = clean_acc
    table["clean_cost"] = clean_ref - clean_acc
    gaps = gap_recovered(scores, baseline_denoiser).groupby(KEYS, sort=False)["gap_recovered"].mean()
    table["mean_gap_recovered"] = gaps
    if "seen_in_training" in scores:
        seen = scores.groupby("noise")["seen_in_training"].first()
        table["seen_in_training"] = seen.reindex(table.index.get_level_values("noise")).to_numpy()
    return table.drop(columns="summed_error").reset_index()


def mean_corruption_error(table: pd.DataFrame) -> pd.DataFrame:
    """mCE and mean accuracy per denoiser x classifier, over all, seen and unseen noise types."""
    groups = {"all": table}
    if "seen_in_training" in table:
        groups |= {"seen": table[table["seen_in_training"]], "unseen": table[~table["seen_in_training"]]}
    parts = []
    for label, part in groups.items():
        if part.empty:
            continue
        summary = part.groupby(["denoiser", "classifier"], sort=False).agg(
            mCE=("corruption_error", "mean"), mean_accuracy=("mean_accuracy", "mean")
        )
        parts.append(summary.assign(noise_types=label).reset_index())
    return pd.concat(parts, ignore_index=True)


def defense_table(scores: pd.DataFrame, noise: str) -> pd.DataFrame:
    """Mean accuracy over the noisy levels of ``noise`` per denoiser x classifier (every defense
    combination), with a 95% Wilson interval on the pooled correct count over those levels."""
    rows = scores[(scores["noise"] == noise) & (scores["level"] > 0)]
    rows = rows.assign(correct=(rows["accuracy"] * rows["n_images"]).round())
    table = rows.groupby(["denoiser", "classifier"], sort=False).agg(
        mean_accuracy=("accuracy", "mean"), correct=("correct", "sum"), images=("n_images", "sum")
    )
    bounds = [wilson_interval(c, n) for c, n in zip(table["correct"], table["images"], strict=True)]
    table["low"], table["high"] = [b[0] for b in bounds], [b[1] for b in bounds]
    return table.drop(columns="correct").reset_index()
