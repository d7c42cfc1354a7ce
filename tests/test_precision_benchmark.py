"""benchmarks/precision.py: each setting really runs under its dtype policy and compiler."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import precision  # noqa: E402


@pytest.fixture
def restore_policy():
    import keras

    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize(
    ("setting", "dtype", "jit"),
    [("float32", "float32", False), ("mixed_bfloat16", "bfloat16", False), ("xla", "float32", True)],
)
def test_measure_runs_the_setting(setting, dtype, jit, restore_policy):
    row = precision.measure(setting, images=32, architecture="unet", filters=4, residual=True, batch=16)
    assert row["compute_dtype"] == dtype and row["jit_compile"] is jit
    assert row["train_images_per_s"] > 0 and row["inference_images_per_s"] > 0
