"""The seeds' reference recipe, run outside the default pipeline (a fixed recipe, not a
contestant of the matched comparison):

    python -m pipeline.reference                      # after dvc repro; params' train_seed
    python -m pipeline.reference --train-seeds 42 1 2 # one row per training seed (a spread)

Merges ``presets/reference.yaml`` into a copy of params.yaml, trains its denoiser with the
pipeline's own ``train_denoiser`` stage script once per training seed, and scores each at the
headline cell on the whole test grid (PSNR, SSIM, accuracy with the clean classifier). Each row
records its training seed, its compute and the commit it came from; the report's comparison
table shows them, and their mean, next to the published figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from pipeline.data import DataError, Dataset, to_float
from pipeline.io import load_dataset, read_npz_arrays, save_dataset, write_with
from pipeline.params import ParamsError, load_params, parse_params
from pipeline.presets import PRESETS, deep_merge
from pipeline.seeds import commit, run_stage_script

log = logging.getLogger("reference")
COLUMNS = [
    "denoiser",
    "train_seed",
    "psnr",
    "ssim",
    "accuracy",
    "accuracy_low",
    "accuracy_high",
    "n_images",
    "parameters",
    "charged_tflop",
    "train_seconds",
    "train_images",
    "epochs_run",
    "commit",
]


def reference_params(preset: Path, train_seed: int | None = None) -> tuple[dict, str, bool]:
    """params.yaml with the preset merged in (and ``train_seed``, where given, in place of
    params' own), the name of the preset's denoiser, and whether it trains on the whole training
    set.

    The preset's ``reference`` section holds the recipe's data, which this workflow alone
    applies (``python -m pipeline.presets`` skips it, since it would change every model):
    ``whole_training_set`` (the validation images join the training split, for a recipe that
    chooses nothing on validation) and ``clean_fraction`` (in place of ``train_noise``'s).
    """
    overlay = yaml.safe_load(preset.read_text()) or {}
    names = list(overlay.get("denoisers", {}))
    if len(names) != 1:
        raise ParamsError(f"{preset}: expected exactly one denoisers entry, found {names}")
    section = overlay.pop("reference", None) or {}
    whole_training_set = section.get("whole_training_set", False)
    unknown = sorted(set(section) - {"whole_training_set", "clean_fraction"})
    if unknown or not isinstance(whole_training_set, bool):
        raise ParamsError(
            f"{preset}: reference: expected whole_training_set (true or false) and clean_fraction, "
            f"got {section}"
        )
    if "clean_fraction" in section:
        overlay.setdefault("train_noise", {})["clean_fraction"] = section["clean_fraction"]
    if train_seed is not None:
        overlay["train_seed"] = train_seed
    merged = deep_merge(yaml.safe_load(Path("params.yaml").read_text()), overlay)
    parse_params(merged, f"params.yaml + {preset.name}")
    return merged, names[0], whole_training_set


def with_validation_in_training(dataset: Dataset) -> Dataset:
    """``dataset`` with the validation images added to its training split (validation and test
    unchanged)."""
    x_train = np.concatenate([dataset.x_train, dataset.x_val])
    y_train = np.concatenate([dataset.y_train, dataset.y_val])
    return dataclasses.replace(dataset, x_train=x_train, y_train=y_train)


def score(model_path: Path, classifier_path: Path, grid: Path, level: float, data: str) -> dict:
    """PSNR, SSIM and accuracy (with its Wilson interval) of the denoiser at one level of the
    noise stage's ``grid`` file, scored as the evaluate stage scores (input contract included)."""
    from pipeline.evaluation import evaluate_grid, model_restorer
    from pipeline.models import load_model
    from pipeline.tables import add_intervals

    arrays = read_npz_arrays(grid, ("levels", "images"))
    matches = np.flatnonzero(np.isclose(arrays["levels"], level))
    if not len(matches):
        raise DataError(f"{grid} has no level {level}: rerun the noise stage (dvc repro)")
    dataset = load_dataset(data)
    cell = slice(matches[0], matches[0] + 1)
    scores, _, _ = evaluate_grid(
        to_float(dataset.x_test),
        dataset.y_test,
        {grid.stem: (arrays["levels"][cell], arrays["images"][cell])},
        {"reference": model_restorer(load_model(model_path), 512)},
        {"classifier": load_model(classifier_path)},
        512,
    )
    row = add_intervals(scores, ()).set_index("denoiser").loc["reference"]
    keys = ("psnr", "ssim", "accuracy", "accuracy_low", "accuracy_high", "n_images")
    return {key: row[key].item() for key in keys}


def train_and_score(
    merged: dict, name: str, train_data: Path, data: Path, classifier: Path, grid: Path, level: float
) -> dict:
    """Train denoiser ``name`` under ``merged`` (its params, training seed included) on
    ``train_data`` in a temporary folder and score it at ``level`` of ``grid`` (test images from
    ``data``): one row."""
    with tempfile.TemporaryDirectory(prefix="reference-") as tmp:
        work = Path(tmp)
        params_file = work / "params.yaml"
        params_file.write_text(yaml.safe_dump(merged, sort_keys=False))
        model, live = work / f"{name}.keras", work / "live"
        run_stage_script(
            "train_denoiser",
            params_file,
            name=name,
            data=train_data,
            classifier=classifier,
            model=model,
            live=live,
        )
        record = json.loads((live / "compute.json").read_text())
        return {
            "denoiser": name,
            "train_seed": merged["train_seed"],
            **score(model, classifier, grid, level, data),
            "parameters": record["parameters"],
            "charged_tflop": record["charged_flops"] / 1e12,
            "train_seconds": record["train_seconds"],
            "epochs_run": json.loads((live / "metrics.json").read_text())["epochs_run"],
            "commit": commit(),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default=str(PRESETS / "reference.yaml"))
    parser.add_argument("--out", default="results/reference.csv")
    parser.add_argument("--data", default="data/prepared/mnist.npz")
    parser.add_argument("--classifiers", default="models/classifiers")
    parser.add_argument(
        "--train-seeds", type=int, nargs="+", help="train once under each (default: params' train_seed)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        params = load_params()
        seeds = args.train_seeds or [params.fit_seed]
        if len(set(seeds)) != len(seeds):
            raise ParamsError(f"--train-seeds {seeds}: name each seed once")
        recipes = {seed: reference_params(Path(args.preset), seed) for seed in seeds}
        data, classifier = Path(args.data), Path(args.classifiers) / f"{params.reference_classifier}.keras"
        grid = Path(f"data/noisy/{params.evaluate.headline_noise}.npz")
        for path in (grid, classifier, data):
            if not path.is_file():
                raise DataError(f"{path}: not found (run dvc repro first)")
    except (ParamsError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    whole_training_set = next(iter(recipes.values()))[2]  # the preset's, the same for every seed
    rows = []
    with tempfile.TemporaryDirectory(prefix="reference-data-") as tmp:
        dataset = load_dataset(data)
        train_data = data
        if whole_training_set:
            dataset, train_data = with_validation_in_training(dataset), Path(tmp) / "data.npz"
            save_dataset(train_data, dataset)
        for merged, name, _ in recipes.values():
            row = train_and_score(
                merged, name, train_data, data, classifier, grid, params.evaluate.headline_level
            )
            rows.append({**row, "train_images": len(dataset.x_train)})
            log.info("%s: %s", name, rows[-1])
    frame = pd.DataFrame(rows, columns=COLUMNS)
    write_with(args.out, lambda tmp: frame.to_csv(tmp, index=False))
    log.info("wrote %s (%d rows)", args.out, len(frame))
    return 0


if __name__ == "__main__":
    sys.exit(main())
