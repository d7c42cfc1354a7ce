"""Per-image filter start-up: a fresh process pool per noise cell against one pool per stage.

The evaluate stages filter many small cells (a few hundred images each) in worker processes;
this measures what a call costs when the pool is started for it and when it is reused, in a
process that has imported TensorFlow as the stages have. Writes ``results/benchmarks/filters.json``:

    python -m benchmarks.filters [--images 300] [--calls 4] [--workers 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import tensorflow  # noqa: F401  at module level, as in the stage scripts: forkserver workers re-import it

from benchmarks.machine import describe
from pipeline import classical
from pipeline.io import write_json

OUT = Path("results/benchmarks/filters.json")


def seconds_per_call(images: np.ndarray, calls: int, workers: int, fresh_pool: bool) -> float:
    """Mean wall seconds of ``calls`` TV-filter calls on ``images``."""
    start = time.perf_counter()
    for _ in range(calls):
        if fresh_pool:
            classical._worker_pool(workers).shutdown()
            classical._worker_pool.cache_clear()
        classical.apply_filter("tv", images, 0.1, workers=workers)
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    images = np.random.default_rng(0).random((args.images, 28, 28), dtype=np.float32)
    serial = seconds_per_call(images, args.calls, 1, fresh_pool=False)
    fresh = seconds_per_call(images, args.calls, args.workers, fresh_pool=True)
    classical._worker_pool(args.workers)  # started once, outside the timed calls
    reused = seconds_per_call(images, args.calls, args.workers, fresh_pool=False)
    record = {
        "machine": describe(),
        "images_per_call": args.images,
        "calls": args.calls,
        "workers": args.workers,
        "serial_s_per_call": round(serial, 3),
        "fresh_pool_s_per_call": round(fresh, 3),
        "reused_pool_s_per_call": round(reused, 3),
        "fresh_over_reused": round(fresh / reused, 1),
    }
    print(record)
    write_json(OUT, record)


if __name__ == "__main__":
    main()
