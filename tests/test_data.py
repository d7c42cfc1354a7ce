"""Loading and validating MNIST-layout data (npz and IDX) and the validation split."""

from __future__ import annotations

import gzip
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from pipeline.data import (
    IDX_STEMS,
    SPLITS,
    DataError,
    class_names,
    download,
    find_local_source,
    read_idx,
    read_local,
    split_validation,
    to_float,
)
from tests.conftest import tiny_mnist


def idx_bytes(array: np.ndarray) -> bytes:
    """Big-endian IDX encoding of a uint8 array: magic 0x0000080<ndim>, then the dims."""
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_idx_dir(directory: Path, arrays: dict[str, np.ndarray], gz: bool = False) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for key, stem in IDX_STEMS.items():
        raw = idx_bytes(arrays[key])
        if gz:
            (directory / f"{stem}.gz").write_bytes(gzip.compress(raw))
        else:
            (directory / stem).write_bytes(raw)
    return directory


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez(path, **arrays)
    return path


def with_pixel(images: np.ndarray, value) -> np.ndarray:
    images = images.copy()
    images[1, 2, 3] = value
    return images


def escaped(path) -> str:
    return re.escape(str(path))


# --- reading -------------------------------------------------------------------------------


def test_read_local_npz_returns_the_four_arrays(mnist_npz, mnist_arrays):
    arrays = read_local(mnist_npz)
    assert set(arrays) == set(SPLITS)
    for key in SPLITS:
        np.testing.assert_array_equal(arrays[key], mnist_arrays[key])
    assert arrays["x_train"].shape == (200, 28, 28)
    assert arrays["y_test"].shape == (50,)


def test_idx_header_layout():
    raw = idx_bytes(np.zeros((3, 28, 28), np.uint8))
    assert raw[:4] == b"\x00\x00\x08\x03"
    assert struct.unpack(">III", raw[4:16]) == (3, 28, 28)
    assert len(raw) == 16 + 3 * 28 * 28
    assert idx_bytes(np.zeros(5, np.uint8))[:8] == b"\x00\x00\x08\x01\x00\x00\x00\x05"


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_read_local_idx_directory(tmp_path, mnist_arrays, gz):
    directory = write_idx_dir(tmp_path / "mnist", mnist_arrays, gz=gz)
    arrays = read_local(directory)
    assert set(arrays) == set(SPLITS)
    for key in SPLITS:
        np.testing.assert_array_equal(arrays[key], mnist_arrays[key])
        assert arrays[key].dtype == np.uint8


def test_read_local_idx_directory_with_dotted_names(tmp_path, mnist_arrays):
    directory = tmp_path / "mnist"
    directory.mkdir()
    for key, stem in IDX_STEMS.items():  # the train-images.idx3-ubyte spelling
        (directory / stem.replace("-idx", ".idx")).write_bytes(idx_bytes(mnist_arrays[key]))
    np.testing.assert_array_equal(read_local(directory)["x_test"], mnist_arrays["x_test"])


def test_read_local_accepts_integer_valued_floats(tmp_path, mnist_arrays):
    arrays = {**mnist_arrays, "x_train": mnist_arrays["x_train"].astype(np.float32)}
    out = read_local(save_npz(tmp_path / "float.npz", arrays))
    np.testing.assert_array_equal(out["x_train"], mnist_arrays["x_train"])


def test_to_float_scales_to_unit_range():
    out = to_float(np.array([[0, 51, 255]], dtype=np.uint8))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.0, 0.2, 1.0]])


# --- clear errors --------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(DataError, match=f"{escaped(path)}: data file not found"):
        read_local(path)


def test_npz_missing_a_key(tmp_path, mnist_arrays):
    arrays = {k: v for k, v in mnist_arrays.items() if k != "y_test"}
    path = save_npz(tmp_path / "partial.npz", arrays)
    with pytest.raises(DataError, match=rf"{escaped(path)}: missing arrays \['y_test'\]; expected"):
        read_local(path)


