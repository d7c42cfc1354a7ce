"""experiments/precision.py: each setting really runs under its dtype policy and compiler."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import precision
from pipeline.training import seed_everything

ROOT = Path(__file__).resolve().parents[1]

TINY = {"images": 32, "architecture": "unet", "filters": 4, "residual": True, "batch": 16}


@pytest.fixture
def restore_policy():
    import keras

    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize(("setting", "dtype"), [("float32", "float32"), ("mixed_bfloat16", "bfloat16")])
def test_measure_runs_under_the_settings_dtype_policy(setting, dtype, restore_policy):
    row = precision.measure(setting, **TINY)
    assert row["compute_dtype"] == dtype and row["jit_compile"] is False
    assert row["train_images_per_s"] > 0 and row["inference_images_per_s"] > 0


@pytest.mark.filterwarnings("ignore:Model doesn.t support `jit_compile=True`")
def test_xla_is_refused_under_op_determinism_and_runs_in_a_fresh_process():
    seed_everything(0)  # what the pipeline does; Keras then silently turns XLA off
    with pytest.raises(RuntimeError, match="xla: Keras refused jit_compile=True"):
        precision.measure("xla", **TINY)
    command = [sys.executable, "-m", "experiments.precision", "--setting", "xla", "--images", "64"]
    done = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    row = json.loads(done.stdout.strip().splitlines()[-1])
    assert row["jit_compile"] is True and row["compute_dtype"] == "float32"
    assert row["train_images_per_s"] > 0
