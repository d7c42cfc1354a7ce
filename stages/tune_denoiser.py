"""tune_denoiser: keras-tuner search over a U-Net space, then the final fit of the best model.

The search scores trials by validation MSE on a subset of the training/validation split
(never the test set). Search and final fit share the common budget ``budget.flops``: the final
fit gets what the search did not spend. Its state lives in a persisted directory (``persist: true`` in
dvc.yaml), so an interrupted search resumes when the stage runs again; the project name hashes
the search space and budget, so changing either starts a fresh search. The best
hyperparameters go to a JSON file and the final model is retrained from them with dvclive curves.

Distributed search: run this stage (``dvc repro tune_denoiser``) as the chief with
``KERASTUNER_TUNER_ID=chief``, ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` set, and
the same command with ``KERASTUNER_TUNER_ID=tuner0``, ``tuner1``, ... on workers sharing the
tuner directory; workers run trials and exit, the chief writes the outputs.
"""

import logging
import os

from pipeline.budget import Allocation, allocate, budgeted_fit
from pipeline.cli import run_stage, training_parser
from pipeline.curves import ComputeCurve, defense_accuracy, validation_curve_set
from pipeline.data import to_float
from pipeline.distribute import get_strategy
from pipeline.feeds import FreshNoisePairs, pair_feeds
from pipeline.flops import TRAIN_FACTOR_NOTE, training_flops_per_image
from pipeline.io import load_dataset, write_json
from pipeline.models import load_model, save_model
from pipeline.params import ParamsError
from pipeline.records import fit_logged
from pipeline.training import fit_denoiser, seed_everything
from pipeline.tuning import build_unet_from, make_tuner, project_name, run_search, search_compute

log = logging.getLogger("tune_denoiser")


def is_chief() -> bool:
    """True unless this process is a keras-tuner distributed worker (KERASTUNER_TUNER_ID != chief)."""
    return os.environ.get("KERASTUNER_TUNER_ID", "chief") == "chief"


def main(args, params):
    search, final = params.tune.search, params.tune.final
    mix = params.train_noise.mix
    dataset = load_dataset(args.data)
    x_train, x_val = to_float(dataset.x_train), to_float(dataset.x_val)
    classifier = load_model(args.classifier)
    seed_everything(params.fit_seed)
    strategy = get_strategy(params.distribute.strategy)

    budget = {"seed": params.fit_seed, "train_noise": params.train_noise.model_dump(), **search.model_dump()}
    tuner = make_tuner(
        search.algorithm,
        args.tuner_dir,
        project_name(search.algorithm, budget),
        max_epochs=search.max_epochs,
        max_trials=search.max_trials,
        hyperband_factor=search.factor,
        seed=params.fit_seed,
        distribution_strategy=strategy,
    )
    val = x_val[: search.validation_size]
    train = FreshNoisePairs(x_train, mix, final.batch_size, params.fit_seed, search.train_size)
    result = run_search(tuner, *pair_feeds(train, val, val, params.seed), epochs=search.max_epochs)
    if not is_chief():  # a distributed-search worker: the chief writes the outputs
        log.info("worker %s: %d trials completed", os.environ["KERASTUNER_TUNER_ID"], result["completed"])
        return
    spent = search_compute(tuner, search.train_size)
    write_json(args.best, {"algorithm": search.algorithm, **result, **spent})
    log.info("best hyperparameters %s (val_mse %.5f)", result["best_hyperparameters"], result["best_val_mse"])

    seed_everything(params.fit_seed)
    with strategy.scope():
        model = build_unet_from(result["best_hyperparameters"], name=params.tune.name)
        left = params.budget.flops - spent["search_flops"]
        if left <= 0:
            raise ParamsError(
                f"budget.flops={params.budget.flops:.4g} is below what the search spent "
                f"({spent['search_flops']:.4g}): raise budget.flops or shrink tune.search"
            )
        key = f"budget.flops (tune.final, after the search's {spent['search_flops']:.4g})"
        per_image = training_flops_per_image(model)
        share = allocate(left, per_image, params.budget.checkpoints, final.batch_size, key)
        allocation = Allocation(share.slices, share.slice_images, per_image, spent["search_flops"])
        fit = budgeted_fit(allocation, final, "tune.final.lr_drop_epochs")
        curves = validation_curve_set(params, x_val, dataset.y_val)
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
                callbacks=callbacks,
                validation_seed=params.seed,
            ),
            allocation,
            factor=TRAIN_FACTOR_NOTE + "; the search's trials at the same factor",
            curve=ComputeCurve(lambda: defense_accuracy(curves, classifier, model), allocation),
        )
    save_model(args.model, model)
    log.info("saved %s", args.model)


if __name__ == "__main__":
    parser = training_parser(__doc__)
    parser.add_argument("--tuner-dir", required=True, help="persisted keras-tuner directory")
    parser.add_argument("--best", required=True, help="best hyperparameters (.json)")
    parser.add_argument(
        "--classifier", required=True, help="the frozen clean classifier (.keras) for the curve"
    )
    run_stage(main, parser)
