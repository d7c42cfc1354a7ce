"""What a fit leaves behind: dvclive curves and summary, its compute record, its compute curve.

``live_dir/metrics.json`` (dvclive's summary, a DVC metric) holds the few numbers worth
comparing across experiments (at most five: dvclive's ``step``, the best validation loss and
MSE, epochs run, compute charged; the per-epoch values are its plots); ``live_dir/compute.json``
the full compute record (:func:`pipeline.budget.compute_record`); ``live_dir/curve.csv`` the
compute-accuracy curve.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import keras
import numpy as np

from pipeline.budget import Allocation, compute_record
from pipeline.curves import ComputeCurve
from pipeline.io import write_json, write_with


def fit_logged(
    live_dir: str,
    model: keras.Model,
    fit: Callable[[Sequence[keras.callbacks.Callback]], keras.callbacks.History],
    allocation: Allocation,
    factor: str,
    mse_metric: str | None = "val_mse",
    curve: ComputeCurve | None = None,
    extra: Callable[[], Mapping[str, float]] | None = None,
) -> dict:
    """Run ``fit(callbacks)`` with dvclive curves (and ``curve``, scored after every slice).

    The summary holds the best validation loss (and ``mse_metric`` at that epoch: MSE compares
    denoisers trained with different losses), epochs run and the FLOPs charged, then whatever
    ``extra()`` returns after the fit; the wall time is in the compute record, which it returns.
    """
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    start = time.perf_counter()
    with Live(dir=live_dir, save_dvc_exp=False, dvcyaml=None) as live:
        callbacks = [DVCLiveCallback(live=live), *([curve] if curve else [])]
        history = fit(callbacks).history
        seconds = time.perf_counter() - start
        best = int(np.argmin(history["val_loss"]))
        slices_run = len(history["val_loss"])
        record = compute_record(allocation, slices_run, seconds, factor, parameters=model.count_params())
        # Replace dvclive's last-epoch train/eval values (they are in its plots) with the best.
        live.summary = {"best_val_loss": history["val_loss"][best]}
        if mse_metric:
            live.summary["best_val_mse"] = history[mse_metric][best]
        live.summary["epochs_run"] = slices_run
        live.summary["charged_tflop"] = round(record["charged_flops"] / 1e12, 3)
        live.summary.update(extra() if extra else {})
    write_json(Path(live_dir) / "compute.json", record)
    if curve is not None:
        write_with(Path(live_dir) / "curve.csv", lambda tmp: curve.frame().to_csv(tmp, index=False))
    return record
