"""train_classifier: fit one MNIST CNN (named in params ``classifiers``); report its clean test accuracy.

A classifier with ``noise_augmentation`` trains on fresh noise from ``train_noise`` every epoch:
the rival defense to putting a denoiser in front of a clean-trained classifier.
"""

import logging

from pipeline.cli import run_stage, training_parser
from pipeline.data import DataError, to_float
from pipeline.distribute import get_strategy
from pipeline.io import load_dataset, save_model
from pipeline.metrics import accuracy
from pipeline.models import build_classifier
from pipeline.training import fit_logged, seed_everything, train_classifier

log = logging.getLogger("train_classifier")


def clean_test_accuracy(model, dataset) -> float:
    probabilities = model.predict(to_float(dataset.x_test), batch_size=1024, verbose=0)
    return accuracy(probabilities, dataset.y_test)


def main(args, params):
    if args.name not in params.classifiers:
        raise DataError(
            f"classifier {args.name!r} is not in params.yaml classifiers: {sorted(params.classifiers)}"
        )
    config = params.classifiers[args.name]
    dataset = load_dataset(args.data)
    seed_everything(params.seed)
    with get_strategy(params.distribute.strategy).scope():
        model = build_classifier(config.filters, config.dense_units, config.dropout, name=args.name)
        summary = fit_logged(
            args.live,
            model,
            lambda callbacks: train_classifier(
                model,
                to_float(dataset.x_train),
                dataset.y_train,
                to_float(dataset.x_val),
                dataset.y_val,
                config,
                seed=params.seed,
                levels=params.train_noise.levels,
                clean_fraction=params.train_noise.clean_fraction,
                type_weights=params.train_noise.type_weights,
                callbacks=callbacks,
            ),
            mse_metric=None,
            extra=lambda: {"clean_test_accuracy": clean_test_accuracy(model, dataset)},
        )
    log.info("%s: clean test accuracy %.4f", args.name, summary["clean_test_accuracy"])
    save_model(args.model, model)


if __name__ == "__main__":
    parser = training_parser(__doc__)
    parser.add_argument("--name", required=True, help="a params.yaml classifiers entry")
    run_stage(main, parser)
