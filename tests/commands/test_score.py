"""``denoise-bench score``: a user's classifier (and denoiser) scored under the pipeline's protocol,
on a tiny pipeline written into a temporary directory in the pipeline's own file formats."""

from __future__ import annotations

import json
import logging
import shutil
import zipfile
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pandas as pd
import pytest
import yaml
from keras import layers

from pipeline import heldout, tables
from pipeline.commands import adapters, protocol, scoring
from pipeline.commands import bench as bench_cli
from pipeline.data import Dataset, to_float
from pipeline.evaluation import evaluate_grid, model_restorer
from pipeline.io import save_dataset, write_npz
from pipeline.noise import noisy_grid
from pipeline.params import load_params, parse_params

ROOT = Path(__file__).resolve().parents[2]
LABEL = 3  # every test image is a 3: the known-label set
N_TEST, N_SUITE, N_SALT = 30, 20, 12
CORRUPTIONS = ["rotate", "brightness", "fog", "impulse_noise"]


def tiny_raw_params() -> dict:
    """The repository's params.yaml with a tiny grid and suite."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["noise"] = {"gaussian": [0.0, 0.3, 0.5], "salt_pepper": [0.0, 0.2]}
    raw["evaluate"].update(
        headline_noise="gaussian",
        headline_level=0.5,
        sample_noise="gaussian",
        noise_test_sizes={"salt_pepper": N_SALT},
    )
    raw["ceiling"]["levels"] = [0.5]
    raw["heldout"].update(corruptions=CORRUPTIONS, test_size=N_SUITE, unclipped_gaussian=0.4)
    return raw


def classifier(kernel, bias, shape=(28, 28), activation="softmax") -> keras.Model:
    """Flatten + Dense with the given weights."""
    inputs = keras.Input(shape)
    dense = layers.Dense(bias.shape[0], activation=activation)
    model = keras.Model(inputs, dense(layers.Flatten()(inputs)))
    dense.set_weights([np.asarray(kernel, np.float32), np.asarray(bias, np.float32)])
    return model


def constant(label=LABEL, shape=(28, 28)) -> keras.Model:
    """Always predicts ``label``."""
    return classifier(np.zeros((784, 10)), 10.0 * np.eye(10)[label], shape)


def threshold() -> keras.Model:
    """Predicts 3 if the mean pixel is above 1, else 5: never on [0, 1] inputs, on [0, 255] inputs
    whenever any ink shows."""
    kernel = np.zeros((784, 10))
    kernel[:, LABEL] = 1 / 784
    return classifier(kernel, np.eye(10)[5], activation="linear")


def projection(activation="softmax") -> keras.Model:
    """Right on some images, wrong on others: 3 where a fixed zero-mean random projection is positive."""
    kernel = np.zeros((784, 10))
    weights = np.random.default_rng(1).normal(size=784)
    kernel[:, LABEL] = weights - weights.mean()  # a brightness shift does not decide it
    return classifier(kernel, np.zeros(10), activation=activation)


def image_model(layer: layers.Layer, shape=(28, 28)) -> keras.Model:
    inputs = keras.Input(shape)
    return keras.Model(inputs, layer(inputs))


def tiny_images(n: int, rng: np.random.Generator) -> np.ndarray:
    images = rng.integers(0, 30, size=(n, 28, 28)).astype(np.uint8)
    for image, row in zip(images, rng.integers(4, 22, size=n), strict=True):
        image[row : row + 2, 4:24] = 255
    return images


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> SimpleNamespace:
    """A tiny pipeline: params, prepared data, grids, suite, clean classifier, committed results."""
    root = tmp_path_factory.mktemp("bench")
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_raw_params()))
    shutil.copy(ROOT / "dvc.yaml", root / "dvc.yaml")  # where the pipeline's files are
    params = load_params(root / "params.yaml")
    rng = np.random.default_rng(0)
    small = tiny_images(10, rng), np.full(10, LABEL, np.uint8)
    x_test, y_test = tiny_images(N_TEST, rng), np.full(N_TEST, LABEL, np.uint8)
    save_dataset(root / "data/prepared/mnist.npz", Dataset(*small, *small, x_test, y_test))
    clean = to_float(x_test)
    grids = {}
    for kind, levels in params.noise.items():
        grids[kind] = (np.asarray(levels, np.float64), noisy_grid(clean, kind, levels, params.seed))
        write_npz(root / f"data/noisy/{kind}.npz", levels=grids[kind][0], images=grids[kind][1])
    names, levels, images = heldout.build_suite(clean[:N_SUITE], CORRUPTIONS, params.seed, 0.4)
    heldout.save_suite(root / "data/heldout.npz", names, levels, images, y_test[:N_SUITE])
    suite, suite_labels = heldout.load_suite(root / "data/heldout.npz", names)

    reference, identity = projection(), image_model(layers.Identity())
    (root / "models/classifiers").mkdir(parents=True)
    (root / "models/denoisers").mkdir(parents=True)
    reference.save(root / "models/classifiers/clean.keras")
    identity.save(root / "models/denoisers/unet_bn.keras")
    committed = {"unet_bn": model_restorer(identity, 256)}
    scores, _, _ = evaluate_grid(
        clean, y_test, grids, committed, {"clean": reference}, 256, noise_test_sizes={"salt_pepper": N_SALT}
    )
    (root / "results/evaluate").mkdir(parents=True)
    scores = tables.add_intervals(scores, params.train_noise.levels)
    scores.to_csv(root / "results/evaluate/scores.csv", index=False)
    correct: dict = {}
    suite_scores, _, _ = evaluate_grid(
        clean[:N_SUITE], suite_labels, suite, committed, {"clean": reference}, 256, correct_sink=correct
    )
    gains = heldout.gains(correct, ("none", "clean"))
    (root / "results/heldout").mkdir(parents=True)
    gains.to_csv(root / "results/heldout/gains.csv", index=False)
    base = gains[(gains["denoiser"] == "none") & (gains["corruption"] != heldout.UNCLIPPED)]
    assert base["accuracy"].between(0.01, 0.99).all()  # the reference errs, but not everywhere

    files = root / "user"
    files.mkdir()
    user = {
        "constant.keras": constant(),
        "threshold.keras": threshold(),
        "wrong_shape.keras": classifier(np.zeros((32 * 32, 10)), np.zeros(10), (32, 32)),
        "flat.keras": classifier(np.zeros((784, 10)), np.zeros(10), (784,)),
        "rgb.keras": classifier(np.zeros((28 * 28 * 3, 10)), np.zeros(10), (28, 28, 3)),
        "wrong_outputs.keras": classifier(np.zeros((784, 5)), np.zeros(5)),
        "identity.keras": identity,
    }
    for name, model in user.items():
        model.save(files / name)
    (files / "not_a_model.keras").write_text("not a Keras model")
    with zipfile.ZipFile(files / "broken.keras", "w") as archive:  # a zip, but no model in it
        archive.writestr("hello.txt", "hello")
    return SimpleNamespace(root=root, params=params, reference=reference, identity=identity, files=files)


def test_an_identity_denoiser_gains_exactly_nothing_and_harms_nothing(bench):
    result = scoring.score(bench.reference, bench.identity, root=bench.root)
    grid = result.scores
    mine = grid[grid["denoiser"] == adapters.YOUR_DENOISER]
    assert len(mine) == 5 and (mine["gain"] == 0).all()
    assert (mine["gain_low"] <= 0).all() and (mine["gain_high"] >= 0).all()
    none = grid[grid["denoiser"] == "none"]
    np.testing.assert_array_equal(mine["accuracy"].to_numpy(), none["accuracy"].to_numpy())
    # the columns of the committed table, and (the same classifier) its numbers
    committed = pd.read_csv(bench.root / "results/evaluate/scores.csv")
    assert list(grid.columns) == list(committed.columns)
    ours = none.set_index(["noise", "level"])["accuracy"]
    theirs = committed[committed["denoiser"] == "none"].set_index(["noise", "level"])["accuracy"]
    pd.testing.assert_series_equal(ours, theirs)

    gains = result.heldout[result.heldout["denoiser"] == adapters.YOUR_DENOISER]
    assert len(gains) == len(CORRUPTIONS) + 1 and (gains["gain"] == 0).all() and not gains["harm"].any()
    card = result.card
    assert card["do_no_harm"]["harms"] == 0 and card["do_no_harm"]["harmed"] == []
    assert card["do_no_harm"]["defense"] == f"{adapters.YOUR_DENOISER} + {adapters.YOUR_CLASSIFIER}"
    assert card["do_no_harm"]["reference"].startswith(f"none + {adapters.YOUR_CLASSIFIER}")
    assert set(card["do_no_harm"]["gains"]) == set(CORRUPTIONS)  # gaussian_unclipped is not counted
    # the pipeline's own clean classifier has, by definition, mCE 1 on the suite
    for defense in card["defenses"]:
        assert defense["heldout"]["mCE"] == pytest.approx(1.0)
    assert [d["defense"] for d in card["defenses"]] == [
        f"none + {adapters.YOUR_CLASSIFIER}",
        f"{adapters.YOUR_DENOISER} + {adapters.YOUR_CLASSIFIER}",
    ]


@pytest.mark.parametrize("shape", [(28, 28), (28, 28, 1)])
def test_a_classifier_that_is_always_right_scores_one(bench, shape):
    result = scoring.score(constant(shape=shape), root=bench.root)
    card = result.card
    (defense,) = card["defenses"]
    assert card["adapter"]["input_shape"] == list(shape)
    assert defense["clean_accuracy"] == 1.0 and defense["mean_noisy_gaussian_accuracy"] == 1.0
    assert defense["accuracy"] == {"gaussian": {"0.3": 1.0, "0.5": 1.0}, "salt_pepper": {"0.2": 1.0}}
    held = defense["heldout"]
    assert held["suite_mean"] == 1.0 and held["mCE"] == 0.0 and held["unclipped_accuracy"] == 1.0
    assert set(held["accuracy"].values()) == {1.0}
    assert defense["rank"] == {"position": 1, "of": 3}  # two committed defenses, then yours
    # without a denoiser the do-no-harm reference is the pipeline's clean classifier; never worse
    assert card["do_no_harm"]["reference"].startswith("none + clean")
    assert "models/classifiers/clean.keras" in card["do_no_harm"]["reference"]
    assert card["do_no_harm"]["harms"] == 0
    assert all(g["gain"] > 0 for g in card["do_no_harm"]["gains"].values())
    assert card["n_images"] == {
        "clean": N_TEST,
        "noisy": {"gaussian": N_TEST, "salt_pepper": N_SALT},
        "heldout": N_SUITE,
    }
    assert list(result.ranking["defense"])[0] == f"none + {adapters.YOUR_CLASSIFIER}"
    assert result.ranking["yours"].sum() == 1 and len(result.ranking) == 3


def test_pixel_scale_multiplies_what_the_classifier_sees(bench):
    images = np.random.default_rng(0).random((3, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(
        adapters.ClassifierAdapter(threshold(), pixel_scale=255).inputs(images), 255 * images
    )
    clean = to_float(np.load(bench.root / "data/prepared/mnist.npz")["x_test"])
    for pixels, digit in ((1.0, 5), (255.0, LABEL)):
        predicted = adapters.ClassifierAdapter(threshold(), pixel_scale=pixels).predict(clean).argmax(axis=1)
        assert (predicted == digit).all()


def test_a_harmful_denoiser_is_counted_on_every_mnist_c_corruption(bench):
    blank = image_model(layers.Rescaling(0.0))  # erases the digit: the classifier then says 5
    card = scoring.score(threshold(), blank, pixel_scale=255, root=bench.root).card
    assert card["adapter"]["pixel_scale"] == 255.0
    alone, behind = card["defenses"]
    assert alone["clean_accuracy"] == 1.0 and set(alone["accuracy"]["gaussian"].values()) == {1.0}
    assert alone["heldout"]["suite_mean"] == 1.0 and behind["heldout"]["suite_mean"] == 0.0
    assert behind["clean_accuracy"] == 0.0 and behind["rank"]["position"] == 3
    harm = card["do_no_harm"]
    assert harm["harms"] == len(CORRUPTIONS) and sorted(harm["harmed"]) == sorted(CORRUPTIONS)
    assert all(g["gain"] == -1.0 and g["high"] < 0 for g in harm["gains"].values())


def test_logits_and_probabilities_give_the_same_accuracy(bench):
    probabilities, logits = bench.reference, projection("linear")  # the same weights
    images = np.random.default_rng(0).random((8, 28, 28)).astype(np.float32)
    adapted = adapters.ClassifierAdapter(logits, logits=True).predict(images)
    np.testing.assert_allclose(adapted, probabilities.predict(images, verbose=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(adapted.sum(axis=1), 1.0, rtol=1e-6)
    assert not adapters.ClassifierAdapter(logits).looks_like_probabilities(images)
    with_probabilities = scoring.score(probabilities, root=bench.root)
    with_logits = scoring.score(logits, logits=True, root=bench.root)
    pd.testing.assert_series_equal(with_probabilities.scores["accuracy"], with_logits.scores["accuracy"])
    assert with_probabilities.card["defenses"] == with_logits.card["defenses"]
    assert with_logits.card["adapter"]["logits"] is True


def test_logits_without_the_flag_are_warned_about(bench, caplog, monkeypatch):
    class Checked(Exception):
        pass

    def stop(*args, **kwargs):
        raise Checked

    monkeypatch.setattr(scoring, "evaluate_grid", stop)
    with caplog.at_level(logging.WARNING, logger="denoise-bench"), pytest.raises(Checked):
        scoring.score(projection("linear"), root=bench.root)
    assert "pass --logits" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="denoise-bench"), pytest.raises(Checked):
        scoring.score(projection("linear"), logits=True, root=bench.root)
    assert "pass --logits" not in caplog.text


def test_the_command_writes_the_card_and_the_scores(bench, tmp_path, capsys):
    out = tmp_path / "card"
    model = str(bench.files / "threshold.keras")
    argv = ["score", "--classifier", model, "--denoiser", "unet_bn", "--pixels", "255"]
    assert bench_cli.main([*argv, "--out", str(out), "--root", str(bench.root)]) == 0
    card = json.loads((out / "model_card.json").read_text())
    assert card["protocol_version"] == protocol.protocol_version(bench.params)
    assert card["classifier"] == model and card["adapter"]["pixel_scale"] == 255.0
    assert card["denoiser"] == str(bench.root / "models/denoisers/unet_bn.keras")
    assert [d["defense"] for d in card["defenses"]] == ["none + your_classifier", "unet_bn + your_classifier"]
    assert card["do_no_harm"]["defense"] == "unet_bn + your_classifier" and card["do_no_harm"]["harms"] == 0
    assert card["mCE_reference"] == f"none + clean in {bench.root / 'results/heldout/gains.csv'}"
    scores = pd.read_csv(out / "scores.csv")
    committed = pd.read_csv(bench.root / "results/evaluate/scores.csv")
    assert list(scores.columns) == list(committed.columns)
    assert set(scores["denoiser"]) == {"none", "unet_bn"} and (scores["gain"].dropna() == 0).all()
    # right everywhere behind the (identity) denoiser too: the denoiser saw [0, 1], and only the
    # classifier x 255 (scaled first, the clipped images would be near-white: mean pixel <= 1)
    assert (scores["accuracy"] == 1.0).all()
    printed = capsys.readouterr().out
    assert "none + your_classifier: 1.0000, rank 1 of 3" in printed
    assert "unet_bn + your_classifier: 1.0000, rank 1 of 3" in printed
    assert "none + clean" in printed and "<- yours" in printed
    assert str(out / "model_card.json") in printed


MISSING = [
    ("data/noisy/gaussian.npz", "noise", []),
    ("data/heldout.npz", "heldout_grid", []),
    ("data/prepared/mnist.npz", "prepare", []),
    ("results/evaluate/scores.csv", "evaluate", []),
    ("results/heldout/gains.csv", "evaluate_heldout", []),
    ("models/classifiers/clean.keras", "train_classifier", []),
    ("models/denoisers/unet_bn.keras", "train_denoiser@unet_bn", ["--denoiser", "unet_bn"]),
]


@pytest.fixture
def no_scoring(monkeypatch):
    """Every check must fail before any scoring starts."""

    def boom(*args, **kwargs):
        raise AssertionError("scoring started before the checks failed")

    monkeypatch.setattr(scoring, "evaluate_grid", boom)


def run_error(argv, capsys) -> str:
    assert bench_cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    return err


@pytest.mark.parametrize(("path", "stage", "extra"), MISSING)
def test_a_missing_pipeline_file_names_the_file_and_its_stage(
    bench, tmp_path, capsys, no_scoring, path, stage, extra
):
    root = tmp_path / "root"
    shutil.copytree(bench.root, root)
    (root / path).unlink()
    err = run_error(
        ["score", "--classifier", str(bench.files / "constant.keras"), *extra, "--root", str(root)], capsys
    )
    assert str(root / path) in err and f"dvc repro {root / 'dvc.yaml'}:{stage}`" in err


def test_every_missing_file_is_named_at_once(bench, tmp_path, capsys, no_scoring):
    root = tmp_path / "root"
    shutil.copytree(bench.root, root)
    (root / "data/heldout.npz").unlink()
    (root / "results/heldout/gains.csv").unlink()
    err = run_error(
        ["score", "--classifier", str(bench.files / "constant.keras"), "--root", str(root)], capsys
    )
    assert "dvc.yaml:heldout_grid`" in err and "dvc.yaml:evaluate_heldout`" in err


@pytest.mark.parametrize(
    ("model", "denoiser", "expected"),
    [
        ("missing.keras", None, ["missing.keras", "no such file"]),
        ("not_a_model.keras", None, ["not_a_model.keras", "not a Keras model"]),
        ("broken.keras", None, ["broken.keras", "cannot load Keras model"]),
        ("wrong_shape.keras", None, ["wrong_shape.keras", "(32, 32)", "expected (28, 28) or (28, 28, 1)"]),
        ("flat.keras", None, ["flat.keras", "(784,)", "expected (28, 28) or (28, 28, 1)"]),
        ("rgb.keras", None, ["rgb.keras", "(28, 28, 3)", "expected (28, 28) or (28, 28, 1)"]),
        ("wrong_outputs.keras", None, ["wrong_outputs.keras", "(5,)", "expected 10"]),
        ("constant.keras", "wobble", ["unknown denoiser 'wobble'", "unet_bn", "cae", "unet_guided"]),
        ("constant.keras", "not_a_model.keras", ["not_a_model.keras", "not a Keras model"]),
        ("constant.keras", "wrong_outputs.keras", ["wrong_outputs.keras", "the denoiser gives outputs"]),
        ("constant.keras", "missing.keras", ["missing.keras", "no such file"]),
    ],
)
def test_a_bad_model_or_name_is_a_one_line_error(bench, capsys, no_scoring, model, denoiser, expected):
    argv = ["score", "--classifier", str(bench.files / model), "--root", str(bench.root)]
    if denoiser is not None:
        argv += ["--denoiser", denoiser if denoiser == "wobble" else str(bench.files / denoiser)]
    err = run_error(argv, capsys)
    for part in expected:
        assert part in err


def test_stale_committed_results_are_refused(bench, tmp_path, capsys, no_scoring):
    root = tmp_path / "root"
    shutil.copytree(bench.root, root)
    gains = pd.read_csv(root / "results/heldout/gains.csv")
    gains.assign(n_images=gains["n_images"] + 1).to_csv(root / "results/heldout/gains.csv", index=False)
    err = run_error(
        ["score", "--classifier", str(bench.files / "constant.keras"), "--root", str(root)], capsys
    )
    assert "results/heldout/gains.csv" in err and "dvc.yaml:evaluate_heldout`" in err


def test_the_protocol_version_follows_the_noise_source_and_params(tmp_path):
    sources = {}
    for module in protocol.PROTOCOL_MODULES:
        sources[module] = tmp_path / protocol.module_source(module).name
        shutil.copy(protocol.module_source(module), sources[module])
    raw = tiny_raw_params()
    base = protocol.protocol_version(parse_params(raw), sources)
    assert len(base) == 12 and base == protocol.protocol_version(parse_params(tiny_raw_params()), sources)
    assert base == protocol.protocol_version(parse_params(raw))  # the installed sources: the same text
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.copy(sources["pipeline.noise"], moved / "noise.py")
    assert (
        protocol.protocol_version(parse_params(raw), {**sources, "pipeline.noise": moved / "noise.py"})
        == base
    )

    def changed(edit) -> str:
        copy = tiny_raw_params()
        edit(copy)
        return protocol.protocol_version(parse_params(copy), sources)

    assert changed(lambda r: r["noise"]["gaussian"].append(0.7)) != base
    assert changed(lambda r: r.update(seed=r["seed"] + 1)) != base
    assert changed(lambda r: r["evaluate"]["noise_test_sizes"].update(salt_pepper=N_SALT + 1)) != base
    assert changed(lambda r: r["heldout"].update(test_size=N_SUITE + 1)) != base
    # what does not change the scored images or the contract leaves it alone
    assert changed(lambda r: r["evaluate"].update(batch_size=7)) == base
    assert changed(lambda r: r["classifiers"]["clean"].update(dropout=0.1)) == base
    source = sources["pipeline.noise"]
    source.write_text(source.read_text() + "\n# a changed recipe\n")
    assert protocol.protocol_version(parse_params(raw), sources) != base


def test_the_protocol_sections_are_the_named_params_sections(bench):
    sections = protocol.protocol_sections(bench.params)
    assert list(sections) == list(protocol.PROTOCOL_SECTIONS)
    assert sections["evaluate.noise_test_sizes"] == {"salt_pepper": N_SALT}
    assert sections["heldout"]["corruptions"] == CORRUPTIONS


def test_scoring_reads_the_pipeline_files_its_dvc_yaml_declares(bench, tmp_path, capsys, no_scoring):
    """--root is a pipeline folder; its dvc.yaml's paths say where the files are (Fashion-MNIST's
    prepared data is data/prepared/fashion_mnist.npz)."""
    root = tmp_path / "fashion"
    shutil.copytree(bench.root, root)
    (root / "dvc.yaml").write_text((ROOT / "fashion/dvc.yaml").read_text())
    err = run_error(
        ["score", "--classifier", str(bench.files / "constant.keras"), "--root", str(root)], capsys
    )
    assert str(root / "data/prepared/fashion_mnist.npz") in err and "dvc.yaml:prepare`" in err
    (root / "dvc.yaml").write_text("stages: {}\n")
    err = run_error(
        ["score", "--classifier", str(bench.files / "constant.keras"), "--root", str(root)], capsys
    )
    assert str(root / "dvc.yaml") in err and "paths" in err
