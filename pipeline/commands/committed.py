"""Readers of a pipeline's committed results that scoring compares with: the evaluation grid's
scores (``paths.scores``) and the held-out gains (``paths.gains``). Each is checked against
params.yaml; a stale or unreadable file is an error that names it and the stage to rerun."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.commands.files import PipelineFiles, ScoreError
from pipeline.params import Params
from pipeline.restorer import NO_DENOISER


def _rerun(files: PipelineFiles, path: Path) -> str:
    stage = files.maker(path)
    return f"rerun `dvc repro {stage}`" if stage else "rerun `dvc repro`"


def read_table(files: PipelineFiles, path: Path, columns: Sequence[str]) -> pd.DataFrame:
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as error:
        raise ScoreError(f"{path}: cannot read ({error}); {_rerun(files, path)}") from None
    absent = [column for column in columns if column not in table.columns]
    if absent:
        raise ScoreError(f"{path}: no columns {absent}; {_rerun(files, path)}")
    return table


def read_scores(files: PipelineFiles, params: Params) -> pd.DataFrame:
    """The committed evaluation grid's scores, on the headline noise levels params.yaml names."""
    path = files.path("scores")
    table = read_table(files, path, ("noise", "level", "denoiser", "classifier", "accuracy", "n_images"))
    noise = params.evaluate.headline_noise
    levels = sorted(table.loc[(table["noise"] == noise) & (table["level"] > 0), "level"].unique())
    wanted = sorted(level for level in params.noise[noise] if level > 0)
    if len(levels) != len(wanted) or not np.allclose(levels, wanted):
        raise ScoreError(
            f"{path} has {noise} levels {levels} but params.yaml noise.{noise} has {wanted}: "
            f"{_rerun(files, path)}"
        )
    return table


def read_reference_gains(files: PipelineFiles, params: Params, n: int) -> pd.DataFrame:
    """The committed held-out rows of the undefended clean classifier, on ``n`` images each."""
    path = files.path("gains")
    table = read_table(files, path, ("corruption", "denoiser", "classifier", "n_images", "accuracy", "harm"))
    reference = params.reference_classifier
    rows = table[(table["denoiser"] == NO_DENOISER) & (table["classifier"] == reference)]
    corruptions = list(params.heldout.corruptions)
    absent = sorted(set(corruptions) - set(rows["corruption"]))
    if absent:
        raise ScoreError(
            f"{path} has no {NO_DENOISER} + {reference} rows for {absent}: {_rerun(files, path)}"
        )
    sizes = sorted(set(rows.loc[rows["corruption"].isin(corruptions), "n_images"].astype(int)))
    if sizes != [n]:
        raise ScoreError(
            f"{path} scored the reference on {sizes} images, but the suite holds {n}: {_rerun(files, path)}"
        )
    return rows
