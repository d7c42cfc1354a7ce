"""The derived Fashion-MNIST pipeline: generated from the root files, same protocol, own data."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.params import ParamsError
from pipeline.pipelines import ROOT, derived_dvc, generate

FOLDER = "fashion"


@pytest.fixture(scope="module")
def files() -> dict[str, dict]:
    return {path.name: yaml.safe_load(text) for path, text in generate(FOLDER).items()}


def stage_bodies(dvc: dict):
    for name, body in dvc["stages"].items():
        yield name, body.get("do", body)


def test_params_are_the_root_protocol_with_the_preset_merged(files):
    root = yaml.safe_load((ROOT / "params.yaml").read_text())
    preset = yaml.safe_load((ROOT / "presets" / f"{FOLDER}.yaml").read_text())
    params = files["params.yaml"]
    assert params["data"]["dataset"] == "fashion_mnist"
    assert "/usr/share/datasets/fashion-mnist" in params["data"]["search_paths"]
    for key in ("noise", "train_noise", "heldout", "evaluate", "ceiling", "denoisers", "guided", "tune"):
        if key not in preset:
            assert params[key] == root[key], key
    assert params["data"]["validation_size"] == root["data"]["validation_size"]


def test_every_code_dep_resolves_from_the_folder(files):
    root = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    derived = files["dvc.yaml"]
    assert list(derived["stages"]) == list(root["stages"])
    for (name, body), (_, original) in zip(stage_bodies(derived), stage_bodies(root), strict=True):
        assert body["cmd"].startswith("PYTHONPATH=.. python -m stages."), name
        assert "mnist.npz" not in body["cmd"].replace("fashion_mnist.npz", ""), name
        code = [dep for dep in body.get("deps", []) if dep.startswith("../")]
        assert len(code) == sum(dep.startswith(("pipeline/", "stages/")) for dep in original.get("deps", []))
        assert all((ROOT / FOLDER / dep).resolve().is_file() for dep in code), name
        assert body.get("params") == original.get("params"), name  # relative to the folder's params.yaml
    assert derived["plots"] == root["plots"]
    assert "foreach" in derived["stages"]["train_denoiser"]


def test_data_files_are_named_after_the_dataset():
    dvc = {
        "stages": {
            "prepare": {
                "cmd": "python -m stages.prepare --raw data/raw/mnist.npz\n  --out data/prepared/mnist.npz",
                "deps": ["data/raw/mnist.npz", "stages/prepare.py", "pipeline/data.py"],
                "outs": ["data/prepared/mnist.npz", {"results/x.json": {"cache": False}}],
            }
        }
    }
    stage = derived_dvc(dvc, "fashion_mnist")["stages"]["prepare"]
    assert stage["cmd"] == (
        "PYTHONPATH=.. python -m stages.prepare --raw data/raw/fashion_mnist.npz"
        " --out data/prepared/fashion_mnist.npz"
    )
    assert stage["deps"] == ["data/raw/fashion_mnist.npz", "../stages/prepare.py", "../pipeline/data.py"]
    assert stage["outs"] == ["data/prepared/fashion_mnist.npz", {"results/x.json": {"cache": False}}]
    assert dvc["stages"]["prepare"]["deps"][0] == "data/raw/mnist.npz"  # the input is not modified


def test_unknown_folder_names_the_presets(tmp_path):
    with pytest.raises(ParamsError, match=r"no preset for the derived pipeline 'cifar'; available: \[\]"):
        generate("cifar", root=tmp_path, presets=tmp_path)


def test_a_bad_preset_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    (tmp_path / "dvc.yaml").write_text((ROOT / "dvc.yaml").read_text())
    (tmp_path / "bad.yaml").write_text("data: {dataset: cifar10}\n")
    with pytest.raises(ParamsError, match=r"params.yaml \+ bad.yaml: invalid params\n  data.dataset"):
        generate("bad", root=tmp_path, presets=tmp_path)
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("name", ["params.yaml", "dvc.yaml"])
def test_committed_derived_files_are_current(name):
    path = ROOT / FOLDER / name
    if not path.exists():
        pytest.skip(f"{FOLDER}/ is committed with its first run")
    assert path.read_text() == generate(FOLDER)[Path(path)], (
        f"stale: run python -m pipeline.pipelines {FOLDER}"
    )
