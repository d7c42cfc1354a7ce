"""Classical filters (contracts, strength search, tone correction) and the LMMSE estimator."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from skimage.draw import line_aa
from skimage.filters import gaussian

from pipeline.classical import (
    FILTERS,
    FilterFit,
    Lmmse,
    apply_filter,
    denoise_fitted,
    fit_filter,
    fit_lmmse,
)
from pipeline.noise import corrupt

NAMES = ["median", "gaussian", "tv", "wavelet", "nl_means", "bm3d"]


def digits(n: int, seed: int = 0) -> np.ndarray:
    """Digit-like float32 images: three soft strokes on a black 28x28 background."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), dtype=np.float32)
    for image in images:
        for _ in range(3):
            rr, cc, value = line_aa(*rng.integers(5, 23, size=4))
            image[rr, cc] = np.maximum(image[rr, cc], value)
    return np.clip(2.5 * gaussian(images, sigma=(0, 0.7, 0.7)), 0, 1).astype(np.float32)


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b) ** 2))


@pytest.fixture
def n_images(request, monkeypatch) -> int:
    """Images per batch for the filter under test; bm3d (~1 s an image) gets 2 and a 2-point grid."""
    name = request.node.callspec.params["name"]
    if name != "bm3d":
        return 8
    pytest.importorskip("bm3d")
    monkeypatch.setitem(FILTERS, "bm3d", dataclasses.replace(FILTERS["bm3d"], strengths=(0.0, 0.2)))
    return 2


def test_registry():
    assert list(FILTERS) == NAMES
    for name, spec in FILTERS.items():
        assert spec.name == name
        assert 0.0 in spec.strengths and len(spec.strengths) >= 3
        assert spec.per_image == (name not in ("median", "gaussian"))


