import json
import math
import subprocess
import sys
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "throughput.py"


def assert_positive(section: dict, *keys: str):
    for key in keys:
        value = section[key]
        assert isinstance(value, int | float) and math.isfinite(value) and value > 0, (key, value)


@pytest.mark.slow
def test_quick_throughput_benchmark_writes_all_five_sections(tmp_path):
    output = tmp_path / "throughput.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "speedup" in result.stdout and "peak RSS" in result.stdout

    results = json.loads(output.read_text())
    assert results["meta"]["mode"] == "quick"
    throughput = results["throughput"]
    assert_positive(
        throughput, "muppet_tokens_per_s", "plain_tokens_per_s", "speedup", "muppet_step_s", "plain_step_s"
    )
    for key in ("muppet_padding_fraction", "plain_padding_fraction"):
        assert 0 <= throughput[key] < 1
    # The same examples, once each: both trainers processed exactly the same useful tokens.
    runs = throughput["runs"]
    assert len({run["total_useful_tokens"] for run in runs}) == 1
    assert len({run["examples"] for run in runs}) == 1

    assert_positive(throughput, "speedup_cpu_time")
    assert_positive(results["r3f"], "step_s_without", "step_s_with", "ratio", "ratio_cpu_time")
    assert_positive(
        results["utilisation"],
        "achieved_flops_per_s",
        "peak_flops_per_s",
        "utilisation",
        "utilisation_cpu_time",
        "per_token_parameters",
    )
    scaling = results["sampler_scaling"]["tasks"]
    assert set(scaling) == {"5", "50", "500"}
    for timing in scaling.values():
        assert_positive(timing, "per_update_s", "share_of_step")
    assert_positive(results["memory"], "peak_rss_gb", "seconds")
