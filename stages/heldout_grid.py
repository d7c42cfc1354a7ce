"""heldout_grid: the held-out suite, MNIST-C's corruptions (and seed 000's unclipped Gaussian
recipe) applied to the first ``heldout.test_size`` test images, seeded by ``seed``.

Writes one npz: ``names`` (C,), ``levels`` (C,), ``images`` (C, N, 28, 28) float32 and
``labels`` (N,). No training or fitting stage depends on it.
"""

import argparse
import logging

from pipeline.cli import run_stage
from pipeline.data import to_float
from pipeline.heldout import build_suite, save_suite
from pipeline.io import load_dataset
from pipeline.params import ParamsError

log = logging.getLogger("heldout_grid")


def main(args, params):
    config = params.heldout
    dataset = load_dataset(args.data)
    if config.test_size > len(dataset.x_test):
        raise ParamsError(
            f"heldout.test_size={config.test_size} is more than the {len(dataset.x_test)} test images"
        )
    images = to_float(dataset.x_test[: config.test_size])
    names, levels, suite = build_suite(images, config.corruptions, params.seed, config.unclipped_gaussian)
    save_suite(args.out, names, levels, suite, dataset.y_test[: config.test_size])
    log.info("wrote %s: %d cells x %d images", args.out, len(names), len(images))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True, help="the suite (.npz)")
    run_stage(main, parser)
