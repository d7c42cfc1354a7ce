"""Everything scoring needs, loaded and checked before any scoring: the user's models behind
their adapters, the pipeline's test images, evaluation grid and held-out suite, and the
committed results to rank against. Every missing pipeline file is named at once."""

from __future__ import annotations

import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from pipeline import heldout
from pipeline.commands.adapters import YOUR_DENOISER, ClassifierAdapter, DenoiserAdapter
from pipeline.commands.committed import read_reference_gains, read_scores
from pipeline.commands.files import PipelineFiles, ScoreError
from pipeline.data import DataError, to_float
from pipeline.io import load_dataset, load_grids
from pipeline.models import load_model
from pipeline.params import Params, load_params

log = logging.getLogger("denoise-bench")


@dataclass
class Plan:
    """Everything scoring needs, loaded and checked."""

    params: Params
    files: PipelineFiles
    classifier: ClassifierAdapter
    classifier_source: str
    denoiser: DenoiserAdapter | None
    denoiser_label: str | None
    denoiser_source: str | None
    clean: np.ndarray
    labels: np.ndarray
    grids: dict
    suite: dict
    suite_labels: np.ndarray
    committed_scores: pd.DataFrame
    committed_gains: pd.DataFrame
    reference_model: keras.Model | None
    reference_source: str | None


def load_file(path: Path, role: str) -> keras.Model:
    if not path.is_file():
        raise ScoreError(f"{path}: no such file (the {role} to score)")
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ScoreError(f"{path}: not a Keras model (a .keras file is a zip archive); the {role} to score")
    return load_model(path)


def _classifier(classifier, logits: bool, pixel_scale: float) -> tuple[ClassifierAdapter, str]:
    if isinstance(classifier, str | os.PathLike):
        source = str(classifier)
        classifier = load_file(Path(classifier), "classifier")
    else:
        source = f"in-memory model {getattr(classifier, 'name', type(classifier).__name__)!r}"
    return ClassifierAdapter(classifier, logits, pixel_scale, source), source


def _denoiser(denoiser, files: PipelineFiles, params: Params):
    """(adapter, label, source) of ``denoiser``: a path, a committed denoiser's name, a model or None."""
    if denoiser is None:
        return None, None, None
    if isinstance(denoiser, os.PathLike):
        source = str(denoiser)
        return DenoiserAdapter(load_file(Path(denoiser), "denoiser"), source), YOUR_DENOISER, source
    if isinstance(denoiser, str):
        if denoiser not in params.learned:
            raise ScoreError(
                f"unknown denoiser {denoiser!r}; the committed ones are: {', '.join(params.learned)}"
            )
        path = files.path("denoisers") / f"{denoiser}.keras"
        if not path.is_file():
            raise ScoreError(f"missing {files.missing(path)}")
        return DenoiserAdapter(load_model(path), str(path)), denoiser, str(path)
    source = f"in-memory model {getattr(denoiser, 'name', type(denoiser).__name__)!r}"
    return DenoiserAdapter(denoiser, source), YOUR_DENOISER, source


def prepare(classifier, denoiser, logits, pixel_scale, root, params: Params | None) -> Plan:
    files = PipelineFiles.read(root)
    params = params if params is not None else load_params(files.params)
    adapter, classifier_source = _classifier(classifier, logits, pixel_scale)
    denoiser_adapter, denoiser_label, denoiser_source = _denoiser(denoiser, files, params)

    data, noisy, suite_file = files.path("prepared"), files.path("noisy"), files.path("heldout")
    reference_path = files.path("classifiers") / f"{params.reference_classifier}.keras"
    needed = [
        data,
        *(noisy / f"{kind}.npz" for kind in params.noise),
        suite_file,
        files.path("scores"),
        files.path("gains"),
    ]
    if denoiser_adapter is None:  # the do-no-harm reference is then the pipeline's clean classifier
        needed.append(reference_path)
    missing = [files.missing(path) for path in needed if not path.is_file()]
    if missing:
        raise ScoreError(f"missing pipeline files: {'; '.join(missing)}")

    dataset = load_dataset(data)
    try:
        grids = load_grids(noisy, params.noise, len(dataset.x_test))
    except DataError as error:
        raise ScoreError(str(error)) from None
    expected = [
        *params.heldout.corruptions,
        *([heldout.UNCLIPPED] if params.heldout.unclipped_gaussian else []),
    ]
    suite, suite_labels = heldout.load_suite(suite_file, expected)
    if not np.array_equal(suite_labels, dataset.y_test[: len(suite_labels)]):
        raise ScoreError(
            f"{suite_file} was not made from the test images of {data}: "
            f"rerun `dvc repro {files.maker(suite_file) or 'heldout_grid'}`"
        )
    committed_scores = read_scores(files, params)
    committed_gains = read_reference_gains(files, params, len(suite_labels))
    reference_model = load_model(reference_path) if denoiser_adapter is None else None

    clean = to_float(dataset.x_test)
    if not adapter.looks_like_probabilities(clean[:64]):
        log.warning(
            "%s: its outputs are not probabilities (negative, above 1 or not summing to 1); "
            "pass --logits if it outputs logits",
            classifier_source,
        )
    return Plan(
        params=params,
        files=files,
        classifier=adapter,
        classifier_source=classifier_source,
        denoiser=denoiser_adapter,
        denoiser_label=denoiser_label,
        denoiser_source=denoiser_source,
        clean=clean,
        labels=dataset.y_test,
        grids=grids,
        suite=suite,
        suite_labels=suite_labels,
        committed_scores=committed_scores,
        committed_gains=committed_gains,
        reference_model=reference_model,
        reference_source=str(reference_path) if reference_model is not None else None,
    )
