"""The common training budget: how many images each contestant trains on, and what it is charged.

Every charge is in training FLOPs (``pipeline.flops``), so it does not depend on the machine and
is known from params before any training. A budgeted fit runs ``budget.checkpoints`` slices of
equal compute (one Keras epoch each); a fixed recipe's slices are its epochs. A chained defense
(a denoiser in front of a classifier, a fine-tune on top of a base, a search plus its final fit)
is charged the sum of its parts. The matched rival alone is set from what the others actually
spent (their compute records), since early stopping may end a fit under budget.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import ValidationError

from pipeline.data import DataError
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


def matched_contestants(params: Params) -> list[str]:
    """The learned denoisers the rival is matched against: every budgeted one, the tuned one and
    the guided one. Fixed recipes (``budget: false``, the reference recipe) are reproductions, not
    contestants of the matched comparison: left out."""
    names = [name for name, config in params.denoisers.items() if config.budget]
    return [*names, params.tune.name, params.guided.name]


def read_compute_record(path: Path, role: str) -> dict:
    """One ``compute.json``; a missing file is a ``DataError`` saying what the rival needs it for."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: not found (the rival's compute is matched to {role}; train it)")
    return json.loads(path.read_text())


def read_compute_records(directory: Path, names: list[str]) -> dict[str, dict]:
    """``<directory>/<name>/compute.json`` for each of ``names``; a missing one is a ``DataError``."""
    return {
        name: read_compute_record(Path(directory) / name / "compute.json", f"what {name!r} spent")
        for name in names
    }


def rival_target_flops(params: Params, defenses: Mapping[str, Mapping], clean: Mapping) -> float:
    """The compute a ``match_budget`` classifier gets: the largest *actual* charge of a denoising
    defense, i.e. the ``charged_flops`` of its denoiser's compute record (with what it builds on)
    plus the clean classifier's. A fit that early stopping ended under budget lowers it."""
    missing = [name for name in matched_contestants(params) if name not in defenses]
    if missing:
        raise DataError(f"no compute record for {missing}: the rival is matched to what they spent")
    largest = max(float(defenses[name]["charged_flops"]) for name in matched_contestants(params))
    return largest + float(clean["charged_flops"])


def classifier_fit(
    params: Params, name: str, flops_per_image: int, n_train: int, target: float | None = None
) -> tuple[Allocation, FitParams | None]:
    """A classifier's allocation, and with ``match_budget`` the fit that spends ``target`` FLOPs
    (:func:`rival_target_flops`; slices of fresh images); without, its epochs over the whole split
    (None: use its own params)."""
    config = params.classifiers[name]
    if not config.match_budget:
        return Allocation(config.epochs, n_train, flops_per_image), None
    if target is None:
        raise ValueError(f"classifiers.{name} has match_budget: its target FLOPs are needed")
    key = f"budget.flops (classifiers.{name}, matched)"
    allocation = allocate(target, flops_per_image, params.budget.checkpoints, config.batch_size, key)
    return allocation, budgeted_fit(allocation, config, f"classifiers.{name}.lr_drop_epochs")
