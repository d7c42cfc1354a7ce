"""Held-out corruption suite in the style of MNIST-C (Mu & Gilmer 2019, google-research/mnist-c).

The 15 corruptions of MNIST-C's ``CORRUPTIONS`` list, each at the one severity MNIST-C's
``corruptions.py`` uses by default (the setting of the published data set), reimplemented with
NumPy / SciPy / scikit-image on float images. Images are float32 arrays in [0, 1] of shape
(N, 28, 28); every recipe takes ``(images, rng)`` and returns float32 in [0, 1]. All per-image
randomness comes from the ``Generator`` passed in, so one seed always gives the same batch.
Coordinates below are (column x, row y), y pointing down, the image centre at (13.5, 13.5).

=============  =====================  ===================================================================
corruption     drawn per image        what it does (MNIST-C setting)
=============  =====================  ===================================================================
shot_noise     Poisson counts         Poisson(3 x) / 3, clipped: 3 photons at full intensity (severity 5
                                      of [60, 25, 12, 5, 3]); the same as ``noise.poisson`` at level
                                      1/sqrt(3) = 0.577.
impulse_noise  pixels, salt/pepper    salt & pepper on a 0.17 fraction of pixels, half each (severity 4
                                      of [.03, .06, .09, .17, .27]; skimage ``random_noise``).
glass_blur     swaps                  severity 1: (sigma 0.7, max_delta 1, 2 iterations). Gaussian blur
                                      of sigma 0.7 **along rows only** (axis 0, see below), then twice:
                                      for rows and columns 27 down to 2, with probability 1/2 swap the
                                      pixel with the one at offset (dx, dy), each in {-1, 0} (MNIST-C's
                                      ``randint(-1, 1)`` excludes +1), then blur again.
motion_blur    angle U(-45, 45) deg   ImageMagick motion blur, radius 10, sigma 3 (severity 1), redone
                                      in NumPy from ``MotionBlurImage`` (see below).
shear          sign +-1               shear angle 0.4 rad (severity 2 of [.2 .. 1.]) with a random sign,
                                      about the centre, bilinear, zero fill (see below).
scale          nothing                shrink by 0.7 about the centre (severity 3: inverse map scale
                                      1/0.7), bilinear, zero fill.
rotate         sign +-1               rotate 0.4 rad = 22.9 deg (severity 2 of [.2 .. 1.]) with a random
                                      sign about the centre, bilinear, zero fill.
brightness     nothing                +0.5 on the HSV value channel (severity 5); for a grey image
                                      gray -> HSV -> gray is exact, so this is clip(x + 0.5, 0, 1).
translate      two signs +-1          shift by 3 px (severity 3) along x and along y, each with its own
                                      random sign; zero fill.
stripe         nothing (no knob)      invert (1 - x) columns 0-6 and 21-27.
fog            plasma fractal         severity 5 (3.0, 1.4): x + 3 * plasma, then x * m / (m + 3) with m
                                      the image's max. Plasma: a 256 x 256 periodic diamond-square map
                                      (start amplitude 100, jitter U(-a, a) * a as in MNIST-C, a / 1.4
                                      per level) rescaled to [0, 1] over the whole map, top-left 28 x 28.
spatter        normal field           severity 4 (0.65, 0.3, 1, 0.65, 1.5): N(0.65, 0.3) field, Gaussian
                                      blur sigma 1, keep > 0.65, blur the mask sigma 1.5, keep >= 0.8 as
                                      m; x * (1 - m) + (63 / 255) m (grey "mud").
dotted_line    end rows r0, r1        (no knob) MNIST-C's line from (0, r0) to (27, r1), r0, r1 in 0-26,
                                      kept on columns 2-3, 6-7, ..., 26 (column 27 is dropped), added.
zigzag         rows r0, r1 - r0       (no knob) a zigzag along the line from (2, r0) to (25, r1), r0 in
                                      0-26, r1 - r0 in -5..4: vertices 2 px off the line, alternately
                                      either side, every 4 px along it (plus MNIST-C's closing point);
                                      segments added one by one.
canny_edges    nothing (no knob)      skimage Canny edges (sigma 1, thresholds 0.1 / 0.2): 0/1 pixels.
=============  =====================  ===================================================================

Lines (dotted_line, zigzag) use MNIST-C's profile: at vertical distance d from the line the value
is clip(1 + log(1 - d / 2.3), 0, 1) (about 1.45 px each side), zero outside the segment's
columns [floor(c0), ceil(c1)).

Where this deviates from MNIST-C's code, on purpose:

- Everything stays float: MNIST-C works on uint8 PIL images and rounds to 8 bits between steps
  (glass_blur after its first blur, motion_blur through a PNG round trip) and in the saved set.
- motion_blur: MNIST-C calls ImageMagick's ``MagickMotionBlurImage`` through Wand, not available
  here. It is rebuilt from ImageMagick's MagickCore/effect.c: 2 * ceil(radius) + 1 = 21 taps with
  one-sided Gaussian weights exp(-i^2 / (2 sigma^2)), i = 0..20, normalised to sum 1; tap i reads
  the pixel at offset (round(i cos a), round(i sin a)) with edge pixels replicated (ImageMagick's
  default virtual pixels), so each bright pixel leaves a streak of ~2.4 px mean length behind it
  towards -(cos a, sin a).
- glass_blur: MNIST-C calls ``gaussian(x, sigma, multichannel=True)`` on a 2-D (28, 28) array; the
  scikit-image of the time (<= 0.18) then treats the last axis as channels and blurs along axis 0
  only. That vertical-only blur is what MNIST-C produced, so it is kept.
- shear: scikit-image <= 0.18 (MNIST-C's) built ``AffineTransform(shear=s)`` as [[1, -sin s],
  [0, cos s]]; current releases use [[1, -tan s], [0, 1]]. The old matrix is built explicitly.
- Random draws use the Generator, so values differ from the released MNIST-C files; only the
  distributions match.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from skimage import feature, transform
from skimage.filters import gaussian as gaussian_filter
from skimage.util import random_noise

SIZE = 28
CENTRE = (SIZE - 1) / 2  # 13.5: MNIST-C keeps this point fixed under shear, rotate and scale

SHOT_PHOTONS = 3.0  # shot_noise severity 5
IMPULSE_AMOUNT = 0.17  # impulse_noise severity 4
GLASS_SIGMA, GLASS_MAX_DELTA, GLASS_ITERATIONS = 0.7, 1, 2  # glass_blur severity 1
MOTION_RADIUS, MOTION_SIGMA, MOTION_MAX_ANGLE = 10.0, 3.0, 45.0  # motion_blur severity 1 (degrees)
SHEAR = 0.4  # shear severity 2 (radians)
SCALE = 0.7  # scale severity 3: inverse map scale 1 / 0.7
ROTATE = 0.4  # rotate severity 2 (radians)
BRIGHTNESS = 0.5  # brightness severity 5
TRANSLATE = 3  # translate severity 3 (pixels)
STRIPE_COLUMNS = (slice(0, 7), slice(21, SIZE))
FOG_STRENGTH, FOG_DECAY = 3.0, 1.4  # fog severity 5
FOG_MAP, FOG_START_AMPLITUDE, FOG_CHUNK = 256, 100.0, 32
# spatter severity 4: field mean, std, blur sigma, threshold, mask blur sigma; mask cut; mud grey
SPATTER_LOC, SPATTER_SCALE, SPATTER_SIGMA, SPATTER_THRESHOLD, SPATTER_MASK_SIGMA = 0.65, 0.3, 1.0, 0.65, 1.5
SPATTER_MASK_CUT, SPATTER_GREY = 0.8, 63 / 255
LINE_FALLOFF = 2.3  # a line's value falls to 0 at 2.3 * (1 - 1/e) = 1.45 px from it
ZIGZAG_C0, ZIGZAG_C1, ZIGZAG_TOOTH, ZIGZAG_HEIGHT = 2, 25, 2.0, 2.0

# Stream constant of the held-out grid ("MNIC" in ASCII): larger than any Unicode code point, so a
# held-out seed [seed, stream, *name] never equals a Gaussian-grid seed [seed, *kind, level] from
# pipeline.noise.grid_seed, and it is none of the small stream numbers used there.
HELDOUT_STREAM = 0x4D4E4943

_ROWS = np.arange(SIZE, dtype=np.float64)[None, :, None]
_COLS = np.arange(SIZE, dtype=np.float64)[None, None, :]


def _signs(rng: np.random.Generator, size) -> np.ndarray:
    return rng.choice(np.array([-1.0, 1.0]), size=size)


def _shot_noise(images, rng):
    return np.clip(rng.poisson(images * SHOT_PHOTONS) / SHOT_PHOTONS, 0.0, 1.0)


def _impulse_noise(images, rng):
    return random_noise(images, mode="s&p", amount=IMPULSE_AMOUNT, clip=True, rng=rng)


def _blur_rows(images, sigma):
    # MNIST-C's gaussian(..., multichannel=True) on a 2-D image: blur along axis 0 (rows) only.
    return gaussian_filter(images, sigma=(0, sigma, 0), mode="nearest", preserve_range=True)


def _glass_blur(images, rng):
    out = _blur_rows(images, GLASS_SIGMA)
    n = len(out)
    positions = range(SIZE - GLASS_MAX_DELTA, GLASS_MAX_DELTA, -1)  # 27 down to 2
    for _ in range(GLASS_ITERATIONS):
        for h in positions:
            for w in positions:
                chosen = np.flatnonzero(rng.random(n) < 0.5)
                dx, dy = rng.integers(-GLASS_MAX_DELTA, GLASS_MAX_DELTA, size=(2, chosen.size))
                here = out[chosen, h, w].copy()
                out[chosen, h, w] = out[chosen, h + dy, w + dx]
                out[chosen, h + dy, w + dx] = here
    return np.clip(_blur_rows(out, GLASS_SIGMA), 0.0, 1.0)


def _motion_blur(images, rng):
    width = int(2 * np.ceil(MOTION_RADIUS) + 1)  # ImageMagick GetOptimalKernelWidth1D
    taps = np.arange(width)
    weights = np.exp(-(taps**2) / (2 * MOTION_SIGMA**2))
    weights /= weights.sum()
    angle = np.deg2rad(rng.uniform(-MOTION_MAX_ANGLE, MOTION_MAX_ANGLE, size=len(images)))
    # ImageMagick rounds i * (cos a, sin a) as ceil(v - 0.5).
    dx = np.ceil(taps[None, :] * np.cos(angle)[:, None] - 0.5).astype(int)
    dy = np.ceil(taps[None, :] * np.sin(angle)[:, None] - 0.5).astype(int)
    pad = width - 1
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
    index = np.arange(len(images))[:, None, None]
    rows = pad + np.arange(SIZE)[None, :, None]
    cols = pad + np.arange(SIZE)[None, None, :]
    out = np.zeros_like(images)
    for i in range(width):
        out += weights[i] * padded[index, rows + dy[:, i, None, None], cols + dx[:, i, None, None]]
    return np.clip(out, 0.0, 1.0)


def _warp_about_centre(images, matrices):
    """Warp each image with ``inverse_map`` x_in = A x_out + t, t chosen to keep the centre fixed."""
    out = np.empty_like(images)
    centre = np.array([CENTRE, CENTRE])
    for k, (image, matrix) in enumerate(zip(images, matrices, strict=True)):
        affine = np.eye(3)
        affine[:2, :2] = matrix
        affine[:2, 2] = centre - matrix @ centre
        inverse_map = transform.AffineTransform(matrix=affine)
        out[k] = transform.warp(image, inverse_map, order=1, mode="constant", cval=0.0, preserve_range=True)
    return np.clip(out, 0.0, 1.0)


def _shear(images, rng):
    s = SHEAR * _signs(rng, len(images))
    # scikit-image <= 0.18's AffineTransform(shear=s): [[1, -sin s], [0, cos s]].
    matrices = [np.array([[1.0, -np.sin(v)], [0.0, np.cos(v)]]) for v in s]
    return _warp_about_centre(images, matrices)


def _scale(images, rng):
    return _warp_about_centre(images, [np.eye(2) / SCALE] * len(images))


def _rotate(images, rng):
    angles = ROTATE * _signs(rng, len(images))
    matrices = [np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) for a in angles]
    return _warp_about_centre(images, matrices)


def _brightness(images, rng):
    return np.clip(images + BRIGHTNESS, 0.0, 1.0)


def _translate(images, rng):
    shifts = TRANSLATE * _signs(rng, (len(images), 2)).astype(int)  # (dx, dy): x_in = x_out + dx
    out = np.zeros_like(images)
    for k, (dx, dy) in enumerate(shifts):
        src_rows = slice(max(dy, 0), SIZE + min(dy, 0))
        src_cols = slice(max(dx, 0), SIZE + min(dx, 0))
        dst_rows = slice(max(-dy, 0), SIZE + min(-dy, 0))
        dst_cols = slice(max(-dx, 0), SIZE + min(-dx, 0))
        out[k, dst_rows, dst_cols] = images[k, src_rows, src_cols]
    return out


def _stripe(images, rng):
    out = images.copy()
    for columns in STRIPE_COLUMNS:
        out[:, :, columns] = 1.0 - out[:, :, columns]
    return out


def _plasma(n, rng):
    """``n`` periodic diamond-square height maps of FOG_MAP x FOG_MAP, each rescaled to [0, 1]."""
    grid = np.zeros((n, FOG_MAP, FOG_MAP))
    step, amplitude = FOG_MAP, FOG_START_AMPLITUDE

    def jitter(total):  # MNIST-C: mean of four plus amplitude * U(-amplitude, amplitude)
        return total / 4 + amplitude * rng.uniform(-amplitude, amplitude, total.shape)

    while step >= 2:
        half = step // 2
        corners = grid[:, ::step, ::step]
        below = np.roll(corners, -1, axis=1)
        square = corners + below + np.roll(corners, -1, axis=2) + np.roll(below, -1, axis=2)
        grid[:, half::step, half::step] = jitter(square)
        centres = grid[:, half::step, half::step]
        # Points on the corners' rows: corners left and right, centres above and below.
        on_rows = corners + np.roll(corners, -1, axis=2) + centres + np.roll(centres, 1, axis=1)
        grid[:, ::step, half::step] = jitter(on_rows)
        # Points on the corners' columns: corners above and below, centres left and right.
        on_cols = corners + np.roll(corners, -1, axis=1) + centres + np.roll(centres, 1, axis=2)
        grid[:, half::step, ::step] = jitter(on_cols)
        step //= 2
        amplitude /= FOG_DECAY
    grid -= grid.min(axis=(1, 2), keepdims=True)
    return grid / grid.max(axis=(1, 2), keepdims=True)


def _fog(images, rng):
    out = np.empty_like(images)
    for start in range(0, len(images), FOG_CHUNK):
        part = images[start : start + FOG_CHUNK]
        plasma = _plasma(len(part), rng)[:, :SIZE, :SIZE]
        peak = part.max(axis=(1, 2), keepdims=True)
        out[start : start + FOG_CHUNK] = (part + FOG_STRENGTH * plasma) * peak / (peak + FOG_STRENGTH)
    return np.clip(out, 0.0, 1.0)


def _spatter(images, rng):
    liquid = rng.normal(SPATTER_LOC, SPATTER_SCALE, size=images.shape)
    liquid = gaussian_filter(liquid, sigma=(0, SPATTER_SIGMA, SPATTER_SIGMA), mode="nearest")
    liquid[liquid < SPATTER_THRESHOLD] = 0
    mask = (liquid > SPATTER_THRESHOLD).astype(np.float64)
    mask = gaussian_filter(mask, sigma=(0, SPATTER_MASK_SIGMA, SPATTER_MASK_SIGMA), mode="nearest")
    mask[mask < SPATTER_MASK_CUT] = 0
    return np.clip(images * (1 - mask) + SPATTER_GREY * mask, 0.0, 1.0)


def _lines(c0, r0, c1, r1):
    """MNIST-C line layers, one per entry of the (n,) endpoint arrays: shape (n, 28, 28)."""
    c0, r0, c1, r1 = (np.asarray(v, dtype=np.float64).reshape(-1, 1, 1) for v in (c0, r0, c1, r1))
    vertical = c1 == c0  # MNIST-C draws nothing for these
    slope = np.where(vertical, 0.0, (r1 - r0) / np.where(vertical, 1.0, c1 - c0))
    distance = np.minimum(np.abs(_ROWS - (r0 + slope * (_COLS - c0))), LINE_FALLOFF - 1e-10)
    layer = np.clip(1 + np.log(1 - distance / LINE_FALLOFF), 0.0, 1.0)
    inside = (_COLS >= np.floor(c0)) & (_COLS < np.ceil(c1)) & ~vertical
    return np.where(inside, layer, 0.0)


def _dotted_line(images, rng):
    r0, r1 = rng.integers(0, SIZE - 1, size=(2, len(images)))
    zeros = np.zeros(len(images))
    layer = _lines(zeros, r0, zeros + SIZE - 1, r1)
    layer[:, :, (np.arange(SIZE) // 2) % 2 == 0] = 0  # dashes on columns 2-3, 6-7, ...
    return np.clip(images + layer, 0.0, 1.0)


def _zigzag_vertices(rise: int) -> np.ndarray:
    """MNIST-C's zigzag for a line rising ``rise`` rows over columns 2-25, from row 0: (2, K)."""
    theta = np.arctan(rise / (ZIGZAG_C1 - ZIGZAG_C0))
    length = (ZIGZAG_C1 - ZIGZAG_C0) / np.cos(theta)
    teeth = int((length - ZIGZAG_TOOTH) // (2 * ZIGZAG_TOOTH)) + 1
    cols = [0.0] + [(2 * i + 1) * ZIGZAG_TOOTH for i in range(teeth)]
    rows = [0.0] + [(-1) ** i * ZIGZAG_HEIGHT for i in range(teeth)]
    whole = 2 * ZIGZAG_TOOTH * (length // (2 * ZIGZAG_TOOTH))
    if length != whole:  # MNIST-C's closing point, kept as it is
        cols.append(length)
        rows.append(rows[-1] / (2 * (length - whole)))
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return rotation @ np.array([cols, rows]) + np.array([[ZIGZAG_C0], [0.0]])


def _zigzag(images, rng):
    out = images.copy()
    r0 = rng.integers(0, SIZE - 1, size=len(images))
    rise = rng.integers(-5, 5, size=len(images))
    for value in np.unique(rise):
        chosen = np.flatnonzero(rise == value)
        cols, rows = _zigzag_vertices(int(value))
        for i in range(1, cols.size):
            layer = _lines(
                np.full(chosen.size, cols[i - 1]),
                r0[chosen] + rows[i - 1],
                np.full(chosen.size, cols[i]),
                r0[chosen] + rows[i],
            )
            out[chosen] = np.clip(out[chosen] + layer, 0.0, 1.0)
    return out


def _canny_edges(images, rng):
    return np.stack([feature.canny(image) for image in images]).astype(np.float64)


Corruption = Callable[[np.ndarray, np.random.Generator], np.ndarray]

CORRUPTIONS: dict[str, Corruption] = {
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
    "glass_blur": _glass_blur,
    "motion_blur": _motion_blur,
    "shear": _shear,
    "scale": _scale,
    "rotate": _rotate,
    "brightness": _brightness,
    "translate": _translate,
    "stripe": _stripe,
    "fog": _fog,
    "spatter": _spatter,
    "dotted_line": _dotted_line,
    "zigzag": _zigzag,
    "canny_edges": _canny_edges,
}

# Not truly held out: impulse_noise is salt & pepper at amount 0.17, inside the 0.05-0.3 the
# denoisers train on, and shot_noise is the trained Poisson recipe at level 1/sqrt(3) = 0.58,
# between the trained 0.5 and 1.0. Report them apart from the unseen corruptions.
NEAR_SEEN = ("impulse_noise", "shot_noise")
GEOMETRIC = ("shear", "rotate", "scale", "translate")
# Draw nothing from the Generator: the same output whatever the seed.
DETERMINISTIC = ("scale", "brightness", "stripe", "canny_edges")


def check_images(images: np.ndarray) -> np.ndarray:
    """``images`` as float64 after checking it is an (N, 28, 28) batch of finite values in [0, 1]."""
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (SIZE, SIZE):
        raise ValueError(f"images must have shape (N, {SIZE}, {SIZE}), got {images.shape}")
    if not (np.issubdtype(images.dtype, np.floating) or np.issubdtype(images.dtype, np.integer)):
        raise ValueError(f"images must be numbers, got dtype {images.dtype}")
    images = images.astype(np.float64)
    if images.size and (not np.all(np.isfinite(images)) or images.min() < 0 or images.max() > 1):
        raise ValueError("images must be finite and in [0, 1]")
    return images


def corrupt_heldout(images: np.ndarray, name: str, rng: np.random.Generator) -> np.ndarray:
    """Apply held-out corruption ``name`` to a float image batch in [0, 1]; float32 in [0, 1]."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; allowed: {sorted(CORRUPTIONS)}")
    images = check_images(images)
    if not len(images):
        return images.astype(np.float32)
    return np.clip(CORRUPTIONS[name](images, rng), 0.0, 1.0).astype(np.float32)


def heldout_seed(seed: int, name: str) -> np.random.SeedSequence:
    """Seed of one corruption's cell, independent of the other corruptions in the grid."""
    return np.random.SeedSequence([seed, HELDOUT_STREAM, *(ord(c) for c in name)])


def heldout_grid(images: np.ndarray, names: Sequence[str], seed: int) -> np.ndarray:
    """Stack of ``images`` under each corruption: shape (len(names), N, 28, 28), float32.

    Each corruption draws from its own seed, so adding one leaves the others bit-identical.
    """
    images = check_images(images)
    cells = [corrupt_heldout(images, name, np.random.default_rng(heldout_seed(seed, name))) for name in names]
    return np.stack(cells) if cells else np.empty((0, *images.shape), dtype=np.float32)
