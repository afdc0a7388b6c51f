"""The paired statistics of evaluation/paired_stats.py, on hand-made differences."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest


spec = importlib.util.spec_from_file_location(
    "paired_stats", Path(__file__).resolve().parent.parent / "evaluation" / "paired_stats.py"
)
paired_stats = importlib.util.module_from_spec(spec)
spec.loader.exec_module(paired_stats)


def test_sign_count():
    assert paired_stats.sign_count([1.5, -2.0, 0.0, 3.0]) == {"wins": 2, "losses": 1, "ties": 1}
    # Rounding: 100 * 19/24 - 100 * 14/24 and its opposite sum to a hair off 0 (7e-15), which is a tie, not a win.
    gain = 100 * 19 / 24 - 100 * 14 / 24
    opposite = 100 * 8 / 24 - 100 * 13 / 24
    assert gain + opposite != 0
    assert paired_stats.sign_count([gain + opposite]) == {"wins": 0, "losses": 0, "ties": 1}
    summary = paired_stats.across_tasks_summary({"a": [gain, opposite], "b": [1.0]})
    assert (summary["tasks_ahead"], summary["tasks_behind"]) == (1, 0)


def test_bootstrap_interval_brackets_the_mean_and_matches_the_normal_interval_for_many_pairs():
    rng = np.random.default_rng(0)
    differences = list(rng.normal(3.0, 2.0, size=400))
    low, high = paired_stats.bootstrap_interval(differences)
    mean, standard_error = np.mean(differences), np.std(differences, ddof=1) / np.sqrt(400)
    assert low < mean < high
    # For a large sample the percentile bootstrap agrees with mean ± 1.96 standard errors.
    assert low == pytest.approx(mean - 1.96 * standard_error, abs=0.05)
    assert high == pytest.approx(mean + 1.96 * standard_error, abs=0.05)
    assert paired_stats.bootstrap_interval(differences) == (low, high), "seeded: the same interval every time"


def test_bootstrap_interval_edge_cases():
    assert paired_stats.bootstrap_interval([2.5]) == (2.5, 2.5)
    assert paired_stats.bootstrap_interval([1.0, 1.0, 1.0]) == (1.0, 1.0)
    with pytest.raises(ValueError, match="no differences"):
        paired_stats.bootstrap_interval([])
    with pytest.raises(ValueError, match="confidence"):
        paired_stats.bootstrap_interval([1.0, 2.0], confidence=1.0)


def test_paired_summary():
    summary = paired_stats.paired_summary([2.0, 4.0, -1.0, 3.0])
    assert summary["n"] == 4 and summary["mean"] == 2.0
    assert summary["std"] == pytest.approx(np.std([2.0, 4.0, -1.0, 3.0], ddof=1))
    assert (summary["wins"], summary["losses"], summary["ties"]) == (3, 1, 0)
    # Resampled means of 4 values lie between the smallest and the largest value.
    assert -1.0 <= summary["ci_low"] < 2.0 < summary["ci_high"] <= 4.0


def test_across_tasks_weighs_each_task_once_whatever_its_number_of_pairs():
    summary = paired_stats.across_tasks_summary({"a": [10.0] * 9, "b": [-2.0], "c": [1.0, 3.0]})
    assert summary["mean_of_task_means"] == pytest.approx((10.0 - 2.0 + 2.0) / 3)
    assert (summary["tasks"], summary["tasks_ahead"], summary["tasks_behind"]) == (3, 2, 1)
    # Only task c varies: its resampled mean is 1, 2 or 3, so the overall mean moves by at most 1/3 of a point.
    assert summary["ci_low"] == pytest.approx(summary["mean_of_task_means"] - 1 / 3)
    assert summary["ci_high"] == pytest.approx(summary["mean_of_task_means"] + 1 / 3)
    with pytest.raises(ValueError, match="every group"):
        paired_stats.stratified_bootstrap_interval([[1.0], []])
