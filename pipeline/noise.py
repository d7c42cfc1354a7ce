"""Noise recipes: the single source of truth for every corruption in the benchmark.

Images are float32 arrays in [0, 1] of shape (N, H, W). Every recipe takes a ``level``
(0 = the clean image, returned unchanged) and a NumPy ``Generator``, and returns float32
in [0, 1]. The evaluation grid (noise stage) and the fresh noise drawn for denoiser
training both come from :func:`corrupt`, so they can never disagree.

- ``gaussian``: additive noise of std ``level``, clipped (skimage ``random_noise``).
- ``salt_pepper``: a ``level`` fraction of pixels set to 0 or 1, half each (skimage).
- ``speckle``: multiplicative x + x*n, n of std ``level``, clipped (skimage).
- ``poisson``: shot noise with peak = 1/level^2 photons, so before clipping the noise std
  at intensity 1 is ``level`` (NumPy; skimage's poisson mode has no strength knob).
- ``blur``: Gaussian blur of sigma 1.5*level px (skimage), then uniform noise in
  +-0.5*level, clipped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from skimage.filters import gaussian as gaussian_filter
from skimage.util import random_noise

BLUR_SIGMA_PER_LEVEL = 1.5
BLUR_UNIFORM_PER_LEVEL = 0.5


def _gaussian(images, level, rng):
    return random_noise(images, mode="gaussian", var=level**2, clip=True, rng=rng)


def _salt_pepper(images, level, rng):
    return random_noise(images, mode="s&p", amount=level, clip=True, rng=rng)


def _speckle(images, level, rng):
    return random_noise(images, mode="speckle", var=level**2, clip=True, rng=rng)


def _poisson(images, level, rng):
    # skimage's 'poisson' mode has no strength knob (it uses the image's bit depth), so the
    # photon count is set explicitly: at intensity 1 the unclipped noise std equals ``level``.
    peak = 1.0 / level**2
    return np.clip(rng.poisson(images * peak) / peak, 0.0, 1.0)


def _blur(images, level, rng):
    sigma = BLUR_SIGMA_PER_LEVEL * level
    blurred = gaussian_filter(images, sigma=(0, sigma, sigma), preserve_range=True)
    half_width = BLUR_UNIFORM_PER_LEVEL * level
    return np.clip(blurred + rng.uniform(-half_width, half_width, images.shape), 0.0, 1.0)


Recipe = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]

NOISE_TYPES: dict[str, Recipe] = {
    "gaussian": _gaussian,
    "salt_pepper": _salt_pepper,
    "speckle": _speckle,
    "poisson": _poisson,
    "blur": _blur,
}

# Largest level that still means something for each type (salt & pepper is a fraction).
MAX_LEVEL = {"salt_pepper": 1.0}


def check_level(kind: str, level: float) -> None:
    """Raise ValueError if ``level`` is not a valid strength for noise ``kind``."""
    if kind not in NOISE_TYPES:
        raise ValueError(f"unknown noise type {kind!r}; allowed: {sorted(NOISE_TYPES)}")
    if isinstance(level, bool | np.bool_) or not isinstance(level, int | float | np.number):
        raise ValueError(f"{kind}: level {level!r} must be a number")
    if not np.isfinite(level):
        raise ValueError(f"{kind}: level {level!r} must be a finite number")
    if level < 0:
        raise ValueError(f"{kind}: level {level} must be >= 0")
    if kind in MAX_LEVEL and level > MAX_LEVEL[kind]:
        raise ValueError(f"{kind}: level {level} must be <= {MAX_LEVEL[kind]}")


def corrupt(images: np.ndarray, kind: str, level: float, rng: np.random.Generator) -> np.ndarray:
    """Apply noise ``kind`` at ``level`` to a float image batch in [0, 1]."""
    check_level(kind, level)
    images = np.asarray(images, dtype=np.float32)
    if level == 0:
        return images.copy()
    return NOISE_TYPES[kind](images, float(level), rng).astype(np.float32)


def grid_seed(seed: int, kind: str, level: float, stream: int | None = None) -> np.random.SeedSequence:
    """Seed for one grid cell, independent of which other cells the grid contains; ``stream``
    gives another grid of the same seed its own draws (e.g. the validation curve set)."""
    key = [ord(c) for c in kind] + [int(round(level * 1_000_000))]
    return np.random.SeedSequence([seed, *key] if stream is None else [seed, stream, *key])


def noisy_grid(
    images: np.ndarray, kind: str, levels: Sequence[float], seed: int, stream: int | None = None
) -> np.ndarray:
    """Stack of ``images`` corrupted at each level: shape (len(levels), N, H, W), float32.

    Each level draws from its own seed, so adding a level leaves the others bit-identical.
    """
    return np.stack(
        [
            corrupt(images, kind, level, np.random.default_rng(grid_seed(seed, kind, level, stream)))
            for level in levels
        ]
    )


def corrupt_mix(
    images: np.ndarray,
    levels: Mapping[str, Sequence[float]],
    rng: np.random.Generator,
    clean_fraction: float = 0.0,
    type_weights: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Corrupt each image with a random recipe: a type, then a uniform level of it.

    Types are drawn in proportion to ``type_weights`` (relative; a type it does not name
    weighs 1; None or equal weights: uniform, the same draws as without). A
    ``clean_fraction`` of the images is left clean, so a blind denoiser learns to leave
    clean digits alone. Used to draw fresh training noise every epoch. Empty ``levels``: the
    images unchanged (as float32).
    """
    images = np.asarray(images, dtype=np.float32)
    if not levels:
        return images.copy()
    kinds = list(levels)
    out = images.copy()
    weights = np.array([(type_weights or {}).get(kind, 1.0) for kind in kinds], dtype=float)
    if np.any(weights <= 0) or not np.all(np.isfinite(weights)):
        raise ValueError(f"type_weights must be positive and finite, got {dict(type_weights)}")
    if np.all(weights == weights[0]):
        kind_index = rng.integers(len(kinds), size=len(images))
    else:
        kind_index = rng.choice(len(kinds), size=len(images), p=weights / weights.sum())
    is_noisy = rng.random(len(images)) >= clean_fraction
    for k, kind in enumerate(kinds):
        level_index = rng.integers(len(levels[kind]), size=len(images))
        for j, level in enumerate(levels[kind]):
            chosen = np.flatnonzero(is_noisy & (kind_index == k) & (level_index == j))
            if chosen.size:
                out[chosen] = corrupt(images[chosen], kind, level, rng)
    return out


@dataclass(frozen=True)
class NoiseMix:
    """The training-noise mix :func:`corrupt_mix` draws from: the types and levels, the share of
    images left clean and the relative odds of each type (params ``train_noise``)."""

    levels: Mapping[str, Sequence[float]] = field(default_factory=dict)
    clean_fraction: float = 0.0
    type_weights: Mapping[str, float] | None = None

    @classmethod
    def of(cls, mix: NoiseMix | Mapping[str, Sequence[float]] | None) -> NoiseMix:
        """``mix`` itself, the mix of just these levels, or (None) no noise."""
        if isinstance(mix, NoiseMix):
            return mix
        return cls(dict(mix or {}))

    def __bool__(self) -> bool:
        return bool(self.levels)

    def draw(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return corrupt_mix(images, self.levels, rng, self.clean_fraction, self.type_weights)
