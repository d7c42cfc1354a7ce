"""The committed results agree with each other and with the README (no hand-edited figures)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import tables
from pipeline.params import load_params

ROOT = Path(__file__).resolve().parents[1]
SCORES = ROOT / "results/evaluate/scores.csv"
pytestmark = pytest.mark.skipif(not SCORES.is_file(), reason="no committed results yet")


@pytest.fixture(scope="module")
def scores() -> pd.DataFrame:
    return pd.read_csv(SCORES)


@pytest.fixture(scope="module")
def params():
    return load_params(ROOT / "params.yaml")


def test_scores_cover_the_configured_grid(scores, params):
    cells = sum(len(levels) for levels in params.noise.values())
    assert len(scores) == cells * (1 + len(params.all_denoisers)) * scores["classifier"].nunique()
    method = scores["denoiser"].map(lambda name: params.classical.methods.get(name) or 10000)
    sizes = params.evaluate.noise_test_sizes
    noise = scores["noise"].map(lambda kind: sizes.get(kind) or 10000).where(scores["level"] > 0, 10000)
    expected = np.minimum(method, noise)
    assert (scores["n_images"] == expected).all(), "committed results must use the configured test sets"
    goals = scores["noise"] == params.evaluate.headline_noise
    assert (scores.loc[goals, "n_images"] == method[goals]).all(), "the goals' grid uses all 10k"


def test_metrics_json_is_derived_from_scores(scores, params):
    committed = json.loads((ROOT / "results/evaluate/metrics.json").read_text())
    ev = params.evaluate
    derived = tables.summary(scores, ev.headline_noise, ev.headline_level)
    assert committed.keys() == derived.keys()
    for key, values in derived.items():
        # scores.csv is rounded to 6 significant digits, metrics.json to 3-4 decimals
        assert committed[key] == (pytest.approx(values, abs=1e-3) if isinstance(values, dict) else values)


def test_readme_headline_table_is_the_committed_one(scores, params):
    denoisers = ["none", *params.all_denoisers]
    table = tables.headline_table(scores, params.evaluate.headline_noise, denoisers)
    assert table in (ROOT / "README.md").read_text(), "README headline table differs from results"


def test_dvc_plots_draw_every_configured_denoiser(params):
    """dvc.yaml's top-level plots name the curve columns; they must match params.yaml."""
    import yaml

    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    expected = ["none", *params.all_denoisers]
    for plot in plots:
        ((kind, spec),) = plot.items()
        assert spec["y"] == {f"results/evaluate/curves/{kind}.csv": expected}
    assert {next(iter(plot)) for plot in plots} == set(params.noise)
