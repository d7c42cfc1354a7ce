"""How much of a denoiser's SSIM on digits is its background?

MNIST digits sit on black: about 80% of the pixels are exactly 0. A denoiser that leaves a
faint grey there costs little PSNR, but SSIM's luminance and contrast terms compare window
means and variances against constants of 1e-4 and 9e-4, so a residual of a few hundredths
halves SSIM in every background window. For each learned denoiser in ``--models`` this scores,
on the first ``--images`` validation images under one fixed draw of Gaussian noise at each
``--levels`` value (never the test set): PSNR, SSIM, the mean and 90th percentile of the output
on the background (pixels that are 0 in the clean image), and PSNR/SSIM again after a floor
(outputs below ``--floor`` set to 0, the cheapest background fix). Writes
``results/benchmarks/ssim_background.json`` with the machine and each model file's MD5:

    python -m experiments.ssim_background [--images 2000] [--levels 0.5] [--floor 0.05]
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from benchmarks.machine import describe
from experiments.scoring import SCORE_SEED
from pipeline.data import to_float
from pipeline.evaluation import image_quality, restore
from pipeline.io import load_dataset, write_json
from pipeline.models import load_model
from pipeline.noise import corrupt

OUT = Path("results/benchmarks/ssim_background.json")


def background_scores(denoised: np.ndarray, clean: np.ndarray, floor: float) -> dict:
    """PSNR/SSIM of ``denoised``, its background residual, and PSNR/SSIM with the floor."""
    background = denoised[clean == 0]
    floored = np.where(denoised < floor, 0.0, denoised).astype(np.float32)
    quality, after = image_quality(denoised, clean), image_quality(floored, clean)
    return {
        "psnr": round(quality["psnr"], 3),
        "ssim": round(quality["ssim"], 4),
        "background_mean": round(float(background.mean()), 4),
        "background_p90": round(float(np.percentile(background, 90)), 4),
        "psnr_floored": round(after["psnr"], 3),
        "ssim_floored": round(after["ssim"], 4),
    }


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="data/prepared/mnist.npz")
    parser.add_argument("--models", default="models/denoisers")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--levels", type=float, nargs="+", default=[0.5])
    parser.add_argument("--floor", type=float, default=0.05)
    args = parser.parse_args()
    clean = to_float(load_dataset(args.data).x_val[: args.images])
    rows = []
    for path in sorted(Path(args.models).glob("*.keras")):
        model = load_model(path)
        for level in args.levels:
            noisy = corrupt(clean, "gaussian", level, np.random.default_rng(SCORE_SEED))
            scores = background_scores(restore(model, noisy, batch_size=512), clean, args.floor)
            rows.append({"denoiser": path.stem, "level": level, **scores, "model_md5": md5(path)})
            print(rows[-1])
    write_json(
        OUT,
        {
            "images": len(clean),
            "split": "validation",
            "floor": args.floor,
            "background_share": round(float((clean == 0).mean()), 4),
            "machine": describe(),
            "rows": rows,
        },
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
