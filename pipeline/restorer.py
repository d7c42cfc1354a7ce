"""The one interface every denoiser is evaluated through (kept free of heavy imports)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Restorer = Callable[[np.ndarray, str, float], np.ndarray]
"""restore(noisy_images, noise_kind, level) -> images in [0, 1]; blind models ignore kind and level."""
