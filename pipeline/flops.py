"""FLOP counts of Keras models and what training them costs.

A forward pass is counted as multiply-adds x 2 of the conv and dense layers (Conv2D,
Conv2DTranspose, Dense), recursing into nested models (a guided model holds its denoiser and
its classifier) and into wrappers that hold one (``InferenceMode``). Activations, pooling,
normalisation and upsampling are ignored: a slight underestimate.

Training charges, per image seen:

- :data:`TRAIN_FACTOR` x forward for a model whose weights are trained: the forward pass, the
  input gradient and the weight gradient, each about one forward pass.
- :data:`FROZEN_FACTOR` x forward for a frozen model the loss is backpropagated through (the
  guided fine-tune's classifier): its forward pass and its input gradient, no weight gradient.
"""

from __future__ import annotations

import math

import keras

TRAIN_FACTOR = 3
FROZEN_FACTOR = 2
TRAIN_FACTOR_NOTE = "3 x forward per training image (forward, input and weight gradients)"
GUIDED_FACTOR_NOTE = (
    "3 x the denoiser's forward + 2 x the frozen classifier's (forward and input gradient) per image"
)


def layer_flops(layer: keras.layers.Layer) -> int:
    """Forward FLOPs of one layer for one image (a nested model's: the sum of its layers)."""
    if isinstance(layer, keras.Model):
        return model_flops(layer)
    inner = getattr(layer, "model", None)
    if isinstance(inner, keras.Model):
        return model_flops(inner)
    if isinstance(layer, keras.layers.Conv2D | keras.layers.Conv2DTranspose):
        kernel = math.prod(layer.kernel_size)
        in_channels = layer.input.shape[-1]
        spatial = layer.output.shape[1] * layer.output.shape[2]
        if isinstance(layer, keras.layers.Conv2DTranspose):
            spatial = layer.input.shape[1] * layer.input.shape[2]
        return 2 * spatial * kernel * in_channels * layer.filters
    if isinstance(layer, keras.layers.Dense):
        return 2 * layer.input.shape[-1] * layer.units
    return 0


def model_flops(model: keras.Model) -> int:
    """FLOPs of one forward pass for one image."""
    return sum(layer_flops(layer) for layer in model.layers)


def training_flops_per_image(trained: keras.Model, frozen: keras.Model | None = None) -> int:
    """Training FLOPs per image: ``trained`` at :data:`TRAIN_FACTOR`, plus a ``frozen`` model in
    the loss path at :data:`FROZEN_FACTOR`."""
    frozen_cost = FROZEN_FACTOR * model_flops(frozen) if frozen is not None else 0
    return TRAIN_FACTOR * model_flops(trained) + frozen_cost
