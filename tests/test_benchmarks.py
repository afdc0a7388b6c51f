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

    assert_positive(throughput, "speedup_cpu_time", "grouped_tokens_per_s", "speedup_vs_grouped")
    # The grouped Trainer sees the same examples as the others, with less padding than the default Trainer.
    kinds = {run["kind"] for run in runs}
    assert kinds == {"muppet", "plain", "plain_grouped"}
    assert throughput["grouped_padding_fraction"] < throughput["plain_padding_fraction"]
    assert "grouped" in result.stdout
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


def run_script(tmp_path, *arguments: str) -> tuple[dict, str]:
    output, markdown = tmp_path / "results.json", tmp_path / "table.md"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", *arguments, "--output", str(output), "--markdown", str(markdown)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(output.read_text()), markdown.read_text()


@pytest.mark.slow
def test_profile_mode_reports_op_shares_that_sum_to_one(tmp_path):
    results, markdown = run_script(tmp_path, "--profile", "--profile_threads", "1")
    (profile,) = results["profiles"]
    assert profile["threads"] == 1
    assert math.isclose(sum(profile["families"].values()), 1.0, rel_tol=1e-6)
    assert profile["top_ops"] and all(0 < op["share"] <= 1 for op in profile["top_ops"])
    assert "matmul" in markdown and "| op family |" in markdown


@pytest.mark.slow
def test_experiments_and_scaling_modes_time_every_variant_and_point(tmp_path):
    results, markdown = run_script(tmp_path, "--experiments", "adamw_foreach", "--repeats", "1")
    assert_positive(results["variants"]["adamw_foreach"], "step_ratio", "step_s")
    assert "`adamw_foreach`" in markdown

    plot = tmp_path / "scaling.png"
    scaling, markdown = run_script(
        tmp_path,
        "--scaling",
        "--scaling_sub_batch_sizes",
        "4",
        "8",
        "--scaling_tasks_per_update",
        "1",
        "2",
        "--plot",
        str(plot),
    )
    points = {(point["sub_batch_size"], point["tasks_per_update"]) for point in scaling["points"]}
    assert points == {(4, 1), (8, 1), (4, 2), (8, 2)}
    for point in scaling["points"]:
        assert_positive(point, "tokens_per_s", "step_s")
    assert plot.stat().st_size > 0 and "sub-batch 8" in markdown
