"""The held-out suite: its grid (MNIST-C's corruptions and seed 000's unclipped Gaussian recipe)
and what every defense gains or loses on it.

No training, tuning or fitting stage imports this module or :mod:`pipeline.corruptions`
(``tests/test_heldout.py`` walks their imports), so nothing is ever chosen on the suite.

Every MNIST-C corruption has one published setting: its ``level`` column is 1. The unclipped
Gaussian recipe ``x + sigma * N(0, 1)`` (seed 000's) keeps sigma as its level. Under the input
contract (:func:`pipeline.restorer.admit`) it reaches every defense clipped, that is as the
clipped Gaussian recipe the denoisers train on: it is marked *seen*, not held out, and kept out
of the suite's means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from pipeline.corruptions import GEOMETRIC, NEAR_SEEN, check_images, corrupt_heldout, heldout_seed
from pipeline.io import read_npz_arrays, write_npz
from pipeline.metrics import paired_difference

UNCLIPPED = "gaussian_unclipped"
MNIST_C_LEVEL = 1.0


def unclipped_gaussian(images: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Seed 000's recipe: ``x + sigma * N(0, 1)``, not clipped (values fall outside [0, 1])."""
    images = check_images(images)
    return (images + sigma * rng.standard_normal(images.shape)).astype(np.float32)


