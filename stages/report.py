"""report: results/report.md from the committed evaluation results, with its figures."""

import argparse
import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import comparison, heldout, plots, report, robustness, verdicts
from pipeline.cli import run_stage
from pipeline.data import DataError, class_names
from pipeline.io import read_npz_arrays, write_json, write_text, write_with
from pipeline.restorer import NO_DENOISER

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


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"{path}: not found (dvc repro makes it)")
    return json.loads(path.read_text())


def read_seeds(path: Path) -> pd.DataFrame | None:
    """The seeds workflow's results; None while it has no rows."""
    if not path.is_file():
        raise DataError(f"{path}: not found (commit the seeds workflow's results, or its header only)")
    seeds = pd.read_csv(path, dtype={"commit": str})
    return seeds if len(seeds) else None


def read_reference(path: Path) -> pd.DataFrame | None:
    """The reference recipe's row (``python -m pipeline.reference``); None while it has none."""
    if not path.is_file():
        raise DataError(f"{path}: not found (commit the reference workflow's results, or its header only)")
    reference = pd.read_csv(path)
    return reference if len(reference) else None


def answer_inputs(args, params, scores: pd.DataFrame) -> verdicts.Inputs:
    """Everything the two answers are computed from, read from the stages' outputs."""
    denoisers_dir, classifiers_dir = Path(args.training), Path(args.classifier_training)
    models = {name: denoisers_dir / name for name in params.learned}
    models |= {name: classifiers_dir / name for name in params.classifiers}
    ceiling = read_json(Path(args.ceiling) / "ceiling.json")
    correct_path = Path(args.evaluate) / "correct.npz"
    with np.load(correct_path) as archive:
        keys = tuple(archive.files)
    noise = params.evaluate.headline_noise
    seeds, seeds_note = verdicts.current_seeds(read_seeds(Path(args.seeds)), scores, noise, params.fit_seed)
    return verdicts.Inputs(
        scores=scores,
        validation=read_csv(Path(args.ceiling) / "validation.csv"),
        ceiling={float(row["level"]): float(row["ceiling"]) for row in ceiling["levels"]},
        records={name: read_json(path / "compute.json") for name, path in models.items()},
        curves={name: read_csv(path / "curve.csv") for name, path in models.items()},
        correct=read_npz_arrays(correct_path, keys),
        seeds=seeds,
        seeds_note=seeds_note,
        noise=noise,
        clean=params.reference_classifier,
        rival=params.rival_classifier,
        learned=params.learned,
        budget=params.budget.flops,
    )


def ceiling_markdown(ceiling: dict) -> str:
    rows = [
        {
            "level": f"{row['level']:g}",
            "specialist (%)": f"{100 * row['specialist_accuracy']:.2f}",
            "best contestant": row["best_contestant"],
            "its accuracy (%)": f"{100 * row['best_contestant_accuracy']:.2f}",
            "ceiling (%)": f"{100 * row['ceiling']:.2f}",
            "above the specialist": ", ".join(row["above_specialist"]) or "none",
        }
        for row in ceiling["levels"]
    ]
    return (
        f"Validation accuracy on {ceiling['validation_images']} validation images per level; the "
        f"specialist is {ceiling['specialist_base']} fine-tuned on that one {ceiling['noise']} cell.\n\n"
        + pd.DataFrame(rows).to_markdown(index=False)
    )


def percent_markdown(inputs: verdicts.Inputs) -> str:
    """Every defense scored on the headline noise: test accuracy as a % of the ceiling."""
    rows = inputs.scores[inputs.scores["noise"] == inputs.noise]
    defenses = list(dict.fromkeys(zip(rows["denoiser"], rows["classifier"], strict=True)))
    table = verdicts.percent_of_ceiling(inputs.scores, inputs.ceiling, inputs.noise, defenses)
    return (
        f"Test accuracy on {inputs.noise} noise as a percentage of the ceiling at each level "
        "(denoiser + classifier; the classical filters are scored on their test subsets).\n\n"
        + table.to_markdown()
    )


def training_summaries(training_dir: Path, names) -> dict[str, dict]:
    """Compute records (parameters, charged_flops, train_seconds) of the learned denoisers."""
    summaries = {}
    for name in names:
        path = training_dir / name / "compute.json"
        if path.is_file():
            summaries[name] = json.loads(path.read_text())
    return summaries


