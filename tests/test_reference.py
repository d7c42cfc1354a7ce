"""pipeline.reference.score: the reference recipe's row is scored as the evaluate stage scores."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

from pipeline import metrics
from pipeline.data import DataError, Dataset
from pipeline.io import save_dataset, write_npz
from pipeline.presets import PRESETS
from pipeline.reference import reference_params, score


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
    own, name = reference_params(PRESETS / "reference.yaml")
    seeded, same_name = reference_params(PRESETS / "reference.yaml", train_seed=7)
    assert own["train_seed"] == yaml.safe_load((root / "params.yaml").read_text())["train_seed"] != 7
    assert seeded["train_seed"] == 7 and same_name == name == "reference_unet_bn"
    assert {**seeded, "train_seed": own["train_seed"]} == own
