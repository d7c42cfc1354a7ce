"""Time a full ``dvc repro --force`` (every stage, default params) and record it.

    python -m benchmarks.time_repro            # writes results/benchmarks/repro.json
    python -m benchmarks.time_repro --targets ceiling fit_classical   # a forced part of it...
    python -m benchmarks.time_repro --rest     # ...then `dvc repro` of the rest, times merged
    python -m benchmarks.time_repro --replace  # rerun what changed since; its stage times replace
    python -m benchmarks.time_repro --pipeline fashion   # fashion/dvc.yaml -> fashion/results/...

Per-stage times are read from the stage start lines DVC prints. A run in two parts records
the sum of both parts' wall times and every stage's time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.machine import describe

RECORD = Path("results/benchmarks/repro.json")  # relative to the pipeline's folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", nargs="*", default=[], help="force only these stages (and upstream)")
    parser.add_argument("--rest", action="store_true", help="run what is left unforced; merge the times")
    parser.add_argument(
        "--replace",
        action="store_true",
        help="rerun what changed since the recorded run; its stages' times replace the recorded ones",
    )
    parser.add_argument("--pipeline", default=".", help="folder of the dvc.yaml to run (default: the root)")
    args = parser.parse_args()
    folder = Path(args.pipeline)
    if not (folder / "dvc.yaml").is_file():
        parser.error(f"--pipeline {args.pipeline}: no dvc.yaml there")
    out = folder / RECORD
    dvc_file = [] if folder == Path(".") else [str(folder / "dvc.yaml")]
    targets = [f"{folder / 'dvc.yaml'}:{t}" for t in args.targets] if dvc_file else args.targets
    if args.rest or args.replace:
        command = ["dvc", "repro", *dvc_file]
    else:
        command = ["dvc", "repro", "--force", *(targets or dvc_file)]
    stage_seconds: dict[str, float] = {}
    start = last = time.perf_counter()
    current = None
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    for line in process.stdout:
        sys.stdout.write(line)
        if line.startswith("Running stage '"):
            now = time.perf_counter()
            if current:
                stage_seconds[current] = round(now - last, 1)
            current, last = line.split("'")[1].rsplit("dvc.yaml:", 1)[-1], now
    code = process.wait()
    end = time.perf_counter()
    if current:
        stage_seconds[current] = round(end - last, 1)
    if code != 0:
        print(f"dvc repro failed with exit code {code}; nothing recorded", file=sys.stderr)
        return code
    wall = round(end - start, 1)
    commands = [" ".join(command)]
    if (args.rest or args.replace) and out.is_file():
        before = json.loads(out.read_text())
        if args.replace:  # the rerun stages' earlier times no longer count
            wall -= sum(before["stage_seconds"].get(name, 0.0) for name in stage_seconds)
        stage_seconds = {**before["stage_seconds"], **stage_seconds}
        wall = round(before["wall_seconds"] + wall, 1)
        commands = [*before.get("commands", [before["command"]]), *commands]
    record = {
        "command": " && ".join(commands),
        "commands": commands,
        "wall_seconds": wall,
        "stage_seconds": stage_seconds,
        "machine": describe(),
        "date": time.strftime("%Y-%m-%d"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"full repro: {record['wall_seconds'] / 60:.1f} min -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
