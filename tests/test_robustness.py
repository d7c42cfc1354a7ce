"""Derived robustness metrics on a hand-made scores table with known answers."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.flops import model_flops
from pipeline.models import build_cae, build_classifier
from pipeline.report import overlap_note
from pipeline.robustness import gap_recovered, mean_corruption_error, robustness_table

# accuracy at levels 0, 0.5, 1.0 for the clean-trained classifier "cnn"
CURVES = {"none": [0.99, 0.80, 0.50], "cae": [0.98, 0.95, 0.70]}


@pytest.fixture
def scores() -> pd.DataFrame:
    rows = []
    for classifier, bonus in (("cnn", 0.0), ("aug", 0.05)):
        for denoiser, curve in CURVES.items():
            for noise in ("gaussian", "speckle"):
                for level, accuracy in zip((0.0, 0.5, 1.0), curve, strict=True):
                    rows.append(
                        {
                            "noise": noise,
                            "level": level,
                            "denoiser": denoiser,
                            "classifier": classifier,
                            "accuracy": accuracy if level == 0 else min(0.99, accuracy + bonus),
                            "n_images": 10000,
                            "seen_in_training": noise == "gaussian",
                        }
                    )
    return pd.DataFrame(rows)


def test_gap_recovered_matches_the_definition(scores):
    gaps = gap_recovered(scores)
    cell = gaps[(gaps["denoiser"] == "cae") & (gaps["classifier"] == "cnn") & (gaps["level"] == 0.5)]
    assert cell["gap_recovered"].iloc[0] == pytest.approx((0.95 - 0.80) / (0.99 - 0.80))
    assert set(gaps["denoiser"]) == {"cae"}  # the baseline itself is not a row


def test_gap_is_undefined_where_noise_costs_nothing(scores):
    scores.loc[(scores["denoiser"] == "none") & (scores["level"] == 0.5), "accuracy"] = 0.99
    gaps = gap_recovered(scores)
    assert gaps[gaps["level"] == 0.5]["gap_recovered"].isna().all()


def test_robustness_table(scores):
    table = robustness_table(scores).set_index(["denoiser", "classifier", "noise"])
    cae = table.loc[("cae", "cnn", "gaussian")]
    assert cae["mean_accuracy"] == pytest.approx((0.95 + 0.70) / 2)
    # CE: summed error over noisy levels relative to the clean-trained classifier without denoiser
    assert cae["corruption_error"] == pytest.approx((0.05 + 0.30) / (0.20 + 0.50))
    assert cae["clean_cost"] == pytest.approx(0.01)
    assert table.loc[("none", "cnn", "gaussian"), "corruption_error"] == pytest.approx(1.0)
    assert table.loc[("none", "aug", "gaussian"), "corruption_error"] == pytest.approx(
        (0.15 + 0.45) / (0.20 + 0.50)
    )
    assert not table.loc[("cae", "cnn", "speckle"), "seen_in_training"]


def test_mean_corruption_error_splits_seen_and_unseen(scores):
    mce = mean_corruption_error(robustness_table(scores))
    assert set(mce["noise_types"]) == {"all", "seen", "unseen"}
    row = mce[(mce["denoiser"] == "cae") & (mce["classifier"] == "cnn") & (mce["noise_types"] == "all")]
    assert row["mCE"].iloc[0] == pytest.approx(0.5)


def test_overlap_note_flags_ties():
    cell = pd.DataFrame(
        {
            "noise": "gaussian",
            "level": 0.5,
            "classifier": "cnn",
            "denoiser": ["none", "a", "b"],
            "accuracy": [0.50, 0.90, 0.895],
            "accuracy_low": [0.49, 0.894, 0.889],
            "accuracy_high": [0.51, 0.906, 0.901],
        }
    )
    note = overlap_note(cell, "gaussian", 0.5, ["none", "a", "b"])
    assert "**a**" in note and "overlap with b" in note and "none" not in note.split("overlap")[1]


def test_flop_counts_match_hand_computation():
    # CAE(32): convs at 28x28 (1->32), 14x14 (32->32), 7x7 (32->32), 14x14 (32->32), 28x28 (32->1)
    expected = 2 * 9 * (28 * 28 * 32 + 14 * 14 * 32 * 32 + 7 * 7 * 32 * 32 + 14 * 14 * 32 * 32 + 28 * 28 * 32)
    assert model_flops(build_cae(32)) == expected
    classifier = build_classifier(filters=8, dense_units=16)
    dense = 2 * (7 * 7 * 16 * 16 + 16 * 10)
    assert model_flops(classifier) == 2 * 9 * (28 * 28 * 8 + 14 * 14 * 8 * 16) + dense


def test_defense_table_pools_levels(scores):
    from pipeline.metrics import wilson_interval
    from pipeline.robustness import defense_table

    table = defense_table(scores, "gaussian").set_index(["denoiser", "classifier"])
    assert len(table) == 4  # every denoiser x classifier combination
    row = table.loc[("cae", "aug")]
    assert row["mean_accuracy"] == pytest.approx((0.99 + 0.75) / 2)  # min(0.99, 0.95 + 0.05), 0.70 + 0.05
    assert row["images"] == 20000
    assert (row["low"], row["high"]) == pytest.approx(wilson_interval(round(0.99 * 10000) + 7500, 20000))


def test_wilson_interval_known_value():
    from pipeline.metrics import wilson_interval

    # 50 of 100: centre 0.5, half-width 1.96 * sqrt(0.25 / 100) / (1 + 1.96^2 / 100) ~ 0.0962
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)
