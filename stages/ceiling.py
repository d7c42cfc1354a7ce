"""ceiling: the attainable accuracy at each headline-noise level, and every defense on validation.

A noise specialist per ``ceiling.levels`` entry: the matched rival classifier (the widest in
the comparison) fine-tuned on that one noise cell, with early stopping on the validation split
under it. Every learned defense (no denoiser or a learned denoiser, in front of the clean or the
rival classifier) and the specialists are scored on the validation curve set. The ceiling of a
level is the best validation accuracy there of the specialist and of every contestant; the
verdicts choose their "best" defenses from ``validation.csv``, never from the test set.
"""

import argparse
import logging
from pathlib import Path

import keras
import pandas as pd

from pipeline.cli import run_stage
from pipeline.curves import defense_accuracy, validation_curve_set
from pipeline.data import DataError, to_float
from pipeline.flops import TRAIN_FACTOR_NOTE, training_flops_per_image
from pipeline.guided import reseed_random_layers
from pipeline.io import load_dataset, write_json, write_with
from pipeline.models import load_model
from pipeline.params import FitParams
from pipeline.restorer import NO_DENOISER
from pipeline.training import fit_specialist, seed_everything

log = logging.getLogger("ceiling")


def validation_scores(curves, denoisers: dict, classifiers: dict) -> pd.DataFrame:
    """Validation accuracy of every denoiser (and none) x classifier at every curve-set level."""
    rows = []
    for clf_name, classifier in classifiers.items():
        for name, denoiser in {NO_DENOISER: None, **denoisers}.items():
            for level, accuracy in defense_accuracy(curves, classifier, denoiser).items():
                rows.append({"denoiser": name, "classifier": clf_name, "level": level, "accuracy": accuracy})
    return pd.DataFrame(rows).assign(n_images=len(curves.labels))


def train_specialist(rival: keras.Model, dataset, level: float, params, index: int):
    """The rival fine-tuned on ``level`` of the headline noise; returns (model, history, images)."""
    config = params.ceiling
    seed = params.fit_seed * 1000 + index
    seed_everything(seed)
    model = keras.models.clone_model(rival)
    model.set_weights(rival.get_weights())
    reseed_random_layers(model, seed)
    fit = FitParams(
        epochs=config.epochs,
        batch_size=config.batch_size,
        patience=config.patience,
        train_size=config.train_size,
    )
    history = fit_specialist(
        model,
        to_float(dataset.x_train),
        dataset.y_train,
        to_float(dataset.x_val),
        dataset.y_val,
        params.evaluate.headline_noise,
        level,
        fit,
        config.learning_rate,
        seed=seed,
        validation_seed=params.seed,
    )
    return model, len(history.history["val_loss"]) * config.train_size


def ceiling_table(validation: pd.DataFrame, specialists: dict[float, float], levels) -> list[dict]:
    """Per level: the specialist, the best contestant, the ceiling (their maximum), and the
    contestants above the specialist."""
    out = []
    for level in levels:
        here = validation[validation["level"] == level]
        best = here.loc[here["accuracy"].idxmax()]
        above = here[here["accuracy"] > specialists[level]]
        out.append(
            {
                "level": level,
                "specialist_accuracy": specialists[level],
                "best_contestant": f"{best['denoiser']} + {best['classifier']}",
                "best_contestant_accuracy": float(best["accuracy"]),
                "ceiling": max(specialists[level], float(best["accuracy"])),
                "above_specialist": [f"{r.denoiser} + {r.classifier}" for r in above.itertuples()],
            }
        )
    return out


def main(args, params):
    rival_name = params.rival_classifier
    if rival_name is None:
        raise DataError("the ceiling needs a noise-trained classifier (classifiers.*.noise_augmentation)")
    dataset = load_dataset(args.data)
    classifiers_dir, denoisers_dir = Path(args.classifiers), Path(args.denoisers)
    clean_name = params.reference_classifier
    classifiers = {name: load_model(classifiers_dir / f"{name}.keras") for name in (clean_name, rival_name)}
    denoisers = {name: load_model(denoisers_dir / f"{name}.keras") for name in params.learned}
    curves = validation_curve_set(params, to_float(dataset.x_val), dataset.y_val)

    specialists, compute = {}, {}
    per_image = training_flops_per_image(classifiers[rival_name])
    for index, level in enumerate(params.ceiling.levels):
        model, images = train_specialist(classifiers[rival_name], dataset, level, params, index)
        specialists[level] = defense_accuracy(curves, model)[level]
        compute[f"{level:g}"] = {"images_seen": images, "train_flops": float(images * per_image)}
        log.info("specialist at %g: validation accuracy %.4f", level, specialists[level])

    validation = validation_scores(curves, denoisers, classifiers)
    table = ceiling_table(validation, specialists, params.ceiling.levels)
    out = Path(args.out)
    write_with(out / "validation.csv", lambda tmp: validation.to_csv(tmp, index=False))
    write_json(
        out / "ceiling.json",
        {
            "noise": curves.noise,
            "validation_images": len(curves.labels),
            "specialist_base": rival_name,
            "specialist_compute": compute,
            "factor": TRAIN_FACTOR_NOTE,
            "levels": table,
        },
    )
    for row in table:
        log.info("ceiling at %g: %.4f (%s)", row["level"], row["ceiling"], row["best_contestant"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--classifiers", required=True, help="directory of <name>.keras classifiers")
    parser.add_argument("--denoisers", required=True, help="directory of <name>.keras denoisers")
    parser.add_argument("--out", required=True, help="output directory (ceiling.json, validation.csv)")
    run_stage(main, parser)
