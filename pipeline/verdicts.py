"""The benchmark's two answers, generated from the numbers: compute, ceiling, seeds, verdicts.

A *defense* is a (denoiser, classifier) pair; ``none`` is no denoiser. Its charge is the sum of
what its parts cost to train (``charged_flops`` of their compute records; the classical filters
are fitted, not trained, and charged 0). Use case (a), the classifier is frozen: input-side
defenses in front of the clean classifier. Use case (b), the classifier can be retrained:
denoising (the best denoiser + the clean classifier) against noise-aware training (the matched
rival classifier alone), and both stacked (a denoiser in front of the rival, at its summed
compute). The "best" of each is chosen on validation (the ``ceiling`` stage's
``validation.csv``), never on the test set.

A verdict names a winner only if the paired 95% test interval of the difference excludes 0
*and* the training-seed ranges (``results/seeds.csv``, at least :data:`MIN_SEEDS` seeds each)
do not overlap; otherwise it says "not resolved" and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.metrics import paired_difference
from pipeline.restorer import NO_DENOISER

MIN_SEEDS = 3  # training seeds a seed range needs before a verdict can name a winner


def label(denoiser: str, classifier: str) -> str:
    return f"{denoiser} + {classifier}"


def defense_charge(records: Mapping[str, Mapping], denoiser: str, classifier: str) -> float:
    """Training FLOPs charged to a defense: its denoiser's (0 for none or a classical filter)
    plus its classifier's."""
    return float(records.get(denoiser, {}).get("charged_flops", 0.0)) + float(
        records[classifier]["charged_flops"]
    )


def best_by_validation(
    validation: pd.DataFrame, classifier: str, candidates: Sequence[str]
) -> tuple[str, pd.Series]:
    """The candidate denoiser with the highest mean validation accuracy in front of
    ``classifier``, and every candidate's mean (descending)."""
    rows = validation[(validation["classifier"] == classifier) & validation["denoiser"].isin(candidates)]
    means = rows.groupby("denoiser")["accuracy"].mean().sort_values(ascending=False)
    if means.empty:
        raise ValueError(f"no validation scores for {list(candidates)} in front of {classifier!r}")
    return str(means.index[0]), means


def pooled_correct(
    correct: Mapping[str, np.ndarray], denoiser: str, classifier: str, levels: Sequence[float], n: int
) -> np.ndarray:
    """Which of the first ``n`` test images the defense got right, at every level, concatenated."""
    return np.concatenate([correct[f"{denoiser}|{classifier}|{level:g}"][:n] for level in levels])


def paired_gap(
    correct: Mapping[str, np.ndarray],
    first: tuple[str, str],
    second: tuple[str, str],
    levels: Sequence[float],
) -> tuple[float, float, float]:
    """Mean accuracy of ``first`` minus ``second`` over ``levels`` on the same test images (the
    first n both were scored on), with Newcombe's paired 95% interval on the pooled pairs."""
    n = min(len(correct[f"{d}|{c}|{levels[0]:g}"]) for d, c in (first, second))
    return paired_difference(
        pooled_correct(correct, *first, levels, n), pooled_correct(correct, *second, levels, n)
    )


@dataclass(frozen=True)
class SeedRange:
    seeds: int
    low: float
    high: float


