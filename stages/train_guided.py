"""train_guided: fine-tune a trained denoiser with the frozen classifier's loss (task-guided).

Starts from ``guided.base`` (a ``denoisers`` entry) and minimises pixel MSE plus
``guided.classification_weight`` x the cross-entropy of the frozen ``guided.classifier`` on the
denoised images, on the same fresh training noise; early-stops on the validation pairs. It is
charged its base's compute plus the fine-tune's (the classifier's forward and input gradient
included), and its compute curve starts where its base's ended.
"""

import json
import logging
from pathlib import Path

from pipeline.budget import Allocation
from pipeline.cli import run_stage, training_parser
from pipeline.curves import ComputeCurve, defense_accuracy, validation_curve_set
from pipeline.data import DataError, to_float
from pipeline.distribute import get_strategy
from pipeline.flops import GUIDED_FACTOR_NOTE, training_flops_per_image
from pipeline.guided import fit_guided
from pipeline.io import load_dataset
from pipeline.models import load_model, save_model
from pipeline.records import fit_logged
from pipeline.training import seed_everything

log = logging.getLogger("train_guided")


def base_charge(path: Path) -> float:
    """The base denoiser's charged FLOPs, from its compute record."""
    if not path.is_file():
        raise DataError(f"{path}: the base denoiser's compute record is missing (dvc repro train_denoiser)")
    return float(json.loads(path.read_text())["charged_flops"])


def main(args, params):
    config = params.guided
    dataset = load_dataset(args.data)
    x_train, x_val = to_float(dataset.x_train), to_float(dataset.x_val)
    start = base_charge(Path(args.base_compute))
    denoiser = load_model(args.base)
    classifier = load_model(args.classifier)
    seed_everything(params.fit_seed)
    with get_strategy(params.distribute.strategy).scope():
        per_image = training_flops_per_image(denoiser, frozen=classifier)
        images = config.train_size or len(x_train)
        allocation = Allocation(config.epochs, images, per_image, start_flops=start)
        curves = validation_curve_set(params, x_val, dataset.y_val)
        fit_logged(
            args.live,
            denoiser,
            lambda callbacks: fit_guided(
                denoiser,
                classifier,
                x_train,
                dataset.y_train,
                x_val,
                dataset.y_val,
                params.train_noise.mix,
                config,
                seed=params.fit_seed,
                callbacks=callbacks,
                validation_seed=params.seed,
            ),
            allocation,
            factor=GUIDED_FACTOR_NOTE,
            mse_metric="val_image_mse",
            curve=ComputeCurve(lambda: defense_accuracy(curves, classifier, denoiser), allocation),
        )
    save_model(args.model, denoiser)
    log.info("saved %s", args.model)


if __name__ == "__main__":
    parser = training_parser(__doc__)
    parser.add_argument("--base", required=True, help="the trained denoiser to start from (.keras)")
    parser.add_argument("--base-compute", required=True, help="the base's compute record (compute.json)")
    parser.add_argument("--classifier", required=True, help="the frozen classifier (.keras)")
    run_stage(main, parser)
