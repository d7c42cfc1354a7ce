"""params.yaml schema: the repository's file validates and every class of typo is named."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from pipeline.params import ParamsError, load_params, parse_params

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def base() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture
def raw(base) -> dict:
    return copy.deepcopy(base)


def error_of(raw: dict) -> str:
    with pytest.raises(ParamsError) as info:
        parse_params(raw)
    return str(info.value)


def test_repository_params_validate(base):
    params = load_params(ROOT / "params.yaml")
    assert params.seed == base["seed"]
    assert set(params.noise) == set(base["noise"])
    assert params.noise["gaussian"] == base["noise"]["gaussian"]
    assert set(params.denoisers) == set(base["denoisers"])
    assert params.classifiers["clean"].epochs == base["classifiers"]["clean"]["epochs"]
    assert params.reference_classifier == "clean"
    assert params.classifiers["noise_aug"].noise_augmentation
    assert params.learned[-2:] == [params.tune.name, params.guided.name]
    assert params.evaluate.headline_level in params.noise[params.evaluate.headline_noise]
    # speckle is held out of denoiser training by design
    assert "speckle" in params.noise and "speckle" not in params.train_noise.levels


def test_parse_params_equals_load_params(base):
    assert parse_params(copy.deepcopy(base)) == load_params(ROOT / "params.yaml")


def test_defaults_fill_optional_keys(raw):
    del raw["classifiers"]["clean"]["patience"]
    del raw["train_seed"]
    del raw["budget"]["checkpoints"]
    params = parse_params(raw)
    assert params.classifiers["clean"].patience == 2
    assert params.denoisers["cae"].budget and params.denoisers["cae"].train_size is None
    assert params.fit_seed == params.seed and params.budget.checkpoints == 8


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # unknown keys
        (lambda p: p.update(sead=1), ["sead: Extra inputs are not permitted", "(got 1)"]),
        (
            lambda p: p["classifiers"]["clean"].update(epocs=10),
            ["classifiers.clean.epocs: Extra inputs are not permitted", "(got 10)"],
        ),
        (
            lambda p: p["denoisers"]["cae"].update(filter=8),
            ["denoisers.cae.filter: Extra inputs are not permitted", "(got 8)"],
        ),
        # wrong types
        (
            lambda p: p["classifiers"]["clean"].update(epochs="ten"),
            ["classifiers.clean.epochs:", "integer", "(got 'ten')"],
        ),
        (lambda p: p.update(seed=1.5), ["seed:", "integer", "(got 1.5)"]),
        (
            lambda p: p["data"].update(search_paths="data/x.npz"),
            ["data.search_paths:", "list", "'data/x.npz'"],
        ),
        # levels
        (lambda p: p["noise"].update(gaussian=[]), ["noise.gaussian:", "at least 1 item", "(got [])"]),
        (
            lambda p: p["noise"].update(gaussian=[0.0, -0.1]),
            ["noise.gaussian.1:", "greater than or equal to 0", "(got -0.1)"],
        ),
        (
            lambda p: p["train_noise"]["levels"].update(poisson=[0.1, -2]),
            ["train_noise.levels.poisson.1:", "greater than or equal to 0", "(got -2)"],
        ),
        (lambda p: p["noise"].update(rain=[0.1]), ["noise.rain", "'gaussian'", "(got 'rain')"]),
        (
            lambda p: p["train_noise"]["levels"].update(snow=[0.1]),
            ["train_noise.levels.snow", "(got 'snow')"],
        ),
        (
            lambda p: p["noise"].update(salt_pepper=[0.0, 1.5]),
            ["noise:", "salt_pepper: level 1.5 must be <= 1.0"],
        ),
        (
            lambda p: p["train_noise"]["levels"].update(salt_pepper=[2.0]),
            ["train_noise.levels:", "salt_pepper: level 2.0 must be <= 1.0"],
        ),
        (
            lambda p: p["noise"].update(blur=[0.0, 0.5, 0.5]),
            ["noise:", "blur: levels [0.0, 0.5, 0.5] contain duplicates"],
        ),
        (lambda p: p["noise"].update(gaussian=[0.0, float("nan")]), ["noise.gaussian.1:", "(got nan)"]),
        (lambda p: p.update(noise={}), ["noise:", "at least 1 item"]),
        # sizes
        (
            lambda p: p["classifiers"]["clean"].update(batch_size=0),
            ["classifiers.clean.batch_size:", "greater than 0", "(got 0)"],
        ),
        (
            lambda p: p["denoisers"]["unet"].update(batch_size=-4),
            ["denoisers.unet.batch_size:", "greater than 0", "(got -4)"],
        ),
        (lambda p: p["data"].update(validation_size=0), ["data.validation_size:", "(got 0)"]),
        (
            lambda p: p["denoisers"]["unet"].update(epochs=4, lr_drop_epochs=4),
            ["denoisers.unet:", "lr_drop_epochs=4 must be below epochs=4"],
        ),
        (
            lambda p: p["classifiers"]["clean"].update(lr_drop_epochs=-1),
            ["classifiers.clean.lr_drop_epochs:", "greater than or equal to 0", "(got -1)"],
        ),
        (
            lambda p: p["classifiers"]["clean"].update(dropout=1.0),
            ["classifiers.clean.dropout:", "less than 1", "(got 1.0)"],
        ),
        (
            lambda p: p["train_noise"].update(clean_fraction=-0.1),
            ["train_noise.clean_fraction:", "(got -0.1)"],
        ),
        (
            lambda p: p["train_noise"].update(type_weights={"speckle": 2.0}),
            ["train_noise:", "type_weights names ['speckle']", "does not train on"],
        ),
        (
            lambda p: p["train_noise"].update(type_weights={"gaussian": 0}),
            ["train_noise.type_weights.gaussian:", "greater than 0", "(got 0)"],
        ),
        # choices
        (
            lambda p: p["denoisers"]["cae"].update(architecture="resnet"),
            ["denoisers.cae.architecture:", "'unet_bn' or 'dncnn'", "(got 'resnet')"],
        ),
        (lambda p: p["denoisers"]["cae"].update(loss="l2"), ["denoisers.cae.loss:", "(got 'l2')"]),
        (
            lambda p: p["denoisers"].update(none=p["denoisers"]["cae"]),
            ["denoisers:", "name 'none' must be alphanumeric/underscore"],
        ),
        (
            lambda p: p["denoisers"].update({"my-cae": p["denoisers"]["cae"]}),
            ["denoisers:", "name 'my-cae'"],
        ),
        (lambda p: p["denoisers"]["dncnn"].update(depth=2), ["denoisers.dncnn.depth:", "(got 2)"]),
        (
            lambda p: p["denoisers"]["cae"].update(clip_indicators=True),
            ["denoisers.cae:", "clip_indicators applies to ['unet', 'unet_bn'], not 'cae'"],
        ),
        (
            lambda p: p["denoisers"]["dncnn"].update(residual=True),
            ["denoisers.dncnn:", "residual applies to ['unet', 'unet_bn'], not 'dncnn'"],
        ),
        (
            lambda p: p["denoisers"]["unet_bn"].update(train_noise={"salt_pepper": [3.0]}),
            ["denoisers.unet_bn.train_noise:", "salt_pepper: level 3.0 must be <= 1.0"],
        ),
        (
            lambda p: p["classical"]["methods"].update(kalman=None),
            ["classical.methods.kalman", "'lmmse'", "(got 'kalman')"],
        ),
        (
            lambda p: p["classical"]["methods"].update(tv=0),
            ["classical.methods.tv:", "greater than 0", "(got 0)"],
        ),
        (lambda p: p["tune"]["search"].update(algorithm="grid"), ["tune.search.algorithm:", "(got 'grid')"]),
        (lambda p: p["tune"]["search"].update(factor=1), ["tune.search.factor:", "(got 1)"]),
        (
            lambda p: p["tune"]["final"].update(learning_rate=0.1),
            ["tune.final.learning_rate: Extra inputs are not permitted"],
        ),
        # cross checks
        (lambda p: p["tune"].update(name="cae"), ["denoiser names ['cae'] are used twice"]),
        (
            lambda p: p["denoisers"].update(lmmse=p["denoisers"]["cae"]),
            ["denoiser names ['lmmse'] are used twice"],
        ),
        (lambda p: p["tune"].update(name="none"), ["name 'none' must be"]),
        (lambda p: p["guided"].update(name="unet"), ["denoiser names ['unet'] are used twice"]),
        (lambda p: p["guided"].update(base="bm3d"), ["guided.base='bm3d' is not in denoisers"]),
        (
            lambda p: p["guided"].update(classifier="robust"),
            ["guided.classifier='robust' is not in classifiers"],
        ),
        (lambda p: p.update(classifiers={}), ["classifiers:", "at least 1 item"]),
        (
            lambda p: p["classifiers"].update({"my clf": p["classifiers"]["clean"]}),
            ["classifiers:", "name 'my clf'"],
        ),
        (
            lambda p: p["classifiers"]["clean"].update(noise_augmentation="maybe"),
            ["classifiers.clean.noise_augmentation:", "(got 'maybe')"],
        ),
        (lambda p: p["distribute"].update(strategy="tpu"), ["distribute.strategy:", "(got 'tpu')"]),
        # the common budget, the ceiling and the training seed
        (lambda p: p["budget"].update(flops=0), ["budget.flops:", "greater than 0", "(got 0)"]),
        (lambda p: p["budget"].update(checkpoints=1), ["budget.checkpoints:", "(got 1)"]),
        (lambda p: p.pop("budget"), ["budget: Field required"]),
        (lambda p: p.update(train_seed=-1), ["train_seed:", "(got -1)"]),
        (
            lambda p: p["denoisers"]["unet"].update(epochs=3),
            ["denoisers.unet:", "['epochs'] are set by budget.flops", "budget: false"],
        ),
        (
            lambda p: p["ceiling"].update(levels=[0.45]),
            ["ceiling.levels [0.45] are not noisy levels of noise.gaussian"],
        ),
        (
            lambda p: p["ceiling"].update(levels=[0.0, 0.5]),
            ["ceiling.levels [0.0] are not noisy levels of noise.gaussian"],
        ),
        (
            lambda p: p["classifiers"]["clean"].update(match_budget=True),
            ["classifiers.clean: the first classifier is the clean reference"],
        ),
        (
            lambda p: p["guided"].update(classification_weight=-1),
            ["guided.classification_weight:", "(got -1)"],
        ),
        (
            lambda p: p["evaluate"].update(headline_level=0.55),
            ["evaluate.headline_level=0.55 is not a level of noise.gaussian"],
        ),
        (
            lambda p: p["evaluate"].update(headline_noise="speckle", headline_level=0.5),
            ["evaluate.headline_level=0.5 is not a level of noise.speckle: [0.0, 0.35, 0.7, 1.0]"],
        ),
        (
            lambda p: p["evaluate"].update(headline_noise="rain"),
            ["evaluate.headline_noise='rain' is not in noise"],
        ),
        (
            lambda p: p["evaluate"].update(noise_test_sizes={"speckle": 100, "rain": 5}),
            ["evaluate.noise_test_sizes.rain.[key]: Input should be", "(got 'rain')"],
        ),
        (
            lambda p: (
                p.update(noise={"gaussian": [0.0, 0.5]})
                or p["evaluate"].update(noise_test_sizes={"speckle": 100})
            ),
            ["evaluate.noise_test_sizes names ['speckle'], not in noise: ['gaussian']"],
        ),
        (
            lambda p: p["evaluate"].update(noise_test_sizes={"speckle": 0}),
            ["evaluate.noise_test_sizes.speckle:", "(got 0)"],
        ),
        (
            lambda p: p["evaluate"].update(sample_noise="rain"),
            ["evaluate.sample_noise='rain' is not in noise"],
        ),
    ],
)
def test_bad_values_name_key_and_value(raw, edit, expected):
    edit(raw)
    message = error_of(raw)
    assert message.startswith("params.yaml: invalid params")
    for part in expected:
        assert part in message, f"{part!r} not in:\n{message}"


def test_missing_section(raw):
    del raw["classifiers"]
    assert "classifiers: Field required" in error_of(raw)


def test_every_problem_is_reported(raw):
    raw["classifiers"]["clean"]["epocs"] = 1
    raw["denoisers"]["cae"]["batch_size"] = 0
    lines = error_of(raw).splitlines()
    assert len(lines) == 3
    assert any(line.strip().startswith("classifiers.clean.epocs:") for line in lines)
    assert any(line.strip().startswith("denoisers.cae.batch_size:") for line in lines)


def test_source_is_named(raw):
    raw["seed"] = -1
    with pytest.raises(ParamsError, match=r"^custom.yaml: invalid params\n  seed: .*\(got -1\)"):
        parse_params(raw, source="custom.yaml")


def test_params_error_is_a_value_error():
    assert issubclass(ParamsError, ValueError)


def test_non_mapping_top_level():
    with pytest.raises(ParamsError, match="params.yaml: expected a mapping at the top level, got list"):
        parse_params([1, 2])


def test_params_are_frozen(base):
    params = parse_params(copy.deepcopy(base))
    with pytest.raises(ValueError):
        params.classifiers["clean"].epochs = 3


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ParamsError, match=f"{re.escape(str(path))}: params file not found"):
        load_params(path)


def test_invalid_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("seed: 42\nnoise: {gaussian: [0.0, 0.1\n")
    with pytest.raises(ParamsError, match=f"{re.escape(str(path))}: not valid YAML"):
        load_params(path)


def test_empty_yaml_file(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    with pytest.raises(ParamsError, match=f"{re.escape(str(path))}: expected a mapping at the top level"):
        load_params(path)


def test_load_params_names_the_file_in_schema_errors(tmp_path, base):
    raw = copy.deepcopy(base)
    raw["classifiers"]["clean"]["epochs"] = "ten"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(
        ParamsError, match=f"^{re.escape(str(path))}: invalid params\n  classifiers.clean.epochs"
    ):
        load_params(path)


def test_a_yaml_boolean_is_not_a_level(raw):
    raw["noise"]["gaussian"] = [0.0, True]  # YAML reads `on`/`yes` as True
    with pytest.raises(ParamsError, match=r"noise\.gaussian\.1"):
        parse_params(raw)


def test_dataset_choice_names_the_key_and_the_choices(raw):
    assert parse_params(raw).data.dataset == "mnist"
    raw["data"]["dataset"] = "cifar10"
    message = error_of(raw)
    assert "data.dataset" in message and "'mnist'" in message and "'fashion_mnist'" in message


def test_dataset_choices_are_the_known_datasets():
    from typing import get_args

    from pipeline.data import CLASS_NAMES
    from pipeline.params import DataParams

    assert set(get_args(DataParams.model_fields["dataset"].annotation)) == set(CLASS_NAMES)
