"""The JSON and metric-key helpers every writer and reader of run results shares."""

import json

import pytest

from muppet_hf.io_utils import read_json, write_json
from muppet_hf.metric_keys import split_metric_keys


def test_write_json_replaces_the_file_whole_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "task_metrics.json"
    assert write_json(path, {"a": {"accuracy": 50.0}}) == path
    write_json(path, {"b": [1, 2]}, sort_keys=True)
    assert read_json(path) == {"b": [1, 2]} and path.read_text().endswith("\n")
    # A payload that is not JSON fails before anything is written: the old file stays as it was.
    with pytest.raises(TypeError, match="task_metrics.json"):
        write_json(path, {"b": object()})
    assert read_json(path) == {"b": [1, 2]}
    assert [entry.name for entry in tmp_path.iterdir()] == ["task_metrics.json"]


def test_write_json_keeps_the_old_file_when_the_rename_fails(tmp_path, monkeypatch):
    path = tmp_path / "finetune_metrics.json"
    path.write_text(json.dumps({"old": True}))

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr("muppet_hf.io_utils.os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_json(path, {"new": True})
    assert read_json(path) == {"old": True}
    assert [entry.name for entry in tmp_path.iterdir()] == ["finetune_metrics.json"]


def test_read_json_names_the_file_it_cannot_parse(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config.json: not valid JSON"):
        read_json(tmp_path / "config.json")


def test_split_metric_keys_takes_the_longest_task_and_drops_timings():
    metrics = {
        "eval_tiny_qa_f1": 80.0,
        "eval_tiny_qa_loss": 1.5,
        "eval_tiny_accuracy": 0.5,
        "eval_tiny_runtime": 0.1,
        "eval_tiny_samples_per_second": 9.0,
        "eval_tiny_steps_per_second": 3.0,
        "eval_other_accuracy": 0.9,
        "test_tiny_accuracy": 0.25,
        "epoch": 1.0,
    }
    assert split_metric_keys(metrics, ["tiny", "tiny_qa"]) == {
        "tiny_qa": {"f1": 80.0, "loss": 1.5},
        "tiny": {"accuracy": 0.5},
    }
    assert split_metric_keys(metrics, ["tiny"], prefix="test") == {"tiny": {"accuracy": 0.25}}
    assert split_metric_keys(metrics, ["tiny_qa"], skip=("loss",)) == {"tiny_qa": {"f1": 80.0}}
