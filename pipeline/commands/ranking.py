"""Where a user's defenses rank among a pipeline's committed ones: by mean accuracy over the
noisy levels of the headline noise."""

from __future__ import annotations

import pandas as pd

from pipeline.robustness import defense_table


def ranking_table(committed: pd.DataFrame, mine: pd.DataFrame, noise: str) -> pd.DataFrame:
    """Every committed defense and yours by mean accuracy over the noisy levels of ``noise``;
    yours get the rank they would take among the committed ones."""

    def table(scores: pd.DataFrame, yours: bool) -> pd.DataFrame:
        rows = scores[(scores["noise"] == noise) & (scores["level"] > 0)]
        sizes = rows.groupby(["denoiser", "classifier"], sort=False)["n_images"].min().rename("n_images")
        out = defense_table(scores, noise).merge(sizes.reset_index(), on=["denoiser", "classifier"])
        return out.assign(defense=out["denoiser"] + " + " + out["classifier"], yours=yours)

    theirs, ours = table(committed, False), table(mine, True)
    theirs["rank"] = theirs["mean_accuracy"].rank(method="min", ascending=False).astype(int)
    ours["rank"] = [1 + int((theirs["mean_accuracy"] > value).sum()) for value in ours["mean_accuracy"]]
    both = pd.concat([theirs, ours], ignore_index=True)
    both = both.sort_values(["mean_accuracy", "yours"], ascending=[False, False], kind="stable")
    columns = [
        "rank",
        "defense",
        "denoiser",
        "classifier",
        "mean_accuracy",
        "low",
        "high",
        "n_images",
        "yours",
    ]
    return both[columns].reset_index(drop=True)
