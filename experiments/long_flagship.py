"""How far the blind flagship gets with many times the default pipeline's training budget.

A resumable, documented experiment outside ``dvc repro`` (its budget is hours on this CPU, the
pipeline's is 45 minutes): the flagship (params ``denoisers.unet_res``, optionally wider) is
trained for ``--epochs`` over the whole training split with fresh noise, the learning rate
dropping tenfold at ``--decay-epoch``. One epoch at a time, each a pure function of the
checkpoint, the seed and the epoch's number (same draws as the pipeline's fits: epoch ``e``
sees ``FreshNoisePairs`` draw ``e``), so an interrupted run resumes bit for bit from its last
finished epoch. After every epoch the model (with its optimizer state) is checkpointed under
``models/long/<name>/`` and the curve (validation MSE; PSNR/SSIM at gaussian 0.1 / 0.5 / 1.0
on the first ``--images`` validation images, one fixed draw) goes to
``results/benchmarks/long_flagship_<name>.json``, which is also the run's state:

    python -m experiments.long_flagship --name f32_36ep --epochs 36 --decay-epoch 30 --minutes 90
    python -m experiments.long_flagship --name f32_36ep --epochs 36 --decay-epoch 30  # resumes

When all epochs are done, the model is scored once on the test set: the evaluation stage's
Gaussian grid (``data/noisy/gaussian.npz``, so the figures compare with
``results/evaluate/scores.csv``), PSNR/SSIM and the clean classifier's accuracy
(``models/classifiers/<guided.classifier>.keras``); then it gets the pipeline's task-guided
fine-tune (params ``guided``, as stage train_guided does for ``unet_res``) and is scored
again. Needs ``dvc repro`` first.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from benchmarks.machine import describe
from experiments.scoring import SCORE_SEED, noise_scores
from pipeline.data import DataError, to_float
from pipeline.evaluation import classify, image_quality, restore
from pipeline.io import load_dataset, read_npz_arrays, write_json
from pipeline.models import load_model, save_model
from pipeline.params import load_params

CHECKPOINTS = Path("models/long")
RESULTS = Path("results/benchmarks")
CURVE_LEVELS = (0.1, 0.5, 1.0)


def learning_rate(base: float, epoch: int, decay_epoch: int | None) -> float:
    """``base`` until ``decay_epoch`` (0-based), a tenth of it from then on."""
    return base / 10 if decay_epoch is not None and epoch >= decay_epoch else base


def run_config(params, args) -> dict:
    """Everything that defines the run; a resumed run must match it."""
    flagship = params.denoisers["unet_res"]
    return {
        "architecture": flagship.architecture,
        "filters": args.filters or flagship.filters,
        "residual": flagship.residual,
        "loss": flagship.loss,
        "batch_size": flagship.batch_size,
        "learning_rate": flagship.learning_rate,
        "epochs": args.epochs,
        "decay_epoch": args.decay_epoch,
        "train_size": None,
        "seed": params.seed,
    }


def load_state(path: Path, config: dict, curve: str) -> dict:
    """The run so far (``path``, also its committed result); refuses one with other settings."""
    if not path.is_file():
        return {"config": config, "curve": curve, "epochs": [], "sessions": []}
    state = json.loads(path.read_text())
    # Older records kept the guided params in the config; they only matter for the fine-tune
    # after the last epoch, which records the ones it used.
    stored = {key: value for key, value in state["config"].items() if key != "guided"}
    if stored != config:
        raise DataError(
            f"{path} was trained with {state['config']}, not {config}: pick another --name, "
            "or delete it and its checkpoints to start over"
        )
    if "test" not in state:
        state["config"] = config
    return state


def train_epoch(model, pairs, val_batches, epoch: int, seed: int, rate: float) -> dict:
    """One epoch of ``model.fit`` that depends only on the weights, ``seed`` and ``epoch``."""
    import keras

    from pipeline.feeds import training_batches

    keras.utils.set_random_seed(seed * 10_000 + epoch)  # batch order and anything else random
    pairs.epochs_drawn = epoch  # the pipeline's draw ``epoch`` of the training noise
    model.optimizer.learning_rate.assign(rate)
    start = time.perf_counter()
    history = model.fit(
        training_batches(pairs),
        shuffle=False,
        validation_data=val_batches,
        initial_epoch=epoch,
        epochs=epoch + 1,
        verbose=2,
    ).history
    return {
        "epoch": epoch + 1,
        "learning_rate": rate,
        "train_seconds": round(time.perf_counter() - start, 1),
        "loss": round(history["loss"][-1], 6),
        "val_mse": round(history["val_mse"][-1], 6),
    }


def score_test(model, classifier, dataset, grid_path: Path) -> list[dict]:
    """PSNR, SSIM and the classifier's accuracy at every level of the evaluation's Gaussian grid."""
    grid = read_npz_arrays(grid_path, ("levels", "images"))
    clean, labels = to_float(dataset.x_test), dataset.y_test
    rows = []
    for level, noisy in zip(grid["levels"], grid["images"], strict=True):
        denoised = restore(model, noisy, batch_size=256)
        quality = image_quality(denoised, clean) if level else {"psnr": None, "ssim": None}
        accuracy = classify(denoised, labels, classifier, 1024)[0]
        rows.append({"level": float(level), **quality, "accuracy": round(accuracy, 4)})
        print(rows[-1], flush=True)
    return rows


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--name", required=True, help="run name: checkpoint and results file")
    parser.add_argument("--filters", type=int, help="default: params denoisers.unet_res.filters")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--decay-epoch", type=int, help="first epoch (0-based) at a tenth of the rate")
    parser.add_argument("--minutes", type=float, default=float("inf"), help="stop before exceeding")
    parser.add_argument("--stop-after", type=int, help="stop once this many epochs are done")
    parser.add_argument("--images", type=int, default=2000, help="validation images for the curve")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="data/prepared/mnist.npz")
    parser.add_argument("--noisy", default="data/noisy/gaussian.npz")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    if args.decay_epoch is not None and not 0 < args.decay_epoch < args.epochs:
        parser.error(f"--decay-epoch must be 1 ... {args.epochs - 1} (below --epochs): {args.decay_epoch}")
    return args


def main(args: argparse.Namespace) -> None:
    start = time.perf_counter()
    params = load_params(args.params)
    config = run_config(params, args)
    run_dir = CHECKPOINTS / args.name
    out = RESULTS / f"long_flagship_{args.name}.json"
    state = load_state(out, config, f"first {args.images} validation images, gaussian seed {SCORE_SEED}")
    classifier_path = Path(f"models/classifiers/{params.guided.classifier}.keras")
    for needed in (Path(args.data), Path(args.noisy), classifier_path):
        if not needed.is_file():
            raise DataError(f"{needed} not found: run dvc repro first")
    if state["epochs"] and not (run_dir / state["epochs"][-1]["checkpoint"]).is_file():
        raise DataError(f"{run_dir / state['epochs'][-1]['checkpoint']} is missing: cannot resume {out}")

    import keras

    from pipeline.feeds import FreshNoisePairs, validation_feed
    from pipeline.guided import fit_guided
    from pipeline.models import build_denoiser
    from pipeline.training import compile_denoiser, seed_everything

    seed_everything(params.seed)
    dataset = load_dataset(args.data)
    x_train, x_val = to_float(dataset.x_train), to_float(dataset.x_val)
    done = len(state["epochs"])
    if done:
        model = keras.models.load_model(run_dir / state["epochs"][-1]["checkpoint"])
        print(f"resuming {args.name} after epoch {done} of {args.epochs}", flush=True)
    else:
        model = build_denoiser(
            config["architecture"], config["filters"], f"long_{args.name}", residual=config["residual"]
        )
        compile_denoiser(model, config["loss"], config["learning_rate"])
        print(f"{args.name}: {model.count_params()} parameters, {args.epochs} epochs", flush=True)
    state["parameters"] = model.count_params()
    mix = params.train_noise.mix
    pairs = FreshNoisePairs(x_train, mix, config["batch_size"], params.seed)
    val_batches = validation_feed(pairs, x_val, x_val)
    session = {"started_after_epoch": done, "machine": describe()}
    state["sessions"].append(session)

    def save_state() -> None:
        session["wall_seconds"] = round(time.perf_counter() - start, 1)
        write_json(out, state)

    for epoch in range(done, args.epochs):
        last = state["epochs"][-1]["train_seconds"] if state["epochs"] else 0.0
        if time.perf_counter() - start + 1.1 * last > 60 * args.minutes:
            print(f"stopping after epoch {epoch}: --minutes {args.minutes} reached", flush=True)
            break
        if args.stop_after is not None and epoch >= args.stop_after:
            print(f"stopping after epoch {epoch} (--stop-after)", flush=True)
            break
        rate = learning_rate(config["learning_rate"], epoch, args.decay_epoch)
        row = train_epoch(model, pairs, val_batches, epoch, params.seed, rate)
        row |= noise_scores(model, x_val[: args.images], CURVE_LEVELS)
        # The state names its checkpoint and is written after it, so a kill at any point
        # leaves a state whose last epoch's weights are on disk.
        row["checkpoint"] = f"epoch_{epoch + 1:03d}.keras"
        save_model(run_dir / row["checkpoint"], model)
        state["epochs"].append(row)
        print(row, flush=True)
        session["finished_epoch"] = epoch + 1
        save_state()
        for old in state["epochs"][:-1]:
            (run_dir / old["checkpoint"]).unlink(missing_ok=True)

    if len(state["epochs"]) == args.epochs and "test" not in state:
        # Seeded before the classifier is built, in stage train_guided's order: building draws
        # from Python's random.
        seed_everything(params.seed)
        classifier = load_model(classifier_path)
        print("scoring the finished model on the test set", flush=True)
        test = {"base": score_test(model, classifier, dataset, Path(args.noisy))}
        print("task-guided fine-tune (params guided), then scoring again", flush=True)
        fine_tune = time.perf_counter()
        fit_guided(
            model,
            classifier,
            x_train,
            dataset.y_train,
            x_val,
            dataset.y_val,
            mix,
            params.guided,
            seed=params.seed,
        )
        test["guided_seconds"] = round(time.perf_counter() - fine_tune, 1)
        test["guided_params"] = params.guided.model_dump()
        save_model(run_dir / "guided.keras", model)
        test["guided"] = score_test(model, classifier, dataset, Path(args.noisy))
        state["test"] = test
        save_state()
    print(f"wrote {out}", flush=True)


if __name__ == "__main__":
    try:
        main(parse_args())
    except DataError as error:
        sys.exit(f"error: {error}")
