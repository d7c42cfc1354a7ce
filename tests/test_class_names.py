"""The dataset's class names in the report: its confusion matrices and its opening line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline import plots
from pipeline.data import class_names
from pipeline.report import dataset_text


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_confusion_matrices_label_the_classes(tmp_path, monkeypatch, dataset):
    true, predicted = np.indices((10, 10))
    confusion = pd.DataFrame(
        {
            "denoiser": "none",
            "classifier": "clean",
            "true": true.ravel(),
            "predicted": predicted.ravel(),
            "count": np.eye(10, dtype=int).ravel() * 5,
        }
    )
    figures = []
    monkeypatch.setattr(plots.plt, "close", figures.append)
    plots.confusion_matrices(confusion, "title", tmp_path / "confusion.png", class_names(dataset))
    (axis, *_) = figures[0].axes
    assert [t.get_text() for t in axis.get_xticklabels()] == list(class_names(dataset))
    assert [t.get_text() for t in axis.get_yticklabels()] == list(class_names(dataset))
    assert axis.get_title() == "none (100.0%)" and (tmp_path / "confusion.png").stat().st_size > 0


def test_the_report_names_the_dataset_and_its_classes():
    assert dataset_text("mnist") == "the MNIST test set, classes: the digits 0-9"
    fashion = dataset_text("fashion_mnist")
    assert fashion.startswith("the Fashion-MNIST test set, classes: 0 T-shirt/top, 1 Trouser")
    assert fashion.endswith("8 Bag, 9 Ankle boot")
