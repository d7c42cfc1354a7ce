"""Noise-augmented classifier, task-guided fine-tune, residual U-Nets and the distribute strategy."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pipeline.distribute import get_strategy
from pipeline.evaluation import evaluate_grid
from pipeline.feeds import FreshNoisePairs, training_batches, validation_batches, validation_feed
from pipeline.guided import fit_guided, guided_model, reseed_random_layers
from pipeline.models import build_cae, build_classifier, build_denoiser, build_unet
from pipeline.noise import NoiseMix
from pipeline.params import ClassifierParams, FitParams, GuidedParams
from pipeline.training import (
    PatienceThenDrop,
    compile_denoiser,
    fit_denoiser,
    seed_everything,
    train_classifier,
)
from tests.conftest import tiny_mnist

LEVELS = {"gaussian": [0.3, 0.5]}


@pytest.fixture(scope="module")
def data():
    arrays = tiny_mnist(n_train=64, n_test=16, seed=4)
    return (
        arrays["x_train"].astype(np.float32) / 255,
        arrays["y_train"],
        arrays["x_test"].astype(np.float32) / 255,
        arrays["y_test"],
    )


def test_fresh_noise_pairs_keep_labels_aligned_with_their_images(data):
    x, y, _, _ = data
    pairs = FreshNoisePairs(
        x, {"gaussian": [0.0001]}, batch_size=16, seed=3, epoch_size=32, labels=y, targets="both"
    )
    pairs.draw_epoch()
    noisy, targets = pairs[0]
    assert set(targets) == {"image", "probs"} and noisy.shape == targets["image"].shape == (16, 28, 28)
    for image, label in zip(targets["image"], targets["probs"], strict=True):
        index = int(np.argmin(np.abs(x - image).sum(axis=(1, 2))))
        assert y[index] == label
    pairs = FreshNoisePairs(x, LEVELS, 16, 3, 32, labels=y, targets="labels")
    pairs.draw_epoch()
    noisy, labels = pairs[1]
    assert labels.shape == (16,) and noisy.shape == (16, 28, 28)
    with pytest.raises(ValueError, match="targets='labels' needs labels"):
        FreshNoisePairs(x, LEVELS, 16, 3, targets="labels")


def test_noise_augmented_classifier_trains_on_noisy_validation(data):
    x, y, xv, yv = data
    config = ClassifierParams(filters=4, dense_units=8, epochs=2, batch_size=16, noise_augmentation=True)
    seed_everything(1)
    model = build_classifier(4, 8, name="aug")
    history = train_classifier(model, x, y, xv, yv, config, seed=1, mix=NoiseMix(LEVELS)).history
    assert len(history["val_accuracy"]) == 2
    with pytest.raises(ValueError, match="noise_augmentation needs the train_noise mix"):
        train_classifier(model, x, y, xv, yv, config, seed=1, mix=None)


def test_guided_fine_tune_moves_the_denoiser_and_freezes_the_classifier(data):
    x, y, xv, yv = data
    seed_everything(2)
    denoiser, classifier = build_unet(4, name="d", residual=True), build_classifier(4, 8)
    before_denoiser, before_classifier = denoiser.get_weights(), classifier.get_weights()
    config = GuidedParams(base="d", epochs=2, batch_size=16, train_size=32, classification_weight=0.5)
    history = fit_guided(denoiser, classifier, x, y, xv, yv, LEVELS, config, seed=2).history
    assert {"val_loss", "val_image_mse", "val_probs_accuracy"} <= set(history)
    for a, b in zip(classifier.get_weights(), before_classifier, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(denoiser.get_weights(), before_denoiser, strict=True))
    assert denoiser.output_shape == (None, 28, 28)


def test_guided_model_can_run_the_classifier_in_inference_mode():
    """Keras' functional models pass their training flag to nested models; the wrapper stops it."""
    denoiser, classifier = build_unet(4, name="d", residual=True), build_classifier(4, 8, dropout=0.9)
    images = np.random.default_rng(0).random((8, 28, 28)).astype(np.float32)
    expected = np.asarray(classifier(denoiser(images), training=False))
    frozen = guided_model(denoiser, classifier, classifier_training=False)
    np.testing.assert_allclose(np.asarray(frozen(images, training=True)["probs"]), expected, atol=1e-6)
    following = guided_model(denoiser, classifier, classifier_training=True)  # dropout active
    assert not np.allclose(np.asarray(following(images, training=True)["probs"]), expected, atol=1e-3)


