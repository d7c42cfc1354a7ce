"""The common training budget: how many images each contestant trains on, and what it is charged.

Every charge is in training FLOPs (``pipeline.flops``), so it does not depend on the machine and
is known from params before any training. A budgeted fit runs ``budget.checkpoints`` slices of
equal compute (one Keras epoch each); a fixed recipe's slices are its epochs. A chained defense
(a denoiser in front of a classifier, a fine-tune on top of a base, a search plus its final fit)
is charged the sum of its parts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pydantic import ValidationError

from pipeline.params import BudgetedFitParams, DenoiserParams, FitParams, Params, ParamsError


@dataclass(frozen=True)
class Allocation:
    """A fit of ``slices`` x ``slice_images`` training images at ``flops_per_image`` each, on top of
    ``start_flops`` already spent on what it builds on."""

    slices: int
    slice_images: int
    flops_per_image: int
    start_flops: float = 0.0

    @property
    def images(self) -> int:
        return self.slices * self.slice_images

    @property
    def flops(self) -> float:
        """The fit's own planned training FLOPs."""
        return float(self.images * self.flops_per_image)

    def spent(self, slices_run: int) -> float:
        """The fit's own FLOPs after ``slices_run`` slices (early stopping may end it sooner)."""
        return float(slices_run * self.slice_images * self.flops_per_image)


def allocate(
    flops: float, flops_per_image: int, slices: int, batch_size: int, key: str = "budget.flops"
) -> Allocation:
    """The largest fit of ``slices`` equal slices within ``flops``; at least one batch per slice."""
    slice_images = int(flops // (flops_per_image * slices))
    if slice_images < batch_size:
        raise ParamsError(
            f"{key}={flops:.4g} buys {slice_images * slices} training images at "
            f"{flops_per_image / 1e6:.1f} MFLOP each: fewer than one batch ({batch_size}) per "
            f"checkpoint slice ({slices} slices); raise {key}"
        )
    return Allocation(slices, slice_images, flops_per_image)


def fixed_allocation(fit: FitParams, n_train: int, flops_per_image: int) -> Allocation:
    """A fixed recipe: its epochs are the slices, each ``train_size`` images (or the whole split)."""
    return Allocation(fit.epochs, fit.train_size or n_train, flops_per_image)


def budgeted_fit(allocation: Allocation, config: BudgetedFitParams | DenoiserParams, key: str) -> FitParams:
    """The epochs and images of ``allocation`` with ``config``'s batch size, patience and drop."""
    try:
        return FitParams(
            epochs=allocation.slices,
            train_size=allocation.slice_images,
            batch_size=config.batch_size,
            patience=config.patience,
            lr_drop_epochs=config.lr_drop_epochs,
        )
    except ValidationError as error:
        message = error.errors()[0]["msg"].removeprefix("Value error, ")
        raise ParamsError(f"{key}: {message} (budget.checkpoints slices)") from None


def denoiser_fit(
    params: Params, name: str, flops_per_image: int, n_train: int
) -> tuple[Allocation, FitParams]:
    """A ``denoisers`` entry's allocation and fit: the common budget, or its fixed recipe."""
    config = params.denoisers[name]
    if not config.budget:
        return fixed_allocation(config, n_train, flops_per_image), config
    key = f"budget.flops (denoisers.{name})"
    slices = params.budget.checkpoints
    allocation = allocate(params.budget.flops, flops_per_image, slices, config.batch_size, key)
    return allocation, budgeted_fit(allocation, config, f"denoisers.{name}.lr_drop_epochs")


def compute_record(allocation: Allocation, slices_run: int, seconds: float, factor: str, **extra) -> dict:
    """What a fit spent: images, FLOPs (its own and charged, i.e. with what it builds on) and time."""
    own = allocation.spent(slices_run)
    return {
        **asdict(allocation),
        "planned_images": allocation.images,
        "planned_flops": allocation.flops,
        "images_seen": slices_run * allocation.slice_images,
        "train_flops": own,
        "charged_flops": allocation.start_flops + own,
        "under_budget": slices_run < allocation.slices,  # early stopping ended it sooner
        "factor": factor,
        "train_seconds": round(seconds, 1),
        **extra,
    }


# ---- planned charges of the defenses, from params alone -----------------------------------


def _denoiser_forward(params: Params, name: str) -> int:
    from pipeline.flops import model_flops
    from pipeline.models import build_denoiser

    c = params.denoisers[name]
    model = build_denoiser(
        c.architecture, c.filters, name, c.depth, c.residual, c.clip_indicators, c.block_order
    )
    return model_flops(model)


def _classifier_forward(params: Params, name: str) -> int:
    from pipeline.flops import model_flops
    from pipeline.models import build_classifier

    c = params.classifiers[name]
    return model_flops(build_classifier(c.filters, c.dense_units, c.dropout, name=name))


def planned_classifier_flops(params: Params, name: str, n_train: int) -> float:
    """A classifier's planned training FLOPs without ``match_budget``: every epoch on the split."""
    from pipeline.flops import TRAIN_FACTOR

    return float(params.classifiers[name].epochs * n_train * TRAIN_FACTOR * _classifier_forward(params, name))


def planned_denoiser_flops(params: Params, n_train: int) -> dict[str, float]:
    """Every learned denoiser's planned charge (the guided one: its base plus its fine-tune)."""
    from pipeline.flops import FROZEN_FACTOR, TRAIN_FACTOR

    charges = {}
    for name, config in params.denoisers.items():
        if config.budget:
            charges[name] = float(params.budget.flops)
        else:
            per_image = TRAIN_FACTOR * _denoiser_forward(params, name)
            charges[name] = fixed_allocation(config, n_train, per_image).flops
    charges[params.tune.name] = float(params.budget.flops)
    guided = params.guided
    per_image = TRAIN_FACTOR * _denoiser_forward(params, guided.base) + FROZEN_FACTOR * _classifier_forward(
        params, guided.classifier
    )
    fine_tune = guided.epochs * (guided.train_size or n_train) * per_image
    charges[guided.name] = charges[guided.base] + float(fine_tune)
    return charges


def rival_target_flops(params: Params, n_train: int) -> float:
    """The compute a ``match_budget`` classifier gets: the largest planned denoising defense,
    i.e. its denoiser's charge plus the clean classifier's. Fixed recipes (``budget: false``, the
    reference recipe) are reproductions, not contestants of the matched comparison: left out."""
    clean = planned_classifier_flops(params, params.reference_classifier, n_train)
    fixed = {name for name, config in params.denoisers.items() if not config.budget}
    charges = {
        name: flops for name, flops in planned_denoiser_flops(params, n_train).items() if name not in fixed
    }
    return max(charges.values()) + clean


def classifier_fit(
    params: Params, name: str, flops_per_image: int, n_train: int
) -> tuple[Allocation, FitParams | None]:
    """A classifier's allocation, and with ``match_budget`` the fit that spends it (slices of fresh
    images); without, its epochs over the whole split (None: use its own params)."""
    config = params.classifiers[name]
    if not config.match_budget:
        return Allocation(config.epochs, n_train, flops_per_image), None
    target = rival_target_flops(params, n_train)
    key = f"budget.flops (classifiers.{name}, matched)"
    allocation = allocate(target, flops_per_image, params.budget.checkpoints, config.batch_size, key)
    return allocation, budgeted_fit(allocation, config, f"classifiers.{name}.lr_drop_epochs")
