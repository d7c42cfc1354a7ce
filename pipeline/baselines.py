"""Fit the classical baselines for every noise cell of the evaluation grid, save and reload them.

Classical baselines are *non-blind*: each is fitted per noise type and level (a filter's
strength and tone correction on the validation split, the LMMSE estimator on training pairs),
so they know the noise they face. The learned denoisers are blind. Level 0 (clean images) is one
cell shared by every noise type.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from pipeline.classical import FilterFit, Lmmse, denoise_fitted, fit_filter, fit_lmmse
from pipeline.io import read_npz_arrays, write_npz
from pipeline.noise import corrupt, grid_seed
from pipeline.restorer import Restorer, contracted

log = logging.getLogger(__name__)

CLEAN = "clean"


def cell_key(kind: str, level: float) -> str:
    """``gaussian@0.5``; every level-0 cell is the shared ``clean@0.0``."""
    return f"{CLEAN}@0.0" if level == 0 else f"{kind}@{float(level)}"


def grid_cells(grid: Mapping[str, Sequence[float]]) -> dict[str, tuple[str, float]]:
    """Distinct cells of a noise grid, {key: (kind, level)}."""
    cells = {}
    for kind, levels in grid.items():
        for level in levels:
            cells.setdefault(cell_key(kind, level), (kind, float(level)))
    return cells


def _pairs(images: np.ndarray, kind: str, level: float, seed: int, stream: int) -> np.ndarray:
    """Noisy copies of ``images``, drawn from a child of the cell's seed (never the test draw)."""
    child = grid_seed(seed, kind, level).spawn(2)[stream]
    return corrupt(images, kind, level, np.random.default_rng(child))


def fit_baselines(
    methods: Sequence[str],
    grid: Mapping[str, Sequence[float]],
    x_train: np.ndarray,
    x_val: np.ndarray,
    seed: int,
    workers: int = 1,
) -> tuple[dict[str, dict[str, FilterFit]], dict[str, Lmmse]]:
    """Filters chosen on ``x_val`` pairs and LMMSE fitted on ``x_train`` pairs, per grid cell."""
    filters = [m for m in methods if m != "lmmse"]
    fits: dict[str, dict[str, FilterFit]] = {m: {} for m in filters}
    lmmse: dict[str, Lmmse] = {}
    for key, (kind, level) in tqdm(grid_cells(grid).items(), desc="fit classical", unit="cell"):
        if filters:
            noisy_val = _pairs(x_val, kind, level, seed, stream=0)
            for method in filters:
                fits[method][key] = fit_filter(method, noisy_val, x_val, workers=workers)
                log.info("%s %s: %s", method, key, fits[method][key])
        if "lmmse" in methods:
            lmmse[key] = fit_lmmse(_pairs(x_train, kind, level, seed, stream=1), x_train)
    return fits, lmmse


def save_baselines(path: str | Path, fits: Mapping[str, Mapping[str, FilterFit]], lmmse: Mapping[str, Lmmse]):
    """One npz: the filter fits as JSON plus every LMMSE estimator's arrays."""
    arrays = {"fits": np.array(json.dumps(fits_summary(fits)))}
    for key, estimator in lmmse.items():
        arrays |= {f"lmmse|{key}|{part}": array for part, array in estimator.to_arrays().items()}
    write_npz(path, **arrays)


def fits_summary(fits: Mapping[str, Mapping[str, FilterFit]]) -> dict:
    """JSON-ready table of the chosen strength, tone correction and validation PSNR per cell."""
    return {m: {k: fit.to_dict() for k, fit in cells.items()} for m, cells in fits.items()}


def load_restorers(
    path: str | Path, methods: Sequence[str], grid: Mapping[str, Sequence[float]], workers: int = 1
) -> dict[str, Restorer]:
    """{method: restore(images, kind, level)} from a :func:`save_baselines` file.

    Raises ``DataError`` naming the file when a method or a cell of ``grid`` is missing, so a
    stale file fails before any scoring starts.
    """
    from pipeline.data import DataError

    table = json.loads(str(read_npz_arrays(path, ("fits",))["fits"]))
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files if name.startswith("lmmse|")}
    per_method: dict[str, dict] = {}
    for method in methods:
        if method == "lmmse":
            keys = {name.split("|")[1] for name in arrays}
            per_method[method] = {
                key: Lmmse.from_arrays(
                    {name.split("|")[2]: a for name, a in arrays.items() if name.split("|")[1] == key},
                    f"{path} (lmmse {key})",
                )
                for key in keys
            }
        else:
            per_method[method] = {key: FilterFit.from_dict(fit) for key, fit in table.get(method, {}).items()}
        missing = sorted(set(grid_cells(grid)) - set(per_method[method]))
        if missing:
            raise DataError(f"{path}: {method} has no fit for {missing}; rerun the fit_classical stage")

    def restorer(method: str) -> Restorer:
        cells = per_method[method]
        if method == "lmmse":
            return lambda images, kind, level: cells[cell_key(kind, level)].apply(images)
        return lambda images, kind, level: denoise_fitted(
            cells[cell_key(kind, level)], images, workers=workers
        )

    return {method: contracted(restorer(method)) for method in methods}
