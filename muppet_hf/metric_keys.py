"""Per-task metrics from the flat keys `MuppetTrainer.evaluate` returns: `<prefix>_<task>_<metric>`.

`MuppetTrainer.evaluate(metric_key_prefix="eval")` reports every task's metrics in one flat mapping
(`eval_mnli_accuracy`, `eval_mnli_loss`, `eval_mnli_runtime`, ...), as `Trainer.evaluate` does for one dataset.
The training scripts and `muppet_run.json`'s reader take it apart again with [`split_metric_keys`].
"""

from collections.abc import Iterable, Mapping
from typing import Any


# What `Trainer.evaluate` adds to each task's metrics besides scores: the wall time of the evaluation and its speed.
TIMINGS = ("runtime", "samples_per_second", "steps_per_second")


def split_metric_keys(
    metrics: Mapping[str, Any], tasks: Iterable[str], prefix: str = "eval", skip: Iterable[str] = TIMINGS
) -> dict[str, dict[str, Any]]:
    """Splits `<prefix>_<task>_<metric>` keys into `{task: {metric: value}}`.

    Task names may hold underscores (`tiny_qa`), so each key goes to the longest task name it starts with (`eval_a_b_f1`
    is task `a_b`'s `f1` when both `a` and `a_b` are tasks). Keys of other prefixes or tasks are left out.

    Args:
        metrics (`Mapping[str, Any]`): flat metrics, as `MuppetTrainer.evaluate` or `all_results.json` give them.
        tasks (`Iterable[str]`): the task names to look for.
        prefix (`str`, *optional*, defaults to `"eval"`): the `metric_key_prefix` of the evaluation (a split name).
        skip (`Iterable[str]`, *optional*, defaults to `TIMINGS`): metric names to leave out.

    Returns:
        `dict[str, dict[str, Any]]`: one entry per task that has at least one metric, metrics in key order.
    """
    by_length = sorted(tasks, key=len, reverse=True)
    skip = set(skip)
    split: dict[str, dict[str, Any]] = {}
    for key, value in metrics.items():
        if not key.startswith(f"{prefix}_"):
            continue
        rest = key[len(prefix) + 1 :]
        task = next((name for name in by_length if rest.startswith(f"{name}_")), None)
        if task is not None and (metric := rest[len(task) + 1 :]) not in skip:
            split.setdefault(task, {})[metric] = value
    return split


__all__ = ["TIMINGS", "split_metric_keys"]
