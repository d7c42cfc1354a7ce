"""prepare: validate the raw data and carve a seeded validation split from the training set."""

import argparse
import logging

from pipeline.cli import run_stage
from pipeline.data import read_local, split_validation
from pipeline.io import save_dataset

log = logging.getLogger("prepare")


def main(args, params):
    dataset = split_validation(read_local(args.raw), params.data.validation_size, params.seed)
    save_dataset(args.out, dataset)
    log.info(
        "wrote %s: %d train, %d validation, %d test images",
        args.out,
        len(dataset.x_train),
        len(dataset.x_val),
        len(dataset.x_test),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--raw", required=True)
    parser.add_argument("--out", required=True)
    run_stage(main, parser)
