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
    headline = len(params.noise[params.evaluate.headline_noise])
    others = len(params.classifiers) - 1  # on the headline noise only, alone and behind the learned
    assert len(scores) == cells * (1 + len(params.all_denoisers)) + others * headline * (
        1 + len(params.learned)
    )
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
    derived = tables.summary(scores, ev.headline_noise, ev.headline_level, ["none", params.guided.base])
    assert committed.keys() == derived.keys()
    for key, values in derived.items():
        # scores.csv is rounded to 6 significant digits, metrics.json to 3-4 decimals
        assert committed[key] == (pytest.approx(values, abs=1e-3) if isinstance(values, dict) else values)


def test_readme_at_a_glance_is_the_committed_one():
    """The README's at-a-glance block is results/at_a_glance.md, which the report stage writes,
    and the cross-dataset lines from both pipelines' committed results."""
    from pipeline.readme import block

    readme = (ROOT / "README.md").read_text()
    start, end = "<!-- at-a-glance: start -->", "<!-- at-a-glance: end -->"
    assert start in readme and end in readme, "README lacks the at-a-glance markers"
    text = readme.split(start, 1)[1].split(end, 1)[0].strip()
    assert text == block(ROOT), "README's at-a-glance differs from the results: python -m pipeline.readme"


def test_readme_stays_short():
    assert len((ROOT / "README.md").read_bytes()) <= 12 * 1024


def test_dvc_plots_draw_every_configured_denoiser_at_most_8_lines_a_chart(params):
    """dvc.yaml's top-level plots name the curve columns; they must match params.yaml: a learned
    and a classical chart per noise type, no defense in each."""
    import yaml

    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    families = {"learned": ["none", *params.learned], "classical": ["none", *params.classical.methods]}
    by_level = [plot for plot in plots if next(iter(plot)) != "compute_curves"]
    for plot in by_level:
        ((name, spec),) = plot.items()
        kind, family = name.rsplit("_", 1)
        assert spec["y"] == {f"results/evaluate/curves/{kind}.csv": families[family]}
        assert len(families[family]) <= 8
    assert {next(iter(plot)) for plot in by_level} == {f"{k}_{f}" for k in params.noise for f in families}
    (curves,) = [plot["compute_curves"] for plot in plots if "compute_curves" in plot]
    fits = {f"results/train_denoiser/{name}/curve.csv" for name in params.learned}
    fits |= {f"results/train_classifier/{name}/curve.csv" for name in params.classifiers}
    assert set(curves["y"]) == fits


def test_figure_families_draw_at_most_8_defenses(params):
    assert all(len(defenses) <= 8 for defenses in params.families.values())


def test_training_metrics_have_at_most_5_keys(params):
    for directory in (ROOT / "results").glob("train_*/*"):
        assert len(json.loads((directory / "metrics.json").read_text())) <= 5, directory


def test_heldout_summary_follows_from_its_gains(params):
    from pipeline import heldout

    gains = pd.read_csv(ROOT / "results/heldout/gains.csv")
    committed = pd.read_csv(ROOT / "results/heldout/summary.csv")
    derived = heldout.summary(gains, ("none", params.reference_classifier))
    pd.testing.assert_frame_equal(committed, derived, check_exact=False, atol=1e-6)
    assert set(gains["corruption"]) == {*params.heldout.corruptions, heldout.UNCLIPPED}
    per_image = [m for m, n in params.classical.methods.items() if n is not None]
    n = gains.set_index("denoiser")["n_images"]
    assert (n.drop(per_image) == params.heldout.test_size).all()
    assert (n.loc[per_image] == params.heldout.filter_test_size).all()


def leaves(tree) -> int:
    return sum(leaves(v) for v in tree.values()) if isinstance(tree, dict) else 1


def test_evaluation_and_report_metrics_stay_readable():
    """dvc metrics show / diff: at most 30 headline keys from the evaluate and report stages."""
    files = ("results/evaluate/metrics.json", "results/headline.json")
    assert sum(leaves(json.loads((ROOT / path).read_text())) for path in files) <= 30


def test_the_reports_seed_spread_comes_from_this_code(monkeypatch):
    """A seed spread the report uses was made from the committed code (a file retrained on
    another CPU cannot be checked against the run's scores, so git checks its commits)."""
    import subprocess

    from pipeline import seeds as workflow

    rows = pd.read_csv(ROOT / "results/seeds.csv", dtype={"commit": str})
    if rows.empty or "so the verdicts use no seed spread" in (ROOT / "results/report.md").read_text():
        return
    monkeypatch.chdir(ROOT)
    for label in rows["commit"].unique():
        known = subprocess.run(["git", "cat-file", "-e", f"{label}^{{commit}}"], capture_output=True)
        if known.returncode != 0:
            pytest.skip(f"commit {label} is not in this clone's history")
        assert workflow.same_code(label), f"results/seeds.csv rows of {label}: other code than HEAD's"


def test_the_reference_rows_come_from_this_code_and_each_seed_once():
    """results/reference.csv: one row per training seed, all from a clean commit whose recipe
    and training code (the preset, the workflow, the train_denoiser stage's code deps) are HEAD's."""
    import subprocess

    import yaml

    rows = pd.read_csv(ROOT / "results/reference.csv", dtype={"commit": str})
    if rows.empty:
        return
    assert rows["train_seed"].is_unique and (rows["n_images"] == 10000).all()
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["train_denoiser"]["do"]
    code = [dep for dep in stage["deps"] if isinstance(dep, str) and dep.startswith(("pipeline/", "stages/"))]
    paths = [*code, "pipeline/reference.py", "presets/reference.yaml"]
    for label in rows["commit"].unique():
        assert not label.endswith("-dirty"), f"results/reference.csv rows of {label}: uncommitted code"
        if subprocess.run(["git", "cat-file", "-e", f"{label}^{{commit}}"], cwd=ROOT).returncode != 0:
            pytest.skip(f"commit {label} is not in this clone's history")
        diff = subprocess.run(["git", "diff", "--quiet", label, "HEAD", "--", *paths], cwd=ROOT)
        assert diff.returncode == 0, f"results/reference.csv rows of {label}: other recipe code than HEAD's"
