"""Write README.md's at-a-glance block from the committed results.

    python -m pipeline.readme      # after dvc repro (and dvc repro fashion/dvc.yaml); tests check it

The block sits between ``<!-- at-a-glance: start -->`` and ``<!-- at-a-glance: end -->``: the
MNIST report stage's ``results/at_a_glance.md``, then, once the Fashion-MNIST pipeline has
committed results, whether each headline verdict holds on both datasets.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.io import write_text
from pipeline.params import load_params
from pipeline.verdicts import NO_DENOISER, mean_test

START, END = "<!-- at-a-glance: start -->", "<!-- at-a-glance: end -->"
SECOND = ("Fashion-MNIST", Path("fashion"))  # the second pipeline's title and folder


@dataclass(frozen=True)
class Headline:
    """One pipeline's headline numbers (mean test accuracy over the noisy headline-noise levels)."""

    frozen_best: str
    frozen_mean: float
    undefended_mean: float
    retrain_mean: float
    stacked_mean: float


def read_headline(folder: Path) -> Headline:
    """The headline of the pipeline in ``folder``, from its params and committed results."""
    params = load_params(folder / "params.yaml")
    headline = json.loads((folder / "results/headline.json").read_text())
    scores = pd.read_csv(folder / "results/evaluate/scores.csv")
    undefended = mean_test(scores, params.evaluate.headline_noise, NO_DENOISER, params.reference_classifier)
    return Headline(
        frozen_best=headline["frozen_best"],
        frozen_mean=headline["frozen_best_mean_accuracy"],
        undefended_mean=float(undefended.mean()),
        retrain_mean=headline["retrain_mean_accuracy"],
        stacked_mean=headline["stacked_mean_accuracy"],
    )


def _points(value: float) -> str:
    return f"{100 * value:+.2f} points"


def _on_both(diffs: list[float], names: tuple[str, str], claim: str) -> str:
    """``claim`` on both datasets, on neither, or on the one where its difference is positive."""
    positive = [d > 0 for d in diffs]
    where = "both" if all(positive) else "neither" if not any(positive) else names[positive.index(True)]
    return f"{claim} on {where}" + ("" if where in ("both", "neither") else " only")


def both_datasets(first: Headline, second: Headline, names: tuple[str, str], report: str) -> str:
    """Per use case, whether each headline comparison points the same way on both datasets
    (point estimates over the noisy Gaussian levels; each report says whether it is resolved)."""
    a, b = names
    restored = [h.frozen_mean - h.undefended_mean for h in (first, second)]
    retrain = [h.retrain_mean - h.frozen_mean for h in (first, second)]
    stacked = [h.stacked_mean - h.retrain_mean for h in (first, second)]
    same = "the same defense" if first.frozen_best == second.frozen_best else "not the same defense"
    return "\n".join(
        [
            f"- **Both datasets** ({a}; {b}: [`{report}`]({report}); test means over the noisy "
            "Gaussian levels, point estimates; whether each is resolved: each report).",
            f"  (a) The best input-side defense by validation gains {_points(restored[0])} "
            f"(`{first.frozen_best}`) on {a} and {_points(restored[1])} (`{second.frozen_best}`) on "
            f"{b} over the undefended classifier: "
            + _on_both(restored, names, "a denoiser helps a frozen classifier")
            + f" ({same} wins).",
            f"  (b) At matched compute, the noise-trained classifier alone minus denoising: "
            f"{_points(retrain[0])} on {a}, {_points(retrain[1])} on {b}: "
            + _on_both(retrain, names, "retraining beats denoising")
            + f"; a denoiser stacked in front of the noise-trained classifier: {_points(stacked[0])} "
            f"and {_points(stacked[1])}: " + _on_both(stacked, names, "stacking pays") + ".",
        ]
    )


def block(root: Path = Path(".")) -> str:
    """The at-a-glance block from the committed results under ``root``."""
    text = (root / "results/at_a_glance.md").read_text().strip()
    title, folder = SECOND
    if (root / folder / "results/headline.json").is_file():
        pair = (read_headline(root), read_headline(root / folder))
        text += "\n" + both_datasets(*pair, ("MNIST", title), f"{folder.as_posix()}/results/report.md")
    return text


def with_block(readme: str, block: str) -> str:
    """``readme`` with the text between the markers replaced by ``block``."""
    if START not in readme or END not in readme:
        raise ValueError(f"README has no {START} ... {END} markers")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block.strip()}\n{END}{tail}"


def main(readme: str = "README.md") -> int:
    try:
        text = with_block(Path(readme).read_text(), block())
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    write_text(readme, text)
    print(f"{readme}: at-a-glance block updated from the committed results")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
