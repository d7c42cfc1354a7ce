"""Held-out MNIST-C-style corruptions: contracts shared by all, then each one's documented effect."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pipeline.corruptions import (
    CORRUPTIONS,
    DETERMINISTIC,
    GEOMETRIC,
    HELDOUT_STREAM,
    IMPULSE_AMOUNT,
    MOTION_SIGMA,
    NEAR_SEEN,
    ROTATE,
    SCALE,
    SHEAR,
    SHOT_PHOTONS,
    SPATTER_GREY,
    TRANSLATE,
    corrupt_heldout,
    heldout_grid,
    heldout_seed,
)
from pipeline.noise import grid_seed

MNIST_C = (
    "shot_noise",
    "impulse_noise",
    "glass_blur",
    "motion_blur",
    "shear",
    "scale",
    "rotate",
    "brightness",
    "translate",
    "stripe",
    "fog",
    "spatter",
    "dotted_line",
    "zigzag",
    "canny_edges",
)
RANDOM = [name for name in MNIST_C if name not in DETERMINISTIC]
ROWS, COLS = np.mgrid[0:28, 0:28]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def blank(n: int = 1) -> np.ndarray:
    return np.zeros((n, 28, 28), dtype=np.float32)


def cross() -> np.ndarray:
    image = blank()[0]
    image[5:23, 13:15] = 1.0
    image[13:15, 5:23] = 1.0
    return image


def bar(rows=slice(6, 9), cols=slice(5, 23)) -> np.ndarray:
    image = blank()[0]
    image[rows, cols] = 1.0
    return image


def digits() -> np.ndarray:
    """Eight digit-like images on black: crosses, bars, a box, a grey blob."""
    box = blank()[0]
    box[6:22, 8:20] = 0.9
    box[9:19, 11:17] = 0.0
    blob = blank()[0]
    blob[10:18, 10:18] = 0.6
    images = [cross(), bar(), bar(slice(5, 23), slice(12, 15)), box, blob, cross() * 0.8, bar().T, cross()]
    return np.stack(images).astype(np.float32)


def repeat(image: np.ndarray, n: int = 16) -> np.ndarray:
    return np.repeat(image[None], n, axis=0).astype(np.float32)


def centroid(image: np.ndarray) -> np.ndarray:
    """(row, col) centre of mass."""
    mass = image.sum()
    return np.array([(image * ROWS).sum() / mass, (image * COLS).sum() / mass])


# --- contracts every corruption honours ---------------------------------------------------------


def test_registry_has_exactly_the_fifteen_mnist_c_corruptions():
    assert list(CORRUPTIONS) == list(MNIST_C)
    assert set(NEAR_SEEN) <= set(CORRUPTIONS) and set(GEOMETRIC) <= set(CORRUPTIONS)
    assert set(DETERMINISTIC) <= set(CORRUPTIONS)
    assert NEAR_SEEN == ("impulse_noise", "shot_noise")
    assert GEOMETRIC == ("shear", "rotate", "scale", "translate")


@pytest.mark.parametrize("name", MNIST_C)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_float32_same_shape_in_unit_range_and_corrupted(name, dtype):
    images = digits().astype(dtype)
    out = corrupt_heldout(images, name, rng())
    assert out.dtype == np.float32
    assert out.shape == images.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not np.array_equal(out, images)


@pytest.mark.parametrize("name", MNIST_C)
def test_same_seed_same_output_and_input_untouched(name):
    images = digits()
    before = images.copy()
    first = corrupt_heldout(images, name, rng(5))
    np.testing.assert_array_equal(first, corrupt_heldout(images, name, rng(5)))
    np.testing.assert_array_equal(images, before)


@pytest.mark.parametrize("name", RANDOM)
def test_another_seed_gives_other_draws(name):
    images = digits()
    assert not np.array_equal(corrupt_heldout(images, name, rng(0)), corrupt_heldout(images, name, rng(1)))


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_corruptions_ignore_the_seed(name):
    images = digits()
    np.testing.assert_array_equal(
        corrupt_heldout(images, name, rng(0)), corrupt_heldout(images, name, rng(1))
    )


def test_unknown_name_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="unknown corruption 'snow'") as error:
        corrupt_heldout(digits(), "snow", rng())
    for name in MNIST_C:
        assert name in str(error.value)


@pytest.mark.parametrize(
    "images",
    [
        np.zeros((2, 32, 32), dtype=np.float32),  # not 28 x 28
        np.zeros((28, 28), dtype=np.float32),  # no batch axis
        np.full((2, 28, 28), 1.5, dtype=np.float32),  # above 1
        np.full((2, 28, 28), -0.1, dtype=np.float32),  # below 0
        np.full((2, 28, 28), np.nan, dtype=np.float32),
    ],
)
def test_bad_images_are_refused(images):
    with pytest.raises(ValueError, match="images must"):
        corrupt_heldout(images, "rotate", rng())


def test_an_empty_batch_gives_an_empty_batch():
    out = corrupt_heldout(blank(0), "fog", rng())
    assert out.shape == (0, 28, 28) and out.dtype == np.float32


# --- noise ------------------------------------------------------------------------------------


def test_shot_noise_is_poisson_with_three_photons_at_full_intensity():
    images = np.full((64, 28, 28), 0.2, dtype=np.float32)
    out = corrupt_heldout(images, "shot_noise", rng())
    counts = out * SHOT_PHOTONS
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-5)  # multiples of 1/3
    k = np.arange(3)
    pmf = stats.poisson.pmf(k, 0.2 * SHOT_PHOTONS)
    expected = (k * pmf).sum() / SHOT_PHOTONS + (1 - pmf.sum())  # counts of 3 and more clip to 1
    assert abs(out.mean() - expected) < 0.01
    assert not np.any(corrupt_heldout(blank(4), "shot_noise", rng()))  # no photons, no noise


def test_impulse_noise_sets_the_stated_fraction_to_salt_or_pepper():
    images = np.full((64, 28, 28), 0.5, dtype=np.float32)
    out = corrupt_heldout(images, "impulse_noise", rng())
    salt, pepper = np.mean(out == 1.0), np.mean(out == 0.0)
    assert abs(salt + pepper - IMPULSE_AMOUNT) < 0.01
    assert abs(salt - pepper) < 0.01
    assert np.all((out == 0) | (out == 1) | (out == 0.5))


# --- blur -------------------------------------------------------------------------------------


def second_moment(image: np.ndarray, axis: int) -> float:
    coords = (ROWS, COLS)[axis]
    mean = (image * coords).sum() / image.sum()
    return float((image * (coords - mean) ** 2).sum() / image.sum())


def test_glass_blur_keeps_mass_local_and_blurs_along_rows_more():
    horizontal = repeat(bar(slice(13, 14), slice(6, 22)))  # 1 px high
    vertical = repeat(bar(slice(6, 22), slice(13, 14)))  # 1 px wide
    h_out = corrupt_heldout(horizontal, "glass_blur", rng())
    v_out = corrupt_heldout(vertical, "glass_blur", rng())
    np.testing.assert_allclose(h_out.sum(axis=(1, 2)), horizontal.sum(axis=(1, 2)), rtol=1e-4)
    assert h_out.max() < 1.0  # blurred
    # Pixel swaps move mass a pixel or so in x and y alike; the Gaussian (axis 0 only, as MNIST-C's
    # multichannel=True call did) spreads it over rows only: the horizontal bar thickens more.
    spread_h = np.mean([second_moment(image, axis=0) for image in h_out])
    spread_v = np.mean([second_moment(image, axis=1) for image in v_out])
    assert spread_h > spread_v + 0.5
    assert h_out[:, 10:17].sum() > 0.9 * h_out.sum()  # most mass stays within 3 rows of the bar


def test_motion_blur_streaks_a_dot_within_45_degrees_of_horizontal():
    dots = blank(32)
    dots[:, 14, 22] = 1.0
    out = corrupt_heldout(dots, "motion_blur", rng())
    weights = np.exp(-(np.arange(21) ** 2) / (2 * MOTION_SIGMA**2))
    weights /= weights.sum()
    np.testing.assert_allclose(out[:, 14, 22], weights[0], rtol=1e-5)  # tap 0 stays on the dot
    np.testing.assert_allclose(out.sum(axis=(1, 2)), 1.0, atol=1e-4)
    angles = []
    for image in out:
        rows, cols = np.nonzero(image > 1e-3)
        assert np.all(cols <= 22)  # the streak trails behind the dot, towards -x
        assert np.all(np.abs(rows - 14) <= np.abs(cols - 22) + 1)  # within 45 degrees (+ rounding)
        d_row, d_col = centroid(image) - (14, 22)
        angles.append(np.arctan2(-d_row, -d_col))
        assert abs(np.hypot(d_row, d_col) - (np.arange(21) * weights).sum()) < 0.3
    angles = np.degrees(angles)
    assert np.all(np.abs(angles) <= 46) and angles.min() < -15 and angles.max() > 15


# --- geometry ---------------------------------------------------------------------------------


def test_rotate_turns_an_off_centre_blob_by_the_stated_angle_either_way():
    blob = blank()[0]
    blob[4:8, 12:16] = 1.0  # centre (5.5, 13.5): 8 px above the image centre
    out = corrupt_heldout(repeat(blob), "rotate", rng())
    turns = []
    for image in out:
        d_row, d_col = centroid(image) - 13.5
        assert abs(np.hypot(d_row, d_col) - 8.0) < 0.2
        turns.append(np.arctan2(d_row, d_col) - np.arctan2(-8.0, 0.0))
    turns = np.array(turns)
    np.testing.assert_allclose(np.abs(turns), ROTATE, atol=0.02)
    assert np.any(turns > 0) and np.any(turns < 0)


def test_shear_tilts_a_vertical_bar_by_sin_of_the_angle_either_way():
    vertical = bar(slice(4, 24), slice(13, 15))  # centred on column 13.5
    out = corrupt_heldout(repeat(vertical), "shear", rng())
    slopes = []
    for image in out:
        rows = np.flatnonzero(image.sum(axis=1) > 1.5)  # rows the bar fully crosses
        cols = (image[rows] * COLS[rows]).sum(axis=1) / image[rows].sum(axis=1)
        slopes.append(np.polyfit(rows, cols, 1)[0])
    slopes = np.array(slopes)
    # skimage <= 0.18 shear (MNIST-C's): slope sin(0.4) = 0.389, not tan(0.4) = 0.423.
    np.testing.assert_allclose(np.abs(slopes), np.sin(SHEAR), atol=0.015)
    assert np.any(slopes > 0) and np.any(slopes < 0)


def test_scale_shrinks_about_the_centre():
    images = np.stack([cross(), bar(slice(4, 24), slice(4, 24)) - bar(slice(8, 20), slice(8, 20))])
    out = corrupt_heldout(images.astype(np.float32), "scale", rng())
    for before, after in zip(images, out, strict=True):
        np.testing.assert_allclose(centroid(after), centroid(before), atol=0.05)
        for axis in (0, 1):
            ratio = np.sqrt(second_moment(after, axis) / second_moment(before, axis))
            assert abs(ratio - SCALE) < 0.03


def test_translate_moves_the_centre_of_mass_three_pixels_on_each_axis():
    images = repeat(cross(), 32)
    out = corrupt_heldout(images, "translate", rng())
    shifts = np.array([centroid(image) - centroid(cross()) for image in out])
    np.testing.assert_allclose(np.abs(shifts), TRANSLATE, atol=1e-4)
    for axis in (0, 1):
        assert np.any(shifts[:, axis] > 0) and np.any(shifts[:, axis] < 0)
    np.testing.assert_allclose(out.sum(axis=(1, 2)), cross().sum())  # nothing falls off


# --- intensity and overlays -------------------------------------------------------------------


def test_brightness_adds_half_and_clips():
    images = digits()
    out = corrupt_heldout(images, "brightness", rng())
    np.testing.assert_allclose(out, np.clip(images + 0.5, 0, 1), atol=1e-6)
    assert out.mean() > images.mean() + 0.3
    assert np.all(out[images == 0] == 0.5)


def test_stripe_inverts_the_outer_columns():
    images = digits()
    out = corrupt_heldout(images, "stripe", rng())
    np.testing.assert_allclose(out[:, :, :7], 1 - images[:, :, :7])
    np.testing.assert_allclose(out[:, :, 21:], 1 - images[:, :, 21:])
    np.testing.assert_array_equal(out[:, :, 7:21], images[:, :, 7:21])
    assert np.all(corrupt_heldout(blank(2), "stripe", rng())[:, :, :7] == 1.0)


def test_fog_lifts_the_background_unevenly_and_keeps_black_images_black():
    images = digits()
    out = corrupt_heldout(images, "fog", rng())
    background = images == 0
    assert 0.1 < out[background].mean() < 0.75
    assert all(image[bg].std() > 0.01 for image, bg in zip(out, background, strict=True))
    peaks = images.max(axis=(1, 2))
    assert np.all(out.max(axis=(1, 2)) <= peaks + 1e-6)  # x * m / (m + 3) <= m
    assert not np.any(corrupt_heldout(blank(2), "fog", rng()))  # m = 0


def test_spatter_lays_grey_mud_over_the_image():
    out = corrupt_heldout(blank(16), "spatter", rng())
    assert out.max() <= SPATTER_GREY + 1e-6
    assert np.mean(out > 0) > 0.01  # mud on the black background
    bright = corrupt_heldout(np.ones((16, 28, 28), dtype=np.float32), "spatter", rng())
    assert bright.min() >= SPATTER_GREY - 1e-6 and np.mean(bright < 1) > 0.01  # and over the strokes
    np.testing.assert_array_equal(out > 0, bright < 1)  # the same mask for the same seed


def test_dotted_line_draws_dashes_on_black():
    out = corrupt_heldout(blank(16), "dotted_line", rng())
    gaps = (np.arange(28) // 2) % 2 == 0
    assert not np.any(out[:, :, gaps]) and not np.any(out[:, :, 27])
    assert np.all(out.max(axis=(1, 2)) > 0.9)  # every image gets a line
    assert np.all((out > 0.5).sum(axis=(1, 2)) >= 13)  # on most of its 13 dash columns


def test_zigzag_draws_a_zigzag_between_columns_2_and_25():
    out = corrupt_heldout(blank(16), "zigzag", rng())
    assert not np.any(out[:, :, :2]) and not np.any(out[:, :, 26:])
    assert np.all(out.max(axis=(1, 2)) > 0.9)
    lit = out > 0.5
    # Near the top or bottom edge part of it leaves the image (as in MNIST-C); most cross it whole.
    across = lit[:, :, 2:26].any(axis=1).sum(axis=1) >= 22
    assert across.mean() >= 0.5
    assert np.all(lit[across].any(axis=2).sum(axis=1) >= 4)  # over several rows: teeth, not a line


def test_canny_edges_outline_a_filled_square():
    square = blank()[0]
    square[8:20, 8:20] = 1.0
    out = corrupt_heldout(square[None], "canny_edges", rng())[0]
    assert set(np.unique(out)) == {0.0, 1.0}
    assert not np.any(out[11:17, 11:17]) and not np.any(out[:5]) and not np.any(out[:, 23:])
    ring = np.zeros_like(out, dtype=bool)
    ring[6:22, 6:22] = True
    ring[10:18, 10:18] = False
    assert out[ring].sum() >= 40 and not np.any(out[~ring])


# --- the grid ---------------------------------------------------------------------------------


def test_grid_stacks_each_corruption_from_its_own_seed():
    images = digits()
    grid = heldout_grid(images, ["rotate", "fog"], seed=3)
    assert grid.shape == (2, *images.shape) and grid.dtype == np.float32
    np.testing.assert_array_equal(grid[1], corrupt_heldout(images, "fog", rng(heldout_seed(3, "fog"))))
    assert not np.array_equal(grid, heldout_grid(images, ["rotate", "fog"], seed=4))


def test_grid_cells_do_not_depend_on_the_other_corruptions():
    images = digits()
    alone = heldout_grid(images, ["zigzag"], seed=0)
    among = heldout_grid(images, ["shot_noise", "zigzag", "spatter", "rotate"], seed=0)
    np.testing.assert_array_equal(alone[0], among[1])
    np.testing.assert_array_equal(heldout_grid(images, ["spatter"], seed=0)[0], among[2])


def test_grid_draws_are_not_the_noise_grids_draws():
    state = heldout_seed(0, "shot_noise").generate_state(4)
    assert heldout_seed(0, "shot_noise").entropy[:2] == [0, HELDOUT_STREAM]
    for stream in (None, 0, 1, 7):
        assert not np.array_equal(state, grid_seed(0, "shot_noise", 0.5, stream).generate_state(4))


def test_empty_name_list_gives_an_empty_grid():
    assert heldout_grid(digits(), [], seed=0).shape == (0, 8, 28, 28)
