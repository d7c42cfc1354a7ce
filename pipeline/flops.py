"""Forward-pass FLOP count of a Keras model (multiply-adds x 2 of its conv and dense layers).

Only the layers that dominate these small CNNs are counted (Conv2D, Conv2DTranspose, Dense);
activations, pooling, normalisation and upsampling are ignored, so the count is a slight
underestimate, which makes achieved FLOP/s conservative.
"""

from __future__ import annotations

import math

import keras


def layer_flops(layer: keras.layers.Layer) -> int:
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
