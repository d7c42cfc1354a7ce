"""Load every defense the pipeline made: the learned denoisers, the classical baselines and the
classifiers, failing on a missing file before any scoring starts; the scoring stages' shared
command line and which denoisers each classifier is scored behind."""

from __future__ import annotations

import argparse
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


def stacked_denoisers(params: Params) -> dict[str, list[str]]:
    """Denoisers scored in front of each classifier after the reference one: the learned ones (the
    stacking candidates); the classical filters are scored with the reference classifier only."""
    return dict.fromkeys(list(params.classifiers)[1:], params.learned)


def defense_parser(description: str | None, grid: str, grid_help: str) -> argparse.ArgumentParser:
    """The scoring stages' arguments: --data, the grid (``--<grid>``), --denoisers, --classical,
    --classifiers and --out."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", required=True, help="the prepared dataset (.npz)")
    parser.add_argument(f"--{grid}", required=True, help=grid_help)
    parser.add_argument("--denoisers", required=True, help="directory of <name>.keras models")
    parser.add_argument("--classical", required=True, help="fitted classical baselines (.npz)")
    parser.add_argument("--classifiers", required=True, help="directory of <name>.keras classifiers")
    parser.add_argument("--out", required=True, help="output directory")
    return parser
