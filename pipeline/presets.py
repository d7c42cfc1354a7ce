"""Apply a named preset (``presets/<name>.yaml``, a partial params file) to params.yaml.

    python -m pipeline.presets full      # then: dvc exp run -n full; git checkout params.yaml

A preset is deep-merged into params.yaml (mappings merge key by key; any other value,
lists included, replaces); the result is validated before params.yaml is rewritten, so a bad
preset leaves params.yaml untouched.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

import yaml

from pipeline.io import write_text
from pipeline.params import ParamsError, parse_params

PRESETS = Path(__file__).resolve().parents[1] / "presets"


def deep_merge(base: Mapping, overlay: Mapping) -> dict:
    """``base`` with ``overlay`` merged in; neither argument is modified."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def apply_preset(name: str, params_path: str | Path = "params.yaml", presets: Path = PRESETS) -> dict:
    """Merge ``presets/<name>.yaml`` into ``params_path`` and return the validated result.

    A preset's ``reference`` section is the reference workflow's own (:mod:`pipeline.reference`)
    and is left out."""
    path = presets / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in presets.glob("*.yaml"))
        raise ParamsError(f"{path}: no such preset; available: {known}")
    overlay = yaml.safe_load(path.read_text()) or {}
    overlay.pop("reference", None)
    merged = deep_merge(yaml.safe_load(Path(params_path).read_text()), overlay)
    parse_params(merged, f"{params_path} + {path.name}")
    write_text(params_path, yaml.safe_dump(merged, sort_keys=False))
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="preset name: a file presets/<name>.yaml")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    try:
        apply_preset(args.name, args.params)
    except ParamsError as error:
        print(error, file=sys.stderr)
        return 2
    print(f"applied presets/{args.name}.yaml to {args.params}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
