"""The U-Net search space and the keras-tuner wrapper: builds, searches, resume, failures."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pytest
import tensorflow as tf
from keras_tuner.engine.trial import TrialStatus
from keras_tuner.errors import FatalError

from pipeline import tuning
from pipeline.feeds import FreshNoisePairs, training_batches
from pipeline.noise import corrupt_mix
from tests.conftest import tiny_mnist

LEVELS = {"gaussian": [0.3], "salt_pepper": [0.1]}

pytestmark = [
    pytest.mark.filterwarnings("ignore:Even though the `tf.config.experimental_run_functions_eagerly`"),
    # get_best_models() restores weights only, so the fresh optimizer skips the saved slots
    pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer"),
]


def images(n: int, seed: int) -> np.ndarray:
    return tiny_mnist(n_train=n, n_test=1, seed=seed)["x_train"].astype(np.float32) / 255


def search_data():
    """64 training images (one batch, fresh noise per epoch) and 32 fixed noisy validation pairs."""
    val_clean = images(32, seed=2)
    val_noisy = corrupt_mix(val_clean, LEVELS, np.random.default_rng(1))
    train = FreshNoisePairs(images(64, seed=1), LEVELS, batch_size=64, seed=0)
    return training_batches(train), (val_noisy, val_clean)


@pytest.fixture(scope="module")
def data():
    return search_data()


@contextlib.contextmanager
def eagerly():
    """Train eagerly: tracing a train step costs ~7 s per model on a 2-core CPU, far more than the
    one-batch epochs a test trains."""
    tf.config.run_functions_eagerly(True)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(False)


def hp_with(**values) -> keras_tuner.HyperParameters:
    hp = keras_tuner.HyperParameters()
    for name, value in values.items():
        hp.Fixed(name, value)
    return hp


def test_default_build():
    keras.utils.set_random_seed(0)
    model = tuning.UNetHyperModel().build(keras_tuner.HyperParameters())
    assert model.output_shape == (None, 28, 28)
    assert 50_000 < model.count_params() < 300_000
    assert model.loss == "mse" and float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert any(isinstance(layer, keras.layers.Conv2DTranspose) for layer in model.layers)
    out = model.predict(np.random.default_rng(0).random((4, 28, 28), dtype=np.float32), verbose=0)
    assert out.shape == (4, 28, 28) and out.min() >= 0 and out.max() <= 1
    assert len({layer.name for layer in model.layers}) == len(model.layers)
    assert all(layer.name.startswith("unet_tuned_") for layer in model.layers)


def test_every_option_off_the_default_path_builds_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    hp = hp_with(
        depth=3, upsampling="upsample", residual=True, residual_loss="mse_ssim", batchnorm=False, dropout=0.2
    )
    model = tuning.UNetHyperModel().build(hp)
    names = [layer.name for layer in model.layers]
    assert {"unet_tuned_pad", "unet_tuned_crop", "unet_tuned_clip", "unet_tuned_bottom_dropout"} <= set(names)
    assert "unet_tuned_down3_pool" in names and not any("_bn" in name for name in names)
    assert model.get_layer("unet_tuned_bottom_conv1").output.shape[1:3] == (4, 4)  # 32 / 2**3
    assert model.output_shape == (None, 28, 28)
    x = images(8, seed=3)
    with eagerly():
        model.fit(x, x, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "tuned.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.loss is tuning.mse_ssim
    out = model.predict(x, verbose=0)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), out, atol=1e-6)
    assert out.min() >= 0 and out.max() <= 1
    loss = float(model.evaluate(x, x, verbose=0)[0])
    assert float(loaded.evaluate(x, x, verbose=0)[0]) == pytest.approx(loss)


def test_mse_ssim_is_zero_on_identical_images_and_grows_with_damage():
    clean = images(4, seed=4)
    same = keras.ops.convert_to_numpy(tuning.mse_ssim(clean, clean))
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 0.3, clean.shape), 0, 1).astype(np.float32)
    damaged = keras.ops.convert_to_numpy(tuning.mse_ssim(clean, noisy))
    np.testing.assert_allclose(same, 0, atol=1e-5)
    mse = ((clean - noisy) ** 2).mean(axis=(1, 2))
    assert same.shape == (4,) and np.all(damaged > mse) and np.all(damaged < mse + 0.1 + 1e-6)


def test_build_unet_from_rejects_unknown_keys_and_ignores_tuner_bookkeeping():
    with pytest.raises(ValueError, match="unknown hyperparameters"):
        tuning.build_unet_from({"depht": 3})
    model = tuning.build_unet_from({"filters": 8, "tuner/epochs": 2, "tuner/trial_id": "0001"})
    assert model.count_params() < tuning.build_unet_from({}).count_params()


def test_binary_crossentropy_is_searched_only_with_the_sigmoid_head():
    hp = keras_tuner.HyperParameters()
    tuning._declare_space(hp)
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=tuning.OBJECTIVE, hyperparameters=hp, max_trials=1, seed=0
    )
    samples = [tuning._space_values(oracle._random_values()) for _ in range(300)]
    pairs = {(v["residual"], v["loss"]) for v in samples}
    assert pairs == {(False, loss) for loss in tuning.LOSSES} | {
        (True, loss) for loss in tuning.RESIDUAL_LOSSES
    }
    with pytest.raises(ValueError, match="'binary_crossentropy' does not go with the residual head"):
        tuning.build_unet_from({"residual": True, "loss": "binary_crossentropy"})


def test_project_name_hashes_space_algorithm_and_budget(monkeypatch):
    budget = {"max_epochs": 4, "max_trials": 10, "train_size": 2000}
    name = tuning.project_name("hyperband", budget)
    assert name.startswith("hyperband-")
    assert tuning.project_name("hyperband", dict(reversed(budget.items()))) == name
    assert tuning.project_name("hyperband", {**budget, "max_epochs": 5}) != name
    assert tuning.project_name("bayesian", budget).split("-")[1] != name.split("-")[1]
    monkeypatch.setattr(tuning, "SPACE_VERSION", tuning.SPACE_VERSION + "-next")
    assert tuning.project_name("hyperband", budget) != name


def test_make_tuner_rejects_unknown_algorithm(tmp_path):
    with pytest.raises(ValueError, match="unknown tuning algorithm"):
        tuning.make_tuner("random", tmp_path, "p", max_epochs=1, max_trials=1, seed=0)


def make_hyperband(directory) -> keras_tuner.Tuner:
    """Hyperband with max_epochs 2 and factor 3: one bracket of two 2-epoch trials."""
    return tuning.make_tuner("hyperband", directory, "hb", max_epochs=2, max_trials=0, seed=0)


@pytest.fixture(scope="module")
def hyperband(tmp_path_factory, data):
    keras.utils.set_random_seed(0)
    tuner = make_hyperband(tmp_path_factory.mktemp("tuning"))
    with eagerly():
        return tuner, tuning.run_search(tuner, *data, epochs=2)


def test_hyperband_search_completes_trials(hyperband):
    tuner, result = hyperband
    statuses = [trial.status for trial in tuner.oracle.trials.values()]
    assert len(statuses) >= 2 and set(statuses) == {TrialStatus.COMPLETED}
    assert result["completed"] == len(statuses) and result["failed"] == 0
    best = result["best_hyperparameters"]
    assert isinstance(best, dict) and set(best) == set(tuning.SPACE_KEYS)
    assert best == tuning.best_hyperparameters(tuner)
    assert json.loads(json.dumps(best)) == best
    scores = [trial.score for trial in tuner.oracle.trials.values()]
    assert result["best_val_mse"] == min(scores) and 0 < min(scores) < 0.5
    assert tuner.oracle.objective.name == "val_mse"


def test_best_values_rebuild_the_tuned_architecture(hyperband):
    tuner, result = hyperband
    tuned = tuner.get_best_models(1)[0]
    rebuilt = tuning.build_unet_from(result["best_hyperparameters"])
    assert rebuilt.count_params() == tuned.count_params()
    assert [layer.name for layer in rebuilt.layers] == [layer.name for layer in tuned.layers]
    rebuilt.set_weights(tuned.get_weights())
    x = images(4, seed=5)
    np.testing.assert_allclose(rebuilt.predict(x, verbose=0), tuned.predict(x, verbose=0), atol=1e-6)


def spy_on_trials(tuner, interrupt_at: int | None = None) -> list[str]:
    """Record the ids of the trials ``tuner`` actually runs; abort the search at trial ``interrupt_at``."""
    ran, run_trial = [], tuner.run_trial

    def recording(trial, *args, **kwargs):
        ran.append(trial.trial_id)
        if len(ran) == interrupt_at:
            raise FatalError("simulated kill")
        return run_trial(trial, *args, **kwargs)

    tuner.run_trial = recording
    return ran


def test_bayesian_search_resumes_without_rerunning_trials(tmp_path, data):
    pytest.importorskip("sklearn", reason="keras-tuner's BayesianOptimization needs scikit-learn")
    keras.utils.set_random_seed(0)
    options = dict(max_epochs=1, seed=0)
    first = tuning.make_tuner("bayesian", tmp_path, "bo", max_trials=2, **options)
    first_ran = spy_on_trials(first)
    with eagerly():
        assert tuning.run_search(first, *data, epochs=1)["completed"] == 2
    assert len(first_ran) == 2

    resumed = tuning.make_tuner("bayesian", tmp_path, "bo", max_trials=3, **options)
    assert set(resumed.oracle.trials) == set(first_ran)
    resumed_ran = spy_on_trials(resumed)
    with eagerly():
        result = tuning.run_search(resumed, *data, epochs=1)
    assert len(resumed_ran) == 1 and resumed_ran[0] not in first_ran
    assert result["completed"] == 3 and set(resumed.oracle.trials) == {*first_ran, *resumed_ran}


def test_interrupted_hyperband_search_resumes_at_the_interrupted_trial(tmp_path, data):
    keras.utils.set_random_seed(0)
    killed = make_hyperband(tmp_path)
    killed_ran = spy_on_trials(killed, interrupt_at=2)
    with eagerly(), pytest.raises(FatalError, match="simulated kill"):
        tuning.run_search(killed, *data, epochs=2)
    done, interrupted = killed_ran

    resumed = make_hyperband(tmp_path)
    assert resumed.oracle.trials[done].status == TrialStatus.COMPLETED
    resumed_ran = spy_on_trials(resumed)
    with eagerly():
        result = tuning.run_search(resumed, *data, epochs=2)
    assert resumed_ran == [interrupted]  # the completed trial is not re-run
    assert result["completed"] == 2 and set(resumed.oracle.trials) == {done, interrupted}


class CtrlC(keras.callbacks.Callback):
    """Sends SIGINT to this process in the middle of the first fit it sees."""

    sent = False

    def on_train_batch_begin(self, batch, logs=None):
        if not CtrlC.sent:
            CtrlC.sent = True
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_during_a_trial_leaves_it_running_and_the_rerun_resumes_it(tmp_path, data):
    keras.utils.set_random_seed(0)
    tuner = make_hyperband(tmp_path)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when pytest runs as a background job
    with eagerly(), pytest.raises(KeyboardInterrupt, match="deferred to a batch boundary"):
        tuning.run_search(tuner, *data, epochs=2, callbacks=[CtrlC()])
    statuses = [trial.status for trial in tuning._trials(tuner)]
    assert statuses == [TrialStatus.RUNNING]  # not FAILED: keras-tuner would never rerun it
    assert signal.getsignal(signal.SIGINT) is before  # handler restored

    resumed = make_hyperband(tmp_path)
    with eagerly():
        result = tuning.run_search(resumed, *data, epochs=2)
    assert result["completed"] == 2 and result["failed"] == 0


def failing_tuner(tmp_path, monkeypatch, max_epochs: int):
    """Hyperband (no scikit-learn needed) whose every trial fails: max_epochs 2 gives 2 trials, 3 gives 6."""
    tuner = tuning.make_tuner("hyperband", tmp_path, "broken", max_epochs=max_epochs, max_trials=0, seed=0)

    def broken(hp):
        raise ValueError("deliberately broken build")

    monkeypatch.setattr(tuner.hypermodel, "build", broken)
    return tuner


def test_run_search_raises_when_no_trial_completes(tmp_path, monkeypatch, data):
    tuner = failing_tuner(tmp_path, monkeypatch, max_epochs=2)
    with pytest.raises(tuning.TuningError, match="0 of 2 trials completed, 2 failed") as error:
        tuning.run_search(tuner, *data, epochs=1)
    assert "trial.json" in str(error.value)
    logs = [json.loads(path.read_text()) for path in (tmp_path / "broken").glob("trial_*/trial.json")]
    assert len(logs) == 2 and all("deliberately broken build" in log["message"] for log in logs)


def test_run_search_turns_keras_tuners_consecutive_failure_abort_into_tuning_error(
    tmp_path, monkeypatch, data
):
    tuner = failing_tuner(tmp_path, monkeypatch, max_epochs=3)
    with pytest.raises(tuning.TuningError, match="search aborted: 0 of 3 trials completed, 3 failed"):
        tuning.run_search(tuner, *data, epochs=1)


DISTRIBUTED_SEARCH = """
import json, sys
import tensorflow as tf
from pipeline import tuning
from tests.test_tuning import make_hyperband, search_data

