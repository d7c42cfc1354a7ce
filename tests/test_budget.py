"""Compute accounting, the common budget, compute curves and the generated verdicts."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline import verdicts
from pipeline.budget import (
    Allocation,
    allocate,
    classifier_fit,
    denoiser_fit,
    matched_contestants,
    read_compute_records,
    rival_target_flops,
)
from pipeline.curves import ComputeCurve, curve_set, defense_accuracy
from pipeline.data import DataError
from pipeline.flops import FROZEN_FACTOR, TRAIN_FACTOR, model_flops, training_flops_per_image
from pipeline.guided import InferenceMode, guided_model
from pipeline.models import build_classifier, build_denoiser
from pipeline.params import ParamsError, parse_params

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def params():
    return parse_params(yaml.safe_load((ROOT / "params.yaml").read_text()))


def test_a_nested_model_costs_the_sum_of_its_parts():
    denoiser = build_denoiser("unet", 8, "d", residual=True)
    classifier = build_classifier(8, 16, name="c")
    assert model_flops(denoiser) > 0 and model_flops(classifier) > 0
    for frozen_mode in (True, False):  # nested directly, or wrapped in InferenceMode
        chained = guided_model(denoiser, classifier, classifier_training=frozen_mode)
        assert model_flops(chained) == model_flops(denoiser) + model_flops(classifier)
    inputs = keras.Input((28, 28))
    wrapped = keras.Model(inputs, InferenceMode(classifier)(denoiser(inputs)))
    assert model_flops(wrapped) == model_flops(denoiser) + model_flops(classifier)
    per_image = training_flops_per_image(denoiser, frozen=classifier)
    assert per_image == TRAIN_FACTOR * model_flops(denoiser) + FROZEN_FACTOR * model_flops(classifier)


def test_two_models_of_different_cost_get_the_same_flops():
    cheap, dear = 1_000_000, 7_000_000
    a, b = allocate(1e12, cheap, 8, 32), allocate(1e12, dear, 8, 32)
    assert a.slices == b.slices == 8
    assert a.images > 6 * b.images  # the cheaper model sees more images...
    for allocation in (a, b):  # ...and both spend the budget, short by less than one image a slice
        assert 1e12 - 8 * allocation.flops_per_image < allocation.flops <= 1e12


def test_a_budget_too_small_for_one_batch_names_the_key():
    with pytest.raises(ParamsError, match=r"budget\.flops=1e\+09 buys 0 training images.*one batch \(64\)"):
        allocate(1e9, 200_000_000, 8, 64)


def test_budgeted_denoisers_follow_the_budget_and_fixed_recipes_their_own(params):
    for name in params.denoisers:
        allocation, fit = denoiser_fit(params, name, 3 * 40_000_000, 55_000)
        assert fit.epochs == params.budget.checkpoints and fit.train_size == allocation.slice_images
        assert abs(allocation.flops - params.budget.flops) / params.budget.flops < 0.01
    raw = params.model_dump(exclude_unset=True)
    raw["denoisers"]["recipe"] = {"architecture": "unet_bn", "budget": False, "epochs": 10, "batch_size": 256}
    fixed = parse_params(raw)
    allocation, fit = denoiser_fit(fixed, "recipe", 1000, 55_000)
    assert (allocation.slices, allocation.slice_images, fit.epochs) == (10, 55_000, 10)


def charged(flops: float) -> dict:
    return {"charged_flops": flops}


def test_the_rival_gets_what_the_largest_denoising_defense_spent_within_five_percent(params):
    rival = params.rival_classifier
    config = params.classifiers[rival]
    model = build_classifier(config.filters, config.dense_units, config.dropout, name=rival)
    b = params.budget.flops
    records = {name: charged(b) for name in matched_contestants(params)}
    records[params.guided.name] = charged(2.5 * b)  # its base's B plus its fine-tune
    target = rival_target_flops(params, records, charged(2 * b))
    assert target == pytest.approx(4.5 * b)  # the guided chain plus the clean classifier
    allocation, fit = classifier_fit(params, rival, training_flops_per_image(model), 55_000, target)
    assert abs(allocation.flops - target) / target < 0.05
    assert fit.epochs == params.budget.checkpoints and fit.train_size == allocation.slice_images


def test_a_denoiser_that_stopped_early_lowers_the_rivals_target(params):
    b = params.budget.flops
    records = {name: charged(b) for name in matched_contestants(params)}
    records[params.guided.name] = charged(1.5 * b)
    full = rival_target_flops(params, records, charged(b))
    records[params.guided.name] = charged(0.6 * b + 0.5 * b)  # its base stopped at 60% of B
    assert rival_target_flops(params, records, charged(b)) == pytest.approx(full - 0.4 * b)


def test_fixed_recipes_are_not_contestants_and_a_missing_record_is_named(params, tmp_path):
    raw = params.model_dump(exclude_unset=True)
    raw["denoisers"]["recipe"] = {"architecture": "unet_bn", "budget": False, "epochs": 10, "batch_size": 256}
    fixed = parse_params(raw)
    assert "recipe" not in matched_contestants(fixed)
    records = {name: charged(1.0) for name in matched_contestants(fixed)} | {"recipe": charged(1e20)}
    assert rival_target_flops(fixed, records, charged(1.0)) == 2.0
    del records[params.guided.name]
    with pytest.raises(DataError, match=params.guided.name):
        rival_target_flops(fixed, records, charged(1.0))
    (tmp_path / "cae").mkdir()
    (tmp_path / "cae" / "compute.json").write_text('{"charged_flops": 3.0}')
    assert read_compute_records(tmp_path, ["cae"]) == {"cae": {"charged_flops": 3.0}}
    with pytest.raises(DataError, match=r"unet/compute\.json: not found"):
        read_compute_records(tmp_path, ["cae", "unet"])
    with pytest.raises(ValueError, match="match_budget"):
        classifier_fit(fixed, fixed.rival_classifier, 1000, 55_000)


def test_compute_curve_records_every_slice_from_where_it_starts():
    scores = iter([{0.5: 0.1, 1.0: 0.3}, {0.5: 0.6, 1.0: 0.2}, {0.5: 0.9, 1.0: 0.5}])
    curve = ComputeCurve(lambda: next(scores), Allocation(2, 100, 10, start_flops=5000.0))
    curve.on_train_begin()
    curve.on_epoch_end(0)
    curve.on_epoch_end(1)
    frame = curve.frame()
    assert list(frame["checkpoint"]) == [0, 1, 2] and list(frame["images"]) == [0, 100, 200]
    assert list(frame["flops"]) == [5000.0, 6000.0, 7000.0]
    assert frame["accuracy"].tolist() == pytest.approx([0.2, 0.4, 0.7])
    assert frame["accuracy@0.5"].tolist() == [0.1, 0.6, 0.9]


def test_curve_set_draws_its_own_noise_and_scores_a_defense():
    rng = np.random.default_rng(0)
    x = rng.random((20, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 20)
    curves = curve_set(x, y, "gaussian", [0.0, 0.5, 1.0], seed=3, size=12)
    assert curves.levels == (0.5, 1.0) and curves.images.shape == (2, 12, 28, 28)
    assert np.array_equal(curves.images, curve_set(x, y, "gaussian", [0.5, 1.0], 3, 12).images)
    classifier = build_classifier(4, 8, name="c")
    scores = defense_accuracy(curves, classifier)
    assert set(scores) == {0.5, 1.0} and all(0 <= v <= 1 for v in scores.values())


def seeds(a_range, b_range):
    rows = [("a", "clf", v) for v in a_range] + [("b", "clf", v) for v in b_range]
    return pd.DataFrame(
        [
            {"train_seed": i, "denoiser": d, "classifier": c, "mean_accuracy": v}
            for i, (d, c, v) in enumerate(rows)
        ]
    )


def verdict_of(table, gap):
    """The verdict of A (denoiser "a") against B ("b") with ``table``'s seed ranges."""
    return verdicts.verdict(
        "A", "B", gap, verdicts.seed_range(table, "a", "clf"), verdicts.seed_range(table, "b", "clf")
    )


