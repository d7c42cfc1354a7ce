"""Loading and validating MNIST-layout data (MNIST, Fashion-MNIST), and carving the validation split.

Two local formats are read with plain NumPy (Keras' own loader checks a hash and would
reject a re-packed file): a Keras-layout ``.npz`` (x_train, y_train, x_test, y_test) or a
directory holding the four standard IDX files (``train-images-idx3-ubyte[.gz]`` ...; both
datasets use the same names). Without a local file, :func:`download` uses Keras' own loader
(``keras.datasets.mnist`` or ``keras.datasets.fashion_mnist``).
"""

from __future__ import annotations

import gzip
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPLITS = ("x_train", "y_train", "x_test", "y_test")
IDX_STEMS = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
# params.yaml data.dataset -> the class names, in label order (Xiao et al. 2017 for Fashion-MNIST).
CLASS_NAMES = {
    "mnist": tuple(str(digit) for digit in range(NUM_CLASSES)),
    "fashion_mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
}


class DataError(ValueError):
    """The data file is missing, unreadable or not MNIST-shaped; the message names it."""


@dataclass(frozen=True)
class Dataset:
    """uint8 images (N, 28, 28) and uint8 labels (N,) for the three splits."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Read a Keras-layout MNIST ``.npz``."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in SPLITS if key not in archive.files]
            if missing:
                raise DataError(
                    f"{path}: missing arrays {missing}; expected {list(SPLITS)}, found {archive.files}"
                )
            return {key: archive[key] for key in SPLITS}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: not a readable .npz archive ({error})") from None


def _idx_file(directory: Path, stem: str) -> Path:
    for name in (stem, f"{stem}.gz", stem.replace("-idx", ".idx")):
        if (directory / name).is_file():
            return directory / name
    raise DataError(f"{directory}: no {stem}[.gz] (an MNIST IDX directory needs {list(IDX_STEMS.values())})")


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) of unsigned bytes."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError
        raise DataError(f"{path}: cannot read IDX file ({error})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    if raw[2] != 0x08:
        raise DataError(f"{path}: IDX data type 0x{raw[2]:02x} is not unsigned byte (0x08)")
    ndim = raw[3]
    if ndim == 0:
        raise DataError(f"{path}: IDX header declares zero dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape)) if shape else 0
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: IDX header promises shape {shape} ({expected} bytes) "
            f"but the file holds {len(raw) - header} bytes (truncated or corrupt)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_idx_dir(directory: Path) -> dict[str, np.ndarray]:
    """Read the four MNIST IDX files from a directory."""
    return {key: read_idx(_idx_file(directory, stem)) for key, stem in IDX_STEMS.items()}


def read_local(path: str | Path) -> dict[str, np.ndarray]:
    """Read a local MNIST copy (``.npz`` or IDX directory) and validate it."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: data file not found")
    arrays = read_idx_dir(path) if path.is_dir() else read_npz(path)
    validate(arrays, str(path))
    return arrays


def validate(arrays: dict[str, np.ndarray], source: str) -> None:
    """Check shapes, dtypes, label range and pixel range; raise DataError naming the array."""
    for split in ("train", "test"):
        x, y = np.asarray(arrays[f"x_{split}"]), np.asarray(arrays[f"y_{split}"])
        where = f"{source}: x_{split}"
        if x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE:
            raise DataError(f"{where} has shape {x.shape}; expected (N, 28, 28)")
        if x.shape[0] == 0:
            raise DataError(f"{where} is empty")
        if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
            raise DataError(f"{where} has dtype {x.dtype}; expected uint8 pixels 0-255")
        if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            raise DataError(f"{where} contains NaN or infinite pixels")
        if x.min() < 0 or x.max() > 255:
            raise DataError(f"{where} pixels span [{x.min()}, {x.max()}]; expected 0-255")
        if np.issubdtype(x.dtype, np.floating) and not np.array_equal(x, np.round(x)):
            raise DataError(f"{where} holds fractional pixels; expected integer 0-255 values")
        where = f"{source}: y_{split}"
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{where} has shape {y.shape}; expected ({len(x)},) to match x_{split}")
        if not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{where} has dtype {y.dtype}; expected integer labels 0-9")
        if y.min() < 0 or y.max() >= NUM_CLASSES:
            raise DataError(f"{where} labels span [{y.min()}, {y.max()}]; expected 0-9")


def class_names(dataset: str) -> tuple[str, ...]:
    """The class names of ``dataset`` (a ``CLASS_NAMES`` key), in label order."""
    if dataset not in CLASS_NAMES:
        raise DataError(f"unknown dataset {dataset!r}; expected one of {list(CLASS_NAMES)}")
    return CLASS_NAMES[dataset]


def download(dataset: str = "mnist") -> dict[str, np.ndarray]:
    """Download ``dataset`` with Keras' own loader (needs internet)."""
    import keras

    class_names(dataset)  # an unknown name fails before any download
    (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, dataset).load_data()
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    validate(arrays, f"keras.datasets.{dataset}")
    return arrays


def find_local_source(path: str | None, search_paths: list[str]) -> Path | None:
    """The configured path if set (it must exist), else the first search path that exists."""
    if path is not None:
        if not Path(path).expanduser().exists():
            raise DataError(f"{path}: data file not found (params.yaml data.path)")
        return Path(path).expanduser()
    for candidate in search_paths:
        if Path(candidate).expanduser().exists():
            return Path(candidate).expanduser()
    return None


def split_validation(arrays: dict[str, np.ndarray], validation_size: int, seed: int) -> Dataset:
    """Carve a seeded validation split from the training set; the test set is untouched."""
    n_train = len(arrays["x_train"])
    if validation_size >= n_train:
        raise DataError(
            f"data.validation_size={validation_size} must be smaller than the training set ({n_train} images)"
        )
    order = np.random.default_rng(seed).permutation(n_train)
    val, train = order[:validation_size], order[validation_size:]
    x, y = arrays["x_train"].astype(np.uint8), arrays["y_train"].astype(np.uint8)
    return Dataset(
        x_train=x[train],
        y_train=y[train],
        x_val=x[val],
        y_val=y[val],
        x_test=arrays["x_test"].astype(np.uint8),
        y_test=arrays["y_test"].astype(np.uint8),
    )


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [0, 1]."""
    return images.astype(np.float32) / 255.0
