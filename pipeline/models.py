"""Keras model builders: the denoisers and the classifier.

All models take images of shape (28, 28) in [0, 1] (no channel axis, so they apply to the
arrays the pipeline stores) and name every layer after its block.
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from pipeline.data import DataError
from pipeline.io import write_with
from pipeline.params import UNET_OPTIONS, UNETS

IMAGE_SHAPE = (28, 28)


def _with_channel(name: str):
    inputs = keras.Input(shape=IMAGE_SHAPE, name=f"{name}_input")
    return inputs, layers.Reshape((*IMAGE_SHAPE, 1), name=f"{name}_add_channel")(inputs)


def image_head(x, image, name: str, residual: bool, kernel: int = 1):
    """The (28, 28) output: a sigmoid conv, or with ``residual`` a linear conv predicting the noise,
    subtracted from the input ``image`` and clipped to [0, 1] (DnCNN-style)."""
    if residual:
        noise = layers.Conv2D(1, kernel, padding="same", name=f"{name}_noise")(x)
        x = layers.Subtract(name=f"{name}_subtract")([image, noise])
        x = layers.Activation(clip_unit, name=f"{name}_clip")(x)
    else:
        x = layers.Conv2D(1, kernel, padding="same", activation="sigmoid", name=f"{name}_output_conv")(x)
    return layers.Reshape(IMAGE_SHAPE, name=f"{name}_drop_channel")(x)


def conv_block(x, filters: int, name: str, convs: int = 1):
    """``convs`` 3x3 ReLU convolutions."""
    for i in range(1, convs + 1):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv{i}")(x)
    return x


def build_cae(filters: int = 32, name: str = "cae") -> keras.Model:
    """The Keras-tutorial convolutional autoencoder: conv-pool x2, conv-upsample x2, sigmoid."""
    inputs, x = _with_channel(name)
    x = conv_block(x, filters, f"{name}_enc1")
    x = layers.MaxPooling2D(2, name=f"{name}_enc1_pool")(x)
    x = conv_block(x, filters, f"{name}_enc2")
    x = layers.MaxPooling2D(2, name=f"{name}_enc2_pool")(x)
    x = conv_block(x, filters, f"{name}_dec1")
    x = layers.UpSampling2D(2, name=f"{name}_dec1_up")(x)
    x = conv_block(x, filters, f"{name}_dec2")
    x = layers.UpSampling2D(2, name=f"{name}_dec2_up")(x)
    return keras.Model(inputs, image_head(x, None, name, residual=False, kernel=3), name=name)


def unet_input(image, name: str, clip_indicators: bool):
    """The U-Nets' first features: the image, and with ``clip_indicators`` :class:`ClipIndicators`."""
    return ClipIndicators(name=f"{name}_clip_indicators")(image) if clip_indicators else image


def build_unet(
    filters: int = 32, name: str = "unet", residual: bool = False, clip_indicators: bool = False
) -> keras.Model:
    """Two-level U-Net: double-conv blocks (f, 2f, 4f), upsampling + concatenated skips, 3x3 head."""
    inputs, image = _with_channel(name)
    x = unet_input(image, name, clip_indicators)
    skip1 = conv_block(x, filters, f"{name}_down1", convs=2)
    x = layers.MaxPooling2D(2, name=f"{name}_down1_pool")(skip1)
    skip2 = conv_block(x, 2 * filters, f"{name}_down2", convs=2)
    x = layers.MaxPooling2D(2, name=f"{name}_down2_pool")(skip2)
    x = conv_block(x, 4 * filters, f"{name}_bottom", convs=2)
    for level, skip in ((2, skip2), (1, skip1)):
        x = layers.UpSampling2D(2, name=f"{name}_up{level}_upsample")(x)
        x = layers.Concatenate(name=f"{name}_up{level}_concat")([x, skip])
        x = conv_block(x, filters * 2 ** (level - 1), f"{name}_up{level}", convs=2)
    return keras.Model(inputs, image_head(x, image, name, residual, kernel=3), name=name)


BLOCK_ORDERS = ("conv_bn_relu", "conv_relu_bn")


def bn_block(x, filters: int, name: str, convs: int = 2, order: str = "conv_bn_relu"):
    """``convs`` x a 3x3 conv block with BatchNorm: ``conv_bn_relu`` (conv without bias -> BatchNorm
    -> ReLU, the usual order) or ``conv_relu_bn`` (conv with bias and ReLU -> BatchNorm, the seeds'
    published lite U-Net: 320 more parameters at 16 filters)."""
    if order not in BLOCK_ORDERS:
        raise ValueError(f"unknown block order {order!r}; allowed: {list(BLOCK_ORDERS)}")
    for i in range(1, convs + 1):
        if order == "conv_relu_bn":
            x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv{i}")(x)
            x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
            continue
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def build_unet_bn(
    filters: int = 16,
    name: str = "unet_bn",
    residual: bool = False,
    clip_indicators: bool = False,
    block_order: str = "conv_bn_relu",
) -> keras.Model:
    """The seeds' lite U-Net: double conv+BN blocks (f, 2f, 4f), Conv2DTranspose up, concat skips,
    1x1 sigmoid output (trained with MSE in the seed recipe). The seeds' blocks are
    ``block_order="conv_relu_bn"``; the default is the usual conv -> BatchNorm -> ReLU."""
    inputs, image = _with_channel(name)
    x = unet_input(image, name, clip_indicators)
    skip1 = bn_block(x, filters, f"{name}_down1", order=block_order)
    x = layers.MaxPooling2D(2, name=f"{name}_down1_pool")(skip1)
    skip2 = bn_block(x, 2 * filters, f"{name}_down2", order=block_order)
    x = layers.MaxPooling2D(2, name=f"{name}_down2_pool")(skip2)
    x = bn_block(x, 4 * filters, f"{name}_bottom", order=block_order)
    for level, skip in ((2, skip2), (1, skip1)):
        width = filters * 2 ** (level - 1)
        x = layers.Conv2DTranspose(width, 2, strides=2, name=f"{name}_up{level}_transpose")(x)
        x = layers.Concatenate(name=f"{name}_up{level}_concat")([x, skip])
        x = bn_block(x, width, f"{name}_up{level}", order=block_order)
    return keras.Model(inputs, image_head(x, image, name, residual), name=name)


