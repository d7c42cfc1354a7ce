"""evaluate_grid: rows, shared clean cell, per-denoiser test subsets, restorer arguments."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import metrics
from pipeline.evaluation import NO_DENOISER, evaluate_grid, sample_outputs


class BrightnessClassifier:
    """Predicts digit = round(9 * mean brightness), so accuracy is easy to compute by hand."""

    name = "bright"

    def predict(self, images, batch_size, verbose=0):
        digits = np.clip(np.round(9 * images.reshape(len(images), -1).mean(axis=1)), 0, 9).astype(int)
        return np.eye(10, dtype=np.float32)[digits]


@pytest.fixture
def setup():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=40)
    clean = np.repeat((labels / 9.0).astype(np.float32)[:, None, None], 28, axis=1).repeat(28, axis=2)
    noisy = {
        "gaussian": (np.array([0.0, 0.5]), np.stack([clean, np.clip(clean + 0.3, 0, 1)])),
        "blur": (np.array([0.0, 1.0]), np.stack([clean, clean * 0.5])),
    }
    return clean, labels, noisy


def test_rows_subsets_and_restorer_arguments(setup):
    clean, labels, grids = setup
    calls = []

    def oracle(images, kind, level):  # a non-blind "denoiser" that undoes the corruption exactly
        calls.append((kind, level, len(images)))
        if kind == "gaussian" and level > 0:
            return np.clip(images - 0.3, 0, 1)
        return images / 0.5 if kind == "blur" and level > 0 else images

    scores, confusion, timing = evaluate_grid(
        clean,
        labels,
        grids,
        {"oracle": oracle},
        {"bright": BrightnessClassifier()},
        16,
        confusion_cell=("blur", 1.0),
        test_sizes={"oracle": 10},
    )
    assert len(scores) == 4 * 2
    assert set(scores["denoiser"]) == {NO_DENOISER, "oracle"}
    # level 0 is scored once for all noise types and the oracle only sees its first 10 images
    assert sorted(calls) == [("blur", 1.0, 10), ("gaussian", 0.0, 10), ("gaussian", 0.5, 10)]
    oracle_rows = scores[scores["denoiser"] == "oracle"]
    assert (oracle_rows["n_images"] == 10).all()
    assert (scores.loc[scores["denoiser"] == NO_DENOISER, "n_images"] == 40).all()
    # the blur oracle restores exactly: perfect accuracy and infinite PSNR on its 10 images
    blur = oracle_rows[(oracle_rows["noise"] == "blur") & (oracle_rows["level"] == 1.0)].iloc[0]
    assert blur["accuracy"] == 1.0 and np.isinf(blur["psnr"])
    # without a denoiser, halving brightness keeps only digit 0 right (and 1, which rounds 0.5 up
    # or down depending on float error): accuracy between P(0) and P(0 or 1)
    raw = scores[(scores["denoiser"] == NO_DENOISER) & (scores["noise"] == "blur") & (scores["level"] == 1.0)]
    assert np.mean(labels == 0) <= raw["accuracy"].iloc[0] <= np.mean(labels <= 1)
    assert np.mean(labels <= 1) < 0.5
    assert confusion.groupby("denoiser")["count"].sum().to_dict() == {NO_DENOISER: 40, "oracle": 10}
    # timing: every denoiser is timed and the phases add up to at most the grid's wall time
    assert set(timing["denoise_seconds"]) == {NO_DENOISER, "oracle"}
    phases = sum(timing["denoise_seconds"].values()) + timing["classify_seconds"] + timing["metrics_seconds"]
    assert phases + timing["other_seconds"] == pytest.approx(timing["grid_seconds"], abs=0.05)
    assert 0 <= timing["non_model_fraction"] <= 1


def test_without_image_metrics_the_accuracies_are_the_same(setup):
    clean, labels, grids = setup
    args = (
        clean,
        labels,
        grids,
        {"id": lambda images, kind, level: images},
        {"b": BrightnessClassifier()},
        16,
    )
    full, _, _ = evaluate_grid(*args)
    lean, _, timing = evaluate_grid(*args, image_metrics=False)
    assert "psnr" in full and "psnr" not in lean and "ssim" not in lean
    assert lean["accuracy"].tolist() == full["accuracy"].tolist()
    assert lean["gain"].equals(full["gain"])


def test_noise_test_sizes_subset_the_noisy_levels_of_a_noise_type(setup):
    """A noise type's size applies to its noisy levels only (clean is shared), to every
    denoiser, and the smaller of a denoiser's and a noise type's size wins."""
    clean, labels, grids = setup
    calls = []

    def identity(images, kind, level):
        calls.append((kind, level, len(images)))
        return images

    scores, _, _ = evaluate_grid(
        clean,
        labels,
        grids,
        {"identity": identity, "slow": identity},
        {"bright": BrightnessClassifier()},
        16,
        test_sizes={"slow": 8},
        noise_test_sizes={"blur": 20, "gaussian": None},
    )
    sizes = scores.set_index(["noise", "level", "denoiser"])["n_images"].to_dict()
    assert sizes[("blur", 1.0, NO_DENOISER)] == sizes[("blur", 1.0, "identity")] == 20
    assert sizes[("blur", 0.0, "identity")] == sizes[("gaussian", 0.5, "identity")] == 40
    assert sizes[("blur", 1.0, "slow")] == sizes[("blur", 0.0, "slow")] == 8
    assert sorted(calls) == sorted(
        [("blur", 1.0, 20), ("gaussian", 0.0, 40), ("gaussian", 0.5, 40)]
        + [("blur", 1.0, 8), ("gaussian", 0.0, 8), ("gaussian", 0.5, 8)]
    )
    # the raw blur cell's accuracy is computed on the first 20 images
    raw = scores[(scores["denoiser"] == NO_DENOISER) & (scores["noise"] == "blur") & (scores["level"] == 1.0)]
    predicted = BrightnessClassifier().predict(grids["blur"][1][1], 16).argmax(axis=1)
    assert raw["accuracy"].iloc[0] == pytest.approx(np.mean(predicted[:20] == labels[:20]))


def test_gain_is_paired_with_no_denoiser_on_the_same_images(setup):
    """Each denoiser's gain is its accuracy minus no denoiser's on the same (first n) images with
    the same classifier, with the paired interval; no denoiser's own row has none."""
    clean, labels, grids = setup

    def oracle(images, kind, level):
        return images / 0.5 if kind == "blur" and level > 0 else images

    scores, _, _ = evaluate_grid(
        clean,
        labels,
        grids,
        {"oracle": oracle},
        {"bright": BrightnessClassifier()},
        16,
        test_sizes={"oracle": 10},
    )
    rows = scores.set_index(["noise", "level", "denoiser"])
    gains = ["gain", "gain_low", "gain_high"]
    assert scores.loc[scores["denoiser"] == NO_DENOISER, gains].isna().all().all()
    raw = BrightnessClassifier().predict(grids["blur"][1][1], 16).argmax(axis=1)[:10] == labels[:10]
    blur = rows.loc[("blur", 1.0, "oracle")]
    assert blur["accuracy"] == 1.0
    assert blur["gain"] == pytest.approx(1.0 - raw.mean())  # not 1.0 minus the raw accuracy on all 40
    expected = metrics.paired_difference(np.ones(10, bool), raw)
    np.testing.assert_allclose(blur[gains].to_numpy(float), expected)
    # on clean images the oracle is the identity: the same answers, no gain
    clean_row = rows.loc[("gaussian", 0.0, "oracle")]
    assert clean_row["gain"] == 0.0 and clean_row["gain_low"] <= 0.0 <= clean_row["gain_high"]


