"""pipeline.reference: the recipe's params and data, and its rows scored as the evaluate stage scores."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

from pipeline import metrics
from pipeline.data import DataError, Dataset
from pipeline.io import save_dataset, write_npz
from pipeline.params import ParamsError
from pipeline.presets import PRESETS
from pipeline.reference import main, reference_params, score, with_validation_in_training


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(30, 28, 28)).astype(np.uint8)
    y = rng.integers(0, 10, size=30).astype(np.uint8)
    save_dataset(tmp_path / "mnist.npz", Dataset(x, y, x[:5], y[:5], x, y))
    clean = x.astype(np.float32) / 255
    noisy = clean + 0.4 * rng.standard_normal(clean.shape).astype(np.float32)  # out of range
    write_npz(tmp_path / "gaussian.npz", levels=np.array([0.0, 0.5]), images=np.stack([clean, noisy]))
    identity = keras.Sequential([keras.Input((28, 28)), keras.layers.Rescaling(1.0)])
    identity.save(tmp_path / "denoiser.keras")
    classifier = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10)])
    classifier.set_weights([rng.standard_normal((784, 10)).astype(np.float32), np.zeros(10, np.float32)])
    classifier.save(tmp_path / "classifier.keras")
    return tmp_path, clean, np.clip(noisy, 0, 1), y, classifier


def test_scores_the_contracted_input_with_a_wilson_interval(files):
    root, clean, clipped, labels, classifier = files
    row = score(
        root / "denoiser.keras", root / "classifier.keras", root / "gaussian.npz", 0.5, root / "mnist.npz"
    )
    right = int((classifier.predict(clipped, verbose=0).argmax(-1) == labels).sum())
    assert row["n_images"] == 30
    assert row["accuracy"] == pytest.approx(right / 30)
    assert (row["accuracy_low"], row["accuracy_high"]) == pytest.approx(metrics.wilson_interval(right, 30))
    assert row["psnr"] == pytest.approx(float(np.mean(metrics.psnr(clean, clipped))), rel=1e-5)
    assert row["ssim"] == pytest.approx(float(np.mean(metrics.ssim(clean, clipped))), rel=1e-5)


def test_a_level_missing_from_the_grid_names_the_file(files):
    root = files[0]
    with pytest.raises(DataError, match=r"gaussian\.npz has no level 0\.3"):
        score(
            root / "denoiser.keras", root / "classifier.keras", root / "gaussian.npz", 0.3, root / "mnist.npz"
        )


def test_a_train_seed_replaces_params_own_and_nothing_else(monkeypatch):
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    own, name, whole = reference_params(PRESETS / "reference.yaml")
    seeded, same_name, same_whole = reference_params(PRESETS / "reference.yaml", train_seed=7)
    assert own["train_seed"] == yaml.safe_load((root / "params.yaml").read_text())["train_seed"] != 7
    assert seeded["train_seed"] == 7 and same_name == name == "reference_unet_bn"
    assert {**seeded, "train_seed": own["train_seed"]} == own and whole is same_whole is True


def test_the_reference_section_sets_the_recipes_data_and_nothing_else(tmp_path, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    recipe = yaml.safe_load((PRESETS / "reference.yaml").read_text())
    section = recipe.pop("reference")
    assert section == {"whole_training_set": True, "clean_fraction": 0.0}
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump(recipe))
    merged, _, whole = reference_params(PRESETS / "reference.yaml")
    without, _, not_whole = reference_params(plain)
    assert merged["train_noise"]["clean_fraction"] == 0.0 < without["train_noise"]["clean_fraction"]
    merged["train_noise"]["clean_fraction"] = without["train_noise"]["clean_fraction"]
    assert merged == without and whole and not not_whole
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**recipe, "reference": {"whole_training_set": "yes"}}))
    with pytest.raises(ParamsError, match=r"bad\.yaml: reference: expected whole_training_set"):
        reference_params(bad)


def test_the_whole_training_set_adds_the_validation_images_to_training():
    rng = np.random.default_rng(1)
    split = [rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8) for n in (6, 3, 2)]
    labels = [rng.integers(0, 10, size=len(x), dtype=np.uint8) for x in split]
    whole = with_validation_in_training(
        Dataset(split[0], labels[0], split[1], labels[1], split[2], labels[2])
    )
    assert np.array_equal(whole.x_train, np.concatenate(split[:2]))
    assert np.array_equal(whole.y_train, np.concatenate(labels[:2]))
    assert np.array_equal(whole.x_val, split[1]) and np.array_equal(whole.x_test, split[2])


def test_a_seed_named_twice_fails_before_any_training(monkeypatch, capsys):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    assert main(["--train-seeds", "1", "2", "1"]) == 2
    assert "--train-seeds [1, 2, 1]: name each seed once" in capsys.readouterr().err
