"""benchmarks.time_repro: a pipeline folder without a dvc.yaml is refused before anything runs."""

from __future__ import annotations

import subprocess
import sys


def test_a_folder_without_dvc_yaml_is_refused(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.time_repro", "--pipeline", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert f"--pipeline {tmp_path}: no dvc.yaml there" in result.stderr
