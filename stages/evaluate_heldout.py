"""evaluate_heldout: every defense of both use cases on the held-out suite.

Each learned denoiser and classical baseline (the latter at its fit for the headline cell) in
front of every classifier, no defense included, on the same first ``heldout.test_size`` test
images per corruption (the per-image filters on the first ``heldout.filter_test_size``). Writes
``scores.csv`` (the columns of the evaluate stage's), ``gains.csv`` (paired gain over the
undefended clean classifier per defense and corruption), ``summary.csv`` (suite means, mCE,
do-no-harm counts per defense), ``heatmap.png`` and ``timing.json``.
"""

import logging
import time
from pathlib import Path

from pipeline import heldout, plots, tables
from pipeline.cli import run_stage
from pipeline.data import to_float
from pipeline.defenses import defense_parser, load_classifiers, load_denoisers, stacked_denoisers
from pipeline.evaluation import NO_DENOISER, evaluate_grid
from pipeline.io import load_dataset, write_json, write_with

log = logging.getLogger("evaluate_heldout")


def main(args, params):
    start = time.perf_counter()
    config, ev = params.heldout, params.evaluate
    # Load everything first: a missing model, fit or suite fails before any scoring starts.
    expected = [*config.corruptions, *([heldout.UNCLIPPED] if config.unclipped_gaussian else [])]
    suite, labels = heldout.load_suite(args.suite, expected)
    clean = to_float(load_dataset(args.data).x_test[: len(labels)])
    classifiers = load_classifiers(args.classifiers, params)
    cell = (ev.headline_noise, ev.headline_level)
    denoisers = load_denoisers(args.denoisers, args.classical, params, cell=cell)
    sizes = {name: config.filter_test_size for name, n in params.classical.methods.items() if n is not None}
    correct: dict = {}
    scores, _, timing = evaluate_grid(
        clean,
        labels,
        suite,
        denoisers,
        classifiers,
        ev.batch_size,
        test_sizes=sizes,
        classifier_denoisers=stacked_denoisers(params),
        correct_sink=correct,
    )
    scores = heldout.mark_seen(
        tables.add_intervals(scores, ()), params.train_noise.levels.get("gaussian", [])
    )
    reference = (NO_DENOISER, params.reference_classifier)
    gains = heldout.gains(correct, reference)
    summary = heldout.summary(gains, reference)
    out = Path(args.out)
    for name, frame in (("scores", scores), ("gains", gains), ("summary", summary)):
        write_with(out / f"{name}.csv", lambda tmp, f=frame: f.to_csv(tmp, index=False))
    write_with(out / "heatmap.png", lambda tmp: plots.heldout_heatmap(gains, reference, tmp))
    timing["stage_seconds"] = round(time.perf_counter() - start, 2)
    write_json(out / "timing.json", timing)
    log.info("wrote %s (%d rows); timing %s", out, len(scores), timing)


if __name__ == "__main__":
    run_stage(main, defense_parser(__doc__, "suite", "the heldout_grid stage's suite (.npz)"))
