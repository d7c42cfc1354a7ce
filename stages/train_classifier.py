"""train_classifier: fit one MNIST CNN (named in params ``classifiers``); report its clean test accuracy.

A classifier with ``noise_augmentation`` trains on fresh noise from ``train_noise`` every epoch:
the rival defense to putting a denoiser in front of a clean-trained classifier. With
``match_budget`` its training compute is set to what the largest denoising defense actually spent
(``pipeline.budget.rival_target_flops``: the compute records under ``--defense-compute`` plus
``--clean-compute``), in ``budget.checkpoints`` slices. After every epoch or
slice the classifier alone is scored on the validation curve set.
"""

import logging
from pathlib import Path

from pipeline.budget import (
    classifier_fit,
    matched_contestants,
    read_compute_record,
    read_compute_records,
    rival_target_flops,
)
from pipeline.cli import run_stage, training_parser
from pipeline.curves import ComputeCurve, defense_accuracy, validation_curve_set
from pipeline.data import DataError, to_float
from pipeline.distribute import get_strategy
from pipeline.flops import TRAIN_FACTOR_NOTE, training_flops_per_image
from pipeline.io import load_dataset
from pipeline.metrics import accuracy
from pipeline.models import build_classifier, save_model
from pipeline.records import fit_logged
from pipeline.training import seed_everything, train_classifier

log = logging.getLogger("train_classifier")


def clean_test_accuracy(model, dataset) -> float:
    probabilities = model.predict(to_float(dataset.x_test), batch_size=1024, verbose=0)
    return accuracy(probabilities, dataset.y_test)


def matched_target(args, params) -> float:
    """The rival's FLOPs, read before any training: a missing record stops the stage at once."""
    if not (args.defense_compute and args.clean_compute):
        raise DataError(
            f"classifiers.{args.name} has match_budget: pass --defense-compute (the denoisers' "
            "results directory) and --clean-compute (the clean classifier's compute.json)"
        )
    clean = read_compute_record(Path(args.clean_compute), "what the clean classifier spent")
    defenses = read_compute_records(Path(args.defense_compute), matched_contestants(params))
    target = rival_target_flops(params, defenses, clean)
    log.info("%s: matched to %.2f TFLOP (the largest denoising defense spent)", args.name, target / 1e12)
    return target


def main(args, params):
    if args.name not in params.classifiers:
        raise DataError(
            f"classifier {args.name!r} is not in params.yaml classifiers: {sorted(params.classifiers)}"
        )
    config = params.classifiers[args.name]
    target = matched_target(args, params) if config.match_budget else None
    dataset = load_dataset(args.data)
    x_train, x_val = to_float(dataset.x_train), to_float(dataset.x_val)
    seed_everything(params.fit_seed)
    with get_strategy(params.distribute.strategy).scope():
        model = build_classifier(config.filters, config.dense_units, config.dropout, name=args.name)
        allocation, fit = classifier_fit(
            params, args.name, training_flops_per_image(model), len(x_train), target
        )
        log.info(
            "%s: %d parameters, %d slices x %d images (%.2f TFLOP)",
            args.name,
            model.count_params(),
            allocation.slices,
            allocation.slice_images,
            allocation.flops / 1e12,
        )
        curves = validation_curve_set(params, x_val, dataset.y_val)
        fit_logged(
            args.live,
            model,
            lambda callbacks: train_classifier(
                model,
                x_train,
                dataset.y_train,
                x_val,
                dataset.y_val,
                config,
                seed=params.fit_seed,
                mix=params.train_noise.mix,
                callbacks=callbacks,
                fit=fit,
                validation_seed=params.seed,
            ),
            allocation,
            factor=TRAIN_FACTOR_NOTE,
            mse_metric=None,
            curve=ComputeCurve(lambda: defense_accuracy(curves, model), allocation),
            extra=lambda: {"clean_test_accuracy": clean_test_accuracy(model, dataset)},
        )
    save_model(args.model, model)
    log.info("saved %s", args.model)


if __name__ == "__main__":
    parser = training_parser(__doc__)
    parser.add_argument("--name", required=True, help="a params.yaml classifiers entry")
    parser.add_argument("--defense-compute", help="with match_budget: <dir>/<denoiser>/compute.json")
    parser.add_argument("--clean-compute", help="with match_budget: the clean classifier's compute.json")
    run_stage(main, parser)
