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


def _palette(names) -> dict[str, tuple]:
    """One fixed colour per denoiser (shared by lines and bands)."""
    names = list(dict.fromkeys(names))
    return dict(
        zip(names, sns.color_palette("tab20" if len(names) > 10 else "tab10", len(names)), strict=True)
    )


def _level_lines(data: pd.DataFrame, y: str, palette: Mapping, **facets) -> sns.FacetGrid:
    """Seaborn line panels of ``y`` against noise level, a line per denoiser."""
    sns.set_theme(style="whitegrid")
    return sns.relplot(
        data=data, x="level", y=y, hue="denoiser", palette=palette, kind="line", marker="o", **facets
    )


def accuracy_vs_level(scores: pd.DataFrame, path: str | Path) -> None:
    """One panel per noise type, one line per denoiser, 95% interval bands."""
    palette = _palette(scores["denoiser"])
    grid = _level_lines(
        scores,
        "accuracy",
        palette,
        style="classifier",
        col="noise",
        col_wrap=3,
        height=3.2,
        facet_kws={"sharex": False},
        errorbar=None,
    )
    for kind, ax in grid.axes_dict.items():
        for (denoiser, _), rows in scores[scores["noise"] == kind].groupby(["denoiser", "classifier"]):
            rows = rows.sort_values("level")
            ax.fill_between(
                rows["level"],
                rows["accuracy_low"],
                rows["accuracy_high"],
                color=palette[denoiser],
                alpha=0.15,
            )
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


def quality_vs_level(scores: pd.DataFrame, path: str | Path) -> None:
    """PSNR and SSIM vs level, one column of panels per noise type, a line per denoiser."""
    first = scores["classifier"].iloc[0]
    rows = scores[(scores["classifier"] == first) & (scores["level"] > 0)]
    long = rows.melt(id_vars=["noise", "level", "denoiser"], value_vars=["psnr", "ssim"], var_name="metric")
    grid = _level_lines(
        long,
        "value",
        _palette(long["denoiser"]),
        row="metric",
        col="noise",
        height=2.6,
        facet_kws={"sharex": False, "sharey": "row"},
    )
    grid.set_titles("{col_name} | {row_name}")
    grid.set_axis_labels("noise level", "")
    grid.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(grid.figure)


def gap_heatmap(gaps: pd.DataFrame, path: str | Path) -> None:
    """Gap recovered (denoiser x classifier rows, level columns), one panel per noise type."""
    kinds = list(dict.fromkeys(gaps["noise"]))
    fig, axes = plt.subplots(1, len(kinds), figsize=(3.2 * len(kinds), 2.8), squeeze=False)
    for ax, kind in zip(axes[0], kinds, strict=True):
        part = gaps[gaps["noise"] == kind].assign(model=lambda f: f["denoiser"] + " | " + f["classifier"])
        table = part.pivot(index="model", columns="level", values="gap_recovered")
        sns.heatmap(
            table,
            ax=ax,
            vmin=-0.5,
            vmax=1,
            cmap="RdYlGn",
            annot=True,
            fmt=".2f",
            cbar=False,
            annot_kws={"fontsize": 7},
        )
        ax.set_title(kind)
        ax.set_ylabel("")
    fig.suptitle("Accuracy gap recovered (1 = all the accuracy lost to noise won back)")
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def confusion_matrices(confusion: pd.DataFrame, title: str, path: str | Path) -> None:
    """One confusion matrix per denoiser (rows true digit, columns predicted), first classifier."""
    first = confusion["classifier"].iloc[0]
    confusion = confusion[confusion["classifier"] == first]
    names = list(dict.fromkeys(confusion["denoiser"]))
    cols = min(len(names), 6)
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    for ax, name in zip(axes.ravel(), names, strict=False):
        table = confusion[confusion["denoiser"] == name].pivot(
            index="true", columns="predicted", values="count"
        )
        sns.heatmap(table, ax=ax, cmap="Blues", cbar=False, square=True, annot=False)
        correct = np.trace(table.to_numpy()) / table.to_numpy().sum()
        ax.set_title(f"{name} ({100 * correct:.1f}%)")
    fig.suptitle(f"{title}, classifier {first}")
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def compute_curves(curves: pd.DataFrame, path: str | Path, title: str) -> None:
    """Validation accuracy against training compute (TFLOP), a line per defense; panels by
    ``curves["panel"]`` (e.g. the frozen-classifier zoo and the retrainable contestants)."""
    sns.set_theme(style="whitegrid")
    data = curves.assign(tflop=curves["flops"] / 1e12)
    grid = sns.relplot(
        data=data,
        x="tflop",
        y="accuracy",
        hue="defense",
        col="panel",
        kind="line",
        marker="o",
        height=3.6,
        aspect=1.3,
        facet_kws={"sharex": False, "sharey": True},
        palette=_palette(data["defense"]),
    )
    grid.set_titles("{col_name}")
    grid.set_axis_labels("training compute (TFLOP)", "validation accuracy (mean over noisy levels)")
    grid.figure.suptitle(title, y=1.03)
    grid.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(grid.figure)
