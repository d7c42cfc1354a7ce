"""Every DVC stage lists, as deps, the pipeline modules its script imports (directly or through
other pipeline modules), so a change to any of them reruns the stage."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def module_file(module: str, root: Path = ROOT) -> Path:
    return root / (module.replace(".", "/") + ".py")


def pipeline_imports(path: Path, root: Path = ROOT) -> set[str]:
    """The ``pipeline`` modules ``path`` imports (``from pipeline import x`` counts ``pipeline.x``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "pipeline":
            if node.module == "pipeline":
                found |= {f"pipeline.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "pipeline"}
    return {module for module in found if module_file(module, root).is_file()}


def import_closure(path: Path, root: Path = ROOT) -> set[str]:
    """Files (relative to ``root``) of every pipeline module ``path`` reaches through imports."""
    seen: set[str] = set()
    todo = list(pipeline_imports(path, root))
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo += pipeline_imports(module_file(module, root), root)
    return {module_file(module, root).relative_to(root).as_posix() for module in seen}


def stage_scripts(dvc_yaml: Path) -> dict[str, tuple[Path, set[str]]]:
    """{stage: (script, deps)} for every stage whose command runs ``python -m stages.NAME``."""
    root = dvc_yaml.parent
    out = {}
    for name, stage in yaml.safe_load(dvc_yaml.read_text())["stages"].items():
        stage = stage.get("do", stage)
        match = re.search(r"python -m (stages\.\w+)", str(stage["cmd"]))
        if match:
            deps = {str(dep) for dep in stage.get("deps", [])}
            out[name] = (module_file(match.group(1), root), deps)
    return out


def missing_deps(dvc_yaml: Path) -> dict[str, list[str]]:
    root = dvc_yaml.parent
    missing = {}
    for name, (script, deps) in stage_scripts(dvc_yaml).items():
        need = import_closure(script, root) | {script.relative_to(root).as_posix()}
        lacking = sorted(need - deps)
        if lacking:
            missing[name] = lacking
    return missing


def test_every_stage_lists_the_modules_it_imports():
    assert missing_deps(ROOT / "dvc.yaml") == {}


def test_the_check_finds_a_missing_transitive_dep(tmp_path):
    (tmp_path / "stages").mkdir()
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "stages/run.py").write_text("from pipeline.a import f\n")
    (tmp_path / "pipeline/a.py").write_text("from pipeline import b\n")
    (tmp_path / "pipeline/b.py").write_text("import numpy\n")
    stage = {"cmd": "python -m stages.run", "deps": ["stages/run.py", "pipeline/a.py"]}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"run": stage}}))
    assert missing_deps(tmp_path / "dvc.yaml") == {"run": ["pipeline/b.py"]}


@pytest.mark.parametrize("name", ["train_denoiser", "evaluate"])
def test_closure_follows_pipeline_imports(name):
    script, _ = stage_scripts(ROOT / "dvc.yaml")[name]
    assert "pipeline/params.py" in import_closure(script)


def cached_outputs(dvc_yaml: Path) -> set[str]:
    """Outputs that DVC keeps in its cache (not in git): a fresh clone does not have them."""
    cached = set()
    for stage in yaml.safe_load(dvc_yaml.read_text())["stages"].values():
        for out in stage.get("do", stage).get("outs", []):
            path, options = (out, {}) if isinstance(out, str) else next(iter(out.items()))
            if (options or {}).get("cache", True):
                cached.add(str(path))
    return cached


def report_inputs_in_cache(dvc_yaml: Path) -> list[str]:
    report = yaml.safe_load(dvc_yaml.read_text())["stages"]["report"]
    outputs = cached_outputs(dvc_yaml)
    return sorted(str(dep) for dep in report["deps"] if str(dep) in outputs)


@pytest.mark.parametrize("dvc_yaml", ["dvc.yaml", "fashion/dvc.yaml"])
def test_the_report_reruns_from_a_fresh_clone(dvc_yaml):
    """Every input of the report that a stage produces is committed, so `dvc repro -s report`
    (after results/seeds.csv or results/reference.csv change) needs no cache of the last run."""
    assert report_inputs_in_cache(ROOT / dvc_yaml) == []


def test_the_fresh_clone_check_finds_a_cached_input(tmp_path):
    stages = {
        "evaluate": {"cmd": "x", "outs": ["results/correct.npz", {"results/scores.csv": {"cache": False}}]},
        "report": {"cmd": "y", "deps": ["results/correct.npz", "results/scores.csv"]},
    }
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    assert report_inputs_in_cache(tmp_path / "dvc.yaml") == ["results/correct.npz"]
