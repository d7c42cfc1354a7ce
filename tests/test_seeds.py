"""The seeds workflow's resume rule (keep only complete seeds retrained from HEAD's code on this
CPU) and its host rule (on another CPU than the committed run's, its own seed is retrained too)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline import seeds
from pipeline.data import DataError

HOST = "AMD EPYC (family 25 model 1, avx2)"

DEFENSES = [("unet", "clean"), ("none", "noise_aug")]


def rows(seed, commit, defenses=DEFENSES, host=HOST, retrained=True):
    return [
        {"train_seed": seed, "denoiser": d, "classifier": c, "mean_accuracy": 0.9, "commit": commit}
        | {"host": host, "retrained": retrained}
        for d, c in defenses
    ]


def test_resume_keeps_complete_seeds_from_the_same_code(tmp_path, monkeypatch):
    monkeypatch.setattr(seeds, "same_code", lambda label: label == "abc1234")
    path = tmp_path / "seeds.csv"
    table = rows(42, "abc1234") + rows(1, "abc1234") + rows(2, "old5678") + rows(3, "abc1234", DEFENSES[:1])
    table += rows(4, "abc1234", [*DEFENSES, ("tv", "clean")]) + rows(6, "abc1234", host="Intel(R) Xeon(R)")
    table += rows(7, "abc1234", retrained=False)
    pd.DataFrame(table).to_csv(path, index=False)
    kept = seeds.resumable(path, [1, 2, 3, 4, 5, 6, 7], DEFENSES, HOST)
    # 2: other code; 3: a defense missing; 5: never run; 6: another CPU; 7: copied from a run, not
    # retrained; 4 keeps the asked-for defenses
    assert sorted(set(kept["train_seed"])) == [1, 4]
    assert set(zip(kept["denoiser"], kept["classifier"], strict=True)) == set(DEFENSES) and len(kept) == 4
    assert seeds.resumable(tmp_path / "absent.csv", [1], DEFENSES, HOST).empty
    pd.DataFrame(table).drop(columns="host").to_csv(path, index=False)  # rows from before hosts
    assert seeds.resumable(path, [1], DEFENSES, HOST).empty


def test_a_dirty_or_empty_label_is_never_the_same_code():
    assert not seeds.same_code("abc1234-dirty")
    assert not seeds.same_code("")


def test_an_all_digit_hash_is_read_as_a_hash(tmp_path, monkeypatch):
    monkeypatch.setattr(seeds, "same_code", lambda label: label == "0392516")
    path = tmp_path / "seeds.csv"
    pd.DataFrame(rows(1, "0392516")).to_csv(path, index=False)
    kept = seeds.resumable(path, [1], DEFENSES, HOST)
    assert list(kept["commit"]) == ["0392516", "0392516"]


def test_the_rows_depend_on_the_code_the_seeds_rerun_not_the_report():
    paths = seeds.code_paths()
    assert {"stages/train_classifier.py", "stages/train_guided.py", "pipeline/evaluation.py"} <= set(paths)
    assert {"pipeline/seeds.py", "params.yaml", "dvc.yaml"} <= set(paths)
    assert "stages/report.py" not in paths and "pipeline/verdicts.py" not in paths


def test_on_another_cpu_than_the_committed_runs_its_own_seed_is_retrained_first(tmp_path, caplog):
    record = tmp_path / "repro.json"
    record.write_text(json.dumps({"machine": {"cpu": "Intel(R) Xeon(R) Processor", "cores": 2}}))
    recorded = seeds.recorded_host(record)
    assert recorded == "Intel(R) Xeon(R) Processor"  # a record from before the features were kept
    assert seeds.seeds_to_train(42, [1, 2], HOST, recorded, record) == [42, 1, 2]
    assert "train_seed 42 is retrained here" in caplog.text and "'Intel(R) Xeon(R) Processor'" in caplog.text
    intel = "Intel(R) Xeon(R) Processor (family 6 model 85, avx512)"
    assert seeds.seeds_to_train(42, [1, 2], intel, recorded, record) == [1, 2]  # matched by name
    zen4 = {"cpu": "AMD EPYC", "cpu_features": "family 25 model 17, avx512"}
    record.write_text(json.dumps({"machine": zen4}))
    assert seeds.seeds_to_train(7, [3], HOST, seeds.recorded_host(record), record) == [7, 3]  # other kernels
    assert seeds.seeds_to_train(42, [1], HOST, None, record) == [1]  # no record: copied, with a warning
    assert "host is unknown" in caplog.text
    record.write_text("{}")
    with pytest.raises(DataError, match="machine.cpu"):
        seeds.recorded_host(record)
