import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch


REPO = Path(__file__).resolve().parent.parent


def load_benchmark():
    spec = importlib.util.spec_from_file_location("fullsize", REPO / "benchmarks" / "fullsize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_child_run_reports_its_own_peak_memory_and_a_second_run_recomputes_nothing(tmp_path, monkeypatch):
    # The tiny recipe's tasks are local JSON files, cached by `datasets` in its own cache, here a fresh one.
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    fullsize = load_benchmark()
    recipe = REPO / "training" / "recipes" / "tiny.yaml"
    first = fullsize.run_recipe(recipe, 1, str(tmp_path), "first")
    second = fullsize.run_recipe(recipe, 1, str(tmp_path), "second")
    assert ("tiny_qa", "train") in first["tokenized_splits"] and ("tiny_qa", "train") in first["canonicalized_splits"]
    assert second["tokenized_splits"] == [] and second["canonicalized_splits"] == []
    # The child's own peak (a small process), not this test process's resident pages.
    assert 0.1 < first["peak_rss_gb"] < 4


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine the script runs its checks")
def test_gpu_check_stops_clearly_without_a_gpu():
    result = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh")],
        env={**os.environ, "PYTHON": sys.executable, "OUT": "/nonexistent/gpu_check"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "no CUDA GPU is visible to torch" in result.stderr and "nothing was run" in result.stderr


@pytest.mark.slow
@pytest.mark.multiprocess
def test_cpu_layout_benchmark_times_one_and_two_processes_on_the_same_update(tmp_path):
    output = tmp_path / "cpu_layout.json"
    command = [sys.executable, str(REPO / "benchmarks" / "cpu_layout.py"), "--quick", "--output", str(output)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "2x1 / 1x2" in result.stdout

    results = json.loads(output.read_text())
    runs = {run["layout"]: run for run in results["runs"]}
    assert set(runs) == {"1x2", "2x1"}
    # One update is 2 sub-batches in both: 2 drawn by one process, or 1 by each of two (the run itself checks that
    # it sampled as many training processes as the layout has).
    assert (
        runs["1x2"]["command"].startswith("OMP_NUM_THREADS=2 ") and "--tasks_per_update 2 " in runs["1x2"]["command"]
    )
    assert (
        runs["2x1"]["command"].startswith("OMP_NUM_THREADS=1 ") and "--tasks_per_update 1 " in runs["2x1"]["command"]
    )
    assert "cpu_2proc.yaml" in runs["2x1"]["command"]
    for run in runs.values():
        assert run["s_per_update"] > 0 and run["examples"] > 0 and run["wall_s"] > run["train_runtime_s"]
    # Two processes hold two models and two copies of the data.
    assert runs["2x1"]["peak_training_rss_gb"] > runs["1x2"]["peak_training_rss_gb"] > 0.05
    assert set(results["ratio_2x1_over_1x2"]) == {"s_per_update", "examples_per_s", "wall_s", "peak_training_rss_gb"}
