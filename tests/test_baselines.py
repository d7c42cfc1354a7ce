"""Classical baselines per grid cell: keys, fitting, save/load, stale files."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.baselines import cell_key, fit_baselines, grid_cells, load_restorers, save_baselines
from pipeline.data import DataError
from pipeline.noise import corrupt
from tests.conftest import tiny_mnist

GRID = {"gaussian": [0.0, 0.3], "blur": [0.0, 0.5]}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    data = tiny_mnist(n_train=300, n_test=20)
    x = data["x_train"].astype(np.float32) / 255
    fits, lmmse = fit_baselines(["lmmse", "median"], GRID, x[:250], x[250:], seed=3)
    path = tmp_path_factory.mktemp("baselines") / "classical.npz"
    save_baselines(path, fits, lmmse)
    return x, fits, lmmse, path


def test_cells_share_the_clean_level():
    assert cell_key("blur", 0) == cell_key("gaussian", 0.0) == "clean@0.0"
    assert cell_key("gaussian", 0.3) == "gaussian@0.3"
    assert grid_cells(GRID) == {
        "clean@0.0": ("gaussian", 0.0),
        "gaussian@0.3": ("gaussian", 0.3),
        "blur@0.5": ("blur", 0.5),
    }


def test_fit_covers_every_cell(fitted):
    _, fits, lmmse, _ = fitted
    assert set(fits) == {"median"}
    assert set(fits["median"]) == set(lmmse) == set(grid_cells(GRID))
    assert fits["median"]["clean@0.0"].strength == 0  # nothing to remove on clean images
    assert fits["median"]["gaussian@0.3"].strength > 0


def test_loaded_restorers_match_the_fits_and_beat_the_noise(fitted):
    x, _, lmmse, path = fitted
    restorers = load_restorers(path, ["lmmse", "median"], GRID)
    held_out = x[250:270]
    noisy = corrupt(held_out, "gaussian", 0.3, np.random.default_rng(9))
    np.testing.assert_allclose(
        restorers["lmmse"](noisy, "gaussian", 0.3), lmmse["gaussian@0.3"].apply(noisy), atol=1e-6
    )
    for name, restore in restorers.items():
        out = restore(noisy, "gaussian", 0.3)
        assert out.shape == noisy.shape and out.dtype == np.float32
        assert np.mean((out - held_out) ** 2) < np.mean((noisy - held_out) ** 2), name


def test_stale_file_fails_before_scoring(fitted):
    *_, path = fitted
    with pytest.raises(DataError, match=r"classical.npz: median has no fit for \['gaussian@0.7'\]"):
        load_restorers(path, ["median"], {"gaussian": [0.0, 0.3, 0.7]})
    with pytest.raises(DataError, match=r"tv has no fit for"):
        load_restorers(path, ["tv"], GRID)