def test_verdict_names_a_winner_only_when_seeds_and_interval_agree():
    table = seeds([0.90, 0.91, 0.92], [0.85, 0.86, 0.87])
    a, b = verdicts.seed_range(table, "a", "clf"), verdicts.seed_range(table, "b", "clf")
    assert verdicts.verdict("A", "B", (0.05, 0.03, 0.07), a, b).startswith("**A** beats B by 5.00 points")
    # the numbers flip: the winner flips
    assert verdicts.verdict("A", "B", (-0.05, -0.07, -0.03), b, a).startswith("**B** beats A")
    # overlapping seed ranges: not resolved, whatever the interval
    text = verdict_of(seeds([0.90, 0.91, 0.92], [0.89, 0.905, 0.91]), (0.01, 0.005, 0.015))
    assert text.startswith("not resolved (the seed ranges overlap)") and "A leads B by 1.00 points" in text
    # an interval that includes 0: not resolved
    assert verdicts.verdict("A", "B", (0.01, -0.002, 0.02), a, b).startswith(
        "not resolved (the paired interval includes 0)"
    )
    # ranges apart but from two seeds only: not resolved
    text = verdict_of(seeds([0.90, 0.91], [0.85, 0.86]), (0.05, 0.03, 0.07))
    assert text.startswith("not resolved (fewer than 3 training seeds)") and "(2 seeds)" in text
    # no seed spread at all: not resolved
    assert verdicts.verdict("A", "B", (0.05, 0.03, 0.07), None, None).startswith("not resolved: A leads B")
    assert verdicts.seed_range(None, "a", "clf") is None


def test_paired_gap_pools_the_levels_on_the_same_images():
    correct = {
        "a|c|0.5": np.array([1, 1, 1, 0], bool),
        "a|c|1": np.array([1, 0, 1, 0], bool),
        "b|c|0.5": np.array([1, 1, 0, 0], bool),
        "b|c|1": np.array([0, 0, 1, 0], bool),
    }
    difference, low, high = verdicts.paired_gap(correct, ("a", "c"), ("b", "c"), [0.5, 1.0])
    assert difference == pytest.approx(5 / 8 - 3 / 8) and low < difference < high


