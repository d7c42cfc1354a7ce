"""download: put the raw dataset (params ``data.dataset``: MNIST or Fashion-MNIST) under DVC
control as one Keras-layout .npz.

Source order: params ``data.path`` (must exist), else the first existing entry of
``data.search_paths``, else Keras' own loader for the dataset (needs internet).
"""

import argparse
import logging

from pipeline.cli import run_stage
from pipeline.data import download, find_local_source, read_local
from pipeline.io import write_npz

log = logging.getLogger("download")


def main(args, params):
    dataset = params.data.dataset
    source = find_local_source(params.data.path, params.data.search_paths)
    if source is None:
        log.info("no local %s found in %s; downloading with Keras", dataset, params.data.search_paths)
        arrays = download(dataset)
    else:
        log.info("reading local %s from %s", dataset, source)
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
