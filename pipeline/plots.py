"""Seaborn/matplotlib figures drawn from the scores table and sample images."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402


def accuracy_vs_level(scores: pd.DataFrame, path: str | Path) -> None:
    """One panel per noise type, one line per denoiser, 95% interval bands."""
    sns.set_theme(style="whitegrid")
    grid = sns.relplot(
        data=scores,
        x="level",
        y="accuracy",
        hue="denoiser",
        style="classifier",
        col="noise",
        col_wrap=3,
        kind="line",
        marker="o",
        height=3.2,
        facet_kws={"sharex": False},
        errorbar=None,
    )
    for kind, ax in grid.axes_dict.items():
        for _, rows in scores[scores["noise"] == kind].groupby(["denoiser", "classifier"]):
            rows = rows.sort_values("level")
            ax.fill_between(rows["level"], rows["accuracy_low"], rows["accuracy_high"], alpha=0.2)
        ax.set_ylim(0, 1.01)
    grid.set_axis_labels("noise level", "classifier accuracy")
    grid.figure.suptitle("Accuracy vs noise level (bands: 95% Wilson interval)", y=1.02)
    grid.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(grid.figure)


def sample_grid(rows: Mapping[str, Mapping[float, np.ndarray]], noise: str, path: str | Path) -> None:
    """Rows clean / noisy / each denoiser, columns noise levels; each cell a strip of digits."""
    names = list(rows)
    levels = list(rows[names[0]])
    fig, axes = plt.subplots(
        len(names), len(levels), figsize=(2.4 * len(levels), 0.9 * len(names)), squeeze=False
    )
    for r, name in enumerate(names):
        for c, level in enumerate(levels):
            strip = np.concatenate(list(rows[name][level]), axis=1)
            ax = axes[r][c]
            ax.imshow(strip, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"{noise} {level:g}", fontsize=9)
            if c == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
