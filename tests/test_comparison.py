"""Side-by-side table at the headline cell."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.comparison import (
    REFERENCE_SOURCE,
    SEED_PUBLISHED,
    comparison_markdown,
    comparison_table,
    reference_rows,
)


def scores() -> pd.DataFrame:
    rows = []
    for classifier, shift in (("clean", 0.0), ("noise_aug", 0.02)):  # only the first is compared
        for level in (0.0, 0.5):
            for name, acc, n in (
                ("none", 0.6 + shift, 100),
                ("unet_bn", 0.95 + shift, 100),
                ("tv", 0.8 + shift, 20),
            ):
                rows.append(
                    {
                        "classifier": classifier,
                        "noise": "gaussian",
                        "level": level,
                        "denoiser": name,
                        "accuracy": acc,
                        "psnr": 20.0 + acc,
                        "ssim": acc - 0.1,
                        "n_images": n,
                        "accuracy_low": acc - 0.01,
                        "accuracy_high": acc + 0.01,
                    }
                )
    return pd.DataFrame(rows)


def test_table_has_one_row_per_denoiser_plus_published():
    table = comparison_table(
        scores(),
        "gaussian",
        0.5,
        {"unet_bn": {"train_seconds": 12.34, "parameters": 117713}},
        {"unet_bn": "learned, blind", "tv": "classical"},
        reference_runs=pd.DataFrame(
            [{"denoiser": "reference_unet_bn", "psnr": 20.9, "ssim": 0.84, "accuracy": 0.97, "commit": "abc"}]
        ),
    )
    assert list(table["denoiser"]) == [
        "none",
        "unet_bn",
        "tv",
        "reference_unet_bn",
        SEED_PUBLISHED["denoiser"],
    ]
    row = table.set_index("denoiser").loc["unet_bn"]
    assert row["psnr"] == 20.95 and row["parameters"] == 117713 and row["train_seconds"] == 12.34
    assert table.set_index("denoiser").loc["reference_unet_bn", "source"] == REFERENCE_SOURCE
    assert "commit" not in table.columns
    published = table.iloc[-1]
    assert published["psnr"] == 20.96 and published["ssim"] == 0.8371 and np.isnan(published["accuracy"])


def test_markdown_formats_units_and_blanks():
    table = comparison_table(
        scores(),
        "gaussian",
        0.5,
        {"unet_bn": {"train_seconds": 12.6, "parameters": 117713, "charged_flops": 2.04e13}},
        {},
    )
    text = comparison_markdown(table, "gaussian", 0.5)
    assert text.startswith("# Denoisers at gaussian 0.5, side by side with the seed")
    rows = {
        cells[0]: cells
        for line in text.splitlines()
        if line.startswith("| ") and (cells := [c.strip() for c in line.strip("|").split("|")])
    }
    assert rows["unet_bn"][2:] == ["20.95", "0.8500", "95.00", "94.00-96.00", "100", "117,713", "20.4", "13"]
    assert rows["tv"][6:] == ["20", "", "", ""]
    assert rows[SEED_PUBLISHED["denoiser"]][2:] == ["20.96", "0.8371", "", "", "", "", "", ""]
    assert "<NA>" not in text and "nan" not in text
    assert "reference recipe's rows trained" not in text  # no reference rows, no note


def test_reference_rows_name_their_seed_and_add_the_mean_of_several():
    runs = pd.DataFrame(
        {
            "denoiser": ["reference_unet_bn"] * 3,
            "train_seed": [42, 1, 2],
            "psnr": [20.9, 20.8, 21.0],
            "ssim": [0.83, 0.80, 0.86],
            "accuracy": [0.98, 0.97, 0.99],
            "accuracy_low": [0.97, 0.96, 0.98],
            "accuracy_high": [0.99, 0.98, 0.995],
            "n_images": [10000] * 3,
            "parameters": [118033] * 3,
            "charged_tflop": [62.7] * 3,
            "train_seconds": [600.0, 580.0, 590.0],
            "epochs_run": [10] * 3,
            "commit": ["abc"] * 3,
        }
    )
    rows = pd.DataFrame(reference_rows(runs)).set_index("denoiser")
    assert list(rows.index) == [
        "reference_unet_bn, train seed 42",
        "reference_unet_bn, train seed 1",
        "reference_unet_bn, train seed 2",
        "reference_unet_bn, mean of 3 seeds",
    ]
    mean = rows.loc["reference_unet_bn, mean of 3 seeds"]
    assert mean[["psnr", "ssim", "accuracy", "train_seconds"]].tolist() == pytest.approx(
        [20.9, 0.83, 0.98, 590.0]
    )
    assert np.isnan(mean["accuracy_low"]) and (rows["source"] == REFERENCE_SOURCE).all()
    assert "train_seed" not in rows.columns and "commit" not in rows.columns
    runs["train_images"] = 60000
    table = comparison_table(scores(), "gaussian", 0.5, {}, {}, reference_runs=runs)
    assert table.set_index("denoiser").loc["reference_unet_bn, mean of 3 seeds", "train_images"] == 60000
    assert "The reference recipe's rows trained on 60,000 images each" in comparison_markdown(
        table, "gaussian", 0.5
    )
    single = reference_rows(runs.iloc[[1]])
    assert [row["denoiser"] for row in single] == ["reference_unet_bn, train seed 1"]
