"""Runs the real dvc.yaml end to end on tiny data in a temporary git repository."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.budget import matched_contestants
from pipeline.params import parse_params
from pipeline.reference import COLUMNS
from tests.conftest import tiny_mnist

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def tiny_params(data_path: Path) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(path=str(data_path), search_paths=[], validation_size=40)
    params["noise"] = {kind: levels[:2] for kind, levels in params["noise"].items()}
    params["train_noise"]["levels"] = {k: v[:2] for k, v in params["train_noise"]["levels"].items()}
    params["budget"] = dict(flops=2e10, checkpoints=2, curve_size=30)
    for config in params["denoisers"].values():
        config.update(filters=4, batch_size=32)
    params["tune"]["search"] = dict(
        algorithm="bayesian", max_trials=2, max_epochs=1, train_size=64, validation_size=20
    )
    params["tune"]["final"] = dict(batch_size=32)
    params["classical"] = dict(
        methods={
            "lmmse": None,
            "median": None,
            "gaussian": None,
            "tv": 20,
            "wavelet": None,
            "nl_means": None,
        },
        fit_size=20,
        lmmse_train_size=100,
        workers=1,
    )
    for config in params["classifiers"].values():
        config.update(filters=4, dense_units=8, epochs=2, batch_size=32, lr_drop_epochs=0)
    params["guided"].update(epochs=1, batch_size=32, train_size=64)
    params["ceiling"].update(levels=[params["noise"]["gaussian"][1]], epochs=1, train_size=64, batch_size=32)
    params["evaluate"].update(
        batch_size=64,
        sample_images=2,
        headline_level=params["noise"]["gaussian"][1],
        noise_test_sizes={"speckle": 30},
    )
    params["heldout"].update(test_size=40, filter_test_size=10)
    return params


def run(args, cwd, check=True):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def changed_stages(repo) -> set[str]:
    status = json.loads(run(["dvc", "status", "--json"], repo).stdout or "{}")
    return set(status)


def make_project(repo: Path, edit=None) -> Path:
    """This project's pipeline with tiny MNIST and tiny params (``edit(params)`` first) in ``repo``,
    committed to a fresh git + DVC repository."""
    for item in ("pipeline", "stages", "dvc.yaml"):
        source = ROOT / item
        if source.is_dir():
            shutil.copytree(source, repo / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (repo / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, repo / item)
    seeds = repo / "results" / "seeds.csv"  # the seeds workflow's file, with no run yet
    seeds.parent.mkdir(parents=True, exist_ok=True)
    seeds.write_text((ROOT / "results/seeds.csv").read_text().splitlines()[0] + "\n")
    reference = repo / "results" / "reference.csv"  # the reference workflow's, likewise
    reference.write_text(",".join(COLUMNS) + "\n")
    data = repo / "external" / "mnist.npz"
    data.parent.mkdir()
    np.savez(data, **tiny_mnist())
    params = tiny_params(Path("external/mnist.npz"))
    if edit:
        edit(params)
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    run(["git", "init", "-q"], repo)
    run(["dvc", "init", "-q"], repo)
    run(["git", "add", "-A"], repo)
    git_user = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    run(["git", *git_user, "commit", "-qm", "tiny project"], repo)
    return repo


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = make_project(tmp_path_factory.mktemp("repo"))
    run(["dvc", "repro"], repo)
    return repo


def test_repro_writes_every_output(repo):
    params = parse_params(yaml.safe_load((repo / "params.yaml").read_text()))
    scores = pd.read_csv(repo / "results/evaluate/scores.csv")
    denoisers = ["none", *params.all_denoisers]
    assert denoisers[-8:] == [
        "unet_tuned",
        "unet_guided",
        "gaussian",
        "lmmse",
        "median",
        "nl_means",
        "tv",
        "wavelet",
    ]
    cells = sum(len(levels) for levels in params.noise.values())
    assert list(scores["classifier"].unique()) == ["clean", "noise_aug"]
    # the rival classifier is scored on the headline noise only (evaluate.other_classifiers_on),
    # alone and behind the learned denoisers (the stacking candidates)
    stacks = ["none", *params.learned]
    assert len(scores) == cells * len(denoisers) + len(params.noise["gaussian"]) * len(stacks)
    rival = scores[scores["classifier"] == "noise_aug"]
    assert set(rival["noise"]) == {"gaussian"}
    assert set(rival["denoiser"]) == set(stacks)
    assert set(scores["denoiser"]) == set(denoisers)
    for column in (
        "noise",
        "level",
        "denoiser",
        "classifier",
        "accuracy",
        "psnr",
        "ssim",
        "n_images",
    ):
        assert column in scores.columns
    subset = scores["denoiser"] == "tv"  # classical.methods.tv: scored on the first 20 test images
    noisy_speckle = (scores["noise"] == "speckle") & (scores["level"] > 0)  # noise_test_sizes: 30
    assert (scores.loc[subset, "n_images"] == 20).all()
    assert (scores.loc[~subset & noisy_speckle, "n_images"] == 30).all()
    assert (scores.loc[~subset & ~noisy_speckle, "n_images"] == 50).all()
    assert scores["accuracy"].between(0, 1).all()
    assert (scores["accuracy_low"] <= scores["accuracy"]).all()
    assert (scores["accuracy"] <= scores["accuracy_high"]).all()
    # gains over no denoiser: none on its own row, paired intervals around every other
    raw = scores["denoiser"] == "none"
    assert scores.loc[raw, "gain"].isna().all() and scores.loc[~raw, "gain"].notna().all()
    assert (scores.loc[~raw, "gain_low"] <= scores.loc[~raw, "gain"]).all()
    assert (scores.loc[~raw, "gain"] <= scores.loc[~raw, "gain_high"]).all()
    # Level 0 is the clean test set for every noise type: identical rows.
    clean = scores[scores["level"] == 0].groupby(["denoiser", "classifier"])["accuracy"].nunique()
    assert (clean == 1).all()
    assert not scores.loc[scores["noise"] == "speckle", "seen_in_training"].any()

    metrics = json.loads((repo / "results/evaluate/metrics.json").read_text())
    assert set(metrics) == {"none", params.guided.base}  # the flagship and the baseline only
    assert 0 <= metrics["unet_res"]["mean_noisy_accuracy"] <= 1
    assert 0 <= metrics["unet_res"]["mean_gaussian_accuracy_noise_aug"] <= 1
    timing = json.loads((repo / "results/evaluate/timing.json").read_text())
    assert set(timing["denoise_seconds"]) == set(denoisers) and timing["stage_seconds"] > 0
    for name in params.classifiers:
        assert (repo / f"models/classifiers/{name}.keras").is_file()
        live = json.loads((repo / f"results/train_classifier/{name}/metrics.json").read_text())
        assert 0 <= live["clean_test_accuracy"] <= 1
    for path in ("accuracy.md", "accuracy_vs_level.png", "samples.png", "curves/gaussian.csv"):
        assert (repo / "results/evaluate" / path).stat().st_size > 0
    for name in params.learned:
        assert (repo / f"models/denoisers/{name}.keras").is_file()
        live = json.loads((repo / f"results/train_denoiser/{name}/metrics.json").read_text())
        assert live["epochs_run"] >= 1
    assert "## gaussian" in (repo / "results/evaluate/accuracy.md").read_text()
    confusion = pd.read_csv(repo / "results/evaluate/confusion.csv")
    counts = confusion.groupby(["denoiser", "classifier"])["count"].sum()
    assert counts.drop("tv", level="denoiser").eq(50).all() and len(counts) == len(denoisers) + len(stacks)
    best = json.loads((repo / "results/tune/best_hyperparameters.json").read_text())
    assert best["completed"] == 2 and best["failed"] == 0 and best["search_flops"] > 0
    fits = json.loads((repo / "results/classical/fits.json").read_text())
    assert set(fits) == {"gaussian", "median", "nl_means", "tv", "wavelet"} and "gaussian@0.1" in fits["tv"]
    comparison = pd.read_csv(repo / "results/comparison.csv")
    assert list(comparison["denoiser"])[:-1] == denoisers


def record(repo, kind, name):
    return json.loads((repo / f"results/{kind}/{name}/compute.json").read_text())


def test_every_fit_records_its_compute_and_curve(repo):
    params = parse_params(yaml.safe_load((repo / "params.yaml").read_text()))
    budget = params.budget.flops
    for name in params.denoisers:  # the zoo: every model on the same budget, within one image a slice
        r = record(repo, "train_denoiser", name)
        assert budget - params.budget.checkpoints * r["flops_per_image"] < r["planned_flops"] <= budget
        assert r["charged_flops"] == r["train_flops"] == r["images_seen"] * r["flops_per_image"]
        curve = pd.read_csv(repo / f"results/train_denoiser/{name}/curve.csv")
        assert list(curve["checkpoint"]) == list(range(r["images_seen"] // r["slice_images"] + 1))
        assert curve["flops"].iloc[-1] == pytest.approx(r["charged_flops"])
    tuned = record(repo, "train_denoiser", params.tune.name)
    best = json.loads((repo / "results/tune/best_hyperparameters.json").read_text())
    assert tuned["start_flops"] == best["search_flops"]  # the tuner is charged its search + final fit
    assert tuned["start_flops"] + tuned["planned_flops"] <= budget
    guided = record(repo, "train_denoiser", params.guided.name)
    assert guided["start_flops"] == record(repo, "train_denoiser", params.guided.base)["charged_flops"]
    clean, rival = record(repo, "train_classifier", "clean"), record(repo, "train_classifier", "noise_aug")
    spent = [record(repo, "train_denoiser", name)["charged_flops"] for name in matched_contestants(params)]
    largest = max(spent) + clean["charged_flops"]  # what the denoising defenses actually spent
    assert abs(rival["planned_flops"] - largest) / largest < 0.05  # matched compute
    ceiling = json.loads((repo / "results/ceiling/ceiling.json").read_text())
    (level,) = ceiling["levels"]
    assert level["ceiling"] == max(level["specialist_accuracy"], level["best_contestant_accuracy"])
    validation = pd.read_csv(repo / "results/ceiling/validation.csv")
    assert set(validation["classifier"]) == {"clean", "noise_aug"} and (validation["n_images"] == 30).all()
    report = (repo / "results/report.md").read_text()
    ratio = float(re.search(r"TFLOP, ([\d.]+)% of the largest denoising defense's", report).group(1))
    assert 95 <= ratio <= 105  # the verdict states the matched compute


def test_heldout_suite_scores_every_defense(repo):
    params = parse_params(yaml.safe_load((repo / "params.yaml").read_text()))
    with np.load(repo / "data/heldout.npz") as suite:
        assert list(suite["names"]) == [*params.heldout.corruptions, "gaussian_unclipped"]
        assert suite["images"].shape == (16, 40, 28, 28) and suite["images"].min() < 0  # unclipped
    scores = pd.read_csv(repo / "results/heldout/scores.csv")
    evaluated = pd.read_csv(repo / "results/evaluate/scores.csv")
    assert list(scores.columns) == [*evaluated.columns, "near_seen"]
    defenses, stacks = 1 + len(params.all_denoisers), 1 + len(params.learned)
    assert len(scores) == 16 * (defenses + stacks)  # the rival: alone and behind the learned ones
    assert (scores.loc[scores["denoiser"] == "tv", "n_images"] == 10).all()  # filter_test_size
    assert (scores.loc[scores["denoiser"] == "unet", "n_images"] == 40).all()
    assert set(scores.loc[scores["near_seen"], "noise"]) == {"impulse_noise", "shot_noise"}
    summary = pd.read_csv(repo / "results/heldout/summary.csv").set_index(["denoiser", "classifier"])
    assert summary.loc[("none", "clean"), "mCE"] == pytest.approx(1.0)
    assert summary.loc[("none", "clean"), "harms"] == 0 and len(summary) == defenses + stacks
    gains = pd.read_csv(repo / "results/heldout/gains.csv")
    rows = gains[(gains["corruption"] != "gaussian_unclipped")].set_index(["denoiser", "classifier"])
    expected = rows.loc[("unet", "noise_aug"), "accuracy"].mean()
    assert summary.loc[("unet", "noise_aug"), "suite_mean"] == pytest.approx(expected)
    headline = json.loads((repo / "results/headline.json").read_text())
    assert {"frozen_best_heldout_mean", "frozen_best_heldout_mCE", "retrain_heldout_harms"} <= set(headline)
    report_text = (repo / "results/report.md").read_text()
    assert "## Held-out corruptions" in report_text and "training TFLOP" in report_text


def test_report_links_its_figures(repo):
    report = (repo / "results/report.md").read_text()
    assert "## Headline" in report and "mCE" in report and "## Params of this run" in report
    assert "## Rival defenses" in report and "matched in compute to the largest denoising defense" in report
    assert "## The two questions, answered" in report and "**(a) The classifier is frozen.**" in report
    assert "no seed spread" in report and "## Ceiling" in report and "## Compute-accuracy curves" in report
    assert "## Gain over no denoiser on gaussian noise" in report and "| unet_guided " in report
    assert "50 images per cell; noisy speckle on the first 30, tv on the first 20 (slow filter)" in report
    for link in re.findall(r"!\[[^]]*\]\(([^)]+)\)", report):
        assert (repo / "results" / link).stat().st_size > 0, link
    assert (repo / "results/report/robustness.csv").is_file()


def test_second_repro_is_a_no_op(repo):
    assert changed_stages(repo) == set()
    output = run(["dvc", "repro"], repo).stdout
    assert "didn't change" in output and "Running stage" not in output


def edit_params(repo, edit):
    path = repo / "params.yaml"
    original = path.read_text()
    params = yaml.safe_load(original)
    edit(params)
    path.write_text(yaml.safe_dump(params))
    return original


def test_evaluation_param_reruns_only_evaluate(repo):
    original = edit_params(repo, lambda p: p["evaluate"].update(batch_size=32))
    try:
        # report prints every param, so it reruns too (seconds); no training stage does
        assert changed_stages(repo) == {"evaluate", "evaluate_heldout", "report"}
    finally:
        (repo / "params.yaml").write_text(original)


def test_classifier_param_does_not_retrain_denoisers(repo):
    original = edit_params(repo, lambda p: p["classifiers"]["noise_aug"].update(dense_units=16))
    try:
        assert changed_stages(repo) == {"train_rival", "report"}
        # evaluate only reruns once the classifier's output actually changes
    finally:
        (repo / "params.yaml").write_text(original)


def test_plots_render(repo):
    run(["dvc", "plots", "show", "-o", "plots_html"], repo)
    html = (repo / "plots_html" / "index.html").read_text()
    assert "Accuracy vs gaussian level" in html


def test_bad_params_fail_fast_naming_the_key(repo):
    original = edit_params(repo, lambda p: p["noise"].update(gaussian=[-0.1]))
    try:
        result = run([sys.executable, "-m", "stages.noise", "--data", "x", "--out", "y"], repo, check=False)
    finally:
        (repo / "params.yaml").write_text(original)
    assert result.returncode == 2
    assert "noise.gaussian.0" in result.stderr and "-0.1" in result.stderr


def test_the_rival_stops_at_once_without_the_records_it_is_matched_to(repo, tmp_path):
    stage = [sys.executable, "-m", "stages.train_classifier", "--name", "noise_aug", "--data", "nowhere.npz"]
    stage += ["--model", str(tmp_path / "m.keras"), "--live", str(tmp_path / "live")]
    result = run(
        [*stage, "--defense-compute", str(tmp_path), "--clean-compute", "nope.json"], repo, check=False
    )
    assert result.returncode == 2 and "nope.json: not found" in result.stderr
    clean = "results/train_classifier/clean/compute.json"
    result = run([*stage, "--defense-compute", str(tmp_path), "--clean-compute", clean], repo, check=False)
    assert result.returncode == 2 and re.search(rf"{tmp_path}/\w+/compute\.json: not found", result.stderr)
    result = run(stage, repo, check=False)
    assert result.returncode == 2 and "pass --defense-compute" in result.stderr
    assert not (tmp_path / "m.keras").exists()


def test_seeds_workflow_feeds_the_verdicts(repo):
    run([sys.executable, "-m", "pipeline.seeds", "7"], repo)
    seeds = pd.read_csv(repo / "results/seeds.csv")
    assert sorted(seeds["train_seed"].unique()) == [7, 42]
    assert seeds.groupby("train_seed").size().nunique() == 1  # the same defenses under every seed
    assert ("none", "noise_aug") in set(zip(seeds["denoiser"], seeds["classifier"], strict=True))
    assert seeds["mean_accuracy"].between(0, 1).all() and seeds["commit"].notna().all()
    assert seeds["host"].notna().all()  # no timing record in this repo: every row is this host's
    assert changed_stages(repo) == {"report"}  # the report reads the seeds
    run(["dvc", "repro"], repo)
    report = (repo / "results/report.md").read_text()
    assert "no seed spread" not in report and "(2 seeds)" in report
    before = pd.read_csv(repo / "results/seeds.csv")  # --resume keeps a seed made from this code
    resumed = run([sys.executable, "-m", "pipeline.seeds", "7", "--resume"], repo)
    assert "kept seeds [7]" in resumed.stderr and "stages.train_classifier" not in resumed.stderr
    pd.testing.assert_frame_equal(pd.read_csv(repo / "results/seeds.csv"), before)
    result = run([sys.executable, "-m", "pipeline.seeds", "42"], repo, check=False)
    assert result.returncode == 2 and "params' own train_seed" in result.stderr
    record = repo / "results/benchmarks/repro.json"  # the committed run timed on another CPU
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(
        json.dumps({"machine": {"cpu": "Another CPU", "cpu_features": "family 1 model 2, sse"}})
    )
    other = run([sys.executable, "-m", "pipeline.seeds", "7", "--resume"], repo)
    assert "train_seed 42 is retrained here too" in other.stderr and "kept seeds [7]" in other.stderr
    here = pd.read_csv(repo / "results/seeds.csv")
    assert sorted(here["train_seed"].unique()) == [7, 42] and here["retrained"].all()
    assert here["host"].nunique() == 1 and "Another CPU" not in set(here["host"])
    run(["dvc", "repro"], repo)
    assert "2 training seeds retrained on one CPU" in (repo / "results/report.md").read_text()
    record.unlink()  # back to the seeds of the run's own CPU for the tests after this one
    before.to_csv(repo / "results/seeds.csv", index=False)
    run(["dvc", "repro"], repo)


def test_exp_show_of_an_evaluation_change_stays_readable(repo):
    """`dvc exp show --only-changed` of one evaluation param change: at most 40 columns."""
    git_user = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    run(["git", "add", "-A"], repo)  # the results are committed, as in this project
    run(["git", *git_user, "commit", "-qm", "results"], repo)
    run(["dvc", "exp", "run", "--temp", "-S", "evaluate.batch_size=32"], repo)
    shown = run(["dvc", "exp", "show", "--only-changed", "--csv"], repo).stdout
    header = shown.splitlines()[0].split(",")
    assert "evaluate.batch_size" in header and len(header) <= 40, header


def test_forced_rerun_reproduces_scores_and_metrics_exactly(repo):
    """Same params and seed, same numbers: retrain a denoiser and both classifiers, re-score."""
    outputs = ("results/evaluate/scores.csv", "results/evaluate/metrics.json")
    before = {path: (repo / path).read_bytes() for path in outputs}
    stages = ["train_classifier", "train_rival", "train_denoiser@unet", "evaluate"]
    run(["dvc", "repro", "--force", "--single-item", *stages], repo)
    for path in outputs:
        assert (repo / path).read_bytes() == before[path], f"{path} changed on a forced rerun"
    # the saved .keras files embed their save time, so the downstream stages now see new deps:
    # this test runs last