def seed_range(seeds: pd.DataFrame | None, denoiser: str, classifier: str) -> SeedRange | None:
    """Min and max over training seeds of a defense's mean noisy accuracy; None without seeds."""
    if seeds is None:
        return None
    rows = seeds[(seeds["denoiser"] == denoiser) & (seeds["classifier"] == classifier)]
    if rows.empty:
        return None
    return SeedRange(
        int(rows["train_seed"].nunique()),
        float(rows["mean_accuracy"].min()),
        float(rows["mean_accuracy"].max()),
    )


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def current_seeds(
    seeds: pd.DataFrame | None, scores: pd.DataFrame, noise: str, own_seed: int
) -> tuple[pd.DataFrame | None, str]:
    """``seeds`` if it belongs to this run, and a sentence for the report ("" when there is
    nothing to say); otherwise None and a sentence saying why its spread is not used.

    A file belongs to this run when its rows for the run's own training seed equal the test
    scores' means (the seeds workflow copies them from the run on the run's own CPU), or when
    that seed was retrained with every other (on another CPU), all its rows come from one CPU and
    none from modified code (``-dirty``; that the commit's code is this run's, the committed
    results' tests check with git)."""
    if seeds is None:
        return None, ""
    own = seeds[seeds["train_seed"] == own_seed]
    means = np.array(
        [mean_test(scores, noise, row.denoiser, row.classifier).mean() for row in own.itertuples()]
    )
    retrained = "retrained" in seeds and len(own) and own["retrained"].astype(bool).all()
    if not retrained:
        if len(own) and np.allclose(means, own["mean_accuracy"], rtol=0, atol=1e-6):
            return seeds, ""
        return None, (
            f"`results/seeds.csv` comes from another run (its train_seed {own_seed} rows do not match "
            "this run's test scores), so the verdicts use no seed spread: rerun `python -m pipeline.seeds`."
        )
    hosts = sorted(map(str, seeds["host"].unique()))
    dirty = seeds["commit"].astype(str).str.endswith("-dirty").any()
    if len(hosts) > 1 or dirty:
        why = f"its rows come from {len(hosts)} CPUs" if len(hosts) > 1 else "it was made from modified code"
        return None, (
            f"`results/seeds.csv` does not belong to this run ({why}), so the verdicts use no seed "
            "spread: rerun `python -m pipeline.seeds`."
        )
    gap = 100 * np.abs(means - own["mean_accuracy"].to_numpy()).max()
    count = _count(seeds["train_seed"].nunique(), "training seed")
    return seeds, (
        f"The seed spread comes from {count} retrained on "
        f"one CPU, {hosts[0]}, that is not the CPU of this run's test scores (so seed {own_seed} was "
        f"retrained there too): there its defenses' mean accuracies are within {gap:.2f} points of "
        "this run's."
    )


def verdict(
    first: str,
    second: str,
    gap: tuple[float, float, float],
    first_seeds: SeedRange | None,
    second_seeds: SeedRange | None,
) -> str:
    """One sentence: who leads, by how much, and whether that is resolved (see the module doc)."""
    difference, low, high = gap
    ahead, behind = (first, second) if difference >= 0 else (second, first)
    size = (
        f"{100 * abs(difference):.2f} points (paired 95% interval of {first} - {second}: "
        f"{100 * low:+.2f} to {100 * high:+.2f})"
    )
    excludes_zero = low > 0 or high < 0
    if first_seeds is None or second_seeds is None:
        return f"not resolved: {ahead} leads {behind} by {size} on one training seed; no seed spread"
    apart = first_seeds.low > second_seeds.high or second_seeds.low > first_seeds.high
    spread = "seed ranges " + " and ".join(
        f"{100 * r.low:.2f}-{100 * r.high:.2f} ({_count(r.seeds, 'seed')})"
        for r in (first_seeds, second_seeds)
    )
    enough = min(first_seeds.seeds, second_seeds.seeds) >= MIN_SEEDS
    if excludes_zero and apart and enough:
        return f"**{ahead}** beats {behind} by {size}; {spread} apart"
    reasons = [] if excludes_zero else ["the paired interval includes 0"]
    reasons += [] if apart else ["the seed ranges overlap"]
    reasons += [] if enough else [f"fewer than {MIN_SEEDS} training seeds"]
    return f"not resolved ({' and '.join(reasons)}): {ahead} leads {behind} by {size}; {spread}"


def percent_of_ceiling(
    scores: pd.DataFrame, ceiling: Mapping[float, float], noise: str, defenses: Sequence[tuple[str, str]]
) -> pd.DataFrame:
    """Test accuracy of each defense as a percentage of the ceiling at each ceiling level."""
    rows = []
    for denoiser, classifier in defenses:
        mine = scores[
            (scores["noise"] == noise)
            & (scores["denoiser"] == denoiser)
            & (scores["classifier"] == classifier)
        ].set_index("level")
        row = {"defense": label(denoiser, classifier)}
        for level, top in ceiling.items():
            row[f"{level:g}"] = round(100 * float(mine.loc[level, "accuracy"]) / top, 2)
        rows.append(row)
    return pd.DataFrame(rows).set_index("defense")


def curve_at(curve: pd.DataFrame, flops: float) -> float:
    """A compute curve's validation accuracy at its last checkpoint within ``flops`` (NaN if the
    curve starts beyond it)."""
    reached = curve[curve["flops"] <= flops * (1 + 1e-9)]
    return float(reached["accuracy"].iloc[-1]) if len(reached) else float("nan")


