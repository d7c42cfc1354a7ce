"""One schema for params.yaml, validated at the start of every stage.

Each stage reads the whole file through :func:`load_params`, so a typo anywhere (an unknown
key, a negative level, an unknown noise type) fails every stage within seconds with a
message naming the key, the value and what is allowed, before any data is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.noise import NOISE_TYPES, NoiseMix, check_level

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]


class ParamsError(ValueError):
    """params.yaml does not match the schema; the message names key, value and rule."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


NoiseKind = Literal[tuple(NOISE_TYPES)]  # type: ignore[valid-type]
Level = Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]  # strict: `on`/`yes` are not 1.0
Levels = Annotated[list[Level], Field(min_length=1)]


def _check_grid(grid: dict[str, list[float]]) -> dict[str, list[float]]:
    for kind, levels in grid.items():
        for level in levels:
            check_level(kind, level)
        if len(set(levels)) != len(levels):
            raise ValueError(f"{kind}: levels {levels} contain duplicates")
    return grid


NoiseGrid = Annotated[dict[NoiseKind, Levels], Field(min_length=1), AfterValidator(_check_grid)]


class DataParams(Strict):
    dataset: Literal["mnist", "fashion_mnist"] = "mnist"  # the keys of pipeline.data.CLASS_NAMES
    path: str | None = None
    search_paths: list[str] = []
    validation_size: PositiveInt = 5000


class TrainNoiseParams(Strict):
    clean_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.0
    levels: NoiseGrid
    # Relative odds of each type in the mix (a type not named weighs 1); None: uniform.
    type_weights: dict[NoiseKind, Annotated[float, Field(gt=0, allow_inf_nan=False)]] | None = None

    @property
    def mix(self) -> NoiseMix:
        return NoiseMix(self.levels, self.clean_fraction, self.type_weights)

    @model_validator(mode="after")
    def _weights_name_trained_types(self):
        unknown = sorted(set(self.type_weights or {}) - set(self.levels))
        if unknown:
            raise ValueError(
                f"type_weights names {unknown}, which train_noise.levels does not train on: "
                f"{sorted(self.levels)}"
            )
        return self


class EpochParams(Strict):
    """The epochs of a fit: how many, batch size, early stopping, and a final learning-rate drop."""

    epochs: PositiveInt = 5
    batch_size: PositiveInt = 128
    patience: PositiveInt = 2
    lr_drop_epochs: Annotated[int, Field(ge=0)] = 0  # the last epochs, run at a tenth of the learning rate

    @model_validator(mode="after")
    def _drop_within_epochs(self):
        if self.lr_drop_epochs and self.lr_drop_epochs >= self.epochs:
            raise ValueError(
                f"lr_drop_epochs={self.lr_drop_epochs} must be below epochs={self.epochs} "
                "(the number of final epochs at a tenth of the learning rate; 0 for none)"
            )
        return self


class FitParams(EpochParams):
    """How a learned model is fitted for a fixed number of epochs (a reference recipe, a fine-tune)."""

    train_size: PositiveInt | None = None  # images drawn per epoch; None = the whole training split


class BudgetedFitParams(Strict):
    """A fit whose length the common budget sets (``budget``): ``budget.checkpoints`` slices of
    equal compute; patience and the learning-rate drop count slices."""

    batch_size: PositiveInt = 128
    patience: PositiveInt = 2
    lr_drop_epochs: Annotated[int, Field(ge=0)] = 0


class BudgetParams(Strict):
    """The common training budget B, in training FLOPs (machine-independent, known before training).

    Every learned denoiser trained from scratch gets B (the tuned U-Net: its search plus its final
    fit); the task-guided one is charged its base's B plus its fine-tune; the classifier with
    ``match_budget`` gets the compute of the largest denoising defense it is compared with. Each
    budgeted fit runs in ``checkpoints`` slices of equal compute, and after each the defense's
    validation accuracy (``curve_size`` images at every noisy level of the headline noise) is a
    point of its compute-accuracy curve.
    """

    flops: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    checkpoints: Annotated[int, Field(ge=2)] = 8
    curve_size: PositiveInt = 1000


