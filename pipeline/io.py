"""Atomic file writes and reads of the pipeline's own artifacts.

Every output is written to a temporary sibling and renamed into place, so an interrupted
stage never leaves a half-written file that a later stage or DVC's cache could pick up.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from pipeline.data import DataError, Dataset

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` on success.

    Temporary siblings left by an earlier writer that was killed outright (SIGKILL skips the
    cleanup below) are removed first: a stray file in a directory another stage depends on
    would change that directory's hash. Each output has one writing stage, so none is live.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*{glob.escape(suffix or path.suffix)}"):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_with(path: str | Path, writer: Callable[[Path], object]) -> None:
    """Call ``writer(tmp_path)`` and atomically move the result to ``path``."""
    with atomic_path(path) as tmp:
        writer(tmp)


def write_text(path: str | Path, text: str) -> None:
    write_with(path, lambda tmp: tmp.write_text(text))


def write_json(path: str | Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_npz(path: str | Path, **arrays: np.ndarray) -> None:
    def save(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    write_with(path, save)


def read_npz_arrays(path: str | Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Read named arrays from one of the pipeline's own .npz files, with a clear error."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: not found (run the stage that produces it: dvc repro)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in keys if key not in archive.files]
            if missing:
                raise DataError(f"{path}: missing arrays {missing}")
            return {key: archive[key] for key in keys}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: corrupt or truncated .npz ({error})") from None


def load_grids(
    noisy_dir: str | Path, expected: Mapping[str, Sequence[float]], n_images: int | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The noise stage's grids, {type: (levels, images[L, N, H, W])}, for the types and levels of
    ``expected`` (params.yaml's ``noise``); with ``n_images``, each must hold that many images per
    level. ``DataError`` naming the file and the stage to rerun otherwise."""
    grids = {}
    for kind, levels in expected.items():
        path = Path(noisy_dir) / f"{kind}.npz"
        arrays = read_npz_arrays(path, ("levels", "images"))
        if list(arrays["levels"]) != list(levels):
            raise DataError(
                f"{path} holds levels {list(arrays['levels'])} but params.yaml noise.{kind} is "
                f"{list(levels)}: rerun `dvc repro noise`"
            )
        if n_images is not None and arrays["images"].shape[1] != n_images:
            raise DataError(
                f"{path} holds {arrays['images'].shape[1]} images per level, but the test set has "
                f"{n_images}: rerun `dvc repro noise`"
            )
        grids[kind] = (arrays["levels"], arrays["images"])
    return grids


def save_dataset(path: str | Path, dataset: Dataset) -> None:
    write_npz(path, **asdict(dataset))


def load_dataset(path: str | Path) -> Dataset:
    keys = tuple(field.name for field in fields(Dataset))
    return Dataset(**read_npz_arrays(path, keys))
