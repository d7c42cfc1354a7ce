"""Noise recipes: contracts shared by every type, then per-type statistics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from skimage.filters import gaussian as skimage_gaussian

from pipeline.noise import (
    NOISE_TYPES,
    check_level,
    corrupt,
    corrupt_mix,
    grid_seed,
    noisy_grid,
)

SHAPE = (64, 28, 28)  # 50k pixels: sampling error of the statistics below is well under 1%


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def constant(value: float, shape=SHAPE) -> np.ndarray:
    return np.full(shape, value, dtype=np.float32)


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(123).random((4, 28, 28)).astype(np.float32)


# --- contracts every recipe honours -------------------------------------------------------


@pytest.mark.parametrize("kind", NOISE_TYPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_float32_same_shape_in_unit_range(kind, dtype, images):
    out = corrupt(images.astype(dtype), kind, 0.3, rng())
    assert out.dtype == np.float32
    assert out.shape == images.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not np.array_equal(out, images)  # level 0.3 really corrupts


@pytest.mark.parametrize("kind", NOISE_TYPES)
def test_level_zero_returns_an_unchanged_copy(kind, images):
    out = corrupt(images, kind, 0, rng())
    np.testing.assert_array_equal(out, images)
    assert out.dtype == np.float32
    assert out is not images and not np.shares_memory(out, images)
    out[0, 0, 0] = 7.0
    assert images[0, 0, 0] != 7.0


@pytest.mark.parametrize("kind", NOISE_TYPES)
def test_input_is_not_modified(kind, images):
    before = images.copy()
    corrupt(images, kind, 0.5, rng())
    np.testing.assert_array_equal(images, before)


@pytest.mark.parametrize("kind", NOISE_TYPES)
def test_same_seed_is_bit_identical_and_other_seed_differs(kind, images):
    first = corrupt(images, kind, 0.3, rng(5))
    again = corrupt(images, kind, 0.3, rng(5))
    other = corrupt(images, kind, 0.3, rng(6))
    assert first.tobytes() == again.tobytes()
    assert not np.array_equal(first, other)


# --- per-type statistics ------------------------------------------------------------------


def test_gaussian_std_matches_sigma():
    out = corrupt(constant(0.5), "gaussian", 0.1, rng())
    assert out.std() == pytest.approx(0.1, rel=0.02)
    assert out.mean() == pytest.approx(0.5, abs=0.002)


def test_gaussian_std_scales_with_level():
    stds = [corrupt(constant(0.5), "gaussian", s, rng()).std() for s in (0.02, 0.05, 0.1)]
    np.testing.assert_allclose(stds, [0.02, 0.05, 0.1], rtol=0.02)


def test_gaussian_is_clipped_at_zero():
    sigma = 0.2
    out = corrupt(constant(0.0), "gaussian", sigma, rng())
    # E[max(0, N(0, s))] = s / sqrt(2 pi); half of the draws are negative and clip to 0.
    assert out.mean() == pytest.approx(sigma / np.sqrt(2 * np.pi), rel=0.03)
    assert (out == 0).mean() == pytest.approx(0.5, abs=0.01)
    assert out.min() == 0.0


def test_salt_pepper_changes_amount_fraction_half_salt_half_pepper():
    amount = 0.2
    out = corrupt(constant(0.5), "salt_pepper", amount, rng())
    assert set(np.unique(out)) <= {0.0, 0.5, 1.0}
    changed = out != 0.5
    assert changed.mean() == pytest.approx(amount, abs=0.005)
    assert (out[changed] == 0).mean() == pytest.approx(0.5, abs=0.02)
    assert (out[changed] == 1).mean() == pytest.approx(0.5, abs=0.02)


def test_salt_pepper_full_amount_changes_every_pixel():
    out = corrupt(constant(0.5), "salt_pepper", 1.0, rng())
    assert set(np.unique(out)) == {0.0, 1.0}


def test_speckle_std_is_multiplicative():
    c, sigma = 0.4, 0.2  # c * (1 + N(0, 0.2)) stays inside [0, 1]: no clipping
    out = corrupt(constant(c), "speckle", sigma, rng())
    assert out.std() == pytest.approx(c * sigma, rel=0.02)
    assert out.mean() == pytest.approx(c, abs=0.002)


def test_speckle_leaves_zero_pixels_zero(images):
    images = images.copy()
    images[:, ::2] = 0.0
    out = corrupt(images, "speckle", 1.0, rng())
    assert np.all(out[:, ::2] == 0.0)
    assert np.all(out[:, 1::2] != images[:, 1::2])


def test_poisson_mean_preserved_and_std_is_shot_noise():
    level, x = 0.1, 0.25  # peak 100 photons; x = 0.25 is 15 std below the clip at 1
    peak = 1 / level**2
    out = corrupt(constant(x), "poisson", level, rng())
    assert out.mean() == pytest.approx(x, rel=0.01)
    # std of Poisson(x * peak) / peak = sqrt(x) * level
    assert out.std() == pytest.approx(np.sqrt(x) * level, rel=0.03)
    # values are whole photon counts over the peak
    counts = out.astype(np.float64) * peak
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-3)


def test_poisson_std_scales_with_level():
    x = 0.25
    for level in (0.05, 0.1, 0.2):
        out = corrupt(constant(x), "poisson", level, rng())
        assert out.std() == pytest.approx(np.sqrt(x) * level, rel=0.03), level


def test_poisson_at_intensity_one_is_clipped():
    # Unclipped, the std at x = 1 would equal the level; the clip to [0, 1] removes every draw above
    # the mean, so the result is min(Poisson(peak), peak) / peak.
    level = 0.1
    peak = round(1 / level**2)
    out = corrupt(constant(1.0), "poisson", level, rng())
    expected_at_one = stats.poisson.sf(peak - 1, peak)  # P(Y >= peak)
    assert (out == 1.0).mean() == pytest.approx(expected_at_one, abs=0.01)
    k = np.arange(0, 3 * peak)
    expected_mean = np.sum(np.minimum(k, peak) * stats.poisson.pmf(k, peak)) / peak
    assert out.mean() == pytest.approx(expected_mean, abs=0.002)
    assert out.std() < level


def checkerboard(low=0.3, high=0.7, n=8) -> np.ndarray:
    i, j = np.indices((28, 28))
    board = np.where((i + j) % 2 == 0, high, low).astype(np.float32)
    return np.repeat(board[None], n, axis=0)


def nyquist_energy(images: np.ndarray) -> float:
    """Mean magnitude of the highest 2-D frequency, where a checkerboard lives."""
    return float(np.abs(np.fft.fft2(images)[:, 14, 14]).mean())


def test_blur_removes_high_frequencies():
    board = checkerboard()
    clean = nyquist_energy(board)
    assert clean == pytest.approx(28 * 28 * 0.2, rel=1e-5)
    half = nyquist_energy(corrupt(board, "blur", 0.5, rng()))
    full = nyquist_energy(corrupt(board, "blur", 1.0, rng()))
    assert half < 0.05 * clean
    assert full < 0.05 * clean


@pytest.mark.parametrize("level", [0.25, 0.5, 0.8])
def test_blur_noise_is_uniform_within_half_level_of_skimage_blur(level):
    board = checkerboard()  # blurred values stay in [0.3, 0.7]; +-0.4 would clip only at 0.8
    out = corrupt(board, "blur", level, rng())
    sigma = 1.5 * level  # documented: Gaussian blur of sigma 1.5*level px
    blurred = skimage_gaussian(board, sigma=(0, sigma, sigma), preserve_range=True)
    half_width = 0.5 * level  # documented: uniform noise in +-0.5*level
    residual = np.clip(out, 0, 1) - np.clip(blurred, 0, 1)
    inside = (blurred > half_width) & (blurred < 1 - half_width)
    assert np.abs(residual).max() <= half_width + 1e-6
    assert np.abs(residual[inside]).max() == pytest.approx(half_width, rel=0.01)
    assert residual[inside].std() == pytest.approx(half_width / np.sqrt(3), rel=0.03)
    assert residual[inside].mean() == pytest.approx(0.0, abs=0.01 * half_width)
    # the blur itself happened: the sharp board plus +-half_width noise cannot explain the result
    assert np.abs(out - board).max() > half_width + 0.02


# --- check_level ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "level", "message"),
    [
        ("rain", 0.1, "unknown noise type 'rain'"),
        ("gaussian", -0.1, "gaussian: level -0.1 must be >= 0"),
        ("gaussian", float("nan"), "gaussian: level nan must be a finite number"),
        ("poisson", float("inf"), "poisson: level inf must be a finite number"),
        ("speckle", "0.1", "must be a number"),
        ("blur", True, "must be a number"),
        ("salt_pepper", 1.5, "salt_pepper: level 1.5 must be <= 1.0"),
    ],
)
def test_check_level_rejects(kind, level, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        check_level(kind, level)
    with pytest.raises(ValueError):
        corrupt(np.zeros((1, 28, 28), np.float32), kind, level, rng())


@pytest.mark.parametrize(("kind", "level"), [("salt_pepper", 1.0), ("gaussian", 0), ("gaussian", 5.0)])
def test_check_level_accepts(kind, level):
    check_level(kind, level)


def test_check_level_accepts_numpy_scalars():
    check_level("gaussian", np.float32(0.1))
    check_level("gaussian", np.int64(0))


# --- noisy_grid ----------------------------------------------------------------------------


def test_noisy_grid_shape_and_level_zero(images):
    grid = noisy_grid(images, "gaussian", [0.0, 0.1, 0.5], seed=1)
    assert grid.shape == (3, *images.shape)
    assert grid.dtype == np.float32
    np.testing.assert_array_equal(grid[0], images)
    # stronger levels move further from the clean images
    errors = [np.abs(grid[i] - images).mean() for i in range(3)]
    assert errors[0] == 0 < errors[1] < errors[2]


def test_noisy_grid_is_deterministic_and_seeded(images):
    first = noisy_grid(images, "speckle", [0.2, 0.4], seed=1)
    again = noisy_grid(images, "speckle", [0.2, 0.4], seed=1)
    other = noisy_grid(images, "speckle", [0.2, 0.4], seed=2)
    assert first.tobytes() == again.tobytes()
    assert not np.array_equal(first[0], other[0]) and not np.array_equal(first[1], other[1])


def test_noisy_grid_adding_a_level_leaves_other_levels_bit_identical(images):
    small = noisy_grid(images, "salt_pepper", [0.1, 0.3], seed=4)
    large = noisy_grid(images, "salt_pepper", [0.05, 0.1, 0.2, 0.3], seed=4)
    assert small[0].tobytes() == large[1].tobytes()
    assert small[1].tobytes() == large[3].tobytes()
    reordered = noisy_grid(images, "salt_pepper", [0.3, 0.1], seed=4)
    assert reordered[0].tobytes() == small[1].tobytes()


def test_grid_seed_depends_on_seed_kind_and_level():
    def state(*args):
        return tuple(grid_seed(*args).generate_state(4))

    assert state(1, "gaussian", 0.1) == state(1, "gaussian", 0.1)
    assert len({state(1, "gaussian", 0.1), state(2, "gaussian", 0.1), state(1, "speckle", 0.1)}) == 3
    assert state(1, "gaussian", 0.1) != state(1, "gaussian", 0.2)


# --- corrupt_mix ---------------------------------------------------------------------------

MIX = {"gaussian": [0.1], "salt_pepper": [0.3]}


def test_corrupt_mix_is_deterministic_per_seed():
    clean = constant(0.5, (40, 28, 28))
    first = corrupt_mix(clean, MIX, rng(3))
    again = corrupt_mix(clean, MIX, rng(3))
    other = corrupt_mix(clean, MIX, rng(4))
    assert first.dtype == np.float32 and first.shape == clean.shape
    assert first.tobytes() == again.tobytes()
    assert not np.array_equal(first, other)
    np.testing.assert_array_equal(clean, 0.5)  # input untouched


def test_corrupt_mix_clean_fraction_one_leaves_images_unchanged(images):
    out = corrupt_mix(images, MIX, rng(), clean_fraction=1.0)
    np.testing.assert_array_equal(out, images)
    assert not np.shares_memory(out, images)


def test_corrupt_mix_clean_fraction_zero_changes_every_image(images):
    out = corrupt_mix(images, {"gaussian": [0.2]}, rng(), clean_fraction=0.0)
    changed = np.any(out != images, axis=(1, 2))
    assert changed.all()


def test_corrupt_mix_clean_fraction_half_leaves_about_half_clean():
    clean = constant(0.5, (400, 28, 28))
    out = corrupt_mix(clean, {"gaussian": [0.2]}, rng(), clean_fraction=0.5)
    unchanged = np.all(out == clean, axis=(1, 2)).mean()
    assert unchanged == pytest.approx(0.5, abs=0.08)


def test_corrupt_mix_draws_both_types():
    clean = constant(0.5, (40, 28, 28))
    out = corrupt_mix(clean, MIX, rng(0))
    # salt & pepper images hold only 0, 0.5 and 1; gaussian images hold values in between
    is_sp = np.all(np.isin(out, [0.0, 0.5, 1.0]), axis=(1, 2))
    has_extremes = np.any((out == 0) | (out == 1), axis=(1, 2))
    assert 10 <= is_sp.sum() <= 30
    assert np.all(has_extremes[is_sp])
    gaussian = out[~is_sp]
    assert gaussian.std() == pytest.approx(0.1, rel=0.05)


def test_corrupt_mix_draws_every_level_of_a_type():
    clean = constant(0.5, (60, 28, 28))
    out = corrupt_mix(clean, {"gaussian": [0.02, 0.2]}, rng(1))
    stds = out.std(axis=(1, 2))
    weak, strong = stds < 0.05, stds > 0.15
    assert np.all(weak | strong)
    assert weak.sum() >= 15 and strong.sum() >= 15


def _gaussian_share(out: np.ndarray) -> float:
    """The share of a MIX draw's images that are Gaussian (salt & pepper hold only 0, 0.5, 1)."""
    return 1 - np.all(np.isin(out, [0.0, 0.5, 1.0]), axis=(1, 2)).mean()


