"""Classical (training-free) denoisers and the LMMSE (Wiener) baseline, batched.

Every filter maps a float32 batch (N, H, W) in [0, 1] and a strength to a batch of the same
shape; strength 0 is the identity and is always a candidate. :func:`fit_filter` chooses the
strength on validation pairs and, with it, an affine tone correction
``clip(gain * filtered + offset, 0, 1)`` fitted by least squares against the clean images.

Why the correction: noise clipped to [0, 1] on MNIST's black background is not zero-mean
(clipped Gaussian noise of std sigma on a 0 pixel averages about +0.4 sigma), so filters that
assume zero-mean noise leave a grey haze that no strength removes. The gain and offset fitted
on validation pairs are that bias correction, and they cost nothing at test time.

:func:`fit_lmmse` is the closed-form linear MMSE estimator fitted on training pairs:
``x_hat = mu_x + C_xy C_yy^-1 (y - mu_y)``. It works for any corruption, blur included (it is
then a linear deconvolution), and is the best any linear denoiser can do on that noise.
"""

from __future__ import annotations

import atexit
import functools
import math
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import numpy as np
from scipy.linalg import solve
from scipy.ndimage import median_filter
from skimage.filters import gaussian
from skimage.restoration import denoise_nl_means, denoise_tv_chambolle, denoise_wavelet, estimate_sigma

from pipeline.io import read_npz_arrays, write_npz

# --- filters --------------------------------------------------------------------------------


def _median(images: np.ndarray, size: float) -> np.ndarray:
    k = int(round(size))
    return median_filter(images, size=(1, k, k), mode="nearest")


def _gaussian(images: np.ndarray, sigma: float) -> np.ndarray:
    return gaussian(images, sigma=(0, sigma, sigma), mode="nearest", preserve_range=True)


def _per_image(
    denoise: Callable[[np.ndarray, float], np.ndarray],
) -> Callable[[np.ndarray, float], np.ndarray]:
    """Lift a one-image denoiser to a batch by looping over the images."""

    def run(images: np.ndarray, strength: float) -> np.ndarray:
        out = np.empty(images.shape, dtype=np.float32)
        for i, image in enumerate(images):
            out[i] = denoise(image, strength)
        return out

    run.__name__ = run.__qualname__ = denoise.__name__
    return run


def _tv(image: np.ndarray, weight: float) -> np.ndarray:
    return denoise_tv_chambolle(image, weight=weight)


def _wavelet(image: np.ndarray, sigma: float) -> np.ndarray:
    return denoise_wavelet(image, sigma=sigma, mode="soft", rescale_sigma=True)


def _nl_means(image: np.ndarray, k: float) -> np.ndarray:
    """Non-local means with ``h = k * sigma``, sigma estimated from the image itself."""
    sigma = float(estimate_sigma(image))
    if sigma <= 0:  # no detectable noise (e.g. a clean digit): nothing to remove
        return image
    return denoise_nl_means(image, h=k * sigma, sigma=sigma, patch_size=3, patch_distance=5, fast_mode=True)


def _bm3d(image: np.ndarray, sigma: float) -> np.ndarray:
    import bm3d  # optional dependency, slow (~1 s per image whatever its size)

    return bm3d.bm3d(image, sigma_psd=sigma)


@dataclass(frozen=True)
class Filter:
    """A denoiser with the candidate strengths searched on validation (0.0 = identity)."""

    name: str
    strengths: tuple[float, ...]
    run: Callable[[np.ndarray, float], np.ndarray]
    per_image: bool  # loops over images in Python, so worth spreading over processes


FILTERS: dict[str, Filter] = {
    f.name: f
    for f in (
        Filter("median", (0.0, 3.0, 5.0), _median, per_image=False),  # odd window sizes
        Filter("gaussian", (0.0, 0.5, 0.75, 1.0, 1.5, 2.0), _gaussian, per_image=False),  # sigma, px
        Filter("tv", (0.0, 0.05, 0.1, 0.2, 0.3, 0.5), _per_image(_tv), per_image=True),  # TV weight
        Filter("wavelet", (0.0, 0.1, 0.2, 0.3, 0.5), _per_image(_wavelet), per_image=True),  # noise sigma
        Filter("nl_means", (0.0, 0.6, 0.8, 1.0, 1.2), _per_image(_nl_means), per_image=True),  # h / sigma
        Filter("bm3d", (0.0, 0.1, 0.2, 0.3, 0.5), _per_image(_bm3d), per_image=True),  # noise sigma
    )
}


def get_filter(name: str) -> Filter:
    """The filter called ``name``; ValueError naming it and the allowed names otherwise."""
    if name not in FILTERS:
        raise ValueError(f"unknown filter {name!r}; allowed: {sorted(FILTERS)}")
    return FILTERS[name]


