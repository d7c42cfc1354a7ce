"""train_denoiser: fit one blind denoiser (named in params ``denoisers``) on noisy/clean pairs.

By default every epoch draws new noise from ``train_noise`` (the same recipes as the
evaluation grid); a denoiser may override the levels and draw its noise once (the seeds'
recipe). Early-stops on the validation split and logs curves with dvclive.
"""

import logging

from pipeline.cli import run_stage, training_parser
from pipeline.data import DataError, to_float
from pipeline.distribute import get_strategy
from pipeline.io import load_dataset, save_model
from pipeline.models import build_denoiser
from pipeline.training import compile_denoiser, fit_denoiser, fit_logged, seed_everything

log = logging.getLogger("train_denoiser")


def main(args, params):
    if args.name not in params.denoisers:
        raise DataError(f"denoiser {args.name!r} is not in params.yaml denoisers: {sorted(params.denoisers)}")
    config = params.denoisers[args.name]
    dataset = load_dataset(args.data)
    seed_everything(params.seed)
    with get_strategy(params.distribute.strategy).scope():
        model = build_denoiser(
            config.architecture,
            config.filters,
            args.name,
            depth=config.depth,
            residual=config.residual,
            clip_indicators=config.clip_indicators,
        )
        compile_denoiser(model, config.loss, config.learning_rate)
        log.info("%s: %s, %d parameters", args.name, config.architecture, model.count_params())
        fit_logged(
            args.live,
            model,
            lambda callbacks: fit_denoiser(
                model,
                to_float(dataset.x_train),
                to_float(dataset.x_val),
                config.train_noise or params.train_noise.levels,
                config,
                seed=params.seed,
                clean_fraction=params.train_noise.clean_fraction,
                type_weights=params.train_noise.type_weights,
                fresh_noise=config.fresh_noise,
                callbacks=callbacks,
            ),
        )
    save_model(args.model, model)
    log.info("saved %s", args.model)


if __name__ == "__main__":
    parser = training_parser(__doc__)
    parser.add_argument("--name", required=True)
    run_stage(main, parser)
