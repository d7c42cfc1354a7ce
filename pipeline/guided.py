"""The task-guided denoiser: a denoiser fine-tuned through a frozen classifier."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import keras
import numpy as np

from pipeline.feeds import FreshNoisePairs
from pipeline.noise import NoiseMix
from pipeline.params import GuidedParams
from pipeline.training import fit_pairs

log = logging.getLogger(__name__)


class InferenceMode(keras.layers.Layer):
    """Calls ``model`` with ``training=False`` whatever mode the enclosing model runs in.

    Keras 3's functional models hand their own ``training`` flag to every nested model, which
    overrides a ``training=False`` given when the graph was built: inside ``fit`` a nested
    classifier's dropout would be active.
    """

    def __init__(self, model: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.model = model

    def call(self, inputs):
        return self.model(inputs, training=False)

    @property
    def metrics(self):
        # Not the wrapped model's: a compiled model's "loss" tracker would shadow the outer one.
        return list(self._metrics)


def reseed_random_layers(model: keras.Model, seed: int) -> int:
    """Restart every seed generator in ``model`` (its dropout layers') from ``seed``; returns how many.

    Random layers draw their seeds from Python's ``random`` when they are built, so without
    this a fit through them would depend on what the process drew before loading the model.
    """
    states = [v for v in model.variables if v.name == "seed_generator_state"]
    for index, state in enumerate(states):
        layer_seed = int(np.random.SeedSequence([seed, index]).generate_state(1)[0] >> 1)
        state.assign(np.array([layer_seed, 0], dtype=state.dtype))
    return len(states)


def guided_model(
    denoiser: keras.Model, classifier: keras.Model, classifier_training: bool = True
) -> keras.Model:
    """noisy -> {"image": denoised, "probs": frozen classifier(denoised)}, sharing ``denoiser``'s weights.

    The classifier's weights are frozen; by default it follows the fit's training flag (its
    dropout active while fitting, Keras' default for nested models), and with
    ``classifier_training=False`` it runs in inference mode.
    """
    classifier.trainable = False
    inputs = keras.Input(shape=denoiser.input_shape[1:], name="guided_input")
    image = denoiser(inputs)
    frozen = classifier if classifier_training else InferenceMode(classifier, name="frozen_classifier")
    outputs = {"image": image, "probs": frozen(image)}
    return keras.Model(inputs, outputs, name=f"{denoiser.name}_guided")


def fit_guided(
    denoiser: keras.Model,
    classifier: keras.Model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    mix: NoiseMix | Mapping[str, Sequence[float]],
    config: GuidedParams,
    *,
    seed: int,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    validation_seed: int | None = None,
) -> keras.callbacks.History:
    """Fine-tune ``denoiser`` on pixel MSE + ``classification_weight`` x the frozen classifier's
    cross-entropy on the denoised images (task-guided denoising); early-stops on the validation
    pairs' combined loss. History keys: ``loss``, ``image_mse``, ``probs_accuracy`` (and val_)."""
    model = guided_model(denoiser, classifier, config.classifier_training)
    reseed_random_layers(classifier, seed)  # its dropout's draws follow ``seed``, not the load order
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss={"image": "mse", "probs": "sparse_categorical_crossentropy"},
        loss_weights={"image": 1.0, "probs": config.classification_weight},
        metrics={"image": ["mse"], "probs": ["accuracy"]},
    )
    train = FreshNoisePairs(
        x_train, mix, config.batch_size, seed, config.train_size, labels=y_train, targets="both"
    )
    log.info(
        "fine-tuning %s with the classifier's loss (weight %g)", denoiser.name, config.classification_weight
    )
    targets = {"image": x_val, "probs": y_val}
    return fit_pairs(model, train, x_val, targets, config, callbacks, validation_seed)
