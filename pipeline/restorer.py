"""The one interface every defense is evaluated through, and its input contract (kept free of
heavy imports).

The input contract: every input is clipped to [0, 1] before any defense and before the
classifier (:func:`admit`), the undefended baseline included. An out-of-range recipe, such as
seed 000's unclipped Gaussian noise, therefore reaches every defense as its clipped version.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

NO_DENOISER = "none"  # the undefended baseline's name in every table

Restorer = Callable[[np.ndarray, str, float], np.ndarray]
"""restore(noisy_images, noise_kind, level) -> images in [0, 1]; blind models ignore kind and level."""


def admit(images: np.ndarray) -> np.ndarray:
    """The input contract: ``images`` as float32 clipped to [0, 1] (NaN is refused)."""
    images = np.asarray(images, dtype=np.float32)
    if np.isnan(images).any():
        raise ValueError("input images contain NaN")
    return np.clip(images, 0.0, 1.0)


def contracted(restorer: Restorer) -> Restorer:
    """``restorer`` applied to admitted inputs, so ``r(x) == r(clip(x))`` for every ``x``."""
    return lambda images, kind, level: restorer(admit(images), kind, level)
