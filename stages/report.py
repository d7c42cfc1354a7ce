"""report: results/report.md from the committed evaluation results, with its figures."""

import argparse
import json
import logging
import os
from pathlib import Path

import pandas as pd

from pipeline import comparison, plots, report, robustness
from pipeline.cli import run_stage
from pipeline.data import DataError
from pipeline.io import write_text, write_with

log = logging.getLogger("report")


def read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: not found (run the evaluate stage: dvc repro)")
    return pd.read_csv(path)


def denoiser_kinds(params) -> dict[str, str]:
    """How each denoiser was made, for the comparison table."""
    kinds = {
        name: "learned, blind" if config.train_noise is None else "learned, " + "/".join(config.train_noise)
        for name, config in params.denoisers.items()
    }
    kinds[params.tune.name] = f"learned, blind, {params.tune.search.algorithm}-tuned"
    kinds[params.guided.name] = f"learned, blind, {params.guided.base} + classifier loss"
    kinds |= {name: "classical, fitted per noise cell" for name in params.classical.methods}
    return kinds


def training_summaries(training_dir: Path, names) -> dict[str, dict]:
    """dvclive summaries (train_seconds, parameters) of the learned denoisers that have one."""
    summaries = {}
    for name in names:
        path = training_dir / name / "metrics.json"
        if path.is_file():
            summaries[name] = json.loads(path.read_text())
    return summaries


def main(args, params):
    evaluated = Path(args.evaluate)
    scores = read_csv(evaluated / "scores.csv")
    confusion = read_csv(evaluated / "confusion.csv")
    out = Path(args.out)
    figures_dir = out.parent / out.stem
    table = robustness.robustness_table(scores)
    mce = robustness.mean_corruption_error(table)
    gaps = robustness.gap_recovered(scores)
    write_with(figures_dir / "robustness.csv", lambda tmp: table.to_csv(tmp, index=False))
    write_with(figures_dir / "quality_vs_level.png", lambda tmp: plots.quality_vs_level(scores, tmp))
    write_with(figures_dir / "gap_recovered.png", lambda tmp: plots.gap_heatmap(gaps, tmp))
    ev = params.evaluate
    side_by_side = comparison.comparison_table(
        scores,
        ev.headline_noise,
        ev.headline_level,
        training_summaries(Path(args.training), params.learned),
        denoiser_kinds(params),
    )
    compare_md = comparison.comparison_markdown(side_by_side, ev.headline_noise, ev.headline_level)
    write_with(Path(args.comparison).with_suffix(".csv"), lambda tmp: side_by_side.to_csv(tmp, index=False))
    write_text(args.comparison, compare_md)
    title = f"Confusion matrices at {ev.headline_noise} {ev.headline_level:g}"
    write_with(figures_dir / "confusion.png", lambda tmp: plots.confusion_matrices(confusion, title, tmp))

    def rel(path: Path) -> str:
        return Path(os.path.relpath(path, out.parent)).as_posix()

    figures = {
        "Accuracy vs noise level (95% interval bands)": rel(evaluated / "accuracy_vs_level.png"),
        "PSNR and SSIM vs noise level": rel(figures_dir / "quality_vs_level.png"),
        "Accuracy gap recovered": rel(figures_dir / "gap_recovered.png"),
        "Samples: clean / noisy / each denoiser": rel(evaluated / "samples.png"),
        title: rel(figures_dir / "confusion.png"),
    }
    text = report.render(
        scores,
        table,
        mce,
        params.model_dump(),
        figures,
        ev.headline_noise,
        ev.headline_level,
        compare_md,
        rival_classifier=next((name for name, c in params.classifiers.items() if c.noise_augmentation), None),
    )
    write_text(out, text)
    log.info("wrote %s", out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--evaluate", required=True, help="the evaluate stage's output directory")
    parser.add_argument("--training", required=True, help="dvclive directories of the learned denoisers")
    parser.add_argument("--comparison", required=True, help="side-by-side table (.md; a .csv goes beside it)")
    parser.add_argument("--out", required=True, help="report path, e.g. results/report.md")
    run_stage(main, parser)
