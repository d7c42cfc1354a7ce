"""The seeds' reference recipe, run outside the default pipeline (a fixed recipe, not a
contestant of the matched comparison):

    python -m pipeline.reference        # after dvc repro; writes results/reference.csv
    python -m pipeline.reference --train-seed 1 --out results/reference_seeds/seed1.csv

Merges ``presets/reference.yaml`` into a copy of params.yaml, trains its denoiser with the
pipeline's own ``train_denoiser`` stage script, and scores it at the headline cell on the whole
test grid (PSNR, SSIM, accuracy with the clean classifier). The row records its compute and the
commit it came from; the report's comparison table shows it next to the published figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from pipeline.data import DataError, to_float
from pipeline.io import load_dataset, read_npz_arrays, write_with
from pipeline.params import ParamsError, load_params, parse_params
from pipeline.presets import PRESETS, deep_merge
from pipeline.seeds import commit, run_stage_script

log = logging.getLogger("reference")
COLUMNS = [
    "denoiser",
    "psnr",
    "ssim",
    "accuracy",
    "accuracy_low",
    "accuracy_high",
    "n_images",
    "parameters",
    "charged_tflop",
    "train_seconds",
    "epochs_run",
    "commit",
]


def reference_params(preset: Path, train_seed: int | None = None) -> tuple[dict, str]:
    """params.yaml with the preset merged in (and ``train_seed``, where given, in place of
    params' own), and the name of the preset's denoiser."""
    overlay = yaml.safe_load(preset.read_text()) or {}
    names = list(overlay.get("denoisers", {}))
    if len(names) != 1:
        raise ParamsError(f"{preset}: expected exactly one denoisers entry, found {names}")
    if train_seed is not None:
        overlay["train_seed"] = train_seed
    merged = deep_merge(yaml.safe_load(Path("params.yaml").read_text()), overlay)
    parse_params(merged, f"params.yaml + {preset.name}")
    return merged, names[0]


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default=str(PRESETS / "reference.yaml"))
    parser.add_argument("--out", default="results/reference.csv")
    parser.add_argument("--data", default="data/prepared/mnist.npz")
    parser.add_argument("--classifiers", default="models/classifiers")
    parser.add_argument(
        "--train-seed", type=int, help="train under this seed instead of params' train_seed (a seed spread)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        params = load_params()
        merged, name = reference_params(Path(args.preset), args.train_seed)
        ev = params.evaluate
        grid = Path(f"data/noisy/{ev.headline_noise}.npz")
        classifier = Path(args.classifiers) / f"{params.reference_classifier}.keras"
        for path in (grid, classifier, Path(args.data)):
            if not path.is_file():
                raise DataError(f"{path}: not found (run dvc repro first)")
    except (ParamsError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="reference-") as tmp:
        work = Path(tmp)
        params_file = work / "params.yaml"
        params_file.write_text(yaml.safe_dump(merged, sort_keys=False))
        model, live = work / f"{name}.keras", work / "live"
        run_stage_script(
            "train_denoiser",
            params_file,
            name=name,
            data=args.data,
            classifier=classifier,
            model=model,
            live=live,
        )
        record = json.loads((live / "compute.json").read_text())
        row = {
            "denoiser": name,
            **score(model, classifier, grid, ev.headline_level, args.data),
            "parameters": record["parameters"],
            "charged_tflop": record["charged_flops"] / 1e12,
            "train_seconds": record["train_seconds"],
            "epochs_run": json.loads((live / "metrics.json").read_text())["epochs_run"],
            "commit": commit(),
        }
    frame = pd.DataFrame([row], columns=COLUMNS)
    write_with(args.out, lambda tmp: frame.to_csv(tmp, index=False))
    log.info("wrote %s: %s", args.out, row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