@pytest.mark.parametrize(
    ("key", "change", "message"),
    [
        ("x_train", lambda x: x[:, :, :27], r"x_train has shape \(200, 28, 27\); expected \(N, 28, 28\)"),
        ("x_test", lambda x: x.reshape(50, 784), r"x_test has shape \(50, 784\); expected \(N, 28, 28\)"),
        ("x_train", lambda x: x[:0], "x_train is empty"),
        (
            "x_train",
            lambda x: with_pixel(x.astype(np.float32), np.nan),
            "x_train contains NaN or infinite pixels",
        ),
        (
            "x_train",
            lambda x: with_pixel(x.astype(np.float64), np.inf),
            "x_train contains NaN or infinite pixels",
        ),
        (
            "x_test",
            lambda x: with_pixel(x.astype(np.int16), 300),
            r"x_test pixels span \[0, 300\]; expected 0-255",
        ),
        ("x_train", lambda x: x.astype(np.int16) - 1, r"x_train pixels span \[-1, 254\]; expected 0-255"),
        ("x_train", lambda x: x.astype(np.float32) / 255, "x_train holds fractional pixels"),
        ("x_train", lambda x: x.astype(str), "x_train has dtype <U"),
        (
            "y_test",
            lambda y: np.where(np.arange(len(y)) == 3, 10, y),
            r"y_test labels span \[0, 10\]; expected 0-9",
        ),
        ("y_train", lambda y: y.astype(np.int8) - 1, r"y_train labels span \[-1, \d\]; expected 0-9"),
        ("y_train", lambda y: y[:-1], r"y_train has shape \(199,\); expected \(200,\) to match x_train"),
        ("y_test", lambda y: y[:, None], r"y_test has shape \(50, 1\); expected \(50,\)"),
        ("y_train", lambda y: y.astype(np.float32), "y_train has dtype float32; expected integer labels"),
    ],
)
def test_invalid_arrays_name_file_and_problem(tmp_path, mnist_arrays, key, change, message):
    arrays = {**mnist_arrays, key: change(mnist_arrays[key])}
    path = save_npz(tmp_path / "bad.npz", arrays)
    with pytest.raises(DataError, match=f"{escaped(path)}: {message}"):
        read_local(path)


def test_pixel_values_above_255_in_idx_layout_npz(tmp_path, mnist_arrays):
    x = mnist_arrays["x_train"].astype(np.int32)
    x[0, 0, 0] = 256
    path = save_npz(tmp_path / "big.npz", {**mnist_arrays, "x_train": x})
    with pytest.raises(DataError, match=r"x_train pixels span \[0, 256\]"):
        read_local(path)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_truncated_idx_file(tmp_path, mnist_arrays, gz):
    directory = write_idx_dir(tmp_path / "mnist", mnist_arrays)
    stem = IDX_STEMS["x_test"]
    raw = (directory / stem).read_bytes()[:-100]
    (directory / stem).unlink()
    path = directory / (f"{stem}.gz" if gz else stem)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    expected = r"IDX header promises shape \(50, 28, 28\) \(39200 bytes\) but the file holds 39100 bytes"
    with pytest.raises(DataError, match=f"{escaped(path)}: {expected}"):
        read_local(directory)


def test_idx_file_longer_than_header_promises(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.arange(5)) + b"\x01")
    with pytest.raises(DataError, match=r"promises shape \(5,\) \(5 bytes\) but the file holds 6 bytes"):
        read_idx(path)


def test_truncated_idx_header(tmp_path):
    path = tmp_path / "images"
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x02")
    with pytest.raises(DataError, match=f"{escaped(path)}: truncated IDX header"):
        read_idx(path)


