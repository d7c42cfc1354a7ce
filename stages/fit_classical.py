"""fit_classical: fit the training-free baselines for every cell of the evaluation grid.

Filters (median, gaussian, tv, wavelet, nl_means, bm3d) get their strength and a tone
correction chosen on validation pairs; the LMMSE (Wiener) estimator is fitted in closed form on
training pairs. Writes the fitted baselines (one npz) and a readable table of the choices.
"""

import argparse
import logging

from pipeline.baselines import fit_baselines, fits_summary, save_baselines
from pipeline.cli import run_stage
from pipeline.data import to_float
from pipeline.io import load_dataset, write_json

log = logging.getLogger("fit_classical")


def main(args, params):
    config = params.classical
    dataset = load_dataset(args.data)
    fits, lmmse = fit_baselines(
        list(config.methods),
        params.noise,
        to_float(dataset.x_train[: config.lmmse_train_size]),
        to_float(dataset.x_val[: config.fit_size]),
        params.seed,
        workers=config.workers,
    )
    save_baselines(args.out, fits, lmmse)
    write_json(args.summary, fits_summary(fits))
    log.info("wrote %s (%d filters, %d LMMSE cells)", args.out, len(fits), len(lmmse))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True, help="fitted baselines (.npz)")
    parser.add_argument("--summary", required=True, help="chosen strengths per cell (.json)")
    run_stage(main, parser)
