"""The seeds workflow's resume rule: keep only complete seeds made from HEAD's code."""

from __future__ import annotations

import pandas as pd

from pipeline import seeds

DEFENSES = [("unet", "clean"), ("none", "noise_aug")]


def rows(seed, commit, defenses=DEFENSES):
    return [
        {"train_seed": seed, "denoiser": d, "classifier": c, "mean_accuracy": 0.9, "commit": commit}
        for d, c in defenses
    ]


def test_resume_keeps_complete_seeds_from_the_same_code(tmp_path, monkeypatch):
    monkeypatch.setattr(seeds, "same_code", lambda label: label == "abc1234")
    path = tmp_path / "seeds.csv"
    table = rows(42, "abc1234") + rows(1, "abc1234") + rows(2, "old5678") + rows(3, "abc1234", DEFENSES[:1])
    table += rows(4, "abc1234", [*DEFENSES, ("tv", "clean")])
    pd.DataFrame(table).to_csv(path, index=False)
    kept = seeds.resumable(path, [1, 2, 3, 4, 5], DEFENSES)
    # 2: other code; 3: a defense missing; 5: never run; 4 keeps only the asked-for defenses
    assert sorted(set(kept["train_seed"])) == [1, 4]
    assert set(zip(kept["denoiser"], kept["classifier"], strict=True)) == set(DEFENSES) and len(kept) == 4
    assert seeds.resumable(tmp_path / "absent.csv", [1], DEFENSES).empty


def test_a_dirty_or_empty_label_is_never_the_same_code():
    assert not seeds.same_code("abc1234-dirty")
    assert not seeds.same_code("")


def test_an_all_digit_hash_is_read_as_a_hash(tmp_path, monkeypatch):
    monkeypatch.setattr(seeds, "same_code", lambda label: label == "0392516")
    path = tmp_path / "seeds.csv"
    pd.DataFrame(rows(1, "0392516")).to_csv(path, index=False)
    kept = seeds.resumable(path, [1], DEFENSES)
    assert list(kept["commit"]) == ["0392516", "0392516"]


def test_the_rows_depend_on_the_code_the_seeds_rerun_not_the_report():
    paths = seeds.code_paths()
    assert {"stages/train_classifier.py", "stages/train_guided.py", "pipeline/evaluation.py"} <= set(paths)
    assert {"pipeline/seeds.py", "params.yaml", "dvc.yaml"} <= set(paths)
    assert "stages/report.py" not in paths and "pipeline/verdicts.py" not in paths
