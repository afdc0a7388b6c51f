import importlib.util
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
