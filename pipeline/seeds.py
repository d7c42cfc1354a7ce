"""The seeds workflow: retrain the headline contestants under other training seeds.

    python -m pipeline.seeds 1 2        # after dvc repro; writes results/seeds.csv
    python -m pipeline.seeds 1 2 --resume   # keeps the seeds already done with this code

Only the fits change with ``train_seed`` (weight init, training noise, batch order); the data
split, the validation pairs and the evaluation grid keep the data seed, so the spread is
training variance alone. The headline contestants are read from the committed run's
``results/ceiling/validation.csv`` (chosen on validation, as the report does): the best
denoiser in front of the clean classifier (use case a), the best in front of the rival (the
stacked combination), the rival alone and the clean classifier alone. Each seed retrains, with
the pipeline's own stage scripts and a copy of params.yaml that differs only in ``train_seed``,
the clean classifier, the denoisers those defenses need (a guided denoiser: its base, then its
fine-tune; the tuned U-Net: its search and final fit) and the rival, then scores every defense
on the test Gaussian grid. The rival is matched to the committed run's compute records, so its
compute is the same under every seed. The committed run's own seed is read from
``results/evaluate/scores.csv``. Each row records its commit (``-dirty`` when the code the seeds
rerun, :func:`code_paths`, or the params differ from it), and the file is rewritten after every
seed, so ``--resume`` can carry a run across sessions: it keeps the rows of the seeds asked for
that an earlier run made from a clean commit whose code and params equal HEAD's, on this CPU.

Each row also records its host (:mod:`pipeline.host`): oneDNN picks kernels by CPU, so seeds
trained on another CPU than the committed run's would mix host differences into what should be
training variance. On the committed run's host (named by its timing record,
``results/benchmarks/repro.json``) params' own seed is copied from the run; on any other host it
is retrained there too (``retrained`` column), so every row of the file comes from one CPU.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from pipeline.data import DataError, to_float
from pipeline.host import label as host_label
from pipeline.host import same_host, this_host
from pipeline.io import load_dataset, read_npz_arrays, write_with
from pipeline.params import Params, ParamsError, load_params
from pipeline.verdicts import NO_DENOISER, best_by_validation, mean_test

log = logging.getLogger("seeds")
COLUMNS = ["train_seed", "denoiser", "classifier", "mean_accuracy", "commit", "host", "retrained"]
HOST_RECORD = Path("results/benchmarks/repro.json")  # the committed run's timing record
# the stages a seed reruns (their code is what its rows depend on) and the noise grid it scores on
SEED_STAGES = (
    "noise",
    "train_classifier",
    "train_denoiser",
    "tune_denoiser",
    "train_guided",
    "train_rival",
    "evaluate",
)


def code_paths(dvc_file: Path = Path("dvc.yaml")) -> list[str]:
    """What a seed's rows depend on: the code deps of :data:`SEED_STAGES` in ``dvc_file``, this
    module, params.yaml and dvc.yaml (report-only code such as the verdict text is not)."""
    stages = yaml.safe_load(dvc_file.read_text())["stages"]
    deps = {
        dep
        for name in SEED_STAGES
        for dep in (stages[name].get("do", stages[name])["deps"])
        if isinstance(dep, str) and dep.startswith(("pipeline/", "stages/"))
    }
    return sorted(deps | {"pipeline/seeds.py", "params.yaml", str(dvc_file)})


def headline_defenses(validation: pd.DataFrame, params: Params) -> list[tuple[str, str]]:
    """The defenses the verdicts compare, chosen on validation."""
    clean, rival = params.reference_classifier, params.rival_classifier
    best_a, means = best_by_validation(validation, clean, params.learned)
    runner = str(means.index[1]) if len(means) > 1 else NO_DENOISER
    best_stack, _ = best_by_validation(validation, rival, params.learned)
    defenses = [
        (best_a, clean),
        (runner, clean),
        (NO_DENOISER, clean),
        (NO_DENOISER, rival),
        (best_stack, rival),
    ]
    return list(dict.fromkeys(defenses))


def commit() -> str:
    """HEAD's short hash, with ``-dirty`` if the code or params (:func:`code_paths`) differ from it."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", *code_paths()],
        capture_output=True,
        text=True,
    )
    return head + ("-dirty" if dirty.stdout.strip() else "")


def same_code(label: str) -> bool:
    """Whether rows labelled ``label`` came from a clean commit with HEAD's code and params."""
    if not isinstance(label, str) or not label or label.endswith("-dirty"):
        return False
    diff = subprocess.run(["git", "diff", "--quiet", label, "HEAD", "--", *code_paths()], capture_output=True)
    return diff.returncode == 0


