"""Time a full ``dvc repro --force`` (every stage, default params) and record it.

    python benchmarks/time_repro.py            # writes results/benchmarks/repro.json

Per-stage times are read from the stage start lines DVC prints.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402

OUT = Path("results/benchmarks/repro.json")


def main() -> int:
    stage_seconds: dict[str, float] = {}
    start = last = time.perf_counter()
    current = None
    process = subprocess.Popen(
        ["dvc", "repro", "--force"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    for line in process.stdout:
        sys.stdout.write(line)
        if line.startswith("Running stage '"):
            now = time.perf_counter()
            if current:
                stage_seconds[current] = round(now - last, 1)
            current, last = line.split("'")[1], now
    code = process.wait()
    end = time.perf_counter()
    if current:
        stage_seconds[current] = round(end - last, 1)
    if code != 0:
        print(f"dvc repro failed with exit code {code}; nothing recorded", file=sys.stderr)
        return code
    record = {
        "command": "dvc repro --force",
        "wall_seconds": round(end - start, 1),
        "stage_seconds": stage_seconds,
        "machine": describe(),
        "date": time.strftime("%Y-%m-%d"),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(record, indent=2) + "\n")
    print(f"full repro: {record['wall_seconds'] / 60:.1f} min -> {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
