"""Ablations behind the flagship's recipe: which training loss, and what the guided fine-tune buys.

Scored on the validation split only (never the test set) and written to
``results/benchmarks/ablations.json``:

    python -m experiments.ablations [--only losses|inputs|mix|depth|guided] [--epochs 2] [--images 2000]

``losses``: the flagship's architecture and fit settings (params ``denoisers.unet_res``)
trained from scratch for ``--epochs`` over the whole training split with each loss (MSE, MSE +
0.1 x (1 - SSIM), the per-image log MSE whose mean is mean PSNR up to a constant); PSNR/SSIM
on the first ``--images`` validation images at gaussian 0.1 / 0.5 / 1.0.

``inputs``: the same fits with the MSE loss, with and without ``clip_indicators`` (the U-Net
also sees where its input is exactly 0 and exactly 1); PSNR/SSIM at gaussian 0.1 / 0.5 / 1.0
and at one level of each other evaluated noise type (``noise`` params, first nonzero level).

``mix``: the same fits with the MSE loss on two training mixes (``MIXES``: uniform over the
noise types, and Gaussian at three times the odds, params ``train_noise.type_weights``); the
clean classifier's accuracy and PSNR/SSIM on the whole validation split at gaussian 0 / 0.3 /
0.5 / 0.7 / 1.0, and PSNR/SSIM at one level of each other noise type on ``--images`` images.

``depth``: the flagship's settings on the tuner's general U-Net builder at two and three
levels (``DEPTHS``), scored as ``mix``; the same builder for both, so only the depth differs.

``guided``: variants of the ``guided`` fine-tune of the trained flagship
(``models/denoisers/<guided.base>.keras``: run ``dvc repro`` first), each changing the
default in one or two ways: the classification weight, the images per epoch, a
Gaussian-heavy noise mix and the learning rate; the frozen classifier's accuracy on the whole
validation split at gaussian 0 / 0.5 / 0.7 / 1.0 and PSNR/SSIM there.

``--only`` reruns one section and keeps the other from the existing file; ``runs`` records the
commit (whose ``dvc.lock`` names the models) and machine of each section's latest run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import time
from functools import partial
from pathlib import Path

import numpy as np

from benchmarks.machine import describe
from experiments.scoring import SCORE_SEED, noise_scores
from pipeline.data import to_float
from pipeline.io import load_dataset, write_json
from pipeline.models import load_model
from pipeline.params import load_params

OUT = Path("results/benchmarks/ablations.json")
# The Gaussian-heavy mix: every tenth from 0.1 to 1.0 and 1.0 twice more, so 5 of 12 Gaussian
# draws are at 0.8 or above (the default mix: 1 of 7).
GAUSSIAN_HEAVY = [round(0.1 * i, 1) for i in range(1, 11)] + [1.0, 1.0]
# Training mixes for ``mix``: uniform over the noise types (the default), and Gaussian at three
# times the odds of each other type (half of the noisy draws, against a quarter).
MIXES = (("uniform", None), ("gaussian_x3", {"gaussian": 3.0}))
# U-Net levels for ``depth``: the flagship's two, and three (28 px padded to 32, a 4 x 4 bottleneck).
DEPTHS = (2, 3)
# The guided settings each variant's row reports (None for the row without a fine-tune).
VARIED = ("classification_weight", "train_size", "learning_rate", "epochs", "classifier_training")


def set_dropout(model, rate: float) -> None:
    """Set every Dropout layer of ``model`` to ``rate`` (read when a fit traces the model)."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = rate


def dropout_rates(model) -> list[float]:
    """The rates of ``model``'s Dropout layers, in order."""
    import keras

    return [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]


def log_mse(y_true, y_pred):
    """0.01 x ln(per-image MSE + 1e-5): minimising its mean maximises mean PSNR (capped at 50 dB)."""
    from keras import ops

    error = ops.mean(ops.square(ops.cast(y_true, y_pred.dtype) - y_pred), axis=(-2, -1))
    return 0.01 * ops.log(error + 1e-5)


def fit_flagship(params, dataset, name: str, epochs: int, loss="mse", train_noise=None, build=None, **update):
    """The flagship (params ``denoisers.unet_res``, changed by ``update``) trained from scratch for
    ``epochs`` over the whole training split with ``loss`` on ``train_noise`` (default: params
    ``train_noise``): (model, record of the fit: epochs, learning-rate drop, seconds, validation
    MSE per epoch). ``build(name)``, if given, returns the compiled model to fit instead of the
    flagship's architecture (the fit settings stay the flagship's)."""
    from pipeline.models import build_denoiser
    from pipeline.training import compile_denoiser, fit_denoiser, seed_everything

    config = params.denoisers["unet_res"].model_copy(update=update)
    fit = config.model_copy(update={"epochs": epochs, "train_size": None})
    seed_everything(params.seed)
    if build is None:
        model = build_denoiser(
            config.architecture,
            config.filters,
            f"ablation_{name}",
            residual=config.residual,
            clip_indicators=config.clip_indicators,
        )
        compile_denoiser(model, loss, config.learning_rate)
    else:
        model = build(f"ablation_{name}")
    mix = train_noise or params.train_noise
    start = time.perf_counter()
    history = fit_denoiser(
        model,
        to_float(dataset.x_train),
        to_float(dataset.x_val),
        mix.mix,
        fit,
        seed=params.seed,
    ).history
    return model, {
        "epochs": epochs,
        "lr_drop_epochs": fit.lr_drop_epochs,
        "train_seconds": round(time.perf_counter() - start, 1),
        "val_mse": [round(v, 5) for v in history["val_mse"]],
    }


