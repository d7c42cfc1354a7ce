"""report: results/report.md from the committed evaluation results, with its figures."""

import argparse
import logging
import os
from pathlib import Path

import pandas as pd

from pipeline import plots, report, robustness
from pipeline.cli import run_stage
from pipeline.data import DataError
from pipeline.io import write_text, write_with

log = logging.getLogger("report")


def read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: not found (run the evaluate stage: dvc repro)")
    return pd.read_csv(path)


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
    )
    write_text(out, text)
    log.info("wrote %s", out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--evaluate", required=True, help="the evaluate stage's output directory")
    parser.add_argument("--out", required=True, help="report path, e.g. results/report.md")
    run_stage(main, parser)
