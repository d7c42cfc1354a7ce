"""Image-quality and accuracy metrics, vectorised over a batch of images.

PSNR and SSIM reproduce scikit-image's ``peak_signal_noise_ratio`` and
``structural_similarity`` (data_range=1, 7x7 uniform window, sample covariance) image by
image, in the same float precision, so batch means equal the per-image skimage loop that
the seeds report; tests check the equality. Calling skimage once per image costs ~0.3 ms
each, which is minutes over the evaluation grid.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter

SSIM_WINDOW = 7
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _float_pair(reference: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if reference.shape != test.shape or reference.ndim != 3:
        raise ValueError(
            f"expected two (N, H, W) batches of equal shape, got {reference.shape} and {test.shape}"
        )
    dtype = np.result_type(reference.dtype, test.dtype, np.float32)
    return reference.astype(dtype, copy=False), test.astype(dtype, copy=False)


def psnr(reference: np.ndarray, test: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """Per-image PSNR in dB, shape (N,); ``inf`` where the images are identical."""
    reference, test = _float_pair(reference, test)
    mse = np.mean((reference - test) ** 2, axis=(1, 2), dtype=np.float64)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(data_range**2 / mse)


def ssim(reference: np.ndarray, test: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """Per-image mean SSIM, shape (N,)."""
    x, y = _float_pair(reference, test)
    size = (1, SSIM_WINDOW, SSIM_WINDOW)  # filter within each image, never across the batch

    def mean(image):
        return uniform_filter(image, size=size)

    cov_norm = SSIM_WINDOW**2 / (SSIM_WINDOW**2 - 1)
    ux, uy = mean(x), mean(y)
    vx = cov_norm * (mean(x * x) - ux * ux)
    vy = cov_norm * (mean(y * y) - uy * uy)
    vxy = cov_norm * (mean(x * y) - ux * uy)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    pad = (SSIM_WINDOW - 1) // 2
    return s[:, pad:-pad, pad:-pad].mean(axis=(1, 2), dtype=np.float64)


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of argmax predictions equal to the labels."""
    return float(np.mean(np.argmax(probabilities, axis=-1) == labels))


def wilson_interval(correct: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion of ``correct`` out of ``total`` trials."""
    from scipy.stats import binomtest

    interval = binomtest(int(correct), int(total)).proportion_ci(confidence, method="wilson")
    return float(interval.low), float(interval.high)


def paired_difference(
    first: np.ndarray, second: np.ndarray, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Difference of two accuracies on the same items, ``mean(first) - mean(second)`` for two
    boolean "correct" vectors, and its 95% interval by Newcombe's square-and-add method for
    paired proportions (Newcombe 1998, method 10: Wilson intervals of both accuracies, combined
    with their estimated correlation). Pairing is what makes it much narrower than two
    separate Wilson intervals when the two mostly agree: only the items on which they disagree
    carry evidence. Returns (difference, low, high)."""
    first, second = np.asarray(first, dtype=bool), np.asarray(second, dtype=bool)
    if first.shape != second.shape or first.ndim != 1 or first.size == 0:
        raise ValueError(
            f"expected two non-empty 1-D vectors of equal length, got {first.shape} and {second.shape}"
        )
    n = first.size
    both, only_first = int(np.sum(first & second)), int(np.sum(first & ~second))
    only_second = int(np.sum(~first & second))
    neither = n - both - only_first - only_second
    right1, right2 = both + only_first, both + only_second
    p1, p2 = right1 / n, right2 / n
    l1, u1 = wilson_interval(right1, n, confidence)
    l2, u2 = wilson_interval(right2, n, confidence)
    # phi, the correlation of the two, with Newcombe's continuity correction of its numerator
    margins = float(right1) * (n - right1) * right2 * (n - right2)
    cross = float(both) * neither - float(only_first) * only_second
    cross = cross - n / 2 if cross > n / 2 else (0.0 if cross >= 0 else cross)
    phi = cross / np.sqrt(margins) if margins > 0 else 0.0
    difference = p1 - p2
    below = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    above = (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    return (
        difference,
        difference - float(np.sqrt(max(below, 0.0))),
        difference + float(np.sqrt(max(above, 0.0))),
    )


def intervals_overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two (low, high) intervals share a point."""
    return a[1] >= b[0] and b[1] >= a[0]
