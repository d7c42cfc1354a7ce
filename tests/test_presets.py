"""Presets: partial params files merged into params.yaml, validated before anything is written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from pipeline.params import ParamsError, load_params
from pipeline.presets import PRESETS, apply_preset, deep_merge, main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def params_file(tmp_path) -> Path:
    path = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", path)
    return path


def test_deep_merge_merges_mappings_and_replaces_the_rest():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 2}
    merged = deep_merge(base, {"a": {"y": [3], "z": 4}, "c": 5})
    assert merged == {"a": {"x": 1, "y": [3], "z": 4}, "b": 2, "c": 5}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 2}  # not modified


def test_full_preset_widens_the_grid_and_keeps_other_keys(params_file):
    before = load_params(params_file)
    apply_preset("full", params_file)
    params = load_params(params_file)
    assert len(params.noise["gaussian"]) == 8 and len(params.noise["blur"]) == 5
    assert params.denoisers["unet"].filters == 64
    assert params.denoisers["unet"].architecture == before.denoisers["unet"].architecture
    assert params.classical.methods["nl_means"] is None
    all_images = dict.fromkeys(before.evaluate.noise_test_sizes)  # every subset back to all 10k
    assert set(all_images) == {"salt_pepper", "speckle", "poisson", "blur"}
    assert params.evaluate == before.evaluate.model_copy(update={"noise_test_sizes": all_images})
    assert params.classifiers["clean"].epochs == 20 and params.classifiers["noise_aug"].match_budget
    assert params.budget.flops == 1.2e14 > before.budget.flops


def test_unknown_preset_lists_the_available_ones(params_file):
    available = r"available: \['fashion', 'full', 'reference'\]"
    with pytest.raises(ParamsError, match=r"no\.yaml: no such preset; " + available):
        apply_preset("no", params_file)


def test_invalid_result_leaves_params_untouched(tmp_path, params_file):
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "bad.yaml").write_text(yaml.safe_dump({"classifiers": {"clean": {"epochs": 0}}}))
    before = params_file.read_text()
    with pytest.raises(ParamsError, match=r"classifiers\.clean\.epochs:.*\(got 0\)"):
        apply_preset("bad", params_file, presets)
    assert params_file.read_text() == before


def test_cli_exit_codes(params_file, capsys):
    assert main(["nope", "--params", str(params_file)]) == 2
    assert "no such preset" in capsys.readouterr().err
    assert main(["full", "--params", str(params_file)]) == 0
    assert sorted(p.stem for p in PRESETS.glob("*.yaml")) == ["fashion", "full", "reference"]


def test_reference_preset_adds_the_fixed_recipe_outside_the_matched_comparison(params_file):
    from pipeline.budget import matched_contestants

    before = load_params(params_file)
    apply_preset("reference", params_file)
    params = load_params(params_file)
    recipe = params.denoisers["reference_unet_bn"]
    assert not recipe.budget and recipe.epochs == 10 and recipe.block_order == "conv_relu_bn"
    assert recipe.train_noise == {"gaussian": [0.5]} and not recipe.fresh_noise
    assert matched_contestants(params) == matched_contestants(before)
    assert params.train_noise == before.train_noise  # the preset's reference section is left out
