"""The model card: what ``denoise-bench score`` found for a user's classifier (and denoiser), as
JSON-ready data.

- mCE: the mean over the MNIST-C corruptions (not ``gaussian_unclipped``) of the defense's error
  over the error of the pipeline's undefended clean classifier on the same images, read from the
  committed held-out gains (rows ``none`` + ``clean``), so it compares with the committed
  defenses' mCE. 1 is the clean classifier's robustness; below 1 is better.
- do-no-harm count: the MNIST-C corruptions on which the paired 95% interval of the gain
  (:func:`pipeline.metrics.paired_difference`) lies below 0. The gain is of the denoiser + the
  user's classifier over that classifier alone when a denoiser is given, else of the user's
  classifier over the pipeline's clean classifier; the card names it.
"""

from __future__ import annotations

import math

from pipeline import heldout
from pipeline.commands.adapters import YOUR_CLASSIFIER
from pipeline.commands.plan import Plan
from pipeline.commands.protocol import PROTOCOL_MODULES, PROTOCOL_SECTIONS, protocol_version
from pipeline.restorer import NO_DENOISER


def number(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def model_card(plan: Plan, grid, gains, summary, ranking, harm_defense, harm_reference) -> dict:
    params, noise = plan.params, plan.params.evaluate.headline_noise
    yours = YOUR_CLASSIFIER
    defenses = []
    names = [NO_DENOISER, *([plan.denoiser_label] if plan.denoiser is not None else [])]
    for name in names:
        rows = grid[(grid["denoiser"] == name) & (grid["classifier"] == yours)]
        clean = rows[rows["level"] == 0]
        mean = ranking[(ranking["denoiser"] == name) & ranking["yours"]].iloc[0]
        held = summary[summary["denoiser"] == name].iloc[0]
        per = gains[gains["denoiser"] == name].set_index("corruption")["accuracy"]
        defenses.append(
            {
                "defense": f"{name} + {yours}",
                "denoiser": name,
                "clean_accuracy": number(clean["accuracy"].iloc[0]) if len(clean) else None,
                "accuracy": {
                    kind: {
                        f"{level:g}": float(accuracy)
                        for level, accuracy in zip(part["level"], part["accuracy"], strict=True)
                        if level > 0
                    }
                    for kind, part in rows.groupby("noise", sort=False)
                },
                f"mean_noisy_{noise}_accuracy": float(mean["mean_accuracy"]),
                "rank": {"position": int(mean["rank"]), "of": int((~ranking["yours"]).sum()) + 1},
                "heldout": {
                    "suite_mean": number(held["suite_mean"]),
                    "unseen_mean": number(held["unseen_mean"]),
                    "geometric_mean": number(held["geometric_mean"]),
                    "mCE": number(held["mCE"]),
                    "unclipped_accuracy": number(held["unclipped_accuracy"]),
                    "accuracy": {corruption: float(value) for corruption, value in per.items()},
                },
            }
        )
    harmed = gains[
        (gains["denoiser"] == harm_defense[0]) & (gains["corruption"] != heldout.UNCLIPPED)
    ].set_index("corruption")
    if harm_reference[1] == yours:
        reference_text = f"{' + '.join(harm_reference)}: your classifier alone"
    else:
        reference_text = (
            f"{' + '.join(harm_reference)}: the pipeline's clean classifier ({plan.reference_source})"
        )
    noisy = grid[(grid["classifier"] == yours) & (grid["denoiser"] == NO_DENOISER) & (grid["level"] > 0)]
    return {
        "protocol_version": protocol_version(params),
        "protocol": {
            "params": list(PROTOCOL_SECTIONS),
            "sources": [module.replace(".", "/") + ".py" for module in PROTOCOL_MODULES],
        },
        "classifier": plan.classifier_source,
        "denoiser": plan.denoiser_source,
        "adapter": {
            "input_shape": list(plan.classifier.layout),
            "logits": plan.classifier.logits,
            "pixel_scale": plan.classifier.pixel_scale,
        },
        "input_contract": "every input clipped to [0, 1] before any defense and before the classifier",
        "headline_noise": noise,
        "n_images": {
            "clean": len(plan.labels),
            "noisy": {kind: int(part["n_images"].min()) for kind, part in noisy.groupby("noise", sort=False)},
            "heldout": len(plan.suite_labels),
        },
        "defenses": defenses,
        "mCE_reference": f"{NO_DENOISER} + {params.reference_classifier} in {plan.files.path('gains')}",
        "do_no_harm": {
            "defense": " + ".join(harm_defense),
            "reference": reference_text,
            "harms": int(harmed["harm"].sum()),
            "harmed": [str(c) for c in harmed.index[harmed["harm"].astype(bool)]],
            "gains": {
                str(c): {"gain": number(r.gain), "low": number(r.gain_low), "high": number(r.gain_high)}
                for c, r in harmed.iterrows()
            },
        },
    }