def loss_ablation(params, dataset, epochs: int, images: int) -> list[dict]:
    from pipeline.tuning import mse_ssim

    x_val = to_float(dataset.x_val)
    rows = []
    for name, loss in (("mse", "mse"), ("mse_ssim", mse_ssim), ("log_mse", log_mse)):
        print(f"loss {name}: {epochs} epochs", flush=True)
        model, record = fit_flagship(params, dataset, name, epochs, loss)
        rows.append({"loss": name, **record, **noise_scores(model, x_val[:images], (0.1, 0.5, 1.0))})
        print(rows[-1], flush=True)
    return rows


def other_noise_scores(model, params, clean: np.ndarray) -> dict:
    """PSNR/SSIM at the first nonzero evaluated level of every noise type but Gaussian."""
    scores = {}
    for kind, levels in params.noise.items():
        if kind != "gaussian":
            scores |= noise_scores(model, clean, [next(level for level in levels if level)], kind=kind)
    return scores


def input_ablation(params, dataset, epochs: int, images: int) -> list[dict]:
    x_val = to_float(dataset.x_val)[:images]
    rows = []
    for indicators in (False, True):
        print(f"clip_indicators {indicators}: {epochs} epochs", flush=True)
        name = "clip_indicators" if indicators else "plain"
        model, record = fit_flagship(params, dataset, name, epochs, clip_indicators=indicators)
        scores = noise_scores(model, x_val, (0.1, 0.5, 1.0)) | other_noise_scores(model, params, x_val)
        rows.append(
            {
                "clip_indicators": indicators,
                "parameters": model.count_params(),
                **record,
                **scores,
            }
        )
        print(rows[-1], flush=True)
    return rows


def validation_scores(model, params, dataset, classifier, images: int) -> dict:
    """The clean classifier's accuracy and PSNR/SSIM on the whole validation split at gaussian 0 /
    0.3 / 0.5 / 0.7 / 1.0, and PSNR/SSIM at one level of each other noise type on ``images``."""
    x_val = to_float(dataset.x_val)
    return noise_scores(model, x_val, (0.0, 0.3, 0.5, 0.7, 1.0), classifier, dataset.y_val) | (
        other_noise_scores(model, params, x_val[:images])
    )


def mix_ablation(params, dataset, epochs: int, images: int) -> list[dict]:
    classifier = load_model(f"models/classifiers/{params.reference_classifier}.keras")
    rows = []
    for name, weights in MIXES:
        print(f"training mix {name}: {epochs} epochs", flush=True)
        mix = params.train_noise.model_copy(update={"type_weights": weights})
        model, record = fit_flagship(params, dataset, f"mix_{name}", epochs, train_noise=mix)
        scores = validation_scores(model, params, dataset, classifier, images)
        rows.append({"mix": name, "type_weights": weights, **record, **scores})
        print(rows[-1], flush=True)
    return rows


def depth_values(depth: int, config) -> dict:
    """The tuner's hyperparameters for a ``depth``-level U-Net with the flagship's settings
    (``config``: params ``denoisers.unet_res``)."""
    return {
        "depth": depth,
        "filters": config.filters,
        "batchnorm": False,
        "upsampling": "upsample",
        "residual": config.residual,
        "dropout": 0.0,
        "loss": config.loss,
        "learning_rate": config.learning_rate,
    }


def depth_ablation(params, dataset, epochs: int, images: int) -> list[dict]:
    from pipeline.tuning import build_unet_from

    classifier = load_model(f"models/classifiers/{params.reference_classifier}.keras")
    rows = []
    for depth in DEPTHS:
        print(f"U-Net depth {depth}: {epochs} epochs", flush=True)
        values = depth_values(depth, params.denoisers["unet_res"])
        build = partial(build_unet_from, values)  # build(name)
        model, record = fit_flagship(params, dataset, f"depth{depth}", epochs, build=build)
        scores = validation_scores(model, params, dataset, classifier, images)
        rows.append({"depth": depth, "parameters": model.count_params(), **record, **scores})
        print(rows[-1], flush=True)
    return rows