def build_suite(
    images: np.ndarray, names: Sequence[str], seed: int, unclipped_sigma: float | None
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(names, levels, images[C, N, 28, 28]): each corruption of ``names`` from its own seed,
    then the unclipped Gaussian recipe if ``unclipped_sigma`` is set."""
    cells, levels = [], []
    for name in tqdm(names, desc="held-out suite", unit="corruption"):
        cells.append(corrupt_heldout(images, name, np.random.default_rng(heldout_seed(seed, name))))
        levels.append(MNIST_C_LEVEL)
    names = list(names)
    if unclipped_sigma:
        rng = np.random.default_rng(heldout_seed(seed, UNCLIPPED))
        cells.append(unclipped_gaussian(images, unclipped_sigma, rng))
        levels.append(float(unclipped_sigma))
        names.append(UNCLIPPED)
    return names, np.array(levels), np.stack(cells)


def save_suite(path: str | Path, names, levels, images, labels) -> None:
    write_npz(path, names=np.array(names), levels=levels, images=images, labels=labels)


def load_suite(path: str | Path, expected: Sequence[str]) -> tuple[dict, np.ndarray]:
    """({name: (levels[1], images[1, N, 28, 28])}, labels) from :func:`save_suite`'s file;
    ``DataError`` naming the file if its corruptions are not ``expected``."""
    from pipeline.data import DataError

    arrays = read_npz_arrays(path, ("names", "levels", "images", "labels"))
    names = [str(name) for name in arrays["names"]]
    if names != list(expected):
        raise DataError(
            f"{path} holds {names}, but params.yaml asks for {list(expected)}: rerun its stage (dvc repro)"
        )
    grids = {name: (arrays["levels"][i : i + 1], arrays["images"][i : i + 1]) for i, name in enumerate(names)}
    return grids, arrays["labels"]


def mark_seen(scores: pd.DataFrame, trained_gaussian: Sequence[float]) -> pd.DataFrame:
    """``seen_in_training`` (the unclipped recipe, clipped by the input contract, is the trained
    Gaussian recipe when its sigma lies within the trained levels) and ``near_seen``."""
    out = scores.copy()
    low, high = (min(trained_gaussian), max(trained_gaussian)) if trained_gaussian else (1.0, 0.0)
    out["seen_in_training"] = (out["noise"] == UNCLIPPED) & out["level"].between(low, high)
    out["near_seen"] = out["noise"].isin(NEAR_SEEN)
    return out


def gains(
    correct: Mapping[tuple[str, str, str, float], np.ndarray],
    reference: tuple[str, str],
) -> pd.DataFrame:
    """Per defense and corruption: accuracy, the paired gain over ``reference`` (no defense in
    front of the clean classifier) on the same images with its 95% interval, and ``harm`` (the
    interval below 0)."""
    rows = []
    for (kind, name, clf, level), right in correct.items():
        base = correct[(kind, *reference, level)][: len(right)]
        gain, low, high = (
            (np.nan, np.nan, np.nan) if (name, clf) == reference else paired_difference(right, base)
        )
        rows.append(
            {
                "corruption": kind,
                "denoiser": name,
                "classifier": clf,
                "n_images": len(right),
                "accuracy": float(right.mean()),
                "gain": gain,
                "gain_low": low,
                "gain_high": high,
                "harm": bool(high < 0),
            }
        )
    return pd.DataFrame(rows)


def summary(gains_table: pd.DataFrame, reference: tuple[str, str]) -> pd.DataFrame:
    """One row per defense over the MNIST-C corruptions: mean accuracy (all, without the
    near-seen two, the geometric four), mCE against ``reference`` (mean over corruptions of its
    error over the reference's on the same images), the do-no-harm count (corruptions with a
    significantly negative gain) next to the count of negative point estimates, and its
    accuracy on the unclipped recipe."""
    suite = gains_table[gains_table["corruption"] != UNCLIPPED]
    base = suite[(suite["denoiser"] == reference[0]) & (suite["classifier"] == reference[1])]
    base_error = base.set_index("corruption")["accuracy"].rsub(1)
    rows = []
    for (name, clf), part in suite.groupby(["denoiser", "classifier"], sort=False):
        part = part.set_index("corruption")
        error = 1 - part["accuracy"]
        unclipped = gains_table[
            (gains_table["corruption"] == UNCLIPPED)
            & (gains_table["denoiser"] == name)
            & (gains_table["classifier"] == clf)
        ]
        rows.append(
            {
                "denoiser": name,
                "classifier": clf,
                "n_images": int(part["n_images"].min()),
                "suite_mean": part["accuracy"].mean(),
                "unseen_mean": part.loc[~part.index.isin(NEAR_SEEN), "accuracy"].mean(),
                "geometric_mean": part.loc[part.index.isin(GEOMETRIC), "accuracy"].mean(),
                "mCE": float((error / base_error.reindex(error.index)).mean()),
                "harms": int(part["harm"].sum()),
                "below_zero": int((part["gain"] < 0).sum()),
                "unclipped_accuracy": float(unclipped["accuracy"].iloc[0]) if len(unclipped) else np.nan,
            }
        )
    return pd.DataFrame(rows)


def headline(
    table: pd.DataFrame,
    defenses: Mapping[str, tuple[str, str]],
    reference: tuple[str, str],
    mce_role: str,
) -> dict:
    """A few keys for ``dvc metrics``: the suite mean of every named defense, the do-no-harm
    count of each but ``reference`` (the undefended clean classifier, harmless by definition),
    and the mCE of ``mce_role``."""
    indexed = table.set_index(["denoiser", "classifier"])
    out = {}
    for role, defense in defenses.items():
        row = indexed.loc[defense]
        out[f"{role}_heldout_mean"] = round(float(row["suite_mean"]), 4)
        if tuple(defense) != tuple(reference):
            out[f"{role}_heldout_harms"] = int(row["harms"])
        if role == mce_role:
            out[f"{role}_heldout_mCE"] = round(float(row["mCE"]), 4)
    return out


def markdown(
    table: pd.DataFrame,
    gains_table: pd.DataFrame,
    defenses: Mapping[str, tuple[str, str]],
    charges: Mapping[tuple[str, str], float],
) -> str:
    """The report's held-out section: the headline defenses, then every defense (with its training
    compute, ``charges`` in FLOPs per (denoiser, classifier)), then the geometric corruptions for
    the headline defenses."""
    named = {defense: role for role, defense in defenses.items()}
    pairs = list(zip(table["denoiser"], table["classifier"], strict=True))
    shown = table.assign(
        defense=[f"{d} + {c}" for d, c in pairs],
        role=[named.get(pair, "") for pair in pairs],
        tflop=[round(charges[pair] / 1e12, 1) for pair in pairs],
    )
    shown = shown.sort_values(["role", "suite_mean"], ascending=[False, False], key=_role_first)
    columns = {
        "defense": "defense",
        "role": "headline role",
        "tflop": "training TFLOP",
        "n_images": "n",
        "suite_mean": "suite mean (%)",
        "unseen_mean": "without near-seen (%)",
        "geometric_mean": "geometric (%)",
        "mCE": "mCE",
        "harms": "harms (significant)",
        "below_zero": "gain < 0 (point)",
        "unclipped_accuracy": f"{UNCLIPPED} (%), seen",
    }
    out = shown[list(columns)].rename(columns=columns)
    for col in ("suite mean (%)", "without near-seen (%)", "geometric (%)", f"{UNCLIPPED} (%), seen"):
        out[col] = (100 * out[col]).round(2)
    out["mCE"] = out["mCE"].round(3)
    geo = gains_table[gains_table["corruption"].isin(GEOMETRIC)]
    geo = geo[[(d, c) in named for d, c in zip(geo["denoiser"], geo["classifier"], strict=True)]]
    geo_table = geo.assign(
        defense=[f"{d} + {c}" for d, c in zip(geo["denoiser"], geo["classifier"], strict=True)],
        cell=[
            f"{100 * a:.1f} ({100 * g:+.1f}{' harm' if h else ''})" if np.isfinite(g) else f"{100 * a:.1f}"
            for a, g, h in zip(geo["accuracy"], geo["gain"], geo["harm"], strict=True)
        ],
    ).pivot(index="defense", columns="corruption", values="cell")
    return "\n\n".join(
        [
            "MNIST-C's 15 corruptions at their published settings, never seen in training, tuning or "
            "fitting (`pipeline/corruptions.py`), on the first test images (n per row; the per-image "
            "filters on fewer). The classical filters use their fit for the headline cell. mCE: mean "
            "over corruptions of the defense's error over the undefended clean classifier's (MNIST-C "
            "reports error rates); harms: corruptions where the paired 95% interval of the gain over "
            "no defense lies below 0 (compare counts only at equal n). Near-seen: impulse_noise and "
            f"shot_noise are close to trained recipes. `{UNCLIPPED}`: seed 000's recipe, which the "
            "input contract clips to the trained Gaussian recipe, so it counts as seen.",
            out.to_markdown(index=False),
            "Geometric corruptions, accuracy % (gain over no defense, points):",
            geo_table.to_markdown(),
        ]
    )


def _role_first(column: pd.Series) -> pd.Series:
    return column.map(lambda v: (v != "") if isinstance(v, str) else v)
