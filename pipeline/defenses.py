"""Load every defense the pipeline made: the learned denoisers, the classical baselines and the
classifiers, failing on a missing file before any scoring starts."""

from __future__ import annotations

from pathlib import Path

import keras

from pipeline.baselines import load_restorers
from pipeline.evaluation import model_restorer
from pipeline.models import load_model
from pipeline.params import Params
from pipeline.restorer import Restorer


def load_classifiers(directory: str | Path, params: Params) -> dict[str, keras.Model]:
    """{name: model} for every ``classifiers`` entry, from ``directory/<name>.keras``."""
    return {name: load_model(Path(directory) / f"{name}.keras") for name in params.classifiers}


def load_denoisers(
    denoisers_dir: str | Path,
    classical_path: str | Path,
    params: Params,
    cell: tuple[str, float] | None = None,
) -> dict[str, Restorer]:
    """{name: restorer} for every learned denoiser, then every classical method. The classical
    baselines are fitted per cell of the noise grid; with ``cell`` each uses that cell's fit
    whatever it is given (how they meet noise outside the grid, e.g. the held-out suite)."""
    restorers = {
        name: model_restorer(load_model(Path(denoisers_dir) / f"{name}.keras"), params.evaluate.batch_size)
        for name in params.learned
    }
    classical = params.classical
    fitted = load_restorers(classical_path, list(classical.methods), params.noise, classical.workers)
    if cell is not None:
        fitted = {name: _at_cell(restorer, *cell) for name, restorer in fitted.items()}
    return restorers | fitted


def _at_cell(restorer: Restorer, kind: str, level: float) -> Restorer:
    return lambda images, _kind, _level: restorer(images, kind, level)