def curve_leaders(curves: Mapping[str, pd.DataFrame], points: Mapping[str, float]) -> pd.DataFrame:
    """Each defense's validation accuracy at each compute point, and the leader there."""
    table = pd.DataFrame(
        {
            name: {point: curve_at(curve, flops) for point, flops in points.items()}
            for name, curve in curves.items()
        }
    )
    table["leader"] = table.fillna(-1.0).idxmax(axis=1)
    return table


@dataclass(frozen=True)
class Inputs:
    """What the answers are computed from (all produced by the pipeline's stages)."""

    scores: pd.DataFrame  # evaluate: test scores
    validation: pd.DataFrame  # ceiling: validation accuracy of every learned defense
    ceiling: Mapping[float, float]  # ceiling: attainable accuracy per level
    records: Mapping[str, Mapping]  # compute records of every trained model, by name
    curves: Mapping[str, pd.DataFrame]  # compute curves of every trained model, by name
    correct: Mapping[str, np.ndarray]  # evaluate: which test images each defense got right
    seeds: pd.DataFrame | None  # the seeds workflow's results, or None
    noise: str
    clean: str  # the frozen reference classifier
    rival: str  # the noise-trained classifier at matched compute
    learned: Sequence[str]  # the learned denoisers
    budget: float  # B
    seeds_note: str = ""  # why the seeds file is not used (see current_seeds), or ""


def mean_test(scores: pd.DataFrame, noise: str, denoiser: str, classifier: str) -> pd.Series:
    """A defense's test accuracy at each noisy level of ``noise`` (``scores.csv`` rows)."""
    rows = scores[
        (scores["noise"] == noise)
        & (scores["denoiser"] == denoiser)
        & (scores["classifier"] == classifier)
        & (scores["level"] > 0)
    ]
    return rows.set_index("level")["accuracy"]


def _tflop(flops: float) -> str:
    return f"{flops / 1e12:.1f}"


def headline_defenses(i: Inputs) -> dict[str, tuple[str, str]]:
    """The defenses the verdicts are about, chosen on validation: the best input-side defense
    and no defense (frozen classifier), the rival alone and the best stack on it (retrainable)."""
    best_a, _ = best_by_validation(i.validation, i.clean, i.learned)
    best_stack, _ = best_by_validation(i.validation, i.rival, i.learned)
    return {
        "frozen_best": (best_a, i.clean),
        "frozen_none": (NO_DENOISER, i.clean),
        "retrain": (NO_DENOISER, i.rival),
        "stacked": (best_stack, i.rival),
    }


