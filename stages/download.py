"""download: put the raw MNIST file under DVC control as data/raw/mnist.npz.

Source order: params ``data.path`` (must exist), else the first existing entry of
``data.search_paths``, else ``keras.datasets.mnist.load_data()`` (needs internet).
"""

import argparse
import logging

from pipeline.cli import run_stage
from pipeline.data import download_mnist, find_local_source, read_local
from pipeline.io import write_npz

log = logging.getLogger("download")


def main(args, params):
    source = find_local_source(params.data.path, params.data.search_paths)
    if source is None:
        log.info("no local MNIST found in %s; downloading with Keras", params.data.search_paths)
        arrays = download_mnist()
    else:
        log.info("reading local MNIST from %s", source)
        arrays = read_local(source)
    write_npz(args.out, **arrays)
    log.info(
        "wrote %s (%d train, %d test images)",
        args.out,
        len(arrays["x_train"]),
        len(arrays["x_test"]),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    run_stage(main, parser)
