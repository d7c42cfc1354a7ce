"""The held-out suite: its guard (no training or fitting code reaches it), its grid, its summary
numbers, and the input contract every defense is scored under."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline import corruptions, heldout
from pipeline.params import HeldoutCorruption, ParamsError, parse_params
from pipeline.restorer import admit, contracted
from tests.test_dvc_deps import ROOT, import_closure, stage_scripts

# Every stage that trains, tunes or fits something, or chooses anything the verdicts use.
CHOOSING_STAGES = (
    "train_classifier",
    "train_rival",
    "train_denoiser",
    "tune_denoiser",
    "train_guided",
    "fit_classical",
    "ceiling",
)
HELD_OUT_MODULES = {"pipeline/corruptions.py", "pipeline/heldout.py"}


def test_no_training_or_fitting_stage_can_reach_the_suite():
    stages = stage_scripts(ROOT / "dvc.yaml")
    assert set(CHOOSING_STAGES) <= set(stages)
    for name in CHOOSING_STAGES:
        script, deps = stages[name]
        reached = import_closure(script) | {script.relative_to(ROOT).as_posix()}
        assert not reached & HELD_OUT_MODULES, name
        assert "data/heldout.npz" not in deps and not any("heldout" in dep for dep in deps), name
        for path in reached:
            source = (ROOT / path).read_text()
            assert "heldout.npz" not in source and "corrupt_heldout" not in source, (name, path)


def test_the_guard_sees_a_training_module_that_imports_the_suite(tmp_path):
    (tmp_path / "stages").mkdir()
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "stages/train.py").write_text("from pipeline import training\n")
    (tmp_path / "pipeline/training.py").write_text("from pipeline.heldout import build_suite\n")
    (tmp_path / "pipeline/heldout.py").write_text("")
    assert "pipeline/heldout.py" in import_closure(tmp_path / "stages/train.py", tmp_path)


def test_params_name_exactly_the_registered_corruptions():
    assert list(HeldoutCorruption.__args__) == list(corruptions.CORRUPTIONS)
    default = yaml.safe_load((ROOT / "params.yaml").read_text())["heldout"]["corruptions"]
    assert default == list(corruptions.CORRUPTIONS)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"corruptions": ["rotate", "wobble"]}, "heldout.corruptions.1"),
        ({"corruptions": ["rotate", "rotate"]}, "heldout.corruptions"),
        ({"test_size": 0}, "heldout.test_size"),
        ({"unclipped_gaussian": -0.4}, "heldout.unclipped_gaussian"),
    ],
)
def test_bad_heldout_params_name_the_key(change, key):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["heldout"].update(change)
    with pytest.raises(ParamsError, match=key.replace(".", r"\.")):
        parse_params(raw)


def test_suite_is_seeded_and_ends_with_the_unclipped_recipe():
    images = np.random.default_rng(0).random((6, 28, 28)).astype(np.float32)
    names, levels, suite = heldout.build_suite(images, ["rotate", "fog"], seed=3, unclipped_sigma=0.4)
    assert names == ["rotate", "fog", heldout.UNCLIPPED] and list(levels) == [1.0, 1.0, 0.4]
    again = heldout.build_suite(images, ["fog"], seed=3, unclipped_sigma=None)[2]
    np.testing.assert_array_equal(again[0], suite[1])  # a cell does not depend on the others
    noise = suite[2] - images
    assert suite[2].min() < 0 and suite[2].max() > 1  # not clipped
    assert abs(noise.std() - 0.4) < 0.02 and abs(noise.mean()) < 0.02
    other = heldout.build_suite(images, ["rotate", "fog"], seed=4, unclipped_sigma=0.4)[2]
    assert not np.array_equal(other[1], suite[1])


def test_suite_file_round_trip_and_stale_file_error(tmp_path):
    images = np.zeros((2, 1, 28, 28), dtype=np.float32)
    path = tmp_path / "suite.npz"
    heldout.save_suite(path, ["rotate", "fog"], np.array([1.0, 1.0]), images, np.array([3]))
    grids, labels = heldout.load_suite(path, ["rotate", "fog"])
    assert list(grids) == ["rotate", "fog"] and grids["fog"][1].shape == (1, 1, 28, 28)
    assert list(labels) == [3]
    with pytest.raises(Exception, match=r"suite\.npz holds \['rotate', 'fog'\].*rerun"):
        heldout.load_suite(path, ["rotate"])


def correct_vectors() -> dict:
    """Two corruptions (rotate geometric, shot_noise near-seen) and the unclipped recipe, 10
    images: no defense right on 5 / 8 / 5, a denoiser on 9 / 4 / 10."""
    base = {"rotate": 5, "shot_noise": 8, heldout.UNCLIPPED: 5}
    mine = {"rotate": 9, "shot_noise": 4, heldout.UNCLIPPED: 10}
    out = {}
    for kind in base:
        level = 0.4 if kind == heldout.UNCLIPPED else 1.0
        out[(kind, "none", "clean", level)] = np.arange(10) < base[kind]
        out[(kind, "dn", "clean", level)] = np.arange(10) < mine[kind]
    return out


def test_gains_and_summary_on_known_counts():
    reference = ("none", "clean")
    gains = heldout.gains(correct_vectors(), reference)
    dn = gains[gains["denoiser"] == "dn"].set_index("corruption")
    assert dn.loc["rotate", "gain"] == pytest.approx(0.4) and not dn.loc["rotate", "harm"]
    # 8 -> 4 of 10, every loss on the same images: the paired interval lies below 0
    assert dn.loc["shot_noise", "gain"] == pytest.approx(-0.4) and dn.loc["shot_noise", "harm"]
    assert gains.loc[gains["denoiser"] == "none", "gain"].isna().all()
    summary = heldout.summary(gains, reference).set_index("denoiser")
    assert summary.loc["dn", "suite_mean"] == pytest.approx((0.9 + 0.4) / 2)  # the unclipped cell apart
    assert summary.loc["dn", "unseen_mean"] == pytest.approx(0.9)  # without near-seen shot_noise
    assert summary.loc["dn", "geometric_mean"] == pytest.approx(0.9)
    assert summary.loc["dn", "mCE"] == pytest.approx((0.1 / 0.5 + 0.6 / 0.2) / 2)
    assert summary.loc["none", "mCE"] == pytest.approx(1.0)
    assert (summary.loc["dn", "harms"], summary.loc["dn", "below_zero"]) == (1, 1)
    assert summary.loc["dn", "unclipped_accuracy"] == pytest.approx(1.0)
    keys = heldout.headline(
        summary.reset_index(),
        {"frozen_best": ("dn", "clean"), "frozen_none": reference},
        reference,
        "frozen_best",
    )
    assert keys == {
        "frozen_best_heldout_mean": 0.65,
        "frozen_best_heldout_harms": 1,
        "frozen_best_heldout_mCE": 1.6,
        "frozen_none_heldout_mean": 0.65,
    }


def test_unclipped_recipe_counts_as_seen_only_within_the_trained_levels():
    scores = pd.DataFrame({"noise": [heldout.UNCLIPPED, "rotate", "shot_noise"], "level": [0.4, 1.0, 1.0]})
    marked = heldout.mark_seen(scores, [0.1, 0.5])
    assert list(marked["seen_in_training"]) == [True, False, False]
    assert list(marked["near_seen"]) == [False, False, True]
    assert not heldout.mark_seen(scores, [0.1, 0.3])["seen_in_training"].any()


def test_input_contract_clips_every_input_before_the_defense():
    x = np.array([[[-0.5, 0.2], [1.7, 1.0]]], dtype=np.float64)
    assert admit(x).dtype == np.float32
    np.testing.assert_array_equal(admit(x), np.clip(x, 0, 1).astype(np.float32))
    seen = []
    wrapped = contracted(lambda images, kind, level: seen.append(images) or images * 2)
    np.testing.assert_array_equal(wrapped(x, "gaussian", 0.5), wrapped(np.clip(x, 0, 1), "gaussian", 0.5))
    assert seen[0].min() >= 0 and seen[0].max() <= 1
    with pytest.raises(ValueError, match="NaN"):
        admit(np.array([np.nan]))


def test_every_pipeline_defense_ignores_what_clipping_removes(tmp_path):
    """defense(x) == defense(clip(x)) for a learned denoiser, each classical baseline and none."""
    import keras

    from pipeline.baselines import fit_baselines, load_restorers, save_baselines
    from pipeline.evaluation import model_restorer, restore

    rng = np.random.default_rng(0)
    clean = rng.random((8, 28, 28)).astype(np.float32)
    x = clean + 0.6 * rng.standard_normal(clean.shape).astype(np.float32)  # far outside [0, 1]
    model = keras.Sequential(
        [keras.Input((28, 28)), keras.layers.Reshape((28, 28, 1)), keras.layers.Conv2D(1, 3, padding="same")]
    )
    defenses = {
        "none": lambda images, kind, level: restore(None, images, 8),
        "learned": model_restorer(model, 8),
    }
    methods = ["lmmse", "median", "gaussian", "tv", "wavelet", "nl_means"]
    fits, lmmse = fit_baselines(methods, {"gaussian": [0.5]}, clean, clean[:4], seed=0)
    save_baselines(tmp_path / "classical.npz", fits, lmmse)
    defenses |= load_restorers(tmp_path / "classical.npz", methods, {"gaussian": [0.5]})
    for name, defense in defenses.items():
        np.testing.assert_allclose(
            defense(x, "gaussian", 0.5), defense(np.clip(x, 0, 1), "gaussian", 0.5), atol=1e-6, err_msg=name
        )
