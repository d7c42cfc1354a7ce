"""MNIST-style preprocessing of arbitrary digit images (PNG/JPEG, any size).

MNIST digits are white on black, size-normalised to fit a 20x20 box (aspect ratio kept) and
centred by centre of mass in a 28x28 frame. :func:`to_mnist` does the same to a photo or
scan of a digit: grayscale, invert if the background is light, crop to the ink, resize the
longer side to 20 px, paste into 28x28 and shift the centre of mass to the centre.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.color import rgb2gray, rgba2rgb
from skimage.transform import resize
from skimage.util import img_as_float

DIGIT_BOX = 20
FRAME = 28


def to_gray(image: np.ndarray) -> np.ndarray:
    """Any image array (gray, RGB, RGBA; any dtype) to float grayscale in [0, 1]."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 4:
        image = rgba2rgb(image)
    if image.ndim == 3:
        image = rgb2gray(image)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale or RGB(A) image, got shape {image.shape}")
    return img_as_float(image).astype(np.float32)


def to_mnist(image: np.ndarray, ink_threshold: float = 0.1) -> np.ndarray:
    """A digit image of any size to a 28x28 float32 MNIST-style image in [0, 1]."""
    gray = to_gray(image)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 0.5:  # dark digit on a light background: make it white on black
        gray = 1.0 - gray
    gray = gray - gray.min()
    if gray.max() > 0:
        gray = gray / gray.max()
    rows = np.flatnonzero((gray > ink_threshold).any(axis=1))
    cols = np.flatnonzero((gray > ink_threshold).any(axis=0))
    frame = np.zeros((FRAME, FRAME), dtype=np.float32)
    if rows.size == 0:
        return frame  # a blank image stays blank
    digit = gray[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = DIGIT_BOX / max(digit.shape)
    height = max(1, round(digit.shape[0] * scale))
    width = max(1, round(digit.shape[1] * scale))
    digit = resize(digit, (height, width), anti_aliasing=True)
    top, left = (FRAME - height) // 2, (FRAME - width) // 2
    frame[top : top + height, left : left + width] = digit
    centre = np.array(ndimage.center_of_mass(frame))
    shifted = ndimage.shift(frame, np.round((FRAME - 1) / 2 - centre), order=0, mode="constant")
    return np.clip(shifted, 0.0, 1.0).astype(np.float32)