def _fine_tuned_weights(data, classifier_seed: int, classifier_training: bool) -> list[np.ndarray]:
    """The denoiser's weights after a fine-tune whose classifier was built under Python seed
    ``classifier_seed`` (same weights; its dropout layers draw their own seeds when built)."""
    x, y, xv, yv = data
    seed_everything(0)
    weights = build_classifier(4, 8, dropout=0.5).get_weights()
    random.seed(classifier_seed)
    classifier = build_classifier(4, 8, dropout=0.5)
    classifier.set_weights(weights)
    classifier.compile("adam", "sparse_categorical_crossentropy")  # as loaded from a .keras file
    seed_everything(3)
    denoiser = build_unet(4, name="d", residual=True)
    config = GuidedParams(
        base="d", epochs=1, batch_size=16, train_size=32, classifier_training=classifier_training
    )
    history = fit_guided(denoiser, classifier, x, y, xv, yv, LEVELS, config, seed=3).history
    for prefix in ("", "val_"):  # the compiled classifier's own "loss" tracker does not shadow it
        total = history[f"{prefix}image_loss"][0] + 0.1 * history[f"{prefix}probs_loss"][0]
        assert history[f"{prefix}loss"][0] == pytest.approx(total, rel=1e-3)
    return denoiser.get_weights()


def test_guided_fine_tune_does_not_depend_on_the_seeds_the_classifier_drew_when_loaded(data):
    """Its dropout layers draw seeds from Python's ``random`` when built (loaded); fit_guided
    restarts them from its own seed, so the load order does not matter in either mode, and
    the fine-tune with dropout active still differs from the one in inference mode."""
    runs = {
        training: [_fine_tuned_weights(data, seed, training) for seed in (1, 2)] for training in (False, True)
    }
    for first, second in runs.values():
        for a, b in zip(first, second, strict=True):
            np.testing.assert_array_equal(a, b)
    inference, dropout = runs[False][0], runs[True][0]
    assert any(not np.array_equal(a, b) for a, b in zip(inference, dropout, strict=True))


def test_reseeding_restarts_every_dropout_layer_from_the_seed():
    random.seed(1)
    first = build_classifier(4, 8, dropout=0.5)
    random.seed(2)
    second = build_classifier(4, 8, dropout=0.5)

    def states(model):
        return [v.numpy().tolist() for v in model.variables if v.name == "seed_generator_state"]

    assert states(first) != states(second)
    assert reseed_random_layers(first, 7) == reseed_random_layers(second, 7) == 2
    assert states(first) == states(second)
    assert len({tuple(state) for state in states(first)}) == 2  # each layer its own stream
    reseed_random_layers(second, 8)
    assert states(first) != states(second)


