"""``denoise-bench score``: score your own classifier (and denoiser) under the benchmark's protocol.

Usage, from the repository root once ``dvc repro`` has run::

    denoise-bench score --classifier my.keras [--denoiser my_denoiser.keras | NAME]
        [--logits] [--pixels 255] [--out DIR] [--root .] [--batch-size 256]

- ``--classifier``: a Keras model (``.keras``) taking (28, 28) or (28, 28, 1) images and giving
  10 outputs, one per digit.
- ``--denoiser``: a Keras denoiser file ((28, 28) or (28, 28, 1) in and out), or the name of a
  committed one (``models/denoisers/<NAME>.keras``, e.g. ``unet_bn``). Without it only the
  classifier is scored.
- ``--logits``: the classifier outputs logits; a softmax turns them into probabilities.
- ``--pixels 255``: the classifier expects pixels in [0, 255]; its inputs are multiplied by 255
  (the denoiser still sees [0, 1]).
- ``--out``: where the files go (default ``model_card``); ``--root``: the repository holding
  ``params.yaml``, ``data/`` and ``results/`` (default ``.``).

The classifier is scored alone (``none + your_classifier``) and, with a denoiser, behind it
(``<denoiser> + your_classifier``), under the input contract (every input clipped to [0, 1]
before any defense and the classifier, :func:`pipeline.restorer.admit`), on

- the evaluation grid, ``data/noisy/<type>.npz`` (stage ``noise``), with the images per noisy
  level of ``evaluate.noise_test_sizes``, exactly as the ``evaluate`` stage scores the
  committed defenses (:func:`pipeline.evaluation.evaluate_grid`);
- the held-out suite, ``data/heldout.npz`` (stage ``heldout_grid``), on the same images as the
  ``evaluate_heldout`` stage.

It writes

- ``<out>/scores.csv``: one row per noise type x level x defense, in the columns of
  ``results/evaluate/scores.csv`` (accuracy with its 95% Wilson interval, PSNR, SSIM, n, the
  paired gain over no denoiser);
- ``<out>/model_card.json``: the protocol version, the n images, and per defense the clean
  accuracy, the accuracy per cell, the mean accuracy over the noisy levels of the headline
  noise (Gaussian), its rank among the committed defenses, and on the held-out suite its mean,
  mCE and per-corruption accuracy; plus the do-no-harm count;

and prints where each defense ranks among the committed ones: the denoiser + classifier rows
of ``results/evaluate/scores.csv``, by mean accuracy over the noisy Gaussian levels.

Definitions:

- mCE: the mean over the MNIST-C corruptions (not ``gaussian_unclipped``) of the defense's
  error over the error of the pipeline's undefended clean classifier on the same images, read
  from ``results/heldout/gains.csv`` (rows ``none`` + ``clean``), so it compares with the
  committed defenses' mCE. 1 is the clean classifier's robustness; below 1 is better.
- do-no-harm count: the MNIST-C corruptions on which the paired 95% interval of the gain
  (:func:`pipeline.metrics.paired_difference`) lies below 0. The gain is of the denoiser + your
  classifier over your classifier alone when a denoiser is given, else of your classifier over
  the pipeline's clean classifier (``models/classifiers/clean.keras``); the card names it.
- protocol version: a short sha256 of the params sections ``seed``, ``noise``,
  ``evaluate.noise_test_sizes`` and ``heldout`` and of the source of ``pipeline/noise.py``,
  ``corruptions.py``, ``heldout.py`` and ``restorer.py``. Two cards with the same version were
  scored on the same images under the same contract.

Every check (the model files, their input shape and outputs, the denoiser's name, the pipeline
files the scoring needs) runs before any scoring; a failure prints one line and exits 2. From
Python: :func:`score` takes models in memory and returns a :class:`ScoreResult`.
"""

# ruff: noqa: E402 (TensorFlow's log level must be set before it loads)
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import hashlib
import json
import logging
import math
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from scipy.special import softmax

from pipeline import heldout, tables
from pipeline.data import DataError, to_float
from pipeline.evaluation import evaluate_grid, model_restorer
from pipeline.io import load_dataset, load_grids, write_json, write_with
from pipeline.models import load_model
from pipeline.params import Params, ParamsError, load_params
from pipeline.restorer import NO_DENOISER
from pipeline.robustness import defense_table

log = logging.getLogger("denoise-bench")

