"""train_classifier: fit the MNIST CNN on clean digits; report its clean test accuracy."""

import argparse
import logging
import time

from dvclive import Live
from dvclive.keras import DVCLiveCallback

from pipeline.cli import run_stage
from pipeline.data import to_float
from pipeline.io import load_dataset, save_model
from pipeline.metrics import accuracy
from pipeline.models import build_classifier
from pipeline.training import seed_everything, train_classifier

log = logging.getLogger("train_classifier")


def main(args, params):
    config = params.classifier
    dataset = load_dataset(args.data)
    seed_everything(params.seed)
    model = build_classifier(config.filters, config.dense_units, config.dropout)
    start = time.perf_counter()
    with Live(dir=args.live, save_dvc_exp=False, dvcyaml=None) as live:
        train_classifier(
            model,
            to_float(dataset.x_train),
            dataset.y_train,
            to_float(dataset.x_val),
            dataset.y_val,
            epochs=config.epochs,
            batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            patience=config.patience,
            callbacks=[DVCLiveCallback(live=live)],
        )
        live.summary["train_seconds"] = round(time.perf_counter() - start, 1)
        probabilities = model.predict(to_float(dataset.x_test), batch_size=1024, verbose=0)
        live.summary["clean_test_accuracy"] = accuracy(probabilities, dataset.y_test)
        log.info("clean test accuracy %.4f", live.summary["clean_test_accuracy"])
    save_model(args.model, model)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--live", required=True, help="dvclive output directory")
    run_stage(main, parser)
