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

from pipeline.params import parse_params
from tests.conftest import tiny_mnist

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def tiny_params(data_path: Path) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(path=str(data_path), search_paths=[], validation_size=40)
    params["noise"] = {kind: levels[:2] for kind, levels in params["noise"].items()}
    params["train_noise"]["levels"] = {k: v[:2] for k, v in params["train_noise"]["levels"].items()}
    for config in params["denoisers"].values():
        config.update(filters=4, epochs=2, batch_size=32, train_size=64)
    params["tune"]["search"] = dict(
        algorithm="bayesian", max_trials=2, max_epochs=1, train_size=64, validation_size=20
    )
    params["tune"]["final"] = dict(epochs=1, batch_size=32, train_size=64)
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
        config.update(filters=4, dense_units=8, epochs=2, batch_size=32)
    params["guided"].update(epochs=1, batch_size=32, train_size=64)
    params["evaluate"].update(
        batch_size=64,
        sample_images=2,
        headline_level=params["noise"]["gaussian"][1],
        noise_test_sizes={"speckle": 30},
    )
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
            shutil.copy(source, repo / item)
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
    assert len(scores) == cells * len(denoisers) * 2
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
    assert set(denoisers) <= set(metrics)
    assert 0 <= metrics["cae"]["mean_noisy_accuracy"] <= 1
    assert 0 <= metrics["unet_guided"]["mean_gaussian_accuracy_noise_aug"] <= 1
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
    assert counts.drop("tv", level="denoiser").eq(50).all() and len(counts) == 2 * len(denoisers)
    best = json.loads((repo / "results/tune/best_hyperparameters.json").read_text())
    assert best["completed"] == 2 and best["failed"] == 0
    fits = json.loads((repo / "results/classical/fits.json").read_text())
    assert set(fits) == {"gaussian", "median", "nl_means", "tv", "wavelet"} and "gaussian@0.1" in fits["tv"]
    comparison = pd.read_csv(repo / "results/comparison.csv")
    assert list(comparison["denoiser"])[:-1] == denoisers


def test_report_links_its_figures(repo):
    report = (repo / "results/report.md").read_text()
    assert "## Headline" in report and "mCE" in report and "## Params of this run" in report
    assert "## Rival defenses" in report and "against the noise-augmented classifier alone" in report
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
        assert changed_stages(repo) == {"evaluate", "report"}
    finally:
        (repo / "params.yaml").write_text(original)


def test_classifier_param_does_not_retrain_denoisers(repo):
    original = edit_params(repo, lambda p: p["classifiers"]["noise_aug"].update(dense_units=16))
    try:
        assert changed_stages(repo) == {"train_classifier@noise_aug", "report"}
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


def test_forced_rerun_reproduces_scores_and_metrics_exactly(repo):
    outputs = ("results/evaluate/scores.csv", "results/evaluate/metrics.json")
    before = {path: (repo / path).read_bytes() for path in outputs}
    run(["dvc", "repro", "--force"], repo)
    for path in outputs:
        assert (repo / path).read_bytes() == before[path], f"{path} changed on a forced rerun"
    assert changed_stages(repo) == set()
