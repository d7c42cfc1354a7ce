"""Shared fixtures: tiny MNIST-shaped data made on the fly (the real dataset is never used)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def tiny_mnist(n_train: int = 200, n_test: int = 50, seed: int = 0) -> dict[str, np.ndarray]:
    """MNIST-layout arrays: each label draws a bright bar at its own row on a dark background."""
    rng = np.random.default_rng(seed)

    def split(n):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        images = rng.integers(0, 30, size=(n, 28, 28)).astype(np.uint8)
        for image, label in zip(images, labels, strict=True):
            image[4 + 2 * label : 6 + 2 * label, 4:24] = 255
        return images, labels

    x_train, y_train = split(n_train)
    x_test, y_test = split(n_test)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


@pytest.fixture
def mnist_arrays() -> dict[str, np.ndarray]:
    return tiny_mnist()


@pytest.fixture
def mnist_npz(tmp_path, mnist_arrays):
    path = tmp_path / "mnist.npz"
    np.savez(path, **mnist_arrays)
    return path


def pytest_collection_modifyitems(config, items):
    """Files with slow (end-to-end) tests first, so that the xdist workers start on them."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