def _check_batch(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 3:
        raise ValueError(f"expected an (N, H, W) image batch, got shape {images.shape}")
    return images


def _filter_once(name: str, images: np.ndarray, strength: float) -> np.ndarray:
    if not math.isfinite(strength) or strength < 0:
        raise ValueError(f"{name}: strength {strength!r} must be a finite number >= 0")
    if strength == 0 or len(images) == 0:
        return images.copy()
    out = FILTERS[name].run(images, float(strength))
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def _filter_strengths(name: str, images: np.ndarray, strengths: tuple[float, ...]) -> np.ndarray:
    """(S, N, H, W): ``images`` filtered at each strength; runs in worker processes too."""
    return np.stack([_filter_once(name, images, s) for s in strengths])


@functools.cache
def _worker_pool(workers: int) -> ProcessPoolExecutor:
    """One process pool per worker count, kept for the whole process and shut down at exit.

    Starting a pool costs seconds (each forkserver child re-imports the stage script, TensorFlow
    included) while filtering a noise cell takes a fraction of that, so the pool is reused.
    forkserver, not fork: the evaluate stage runs TensorFlow threads, which fork does not survive.
    """
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"))
    atexit.register(pool.shutdown)
    return pool


def _filter_stack(name: str, images: np.ndarray, strengths: tuple[float, ...], workers: int) -> np.ndarray:
    """:func:`_filter_strengths`, with per-image filters split in chunks over ``workers`` processes."""
    images = _check_batch(images)
    if workers <= 1 or not get_filter(name).per_image or len(images) < 2:
        return _filter_strengths(name, images, strengths)
    chunks = np.array_split(images, min(workers, len(images)))
    parts = list(_worker_pool(workers).map(_filter_strengths, repeat(name), chunks, repeat(strengths)))
    return np.concatenate(parts, axis=1)


def apply_filter(name: str, images: np.ndarray, strength: float, workers: int = 1) -> np.ndarray:
    """Filter a batch at ``strength``: float32, same shape, in [0, 1]; strength 0 returns a copy."""
    get_filter(name)
    return _filter_stack(name, images, (float(strength),), workers)[0]


# --- strength search with tone correction -----------------------------------------------------


@dataclass(frozen=True)
class FilterFit:
    """A filter's chosen strength and tone correction, with its validation PSNR (mean per image)."""

    name: str
    strength: float
    gain: float
    offset: float
    val_psnr: float

    def to_dict(self) -> dict:
        """JSON-ready; an infinite PSNR (exact restoration) is written as None."""
        val_psnr = self.val_psnr if math.isfinite(self.val_psnr) else None
        return {
            "name": self.name,
            "strength": self.strength,
            "gain": self.gain,
            "offset": self.offset,
            "val_psnr": val_psnr,
        }

    @classmethod
    def from_dict(cls, d: dict) -> FilterFit:
        val_psnr = math.inf if d["val_psnr"] is None else float(d["val_psnr"])
        return cls(str(d["name"]), float(d["strength"]), float(d["gain"]), float(d["offset"]), val_psnr)


def _tone(filtered: np.ndarray, gain: float, offset: float) -> np.ndarray:
    return np.clip(gain * filtered.astype(np.float64) + offset, 0.0, 1.0).astype(np.float32)


def _fit_tone(filtered: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    """Least-squares ``gain, offset`` with ``gain * filtered + offset ~ clean`` over all pixels."""
    f = filtered.reshape(-1).astype(np.float64)
    design = np.stack([f, np.ones_like(f)], axis=1)
    (gain, offset), *_ = np.linalg.lstsq(design, clean.reshape(-1).astype(np.float64), rcond=None)
    return float(gain), float(offset)


def fit_filter(name: str, noisy: np.ndarray, clean: np.ndarray, workers: int = 1) -> FilterFit:
    """Choose the strength and tone correction with the lowest MSE on validation pairs.

    Ties go to the smaller strength, so clean inputs keep the identity.
    """
    from pipeline.metrics import psnr

    noisy, clean = _check_batch(noisy), _check_batch(clean)
    if noisy.shape != clean.shape or len(noisy) == 0:
        raise ValueError(f"expected non-empty batches of equal shape, got {noisy.shape} and {clean.shape}")
    strengths = tuple(sorted(get_filter(name).strengths))
    best = None
    for strength, filtered in zip(strengths, _filter_stack(name, noisy, strengths, workers), strict=True):
        gain, offset = _fit_tone(filtered, clean)
        restored = _tone(filtered, gain, offset)
        mse = float(np.mean((restored.astype(np.float64) - clean) ** 2))
        if best is None or mse < best[0]:
            best = (mse, strength, gain, offset, restored)
    _, strength, gain, offset, restored = best
    return FilterFit(name, float(strength), gain, offset, float(np.mean(psnr(clean, restored))))


def denoise_fitted(fit: FilterFit, images: np.ndarray, workers: int = 1) -> np.ndarray:
    """Filter at ``fit.strength``, then apply its tone correction; float32 in [0, 1]."""
    return _tone(apply_filter(fit.name, images, fit.strength, workers), fit.gain, fit.offset)


# --- LMMSE ------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Lmmse:
    """Linear MMSE estimator on flattened images: ``x_hat = mean_clean + (y - mean_noisy) @ weights``."""

    mean_noisy: np.ndarray  # (D,)
    mean_clean: np.ndarray  # (D,)
    weights: np.ndarray  # (D, D) = C_yy^-1 C_yx

    def __post_init__(self):
        d = self.mean_noisy.shape
        if len(d) != 1 or self.mean_clean.shape != d or self.weights.shape != d * 2:
            raise ValueError(
                f"LMMSE shapes do not match: means {self.mean_noisy.shape}, {self.mean_clean.shape}, "
                f"weights {self.weights.shape}"
            )

    def apply(self, images: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Estimate the clean images of a batch (N, ...) of D pixels each; float32 in [0, 1]."""
        images = np.asarray(images, dtype=np.float32)
        flat = images.reshape(len(images), -1)
        if flat.shape[1] != len(self.mean_noisy):
            raise ValueError(
                f"LMMSE fitted on {len(self.mean_noisy)} pixels, got images of shape {images.shape}"
            )
        mean_noisy, mean_clean = self.mean_noisy.astype(np.float32), self.mean_clean.astype(np.float32)
        weights = self.weights.astype(np.float32, copy=False)
        out = np.empty_like(flat)
        for start in range(0, len(flat), batch_size):
            batch = flat[start : start + batch_size]
            out[start : start + batch_size] = np.clip((batch - mean_noisy) @ weights + mean_clean, 0.0, 1.0)
        return out.reshape(images.shape)

    PARTS = ("mean_noisy", "mean_clean", "weights")

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The estimator as named arrays (the one format :meth:`save` and the baselines file use)."""
        return {part: getattr(self, part) for part in self.PARTS}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], source: str) -> Lmmse:
        """Inverse of :meth:`to_arrays`; missing or mismatched arrays raise an error naming ``source``."""
        missing = sorted(set(cls.PARTS) - set(arrays))
        if missing:
            raise ValueError(f"{source}: LMMSE arrays {missing} are missing")
        try:
            return cls(**{part: arrays[part] for part in cls.PARTS})
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None

    def save(self, path: str | Path) -> None:
        write_npz(path, **self.to_arrays())

    @classmethod
    def load(cls, path: str | Path) -> Lmmse:
        """Read a :meth:`save` file; a missing, corrupt or mismatched file raises an error naming it."""
        return cls.from_arrays(read_npz_arrays(path, cls.PARTS), str(path))


def fit_lmmse(noisy: np.ndarray, clean: np.ndarray, ridge: float = 1e-4, batch_size: int = 4096) -> Lmmse:
    """Closed-form LMMSE estimator from training pairs (N, ...), covariances in float64.

    ``ridge`` times the mean pixel variance is added to the diagonal of C_yy, so constant pixels
    (MNIST's empty border) keep it positive definite.
    """
    y = np.asarray(noisy, dtype=np.float32).reshape(len(noisy), -1)
    x = np.asarray(clean, dtype=np.float32).reshape(len(clean), -1)
    if y.shape != x.shape or len(y) < 2:
        raise ValueError(
            f"expected two batches of >= 2 equal-shape images, got {noisy.shape} and {clean.shape}"
        )
    mean_y, mean_x = y.mean(axis=0, dtype=np.float64), x.mean(axis=0, dtype=np.float64)
    c_yy = np.zeros((y.shape[1],) * 2)
    c_yx = np.zeros_like(c_yy)
    for start in range(0, len(y), batch_size):
        yc = y[start : start + batch_size] - mean_y  # float64
        c_yy += yc.T @ yc
        c_yx += yc.T @ (x[start : start + batch_size] - mean_x)
    c_yy /= len(y)
    c_yx /= len(y)
    c_yy[np.diag_indices_from(c_yy)] += ridge * (float(np.mean(np.diag(c_yy))) or 1.0)
    weights = solve(c_yy, c_yx, assume_a="pos", overwrite_a=True, overwrite_b=True)
    return Lmmse(mean_y.astype(np.float32), mean_x.astype(np.float32), weights.astype(np.float32))