tf.config.run_functions_eagerly(True)
result = tuning.run_search(make_hyperband(sys.argv[1]), *search_data(), epochs=2)
with open(sys.argv[2], "w") as out:
    json.dump(result, out)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_distributed_search_worker_reports_to_the_chief(tmp_path):
    pytest.importorskip("grpc")
    script = tmp_path / "search.py"
    script.write_text(DISTRIBUTED_SEARCH)
    env = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(free_port())}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1]), env.get("PYTHONPATH", "")])
    processes = {
        role: subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "tuning"), str(tmp_path / f"{role}.json")],
            env={**env, "KERASTUNER_TUNER_ID": role},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for role in ("chief", "tuner0")
    }
    try:
        logs = {role: process.communicate(timeout=180)[0] for role, process in processes.items()}
    finally:
        for process in processes.values():
            process.kill()
    for role, process in processes.items():
        assert process.returncode == 0, f"{role} failed:\n{logs[role][-3000:]}"
    chief, worker = (json.loads((tmp_path / f"{role}.json").read_text()) for role in ("chief", "tuner0"))
    assert chief["completed"] == worker["completed"] == 2 and chief["failed"] == 0
    assert chief["best_hyperparameters"] == worker["best_hyperparameters"]
    assert chief["best_val_mse"] == pytest.approx(worker["best_val_mse"])
    assert "val_loss:" in logs["tuner0"] and "val_loss:" not in logs["chief"]  # only the worker trains
    assert "Trial 2 Complete" in logs["chief"]  # the chief's oracle ended both trials
