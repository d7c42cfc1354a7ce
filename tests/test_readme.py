"""README's at-a-glance block: the MNIST report's block, then the cross-dataset lines."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline import readme
from pipeline.readme import Headline, both_datasets

ROOT = Path(__file__).resolve().parents[1]


def headline(best="unet + clean", frozen=0.93, undefended=0.67, retrain=0.95, stacked=0.94):
    return Headline(best, frozen, undefended, retrain, stacked)


def test_a_verdict_holds_on_both_only_when_its_sign_agrees():
    text = both_datasets(headline(), headline(retrain=0.96, stacked=0.97), ("MNIST", "Fashion"), "f/r.md")
    lines = text.splitlines()
    assert "+26.00 points" in lines[1] and "a denoiser helps a frozen classifier on both" in lines[1]
    assert "(the same defense wins)" in lines[1]
    assert "+2.00 points on MNIST, +3.00 points on Fashion: retraining beats denoising on both" in lines[2]
    assert "-1.00 points and +1.00 points: stacking pays on Fashion only" in lines[2]
    flipped = both_datasets(
        headline(), headline(best="dncnn + clean", retrain=0.90, stacked=0.89), ("MNIST", "F"), "r"
    )
    assert "retraining beats denoising on MNIST only" in flipped
    assert "stacking pays on neither" in flipped and "(not the same defense wins)" in flipped


def test_block_adds_the_second_dataset_only_when_its_results_exist(tmp_path):
    files = ("results/headline.json", "results/evaluate/scores.csv")
    for name in ("params.yaml", "results/at_a_glance.md", *files):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    only = readme.block(tmp_path)
    assert only == (ROOT / "results/at_a_glance.md").read_text().strip()
    for name in ("params.yaml", *files):
        (tmp_path / "fashion" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / "fashion" / name)
    both = readme.block(tmp_path)
    assert both.startswith(only) and "**Both datasets**" in both
    assert "on both" in both and "only" not in both  # the same results twice


def test_missing_markers_are_an_error():
    with pytest.raises(ValueError, match="markers"):
        readme.with_block("# no markers", "x")


def test_the_documented_exp_show_command_fits_200_columns():
    """README's `dvc exp show` command prints the headline columns within a 200-column terminal."""
    readme = (ROOT / "README.md").read_text()
    command = next(line for line in readme.splitlines() if line.startswith("dvc exp show --drop "))
    pattern = shlex.split(command)[-1]
    done = subprocess.run(
        ["dvc", "exp", "show", "--no-pager", "--drop", pattern],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    if done.returncode != 0 and "not a git repository" in done.stderr.lower():
        pytest.skip("not a git checkout")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(map(len, lines)) <= 200
    header = " ".join(lines[:3])
    for column in ("params.yaml:train_seed", "results/headline.json:frozen_best", "stacked_mean_accuracy"):
        assert column in header
    assert "…" not in done.stdout  # nothing cut off