def heldout_glance(suite: pd.DataFrame, named: dict) -> str:
    """The README's line on the held-out suite, for the headline defenses."""
    rows = suite.set_index(["denoiser", "classifier"])

    def part(role: str) -> str:
        row = rows.loc[named[role]]
        return (
            f"`{verdicts.label(*named[role])}` {100 * row['suite_mean']:.1f}% "
            f"(mCE {row['mCE']:.2f}, significant harm on {int(row['harms'])})"
        )

    none = rows.loc[named["frozen_none"]]
    return (
        f"- **Held-out corruptions** (MNIST-C's 15, never trained on; mean accuracy over them, "
        f"{int(none['n_images'])} test images each): no defense {100 * none['suite_mean']:.1f}%; "
        f"(a) {part('frozen_best')}; (b) {part('retrain')}, stacked {part('stacked')}."
    )


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
    for metric in ("psnr", "ssim"):
        write_with(
            figures_dir / f"{metric}_vs_level.png",
            lambda tmp, m=metric: plots.quality_vs_level(scores, params.families, m, tmp),
        )
    write_with(figures_dir / "gap_recovered.png", lambda tmp: plots.gap_heatmap(gaps, tmp))
    ev = params.evaluate
    side_by_side = comparison.comparison_table(
        scores,
        ev.headline_noise,
        ev.headline_level,
        training_summaries(Path(args.training), params.learned),
        denoiser_kinds(params),
        reference_runs=read_reference(Path(args.reference)),
    )
    compare_md = comparison.comparison_markdown(side_by_side, ev.headline_noise, ev.headline_level)
    write_with(Path(args.comparison).with_suffix(".csv"), lambda tmp: side_by_side.to_csv(tmp, index=False))
    write_text(args.comparison, compare_md)
    title = f"Confusion matrices at {ev.headline_noise} {ev.headline_level:g}"
    names = class_names(params.data.dataset)
    write_with(
        figures_dir / "confusion.png", lambda tmp: plots.confusion_matrices(confusion, title, tmp, names)
    )

    def rel(path: Path) -> str:
        return Path(os.path.relpath(path, out.parent)).as_posix()

    figures = {
        "Accuracy vs noise level (95% interval bands)": rel(evaluated / "accuracy_vs_level.png"),
        "PSNR vs noise level": rel(figures_dir / "psnr_vs_level.png"),
        "SSIM vs noise level": rel(figures_dir / "ssim_vs_level.png"),
        "Accuracy gap recovered": rel(figures_dir / "gap_recovered.png"),
        "Samples: clean / noisy / each denoiser": rel(evaluated / "samples.png"),
        title: rel(figures_dir / "confusion.png"),
    }
    inputs = answer_inputs(args, params, scores)
    charges = {
        (d, c): verdicts.defense_charge(inputs.records, d, c)
        for d, c in zip(scores["denoiser"], scores["classifier"], strict=True)
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
        rival_classifier=params.rival_classifier,
        charges=charges,
    )
    answer_text, headline, glance = verdicts.answers(inputs)
    named = verdicts.headline_defenses(inputs)
    suite_dir = Path(args.heldout)
    suite, suite_gains = read_csv(suite_dir / "summary.csv"), read_csv(suite_dir / "gains.csv")
    keys = ("frozen_best", "frozen_none", "retrain")
    reference = (NO_DENOISER, params.reference_classifier)
    headline |= heldout.headline(
        suite, {role: named[role] for role in keys}, reference, mce_role="frozen_best"
    )
    glance += "\n" + heldout_glance(suite, named)
    suite_charges = {
        (d, c): verdicts.defense_charge(inputs.records, d, c)
        for d, c in zip(suite["denoiser"], suite["classifier"], strict=True)
    }
    write_text(out.with_name("at_a_glance.md"), glance + "\n")
    curves_png = figures_dir / "compute_curves.png"
    write_with(
        curves_png,
        lambda tmp: plots.compute_curves(
            verdicts.curve_panels(inputs), tmp, "Validation accuracy vs training compute"
        ),
    )
    sections = {
        "The two questions, answered": answer_text,
        "Ceiling": ceiling_markdown(read_json(Path(args.ceiling) / "ceiling.json")),
        "Percent of ceiling": percent_markdown(inputs),
        "Compute-accuracy curves": f"![compute curves]({rel(curves_png)})\n\n"
        + verdicts.leaders_markdown(inputs),
        "Held-out corruptions": f"![held-out heatmap]({rel(suite_dir / 'heatmap.png')})\n\n"
        + heldout.markdown(suite, suite_gains, named, suite_charges),
        "Compute": "Training FLOPs per model (factors in each record's `factor`: 3 x forward per "
        "image trained on; the guided fine-tune 3 x the denoiser's + 2 x the frozen classifier's "
        "forward). Validation passes are not charged.\n\n" + verdicts.compute_markdown(inputs.records),
    }
    text = report.with_sections(text, sections)
    write_json(out.with_name("headline.json"), headline)
    write_text(out, text)
    log.info("wrote %s", out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--evaluate", required=True, help="the evaluate stage's output directory")
    parser.add_argument("--training", required=True, help="dvclive directories of the learned denoisers")
    parser.add_argument("--classifier-training", required=True, help="dvclive directories of the classifiers")
    parser.add_argument("--ceiling", required=True, help="the ceiling stage's output directory")
    parser.add_argument("--heldout", required=True, help="the evaluate_heldout stage's output directory")
    parser.add_argument("--reference", required=True, help="the reference recipe's results (.csv)")
    parser.add_argument("--seeds", required=True, help="the seeds workflow's results (.csv)")
    parser.add_argument("--comparison", required=True, help="side-by-side table (.md; a .csv goes beside it)")
    parser.add_argument("--out", required=True, help="report path, e.g. results/report.md")
    run_stage(main, parser)
