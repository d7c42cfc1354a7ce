"""Throughput benchmark: training and inference images/s, achieved FLOP/s, evaluation grid.

Uses the trained models and data of the last ``dvc repro`` (run it first) and writes
``results/benchmarks/models.json`` and ``results/benchmarks/evaluate.json``:

    python -m benchmarks.benchmark [--images 4096]

Training FLOPs are taken as 3x the forward count (forward + backward), the usual estimate.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import describe
from pipeline.data import to_float
from pipeline.evaluation import evaluate_grid, model_restorer, restore
from pipeline.flops import model_flops
from pipeline.io import load_dataset, write_json
from pipeline.models import load_model
from pipeline.params import load_params

OUT = Path("results/benchmarks")


def timed(function, repeats: int = 2) -> float:
    """Best wall time of ``repeats`` calls after one warm-up call."""
    function()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def bench_model(model, x, y, loss, train_batch, predict_batch) -> dict:
    """Inference as the evaluate stage runs it (``predict`` on arrays); training as the stages
    feed it (a non-autotuned ``tf.data`` dataset, see ``pipeline.feeds.validation_batches``)."""
    import keras

    from pipeline.feeds import validation_batches

    flops = model_flops(model)
    predict_s = timed(lambda: model.predict(x, batch_size=predict_batch, verbose=0))
    trainable = keras.models.clone_model(model)
    trainable.compile(optimizer="adam", loss=loss)
    batches = validation_batches(x, y, train_batch)
    train_s = timed(lambda: trainable.fit(batches, epochs=1, shuffle=False, verbose=0))
    return {
        "parameters": model.count_params(),
        "forward_mflop_per_image": round(flops / 1e6, 2),
        "inference_images_per_s": round(len(x) / predict_s, 1),
        "inference_gflop_per_s": round(flops * len(x) / predict_s / 1e9, 2),
        "train_images_per_s": round(len(x) / train_s, 1),
        "train_gflop_per_s": round(3 * flops * len(x) / train_s / 1e9, 2),
        "train_batch": train_batch,
        "predict_batch": predict_batch,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=4096)
    args = parser.parse_args()
    params = load_params()
    dataset = load_dataset("data/prepared/mnist.npz")
    clean = to_float(dataset.x_test[: args.images])
    labels = dataset.y_test[: args.images]
    classifier = load_model("models/classifiers/clean.keras")
    denoisers = {name: load_model(f"models/denoisers/{name}.keras") for name in params.learned}
    batch = params.evaluate.batch_size

    models = {}
    for name, model in denoisers.items():
        fits = {params.tune.name: params.tune.final, params.guided.name: params.guided}
        config = params.denoisers.get(name) or fits[name]
        loss = getattr(config, "loss", "mse")  # tuned: the loss is a searched hyperparameter; guided: MSE
        models[name] = bench_model(model, clean, clean, loss, config.batch_size, batch)
        print(name, models[name], flush=True)
    models["classifier"] = bench_model(
        classifier,
        clean,
        labels,
        "sparse_categorical_crossentropy",
        params.classifiers[params.reference_classifier].batch_size,
        batch,
    )
    print("classifier", models["classifier"], flush=True)
    machine = describe()
    write_json(OUT / "models.json", {"machine": machine, "images": args.images, "models": models})

    # Evaluation grid on a slice: total time versus the models' own forward passes.
    grids = {}
    for kind in list(params.noise)[:2]:
        with np.load(f"data/noisy/{kind}.npz") as archive:
            grids[kind] = (archive["levels"], archive["images"][:, : args.images])
    cells = sum(len(levels) for levels, _ in grids.values())
    total_s = timed(
        lambda: evaluate_grid(
            clean,
            labels,
            grids,
            {name: model_restorer(model, batch) for name, model in denoisers.items()},
            {"cnn": classifier},
            batch,
        )[0],
        repeats=1,
    )

    def forwards():
        for _, images in grids.values():
            for noisy in images:
                for model in [None, *denoisers.values()]:
                    classifier.predict(restore(model, noisy, batch), batch_size=batch, verbose=0)

    forward_s = timed(forwards, repeats=1)
    record = {
        "machine": machine,
        "cells": cells,
        "images_per_cell": args.images,
        "denoisers": list(denoisers),
        "grid_seconds": round(total_s, 2),
        "model_forward_seconds": round(forward_s, 2),
        "non_model_fraction": round(max(total_s - forward_s, 0) / total_s, 3),
        "scored_images_per_s": round(cells * args.images * (1 + len(denoisers)) / total_s, 1),
    }
    print(record)
    write_json(OUT / "evaluate.json", record)


if __name__ == "__main__":
    main()
