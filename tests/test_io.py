"""Atomic writes and clear errors when reading the pipeline's own artifacts."""

from __future__ import annotations

import json
import os
import re
import stat

import numpy as np
import pytest

from pipeline.data import DataError, Dataset
from pipeline.io import (
    atomic_path,
    load_dataset,
    read_npz_arrays,
    save_dataset,
    write_json,
    write_npz,
    write_text,
)


class Boom(RuntimeError):
    pass


def test_atomic_path_replaces_target_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_path(target) as tmp:
        assert tmp != target and tmp.parent == target.parent
        assert tmp.suffix == ".txt"
        tmp.write_text("new")
        assert target.read_text() == "old"  # nothing visible until the block ends
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_path_leaves_target_untouched_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("precious")
    with pytest.raises(Boom):
        with atomic_path(target) as tmp:
            tmp.write_text("half-writ")
            raise Boom
    assert target.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_path_error_without_previous_file_creates_nothing(tmp_path):
    target = tmp_path / "sub" / "out.npz"
    with pytest.raises(Boom):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise Boom
    assert not target.exists()
    assert list((tmp_path / "sub").iterdir()) == []


def test_atomic_path_custom_suffix_and_creates_parents(tmp_path):
    target = tmp_path / "a" / "b" / "model"
    with atomic_path(target, suffix=".keras") as tmp:
        assert tmp.name.endswith(".keras")
        tmp.write_text("x")
    assert target.read_text() == "x"


def test_atomic_path_removes_temp_files_a_killed_writer_left(tmp_path):
    target = tmp_path / "models" / "unet.keras"
    target.parent.mkdir()
    stale = target.parent / ".unet.keras.abc123.keras"  # what SIGKILL inside atomic_path leaves
    stale.write_bytes(b"partial")
    other = target.parent / ".cae.keras.xyz.keras"  # another output's temp file is not touched
    other.write_bytes(b"x")
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"model")
    assert target.read_bytes() == b"model"
    assert sorted(p.name for p in target.parent.iterdir()) == [".cae.keras.xyz.keras", "unet.keras"]


def test_write_text_and_json_round_trip(tmp_path):
    write_text(tmp_path / "note.md", "# hi\n")
    assert (tmp_path / "note.md").read_text() == "# hi\n"
    data = {"b": 1, "a": {"x": [1.5, None, "s"]}, "inf": 0.25}
    write_json(tmp_path / "out" / "m.json", data)
    text = (tmp_path / "out" / "m.json").read_text()
    assert json.loads(text) == data
    assert list(json.loads(text)) == ["b", "a", "inf"]  # insertion order kept
    assert text.endswith("}\n")


def test_write_json_failure_keeps_previous_file(tmp_path):
    target = tmp_path / "m.json"
    write_json(target, {"ok": True})
    with pytest.raises(TypeError):
        write_json(target, {"bad": object()})
    assert json.loads(target.read_text()) == {"ok": True}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_write_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "levels": np.array([0.0, 0.1, 0.5]),
        "images": rng.random((3, 2, 28, 28)).astype(np.float32),
        "labels": rng.integers(0, 10, 7).astype(np.uint8),
    }
    path = tmp_path / "grid.npz"
    write_npz(path, **arrays)
    out = read_npz_arrays(path, ("levels", "images", "labels"))
    for key, value in arrays.items():
        assert out[key].dtype == value.dtype
        np.testing.assert_array_equal(out[key], value)
    assert set(read_npz_arrays(path, ("levels",))) == {"levels"}


def test_dataset_round_trip(tmp_path):
    rng = np.random.default_rng(1)

    def images(n):
        return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)

    def labels(n):
        return rng.integers(0, 10, n, dtype=np.uint8)

    dataset = Dataset(images(5), labels(5), images(2), labels(2), images(3), labels(3))
    save_dataset(tmp_path / "prepared.npz", dataset)
    loaded = load_dataset(tmp_path / "prepared.npz")
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(dataset, name))


def test_read_npz_arrays_truncated_file(tmp_path):
    path = tmp_path / "grid.npz"
    write_npz(path, images=np.random.default_rng(0).random((4, 28, 28)))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match=f"{re.escape(str(path))}: corrupt or truncated .npz"):
        read_npz_arrays(path, ("images",))


def test_read_npz_arrays_garbage_file(tmp_path):
    path = tmp_path / "grid.npz"
    path.write_bytes(b"not an archive at all" * 10)
    with pytest.raises(DataError, match=f"{re.escape(str(path))}: corrupt or truncated .npz"):
        read_npz_arrays(path, ("images",))


def test_read_npz_arrays_missing_file_and_key(tmp_path):
    path = tmp_path / "grid.npz"
    with pytest.raises(DataError, match=f"{re.escape(str(path))}: not found \\(run the stage"):
        read_npz_arrays(path, ("images",))
    write_npz(path, images=np.zeros(3))
    with pytest.raises(DataError, match=f"{re.escape(str(path))}: missing arrays \\['levels'\\]"):
        read_npz_arrays(path, ("images", "levels"))


def test_atomic_write_gives_umask_permissions_not_mkstemp_0600(tmp_path):
    umask = os.umask(0o022)
    try:
        write_text(tmp_path / "report.md", "x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "report.md").stat().st_mode) == 0o644
