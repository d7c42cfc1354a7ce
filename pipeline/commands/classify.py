"""``denoise-classify``: denoise real digit images, then classify them.

The "denoise before you classify" step the benchmark exists to justify::

    denoise-classify photo1.png scan.jpg --out predictions/ \\
        [--denoiser models/denoisers/unet.keras] --classifier models/classifiers/clean.keras

Without ``--denoiser`` it uses the best committed denoiser chosen by validation: the denoiser of
``frozen_best`` in the pipeline's headline (``paths.headline`` of its dvc.yaml, e.g. ``"unet_bn +
clean"``: ``models/denoisers/unet_bn.keras``); without ``--classifier``, the pipeline's clean
classifier. ``--root fashion`` takes both from the Fashion-MNIST pipeline.

Each image is brought to MNIST style (see ``pipeline.commands.preprocess``), denoised, and
classified with and without the denoiser. Writes ``<out>/<stem>_input.png`` (the 28x28
classifier input), ``<out>/<stem>_denoised.png`` and ``<out>/predictions.csv``. ``--help``
answers without loading TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.commands.files import PipelineFiles
from pipeline.commands.preprocess import to_mnist
from pipeline.data import DataError
from pipeline.io import write_with
from pipeline.restorer import NO_DENOISER

PROG = "denoise-classify"


def default_denoiser(files: PipelineFiles) -> Path | None:
    """The best committed denoiser chosen by validation, ``<paths.denoisers>/<name>.keras`` for the
    ``<name> + <classifier>`` of ``frozen_best`` in ``paths.headline`` (None if that is no denoiser)."""
    headline, denoisers = files.path("headline"), files.path("denoisers")
    if not headline.is_file():
        raise DataError(
            f"{headline}: not found, so there is no default denoiser (make it with `dvc repro report`, "
            "or pass --denoiser)"
        )
    try:
        best = json.loads(headline.read_text())["frozen_best"]
        name = best.split(" + ")[0].strip()
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise DataError(
            f"{headline}: no frozen_best defense ({type(error).__name__}: {error}); rerun `dvc repro report` "
            "or pass --denoiser"
        ) from None
    return None if name == NO_DENOISER else denoisers / f"{name}.keras"


def read_images(paths: list[Path]) -> np.ndarray:
    """Read and MNIST-preprocess image files; a missing or unreadable file is named."""
    from skimage.io import imread

    images = []
    for path in paths:
        if not path.is_file():
            raise DataError(f"{path}: image file not found")
        try:
            images.append(to_mnist(imread(path)))
        except (OSError, ValueError, SyntaxError) as error:
            raise DataError(f"{path}: cannot read as an image ({error})") from None
    return np.stack(images)


def predict_table(paths: list[Path], images: np.ndarray, denoised: np.ndarray, classifier) -> pd.DataFrame:
    raw = classifier.predict(images, verbose=0)
    clean = classifier.predict(denoised, verbose=0)
    return pd.DataFrame(
        {
            "file": [str(p) for p in paths],
            "prediction": clean.argmax(axis=1),
            "confidence": clean.max(axis=1).round(4),
            "prediction_without_denoiser": raw.argmax(axis=1),
            "confidence_without_denoiser": raw.max(axis=1).round(4),
        }
    )


def save_png(path: Path, image: np.ndarray) -> None:
    from skimage.io import imsave

    write_with(path, lambda tmp: imsave(tmp, (image * 255).round().astype(np.uint8), check_contrast=False))


def default_classifier(files: PipelineFiles) -> Path:
    """The pipeline's clean classifier, ``<paths.classifiers>/<reference>.keras``."""
    from pipeline.params import load_params

    return files.path("classifiers") / f"{load_params(files.params).reference_classifier}.keras"


def parser() -> argparse.ArgumentParser:
    command_line = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    command_line.add_argument("images", nargs="+", type=Path, help="PNG/JPEG files of single images")
    command_line.add_argument(
        "--denoiser", type=Path, help="a denoiser (.keras); default: the pipeline's frozen_best denoiser"
    )
    command_line.add_argument(
        "--classifier", type=Path, help="a classifier (.keras); default: the pipeline's clean classifier"
    )
    command_line.add_argument("--out", type=Path, default=Path("predictions"))
    command_line.add_argument(
        "--root",
        type=Path,
        default=Path("."),
        help="the pipeline's folder the defaults come from (default: .; fashion for Fashion-MNIST)",
    )
    return command_line


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from pipeline.evaluation import restore
    from pipeline.models import load_model
    from pipeline.params import ParamsError

    try:
        images = read_images(args.images)
        files = None if args.denoiser and args.classifier else PipelineFiles.read(args.root)
        denoiser_path = args.denoiser if args.denoiser is not None else default_denoiser(files)
        classifier_path = args.classifier if args.classifier is not None else default_classifier(files)
        denoiser = None if denoiser_path is None else load_model(denoiser_path)
        classifier = load_model(classifier_path)
    except (DataError, ParamsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    denoised = restore(denoiser, images, batch_size=256)
    table = predict_table(args.images, images, denoised, classifier)
    for path, image, clean in zip(args.images, images, denoised, strict=True):
        save_png(args.out / f"{path.stem}_input.png", image)
        save_png(args.out / f"{path.stem}_denoised.png", clean)
    write_with(args.out / "predictions.csv", lambda tmp: table.to_csv(tmp, index=False))
    print(f"denoiser: {denoiser_path or 'none (frozen_best is no denoiser)'}")
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
