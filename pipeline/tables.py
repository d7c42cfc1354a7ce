"""Everything derived from the tidy scores table: intervals, pivots, summary metrics."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from pipeline.metrics import wilson_interval
from pipeline.robustness import defense_table, robustness_table


def add_intervals(scores: pd.DataFrame, seen_noise: Collection[str]) -> pd.DataFrame:
    """Add 95% Wilson intervals for accuracy and whether denoisers trained on the noise type."""

    out = scores.copy()
    bounds = np.array(
        [wilson_interval(round(row.accuracy * row.n_images), row.n_images) for row in out.itertuples()]
    ).reshape(-1, 2)
    out["accuracy_low"], out["accuracy_high"] = bounds[:, 0], bounds[:, 1]
    out["seen_in_training"] = out["noise"].isin(list(seen_noise))
    return out


def accuracy_pivot(
    scores: pd.DataFrame, kind: str, denoisers: list[str], classifier: str | None = None
) -> pd.DataFrame:
    """Accuracy (%) by level for one noise type, one column per denoiser of ``denoisers`` scored
    with ``classifier`` (default: the first; a later one may be scored behind fewer)."""
    classifier = classifier or scores["classifier"].iloc[0]
    rows = scores[(scores["noise"] == kind) & (scores["classifier"] == classifier)]
    table = rows.pivot(index="level", columns="denoiser", values="accuracy")
    table = table[[name for name in denoisers if name in table.columns]]
    return (100 * table).round(2)


def markdown_tables(scores: pd.DataFrame, denoisers: list[str]) -> str:
    """One Markdown accuracy pivot per noise type and classifier."""
    parts = ["# Classifier accuracy (%) by noise level and denoiser\n"]
    for kind in scores["noise"].unique():
        seen = bool(scores.loc[scores["noise"] == kind, "seen_in_training"].iloc[0])
        label = "seen in denoiser training" if seen else "unseen by the denoisers"
        for classifier in scores.loc[scores["noise"] == kind, "classifier"].unique():
            table = accuracy_pivot(scores, kind, denoisers, classifier)
            parts.append(f"## {kind} ({label}), classifier {classifier}\n\n{table.to_markdown()}\n")
    return "\n".join(parts)


def curve_table(scores: pd.DataFrame, kind: str, denoisers: list[str]) -> pd.DataFrame:
    """Wide accuracy-vs-level table for ``dvc plots``: a ``level`` column and one per denoiser."""
    return accuracy_pivot(scores, kind, denoisers).div(100).reset_index()


def summary(
    scores: pd.DataFrame, headline_noise: str, headline_level: float, denoisers: Collection[str] | None = None
) -> dict:
    """Small nested dict for metrics.json: a few headline numbers per denoiser in ``denoisers``
    (default: all; the pipeline keeps it to no denoiser and the flagship, so ``dvc metrics`` stays
    readable; per-denoiser detail is in scores.csv).

    Numbers are for the first (reference) classifier, plus the mean accuracy over the headline
    noise type's noisy levels with every classifier (``mean_<noise>_accuracy_<classifier>``).
    ``mCE`` and ``mean_gap_recovered`` (defined in ``pipeline.robustness``) and the image quality
    at the headline cell are left out for no denoiser (1, undefined and the noisy input's).
    """
    first = scores["classifier"].iloc[0]
    defenses = defense_table(scores, headline_noise).set_index(["denoiser", "classifier"])
    scores = scores[scores["classifier"] == first]
    noisy = scores[scores["level"] > 0]
    clean = scores[scores["level"] == 0]
    headline = scores[(scores["noise"] == headline_noise) & (scores["level"] == headline_level)]
    key = f"{headline_noise}_{headline_level:g}"
    robust = robustness_table(scores).groupby("denoiser")[["corruption_error", "mean_gap_recovered"]].mean()
    result: dict = {}
    names = [name for name in scores["denoiser"].unique() if denoisers is None or name in denoisers]
    for name in names:
        mine = noisy[noisy["denoiser"] == name]
        at_headline = headline[headline["denoiser"] == name].iloc[0]
        entry = {
            "clean_accuracy": round(float(clean[clean["denoiser"] == name]["accuracy"].iloc[0]), 4),
            "mean_noisy_accuracy": round(float(mine["accuracy"].mean()), 4),
            f"{key}_accuracy": round(float(at_headline["accuracy"]), 4),
        }
        if name != "none":
            entry |= {
                f"{key}_psnr": round(float(at_headline["psnr"]), 3),
                f"{key}_ssim": round(float(at_headline["ssim"]), 4),
                "mCE": round(float(robust.loc[name, "corruption_error"]), 4),
                "mean_gap_recovered": round(float(robust.loc[name, "mean_gap_recovered"]), 4),
            }
        for classifier, mean_accuracy in defenses.loc[name, "mean_accuracy"].items():
            entry[f"mean_{headline_noise}_accuracy_{classifier}"] = round(float(mean_accuracy), 4)
        result[name] = entry
    return result


def gain_table(scores: pd.DataFrame, noise: str, denoisers: list[str]) -> str:
    """Markdown: each denoiser's accuracy gain over no denoiser (points) on ``noise``, levels as
    columns, with the paired 95% interval (first classifier; level 0: the change on clean images)."""
    first = scores["classifier"].iloc[0]
    rows = scores[(scores["noise"] == noise) & (scores["classifier"] == first) & scores["gain"].notna()]
    cells = rows.assign(
        cell=[
            f"{100 * g:+.2f} ({100 * lo:+.2f} to {100 * hi:+.2f})"
            for g, lo, hi in zip(rows["gain"], rows["gain_low"], rows["gain_high"], strict=True)
        ]
    ).pivot(index="denoiser", columns="level", values="cell")
    table = cells.loc[[name for name in denoisers if name in cells.index]]
    table.columns = [f"{level:g}" for level in table.columns]
    table.index.name = f"{noise} sigma →"
    return table.to_markdown()


def headline_table(scores: pd.DataFrame, headline_noise: str, denoisers: list[str]) -> str:
    """Markdown: accuracy (%) on the headline noise type, levels as columns."""
    table = accuracy_pivot(scores, headline_noise, denoisers).T
    table.columns = [f"{level:g}" for level in table.columns]
    table.index.name = f"{headline_noise} sigma →"
    return table.to_markdown()
