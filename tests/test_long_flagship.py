"""experiments/long_flagship.py: the schedule, and a resumed run replays an uninterrupted one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from experiments import long_flagship
from pipeline.data import Dataset
from pipeline.io import save_dataset
from pipeline.models import build_classifier, load_model, save_model
from pipeline.noise import corrupt
from tests.conftest import tiny_mnist

ROOT = Path(__file__).resolve().parents[1]

RUN = ["--name", "tiny", "--filters", "4", "--epochs", "3", "--decay-epoch", "2", "--images", "16"]


def test_learning_rate_drops_tenfold_at_the_decay_epoch():
    rates = [long_flagship.learning_rate(1e-3, epoch, 2) for epoch in range(4)]
    assert rates == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4])
    assert long_flagship.learning_rate(1e-3, 50, None) == 1e-3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--epochs", "0"], "--epochs must be at least 1, got 0"),
        (["--epochs", "4", "--decay-epoch", "4"], "--decay-epoch must be 1 ... 3 (below --epochs): 4"),
        (["--epochs", "4", "--decay-epoch", "0"], "--decay-epoch must be 1 ... 3 (below --epochs): 0"),
    ],
)
def test_bad_arguments_are_refused_by_name(extra, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        long_flagship.parse_args(["--name", "x", *extra])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A directory with what the script needs from ``dvc repro``, on tiny data."""
    work = tmp_path_factory.mktemp("long")
    arrays = tiny_mnist(n_train=160, n_test=40, seed=3)
    x, y = arrays["x_train"], arrays["y_train"]
    save_dataset(
        work / "data/prepared/mnist.npz",
        Dataset(x[:128], y[:128], x[128:], y[128:], arrays["x_test"], arrays["y_test"]),
    )
    clean = arrays["x_test"].astype(np.float32) / 255
    levels = [0.0, 0.5]
    noisy = [clean] + [corrupt(clean, "gaussian", 0.5, np.random.default_rng(1))]
    (work / "data/noisy").mkdir(parents=True)
    np.savez(work / "data/noisy/gaussian.npz", levels=np.array(levels), images=np.stack(noisy))
    save_model(work / "models/classifiers/clean.keras", build_classifier(filters=4, dense_units=8))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"] = {"path": None, "search_paths": [], "validation_size": 32}
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    return work


def run(cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "experiments.long_flagship", *RUN, *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)


def weights(path: Path) -> list[np.ndarray]:
    return load_model(path).get_weights()


def test_a_resumed_run_replays_the_uninterrupted_one(workdir, tmp_path):
    straight = run(workdir)
    assert straight.returncode == 0, straight.stderr
    result = json.loads((workdir / "results/benchmarks/long_flagship_tiny.json").read_text())
    assert [row["epoch"] for row in result["epochs"]] == [1, 2, 3]
    assert [row["learning_rate"] for row in result["epochs"]] == pytest.approx([1e-3, 1e-3, 1e-4])
    base, guided = result["test"]["base"], result["test"]["guided"]
    assert [row["level"] for row in base] == [row["level"] for row in guided] == [0.0, 0.5]
    assert base[0]["psnr"] is None and 0 < base[1]["psnr"] < 60
    assert guided[1]["psnr"] != base[1]["psnr"]  # the fine-tune changed the weights
    assert result["test"]["guided_params"]["classification_weight"] > 0  # what the fine-tune used
    assert all(0 <= row["accuracy"] <= 1 for row in base + guided)
    # only the last epoch's checkpoint is kept, and the fine-tuned model beside it
    kept = sorted(p.name for p in (workdir / "models/long/tiny").glob("*.keras"))
    assert kept == ["epoch_003.keras", "guided.keras"]

    resumed_dir = tmp_path / "resumed"
    shutil.copytree(workdir, resumed_dir, ignore=shutil.ignore_patterns("long", "benchmarks"))
    first = run(resumed_dir, "--stop-after", "1")
    assert first.returncode == 0, first.stderr
    assert "stopping after epoch 1" in first.stdout
    partial = json.loads((resumed_dir / "results/benchmarks/long_flagship_tiny.json").read_text())
    assert len(partial["epochs"]) == 1 and "test" not in partial
    second = run(resumed_dir)
    assert second.returncode == 0, second.stderr
    assert "resuming tiny after epoch 1 of 3" in second.stdout
    resumed = json.loads((resumed_dir / "results/benchmarks/long_flagship_tiny.json").read_text())
    assert len(resumed["sessions"]) == 2

    def without_times(rows):
        return [{k: v for k, v in row.items() if k != "train_seconds"} for row in rows]

    assert without_times(resumed["epochs"]) == without_times(result["epochs"])
    for name in ("base", "guided"):
        assert resumed["test"][name] == result["test"][name]
    for a, b in zip(
        weights(workdir / "models/long/tiny/epoch_003.keras"),
        weights(resumed_dir / "models/long/tiny/epoch_003.keras"),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)

    other = run(resumed_dir, "--filters", "8")
    assert other.returncode != 0
    assert "long_flagship_tiny.json was trained with" in other.stderr
    assert "pick another --name" in other.stderr and "Traceback" not in other.stderr


def test_guided_params_do_not_block_a_resume(tmp_path):
    """Only the training settings must match; the fine-tune records the guided params it used."""
    params = long_flagship.load_params(ROOT / "params.yaml")
    config = long_flagship.run_config(params, long_flagship.parse_args(["--name", "x", *RUN[2:]]))
    assert "guided" not in config
    older = config | {"guided": {"epochs": 3}}  # records before the fine-tune kept them here
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"config": older, "curve": "c", "epochs": [], "sessions": []}))
    assert long_flagship.load_state(path, config, "c")["config"] == config
    other = {"config": older | {"filters": 99}, "curve": "c", "epochs": [], "sessions": []}
    path.write_text(json.dumps(other))
    with pytest.raises(long_flagship.DataError, match="was trained with"):
        long_flagship.load_state(path, config, "c")