def test_sample_outputs_rows(setup):
    clean, _, grids = setup
    rows = sample_outputs(clean[:2], "blur", {1.0: grids["blur"][1][1][:2]}, {"x2": lambda im, k, lv: im * 2})
    assert list(rows) == ["clean", "noisy", "x2"]
    np.testing.assert_array_equal(rows["x2"][1.0], clean[:2])


def test_classifier_denoisers_limits_a_classifier_to_some_denoisers(setup):
    clean, labels, grids = setup
    calls = []

    def counting(name):
        def restorer(images, kind, level):
            calls.append((name, kind, level))
            return images

        return restorer

    scores, _, _ = evaluate_grid(
        clean,
        labels,
        grids,
        {"learned": counting("learned"), "filter": counting("filter")},
        {"bright": BrightnessClassifier(), "rival": BrightnessClassifier()},
        16,
        classifier_denoisers={"rival": ["learned"]},
    )
    pairs = set(zip(scores["denoiser"], scores["classifier"], strict=True))
    assert pairs == {
        (NO_DENOISER, "bright"),
        (NO_DENOISER, "rival"),
        ("learned", "bright"),
        ("learned", "rival"),
        ("filter", "bright"),
    }
    # each denoiser still restores every cell once, whatever the number of classifiers behind it
    assert sorted(calls) == sorted(
        (name, kind, level)
        for name in ("learned", "filter")
        for kind, level in [("gaussian", 0.0), ("gaussian", 0.5), ("blur", 1.0)]
    )