class CeilingParams(EpochParams):
    """Noise specialists: the matched rival classifier fine-tuned on one headline-noise level each."""

    levels: Annotated[list[Level], Field(min_length=1)] = [0.5]
    epochs: PositiveInt = 3
    patience: PositiveInt = 1
    train_size: PositiveInt = 20000  # images drawn (under fresh noise at the level) per epoch
    learning_rate: PositiveFloat = 3e-4


UNETS = ("unet", "unet_bn")
UNET_OPTIONS = ("residual", "clip_indicators")  # what only the U-Net architectures accept


class DenoiserParams(FitParams):
    # True: trained on the common budget (budget.flops sets epochs and images); False: a fixed
    # recipe of its own epochs and train_size (the reference recipe).
    budget: bool = True
    architecture: Literal["cae", "unet", "unet_bn", "dncnn"]
    learning_rate: PositiveFloat = 1e-3
    filters: PositiveInt = 32
    depth: Annotated[int, Field(ge=3)] = 8  # dncnn only: number of conv layers
    loss: Literal["binary_crossentropy", "mse", "mae"] = "binary_crossentropy"
    residual: bool = False  # unet/unet_bn: predict the noise and subtract it (output clipped, no sigmoid)
    clip_indicators: bool = False  # unet/unet_bn: also feed where the input is exactly 0 and exactly 1
    train_noise: NoiseGrid | None = None  # None: the shared train_noise.levels
    fresh_noise: bool = True  # False: noise drawn once before training (the seeds' recipe)
    # unet_bn only: conv_relu_bn is the seeds' block (conv + ReLU -> BatchNorm)
    block_order: Literal["conv_bn_relu", "conv_relu_bn"] = "conv_bn_relu"

    @model_validator(mode="after")
    def _budget_sets_the_length(self):
        fixed = sorted({"epochs", "train_size"} & self.model_fields_set)
        if self.budget and fixed:
            raise ValueError(
                f"{fixed} are set by budget.flops for a budgeted denoiser; remove them, or set "
                "budget: false to train a fixed recipe"
            )
        return self

    @model_validator(mode="after")
    def _block_order_for_unet_bn(self):
        if self.block_order != "conv_bn_relu" and self.architecture != "unet_bn":
            raise ValueError(f"block_order applies to unet_bn, not {self.architecture!r}")
        return self

    @model_validator(mode="after")
    def _unet_options(self):
        for option in UNET_OPTIONS:
            if getattr(self, option) and self.architecture not in UNETS:
                raise ValueError(f"{option} applies to {list(UNETS)}, not {self.architecture!r}")
        return self


CLASSICAL_METHODS = ("lmmse", "median", "gaussian", "tv", "wavelet", "nl_means", "bm3d")
ClassicalMethod = Literal[CLASSICAL_METHODS]  # type: ignore[valid-type]


class ClassicalParams(Strict):
    """Training-free baselines; each method's value is how many test images it is scored on (None = all)."""

    methods: dict[ClassicalMethod, PositiveInt | None] = {}
    fit_size: PositiveInt = 1000  # validation images used to choose each filter's strength per noise cell
    lmmse_train_size: PositiveInt = 20000  # training pairs per noise cell for the LMMSE fit
    workers: PositiveInt = 2  # processes for filters that loop over images


class SearchParams(Strict):
    algorithm: Literal["hyperband", "bayesian"] = "hyperband"
    max_epochs: PositiveInt = 3  # hyperband: most epochs a trial gets; bayesian: epochs per trial
    max_trials: PositiveInt = 8  # bayesian only
    factor: Annotated[int, Field(ge=2)] = 3  # hyperband reduction factor
    train_size: PositiveInt = 4000  # noisy training images per search epoch (fresh noise)
    validation_size: PositiveInt = 1000  # validation images scoring each trial


class TuneParams(Strict):
    """keras-tuner search over a U-Net space, then a final fit of the best hyperparameters."""

    name: str = "unet_tuned"
    search: SearchParams = SearchParams()
    # The final fit gets budget.flops minus what the search spent; the learning rate is searched.
    final: BudgetedFitParams = BudgetedFitParams()


