"""evaluate: accuracy, PSNR and SSIM for every noise type x level x denoiser.

Writes the tidy ``scores.csv`` (the source of every other output), ``metrics.json``,
``accuracy.md`` (pivots), ``confusion.csv`` (at the headline cell), ``correct.npz`` (which
test images each defense got right on the headline noise, for paired comparisons), per-noise
``curves/<type>.csv`` for ``dvc plots`` and PNG figures.
"""

import logging
import time
from pathlib import Path

from pipeline import plots, tables
from pipeline.cli import run_stage
from pipeline.data import to_float
from pipeline.defenses import defense_parser, load_classifiers, load_denoisers, stacked_denoisers
from pipeline.evaluation import NO_DENOISER, evaluate_grid, sample_outputs
from pipeline.io import (
    load_dataset,
    load_grids,
    write_json,
    write_npz,
    write_text,
    write_with,
)

log = logging.getLogger("evaluate")


def main(args, params):
    start = time.perf_counter()
    config = params.evaluate
    out = Path(args.out)
    names = params.all_denoisers
    # Load everything first: a missing model, fit or grid fails before any scoring starts.
    dataset = load_dataset(args.data)
    classifiers = load_classifiers(args.classifiers, params)
    denoisers = load_denoisers(args.denoisers, args.classical, params)
    grids = load_grids(args.noisy, params.noise, len(dataset.x_test))
    clean = to_float(dataset.x_test)

    others = list(params.classifiers)[1:]
    classifier_noise = (
        {name: [config.headline_noise] for name in others}
        if config.other_classifiers_on == "headline"
        else {}
    )
    correct: dict = {}
    scores, confusion, timing = evaluate_grid(
        clean,
        dataset.y_test,
        grids,
        denoisers,
        classifiers,
        config.batch_size,
        confusion_cell=(config.headline_noise, config.headline_level),
        test_sizes=params.classical.methods,
        noise_test_sizes=config.noise_test_sizes,
        classifier_noise=classifier_noise,
        classifier_denoisers=stacked_denoisers(params),
        correct_sink=correct,
        sink_noise=config.headline_noise,
    )
    write_npz(
        out / "correct.npz",
        **{f"{name}|{clf}|{level:g}": right for (_, name, clf, level), right in correct.items()},
    )
    scores = tables.add_intervals(scores, params.train_noise.levels)
    columns = [NO_DENOISER, *names]
    write_with(out / "scores.csv", lambda tmp: scores.to_csv(tmp, index=False))
    write_with(out / "confusion.csv", lambda tmp: confusion.to_csv(tmp, index=False))
    flagship = [NO_DENOISER, params.guided.base]  # the metrics file stays short; detail: scores.csv
    summary = tables.summary(scores, config.headline_noise, config.headline_level, flagship)
    write_json(out / "metrics.json", summary)
    write_text(out / "accuracy.md", tables.markdown_tables(scores, columns))
    for kind in params.noise:
        curve = tables.curve_table(scores, kind, columns)
        write_with(out / "curves" / f"{kind}.csv", lambda tmp, c=curve: c.to_csv(tmp, index=False))
    write_with(
        out / "accuracy_vs_level.png", lambda tmp: plots.accuracy_vs_level(scores, params.families, tmp)
    )

    kind = config.sample_noise
    levels, images = grids[kind]
    picks = slice(0, config.sample_images)
    noisy = {float(level): images[i][picks] for i, level in enumerate(levels) if level > 0}
    samples = sample_outputs(clean[picks], kind, noisy, denoisers)
    write_with(out / "samples.png", lambda tmp: plots.sample_grid(samples, kind, tmp))
    timing["stage_seconds"] = round(time.perf_counter() - start, 2)
    timing["non_model_fraction_of_stage"] = round(1 - timing["forward_seconds"] / timing["stage_seconds"], 4)
    write_json(out / "timing.json", timing)
    log.info("wrote %s (%d rows); timing %s", out, len(scores), timing)


if __name__ == "__main__":
    run_stage(main, defense_parser(__doc__, "noisy", "the noise stage's directory of <type>.npz grids"))