def answers(i: Inputs) -> tuple[str, dict, str]:
    """The report's "two questions" section (Markdown), its headline numbers and the README's
    at-a-glance block."""
    levels = sorted(
        float(level)
        for level in i.scores.loc[(i.scores["noise"] == i.noise) & (i.scores["level"] > 0), "level"].unique()
    )
    _, means_a = best_by_validation(i.validation, i.clean, i.learned)
    runner_a = str(means_a.index[1]) if len(means_a) > 1 else NO_DENOISER
    named = headline_defenses(i)
    denoise, retrain, both = named["frozen_best"], named["retrain"], named["stacked"]
    contestants = {
        "(a) best input-side defense": denoise,
        "(a) runner-up": (runner_a, i.clean),
        "(a) no defense": (NO_DENOISER, i.clean),
        "(b) retrain on noise": retrain,
        "(b) both, stacked (summed compute)": both,
    }
    val_mean = i.validation.groupby(["denoiser", "classifier"])["accuracy"].mean()
    rows = []
    for role, (d, c) in contestants.items():
        test = mean_test(i.scores, i.noise, d, c)
        rows.append(
            {
                "role": role,
                "defense": label(d, c),
                "charged TFLOP": _tflop(defense_charge(i.records, d, c)),
                "validation (%)": f"{100 * val_mean[(d, c)]:.2f}",
                "test, mean noisy (%)": f"{100 * test.mean():.2f}",
                **{f"% of ceiling @{lv:g}": f"{100 * test[lv] / top:.1f}" for lv, top in i.ceiling.items()},
            }
        )
    table = pd.DataFrame(rows)

    def judge(first: tuple[str, str], second: tuple[str, str]) -> str:
        gap = paired_gap(i.correct, first, second, levels)
        return verdict(
            label(*first), label(*second), gap, seed_range(i.seeds, *first), seed_range(i.seeds, *second)
        )

    text_a = judge(denoise, (runner_a, i.clean))
    text_b = judge(denoise, retrain)
    stronger = denoise if val_mean[denoise] >= val_mean[retrain] else retrain  # on validation
    text_both = judge(both, stronger)
    charge_denoise, charge_retrain = defense_charge(i.records, *denoise), defense_charge(i.records, *retrain)
    largest = max(defense_charge(i.records, d, i.clean) for d in i.learned)
    ratio = charge_retrain / largest
    val_b = {
        name: val_mean[defense]
        for name, defense in (("denoise", denoise), ("retrain", retrain), ("both", both))
    }
    best_b = max(val_b, key=val_b.get)
    best_b_defense = {"denoise": denoise, "retrain": retrain, "both": both}[best_b]
    goal_rows, goal_short = [], []
    for role, defense in (("(a)", denoise), ("(b)", best_b_defense)):
        test = mean_test(i.scores, i.noise, *defense)
        worst = min(100 * test[lv] / top for lv, top in i.ceiling.items())
        goal_short.append(
            f"{role} {label(*defense)} "
            + (
                "meets it"
                if worst >= 99
                else f"reaches {worst:.1f}% at worst ({99 - worst:.1f} points short)"
            )
        )
        goal_rows.append(
            f"- {role} {label(*defense)}: lowest {worst:.1f}% of the ceiling "
            + (
                "(meets the >= 99% goal)"
                if worst >= 99
                else f"(misses the >= 99% goal by {99 - worst:.1f} points)"
            )
        )
    text = "\n\n".join(
        [
            *([i.seeds_note] if i.seeds_note else []),
            "Each defense's charge is the training compute of its parts (denoiser + classifier; see "
            '*Compute*). "Best" is chosen on validation (mean accuracy over the '
            f"{len(i.validation['level'].unique())} noisy levels of the validation curve set), never "
            "on the test set. "
            "% of ceiling: test accuracy over the attainable accuracy at that level (*Ceiling*).",
            table.to_markdown(index=False),
            "**(a) The classifier is frozen.** Best input-side defense by validation: "
            f"**{label(*denoise)}**; against the runner-up: {text_a}.",
            f"**(b) The classifier can be retrained.** Denoising ({label(*denoise)}, "
            f"{_tflop(charge_denoise)} TFLOP) against noise-aware training ({label(*retrain)}, "
            f"{_tflop(charge_retrain)} TFLOP, {100 * ratio:.1f}% of the largest denoising defense's "
            f"{_tflop(largest)}): {text_b}. Both stacked ({label(*both)}, "
            f"{_tflop(defense_charge(i.records, *both))} TFLOP, more compute than either) against the "
            f"stronger: {text_both}.",
            "Goal: the best defense of each use case at >= 99% of the ceiling at every level from "
            f"{min(i.ceiling):g} to {max(i.ceiling):g}.\n\n" + "\n".join(goal_rows),
        ]
    )
    mean = {
        d: mean_test(i.scores, i.noise, *d).mean() for d in (denoise, retrain, both, (NO_DENOISER, i.clean))
    }
    clean_rows = i.scores[(i.scores["level"] == 0) & (i.scores["denoiser"] == NO_DENOISER)]
    clean_accuracy = float(clean_rows.loc[clean_rows["classifier"] == i.clean, "accuracy"].iloc[0])
    pct = [100 * mean_test(i.scores, i.noise, *denoise)[lv] / top for lv, top in i.ceiling.items()]
    lv = sorted(i.ceiling)
    glance = "\n".join(
        [
            f"- The frozen clean classifier (`{i.clean}`) scores {100 * clean_accuracy:.2f}% on clean test "
            f"images and {100 * mean[(NO_DENOISER, i.clean)]:.2f}% on average over the noisy {i.noise} "
            f"levels ({', '.join(f'{x:g}' for x in levels)}) without a defense.",
            f"- **(a) Frozen classifier.** The best input-side defense by validation, `{label(*denoise)}`, "
            f"averages {100 * mean[denoise]:.2f}% ({min(pct):.1f}-{max(pct):.1f}% of the ceiling at "
            f"{lv[0]:g}-{lv[-1]:g}). Against the runner-up: {text_a}.",
            f"- **(b) Retrainable classifier, matched compute.** Denoising (`{label(*denoise)}`, "
            f"{_tflop(charge_denoise)} TFLOP) averages {100 * mean[denoise]:.2f}%; the noise-trained "
            f"classifier alone (`{label(*retrain)}`, {_tflop(charge_retrain)} TFLOP) "
            f"{100 * mean[retrain]:.2f}%: "
            f"{text_b}. Both stacked (`{label(*both)}`, {_tflop(defense_charge(i.records, *both))} TFLOP): "
            f"{100 * mean[both]:.2f}%.",
            "- The ceiling (a noise specialist and every contestant, on validation): "
            + " / ".join(f"{100 * i.ceiling[x]:.2f}%" for x in lv)
            + f" at {' / '.join(f'{x:g}' for x in lv)}. Goal, >= 99% of it at every level for the best "
            f"defense of each use case: {'; '.join(goal_short)}.",
        ]
    )
    headline = {
        "frozen_best": label(*denoise),
        "frozen_best_mean_accuracy": round(float(mean_test(i.scores, i.noise, *denoise).mean()), 4),
        "retrain_mean_accuracy": round(float(mean_test(i.scores, i.noise, *retrain).mean()), 4),
        "stacked_mean_accuracy": round(float(mean_test(i.scores, i.noise, *both).mean()), 4),
        "frozen_best_min_pct_ceiling": round(
            min(100 * mean_test(i.scores, i.noise, *denoise)[lv] / top for lv, top in i.ceiling.items()), 2
        ),
        **{f"ceiling_{lv:g}": round(top, 4) for lv, top in i.ceiling.items()},
    }
    return text, headline, glance


