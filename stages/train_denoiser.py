"""train_denoiser: fit one blind denoiser (named in params ``denoisers``) on fresh noise.

Every epoch draws new noise from ``train_noise`` (the same recipes as the evaluation grid),
early-stops on the validation split and logs curves with dvclive.
"""

import argparse
import logging
import time

from dvclive import Live
from dvclive.keras import DVCLiveCallback

from pipeline.cli import run_stage
from pipeline.data import DataError, to_float
from pipeline.io import load_dataset, save_model
from pipeline.models import build_denoiser
from pipeline.training import seed_everything, train_denoiser

log = logging.getLogger("train_denoiser")


def main(args, params):
    if args.name not in params.denoisers:
        raise DataError(f"denoiser {args.name!r} is not in params.yaml denoisers: {sorted(params.denoisers)}")
    config = params.denoisers[args.name]
    dataset = load_dataset(args.data)
    seed_everything(params.seed)
    model = build_denoiser(config.architecture, config.filters, args.name)
    log.info("%s: %s, %d parameters", args.name, config.architecture, model.count_params())
    start = time.perf_counter()
    with Live(dir=args.live, save_dvc_exp=False, dvcyaml=None) as live:
        history = train_denoiser(
            model,
            to_float(dataset.x_train),
            to_float(dataset.x_val),
            params.train_noise.levels,
            seed=params.seed,
            loss=config.loss,
            epochs=config.epochs,
            batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            patience=config.patience,
            epoch_size=config.train_size,
            clean_fraction=params.train_noise.clean_fraction,
            callbacks=[DVCLiveCallback(live=live)],
        )
        live.summary["best_val_loss"] = min(history.history["val_loss"])
        live.summary["epochs_run"] = len(history.history["val_loss"])
        live.summary["train_seconds"] = round(time.perf_counter() - start, 1)
        live.summary["parameters"] = model.count_params()
    save_model(args.model, model)
    log.info("saved %s", args.model)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--live", required=True, help="dvclive output directory")
    run_stage(main, parser)