def recorded_host(record: Path = HOST_RECORD) -> str | None:
    """The host the committed run's timing record names; None without a record."""
    if not record.is_file():
        return None
    try:
        machine = json.loads(record.read_text())["machine"]
        return host_label(machine["cpu"], machine.get("cpu_features", ""))
    except (ValueError, KeyError, TypeError) as error:
        raise DataError(f"{record}: expected a timing record with machine.cpu ({error!r})") from error


def seeds_to_train(own: int, asked, here: str, recorded: str | None, record: Path = HOST_RECORD) -> list[int]:
    """The seeds this host trains: ``asked``, and params' ``own`` seed first where this host is
    not the committed run's (its rows there would come from another CPU)."""
    if recorded is None:
        log.warning("%s: not found, so the committed run's host is unknown; its seed is copied", record)
        return list(asked)
    if same_host(here, recorded):
        return list(asked)
    log.warning(
        "%s records the committed run on %r, but this host is %r: train_seed %d is retrained here "
        "too, so every seed in the file comes from this CPU",
        record,
        recorded,
        here,
        own,
    )
    return [own, *asked]


def resumable(path: Path, seeds, defenses, here: str) -> pd.DataFrame:
    """The rows of ``path`` (an earlier run) a new run keeps: each seed of ``seeds`` with a row
    for every one of ``defenses``, all retrained from HEAD's code (:func:`same_code`) on this host."""
    if not path.is_file():
        return pd.DataFrame(columns=COLUMNS)
    old = pd.read_csv(path, dtype={"commit": str, "host": str})  # an all-digit hash is still a hash
    if not {"host", "retrained"} <= set(old):
        return pd.DataFrame(columns=COLUMNS)  # rows from before hosts were recorded
    keep = []
    for seed in seeds:
        rows = old[(old["train_seed"] == seed) & old["retrained"].astype(bool)]
        pairs = list(zip(rows["denoiser"], rows["classifier"], strict=True))
        same = all(same_code(label) for label in rows["commit"].unique())
        if set(pairs) >= set(defenses) and same and all(same_host(h, here) for h in rows["host"].unique()):
            keep.append(rows[[pair in set(defenses) for pair in pairs]])
    return pd.concat(keep, ignore_index=True) if keep else pd.DataFrame(columns=COLUMNS)


def run_stage_script(script: str, params_file: Path, **options: str | Path) -> None:
    """Run ``stages.<script>`` with ``params_file``; ``base_compute="x"`` becomes ``--base-compute x``."""
    flags = [part for key, value in options.items() for part in (f"--{key.replace('_', '-')}", str(value))]
    command = [sys.executable, "-m", f"stages.{script}", "--params", str(params_file), *flags]
    log.info("%s", " ".join(command))
    subprocess.run(command, check=True)


def retrain(params: Params, seed: int, denoisers: set[str], work: Path, data: str) -> Path:
    """Train the clean classifier, ``denoisers`` (with what they build on) and the rival under
    ``seed`` into ``work``; returns the models directory."""
    raw = yaml.safe_load(Path("params.yaml").read_text()) | {"train_seed": seed}
    params_file = work / "params.yaml"
    params_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    models, live = work / "models", work / "live"
    clean, rival = params.reference_classifier, params.rival_classifier

    def fit(script: str, output: str, **options: str | Path) -> None:
        run_stage_script(
            script, params_file, data=data, model=models / f"{output}.keras", live=live / output, **options
        )

    fit("train_classifier", clean, name=clean)
    needed = set(denoisers) - {NO_DENOISER}
    if params.guided.name in needed:
        needed |= {params.guided.base}
    for name in sorted(needed & set(params.denoisers)):
        fit("train_denoiser", name, name=name, classifier=models / f"{clean}.keras")
    if params.tune.name in needed:
        fit(
            "tune_denoiser",
            params.tune.name,
            tuner_dir=work / "tuner",
            best=work / "best.json",
            classifier=models / f"{clean}.keras",
        )
    if params.guided.name in needed:
        base = params.guided.base
        fit(
            "train_guided",
            params.guided.name,
            base=models / f"{base}.keras",
            base_compute=live / base / "compute.json",
            classifier=models / f"{params.guided.classifier}.keras",
        )
    fit(  # matched to the committed run's records, so its compute is the same under every seed
        "train_classifier",
        rival,
        name=rival,
        defense_compute=Path("results/train_denoiser"),
        clean_compute=Path(f"results/train_classifier/{clean}/compute.json"),
    )
    return models


