"""Paired comparison of two models fine-tuned on the same tasks, seeds and data: pure functions, no training.

A pair is one (pre-finetuning seed, fine-tuning seed, task, training share): Muppet and its base fine-tuned on the same
subset with the same fine-tuning seed, each at the learning rate its own validation chose. Its difference is Muppet's
test score minus the base's, in points. Per task, the pairs give the mean difference, a percentile-bootstrap 95%
interval of that mean (Efron & Tibshirani 1993, ch. 13) and a sign count; across tasks, the mean of the per-task means
with an interval from resampling each task's pairs on its own (a stratified bootstrap, so a task with more seeds does
not weigh more), and how many tasks are ahead.

With a handful of pairs per task the interval is wide and itself rough; the sign count says the same thing without
any assumption. Neither corrects for testing several tasks at once.
"""

import numpy as np


# Resamples of the bootstrap: the 2.5% and 97.5% percentiles move by well under 0.1 point between seeds at this count
# for differences of a few points.
BOOTSTRAP_RESAMPLES = 10_000
CONFIDENCE = 0.95
# Differences (and mean differences) closer to 0 than this, in points, are ties: scores are shares of a test set, so
# +20.8 and -20.8 on two seeds can average to -7e-15 rather than 0.
TIE_TOLERANCE = 1e-9


def sign_count(differences: list[float]) -> dict[str, int]:
    """How many differences are positive (`wins`), negative (`losses`) and 0 (`ties`, within `TIE_TOLERANCE`)."""
    values = np.asarray(differences, dtype=float)
    wins, losses = int((values > TIE_TOLERANCE).sum()), int((values < -TIE_TOLERANCE).sum())
    return {"wins": wins, "losses": losses, "ties": values.size - wins - losses}


def _interval(means: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_interval(
    differences: list[float], confidence: float = CONFIDENCE, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of `differences` (resampled with replacement, `seed` fixed).

    One difference gives the degenerate interval (d, d): there is nothing to resample.
    """
    values = np.asarray(differences, dtype=float)
    if values.size == 0:
        raise ValueError("bootstrap_interval: no differences")
    if not 0 < confidence < 1:
        raise ValueError(f"bootstrap_interval: `confidence` must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, values.size, size=(resamples, values.size))
    return _interval(values[samples].mean(axis=1), confidence)


def stratified_bootstrap_interval(
    groups: list[list[float]], confidence: float = CONFIDENCE, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of group means, each group resampled on its own.

    Args:
        groups (`list[list[float]]`): the paired differences of each task; every task counts once in the mean.
    """
    if not groups or any(len(group) == 0 for group in groups):
        raise ValueError("stratified_bootstrap_interval: every group needs at least one difference")
    rng = np.random.default_rng(seed)
    means = np.zeros(resamples)
    for group in groups:
        values = np.asarray(group, dtype=float)
        means += values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    return _interval(means / len(groups), confidence)


def paired_summary(differences: list[float], seed: int = 0) -> dict:
    """`n`, `mean`, sample `std`, the bootstrap 95% interval (`ci_low`, `ci_high`) and the sign count of paired
    differences."""
    values = np.asarray(differences, dtype=float)
    low, high = bootstrap_interval(differences, seed=seed)
    return {
        "n": int(values.size),
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
        "ci_low": low,
        "ci_high": high,
        **sign_count(differences),
    }


def across_tasks_summary(differences_by_task: dict[str, list[float]], seed: int = 0) -> dict:
    """The verdict over tasks: the mean of the per-task mean differences with its stratified bootstrap 95% interval,
    and how many tasks have a positive (`tasks_ahead`) or negative (`tasks_behind`) mean difference (a mean within
    `TIE_TOLERANCE` of 0 is neither)."""
    task_means = [float(np.mean(values)) for values in differences_by_task.values()]
    low, high = stratified_bootstrap_interval(list(differences_by_task.values()), seed=seed)
    return {
        "tasks": len(task_means),
        "mean_of_task_means": float(np.mean(task_means)),
        "ci_low": low,
        "ci_high": high,
        "tasks_ahead": sum(mean > TIE_TOLERANCE for mean in task_means),
        "tasks_behind": sum(mean < -TIE_TOLERANCE for mean in task_means),
    }
