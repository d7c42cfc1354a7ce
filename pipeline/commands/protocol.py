"""The protocol version: what fixes the images a model is scored on and the input contract.

Two model cards with the same version were scored on the same images under the same contract.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

from pipeline.params import Params

# The params sections (dotted paths into params.yaml) and the modules whose source fix the images.
PROTOCOL_SECTIONS = ("seed", "noise", "evaluate.noise_test_sizes", "heldout")
PROTOCOL_MODULES = ("pipeline.noise", "pipeline.corruptions", "pipeline.heldout", "pipeline.restorer")


def protocol_sections(params: Params) -> dict:
    """{section: value} of :data:`PROTOCOL_SECTIONS` in the validated ``params``."""
    dumped = params.model_dump(mode="json")
    sections = {}
    for section in PROTOCOL_SECTIONS:
        value = dumped
        for key in section.split("."):
            value = value[key]
        sections[section] = value
    return sections


def module_source(module: str) -> Path:
    """The source file of ``module`` (found without importing it)."""
    return Path(importlib.util.find_spec(module).origin)


def protocol_version(params: Params, sources: dict[str, Path] | None = None) -> str:
    """12 hex digits of the sha256 of :data:`PROTOCOL_SECTIONS` (as validated, so comments and
    defaults spelled out do not count) and of the source text of :data:`PROTOCOL_MODULES`, each
    under its file name, so a module that moves keeps the version. ``sources``: {module: file}
    to hash instead of the installed ones."""
    sources = sources or {module: module_source(module) for module in PROTOCOL_MODULES}
    digest = hashlib.sha256(json.dumps(protocol_sections(params), sort_keys=True).encode())
    for module in PROTOCOL_MODULES:
        path = Path(sources[module])
        digest.update(b"\0" + path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]
