"""A pipeline's files, as its ``dvc.yaml`` declares them (``vars: - paths: ...``), for the user
commands: the root pipeline's (``.``) or Fashion-MNIST's (``fashion``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.data import DataError

PIPELINE_FILE = "dvc.yaml"
PARAMS_FILE = "params.yaml"


class ScoreError(DataError):
    """A model, name or pipeline file a command needs is missing or unfit; the message names it."""


@dataclass(frozen=True)
class PipelineFiles:
    """The files of the pipeline in ``root``: ``path(key)`` is the ``paths.<key>`` of its dvc.yaml."""

    root: Path
    paths: dict[str, str]

    @classmethod
    def read(cls, root: str | Path) -> PipelineFiles:
        root = Path(root)
        source = root / PIPELINE_FILE
        if not source.is_file():
            raise ScoreError(f"{source}: not found; --root must be a pipeline's folder (., or fashion)")
        try:
            declared = yaml.safe_load(source.read_text()) or {}
        except yaml.YAMLError as error:
            raise ScoreError(f"{source}: not valid YAML ({error})") from None
        paths = {}
        for item in declared.get("vars") or []:
            if isinstance(item, dict) and isinstance(item.get("paths"), dict):
                paths.update(item["paths"])
        if not paths:
            raise ScoreError(f"{source}: no `vars: - paths:` mapping (where the pipeline's files are)")
        return cls(root, {str(key): str(value) for key, value in paths.items()})

    def path(self, key: str) -> Path:
        if key not in self.paths:
            raise ScoreError(
                f"{self.root / PIPELINE_FILE}: no paths.{key} in its vars; it declares {sorted(self.paths)}"
            )
        return self.root / self.paths[key]

    @property
    def params(self) -> Path:
        return self.root / PARAMS_FILE

    def maker(self, path: Path) -> str | None:
        """The ``dvc repro`` target of the stage of this pipeline that writes ``path``, if any: the
        stage's name, with its dvc.yaml in front when the pipeline is not the working directory's
        (``fashion/dvc.yaml:noise``)."""
        from dvc.repo import Repo  # only when a file is missing: DVC takes a second to load

        try:
            repo = Repo(str(self.root), uninitialized=True)
            outs = repo.find_outs_by_path(str(Path(path).resolve()), strict=False)
        except Exception:  # an unreadable dvc.yaml or a path outside it: no stage to name
            return None
        if not outs:
            return None
        name = outs[0].stage.name
        here = self.root.resolve() == Path.cwd().resolve()
        return name if here else f"{self.root / PIPELINE_FILE}:{name}"

    def missing(self, path: Path) -> str:
        """``path`` and how to make it, for an error message."""
        stage = self.maker(path)
        return f"{path} (make it with `dvc repro {stage}`)" if stage else f"{path} (no stage writes it)"