@pytest.mark.parametrize(
    ("header", "message"),
    [(b"\x01\x02\x08\x03", "not an IDX file \\(bad magic number\\)"), (b"\x00\x00", "not an IDX file")],
)
def test_bad_idx_magic(tmp_path, mnist_arrays, header, message):
    directory = write_idx_dir(tmp_path / "mnist", mnist_arrays)
    path = directory / IDX_STEMS["y_train"]
    path.write_bytes(header + path.read_bytes()[4:] if len(header) == 4 else header)
    with pytest.raises(DataError, match=f"{escaped(path)}: {message}"):
        read_local(directory)


def test_idx_non_byte_data_type(tmp_path):
    path = tmp_path / "floats"
    path.write_bytes(b"\x00\x00\x0d\x01\x00\x00\x00\x01" + b"\x00" * 4)
    with pytest.raises(DataError, match=f"{escaped(path)}: IDX data type 0x0d is not unsigned byte"):
        read_idx(path)


def test_idx_gz_that_is_not_gzip(tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(idx_bytes(np.arange(5)))
    with pytest.raises(DataError, match=f"{escaped(path)}: cannot read IDX file"):
        read_idx(path)


def test_idx_gz_with_corrupt_deflate_stream(tmp_path):
    packed = gzip.compress(idx_bytes(np.arange(10)))
    path = tmp_path / "labels.gz"
    path.write_bytes(packed[:10] + b"\xff" * 8 + packed[18:])  # gzip header intact, data garbled
    with pytest.raises(DataError, match=escaped(path)):
        read_idx(path)


@pytest.mark.parametrize(
    "content", [bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8)), b"PK\x03\x04junk"]
)
def test_corrupt_npz(tmp_path, content):
    path = tmp_path / "corrupt.npz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=f"{escaped(path)}: not a readable .npz archive"):
        read_local(path)


def test_truncated_npz(tmp_path, mnist_npz):
    path = tmp_path / "truncated.npz"
    path.write_bytes(mnist_npz.read_bytes()[:5000])
    with pytest.raises(DataError, match=f"{escaped(path)}: not a readable .npz archive"):
        read_local(path)


def test_missing_idx_file_in_directory(tmp_path, mnist_arrays):
    directory = write_idx_dir(tmp_path / "mnist", mnist_arrays, gz=True)
    (directory / f"{IDX_STEMS['y_test']}.gz").unlink()
    with pytest.raises(DataError, match=f"{escaped(directory)}: no t10k-labels-idx1-ubyte\\[.gz\\]"):
        read_local(directory)


