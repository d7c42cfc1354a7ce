"""The user commands answer --help quickly, without loading TensorFlow."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

PROBE = """
import sys
from pipeline.commands import {module} as command
try:
    command.main([{args}"--help"])
except SystemExit as done:
    assert done.code == 0, done.code
loaded = [name for name in ("tensorflow", "keras") if name in sys.modules]
assert not loaded, f"--help loaded {{loaded}}"
"""


@pytest.mark.parametrize(("module", "args"), [("bench", '"score", '), ("bench", ""), ("classify", "")])
def test_help_answers_in_under_two_seconds_without_tensorflow(module, args):
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module, args=args)], capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout and "--" in done.stdout
    assert elapsed < 2.0, f"{module} --help took {elapsed:.2f} s"


def test_tensorflow_logs_are_quiet_before_it_loads(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    done = subprocess.run(
        [sys.executable, "-c", "import os, pipeline.commands; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"],
        capture_output=True,
        text=True,
    )
    assert done.stdout.strip() == "2"
