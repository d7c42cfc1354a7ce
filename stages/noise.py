"""noise: the seeded evaluation grid, every test image under every noise type x level.

Writes one ``<type>.npz`` per noise type with ``levels`` (L,) and ``images`` (L, N, 28, 28)
float32 in [0, 1], reproducible bit for bit from ``seed``.
"""

import argparse
import logging
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from pipeline.cli import run_stage
from pipeline.data import to_float
from pipeline.io import load_dataset, write_npz
from pipeline.noise import noisy_grid

log = logging.getLogger("noise")


def main(args, params):
    clean = to_float(load_dataset(args.data).x_test)
    out = Path(args.out)
    for kind, levels in tqdm(params.noise.items(), desc="noise types"):
        images = noisy_grid(clean, kind, levels, params.seed)
        write_npz(out / f"{kind}.npz", levels=np.asarray(levels, dtype=np.float64), images=images)
        log.info("%s: %d levels x %d images", kind, len(levels), len(clean))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    run_stage(main, parser)
