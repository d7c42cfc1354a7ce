"""MNIST-style preprocessing and the denoise-classify command on real image files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage
from skimage.io import imread, imsave

from pipeline.commands.classify import main
from pipeline.commands.preprocess import to_mnist
from pipeline.models import build_cae, build_classifier, save_model

ROOT = Path(__file__).resolve().parents[2]


def photo_of_a_bar(height=120, width=90, dark_on_light=True, rgb=False) -> np.ndarray:
    """A large off-centre digit-like stroke, as a scan would give it."""
    image = np.zeros((height, width), dtype=np.uint8)
    image[20:100, 10:30] = 255
    if dark_on_light:
        image = 255 - image
    return np.stack([image] * 3, axis=-1) if rgb else image


@pytest.mark.parametrize("dark_on_light", [True, False])
@pytest.mark.parametrize("rgb", [True, False])
def test_to_mnist_normalises_like_mnist(dark_on_light, rgb):
    out = to_mnist(photo_of_a_bar(dark_on_light=dark_on_light, rgb=rgb))
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1
    # White digit on black: the border is background.
    assert out[0].max() == 0 and out[:, 0].max() == 0
    # The longer side of the ink fits the 20 px box, and the ink is centred by mass.
    rows = np.flatnonzero(out.max(axis=1) > 0.1)
    assert 19 <= rows[-1] - rows[0] + 1 <= 21
    centre = np.array(ndimage.center_of_mass(out))
    assert np.all(np.abs(centre - 13.5) <= 1.0)


def test_to_mnist_keeps_a_blank_image_blank():
    assert to_mnist(np.full((40, 40), 255, dtype=np.uint8)).max() == 0


def test_to_mnist_rejects_a_volume():
    with pytest.raises(ValueError, match="2-D grayscale or RGB"):
        to_mnist(np.zeros((4, 5, 6, 7)))


@pytest.fixture
def models(tmp_path):
    denoiser, classifier = tmp_path / "den.keras", tmp_path / "clf.keras"
    save_model(denoiser, build_cae(filters=4))
    save_model(classifier, build_classifier(filters=4, dense_units=8))
    return denoiser, classifier


def test_denoise_classify_writes_images_and_predictions(tmp_path, models, capsys):
    files = []
    for i, kwargs in enumerate([{}, {"rgb": True}]):
        files.append(tmp_path / f"digit{i}.png")
        imsave(files[-1], photo_of_a_bar(**kwargs), check_contrast=False)
    out = tmp_path / "out"
    argv = [*map(str, files), "--denoiser", str(models[0]), "--classifier", str(models[1])]
    assert main([*argv, "--out", str(out)]) == 0
    table = pd.read_csv(out / "predictions.csv")
    assert list(table["file"]) == [str(f) for f in files]
    assert table["prediction"].between(0, 9).all()
    assert table["confidence"].between(0, 1).all()
    for i in range(2):
        assert (out / f"digit{i}_input.png").is_file() and (out / f"digit{i}_denoised.png").is_file()
    assert "prediction_without_denoiser" in capsys.readouterr().out


def test_denoise_classify_names_a_missing_or_broken_file(tmp_path, models, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    for bad in (tmp_path / "missing.png", broken):
        code = main([str(bad), "--denoiser", str(models[0]), "--classifier", str(models[1])])
        assert code == 2
        assert str(bad) in capsys.readouterr().err


def test_denoise_classify_defaults_to_the_frozen_best_denoiser(tmp_path, models, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")  # the pipeline's paths: results/headline.json
    imsave(tmp_path / "digit.png", photo_of_a_bar(), check_contrast=False)
    argv = ["digit.png", "--classifier", str(models[1])]
    assert main([*argv, "--out", "default"]) == 2  # no headline: a clear error naming the file
    assert "results/headline.json" in capsys.readouterr().err
    (tmp_path / "results").mkdir()
    (tmp_path / "results/headline.json").write_text(json.dumps({"frozen_best": "unet_bn + clean"}))
    assert main([*argv, "--out", "default"]) == 2  # the denoiser it names is what it loads
    assert "models/denoisers/unet_bn.keras" in capsys.readouterr().err
    (tmp_path / "models/denoisers").mkdir(parents=True)
    shutil.copy(models[0], tmp_path / "models/denoisers/unet_bn.keras")
    assert main([*argv, "--out", "default"]) == 0
    assert "denoiser: models/denoisers/unet_bn.keras" in capsys.readouterr().out
    assert main([*argv, "--out", "explicit", "--denoiser", "models/denoisers/unet_bn.keras"]) == 0
    np.testing.assert_array_equal(imread("default/digit_denoised.png"), imread("explicit/digit_denoised.png"))
    assert pd.read_csv("default/predictions.csv").equals(pd.read_csv("explicit/predictions.csv"))


def test_denoise_classify_without_a_denoiser_when_frozen_best_is_none(tmp_path, models, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")  # the pipeline's paths: results/headline.json
    imsave(tmp_path / "digit.png", photo_of_a_bar(), check_contrast=False)
    (tmp_path / "results").mkdir()
    (tmp_path / "results/headline.json").write_text(json.dumps({"frozen_best": "none + clean"}))
    assert main(["digit.png", "--classifier", str(models[1]), "--out", "out"]) == 0
    table = pd.read_csv("out/predictions.csv")
    assert (table["prediction"] == table["prediction_without_denoiser"]).all()
