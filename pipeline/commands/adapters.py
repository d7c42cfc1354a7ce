"""The user's models behind the pipeline's interfaces: a classifier that gives probabilities for
(N, 28, 28) images in [0, 1], a denoiser that maps such images to such images, whatever layout
((28, 28) or (28, 28, 1)), output kind (probabilities or logits) and pixel scale they use."""

from __future__ import annotations

import math

import keras
import numpy as np
from scipy.special import softmax

from pipeline.commands.files import ScoreError

YOUR_CLASSIFIER = "your_classifier"  # the user's models, as the defense names call them
YOUR_DENOISER = "your_denoiser"
IMAGE = (28, 28)
CLASSES = 10


def input_layout(model: keras.Model, role: str, source: str) -> tuple[int, ...]:
    """(28, 28) or (28, 28, 1): how ``model`` takes an image (a None dimension takes 28)."""
    try:
        shape = model.input_shape
    except (AttributeError, ValueError) as error:
        raise ScoreError(
            f"{source}: cannot tell the {role}'s input shape ({error}); build it on keras.Input((28, 28))"
        ) from None
    if not (isinstance(shape, tuple) and all(d is None or isinstance(d, int) for d in shape)):
        raise ScoreError(f"{source}: the {role} takes several inputs {shape}; expected one image input")
    dims = tuple(shape[1:])
    spatial_ok = all(d in (28, None) for d in dims[:2])
    if len(dims) == 2 and spatial_ok:
        return IMAGE
    if len(dims) == 3 and spatial_ok and dims[2] == 1:
        return (*IMAGE, 1)
    raise ScoreError(f"{source}: the {role} takes inputs of shape {dims}; expected (28, 28) or (28, 28, 1)")


def probe(model: keras.Model, layout: tuple[int, ...], role: str, source: str) -> tuple[int, ...]:
    """The shape of ``model``'s output on a batch of two blank images."""
    try:
        out = model(np.zeros((2, *layout), dtype=np.float32), training=False)
    except Exception as error:  # a model can fail in many ways; report it as unfit
        raise ScoreError(f"{source}: the {role} fails on a (2, {layout}) batch ({error})") from None
    if isinstance(out, list | tuple | dict):
        raise ScoreError(f"{source}: the {role} has several outputs; expected one")
    return tuple(keras.ops.convert_to_numpy(out).shape)


class ClassifierAdapter:
    """The user's classifier behind the pipeline's: ``predict(images)`` takes (N, 28, 28) in
    [0, 1] and returns probabilities (N, 10). The images are reshaped to the model's layout and
    multiplied by ``pixel_scale``; with ``logits`` a softmax turns the outputs into probabilities."""

    def __init__(self, model: keras.Model, logits: bool = False, pixel_scale: float = 1.0, source=None):
        source = source or f"classifier {model.name!r}"
        if not (pixel_scale > 0 and math.isfinite(pixel_scale)):
            raise ScoreError(f"pixel scale {pixel_scale} must be a positive number (e.g. 1 or 255)")
        self.model, self.logits, self.pixel_scale, self.source = model, logits, float(pixel_scale), source
        self.layout = input_layout(model, "classifier", source)
        shape = probe(model, self.layout, "classifier", source)
        if shape[1:] != (CLASSES,):
            raise ScoreError(
                f"{source}: the classifier gives outputs of shape {shape[1:]}; expected {CLASSES} "
                "(one score per class)"
            )

    def inputs(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32).reshape((-1, *self.layout))
        return images * np.float32(self.pixel_scale) if self.pixel_scale != 1 else images

    def predict(self, images: np.ndarray, batch_size: int = 256, verbose: int = 0) -> np.ndarray:
        out = np.asarray(self.model.predict(self.inputs(images), batch_size=batch_size, verbose=0))
        return softmax(out.astype(np.float64), axis=-1) if self.logits else out

    def looks_like_probabilities(self, images: np.ndarray) -> bool:
        out = self.predict(images)
        return bool(out.min() >= -1e-6 and out.max() <= 1 + 1e-6 and np.allclose(out.sum(-1), 1, atol=1e-3))


class DenoiserAdapter:
    """The user's denoiser behind :func:`pipeline.evaluation.restore`: (N, 28, 28) in, (N, 28, 28)
    out, whichever of the two layouts the model takes."""

    def __init__(self, model: keras.Model, source=None):
        source = source or f"denoiser {model.name!r}"
        self.model, self.source = model, source
        self.layout = input_layout(model, "denoiser", source)
        shape = probe(model, self.layout, "denoiser", source)
        if int(np.prod(shape[1:])) != IMAGE[0] * IMAGE[1]:
            raise ScoreError(
                f"{source}: the denoiser gives outputs of shape {shape[1:]}; expected (28, 28) or (28, 28, 1)"
            )

    def predict(self, images: np.ndarray, batch_size: int = 256, verbose: int = 0) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        out = self.model.predict(images.reshape((-1, *self.layout)), batch_size=batch_size, verbose=0)
        return np.asarray(out).reshape(images.shape)