class ClassifierParams(EpochParams):
    filters: PositiveInt = 32
    dense_units: PositiveInt = 128
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.3
    epochs: PositiveInt = 8
    learning_rate: PositiveFloat = 1e-3
    # True: every epoch sees fresh noise drawn from train_noise (levels and clean fraction), a
    # rival defense to denoising; validation uses the same noise, drawn once.
    noise_augmentation: bool = False
    # True: trained for the compute of the largest denoising defense it is compared with (the
    # guided chain + the clean classifier), in budget.checkpoints slices; epochs is then ignored.
    match_budget: bool = False


class GuidedParams(FitParams):
    """A learned denoiser fine-tuned with the frozen classifier's loss as well as pixels."""

    name: str = "unet_guided"
    base: str = "unet"  # a ``denoisers`` entry to start from
    classifier: str = "clean"  # a ``classifiers`` entry, frozen during the fine-tune
    classification_weight: Annotated[float, Field(ge=0)] = 0.1  # weight of the classifier's loss
    learning_rate: PositiveFloat = 1e-4  # a gentle fine-tune of the base
    epochs: PositiveInt = 2
    # The frozen classifier follows the fit's training flag: its dropout stays active (masks
    # drawn from the fit's seed), so the denoiser learns images that a family of thinned
    # classifiers gets right. False: inference mode (docs/findings.md, guided fine-tune).
    classifier_training: bool = True


# The held-out suite's corruptions (pipeline.corruptions.CORRUPTIONS, whose keys a test keeps equal
# to these). Named here so that params can be checked without importing the corruption code,
# which no training or fitting stage may reach.
HeldoutCorruption = Literal[
    "shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear", "scale", "rotate",
    "brightness", "translate", "stripe", "fog", "spatter", "dotted_line", "zigzag", "canny_edges",
]  # fmt: skip


class HeldoutParams(Strict):
    """The held-out suite: corruptions no training, tuning or fitting step ever sees."""

    corruptions: Annotated[list[HeldoutCorruption], Field(min_length=1)] = list(HeldoutCorruption.__args__)
    test_size: PositiveInt = 2000  # the first n test images, the same for every defense
    filter_test_size: PositiveInt = 300  # the per-image classical filters (classical.methods not null)
    # Seed 000's Gaussian recipe, x + sigma * N(0, 1) without clipping; null: not scored.
    unclipped_gaussian: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = 0.4


class DistributeParams(Strict):
    """tf.distribute strategy for every fit: ``auto`` mirrors over several GPUs, else the default."""

    strategy: Literal["auto", "default", "mirrored", "one_device"] = "auto"


class EvaluateParams(Strict):
    batch_size: PositiveInt = 1024
    sample_images: PositiveInt = 4
    sample_noise: str = "gaussian"
    headline_noise: str = "gaussian"
    headline_level: float = 0.5
    # Test images per noisy level of these noise types (absent or null: all); clean is shared.
    noise_test_sizes: dict[NoiseKind, PositiveInt | None] = {}
    # Where the classifiers after the first (the rival) are scored: the headline noise only, or
    # every noise type.
    other_classifiers_on: Literal["headline", "all"] = "headline"


