"""Seaborn/matplotlib figures drawn from the scores table and sample images."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    """Seaborn line panels of ``y`` against noise level, a line per defense."""
    sns.set_theme(style="whitegrid")
    return sns.relplot(
        data=data, x="level", y=y, hue="defense", palette=palette, kind="line", marker="o", **facets
    )


def by_family(scores: pd.DataFrame, families: Mapping[str, Sequence[tuple[str, str]]]) -> pd.DataFrame:
    """The rows of each family's defenses ((denoiser, classifier) pairs), with ``family`` and
    ``defense`` columns; a defense in several families is repeated."""
    parts = []
    for family, defenses in families.items():
        pairs = pd.MultiIndex.from_frame(scores[["denoiser", "classifier"]])
        rows = scores[pairs.isin(list(defenses))]
        parts.append(rows.assign(family=family, defense=rows["denoiser"] + " + " + rows["classifier"]))
    return pd.concat(parts, ignore_index=True)


def accuracy_vs_level(
    scores: pd.DataFrame, families: Mapping[str, Sequence[tuple[str, str]]], path: str | Path
) -> None:
    """A row of panels per family of defenses (a few lines each), a column per noise type,
    95% interval bands."""
    data = by_family(scores, families)
    palette = _palette(data["defense"])
    grid = _level_lines(
        data,
        "accuracy",
        palette,
        row="family",
        col="noise",
        height=2.8,
        facet_kws={"sharex": "col", "margin_titles": True},
        errorbar=None,
    )
    for (family, kind), ax in grid.axes_dict.items():
        part = data[(data["family"] == family) & (data["noise"] == kind)]
        for defense, rows in part.groupby("defense"):
            rows = rows.sort_values("level")
            ax.fill_between(
                rows["level"], rows["accuracy_low"], rows["accuracy_high"], color=palette[defense], alpha=0.15
            )
        ax.set_ylim(0, 1.01)
    grid.set_axis_labels("noise level", "classifier accuracy")
    grid.figure.suptitle("Accuracy vs noise level (bands: 95% Wilson interval)", y=1.01)
    grid.savefig(path, dpi=100, bbox_inches="tight")
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


def quality_vs_level(
    scores: pd.DataFrame, families: Mapping[str, Sequence[tuple[str, str]]], metric: str, path: str | Path
) -> None:
    """``metric`` (psnr or ssim) vs level: a row of panels per family, a column per noise type."""
    data = by_family(scores[scores["level"] > 0], families)
    grid = _level_lines(
        data,
        metric,
        _palette(data["defense"]),
        row="family",
        col="noise",
        height=2.6,
        facet_kws={"sharex": "col", "sharey": True, "margin_titles": True},
    )
    grid.set_axis_labels("noise level", metric.upper())
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


def confusion_matrices(
    confusion: pd.DataFrame, title: str, path: str | Path, class_names: Sequence[str] | None = None
) -> None:
    """One confusion matrix per denoiser (rows true class, columns predicted), first classifier;
    ``class_names`` label the axes (default: the label numbers)."""
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
        labels = list(class_names) if class_names else "auto"
        sns.heatmap(
            table,
            ax=ax,
            cmap="Blues",
            cbar=False,
            square=True,
            annot=False,
            xticklabels=labels,
            yticklabels=labels,
        )
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


def heldout_heatmap(gains: pd.DataFrame, reference: tuple[str, str], path: str | Path) -> None:
    """Accuracy gain (points) over no defense per defense (rows) and held-out corruption
    (columns); a significant harm (paired 95% interval below 0) is marked with "x"."""
    rows = gains[~((gains["denoiser"] == reference[0]) & (gains["classifier"] == reference[1]))]
    rows = rows.assign(defense=rows["denoiser"] + " + " + rows["classifier"])
    order = list(dict.fromkeys(rows["corruption"]))
    table = 100 * rows.pivot(index="defense", columns="corruption", values="gain")[order]
    harm = rows.pivot(index="defense", columns="corruption", values="harm")[order]
    labels = table.round(0).astype(int).astype(str) + harm.replace({True: "x", False: ""})
    fig, ax = plt.subplots(figsize=(0.6 * len(order) + 3, 0.32 * len(table) + 1.5))
    limit = float(np.nanmax(np.abs(table.to_numpy()))) or 1.0
    sns.heatmap(
        table, ax=ax, cmap="RdBu", center=0, vmin=-limit, vmax=limit, annot=labels, fmt="",
        annot_kws={"fontsize": 6}, cbar_kws={"label": "gain over no defense (points)"},
    )  # fmt: skip
    ax.set_title(f"Held-out corruptions: gain over {reference[0]} + {reference[1]} (x: significant harm)")
    ax.set_xlabel("")
    ax.set_ylabel("")
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