def test_best_by_validation_and_percent_of_ceiling():
    validation = pd.DataFrame(
        {
            "denoiser": ["x", "x", "y", "y", "none", "none"],
            "classifier": "clean",
            "level": [0.5, 1.0] * 3,
            "accuracy": [0.9, 0.7, 0.95, 0.6, 0.5, 0.2],
        }
    )
    best, means = verdicts.best_by_validation(validation, "clean", ["x", "y"])
    assert best == "x" and list(means.index) == ["x", "y"]
    scores = pd.DataFrame(
        {
            "noise": "gaussian",
            "level": [0.5, 1.0],
            "denoiser": "x",
            "classifier": "clean",
            "accuracy": [0.88, 0.6],
        }
    )
    table = verdicts.percent_of_ceiling(scores, {0.5: 0.96, 1.0: 0.8}, "gaussian", [("x", "clean")])
    assert table.loc["x + clean"].tolist() == pytest.approx([91.67, 75.0])


def test_curve_leaders_read_each_curve_at_the_compute_points():
    curves = {
        "early": pd.DataFrame({"flops": [0, 10, 20], "accuracy": [0.1, 0.8, 0.85]}),
        "late": pd.DataFrame({"flops": [5, 15, 25], "accuracy": [0.1, 0.5, 0.95]}),
    }
    table = verdicts.curve_leaders(curves, {"quarter": 4, "half": 12, "all": 25})
    assert np.isnan(table.loc["quarter", "late"]) and table.loc["quarter", "leader"] == "early"
    assert table.loc["half", "early"] == 0.8 and table.loc["all", "leader"] == "late"


def test_a_seeds_file_from_another_run_is_not_used():
    from pipeline.verdicts import current_seeds

    scores = pd.DataFrame(
        {
            "noise": "gaussian",
            "level": [0.0, 0.5, 1.0, 0.0, 0.5, 1.0],
            "denoiser": ["unet"] * 3 + ["none"] * 3,
            "classifier": "clean",
            "accuracy": [0.99, 0.9, 0.7, 0.99, 0.6, 0.3],
        }
    )
    rows = [
        {"train_seed": 42, "denoiser": "unet", "classifier": "clean", "mean_accuracy": 0.8},
        {"train_seed": 42, "denoiser": "none", "classifier": "clean", "mean_accuracy": 0.45},
        {"train_seed": 1, "denoiser": "unet", "classifier": "clean", "mean_accuracy": 0.81},
    ]
    seeds = pd.DataFrame(rows)
    assert current_seeds(seeds, scores, "gaussian", 42) == (seeds, "")
    assert current_seeds(None, scores, "gaussian", 42) == (None, "")
    stale = seeds.assign(mean_accuracy=[0.8, 0.46, 0.81])  # another run's none + clean
    used, note = current_seeds(stale, scores, "gaussian", 42)
    assert used is None and "train_seed 42 rows do not match" in note and "python -m pipeline.seeds" in note
    assert current_seeds(seeds, scores, "gaussian", 7)[0] is None  # no rows for the run's own seed


def test_a_seeds_file_retrained_on_one_other_cpu_is_used_and_said_so():
    from pipeline.verdicts import current_seeds

    scores = pd.DataFrame(
        {"noise": "gaussian", "level": [0.0, 0.5, 1.0], "denoiser": "unet", "classifier": "clean"}
        | {"accuracy": [0.99, 0.9, 0.7]}
    )
    seeds = pd.DataFrame(
        {
            "train_seed": [42, 1, 2],
            "denoiser": "unet",
            "classifier": "clean",
            "mean_accuracy": [0.8012, 0.79, 0.81],  # seed 42 retrained there: 0.12 points off
            "commit": "abc1234",
            "host": "AMD EPYC (family 25 model 1, avx2)",
            "retrained": True,
        }
    )
    used, note = current_seeds(seeds, scores, "gaussian", 42)
    assert used is seeds
    assert "from 1 training seed retrained" in current_seeds(seeds[:1], scores, "gaussian", 42)[1]
    assert "3 training seeds retrained on one CPU, AMD EPYC (family 25 model 1, avx2)" in note
    assert "within 0.12 points of this run's" in note
    mixed = seeds.assign(host=["AMD EPYC", "Intel(R) Xeon(R)", "AMD EPYC"])
    used, note = current_seeds(mixed, scores, "gaussian", 42)
    assert used is None and "its rows come from 2 CPUs" in note
    dirty = seeds.assign(commit=["abc1234", "abc1234-dirty", "abc1234"])
    used, note = current_seeds(dirty, scores, "gaussian", 42)
    assert used is None and "modified code" in note
    copied = seeds.assign(retrained=[False, True, True])  # copied from a run: must equal its scores
    assert current_seeds(copied, scores, "gaussian", 42)[0] is None
    matching = copied.assign(mean_accuracy=[0.8, 0.79, 0.81])
    assert current_seeds(matching, scores, "gaussian", 42) == (matching, "")