class Params(Strict):
    seed: Annotated[int, Field(ge=0)]  # the data seed: validation split, evaluation grids
    # Drives only the fits (weight init, training noise, batch order); None: ``seed``.
    train_seed: Annotated[int, Field(ge=0)] | None = None
    data: DataParams
    budget: BudgetParams
    noise: NoiseGrid
    train_noise: TrainNoiseParams
    denoisers: dict[str, DenoiserParams]
    tune: TuneParams = TuneParams()
    guided: GuidedParams = GuidedParams()
    classical: ClassicalParams = ClassicalParams()
    classifiers: Annotated[dict[str, ClassifierParams], Field(min_length=1)]
    evaluate: EvaluateParams
    distribute: DistributeParams = DistributeParams()
    ceiling: CeilingParams = CeilingParams()
    heldout: HeldoutParams = HeldoutParams()

    @field_validator("denoisers", "classifiers")
    @classmethod
    def _names(cls, entries):
        for name in entries:
            _check_name(name)
        return entries

    @property
    def learned(self) -> list[str]:
        """Every trained denoiser: the ``denoisers`` entries, the tuned U-Net, the guided one."""
        return [*self.denoisers, self.tune.name, self.guided.name]

    @property
    def fit_seed(self) -> int:
        """The seed of every fit: ``train_seed``, or ``seed`` if unset."""
        return self.seed if self.train_seed is None else self.train_seed

    @property
    def rival_classifier(self) -> str | None:
        """The noise-trained classifier (the first with ``noise_augmentation``), if any."""
        return next((name for name, c in self.classifiers.items() if c.noise_augmentation), None)

    @property
    def reference_classifier(self) -> str:
        """The first ``classifiers`` entry: the one headline tables and metrics use."""
        return next(iter(self.classifiers))

    @property
    def all_denoisers(self) -> list[str]:
        """Column order of every table: learned denoisers, then classical baselines."""
        return [*self.learned, *self.classical.methods]

    @property
    def families(self) -> dict[str, list[tuple[str, str]]]:
        """Defenses (denoiser, classifier) drawn together in a figure's panel, no defense in each:
        the classical filters, the learned zoo, the flagship with its guided fine-tune and the rival."""
        clean, rival = self.reference_classifier, self.rival_classifier
        flagship = ["none", self.guided.base, self.guided.name]
        zoo = [name for name in self.learned if name != self.guided.name]
        return {
            "classical": [(name, clean) for name in ["none", *self.classical.methods]],
            "learned zoo": [(name, clean) for name in ["none", *zoo]],
            "flagship": [(name, clf) for clf in (clean, rival) if clf for name in flagship],
        }

    @model_validator(mode="after")
    def _cross_checks(self):
        _check_name(self.tune.name)
        _check_name(self.guided.name)
        names = [*self.learned, *self.classical.methods]
        clashes = sorted({name for name in names if names.count(name) > 1})
        if clashes:
            raise ValueError(
                f"denoiser names {clashes} are used twice "
                "(denoisers, tune.name, guided.name, classical.methods)"
            )
        if self.guided.base not in self.denoisers:
            raise ValueError(
                f"guided.base={self.guided.base!r} is not in denoisers: {sorted(self.denoisers)}"
            )
        if self.guided.classifier not in self.classifiers:
            raise ValueError(
                f"guided.classifier={self.guided.classifier!r} is not in classifiers: "
                f"{sorted(self.classifiers)}"
            )
        ev = self.evaluate
        if ev.sample_noise not in self.noise:
            raise ValueError(
                f"evaluate.sample_noise={ev.sample_noise!r} is not in noise: {sorted(self.noise)}"
            )
        if ev.headline_noise not in self.noise:
            raise ValueError(
                f"evaluate.headline_noise={ev.headline_noise!r} is not in noise: {sorted(self.noise)}"
            )
        if ev.headline_level not in self.noise[ev.headline_noise]:
            raise ValueError(
                f"evaluate.headline_level={ev.headline_level} is not a level of "
                f"noise.{ev.headline_noise}: {self.noise[ev.headline_noise]}"
            )
        unknown = sorted(set(ev.noise_test_sizes) - set(self.noise))
        if unknown:
            raise ValueError(f"evaluate.noise_test_sizes names {unknown}, not in noise: {sorted(self.noise)}")
        grid = self.noise[ev.headline_noise]
        outside = [level for level in self.ceiling.levels if level not in grid or level == 0]
        if outside:
            raise ValueError(
                f"ceiling.levels {outside} are not noisy levels of noise.{ev.headline_noise}: {grid}"
            )
        twice = sorted({c for c in self.heldout.corruptions if self.heldout.corruptions.count(c) > 1})
        if twice:
            raise ValueError(f"heldout.corruptions names {twice} twice")
        reference = self.classifiers[self.reference_classifier]
        if reference.noise_augmentation or reference.match_budget:
            raise ValueError(
                f"classifiers.{self.reference_classifier}: the first classifier is the clean reference "
                "(no noise_augmentation, no match_budget)"
            )
        return self


def _check_name(name: str) -> None:
    if name == "none" or not name.replace("_", "").isalnum():
        raise ValueError(f"name {name!r} must be alphanumeric/underscore, not 'none'")


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid params"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "<top level>"
        value = item.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"  {key}: {message}{shown}")
    return "\n".join(lines)


def parse_params(raw: dict, source: str = "params.yaml") -> Params:
    """Validate a params mapping, raising :class:`ParamsError` with one line per problem."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        raise ParamsError(_describe(error, source)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML: {error}") from None
    return parse_params(raw, str(path))
