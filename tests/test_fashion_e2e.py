"""Runs the derived Fashion-MNIST pipeline (fashion/dvc.yaml) end to end on tiny IDX data."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.data import class_names
from pipeline.params import parse_params
from tests.conftest import tiny_mnist
from tests.test_data import write_idx_dir
from tests.test_pipeline_e2e import ROOT, make_project, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    """The tiny project with its fashion/ pipeline generated from tiny root params and a preset
    that points at tiny IDX files (the real Fashion-MNIST is never read)."""
    repo = tmp_path_factory.mktemp("fashion_repo")

    def add_fashion(params):
        folder = repo / "fashion"
        write_idx_dir(folder / "external" / "idx", tiny_mnist(seed=7), gz=True)
        (folder / "results").mkdir(parents=True)
        preset = yaml.safe_load((ROOT / "presets" / "fashion.yaml").read_text())
        preset["data"].update(path="external/idx", search_paths=[])
        for sizes in ("budget", "guided"):  # the real run's sizes: the tiny ones stand
            preset.pop(sizes, None)
        (repo / "presets").mkdir()
        (repo / "presets" / "fashion.yaml").write_text(yaml.safe_dump(preset))

    make_project(repo, edit=add_fashion)
    for name in ("seeds.csv", "reference.csv"):  # the outside workflows' files, with no run yet
        shutil.copy(repo / "results" / name, repo / "fashion" / "results" / name)
    run(["python", "-m", "pipeline.pipelines", "fashion"], repo)
    params_path = repo / "fashion" / "params.yaml"  # one budgeted denoiser (the guided base) is enough here
    params = yaml.safe_load(params_path.read_text())
    params["denoisers"] = {"unet_res": params["denoisers"]["unet_res"]}
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "fashion"], repo)
    run(["dvc", "repro", "fashion/dvc.yaml"], repo)
    return repo


def test_fashion_pipeline_runs_on_its_own_data(fashion):
    folder = fashion / "fashion"
    params = parse_params(yaml.safe_load((folder / "params.yaml").read_text()))
    assert params.data.dataset == "fashion_mnist"
    with np.load(folder / "data/raw/fashion_mnist.npz") as raw:
        np.testing.assert_array_equal(raw["x_test"], tiny_mnist(seed=7)["x_test"])
    scores = pd.read_csv(folder / "results/evaluate/scores.csv")
    assert set(scores["denoiser"]) == {
        "none",
        "unet_res",
        "unet_tuned",
        "unet_guided",
        *params.classical.methods,
    }
    assert len(pd.read_csv(folder / "results/heldout/summary.csv")) > 0
    headline = json.loads((folder / "results/headline.json").read_text())
    assert "frozen_best" in headline
    report = (folder / "results/report.md").read_text()
    assert "Fashion-MNIST" in report and all(name in report for name in class_names("fashion_mnist"))
    assert not (fashion / "results/evaluate").exists()  # nothing written outside the folder


def test_status_covers_both_pipelines_and_root_repro_stays_mnist(fashion):
    assert json.loads(run(["dvc", "status", "fashion/dvc.yaml", "--json"], fashion).stdout or "{}") == {}
    everything = json.loads(run(["dvc", "status", "--json"], fashion).stdout or "{}")
    assert "train_classifier" in everything  # the MNIST pipeline, never run here, is listed too
    assert not any(stage.startswith("fashion/") for stage in everything)
    (fashion / "fashion" / "params.yaml").write_text(
        (fashion / "fashion" / "params.yaml")
        .read_text()
        .replace("validation_size: 40", "validation_size: 41")
    )  # a fashion change shows in `dvc status` but not in `dvc repro`'s default target, dvc.yaml
    assert "fashion/dvc.yaml:prepare" in json.loads(run(["dvc", "status", "--json"], fashion).stdout)
    assert json.loads(run(["dvc", "status", "dvc.yaml", "--json"], fashion).stdout) == everything
