"""Model builders, save/load, and deterministic denoiser training on fresh noise."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pipeline.data import DataError
from pipeline.feeds import FreshNoisePairs
from pipeline.models import (
    ClipIndicators,
    build_cae,
    build_classifier,
    build_denoiser,
    build_dncnn,
    build_unet,
    build_unet_bn,
    load_model,
    save_model,
)
from pipeline.noise import NoiseMix
from pipeline.params import FitParams
from pipeline.training import compile_denoiser, fit_denoiser, seed_everything
from tests.conftest import tiny_mnist


def conv_params(k_in: int, k_out: int) -> int:
    return 3 * 3 * k_in * k_out + k_out


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    return tiny_mnist(n_train=6, n_test=1)["x_train"].astype(np.float32) / 255


@pytest.fixture(scope="module")
def cae():
    return build_cae(filters=8)


@pytest.fixture(scope="module")
def unet():
    return build_unet(filters=8)


@pytest.fixture(scope="module")
def unet_bn():
    return build_unet_bn(filters=8)


@pytest.fixture(scope="module")
def dncnn():
    return build_dncnn(filters=8, depth=5)


@pytest.fixture(scope="module")
def classifier():
    return build_classifier(filters=8)


@pytest.mark.parametrize("name", ["cae", "unet", "unet_bn", "dncnn"])
def test_denoiser_output_shape_and_range(name, batch, request):
    model = request.getfixturevalue(name)
    assert model.input_shape == (None, 28, 28)
    assert model.output_shape == (None, 28, 28)
    out = np.asarray(model(batch, training=False))
    assert out.shape == (6, 28, 28)
    assert out.dtype == np.float32
    assert np.all((out >= 0) & (out <= 1))
    assert np.isfinite(out).all()


def test_classifier_outputs_probabilities(classifier, batch):
    assert classifier.output_shape == (None, 10)
    out = np.asarray(classifier(batch, training=False))
    assert out.shape == (6, 10)
    assert np.all(out >= 0)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)


def test_parameter_counts(cae, unet, classifier):
    f = 8
    # CAE: four f-filter 3x3 convs and a 1-filter sigmoid conv
    assert cae.count_params() == conv_params(1, f) + 3 * conv_params(f, f) + conv_params(f, 1) == 1905
    # U-Net: double convs f, 2f, 4f down; up convs read the concatenated skip
    unet_expected = (
        conv_params(1, f)
        + conv_params(f, f)
        + conv_params(f, 2 * f)
        + conv_params(2 * f, 2 * f)
        + conv_params(2 * f, 4 * f)
        + conv_params(4 * f, 4 * f)
        + conv_params(4 * f + 2 * f, 2 * f)
        + conv_params(2 * f, 2 * f)
        + conv_params(2 * f + f, f)
        + conv_params(f, f)
        + conv_params(f, 1)
    )
    assert unet.count_params() == unet_expected == 29681
    # classifier: two convs, flatten 7*7*2f, dense 128, softmax 10
    clf_expected = conv_params(1, f) + conv_params(f, 2 * f) + (7 * 7 * 2 * f * 128 + 128) + (128 * 10 + 10)
    assert classifier.count_params() == clf_expected == 103018
    assert 1_000 < cae.count_params() < 5_000
    assert 20_000 < unet.count_params() < 50_000
    assert 80_000 < classifier.count_params() < 150_000


def test_unet_bn_and_dncnn_parameter_counts(unet_bn, dncnn):
    f = 8

    def bn_conv(k_in, k_out):  # conv without bias + BatchNorm (gamma, beta, moving mean/var)
        return 9 * k_in * k_out + 4 * k_out

    def transpose(k_in, k_out):  # 2x2 Conv2DTranspose with bias
        return 4 * k_in * k_out + k_out

    unet_bn_expected = (
        bn_conv(1, f)
        + bn_conv(f, f)
        + bn_conv(f, 2 * f)
        + bn_conv(2 * f, 2 * f)
        + bn_conv(2 * f, 4 * f)
        + bn_conv(4 * f, 4 * f)
        + transpose(4 * f, 2 * f)
        + bn_conv(4 * f, 2 * f)
        + bn_conv(2 * f, 2 * f)
        + transpose(2 * f, f)
        + bn_conv(2 * f, f)
        + bn_conv(f, f)
        + (f + 1)  # 1x1 sigmoid output
    )
    assert unet_bn.count_params() == unet_bn_expected
    assert 20_000 < unet_bn.count_params() < 50_000
    # DnCNN: conv-ReLU, depth-2 conv-BN-ReLU, conv to one noise channel
    assert dncnn.count_params() == conv_params(1, f) + 3 * bn_conv(f, f) + conv_params(f, 1)
    assert build_unet_bn(16).count_params() == 117_713  # the seeds' 16/32/64 lite U-Net


def test_dncnn_is_residual_and_clipped(batch):
    model = build_dncnn(filters=4, depth=3)
    for layer in model.layers:  # zero weights: predicted noise 0, so output = input
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    np.testing.assert_allclose(np.asarray(model(batch, training=False)), batch, atol=1e-6)
    noise_conv = model.get_layer("dncnn_noise")
    kernel, bias = noise_conv.get_weights()
    noise_conv.set_weights([kernel, np.full_like(bias, -2.0)])  # predicted noise -2: output 1 after clip
    np.testing.assert_allclose(np.asarray(model(batch, training=False)), 1.0)


def test_filters_scale_parameter_count():
    small, large = build_cae(filters=4), build_cae(filters=16)
    assert small.count_params() == conv_params(1, 4) + 3 * conv_params(4, 4) + conv_params(4, 1)
    assert large.count_params() > 10 * small.count_params()


@pytest.mark.parametrize("name", ["cae", "unet", "classifier"])
def test_layer_names_start_with_model_name(name, request):
    model = request.getfixturevalue(name)
    prefix = model.name
    assert prefix == {"cae": "cae", "unet": "unet", "classifier": "cnn"}[name]
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names)) > 5
    assert all(layer_name.startswith(f"{prefix}_") for layer_name in names), names


def test_custom_names_prefix_every_layer():
    model = build_denoiser("unet", filters=4, name="unet_small")
    assert model.name == "unet_small"
    assert all(layer.name.startswith("unet_small_") for layer in model.layers)
    clf = build_classifier(filters=4, dense_units=8, name="tiny")
    assert all(layer.name.startswith("tiny_") for layer in clf.layers)


def test_build_denoiser_dispatches_and_rejects_unknown():
    assert build_denoiser("cae", 4, "a").count_params() == build_cae(filters=4).count_params()
    assert build_denoiser("unet", 4, "b").count_params() == build_unet(filters=4).count_params()
    assert build_denoiser("dncnn", 4, "c", depth=4).count_params() == build_dncnn(4, depth=4).count_params()
    allowed = r"\['cae', 'dncnn', 'unet', 'unet_bn'\]"
    with pytest.raises(ValueError, match=rf"unknown architecture 'resnet'; allowed: {allowed}"):
        build_denoiser("resnet", 8, "x")


def test_clip_indicators_mark_exact_zeros_and_ones():
    image = np.array([[0.0, 1e-6, 0.5], [1.0 - 1e-6, 1.0, 0.0]], dtype=np.float32)[None, :, :, None]
    features = np.asarray(ClipIndicators()(image))
    assert features.shape == (1, 2, 3, 3)
    np.testing.assert_array_equal(features[..., 0], image[..., 0])
    np.testing.assert_array_equal(features[0, ..., 1], [[1, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(features[0, ..., 2], [[0, 0, 0], [0, 1, 0]])


@pytest.mark.parametrize("architecture", ["unet", "unet_bn"])
def test_clip_indicators_add_two_input_channels_to_the_first_conv(architecture, batch):
    f = 4
    plain = build_denoiser(architecture, f, "plain", residual=True)
    marked = build_denoiser(architecture, f, "marked", residual=True, clip_indicators=True)
    assert marked.count_params() - plain.count_params() == 2 * 9 * f  # two more 3x3 input channels
    out = np.asarray(marked(batch, training=False))
    assert out.shape == batch.shape and out.min() >= 0.0 and out.max() <= 1.0
    with pytest.raises(ValueError, match="clip_indicators applies to unet and unet_bn, not 'cae'"):
        build_denoiser("cae", f, "x", clip_indicators=True)


def test_a_model_with_clip_indicators_saves_and_loads(tmp_path, batch):
    model = build_unet(4, name="marked", residual=True, clip_indicators=True)
    path = tmp_path / "marked.keras"
    save_model(path, model)
    loaded = load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(batch)), np.asarray(model(batch)), atol=1e-6)


@pytest.mark.parametrize("name", ["unet", "unet_bn", "dncnn", "classifier"])
def test_save_load_roundtrip(tmp_path, name, batch, request):
    model = request.getfixturevalue(name)
    path = tmp_path / "models" / f"{name}.keras"
    save_model(path, model)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    loaded = load_model(path)
    assert loaded.name == model.name
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    original, restored = model.get_weights(), loaded.get_weights()
    assert len(original) == len(restored) > 0
    for a, b in zip(original, restored, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        np.asarray(loaded(batch, training=False)), np.asarray(model(batch, training=False))
    )


def test_load_model_corrupt_file(tmp_path):
    path = tmp_path / "broken.keras"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(DataError, match=f"{re.escape(str(path))}: cannot load Keras model"):
        load_model(path)


def test_load_model_truncated_file(tmp_path, cae):
    path = tmp_path / "cae.keras"
    save_model(path, cae)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match=f"{re.escape(str(path))}: cannot load Keras model"):
        load_model(path)


def test_load_model_missing_file(tmp_path):
    path = tmp_path / "nope.keras"
    with pytest.raises(DataError, match=f"{re.escape(str(path))}: model file not found"):
        load_model(path)


# --- training ------------------------------------------------------------------------------

LEVELS = {"gaussian": [0.2, 0.5], "salt_pepper": [0.1]}


@pytest.fixture(scope="module")
def train_images() -> tuple[np.ndarray, np.ndarray]:
    arrays = tiny_mnist(n_train=64, n_test=16, seed=3)
    return arrays["x_train"].astype(np.float32) / 255, arrays["x_test"].astype(np.float32) / 255


def train_once(x_train, x_val):
    seed_everything(7)
    model = compile_denoiser(build_cae(filters=4), "binary_crossentropy", learning_rate=1e-3)
    history = fit_denoiser(
        model,
        x_train,
        x_val,
        NoiseMix(LEVELS, clean_fraction=0.1),
        FitParams(epochs=2, batch_size=16, patience=2, train_size=32),
        seed=7,
    )
    return model, history


def test_fit_denoiser_is_deterministic(train_images):
    x_train, x_val = train_images
    initial = build_cae(filters=4)  # weights differ from the trained ones below
    first, history = train_once(x_train, x_val)
    second, history_again = train_once(x_train, x_val)
    assert len(history.history["val_loss"]) == 2
    assert history.history["loss"] == history_again.history["loss"]
    assert history.history["val_loss"] == history_again.history["val_loss"]
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(
        a.shape == b.shape and not np.array_equal(a, b)
        for a, b in zip(first.get_weights(), initial.get_weights(), strict=True)
    )
    assert np.isfinite(history.history["loss"]).all()


def test_fresh_noise_pairs_batches(train_images):
    x_train, _ = train_images
    pairs = FreshNoisePairs(x_train, LEVELS, batch_size=12, seed=1, epoch_size=32)
    assert len(pairs) == 3  # ceil(32 / 12)
    with pytest.raises(RuntimeError, match="call draw_epoch"):
        pairs[0]
    pairs.draw_epoch()
    noisy, clean = pairs[0]
    assert noisy.shape == clean.shape == (12, 28, 28)
    last_noisy, last_clean = pairs[2]
    assert last_noisy.shape == last_clean.shape == (8, 28, 28)
    # every clean target is one of the training images, each at most once
    flat = x_train.reshape(len(x_train), -1)
    matches = [np.flatnonzero((flat == image.ravel()).all(axis=1)) for image in pairs.clean]
    assert all(len(m) == 1 for m in matches)
    assert len({int(m[0]) for m in matches}) == 32
    assert FreshNoisePairs(x_train, LEVELS, batch_size=16, seed=1).epoch_size == 64
    # an epoch larger than the split repeats images, each as evenly as whole permutations allow
    big = FreshNoisePairs(x_train, LEVELS, batch_size=16, seed=1, epoch_size=150)
    big.draw_epoch()
    assert big.epoch_size == 150 and len(big) == 10 and big.clean.shape == (150, 28, 28)
    drawn = big.clean.reshape(len(big.clean), -1)
    counts = np.array([(drawn == image.ravel()).all(axis=1).sum() for image in x_train])
    assert counts.sum() == 150 and set(counts) <= {2, 3}


def test_fresh_noise_pairs_new_noise_each_epoch_and_reproducible():
    clean = np.full((40, 28, 28), 0.5, dtype=np.float32)  # every subset is the same: only noise varies
    pairs = FreshNoisePairs(clean, {"gaussian": [0.2]}, batch_size=8, seed=5, epoch_size=20)
    pairs.draw_epoch()
    epoch1 = pairs.noisy.copy()
    pairs.draw_epoch()
    epoch2 = pairs.noisy.copy()
    assert pairs.epochs_drawn == 2
    assert epoch1.shape == epoch2.shape == (20, 28, 28)
    assert not np.any(np.all(epoch1 == epoch2, axis=(1, 2)))  # every image got new noise
    assert epoch1.std() == pytest.approx(0.2, rel=0.05) and epoch2.std() == pytest.approx(0.2, rel=0.05)

    replay = FreshNoisePairs(clean, {"gaussian": [0.2]}, batch_size=8, seed=5, epoch_size=20)
    replay.draw_epoch()
    assert replay.noisy.tobytes() == epoch1.tobytes()
    replay.draw_epoch()
    assert replay.noisy.tobytes() == epoch2.tobytes()

    other = FreshNoisePairs(clean, {"gaussian": [0.2]}, batch_size=8, seed=6, epoch_size=20)
    other.draw_epoch()
    assert not np.array_equal(other.noisy, epoch1)


def test_fresh_noise_pairs_new_subset_each_epoch(train_images):
    x_train, _ = train_images
    pairs = FreshNoisePairs(x_train, LEVELS, batch_size=16, seed=2, epoch_size=32)
    pairs.draw_epoch()
    first = pairs.clean.copy()
    pairs.draw_epoch()
    assert not np.array_equal(first, pairs.clean)


def test_the_seeds_block_order_adds_the_conv_biases():
    from pipeline.models import build_unet_bn

    assert build_unet_bn(16).count_params() == 117_713  # conv without bias -> BatchNorm -> ReLU
    seeds = build_unet_bn(16, block_order="conv_relu_bn")
    assert seeds.count_params() == 118_033  # conv + bias + ReLU -> BatchNorm: 320 biases more
    assert [type(layer).__name__ for layer in seeds.layers[2:4]] == ["Conv2D", "BatchNormalization"]
    with pytest.raises(ValueError, match="block_order applies to unet_bn"):
        build_denoiser("unet", 8, "u", block_order="conv_relu_bn")