@pytest.mark.parametrize("name", NAMES)
def test_filter_contract(name, n_images):
    noisy = corrupt(digits(n_images), "gaussian", 0.3, np.random.default_rng(1))
    strength = FILTERS[name].strengths[len(FILTERS[name].strengths) // 2]
    out = apply_filter(name, noisy, strength)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    assert mse(out, noisy) > 1e-4  # the filter changed something


@pytest.mark.parametrize("name", NAMES[:5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_strength_zero_is_a_copy(name, dtype):
    images = corrupt(digits(4), "gaussian", 0.3, np.random.default_rng(2)).astype(dtype)
    out = apply_filter(name, images, 0.0)
    assert out.dtype == np.float32 and np.array_equal(out, images.astype(np.float32))
    out[:] = 0
    assert images.any()  # a copy, not a view


@pytest.mark.parametrize("name", NAMES)
def test_fitted_filter_beats_noisy_input_on_held_out_images(name, n_images):
    rng = np.random.default_rng(3)
    clean_fit, clean_test = digits(2 * n_images, seed=4)[:n_images], digits(n_images, seed=5)
    fit = fit_filter(name, corrupt(clean_fit, "gaussian", 0.2, rng), clean_fit)
    noisy = corrupt(clean_test, "gaussian", 0.2, rng)
    restored = denoise_fitted(fit, noisy)
    assert fit.strength > 0  # the filter itself helps, not only the tone correction
    assert restored.dtype == np.float32 and restored.min() >= 0 and restored.max() <= 1
    assert mse(restored, clean_test) < 0.6 * mse(noisy, clean_test)
    assert math.isfinite(fit.val_psnr) and fit.val_psnr > 10 * np.log10(1 / mse(noisy, clean_test))


@pytest.mark.parametrize("name", NAMES)
def test_fit_on_clean_pairs_keeps_the_identity(name, n_images):
    clean = digits(n_images, seed=6)
    fit = fit_filter(name, clean, clean)
    assert fit.strength == 0.0
    assert fit.gain == pytest.approx(1.0, abs=1e-9) and fit.offset == pytest.approx(0.0, abs=1e-9)
    assert np.allclose(denoise_fitted(fit, clean), clean, atol=1e-6)


def test_tone_correction_removes_a_known_affine_distortion():
    clean = digits(8, seed=7)
    fit = fit_filter("median", 0.5 * clean + 0.2, clean)
    assert (fit.strength, fit.gain, fit.offset) == pytest.approx((0.0, 2.0, -0.4), abs=1e-5)


def test_workers_give_identical_results():
    noisy = corrupt(digits(7, seed=8), "gaussian", 0.3, np.random.default_rng(9))
    serial = apply_filter("nl_means", noisy, 1.0)
    assert np.array_equal(apply_filter("nl_means", noisy, 1.0, workers=2), serial)
    assert fit_filter("tv", noisy, digits(7, seed=8), workers=2) == fit_filter("tv", noisy, digits(7, seed=8))


def test_worker_pool_is_started_once_per_process():
    from pipeline.classical import _worker_pool

    noisy = corrupt(digits(4, seed=3), "gaussian", 0.3, np.random.default_rng(4))
    apply_filter("tv", noisy, 0.1, workers=2)
    pool = _worker_pool(2)
    apply_filter("tv", noisy, 0.2, workers=2)
    assert _worker_pool(2) is pool


def test_unknown_filter_and_bad_strength_are_rejected():
    images = digits(2)
    for call in (lambda: apply_filter("sharpen", images, 1.0), lambda: fit_filter("sharpen", images, images)):
        with pytest.raises(ValueError, match=r"'sharpen'.*median"):
            call()
    with pytest.raises(ValueError, match="strength"):
        apply_filter("gaussian", images, -1.0)
    with pytest.raises(ValueError, match="shape"):
        apply_filter("gaussian", images[0], 1.0)


def test_filter_fit_dict_round_trip():
    for fit in (FilterFit("tv", 0.1, 1.2, -0.1, 25.5), FilterFit("median", 0.0, 1.0, 0.0, math.inf)):
        d = fit.to_dict()
        assert FilterFit.from_dict(d) == fit
        assert all(v is None or math.isfinite(v) for v in d.values() if not isinstance(v, str))


# --- LMMSE ------------------------------------------------------------------------------------


def test_lmmse_matches_the_wiener_formula():
    """y = A x + n with x ~ N(mu, Sx), n ~ N(0, s^2 I): weights -> (A Sx A' + s^2 I)^-1 A Sx."""
    rng = np.random.default_rng(10)
    d, n, s = 9, 200_000, 0.5
    root = rng.normal(size=(d, d)) / 3
    sx, mu = root @ root.T + 0.1 * np.eye(d), rng.uniform(0.2, 0.8, size=d)
    a = np.eye(d) + 0.5 * np.eye(d, k=1)  # a non-symmetric blur, so the orientation of the weights matters
    x = rng.multivariate_normal(mu, sx, size=n)
    y = x @ a.T + rng.normal(0, s, size=(n, d))
    estimator = fit_lmmse(y.reshape(n, 3, 3), x.reshape(n, 3, 3))
    expected = np.linalg.solve(a @ sx @ a.T + s**2 * np.eye(d), a @ sx)
    assert estimator.weights.shape == (d, d) and estimator.weights.dtype == np.float32
    np.testing.assert_allclose(estimator.weights, expected, atol=0.02)
    np.testing.assert_allclose(estimator.mean_noisy, a @ mu, atol=0.01)
    np.testing.assert_allclose(estimator.mean_clean, mu, atol=0.01)


def test_lmmse_denoises_held_out_digits():
    rng = np.random.default_rng(11)
    train, test = digits(1500, seed=12), digits(50, seed=13)
    estimator = fit_lmmse(corrupt(train, "gaussian", 0.3, rng), train)
    noisy = corrupt(test, "gaussian", 0.3, rng)
    restored = estimator.apply(noisy, batch_size=16)
    assert restored.shape == noisy.shape and restored.dtype == np.float32
    assert restored.min() >= 0 and restored.max() <= 1
    assert mse(restored, test) < 0.5 * mse(noisy, test)


def test_lmmse_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(14)
    estimator = Lmmse(
        rng.random(784, dtype=np.float32),
        rng.random(784, dtype=np.float32),
        rng.normal(size=(784, 784)).astype(np.float32),
    )
    path = tmp_path / "lmmse.npz"
    estimator.save(path)
    loaded = Lmmse.load(path)
    for field in ("mean_noisy", "mean_clean", "weights"):
        assert np.array_equal(getattr(loaded, field), getattr(estimator, field))
    images = digits(3)
    assert np.array_equal(loaded.apply(images), estimator.apply(images))
    with pytest.raises(ValueError, match="missing.npz"):
        Lmmse.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "bad.npz", mean_noisy=np.zeros(4), mean_clean=np.zeros(4), weights=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="bad.npz"):
        Lmmse.load(tmp_path / "bad.npz")
