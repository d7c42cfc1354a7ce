"""Shared entry-point plumbing for the stage scripts: logging, params, clean errors."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from pipeline.data import DataError
from pipeline.params import Params, ParamsError, load_params

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def training_parser(description: str | None) -> argparse.ArgumentParser:
    """A stage parser with the arguments every training stage takes: --data, --model, --live."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", required=True, help="the prepared dataset (.npz)")
    parser.add_argument("--model", required=True, help="where the trained model goes (.keras)")
    parser.add_argument("--live", required=True, help="dvclive output directory")
    return parser


def run_stage(main: Callable[[argparse.Namespace, Params], None], parser: argparse.ArgumentParser) -> None:
    """Parse argv, validate params.yaml, run ``main``; bad input exits 2 with one clear message."""
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        params = load_params(args.params)
        main(args, params)
    except (ParamsError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
