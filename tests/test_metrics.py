"""Batched PSNR/SSIM must equal scikit-image image by image; accuracy on hand-made cases."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import norm
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pipeline import metrics
from pipeline.metrics import accuracy, intervals_overlap, psnr, ssim


def pair(dtype, n=6, seed=0, shape=(28, 28)):
    rng = np.random.default_rng(seed)
    reference = rng.random((n, *shape))
    # a spread of qualities: from barely to heavily corrupted, plus one structured image
    scale = np.linspace(0.01, 0.5, n)[:, None, None]
    test = np.clip(reference + scale * rng.standard_normal((n, *shape)), 0, 1)
    reference[0] = np.linspace(0, 1, shape[0] * shape[1]).reshape(shape)
    return reference.astype(dtype), test.astype(dtype)


def skimage_psnr(reference, test):
    return np.array(
        [peak_signal_noise_ratio(r, t, data_range=1) for r, t in zip(reference, test, strict=True)]
    )


def skimage_ssim(reference, test):
    return np.array([structural_similarity(r, t, data_range=1) for r, t in zip(reference, test, strict=True)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_psnr_equals_skimage(dtype):
    reference, test = pair(dtype)
    ours = psnr(reference, test)
    assert ours.shape == (6,)
    np.testing.assert_allclose(ours, skimage_psnr(reference, test), rtol=0, atol=1e-6)
    assert np.all(np.diff(ours[1:]) < 0)  # noisier images score lower


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ssim_equals_skimage(dtype):
    reference, test = pair(dtype)
    ours = ssim(reference, test)
    assert ours.shape == (6,)
    np.testing.assert_allclose(ours, skimage_ssim(reference, test), rtol=0, atol=1e-6)
    assert np.all((ours > -1) & (ours < 1))


def test_metrics_equal_skimage_on_mnist_like_images():
    from tests.conftest import tiny_mnist

    clean = tiny_mnist(n_train=8, n_test=1)["x_train"].astype(np.float32) / 255
    rng = np.random.default_rng(1)
    noisy = np.clip(clean + 0.3 * rng.standard_normal(clean.shape), 0, 1).astype(np.float32)
    np.testing.assert_allclose(psnr(clean, noisy), skimage_psnr(clean, noisy), rtol=0, atol=1e-6)
    np.testing.assert_allclose(ssim(clean, noisy), skimage_ssim(clean, noisy), rtol=0, atol=1e-6)


def test_mixed_precision_equals_skimage():
    reference, test = pair(np.float64)
    test = test.astype(np.float32)
    np.testing.assert_allclose(psnr(reference, test), skimage_psnr(reference, test), rtol=0, atol=1e-6)
    np.testing.assert_allclose(ssim(reference, test), skimage_ssim(reference, test), rtol=0, atol=1e-6)


def test_ssim_window_stays_inside_each_image():
    """Images in a batch must not leak into each other: scoring alone equals scoring in a batch."""
    reference, test = pair(np.float32)
    alone = np.array([ssim(reference[i : i + 1], test[i : i + 1])[0] for i in range(len(reference))])
    np.testing.assert_array_equal(ssim(reference, test), alone)


def test_psnr_of_identical_images_is_inf():
    reference, _ = pair(np.float32, n=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divide-by-zero warning leaks out
        out = psnr(reference, reference.copy())
    assert np.all(np.isposinf(out))


@pytest.mark.parametrize("d", [0.1, 0.01, 0.25])
def test_psnr_constant_difference(d):
    reference = np.random.default_rng(0).random((3, 28, 28)) * (1 - d)
    out = psnr(reference, reference + d)
    np.testing.assert_allclose(out, -20 * np.log10(d), rtol=0, atol=1e-6)


def test_psnr_data_range():
    reference = np.zeros((1, 28, 28))
    np.testing.assert_allclose(psnr(reference, reference + 25.5, data_range=255), [20.0], atol=1e-9)


def test_ssim_of_identical_images_is_one():
    reference, _ = pair(np.float32, n=3)
    np.testing.assert_allclose(ssim(reference, reference.copy()), 1.0, rtol=0, atol=1e-6)


def test_ssim_of_inverted_image_is_negative():
    reference, _ = pair(np.float64, n=3)
    assert np.all(ssim(reference[1:], 1 - reference[1:]) < -0.9)


def test_accuracy_on_hand_made_probabilities():
    probabilities = np.array(
        [
            [0.1, 0.7, 0.2],  # predicts 1
            [0.6, 0.3, 0.1],  # predicts 0
            [0.2, 0.2, 0.6],  # predicts 2
            [0.3, 0.4, 0.3],  # predicts 1
        ]
    )
    assert accuracy(probabilities, np.array([1, 0, 2, 1])) == 1.0
    assert accuracy(probabilities, np.array([1, 0, 0, 0])) == 0.5
    assert accuracy(probabilities, np.array([0, 1, 0, 0])) == 0.0
    assert accuracy(probabilities[:3], np.array([1, 2, 2])) == pytest.approx(2 / 3)
    assert isinstance(accuracy(probabilities, np.array([1, 0, 2, 1])), float)


@pytest.mark.parametrize("metric", [psnr, ssim])
@pytest.mark.parametrize(
    ("a", "b"),
    [((2, 28, 28), (3, 28, 28)), ((2, 28, 28), (2, 28, 27)), ((28, 28), (28, 28)), ((1, 2, 28, 28),) * 2],
)
def test_shape_mismatch_raises(metric, a, b):
    with pytest.raises(ValueError, match="expected two \\(N, H, W\\) batches of equal shape"):
        metric(np.zeros(a, np.float32), np.zeros(b, np.float32))


@pytest.mark.parametrize(
    "a, b, expected",
    [((0.1, 0.3), (0.2, 0.4), True), ((0.1, 0.2), (0.2, 0.4), True), ((0.1, 0.2), (0.25, 0.4), False)],
)
def test_intervals_overlap_is_symmetric_and_closed(a, b, expected):
    assert intervals_overlap(a, b) is expected
    assert intervals_overlap(b, a) is expected


def _paired(both: int, only_first: int, only_second: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """Two "correct" vectors with the given counts of a paired 2x2 table."""
    first = np.repeat([True, True, False, False], [both, only_first, only_second, neither])
    second = np.repeat([True, False, True, False], [both, only_first, only_second, neither])
    return first, second


def test_paired_difference_is_the_difference_of_accuracies_and_antisymmetric():
    first, second = _paired(59, 6, 16, 80)
    difference, low, high = metrics.paired_difference(first, second)
    assert difference == pytest.approx(first.mean() - second.mean())
    assert low < difference < high
    swapped = metrics.paired_difference(second, first)
    np.testing.assert_allclose(swapped, (-difference, -high, -low), atol=1e-12)


def test_paired_difference_matches_the_wald_interval_for_large_samples():
    """With 10,000 pairs and 500 disagreements, the score interval is the textbook Wald interval
    of the McNemar difference, (b - c) / n +- 1.96 sqrt((b + c) / n - d^2) / sqrt(n), to 1e-4."""
    n, b, c = 10_000, 300, 200
    _, low, high = metrics.paired_difference(*_paired(9000, b, c, n - 9000 - b - c))
    d = (b - c) / n
    half = norm.ppf(0.975) * np.sqrt((b + c) / n - d**2) / np.sqrt(n)
    assert low == pytest.approx(d - half, abs=1e-4)
    assert high == pytest.approx(d + half, abs=1e-4)


def test_paired_difference_is_much_narrower_than_two_separate_intervals():
    first, second = _paired(9300, 60, 40, 600)  # two classifiers that agree on 99% of images
    _, low, high = metrics.paired_difference(first, second)
    w1 = metrics.wilson_interval(first.sum(), first.size)
    w2 = metrics.wilson_interval(second.sum(), second.size)
    assert high - low < 0.5 * ((w1[1] - w1[0]) + (w2[1] - w2[0])) / 2


def test_paired_difference_covers_the_true_difference_95_percent_of_the_time():
    """Simulated pairs with correlated outcomes: the interval holds the true difference in
    93.5-96.5% of 1,000 draws (nominal 95%)."""
    rng = np.random.default_rng(0)
    probabilities = np.array([0.80, 0.08, 0.04, 0.08])  # both, only first, only second, neither
    true_difference = probabilities[1] - probabilities[2]
    hits = 0
    for _ in range(1000):
        counts = rng.multinomial(300, probabilities)
        _, low, high = metrics.paired_difference(*_paired(*counts))
        hits += low <= true_difference <= high
    assert 935 <= hits <= 965


def test_paired_difference_of_identical_answers_is_zero_inside_a_narrow_interval():
    correct = np.arange(1000) % 10 != 0
    difference, low, high = metrics.paired_difference(correct, correct)
    assert difference == 0.0
    assert -0.005 < low <= 0.0 <= high < 0.005


def test_paired_difference_rejects_mismatched_vectors():
    with pytest.raises(ValueError, match="equal length"):
        metrics.paired_difference(np.ones(3, bool), np.ones(4, bool))
    with pytest.raises(ValueError, match="non-empty"):
        metrics.paired_difference(np.ones(0, bool), np.ones(0, bool))