def score(models: Path, defenses, grid: Path, clean: np.ndarray, labels: np.ndarray, batch_size: int) -> dict:
    """Mean accuracy over the noisy levels of ``grid`` for each defense, scored as the evaluate
    stage scores (:func:`pipeline.evaluation.evaluate_grid`)."""
    from pipeline.evaluation import evaluate_grid, model_restorer
    from pipeline.models import load_model

    arrays = read_npz_arrays(grid, ("levels", "images"))
    denoisers = sorted({d for d, _ in defenses} - {NO_DENOISER})
    classifiers = sorted({c for _, c in defenses})
    scores, _, _ = evaluate_grid(
        clean,
        labels,
        {grid.stem: (arrays["levels"], arrays["images"])},
        {name: model_restorer(load_model(models / f"{name}.keras"), batch_size) for name in denoisers},
        {name: load_model(models / f"{name}.keras") for name in classifiers},
        batch_size,
        classifier_denoisers={c: [d for d, k in defenses if k == c] for c in classifiers},
        image_metrics=False,  # accuracy is all the seeds table holds
    )
    noisy = scores[scores["level"] > 0]
    means = noisy.groupby(["denoiser", "classifier"])["accuracy"].mean()
    return {defense: float(means[defense]) for defense in defenses}


def committed_seed_rows(params: Params, defenses, scores_csv: Path, label: str, host: str) -> list[dict]:
    scores = pd.read_csv(scores_csv)
    noise = params.evaluate.headline_noise
    rows = []
    for denoiser, classifier in defenses:
        rows.append(
            {
                "train_seed": params.fit_seed,
                "denoiser": denoiser,
                "classifier": classifier,
                "mean_accuracy": float(mean_test(scores, noise, denoiser, classifier).mean()),
                "commit": label,
                "host": host,
                "retrained": False,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("seeds", nargs="+", type=int, help="training seeds other than params' train_seed")
    parser.add_argument("--out", default="results/seeds.csv")
    parser.add_argument("--data", default="data/prepared/mnist.npz")
    parser.add_argument("--grid", default=None, help="default: data/noisy/<headline noise>.npz")
    parser.add_argument("--resume", action="store_true", help="keep the seeds --out already has")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        params = load_params()
        if params.fit_seed in args.seeds:
            raise ParamsError(
                f"seed {params.fit_seed} is params' own train_seed: its row comes from the committed run"
            )
        here, recorded = this_host(), recorded_host()
        to_train = seeds_to_train(params.fit_seed, args.seeds, here, recorded)
        validation_csv = Path("results/ceiling/validation.csv")
        if not validation_csv.is_file():
            raise DataError(f"{validation_csv}: not found (run dvc repro first)")
        defenses = headline_defenses(pd.read_csv(validation_csv), params)
        grid = Path(args.grid or f"data/noisy/{params.evaluate.headline_noise}.npz")
        dataset = load_dataset(args.data)
        clean, labels = to_float(dataset.x_test), dataset.y_test
    except (ParamsError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    label = commit()
    rows = []
    if params.fit_seed not in to_train:
        rows = committed_seed_rows(
            params, defenses, Path("results/evaluate/scores.csv"), label, recorded or here
        )
    kept = pd.DataFrame(columns=COLUMNS)
    if args.resume:
        kept = resumable(Path(args.out), to_train, defenses, here)
    rows += kept.to_dict("records")
    if len(kept):
        log.info("kept seeds %s from %s (same code)", sorted(map(int, set(kept["train_seed"]))), args.out)
    for seed in [s for s in to_train if s not in set(kept["train_seed"])]:
        with tempfile.TemporaryDirectory(prefix=f"seed{seed}-") as tmp:
            models = retrain(params, seed, {d for d, _ in defenses}, Path(tmp), args.data)
            for (denoiser, classifier), accuracy in score(models, defenses, grid, clean, labels, 512).items():
                rows.append(
                    {
                        "train_seed": seed,
                        "denoiser": denoiser,
                        "classifier": classifier,
                        "mean_accuracy": accuracy,
                        "commit": label,
                        "host": here,
                        "retrained": True,
                    }
                )
        frame = pd.DataFrame(rows, columns=COLUMNS)
        write_with(args.out, lambda tmp, f=frame: f.to_csv(tmp, index=False))  # after every seed
        log.info("seed %d done: %s", seed, frame[frame["train_seed"] == seed].to_dict("records"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