def build_dncnn(filters: int = 32, depth: int = 8, name: str = "dncnn") -> keras.Model:
    """DnCNN-style residual denoiser: conv-ReLU, (depth - 2) x conv-BN-ReLU, conv -> predicted noise;
    output = clip(input - noise, 0, 1). Blind: it never sees the noise level."""
    inputs, image = _with_channel(name)
    x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv1")(image)
    for i in range(2, depth):
        x = bn_block(x, filters, f"{name}_block{i}", convs=1)
    return keras.Model(inputs, image_head(x, image, name, residual=True, kernel=3), name=name)


@keras.saving.register_keras_serializable(package="pipeline")
def clip_unit(x):
    """Clip to the image range [0, 1] (a named function so models with it save and load)."""
    return keras.ops.clip(x, 0.0, 1.0)


@keras.saving.register_keras_serializable(package="pipeline")
class ClipIndicators(layers.Layer):
    """(..., 1) image -> (..., 3): the image, 1 where it is exactly 0, 1 where it is exactly 1.

    Noise clipped to [0, 1] piles up exactly on 0 and 1, and how often says which clean value a
    pixel had (at Gaussian 0.5 a background pixel reads exactly 0 half the time, a stroke pixel
    2% of the time); a ReLU convolution can only approximate that step with very steep weights.
    """

    def call(self, image):
        at_zero = keras.ops.cast(keras.ops.less_equal(image, 0.0), image.dtype)
        at_one = keras.ops.cast(keras.ops.greater_equal(image, 1.0), image.dtype)
        return keras.ops.concatenate([image, at_zero, at_one], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 3 * input_shape[-1])


DENOISER_BUILDERS = {"cae": build_cae, "unet": build_unet, "unet_bn": build_unet_bn, "dncnn": build_dncnn}


def build_denoiser(
    architecture: str,
    filters: int,
    name: str,
    depth: int | None = None,
    residual: bool = False,
    clip_indicators: bool = False,
    block_order: str = "conv_bn_relu",
) -> keras.Model:
    """A denoiser by architecture name; ``depth`` applies to dncnn, ``residual`` and
    ``clip_indicators`` to the U-Nets, ``block_order`` to unet_bn."""
    if architecture not in DENOISER_BUILDERS:
        raise ValueError(f"unknown architecture {architecture!r}; allowed: {sorted(DENOISER_BUILDERS)}")
    extra = {"depth": depth} if architecture == "dncnn" and depth else {}
    if block_order != "conv_bn_relu":
        if architecture != "unet_bn":
            raise ValueError(f"block_order applies to unet_bn, not {architecture!r}")
        extra["block_order"] = block_order
    for option, value in zip(UNET_OPTIONS, (residual, clip_indicators), strict=True):
        if value:
            if architecture not in UNETS:
                raise ValueError(f"{option} applies to {' and '.join(UNETS)}, not {architecture!r}")
            extra[option] = True
    return DENOISER_BUILDERS[architecture](filters=filters, name=name, **extra)


def build_classifier(
    filters: int = 32, dense_units: int = 128, dropout: float = 0.3, name: str = "cnn"
) -> keras.Model:
    """Small MNIST CNN: two conv-pool blocks, a dense layer, softmax over 10 digits."""
    inputs, x = _with_channel(name)
    x = conv_block(x, filters, f"{name}_block1")
    x = layers.MaxPooling2D(2, name=f"{name}_block1_pool")(x)
    x = conv_block(x, 2 * filters, f"{name}_block2")
    x = layers.MaxPooling2D(2, name=f"{name}_block2_pool")(x)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dropout(dropout, name=f"{name}_dropout1")(x)
    x = layers.Dense(dense_units, activation="relu", name=f"{name}_dense")(x)
    x = layers.Dropout(dropout, name=f"{name}_dropout2")(x)
    outputs = layers.Dense(10, activation="softmax", name=f"{name}_probs")(x)
    return keras.Model(inputs, outputs, name=name)


def save_model(path: str | Path, model: keras.Model) -> None:
    """Save atomically (a killed stage leaves no half-written ``.keras`` file)."""
    write_with(path, model.save)


def load_model(path: str | Path) -> keras.Model:
    """Load a ``.keras`` model (with this module's custom layers), naming a missing or corrupt file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: model file not found (train it first: dvc repro)")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a damaged archive
        raise DataError(f"{path}: cannot load Keras model ({type(error).__name__}: {error})") from None