PROG = "denoise-bench"
YOUR_CLASSIFIER = "your_classifier"
YOUR_DENOISER = "your_denoiser"
IMAGE = (28, 28)
CLASSES = 10
PROTOCOL_SECTIONS = ("seed", "noise", "evaluate.noise_test_sizes", "heldout")
PROTOCOL_SOURCES = ("noise.py", "corruptions.py", "heldout.py", "restorer.py")
PACKAGE_DIR = Path(__file__).parent

# What scoring reads, relative to the root, and the stage that makes it.
DATA = ("data/prepared/mnist.npz", "prepare")
SUITE = ("data/heldout.npz", "heldout_grid")
COMMITTED_SCORES = ("results/evaluate/scores.csv", "evaluate")
COMMITTED_GAINS = ("results/heldout/gains.csv", "evaluate_heldout")


class ScoreError(DataError):
    """A model, name or pipeline file scoring needs is missing or unfit; the message names it."""


# -- adapters: the user's models behind the pipeline's interfaces ------------------------------


def input_layout(model: keras.Model, role: str, source: str) -> tuple[int, ...]:
    """(28, 28) or (28, 28, 1): how ``model`` takes an image (a None dimension takes 28)."""
    try:
        shape = model.input_shape
    except (AttributeError, ValueError) as error:
        raise ScoreError(
            f"{source}: cannot tell the {role}'s input shape ({error}); build it on keras.Input((28, 28))"
        ) from None
    if not (isinstance(shape, tuple) and all(d is None or isinstance(d, int) for d in shape)):
        raise ScoreError(f"{source}: the {role} takes several inputs {shape}; expected one image input")
    dims = tuple(shape[1:])
    spatial_ok = all(d in (28, None) for d in dims[:2])
    if len(dims) == 2 and spatial_ok:
        return IMAGE
    if len(dims) == 3 and spatial_ok and dims[2] == 1:
        return (*IMAGE, 1)
    raise ScoreError(f"{source}: the {role} takes inputs of shape {dims}; expected (28, 28) or (28, 28, 1)")


def _probe(model: keras.Model, layout: tuple[int, ...], role: str, source: str) -> tuple[int, ...]:
    """The shape of ``model``'s output on a batch of two blank images."""
    try:
        out = model(np.zeros((2, *layout), dtype=np.float32), training=False)
    except Exception as error:  # a model can fail in many ways; report it as unfit
        raise ScoreError(f"{source}: the {role} fails on a (2, {layout}) batch ({error})") from None
    if isinstance(out, list | tuple | dict):
        raise ScoreError(f"{source}: the {role} has several outputs; expected one")
    return tuple(keras.ops.convert_to_numpy(out).shape)


class ClassifierAdapter:
    """The user's classifier behind the pipeline's: ``predict(images)`` takes (N, 28, 28) in
    [0, 1] and returns probabilities (N, 10). The images are reshaped to the model's layout and
    multiplied by ``pixel_scale``; with ``logits`` a softmax turns the outputs into probabilities."""

    def __init__(self, model: keras.Model, logits: bool = False, pixel_scale: float = 1.0, source=None):
        source = source or f"classifier {model.name!r}"
        if not (pixel_scale > 0 and math.isfinite(pixel_scale)):
            raise ScoreError(f"pixel scale {pixel_scale} must be a positive number (e.g. 1 or 255)")
        self.model, self.logits, self.pixel_scale, self.source = model, logits, float(pixel_scale), source
        self.layout = input_layout(model, "classifier", source)
        shape = _probe(model, self.layout, "classifier", source)
        if shape[1:] != (CLASSES,):
            raise ScoreError(
                f"{source}: the classifier gives outputs of shape {shape[1:]}; expected {CLASSES} "
                "(one score per digit)"
            )

    def inputs(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32).reshape((-1, *self.layout))
        return images * np.float32(self.pixel_scale) if self.pixel_scale != 1 else images

    def predict(self, images: np.ndarray, batch_size: int = 256, verbose: int = 0) -> np.ndarray:
        out = np.asarray(self.model.predict(self.inputs(images), batch_size=batch_size, verbose=0))
        return softmax(out.astype(np.float64), axis=-1) if self.logits else out

    def looks_like_probabilities(self, images: np.ndarray) -> bool:
        out = self.predict(images)
        return bool(out.min() >= -1e-6 and out.max() <= 1 + 1e-6 and np.allclose(out.sum(-1), 1, atol=1e-3))