def test_corrupt_mix_type_weights_set_the_odds_of_each_type():
    clean = constant(0.5, (2000, 28, 28))
    assert _gaussian_share(corrupt_mix(clean, MIX, rng(5))) == pytest.approx(0.5, abs=0.04)
    heavy = corrupt_mix(clean, MIX, rng(5), type_weights={"gaussian": 3.0})
    assert _gaussian_share(heavy) == pytest.approx(0.75, abs=0.04)
    # a type the weights do not name weighs 1
    light = corrupt_mix(clean, MIX, rng(5), type_weights={"salt_pepper": 3.0})
    assert _gaussian_share(light) == pytest.approx(0.25, abs=0.04)


def test_corrupt_mix_equal_type_weights_draw_as_uniform():
    clean = constant(0.5, (40, 28, 28))
    uniform = corrupt_mix(clean, MIX, rng(3))
    for weights in ({"gaussian": 2.0, "salt_pepper": 2.0}, {"gaussian": 1.0}, {}):
        assert corrupt_mix(clean, MIX, rng(3), type_weights=weights).tobytes() == uniform.tobytes()


def test_corrupt_mix_rejects_nonpositive_type_weights():
    with pytest.raises(ValueError, match="type_weights must be positive"):
        corrupt_mix(constant(0.5, (4, 28, 28)), MIX, rng(), type_weights={"gaussian": 0.0})
