"""experiments/ablations.py: the log-MSE loss and the noise scoring it reports."""

from __future__ import annotations

import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest

from experiments import ablations
from pipeline import metrics
from pipeline.noise import corrupt
from tests.conftest import tiny_mnist


def test_log_mse_is_the_scaled_log_of_each_images_mse():
    rng = np.random.default_rng(0)
    clean = rng.random((3, 28, 28)).astype(np.float32)
    noise = rng.normal(0, [[[0.05]], [[0.1]], [[0.3]]], clean.shape)
    output = np.clip(clean + noise, 0, 1).astype(np.float32)
    expected = 0.01 * np.log(np.mean((clean - output) ** 2, axis=(1, 2)) + 1e-5)
    got = keras.ops.convert_to_numpy(ablations.log_mse(clean, output))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # minimising it maximises mean PSNR: -10 log10(mse) = -(1000 / ln 10) x loss where mse >> eps
    psnr = metrics.psnr(clean, output)
    np.testing.assert_allclose(-1000 / np.log(10) * got, psnr, rtol=1e-2)


def test_noise_scores_of_an_identity_model_are_the_noisy_inputs_scores():
    images = tiny_mnist(n_train=8, n_test=32, seed=2)["x_test"].astype(np.float32) / 255
    labels = np.arange(32) % 10
    identity = keras.Sequential([keras.Input((28, 28)), keras.layers.Identity()])
    always_three = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10)])
    weights = always_three.get_weights()
    always_three.set_weights([np.zeros_like(weights[0]), np.eye(10, dtype=np.float32)[3] * 5])
    scores = ablations.noise_scores(identity, images, (0.0, 0.5), always_three, labels)
    noisy = corrupt(images, "gaussian", 0.5, np.random.default_rng(ablations.SCORE_SEED))
    assert scores["psnr_0.5"] == pytest.approx(np.mean(metrics.psnr(images, noisy)), abs=1e-3)
    assert scores["ssim_0.5"] == pytest.approx(np.mean(metrics.ssim(images, noisy)), abs=1e-4)
    assert "psnr_0.0" not in scores  # the clean input is returned unchanged: PSNR would be inf
    assert scores["accuracy_0.0"] == scores["accuracy_0.5"] == pytest.approx(np.mean(labels == 3), abs=5e-5)
    other = ablations.noise_scores(identity, images, (0.2,), kind="salt_pepper")
    salted = corrupt(images, "salt_pepper", 0.2, np.random.default_rng(ablations.SCORE_SEED))
    assert set(other) == {"psnr_salt_pepper_0.2", "ssim_salt_pepper_0.2"}
    assert other["psnr_salt_pepper_0.2"] == pytest.approx(np.mean(metrics.psnr(images, salted)), abs=1e-3)


def test_merge_replaces_only_the_rerun_section_and_records_its_run():
    previous = {
        "losses": [{"loss": "mse"}],
        "guided": [{"variant": "old"}],
        "runs": {"losses": {"commit": "aaa"}, "guided": {"commit": "aaa"}},
    }
    merged = ablations.merge(previous, {"guided": [{"variant": "new"}]}, {"commit": "bbb"})
    assert merged["losses"] == [{"loss": "mse"}]
    assert merged["guided"] == [{"variant": "new"}]
    assert merged["runs"] == {"losses": {"commit": "aaa"}, "guided": {"commit": "bbb"}}
    assert previous["runs"]["guided"] == {"commit": "aaa"}  # the input is not modified


def test_commit_names_the_checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert ablations.commit() == "unknown"  # not a git repository

    def git(*args):
        return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    (tmp_path / "file.txt").write_text("one\n")
    git("add", "file.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    head = git("rev-parse", "--short", "HEAD")
    assert ablations.commit() == head
    benchmark = tmp_path / ablations.OUT
    benchmark.parent.mkdir(parents=True)
    benchmark.write_text("{}\n")
    git("add", str(ablations.OUT))
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "two")
    head = git("rev-parse", "--short", "HEAD")
    benchmark.write_text('{"rerun": true}\n')
    assert ablations.commit() == head  # a benchmark result written meanwhile is not code
    (tmp_path / "README.md").write_text("notes\n")
    git("add", "README.md")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "three")
    head = git("rev-parse", "--short", "HEAD")
    (tmp_path / "README.md").write_text("notes edited while a benchmark runs\n")
    assert ablations.commit() == head  # nor is documentation
    (tmp_path / "file.txt").write_text("two\n")
    assert ablations.commit() == f"{head}-dirty"


