"""``denoise-bench score``: score your own classifier (and denoiser) under the benchmark's protocol.

Usage, once ``dvc repro`` has run (``--root fashion`` once ``dvc repro fashion/dvc.yaml`` has)::

    denoise-bench score --classifier my.keras [--denoiser my_denoiser.keras | NAME]
        [--logits] [--pixels 255] [--out DIR] [--root .] [--batch-size 256]

The classifier is scored alone (``none + your_classifier``) and, with a denoiser, behind it
(``<denoiser> + your_classifier``), on the pipeline's evaluation grid and held-out suite (the
files its ``dvc.yaml`` declares under ``paths``). It writes ``<out>/scores.csv`` (the columns of
the committed ``scores.csv``) and ``<out>/model_card.json`` (:mod:`pipeline.commands.card`), and
prints where each defense ranks among the committed ones. Every check (the model files, their
input shape and outputs, the denoiser's name, the pipeline files scoring needs) runs before any
scoring; a failure prints one line and exits 2. From Python: :func:`pipeline.commands.scoring.score`.

``--help`` answers without loading TensorFlow: the scoring modules load when a command runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

PROG = "denoise-bench"


def denoiser_argument(value: str | None) -> str | Path | None:
    """A path if ``value`` looks like a file (an existing one, a path separator or ``.keras``),
    else the name of a committed denoiser."""
    if value is None:
        return None
    if Path(value).exists() or os.sep in value or "/" in value or value.endswith((".keras", ".h5")):
        return Path(value)
    return value


def _score_command(args: argparse.Namespace) -> int:
    from pipeline.commands.scoring import score
    from pipeline.data import DataError
    from pipeline.params import ParamsError

    try:
        result = score(
            args.classifier,
            denoiser_argument(args.denoiser),
            logits=args.logits,
            pixel_scale=args.pixels,
            root=args.root,
            batch_size=args.batch_size,
        )
    except (DataError, ParamsError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    files = result.write(args.out)
    print(result.ranking_text())
    card = result.card
    print(
        f"\nprotocol {card['protocol_version']}; do-no-harm: {card['do_no_harm']['harms']} harms "
        f"({card['do_no_harm']['defense']} over {card['do_no_harm']['reference']})"
    )
    print(f"wrote {', '.join(map(str, files))}")
    return 0


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(
        prog=PROG, description="Benchmark tools for denoisers and classifiers under noise."
    )
    commands = main_parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub = commands.add_parser(
        "score",
        help="score your classifier (and denoiser) under the benchmark's protocol",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1],
    )
    sub.add_argument(
        "--classifier", required=True, type=Path, help="your classifier (.keras): (28, 28[, 1]) in, 10 out"
    )
    sub.add_argument(
        "--denoiser",
        help="your denoiser (.keras), or a committed denoiser's name (its paths.denoisers/NAME.keras)",
    )
    sub.add_argument("--logits", action="store_true", help="the classifier outputs logits: apply a softmax")
    sub.add_argument(
        "--pixels",
        type=float,
        default=1.0,
        metavar="SCALE",
        help="multiply the classifier's [0, 1] inputs by SCALE (255: it expects [0, 255]; the denoiser "
        "still sees [0, 1]); default 1",
    )
    sub.add_argument(
        "--out", type=Path, default=Path("model_card"), help="output directory (default: model_card)"
    )
    sub.add_argument(
        "--root",
        type=Path,
        default=Path("."),
        help="the pipeline's folder, holding its dvc.yaml, params.yaml and outputs "
        "(default: . for MNIST; fashion for Fashion-MNIST)",
    )
    sub.add_argument("--batch-size", type=int, default=256, help="prediction batch size (default: 256)")
    sub.set_defaults(run=_score_command)
    return main_parser


def main(argv: list[str] | None = None) -> int:
    command_line = parser()
    args = command_line.parse_args(argv)
    if args.batch_size < 1:
        command_line.error("--batch-size must be positive")
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
