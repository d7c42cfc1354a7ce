"""``denoise-classify``: denoise real digit images, then classify them.

The "denoise before you classify" step the benchmark exists to justify::

    denoise-classify photo1.png scan.jpg --out predictions/ \\
        [--denoiser models/denoisers/unet.keras] --classifier models/classifiers/clean.keras

Without ``--denoiser`` it uses the best committed denoiser chosen by validation: the denoiser of
``frozen_best`` in ``results/headline.json`` (``"unet_bn + clean"``: ``models/denoisers/unet_bn.keras``).

Each image is brought to MNIST style (see ``pipeline.preprocess``), denoised, and
classified with and without the denoiser. Writes ``<out>/<stem>_input.png`` (the 28x28
classifier input), ``<out>/<stem>_denoised.png`` and ``<out>/predictions.csv``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.data import DataError
from pipeline.evaluation import restore
from pipeline.io import write_with
from pipeline.models import load_model
from pipeline.preprocess import to_mnist
from pipeline.restorer import NO_DENOISER

HEADLINE = Path("results/headline.json")
DENOISERS = Path("models/denoisers")


def default_denoiser(headline: Path = HEADLINE, denoisers: Path = DENOISERS) -> Path | None:
    """The best committed denoiser chosen by validation, ``denoisers/<name>.keras`` for the
    ``<name> + <classifier>`` of ``frozen_best`` in ``headline`` (None if that is no denoiser)."""
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="denoise-classify", description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", type=Path, help="PNG/JPEG files of single digits")
    parser.add_argument(
        "--denoiser",
        type=Path,
        help=f"a denoiser (.keras); default: the frozen_best denoiser of {HEADLINE}",
    )
    parser.add_argument("--classifier", type=Path, default=Path("models/classifiers/clean.keras"))
    parser.add_argument("--out", type=Path, default=Path("predictions"))
    args = parser.parse_args(argv)
    try:
        images = read_images(args.images)
        denoiser_path = args.denoiser if args.denoiser is not None else default_denoiser()
        denoiser = None if denoiser_path is None else load_model(denoiser_path)
        classifier = load_model(args.classifier)
    except DataError as error:
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