def curve_panels(i: Inputs) -> pd.DataFrame:
    """Long table of the curves for the figure: the zoo on its own compute (frozen classifier) and
    the retrainable contestants on their total compute."""
    clean_flops = float(i.records[i.clean]["charged_flops"])
    best_a, _ = best_by_validation(i.validation, i.clean, i.learned)
    parts = []
    for name in i.learned:
        parts.append(
            i.curves[name].assign(defense=label(name, i.clean), panel="(a) frozen classifier: the zoo")
        )
    parts.append(
        i.curves[best_a].assign(
            defense=label(best_a, i.clean),
            panel="(b) retrainable: total compute",
            flops=i.curves[best_a]["flops"] + clean_flops,
        )
    )
    for name in (i.clean, i.rival):
        parts.append(
            i.curves[name].assign(defense=label(NO_DENOISER, name), panel="(b) retrainable: total compute")
        )
    return pd.concat(parts, ignore_index=True)


def leaders_markdown(i: Inputs) -> str:
    """Which defense leads on validation at a quarter, half and all of each panel's budget."""
    panels = curve_panels(i)
    rival_flops = float(i.records[i.rival]["planned_flops"])
    out = []
    for panel, budget in (
        ("(a) frozen classifier: the zoo", i.budget),
        ("(b) retrainable: total compute", rival_flops),
    ):
        part = panels[panels["panel"] == panel]
        curves = {name: rows for name, rows in part.groupby("defense", sort=False)}
        points = {
            f"{share} ({_tflop(budget * frac)} TFLOP)": budget * frac
            for share, frac in (("1/4", 0.25), ("1/2", 0.5), ("all", 1.0))
        }
        table = curve_leaders(curves, points)
        shown = table.drop(columns="leader").map(lambda v: "" if np.isnan(v) else f"{100 * v:.2f}")
        shown["leader"] = table["leader"]
        out.append(
            f"{panel}, validation accuracy (%) at fractions of "
            f"{'B' if panel.startswith('(a)') else 'the matched budget'}:\n\n{shown.to_markdown()}"
        )
    return "\n\n".join(out)


def compute_markdown(records: Mapping[str, Mapping]) -> str:
    """Every trained model's compute record: images, FLOPs (own, charged, planned), time."""
    rows = [
        {
            "model": name,
            "images trained on": f"{r['images_seen']:,}",
            "own TFLOP": _tflop(r["train_flops"]),
            "charged TFLOP (with what it builds on)": _tflop(r["charged_flops"]),
            "planned TFLOP": _tflop(r["start_flops"] + r["planned_flops"]),
            "stopped early": "yes" if r["under_budget"] else "no",
            "train seconds": f"{r['train_seconds']:.0f}",
        }
        for name, r in records.items()
    ]
    return pd.DataFrame(rows).to_markdown(index=False)
