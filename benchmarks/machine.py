"""Describe the machine a benchmark ran on."""

from __future__ import annotations

import os
import platform

from pipeline import host


def describe() -> dict:
    cpu, features = host.describe()
    try:
        memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        memory_gib = float("nan")
    import tensorflow as tf

    return {
        "cpu": cpu,
        "cpu_features": features,  # what picks oneDNN's kernels: pipeline.host
        "cores": os.cpu_count(),
        "memory_gib": round(memory_gib, 1),
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
    }