def test_set_dropout_changes_every_dropout_layer_and_what_a_training_call_drops():
    from pipeline.models import build_classifier

    model = build_classifier(4, 8, dropout=0.3)
    assert ablations.dropout_rates(model) == [0.3, 0.3]
    ablations.set_dropout(model, 0.9)
    assert ablations.dropout_rates(model) == [0.9, 0.9]
    dense = model.get_layer("cnn_dense")
    features = np.ones((1, dense.input.shape[-1]), np.float32)
    dropped = keras.ops.convert_to_numpy(model.get_layer("cnn_dropout1")(features, training=True))
    assert 0.8 < np.mean(dropped == 0) < 0.98  # about 90% of the 392 flattened features dropped


def test_fit_flagship_records_the_fit_it_ran():
    from pipeline.data import split_validation
    from pipeline.params import load_params

    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    dataset = split_validation(tiny_mnist(n_train=96, n_test=8), validation_size=16, seed=0)
    model, record = ablations.fit_flagship(params, dataset, "tiny", 2, filters=4, batch_size=32)
    assert model.name == "ablation_tiny" and model.count_params() < 40_000
    assert record["epochs"] == 2 and len(record["val_mse"]) == 2
    assert record["lr_drop_epochs"] == params.denoisers["unet_res"].lr_drop_epochs == 1
    assert record["train_seconds"] > 0 and all(0 < v < 0.2 for v in record["val_mse"])


def test_fit_flagship_trains_on_the_mix_it_is_given():
    from pipeline.data import split_validation
    from pipeline.params import load_params

    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    dataset = split_validation(tiny_mnist(n_train=96, n_test=8), validation_size=16, seed=0)
    heavy = params.train_noise.model_copy(update={"type_weights": {"gaussian": 50.0}})
    _, uniform = ablations.fit_flagship(params, dataset, "uniform", 1, filters=4, batch_size=32)
    _, again = ablations.fit_flagship(params, dataset, "again", 1, filters=4, batch_size=32)
    _, gaussian = ablations.fit_flagship(
        params, dataset, "heavy", 1, train_noise=heavy, filters=4, batch_size=32
    )
    assert uniform["val_mse"] == again["val_mse"] != gaussian["val_mse"]


def test_other_noise_scores_cover_every_non_gaussian_type_at_its_first_level():
    from pipeline.params import load_params

    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    images = tiny_mnist(n_train=8, n_test=8, seed=2)["x_test"].astype(np.float32) / 255
    identity = keras.Sequential([keras.Input((28, 28)), keras.layers.Identity()])
    scores = ablations.other_noise_scores(identity, params, images)
    expected = {
        f"{metric}_{kind}_{next(level for level in levels if level)}"
        for kind, levels in params.noise.items()
        if kind != "gaussian"
        for metric in ("psnr", "ssim")
    }
    assert set(scores) == expected and len(expected) == 2 * (len(params.noise) - 1)


def test_depth_section_fits_the_tuners_unet_at_each_depth_with_the_flagships_fit():
    from functools import partial

    from pipeline.data import split_validation
    from pipeline.params import load_params
    from pipeline.tuning import build_unet_from

    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    config = params.denoisers["unet_res"].model_copy(update={"filters": 4})
    dataset = split_validation(tiny_mnist(n_train=96, n_test=8), validation_size=16, seed=0)
    fits = {}
    for depth in ablations.DEPTHS:
        values = ablations.depth_values(depth, config)
        assert values["residual"] and values["loss"] == "mse" and values["depth"] == depth
        build = partial(build_unet_from, values)
        fits[depth] = ablations.fit_flagship(params, dataset, f"d{depth}", 1, build=build, batch_size=32)
    (shallow, _), (deep, record) = fits[2], fits[3]
    assert deep.name == "ablation_d3" and deep.get_layer("ablation_d3_down3_pool") is not None
    assert deep.output_shape == shallow.output_shape == (None, 28, 28)
    assert deep.count_params() > 3 * shallow.count_params()  # the third level's 8f bottleneck
    assert record["epochs"] == 1 and 0 < record["val_mse"][0] < 0.2
