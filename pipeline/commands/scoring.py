"""Scoring a user's classifier (and denoiser) under a pipeline's protocol: on its evaluation
grid, exactly as the ``evaluate`` stage scores the committed defenses, and on its held-out suite,
on the same images as ``evaluate_heldout``; every input clipped to [0, 1] first
(:func:`pipeline.restorer.admit`)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from pipeline import heldout, tables
from pipeline.commands.adapters import YOUR_CLASSIFIER
from pipeline.commands.card import model_card
from pipeline.commands.plan import Plan, prepare
from pipeline.commands.ranking import ranking_table
from pipeline.evaluation import evaluate_grid, model_restorer
from pipeline.io import write_json, write_with
from pipeline.params import Params
from pipeline.restorer import NO_DENOISER

log = logging.getLogger("denoise-bench")


@dataclass
class ScoreResult:
    """What :func:`score` found: ``card`` (the model card), ``scores`` (the evaluation grid, in
    the columns of ``results/evaluate/scores.csv``), ``heldout`` (gain per defense and corruption)
    and ``ranking`` (the committed defenses and yours by mean headline-noise accuracy)."""

    card: dict
    scores: pd.DataFrame
    heldout: pd.DataFrame
    ranking: pd.DataFrame
    committed: Path | None = None
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
            f"({self.committed}):"
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
    the pipeline folder ``root`` (``.``, or ``fashion``; ``params``: ``root/params.yaml``). See
    :mod:`pipeline.commands.card` for what is measured; :meth:`ScoreResult.write` writes the files. Raises
    :class:`~pipeline.commands.files.ScoreError` (or :class:`~pipeline.params.ParamsError`) before any
    scoring if a model or a pipeline file is missing or unfit."""
    plan = prepare(classifier, denoiser, logits, pixel_scale, root, params)
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
        _check_reference(suite_gains, plan, reference)
    mine = suite_gains[suite_gains["classifier"] == yours]
    # mCE against the committed undefended clean classifier's errors, on the same images.
    combined = pd.concat([plan.committed_gains[mine.columns], mine], ignore_index=True)
    summary = heldout.summary(combined, (NO_DENOISER, reference))
    summary = summary[summary["classifier"] == yours]

    ranking = ranking_table(plan.committed_scores, grid_scores, params.evaluate.headline_noise)
    card = model_card(plan, grid_scores, mine, summary, ranking, harm_defense, harm_reference)
    return ScoreResult(
        card=card,
        scores=grid_scores,
        heldout=mine.reset_index(drop=True),
        ranking=ranking,
        committed=plan.files.path("scores"),
    )


def _check_reference(gains: pd.DataFrame, plan: Plan, reference: str) -> None:
    """Warn if the clean classifier scored now is not the one the committed gains were made with."""
    committed, path = plan.committed_gains, plan.files.path("gains")
    now = gains[(gains["denoiser"] == NO_DENOISER) & (gains["classifier"] == reference)]
    merged = now.merge(committed, on="corruption", suffixes=("", "_committed"))
    if not np.allclose(merged["accuracy"], merged["accuracy_committed"], atol=1e-9):
        log.warning(
            "%s scores differently from %s on the suite: rerun `dvc repro %s`",
            plan.reference_source,
            path,
            plan.files.maker(path) or "",
        )