class DenoiserAdapter:
    """The user's denoiser behind :func:`pipeline.evaluation.restore`: (N, 28, 28) in, (N, 28, 28)
    out, whichever of the two layouts the model takes."""

    def __init__(self, model: keras.Model, source=None):
        source = source or f"denoiser {model.name!r}"
        self.model, self.source = model, source
        self.layout = input_layout(model, "denoiser", source)
        shape = _probe(model, self.layout, "denoiser", source)
        if int(np.prod(shape[1:])) != IMAGE[0] * IMAGE[1]:
            raise ScoreError(
                f"{source}: the denoiser gives outputs of shape {shape[1:]}; expected (28, 28) or (28, 28, 1)"
            )

    def predict(self, images: np.ndarray, batch_size: int = 256, verbose: int = 0) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        out = self.model.predict(images.reshape((-1, *self.layout)), batch_size=batch_size, verbose=0)
        return np.asarray(out).reshape(images.shape)


# -- the protocol --------------------------------------------------------------------------------


def protocol_sections(params: Params) -> dict:
    dumped = params.model_dump(mode="json")
    return {
        "seed": dumped["seed"],
        "noise": dumped["noise"],
        "evaluate.noise_test_sizes": dumped["evaluate"]["noise_test_sizes"],
        "heldout": dumped["heldout"],
    }


def protocol_version(params: Params, source_dir: str | Path = PACKAGE_DIR) -> str:
    """12 hex digits of the sha256 of what fixes the scored images and the input contract: the
    params sections :data:`PROTOCOL_SECTIONS` (as validated, so comments and defaults spelled
    out do not count) and the source text of :data:`PROTOCOL_SOURCES` in ``source_dir``."""
    digest = hashlib.sha256(json.dumps(protocol_sections(params), sort_keys=True).encode())
    for name in PROTOCOL_SOURCES:
        digest.update(b"\0" + name.encode() + b"\0" + (Path(source_dir) / name).read_bytes())
    return digest.hexdigest()[:12]


# -- loading: everything is checked before any scoring -------------------------------------------


def _missing(path: Path, stage: str) -> str:
    return f"{path} (make it with `dvc repro {stage}`)"


def _model_stage(name: str, params: Params) -> str:
    if name == params.tune.name:
        return "tune_denoiser"
    if name == params.guided.name:
        return "train_guided"
    return f"train_denoiser@{name}"


def _load_file(path: Path, role: str) -> keras.Model:
    if not path.is_file():
        raise ScoreError(f"{path}: no such file (the {role} to score)")
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ScoreError(f"{path}: not a Keras model (a .keras file is a zip archive); the {role} to score")
    return load_model(path)


@dataclass
class _Plan:
    """Everything scoring needs, loaded and checked."""

    params: Params
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