@pytest.mark.parametrize("architecture", ["unet", "unet_bn"])
def test_residual_unet_is_the_identity_when_it_predicts_no_noise(architecture):
    model = build_denoiser(architecture, 4, "r", residual=True)
    plain = build_denoiser(architecture, 4, "p")
    assert model.count_params() == plain.count_params()  # same layers, linear head instead of sigmoid
    head = model.get_layer("r_noise")
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])
    images = np.random.default_rng(0).random((3, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(model.predict(images, verbose=0), images, atol=1e-6)


def test_residual_only_for_unets():
    with pytest.raises(ValueError, match="residual applies to unet and unet_bn, not 'cae'"):
        build_denoiser("cae", 4, "c", residual=True)


def test_strategies_on_one_cpu():
    import tensorflow as tf

    default = get_strategy("auto")
    assert default.num_replicas_in_sync == 1 and not isinstance(default, tf.distribute.MirroredStrategy)
    mirrored = get_strategy("mirrored")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    with mirrored.scope():  # the same code runs under a mirrored strategy with one CPU replica
        model = build_classifier(4, 8)
        model.compile("adam", "sparse_categorical_crossentropy")
    images = np.zeros((8, 28, 28), np.float32)
    model.fit(images, np.zeros(8, int), batch_size=4, epochs=1, verbose=0)
    assert isinstance(get_strategy("one_device"), tf.distribute.OneDeviceStrategy)
    with pytest.raises(ValueError, match="unknown distribute strategy 'tpu'"):
        get_strategy("tpu")


class MeanClassifier:
    def __init__(self, offset):
        self.offset = offset

    def predict(self, images, batch_size, verbose=0):
        digits = np.clip(np.round(9 * images.reshape(len(images), -1).mean(axis=1)) + self.offset, 0, 9)
        return np.eye(10, dtype=np.float32)[digits.astype(int)]


def test_every_classifier_scores_one_restoration_per_cell():
    labels = np.arange(10).repeat(2)
    clean = np.repeat((labels / 9.0).astype(np.float32)[:, None, None], 28, axis=1).repeat(28, axis=2)
    grids = {"gaussian": (np.array([0.0, 0.5]), np.stack([clean, clean]))}
    calls = []

    def restorer(images, kind, level):
        calls.append(level)
        return images

    classifiers = {"exact": MeanClassifier(0), "off_by_one": MeanClassifier(1)}
    scores, confusion, _ = evaluate_grid(
        clean, labels, grids, {"id": restorer}, classifiers, 8, ("gaussian", 0.5)
    )
    assert sorted(calls) == [0.0, 0.5]  # once per cell, not once per classifier
    assert len(scores) == 2 * 2 * 2  # levels x (none, id) x classifiers
    by_clf = scores.groupby("classifier")["accuracy"].mean()
    assert by_clf["exact"] == 1.0 and by_clf["off_by_one"] == pytest.approx(0.1)  # only 9 (clipped) is right
    ssim = scores.pivot_table(index=["level", "denoiser"], columns="classifier", values="ssim")
    np.testing.assert_array_equal(ssim["exact"], ssim["off_by_one"])  # quality is classifier-free
    assert set(confusion["classifier"]) == set(classifiers)


def test_validation_batches_keep_order_and_dict_targets():
    x = np.arange(5 * 28 * 28, dtype=np.float32).reshape(5, 28, 28)
    labels = np.arange(5)
    batches = list(validation_batches(x, {"image": x, "probs": labels}, batch_size=2).as_numpy_iterator())
    assert [len(b[0]) for b in batches] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
    np.testing.assert_array_equal(np.concatenate([b[1]["probs"] for b in batches]), labels)
    np.testing.assert_array_equal(np.concatenate([b[1]["image"] for b in batches]), x)
    assert not validation_batches(x, labels, 2).options().autotune.enabled


def test_a_fit_draws_one_epoch_per_epoch_and_replays_from_its_seed(data):
    x, _, xv, _ = data

    def fit():
        seed_everything(3)
        model = compile_denoiser(build_cae(8, name="cae"), "mse", 1e-3)
        pairs = FreshNoisePairs(x, LEVELS, batch_size=16, seed=1, epoch_size=40)
        history = model.fit(
            training_batches(pairs), epochs=3, shuffle=False, validation_data=(xv, xv), verbose=0
        )
        return model.get_weights(), history.history["loss"], pairs.epochs_drawn

    weights, loss, drawn = fit()
    again_weights, again_loss, _ = fit()
    assert drawn == 3  # no draw is wasted before the first epoch or after the last
    assert loss == again_loss and loss[0] != loss[1]
    for first, second in zip(weights, again_weights, strict=True):
        np.testing.assert_array_equal(first, second)


def test_batches_do_not_depend_on_global_random_state(data):
    """Each epoch's order comes from its own seed, so what the process drew before (building a
    model, loading one) cannot change a fit's batches."""
    x, _, _, _ = data

    def batches(python_seed: int) -> list:
        random.seed(python_seed)
        np.random.seed(python_seed)
        pairs = FreshNoisePairs(x, LEVELS, batch_size=16, seed=1, epoch_size=40)
        return [list(training_batches(pairs).as_numpy_iterator()) for _ in range(2)]

    first, second = batches(1), batches(2)
    for epoch_a, epoch_b in zip(first, second, strict=True):
        for (noisy_a, clean_a), (noisy_b, clean_b) in zip(epoch_a, epoch_b, strict=True):
            np.testing.assert_array_equal(noisy_a, noisy_b)
            np.testing.assert_array_equal(clean_a, clean_b)


def test_clean_classifier_sees_every_clean_image_once_per_epoch(data):
    x, y, xv, yv = data
    pairs = FreshNoisePairs(x, {}, batch_size=16, seed=1, labels=y, targets="labels")
    epochs = [list(training_batches(pairs).as_numpy_iterator()) for _ in range(2)]
    for batches in epochs:
        images = np.concatenate([images for images, _ in batches])
        labels = np.concatenate([labels for _, labels in batches])
        order = np.lexsort(images.reshape(len(images), -1).T)
        np.testing.assert_array_equal(images[order], x[np.lexsort(x.reshape(len(x), -1).T)])
        np.testing.assert_array_equal(np.sort(labels), np.sort(y))
    assert not np.array_equal(epochs[0][0][1], epochs[1][0][1])  # reshuffled
    config = ClassifierParams(filters=4, dense_units=8, epochs=2, batch_size=16)
    seed_everything(1)
    history = train_classifier(build_classifier(4, 8), x, y, xv, yv, config, seed=1).history
    assert len(history["val_accuracy"]) == 2


def test_training_batches_draw_new_noise_each_iteration_without_autotuning(data):
    x, y, _, _ = data
    pairs = FreshNoisePairs(x, LEVELS, batch_size=16, seed=2, epoch_size=40, labels=y, targets="both")
    dataset = training_batches(pairs)
    assert not dataset.options().autotune.enabled and int(dataset.cardinality()) == 3
    first, second = (list(dataset.as_numpy_iterator()) for _ in range(2))
    assert sorted(len(noisy) for noisy, _ in first) == [8, 16, 16] and pairs.epochs_drawn == 2
    assert set(first[0][1]) == {"image", "probs"}
    noisy_first = np.concatenate([noisy for noisy, _ in first])
    noisy_second = np.concatenate([noisy for noisy, _ in second])
    assert noisy_first.shape == noisy_second.shape == (40, 28, 28)
    assert not np.allclose(np.sort(noisy_first.ravel()), np.sort(noisy_second.ravel()))


def test_the_last_lr_drop_epochs_run_at_a_tenth_of_the_learning_rate(data):
    x, _, xv, _ = data
    fit = FitParams(epochs=3, batch_size=16, patience=5, train_size=32, lr_drop_epochs=2)
    seed_everything(4)
    model = compile_denoiser(build_cae(4, name="cae"), "mse", 2e-3)
    history = fit_denoiser(model, x, xv, LEVELS, fit, seed=4).history
    np.testing.assert_allclose(history["learning_rate"], [2e-3, 2e-4, 2e-4], rtol=1e-6)
    constant = FitParams(epochs=2, batch_size=16, patience=5, train_size=32)
    model = compile_denoiser(build_cae(4, name="cae"), "mse", 2e-3)
    fit_denoiser(model, x, xv, LEVELS, constant, seed=4)
    assert float(model.optimizer.learning_rate) == pytest.approx(2e-3)


def test_type_weights_shape_every_epoch_and_the_validation_noise():
    clean = np.full((500, 28, 28), 0.5, dtype=np.float32)
    mix = {"gaussian": [0.1], "salt_pepper": [0.3]}

    def gaussian_share(images):  # salt & pepper images hold only 0, 0.5 and 1
        return 1 - np.all(np.isin(images, [0.0, 0.5, 1.0]), axis=(1, 2)).mean()

    pairs = FreshNoisePairs(clean, NoiseMix(mix, type_weights={"gaussian": 4.0}), batch_size=500, seed=1)
    for _ in range(2):
        pairs.draw_epoch()
        assert gaussian_share(pairs.noisy) == pytest.approx(0.8, abs=0.06)
    batches = validation_feed(pairs, clean, clean).as_numpy_iterator()
    validation = np.concatenate([noisy for noisy, _ in batches])
    assert gaussian_share(validation) == pytest.approx(0.8, abs=0.06)


def test_every_fit_draws_its_noise_with_the_type_weights(data, monkeypatch):
    import pipeline.noise as noise

    x, y, xv, yv = data
    seen = []
    real = noise.corrupt_mix

    def recording(images, levels, rng, clean_fraction=0.0, type_weights=None):
        seen.append(type_weights)
        return real(images, levels, rng, clean_fraction, type_weights)

    monkeypatch.setattr(noise, "corrupt_mix", recording)
    weights = {"gaussian": 2.0}
    mix = NoiseMix(LEVELS, type_weights=weights)
    fit = FitParams(epochs=1, batch_size=32, train_size=32)
    denoiser = compile_denoiser(build_cae(4, name="cae"), "mse", 1e-3)
    fit_denoiser(denoiser, x, xv, mix, fit, seed=1)
    config = ClassifierParams(filters=4, dense_units=8, epochs=1, batch_size=32, noise_augmentation=True)
    classifier = build_classifier(4, 8, name="aug")
    train_classifier(classifier, x, y, xv, yv, config, seed=1, mix=mix)
    guided = GuidedParams(epochs=1, batch_size=32, train_size=32)
    fit_guided(denoiser, classifier, x, y, xv, yv, mix, guided, seed=1)
    assert len(seen) == 6 and all(w == weights for w in seen)  # each fit: one epoch, one validation draw


def replay(callback, losses, epochs):
    """Feed ``callback`` the validation losses of a fit of ``epochs`` epochs; the epochs run."""
    callback.on_train_begin()
    for epoch in range(epochs):
        callback.on_epoch_begin(epoch)
        callback.model.set_weights([np.full(w.shape, epoch, w.dtype) for w in callback.model.get_weights()])
        callback.on_epoch_end(epoch, {"val_loss": losses[epoch]})
        if callback.model.stop_training:
            break
    callback.on_train_end()
    return epoch + 1


@pytest.mark.parametrize(
    ("losses", "drop_epochs", "run", "best_epoch", "rate"),
    [
        ([5, 4, 4.5, 4.6, 3, 3, 3, 3], 1, 5, 4, 1e-4),  # flat for 2 after epoch 3: one low-rate epoch
        ([5, 4, 4.5, 4.6, 3.9, 3, 3, 3], 2, 6, 5, 1e-4),  # two low-rate epochs, then stop
        ([5, 4, 3, 2, 1, 0.5, 0.4, 0.3], 1, 8, 7, 1e-4),  # no plateau: the scheduled drop at epoch 7
        ([5, 4, 4.5, 4.6, 3, 3, 3, 3], 0, 4, 1, 1e-3),  # no drop: plain early stopping, best restored
        ([5, 4, 4.5, 4.6, 4.7, 3, 3, 3], 1, 5, 1, 1e-4),  # the low-rate epoch does not help: best restored
    ],
)
def test_a_plateau_ends_the_constant_rate_phase_not_the_fit(losses, drop_epochs, run, best_epoch, rate):
    model = compile_denoiser(build_cae(2, name="cae"), "mse", 1e-3)
    model.stop_training = False
    callback = PatienceThenDrop(patience=2, epochs=8, drop_epochs=drop_epochs)
    callback.set_model(model)
    assert replay(callback, losses, 8) == run
    assert all(np.all(w == best_epoch) for w in model.get_weights())  # the best weights at the end
    assert float(model.optimizer.learning_rate) == pytest.approx(rate)