def test_empty_directory_names_the_first_missing_file(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no train-images-idx3-ubyte"):
        read_local(tmp_path / "empty")


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


# --- split_validation ----------------------------------------------------------------------


@pytest.fixture
def id_arrays() -> dict[str, np.ndarray]:
    """200 training images whose first pixel is their id; the label is id % 10."""
    arrays = tiny_mnist(n_train=200, n_test=30)
    ids = np.arange(200, dtype=np.uint8)
    arrays["x_train"][:, 0, 0] = ids
    arrays["y_train"] = (ids % 10).astype(np.uint8)
    return arrays


def test_split_validation_sizes_and_no_overlap(id_arrays):
    dataset = split_validation(id_arrays, validation_size=40, seed=0)
    assert dataset.x_train.shape == (160, 28, 28) and dataset.y_train.shape == (160,)
    assert dataset.x_val.shape == (40, 28, 28) and dataset.y_val.shape == (40,)
    train_ids, val_ids = dataset.x_train[:, 0, 0], dataset.x_val[:, 0, 0]
    assert len(set(train_ids)) == 160 and len(set(val_ids)) == 40
    assert set(train_ids).isdisjoint(val_ids)
    assert set(train_ids) | set(val_ids) == set(range(200))
    # labels travel with their images
    np.testing.assert_array_equal(dataset.y_train, train_ids % 10)
    np.testing.assert_array_equal(dataset.y_val, val_ids % 10)
    for array in (dataset.x_train, dataset.y_train, dataset.x_val, dataset.y_val, dataset.x_test):
        assert array.dtype == np.uint8


def test_split_validation_is_seeded(id_arrays):
    first = split_validation(id_arrays, 40, seed=3)
    again = split_validation(id_arrays, 40, seed=3)
    other = split_validation(id_arrays, 40, seed=4)
    np.testing.assert_array_equal(first.x_val, again.x_val)
    np.testing.assert_array_equal(first.x_train, again.x_train)
    assert set(first.x_val[:, 0, 0]) != set(other.x_val[:, 0, 0])
    # shuffled, not the first 40 images
    assert set(first.x_val[:, 0, 0]) != set(range(40))


def test_split_validation_leaves_test_set_untouched(id_arrays):
    dataset = split_validation(id_arrays, 40, seed=0)
    np.testing.assert_array_equal(dataset.x_test, id_arrays["x_test"])
    np.testing.assert_array_equal(dataset.y_test, id_arrays["y_test"])


@pytest.mark.parametrize("size", [200, 201])
def test_split_validation_too_large(id_arrays, size):
    with pytest.raises(
        DataError, match=f"validation_size={size} must be smaller than the training set \\(200"
    ):
        split_validation(id_arrays, size, seed=0)


# --- find_local_source ---------------------------------------------------------------------


def test_find_local_source_configured_path_missing(tmp_path):
    missing = tmp_path / "missing.npz"
    with pytest.raises(
        DataError, match=f"{escaped(missing)}: data file not found \\(params.yaml data.path\\)"
    ):
        find_local_source(str(missing), [])


def test_find_local_source_configured_path_wins(tmp_path):
    configured = tmp_path / "mine.npz"
    configured.touch()
    other = tmp_path / "other.npz"
    other.touch()
    assert find_local_source(str(configured), [str(other)]) == configured


def test_find_local_source_search_order(tmp_path):
    first, second, third = (tmp_path / name for name in ("a.npz", "b.npz", "c"))
    second.touch()
    third.mkdir()
    assert find_local_source(None, [str(first), str(second), str(third)]) == second
    assert find_local_source(None, [str(third), str(second)]) == third


def test_find_local_source_none_found(tmp_path):
    assert find_local_source(None, [str(tmp_path / "a.npz"), str(tmp_path / "b")]) is None
    assert find_local_source(None, []) is None


def test_find_local_source_expands_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "mnist.npz").touch()
    assert find_local_source(None, ["~/nope.npz", "~/mnist.npz"]) == tmp_path / "mnist.npz"
    assert find_local_source("~/mnist.npz", []) == tmp_path / "mnist.npz"


def test_idx_with_zero_dimensions_is_named(tmp_path):
    path = tmp_path / "empty-idx"
    path.write_bytes(b"\x00\x00\x08\x00")
    with pytest.raises(DataError, match=f"{escaped(path)}: IDX header declares zero dimensions"):
        read_idx(path)


def test_class_names_per_dataset():
    assert class_names("mnist") == tuple("0123456789")
    fashion = class_names("fashion_mnist")
    assert len(fashion) == 10 and fashion[0] == "T-shirt/top" and fashion[9] == "Ankle boot"


@pytest.mark.parametrize("reader", [class_names, download])
def test_an_unknown_dataset_is_named_before_any_download(reader):
    with pytest.raises(
        DataError, match=r"unknown dataset 'cifar10'; expected one of \['mnist', 'fashion_mnist'\]"
    ):
        reader("cifar10")


def test_a_fashion_idx_directory_reads_like_mnist(tmp_path):
    """Fashion-MNIST ships the same four IDX names (the Debian package installs them gzipped)."""
    arrays = tiny_mnist(n_train=30, n_test=10, seed=3)
    directory = write_idx_dir(tmp_path / "fashion", arrays, gz=True)
    loaded = read_local(directory)
    for key in SPLITS:
        np.testing.assert_array_equal(loaded[key], arrays[key])
