"""Would bfloat16 or XLA give the flagship more training per minute on this machine?

Times the flagship's architecture and batch size (params ``denoisers.unet_res``) under each
setting: float32 (what the pipeline uses), Keras' ``mixed_bfloat16`` policy (bfloat16 compute,
float32 weights) and XLA (``jit_compile=True``). Each setting runs in its own process, because
Keras' dtype policy is global. Each rate is the best of three timed epochs (training) or
``predict`` calls (inference) after a warm-up one. Images are random (throughput does not
depend on the pixels) and fed as tf.data datasets without autotuning, as in the pipeline.
Writes ``results/benchmarks/precision.json`` with images/s and the ratio to float32:

    python -m experiments.precision [--images 4096]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from benchmarks.benchmark import timed
from benchmarks.machine import describe
from pipeline.io import write_json
from pipeline.params import load_params

OUT = Path("results/benchmarks/precision.json")
SETTINGS = {
    "float32": ("float32", False),
    "mixed_bfloat16": ("mixed_bfloat16", False),
    "xla": ("float32", True),
}


def measure(setting: str, images: int, architecture: str, filters: int, residual: bool, batch: int) -> dict:
    """Training and inference images/s of a fresh denoiser under ``setting`` (in this process)."""
    import keras
    import numpy as np

    from pipeline.feeds import validation_batches
    from pipeline.models import build_denoiser

    policy, jit = SETTINGS[setting]
    keras.mixed_precision.set_global_policy(policy)
    model = build_denoiser(architecture, filters, "flagship", residual=residual)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", jit_compile=jit)
    if model.jit_compile != jit:  # Keras falls back with only a warning, e.g. under op determinism
        raise RuntimeError(f"{setting}: Keras refused jit_compile={jit}")
    x = np.random.default_rng(0).random((images, 28, 28), dtype=np.float32)
    train_batches, predict_batches = validation_batches(x, x, batch), validation_batches(x, x, 512)
    train_s = timed(lambda: model.fit(train_batches, epochs=1, shuffle=False, verbose=0), repeats=3)
    predict_s = timed(lambda: model.predict(predict_batches, verbose=0), repeats=3)
    return {
        "policy": policy,
        "jit_compile": model.jit_compile,
        "compute_dtype": keras.mixed_precision.global_policy().compute_dtype,
        "train_images_per_s": round(images / train_s, 1),
        "inference_images_per_s": round(images / predict_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--setting", choices=SETTINGS, help="time one setting in this process")
    args = parser.parse_args()
    flagship = load_params().denoisers["unet_res"]
    model = (flagship.architecture, flagship.filters, flagship.residual, flagship.batch_size)
    if args.setting:
        print(json.dumps(measure(args.setting, args.images, *model)))
        return
    rows = {}
    for setting in SETTINGS:
        print(f"timing {setting} on {args.images} images", flush=True)
        command = [
            sys.executable,
            "-m",
            "experiments.precision",
            "--setting",
            setting,
            "--images",
            str(args.images),
        ]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        rows[setting] = json.loads(done.stdout.strip().splitlines()[-1])
        print(rows[setting], flush=True)
    for row in rows.values():
        for kind in ("train", "inference"):
            base = rows["float32"][f"{kind}_images_per_s"]
            row[f"{kind}_vs_float32"] = round(row[f"{kind}_images_per_s"] / base, 2)
    result = {"machine": describe(), "images": args.images, "model": "denoisers.unet_res", "settings": rows}
    write_json(OUT, result)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
