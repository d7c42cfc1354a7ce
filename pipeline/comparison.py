"""Side by side with the seeds: every denoiser at one cell (gaussian 0.5) next to published figures."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

# The seed with the best published numbers: a lite U-Net (our ``unet_bn``) trained on Gaussian
# sigma 0.5 noise clipped to [0, 1], drawn once, 10 epochs, batch 256, MSE, Adam 1e-3; mean of
# skimage's per-image PSNR/SSIM over the 10k test images (data_range 1, 7x7 window).
SEED_PUBLISHED = {
    "denoiser": "seed unet_bn (published)",
    "source": "published",
    "psnr": 20.96,
    "ssim": 0.8371,
}
REFERENCE_SOURCE = "reference recipe, run here (python -m pipeline.reference)"


def comparison_table(
    scores: pd.DataFrame,
    noise: str,
    level: float,
    training: Mapping[str, Mapping],
    kinds: Mapping[str, str],
    reference_runs: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per denoiser at (noise, level) with the first (reference) classifier, then the
    reference recipe's rows from its own workflow (``results/reference.csv``, same columns), then
    the seed's published row.

    ``training`` maps learned denoisers to their training summary (train_seconds, parameters);
    ``kinds`` labels each denoiser (e.g. "learned, blind" or "classical, non-blind").
    """
    reference = scores["classifier"].iloc[0]
    cell = scores[
        (scores["noise"] == noise) & np.isclose(scores["level"], level) & (scores["classifier"] == reference)
    ]
    rows = []
    for _, row in cell.iterrows():
        name = row["denoiser"]
        summary = training.get(name, {})
        rows.append(
            {
                "denoiser": name,
                "source": kinds.get(name, "baseline"),
                "psnr": row["psnr"],
                "ssim": row["ssim"],
                "accuracy": row["accuracy"],
                "accuracy_low": row["accuracy_low"],
                "accuracy_high": row["accuracy_high"],
                "n_images": row["n_images"],
                "parameters": summary.get("parameters"),
                "charged_tflop": summary["charged_flops"] / 1e12 if "charged_flops" in summary else None,
                "train_seconds": summary.get("train_seconds"),
            }
        )
    if reference_runs is not None:
        rows += reference_rows(reference_runs)
    rows.append(SEED_PUBLISHED)
    return pd.DataFrame(rows)


def reference_rows(runs: pd.DataFrame) -> list[dict]:
    """The reference recipe's rows, each labelled with its training seed, and where there are
    several, their mean (PSNR, SSIM, accuracy, compute and time; no interval)."""
    rows = runs.drop(columns=["commit", "epochs_run"], errors="ignore").assign(source=REFERENCE_SOURCE)
    if "train_seed" in rows:
        rows["denoiser"] = rows["denoiser"] + ", train seed " + rows["train_seed"].astype(str)
        rows = rows.drop(columns="train_seed")
    records = rows.to_dict("records")
    if len(runs) > 1:
        averaged = ["psnr", "ssim", "accuracy", "n_images", "parameters", "charged_tflop", "train_seconds"]
        averaged += ["train_images"] if "train_images" in runs else []
        records.append(
            {
                "denoiser": f"{runs['denoiser'].iloc[0]}, mean of {len(runs)} seeds",
                "source": REFERENCE_SOURCE,
                **runs[averaged].mean().to_dict(),
            }
        )
    return records


def _fmt(values: pd.Series, spec: str) -> list[str]:
    """Format numbers with ``spec``; missing values become blank cells."""
    return ["" if pd.isna(v) else format(v, spec) for v in values]


def comparison_markdown(table: pd.DataFrame, noise: str, level: float) -> str:
    """The table as markdown: accuracy in % with its 95% interval, PSNR in dB."""
    shown = pd.DataFrame(
        {
            "denoiser": table["denoiser"],
            "kind": table["source"],
            "PSNR (dB)": _fmt(table["psnr"], ".2f"),
            "SSIM": _fmt(table["ssim"], ".4f"),
            "accuracy (%)": _fmt(100 * table["accuracy"], ".2f"),
            "95% interval": [
                "" if pd.isna(lo) else f"{100 * lo:.2f}-{100 * hi:.2f}"
                for lo, hi in zip(table["accuracy_low"], table["accuracy_high"], strict=True)
            ],
            "test images": _fmt(table["n_images"], ".0f"),
            "parameters": _fmt(table["parameters"], ",.0f"),
            "charged TFLOP": _fmt(table["charged_tflop"], ".1f"),
            "train time (s)": _fmt(table["train_seconds"], ".0f"),
        }
    )
    title = f"# Denoisers at {noise} {level:g}, side by side with the seed\n\n"
    note = (
        "\n\nPSNR/SSIM: mean over the test images of scikit-image's per-image values (data_range 1, "
        "7x7 window), the seed's protocol. Accuracy: the clean-trained classifier on the denoised "
        "images. The published row reports only PSNR and SSIM. Charged TFLOP: the training compute "
        "of the denoiser (the tuned U-Net: its search and final fit; the guided one: its base and its "
        "fine-tune; the classical filters are fitted, not trained). Train time: wall time of the "
        "denoiser's own fit on this run's machine (stage times: results/benchmarks/repro.json).\n"
    )
    return title + shown.to_markdown(index=False, disable_numparse=True) + note + reference_note(table)


def reference_note(table: pd.DataFrame) -> str:
    """What the reference recipe's rows trained on, where the table has them (from their own
    run, ``results/reference.csv``); empty otherwise."""
    counts = table[table["source"] == REFERENCE_SOURCE].get("train_images", pd.Series(dtype=float)).dropna()
    if counts.empty:
        return ""
    return (
        f"\nThe reference recipe's rows trained on {', '.join(f'{n:,.0f}' for n in counts.unique())} "
        "images each (with the validation images where presets/reference.yaml sets "
        "whole_training_set, as the published recipe, which chooses nothing on them), on their own "
        "run's machine (results/reference.csv); the learned denoisers above train on the training "
        "split only.\n"
    )