def _prepare(classifier, denoiser, logits, pixel_scale, root, params) -> _Plan:
    root = Path(root)
    params = params if params is not None else load_params(root / "params.yaml")
    reference = params.reference_classifier

    if isinstance(classifier, str | os.PathLike):
        classifier_source = str(classifier)
        classifier = _load_file(Path(classifier), "classifier")
    else:
        classifier_source = f"in-memory model {getattr(classifier, 'name', type(classifier).__name__)!r}"
    adapter = ClassifierAdapter(classifier, logits, pixel_scale, classifier_source)

    denoiser_adapter = denoiser_label = denoiser_source = None
    if isinstance(denoiser, os.PathLike):
        denoiser_label, denoiser_source = YOUR_DENOISER, str(denoiser)
        denoiser_adapter = DenoiserAdapter(_load_file(Path(denoiser), "denoiser"), denoiser_source)
    elif isinstance(denoiser, str):
        known = params.learned
        if denoiser not in known:
            raise ScoreError(f"unknown denoiser {denoiser!r}; the committed ones are: {', '.join(known)}")
        path = root / "models" / "denoisers" / f"{denoiser}.keras"
        if not path.is_file():
            raise ScoreError(f"missing {_missing(path, _model_stage(denoiser, params))}")
        denoiser_label, denoiser_source = denoiser, str(path)
        denoiser_adapter = DenoiserAdapter(load_model(path), denoiser_source)
    elif denoiser is not None:
        name = getattr(denoiser, "name", type(denoiser).__name__)
        denoiser_label, denoiser_source = YOUR_DENOISER, f"in-memory model {name!r}"
        denoiser_adapter = DenoiserAdapter(denoiser, denoiser_source)

    needed = [
        (root / DATA[0], DATA[1]),
        *((root / "data" / "noisy" / f"{kind}.npz", "noise") for kind in params.noise),
        (root / SUITE[0], SUITE[1]),
        (root / COMMITTED_SCORES[0], COMMITTED_SCORES[1]),
        (root / COMMITTED_GAINS[0], COMMITTED_GAINS[1]),
    ]
    reference_path = root / "models" / "classifiers" / f"{reference}.keras"
    if denoiser_adapter is None:  # the do-no-harm reference is then the pipeline's clean classifier
        needed.append((reference_path, "train_classifier"))
    missing = [_missing(path, stage) for path, stage in needed if not path.is_file()]
    if missing:
        raise ScoreError(f"missing pipeline files: {'; '.join(missing)}")

    dataset = load_dataset(root / DATA[0])
    try:
        grids = load_grids(root / "data" / "noisy", params.noise, len(dataset.x_test))
    except DataError as error:
        raise ScoreError(str(error)) from None
    expected = [
        *params.heldout.corruptions,
        *([heldout.UNCLIPPED] if params.heldout.unclipped_gaussian else []),
    ]
    suite, suite_labels = heldout.load_suite(root / SUITE[0], expected)
    if not np.array_equal(suite_labels, dataset.y_test[: len(suite_labels)]):
        raise ScoreError(
            f"{root / SUITE[0]} was not made from the test images of {root / DATA[0]}: "
            f"rerun `dvc repro {SUITE[1]}`"
        )
    committed_scores = _read_committed_scores(root / COMMITTED_SCORES[0], params)
    committed_gains = _read_committed_gains(root / COMMITTED_GAINS[0], params, len(suite_labels))
    reference_model = load_model(reference_path) if denoiser_adapter is None else None

    clean = to_float(dataset.x_test)
    if not adapter.looks_like_probabilities(clean[:64]):
        log.warning(
            "%s: its outputs are not probabilities (negative, above 1 or not summing to 1); "
            "pass --logits if it outputs logits",
            classifier_source,
        )
    return _Plan(
        params=params,
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


def _read_csv(path: Path, columns: Sequence[str], stage: str) -> pd.DataFrame:
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as error:
        raise ScoreError(f"{path}: cannot read ({error}); rerun `dvc repro {stage}`") from None
    absent = [column for column in columns if column not in table.columns]
    if absent:
        raise ScoreError(f"{path}: no columns {absent}; rerun `dvc repro {stage}`")
    return table


def _read_committed_scores(path: Path, params: Params) -> pd.DataFrame:
    stage = COMMITTED_SCORES[1]
    table = _read_csv(path, ("noise", "level", "denoiser", "classifier", "accuracy", "n_images"), stage)
    noise = params.evaluate.headline_noise
    levels = sorted(table.loc[(table["noise"] == noise) & (table["level"] > 0), "level"].unique())
    wanted = sorted(level for level in params.noise[noise] if level > 0)
    if len(levels) != len(wanted) or not np.allclose(levels, wanted):
        raise ScoreError(
            f"{path} has {noise} levels {levels} but params.yaml noise.{noise} has {wanted}: "
            f"rerun `dvc repro {stage}`"
        )
    return table


def _read_committed_gains(path: Path, params: Params, n: int) -> pd.DataFrame:
    stage = COMMITTED_GAINS[1]
    table = _read_csv(path, ("corruption", "denoiser", "classifier", "n_images", "accuracy", "harm"), stage)
    rows = table[(table["denoiser"] == NO_DENOISER) & (table["classifier"] == params.reference_classifier)]
    corruptions = list(params.heldout.corruptions)
    absent = sorted(set(corruptions) - set(rows["corruption"]))
    if absent:
        raise ScoreError(
            f"{path} has no {NO_DENOISER} + {params.reference_classifier} rows for {absent}: "
            f"rerun `dvc repro {stage}`"
        )
    sizes = sorted(set(rows.loc[rows["corruption"].isin(corruptions), "n_images"].astype(int)))
    if sizes != [n]:
        raise ScoreError(
            f"{path} scored the reference on {sizes} images, but the suite holds {n}: "
            f"rerun `dvc repro {stage}`"
        )
    return rows


# -- scoring --------------------------------------------------------------------------------------


@dataclass
class ScoreResult:
    """What :func:`score` found: ``card`` (the model card), ``scores`` (the evaluation grid, in
    the columns of ``results/evaluate/scores.csv``), ``heldout`` (gain per defense and corruption)
    and ``ranking`` (the committed defenses and yours by mean headline-noise accuracy)."""

    card: dict
    scores: pd.DataFrame
    heldout: pd.DataFrame
    ranking: pd.DataFrame
    files: list[Path] = field(default_factory=list)

    def write(self, out: str | Path) -> list[Path]:
        """Write ``<out>/model_card.json`` and ``<out>/scores.csv``; returns their paths."""
        out = Path(out)
        card, scores = out / "model_card.json", out / "scores.csv"
        write_json(card, self.card)
        write_with(scores, lambda tmp: self.scores.to_csv(tmp, index=False))
        self.files = [card, scores]
        return self.files

    def ranking_text(self) -> str:
        noise = self.card["headline_noise"]
        committed = int((~self.ranking["yours"]).sum())
        lines = [
            f"Mean accuracy over the noisy {noise} levels, against the {committed} committed defenses "
            f"({COMMITTED_SCORES[0]}):"
        ]
        for row in self.ranking[self.ranking["yours"]].itertuples():
            lines.append(f"  {row.defense}: {row.mean_accuracy:.4f}, rank {row.rank} of {committed + 1}")
        shown = self.ranking.assign(
            mark=np.where(self.ranking["yours"], "<- yours", ""),
            mean_accuracy=self.ranking["mean_accuracy"].round(4),
        )[["rank", "defense", "mean_accuracy", "n_images", "mark"]]
        return "\n".join([*lines, "", shown.to_string(index=False)])


def score(
    classifier: keras.Model | str | os.PathLike,
    denoiser: keras.Model | str | os.PathLike | None = None,
    *,
    logits: bool = False,
    pixel_scale: float = 1.0,
    root: str | Path = ".",
    params: Params | None = None,
    batch_size: int = 256,
) -> ScoreResult:
    """Score ``classifier`` (a Keras model, or a path to a ``.keras`` file) alone and behind
    ``denoiser`` (a Keras model, the name of a committed denoiser as a ``str``, a ``Path`` to a
    ``.keras`` file, or None) on the pipeline's evaluation grid and held-out suite under
    ``root`` (``params``: ``root/params.yaml``). See the module docstring for what is
    measured; :meth:`ScoreResult.write` writes the files. Raises
    :class:`~pipeline.data.DataError` (or :class:`~pipeline.params.ParamsError`) before any
    scoring if a model or a pipeline file is missing or unfit."""
    plan = _prepare(classifier, denoiser, logits, pixel_scale, root, params)
    params, yours = plan.params, YOUR_CLASSIFIER
    reference = params.reference_classifier
    restorers = {}
    if plan.denoiser is not None:
        restorers[plan.denoiser_label] = model_restorer(plan.denoiser, batch_size)

    log.info("scoring the evaluation grid (%s)", ", ".join(plan.grids))
    grid_scores, _, _ = evaluate_grid(
        plan.clean,
        plan.labels,
        plan.grids,
        restorers,
        {yours: plan.classifier},
        batch_size,
        noise_test_sizes=params.evaluate.noise_test_sizes,
    )
    grid_scores = tables.add_intervals(grid_scores, params.train_noise.levels)

    log.info("scoring the held-out suite (%d corruptions)", len(plan.suite))
    suite_classifiers = {yours: plan.classifier}
    if plan.reference_model is not None:
        suite_classifiers[reference] = plan.reference_model
    correct: dict = {}
    suite_scores, _, _ = evaluate_grid(
        plan.clean[: len(plan.suite_labels)],
        plan.suite_labels,
        plan.suite,
        restorers,
        suite_classifiers,
        batch_size,
        correct_sink=correct,
    )
    harm_reference = (NO_DENOISER, yours) if plan.denoiser is not None else (NO_DENOISER, reference)
    harm_defense = (plan.denoiser_label, yours) if plan.denoiser is not None else (NO_DENOISER, yours)
    suite_gains = heldout.gains(correct, harm_reference)
    if plan.reference_model is not None:
        _check_reference(suite_gains, plan.committed_gains, reference)
    mine = suite_gains[suite_gains["classifier"] == yours]
    # mCE against the committed undefended clean classifier's errors, on the same images.
    combined = pd.concat([plan.committed_gains[mine.columns], mine], ignore_index=True)
    summary = heldout.summary(combined, (NO_DENOISER, reference))
    summary = summary[summary["classifier"] == yours]

    ranking = _ranking(plan.committed_scores, grid_scores, params.evaluate.headline_noise)
    card = _card(plan, grid_scores, mine, summary, ranking, harm_defense, harm_reference)
    return ScoreResult(card=card, scores=grid_scores, heldout=mine.reset_index(drop=True), ranking=ranking)


def _check_reference(gains: pd.DataFrame, committed: pd.DataFrame, reference: str) -> None:
    """Warn if the clean classifier scored now is not the one ``gains.csv`` was made with."""
    now = gains[(gains["denoiser"] == NO_DENOISER) & (gains["classifier"] == reference)]
    merged = now.merge(committed, on="corruption", suffixes=("", "_committed"))
    if not np.allclose(merged["accuracy"], merged["accuracy_committed"], atol=1e-9):
        log.warning(
            "models/classifiers/%s.keras scores differently from %s on the suite: rerun `dvc repro %s`",
            reference,
            COMMITTED_GAINS[0],
            COMMITTED_GAINS[1],
        )


def _ranking(committed: pd.DataFrame, mine: pd.DataFrame, noise: str) -> pd.DataFrame:
    """Every committed defense and yours by mean accuracy over the noisy levels of ``noise``;
    yours get the rank they would take among the committed ones."""

    def table(scores: pd.DataFrame, yours: bool) -> pd.DataFrame:
        rows = scores[(scores["noise"] == noise) & (scores["level"] > 0)]
        sizes = rows.groupby(["denoiser", "classifier"], sort=False)["n_images"].min().rename("n_images")
        out = defense_table(scores, noise).merge(sizes.reset_index(), on=["denoiser", "classifier"])
        return out.assign(defense=out["denoiser"] + " + " + out["classifier"], yours=yours)

    theirs, ours = table(committed, False), table(mine, True)
    theirs["rank"] = theirs["mean_accuracy"].rank(method="min", ascending=False).astype(int)
    ours["rank"] = [1 + int((theirs["mean_accuracy"] > value).sum()) for value in ours["mean_accuracy"]]
    both = pd.concat([theirs, ours], ignore_index=True)
    both = both.sort_values(["mean_accuracy", "yours"], ascending=[False, False], kind="stable")
    columns = [
        "rank",
        "defense",
        "denoiser",
        "classifier",
        "mean_accuracy",
        "low",
        "high",
        "n_images",
        "yours",
    ]
    return both[columns].reset_index(drop=True)


def _number(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _card(plan: _Plan, grid, gains, summary, ranking, harm_defense, harm_reference) -> dict:
    params, noise = plan.params, plan.params.evaluate.headline_noise
    yours = YOUR_CLASSIFIER
    defenses = []
    names = [NO_DENOISER, *([plan.denoiser_label] if plan.denoiser is not None else [])]
    for name in names:
        rows = grid[(grid["denoiser"] == name) & (grid["classifier"] == yours)]
        clean = rows[rows["level"] == 0]
        mean = ranking[(ranking["denoiser"] == name) & ranking["yours"]].iloc[0]
        held = summary[summary["denoiser"] == name].iloc[0]
        per = gains[gains["denoiser"] == name].set_index("corruption")["accuracy"]
        defenses.append(
            {
                "defense": f"{name} + {yours}",
                "denoiser": name,
                "clean_accuracy": _number(clean["accuracy"].iloc[0]) if len(clean) else None,
                "accuracy": {
                    kind: {
                        f"{level:g}": float(accuracy)
                        for level, accuracy in zip(part["level"], part["accuracy"], strict=True)
                        if level > 0
                    }
                    for kind, part in rows.groupby("noise", sort=False)
                },
                f"mean_noisy_{noise}_accuracy": float(mean["mean_accuracy"]),
                "rank": {"position": int(mean["rank"]), "of": int((~ranking["yours"]).sum()) + 1},
                "heldout": {
                    "suite_mean": _number(held["suite_mean"]),
                    "unseen_mean": _number(held["unseen_mean"]),
                    "geometric_mean": _number(held["geometric_mean"]),
                    "mCE": _number(held["mCE"]),
                    "unclipped_accuracy": _number(held["unclipped_accuracy"]),
                    "accuracy": {corruption: float(value) for corruption, value in per.items()},
                },
            }
        )
    harmed = gains[
        (gains["denoiser"] == harm_defense[0]) & (gains["corruption"] != heldout.UNCLIPPED)
    ].set_index("corruption")
    if harm_reference[1] == yours:
        reference_text = f"{' + '.join(harm_reference)}: your classifier alone"
    else:
        reference_text = (
            f"{' + '.join(harm_reference)}: the pipeline's clean classifier ({plan.reference_source})"
        )
    noisy = grid[(grid["classifier"] == yours) & (grid["denoiser"] == NO_DENOISER) & (grid["level"] > 0)]
    return {
        "protocol_version": protocol_version(params),
        "protocol": {
            "params": list(PROTOCOL_SECTIONS),
            "sources": [f"pipeline/{s}" for s in PROTOCOL_SOURCES],
        },
        "classifier": plan.classifier_source,
        "denoiser": plan.denoiser_source,
        "adapter": {
            "input_shape": list(plan.classifier.layout),
            "logits": plan.classifier.logits,
            "pixel_scale": plan.classifier.pixel_scale,
        },
        "input_contract": "every input clipped to [0, 1] before any defense and before the classifier",
        "headline_noise": noise,
        "n_images": {
            "clean": len(plan.labels),
            "noisy": {kind: int(part["n_images"].min()) for kind, part in noisy.groupby("noise", sort=False)},
            "heldout": len(plan.suite_labels),
        },
        "defenses": defenses,
        "mCE_reference": f"{NO_DENOISER} + {params.reference_classifier} in {COMMITTED_GAINS[0]}",
        "do_no_harm": {
            "defense": " + ".join(harm_defense),
            "reference": reference_text,
            "harms": int(harmed["harm"].sum()),
            "harmed": [str(c) for c in harmed.index[harmed["harm"].astype(bool)]],
            "gains": {
                str(c): {"gain": _number(r.gain), "low": _number(r.gain_low), "high": _number(r.gain_high)}
                for c, r in harmed.iterrows()
            },
        },
    }


# -- the command line ----------------------------------------------------------------------------


def _denoiser_argument(value: str | None) -> str | Path | None:
    """A path if ``value`` looks like a file (an existing one, a path separator or ``.keras``),
    else the name of a committed denoiser."""
    if value is None:
        return None
    if Path(value).exists() or os.sep in value or "/" in value or value.endswith((".keras", ".h5")):
        return Path(value)
    return value


def _score_command(args: argparse.Namespace) -> int:
    try:
        result = score(
            args.classifier,
            _denoiser_argument(args.denoiser),
            logits=args.logits,
            pixel_scale=args.pixels,
            root=args.root,
            batch_size=args.batch_size,
        )
    except (DataError, ParamsError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    files = result.write(args.out)
    print(result.ranking_text())
    card = result.card
    print(
        f"\nprotocol {card['protocol_version']}; do-no-harm: {card['do_no_harm']['harms']} harms "
        f"({card['do_no_harm']['defense']} over {card['do_no_harm']['reference']})"
    )
    print(f"wrote {', '.join(map(str, files))}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Benchmark tools for MNIST denoisers and classifiers."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub = commands.add_parser(
        "score",
        help="score your classifier (and denoiser) under the benchmark's protocol",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1],
    )
    sub.add_argument(
        "--classifier", required=True, type=Path, help="your classifier (.keras): (28, 28[, 1]) in, 10 out"
    )
    sub.add_argument(
        "--denoiser",
        help="your denoiser (.keras), or a committed denoiser's name (models/denoisers/NAME.keras)",
    )
    sub.add_argument("--logits", action="store_true", help="the classifier outputs logits: apply a softmax")
    sub.add_argument(
        "--pixels",
        type=float,
        default=1.0,
        metavar="SCALE",
        help="multiply the classifier's [0, 1] inputs by SCALE (255: it expects [0, 255]; the denoiser "
        "still sees [0, 1]); default 1",
    )
    sub.add_argument(
        "--out", type=Path, default=Path("model_card"), help="output directory (default: model_card)"
    )
    sub.add_argument(
        "--root",
        type=Path,
        default=Path("."),
        help="the repository: params.yaml, data/, results/ (default: .)",
    )
    sub.add_argument("--batch-size", type=int, default=256, help="prediction batch size (default: 256)")
    sub.set_defaults(run=_score_command)
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be positive")
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
