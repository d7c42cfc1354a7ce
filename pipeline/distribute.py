"""The tf.distribute strategy every fit runs under, chosen by params ``distribute.strategy``.

``auto`` mirrors over all visible GPUs when there are several and otherwise uses TensorFlow's
default strategy, so the same code runs on one CPU, one GPU or a multi-GPU host. Build and
compile the model inside ``strategy.scope()``.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

STRATEGIES = ("auto", "default", "mirrored", "one_device")


def get_strategy(name: str = "auto"):
    """A ``tf.distribute.Strategy`` for ``name`` (one of :data:`STRATEGIES`)."""
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(f"unknown distribute strategy {name!r}; allowed: {list(STRATEGIES)}")
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "default"
    if name == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
    elif name == "one_device":
        strategy = tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    else:
        strategy = tf.distribute.get_strategy()
    log.info("distribute: %s over %d replica(s)", type(strategy).__name__, strategy.num_replicas_in_sync)
    return strategy
