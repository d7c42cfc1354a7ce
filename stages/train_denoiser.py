"""train_denoiser: fit one blind denoiser (named in params ``denoisers``) on noisy/clean pairs.

A budgeted denoiser trains for the common budget ``budget.flops`` in ``budget.checkpoints``
slices of fresh noisy images; a fixed recipe (``budget: false``) for its own epochs, and it may
override the levels and draw its noise once (the reference recipe). After every slice the
defense (this denoiser in front of the frozen clean classifier) is scored on the validation
curve set. Early-stops on the validation split and logs curves with dvclive.
"""

import dataclasses
import logging

from pipeline.budget import denoiser_fit
from pipeline.cli import run_stage, training_parser
from pipeline.curves import ComputeCurve, defense_accuracy, validation_curve_set
from pipeline.data import DataError, to_float
from pipeline.distribute import get_strategy
from pipeline.flops import TRAIN_FACTOR_NOTE, training_flops_per_image
from pipeline.io import load_dataset
from pipeline.models import build_denoiser, load_model, save_model
from pipeline.records import fit_logged
from pipeline.training import compile_denoiser, fit_denoiser, seed_everything

log = logging.getLogger("train_denoiser")


def main(args, params):
    if args.name not in params.denoisers:
        raise DataError(f"denoiser {args.name!r} is not in params.yaml denoisers: {sorted(params.denoisers)}")
    config = params.denoisers[args.name]
    dataset = load_dataset(args.data)
    x_train, x_val = to_float(dataset.x_train), to_float(dataset.x_val)
    classifier = load_model(args.classifier)
    seed_everything(params.fit_seed)
    with get_strategy(params.distribute.strategy).scope():
        model = build_denoiser(
            config.architecture,
            config.filters,
            args.name,
            depth=config.depth,
            residual=config.residual,
            clip_indicators=config.clip_indicators,
            block_order=config.block_order,
        )
        allocation, fit = denoiser_fit(params, args.name, training_flops_per_image(model), len(x_train))
        compile_denoiser(model, config.loss, config.learning_rate)
        log.info(
            "%s: %s, %d parameters, %d slices x %d images (%.2f TFLOP)",
            args.name,
            config.architecture,
            model.count_params(),
            allocation.slices,
            allocation.slice_images,
            allocation.flops / 1e12,
        )
        mix = params.train_noise.mix  # a fixed recipe may train on levels of its own
        mix = dataclasses.replace(mix, levels=config.train_noise) if config.train_noise else mix
        curves = validation_curve_set(params, x_val, dataset.y_val)
        curve = ComputeCurve(lambda: defense_accuracy(curves, classifier, model), allocation)
        fit_logged(
            args.live,
            model,
            lambda callbacks: fit_denoiser(
                model,
                x_train,
                x_val,
                mix,
                fit,
                seed=params.fit_seed,
                fresh_noise=config.fresh_noise,
                callbacks=callbacks,
                validation_seed=params.seed,
            ),
            allocation,
            factor=TRAIN_FACTOR_NOTE,
            curve=curve,
        )
    save_model(args.model, model)
    log.info("saved %s", args.model)


if __name__ == "__main__":
    parser = training_parser(__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument(
        "--classifier", required=True, help="the frozen clean classifier (.keras) for the curve"
    )
    run_stage(main, parser)
