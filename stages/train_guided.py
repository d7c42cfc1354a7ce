"""train_guided: fine-tune a trained denoiser with the frozen classifier's loss (task-guided).

Starts from ``guided.base`` (a ``denoisers`` entry) and minimises pixel MSE plus
``guided.classification_weight`` x the cross-entropy of the frozen ``guided.classifier`` on the
denoised images, on the same fresh training noise; early-stops on the validation pairs.
"""

import logging

from pipeline.cli import run_stage, training_parser
from pipeline.data import to_float
from pipeline.distribute import get_strategy
from pipeline.io import load_dataset, load_model, save_model
from pipeline.training import fit_guided, fit_logged, seed_everything

log = logging.getLogger("train_guided")


def main(args, params):
    config = params.guided
    dataset = load_dataset(args.data)
    seed_everything(params.seed)
    with get_strategy(params.distribute.strategy).scope():
        denoiser = load_model(args.base)
        classifier = load_model(args.classifier)
        fit_logged(
            args.live,
            denoiser,
            lambda callbacks: fit_guided(
                denoiser,
                classifier,
                to_float(dataset.x_train),
                dataset.y_train,
                to_float(dataset.x_val),
                dataset.y_val,
                params.train_noise.levels,
                config,
                seed=params.seed,
                clean_fraction=params.train_noise.clean_fraction,
                type_weights=params.train_noise.type_weights,
                callbacks=callbacks,
            ),
            mse_metric="val_image_mse",
        )
    save_model(args.model, denoiser)
    log.info("saved %s", args.model)


if __name__ == "__main__":
    parser = training_parser(__doc__)
    parser.add_argument("--base", required=True, help="the trained denoiser to start from (.keras)")
    parser.add_argument("--classifier", required=True, help="the frozen classifier (.keras)")
    run_stage(main, parser)
