"""Batching strategies of pre-finetuning, in miniature: Muppet (arXiv 2101.11038) Figure 2.

Pre-finetunes the recipe three times at the same budget, changing only how the sub-batches of an update are chosen
(§3.1, §5.2): `dataset_homogeneous` trains on the tasks one after another, `batch_homogeneous` fills each update from
one task, `heterogeneous` mixes tasks inside every update. Then fine-tunes each model on the held-out tasks. The paper
finds heterogeneous batches best, and dataset-homogeneous training worst.

```bash
# Default: the offline_suite recipe, 92 of its updates (4 per task; 4 sub-batches of 16), then the held-out tasks at
# 30% of their (500-example) training sets, seeds 1-3, with the fine-tuning protocol of evaluation/README.md. With the
# old 3-epoch protocol and three held-out tasks it took about 50 minutes on 2 CPU cores (3 pre-finetuning runs of ~9
# minutes, 27 fine-tuning runs of ~40 s); the step budget and learning-rate sweep cost more:
HF_HUB_OFFLINE=1 python evaluation/batching.py --output_dir runs/evaluation/batching

# Smoke run of the tiny setup (seconds; make /tmp/tiny-base as in evaluation/transfer.py):
python evaluation/batching.py --recipe training/recipes/tiny.yaml --backbone /tmp/tiny-base --prefinetune_steps 3 \
    --prefinetune_batch_size 4 --tasks training/data/tiny/tiny_qa.yaml --seeds 1 --finetune_args="--max_steps 2" \
    --output_dir /tmp/batching
```

Same data for every strategy: each task contributes `prefinetune_steps // number of tasks` updates' worth of
sub-batches (`max_examples_per_task` = that many updates x `tasks_per_update` x the sub-batch size; the same random
examples for the three, drawn with the recipe's seed), and the run lasts exactly one such epoch. Without the cap, a
dataset-homogeneous run of a few dozen updates would never leave the recipe's first task.

Writes to `--output_dir`: `results.json` (settings, every pre-finetuning and fine-tuning run, mean and std over seeds
per strategy and task), `results.md` (the table, also printed) and `batching.png` (a panel per task, a bar per
strategy). A re-run skips the runs that finished.
"""

from dataclasses import dataclass, field
from pathlib import Path

from common import (
    PrefinetuneBudgetArguments,
    load_recipe,
    report_variants,
    run_variants,
    task_names,
    warn_if_not_held_out,
)
from transformers import HfArgumentParser

from muppet_hf.training_args import BATCHING_MODES


@dataclass
class BatchingArguments(PrefinetuneBudgetArguments):
    """[`PrefinetuneBudgetArguments`] plus the strategies to compare.

    Args:
        prefinetune_steps (`int`, *optional*, defaults to 92): updates of every variant, rounded down to a whole
            number of updates per task (92 = 4 for each of the offline suite's 23 tasks).
        modes (`list[str]`, *optional*, defaults to all three): batching strategies, as
            `MuppetTrainingArguments.batching`.
    """

    output_dir: str = field(default="runs/evaluation/batching", metadata={"help": "Experiment folder."})
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3], metadata={"help": "Fine-tuning seeds."})
    prefinetune_steps: int = field(default=92, metadata={"help": "Updates of every variant (whole updates per task)."})
    modes: list[str] = field(
        default_factory=lambda: ["dataset_homogeneous", "batch_homogeneous", "heterogeneous"],
        metadata={"help": "Batching strategies to compare."},
    )

    def __post_init__(self):
        super().__post_init__()
        unknown = sorted(set(self.modes) - set(BATCHING_MODES))
        if not self.modes or unknown:
            raise ValueError(f"field `modes`: {unknown or 'none given'}; use some of {BATCHING_MODES}")


def parse_args(argv: list[str] | None = None) -> BatchingArguments:
    return HfArgumentParser(BatchingArguments).parse_args_into_dataclasses(argv)[0]


def main(args: BatchingArguments) -> dict:
    """Runs (or resumes) the experiment, then writes `results.json`, `results.md` and the plot; returns the results."""
    experiment_dir = Path(args.output_dir)
    experiment_dir.mkdir(parents=True, exist_ok=True)
    recipe = load_recipe(args.recipe)
    num_tasks = len(recipe["tasks"])
    updates_per_task = args.prefinetune_steps // num_tasks
    if updates_per_task < 1:
        raise ValueError(
            f"field `prefinetune_steps`: {args.prefinetune_steps} updates are fewer than the {num_tasks} tasks of "
            f"{args.recipe}; give at least one update per task"
        )
    # One update = `tasks_per_update` sub-batches (one process), as MuppetTrainingArguments sets it; 8 is the
    # TrainingArguments default of `per_device_train_batch_size`.
    tasks_per_update = recipe.get("tasks_per_update") or recipe.get("gradient_accumulation_steps") or 1
    sub_batch_size = args.prefinetune_batch_size or recipe.get("per_device_train_batch_size", 8)
    budget = {
        "max_steps": updates_per_task * num_tasks,
        "max_examples_per_task": updates_per_task * tasks_per_update * sub_batch_size,
    }
    print(
        f"budget: {budget['max_steps']} updates, {budget['max_examples_per_task']} examples of each of the "
        f"{num_tasks} tasks",
        flush=True,
    )
    warn_if_not_held_out(task_names(recipe["tasks"]), args)
    variants = {mode: {"batching": mode, **budget} for mode in args.modes}
    models, records, runs = run_variants(experiment_dir, args, recipe, variants)

    return report_variants(
        "batching", experiment_dir, args, recipe, models, records, runs,
        title=f"Batching strategies: held-out score ({100 * args.fraction:g}% of training data)", budget=budget,
    )  # fmt: skip


if __name__ == "__main__":
    main(parse_args())