def guided_ablation(params, dataset) -> list[dict]:
    from pipeline.guided import fit_guided
    from pipeline.training import seed_everything

    x_train, x_val = to_float(dataset.x_train), to_float(dataset.x_val)
    default = params.guided
    variants = [  # each changes the default (params ``guided``) in one or two ways; the third
        # item changes what params cannot: the Gaussian levels, the classifier's dropout rate,
        # the seed of the fit
        ("no fine-tune", None, {}),
        ("default", {}, {}),
        ("classifier in inference mode", {"classifier_training": False}, {}),
        ("classifier dropout 0.5", {}, {"dropout": 0.5}),
        ("classifier dropout 0.7", {}, {"dropout": 0.7}),
        ("weight 0.3", {"classification_weight": 0.3}, {}),
        ("weight 1.0", {"classification_weight": 1.0}, {}),
        ("6,000 images", {"train_size": 6000}, {}),
        ("weight 0.3, gaussian-heavy", {"classification_weight": 0.3}, {"gaussian": GAUSSIAN_HEAVY}),
        ("lr 1e-4", {"learning_rate": 1e-4}, {}),
        ("lr 1e-4, 2 epochs", {"learning_rate": 1e-4, "epochs": 2}, {}),
        ("lr 1e-4, 3 epochs", {"learning_rate": 1e-4, "epochs": 3}, {}),
        ("lr 1e-4, 3 x 6,000 images", {"learning_rate": 1e-4, "epochs": 3, "train_size": 6000}, {}),
        # the spread from the fit's seed alone (noise, batch order, dropout masks)
        *((f"default, seed {seed}", {}, {"seed": seed}) for seed in (1, 2)),
        *(
            (f"lr 1e-4, 2 epochs, seed {seed}", {"learning_rate": 1e-4, "epochs": 2}, {"seed": seed})
            for seed in (1, 2)
        ),
    ]
    rows = []
    for name, update, extra in variants:
        print(f"guided: {name}", flush=True)
        seed = extra.get("seed", params.seed)
        seed_everything(seed)
        # Loaded after seeding, in stage train_guided's order (building a model draws from
        # Python's `random`).
        denoiser = load_model(f"models/denoisers/{default.base}.keras")
        classifier = load_model(f"models/classifiers/{default.classifier}.keras")
        if "dropout" in extra:
            set_dropout(classifier, extra["dropout"])
        config = default.model_copy(update=update or {})
        start = time.perf_counter()
        if update is not None:
            levels = dict(params.train_noise.levels)
            if "gaussian" in extra:
                levels["gaussian"] = extra["gaussian"]
            fit_guided(
                denoiser,
                classifier,
                x_train,
                dataset.y_train,
                x_val,
                dataset.y_val,
                dataclasses.replace(params.train_noise.mix, levels=levels),
                config,
                seed=seed,
            )
        rows.append(
            {
                "variant": name,
                "seed": seed,
                **{key: getattr(config, key) if update is not None else None for key in VARIED},
                "classifier_dropout": dropout_rates(classifier) if update is not None else None,
                "train_seconds": round(time.perf_counter() - start, 1),
                **noise_scores(denoiser, x_val, (0.0, 0.5, 0.7, 1.0), classifier, dataset.y_val),
            }
        )
        print(rows[-1], flush=True)
    return rows


def commit() -> str:
    """The checked-out commit, marked ``-dirty`` when its code differs from it: tracked files
    other than ``results/`` (where stages and benchmarks write while others run) and Markdown."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    changed = ["git", "diff", "--quiet", "HEAD", "--", ".", ":!results", ":!*.md"]
    dirty = subprocess.run(changed, capture_output=True).returncode
    return head.stdout.strip() + ("-dirty" if dirty else "") if head.returncode == 0 else "unknown"


def merge(previous: dict, sections: dict, run: dict) -> dict:
    """``previous`` with ``sections`` replaced, each marked in ``runs`` with ``run``."""
    result = dict(previous)
    runs = dict(result.pop("runs", {}))
    for name, rows in sections.items():
        result[name] = rows
        runs[name] = run
    return result | {"runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=("losses", "inputs", "mix", "depth", "guided"))
    parser.add_argument("--epochs", type=int, default=2, help="epochs per loss or input (default 2)")
    parser.add_argument("--images", type=int, default=2000, help="validation images scored per loss or input")
    args = parser.parse_args()
    params = load_params()
    dataset = load_dataset("data/prepared/mnist.npz")
    run = {"commit": commit(), "machine": describe()}
    sections = {}
    if args.only in (None, "losses"):
        sections["losses"] = loss_ablation(params, dataset, args.epochs, args.images)
    if args.only in (None, "inputs"):
        sections["inputs"] = input_ablation(params, dataset, args.epochs, args.images)
    if args.only in (None, "mix"):
        sections["mix"] = mix_ablation(params, dataset, args.epochs, args.images)
    if args.only in (None, "depth"):
        sections["depth"] = depth_ablation(params, dataset, args.epochs, args.images)
    if args.only in (None, "guided"):
        sections["guided"] = guided_ablation(params, dataset)
    previous = json.loads(OUT.read_text()) if OUT.exists() and args.only else {}
    header = {"score_noise_seed": SCORE_SEED, "split": "validation"}
    write_json(OUT, merge(previous, sections, run) | header)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
