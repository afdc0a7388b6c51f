"""Scaling the number of pre-finetuning tasks, in miniature: Muppet (arXiv 2101.11038) Figure 1.

Pre-finetunes the recipe's backbone on nested subsets of its tasks at the same update budget, then fine-tunes each
resulting model (and the base model, 0 tasks) on the held-out tasks. The paper finds that pre-finetuning on few tasks
can hurt and that gains grow with the number of tasks, past a critical point of about 15 (§5.1).

```bash
# Default: subsets of 4, 8, 12, 16 and all 23 tasks of the offline_suite recipe, 60 of its updates (4 sub-batches of
# 16) each, then the base model and the five variants on the held-out tasks at 30% of their (500-example) training
# sets, seeds 1 and 2, with the fine-tuning protocol of evaluation/README.md. With the old 3-epoch protocol and three
# held-out tasks it took about an hour on 2 CPU cores (5 pre-finetuning runs of ~6 minutes, 36 fine-tuning runs of
# ~40 s); the step budget and learning-rate sweep cost more:
HF_HUB_OFFLINE=1 python evaluation/scaling.py --output_dir runs/evaluation/scaling

# A coarser grid (about 45 minutes):
HF_HUB_OFFLINE=1 python evaluation/scaling.py --num_tasks 4 12 23 --output_dir runs/evaluation/scaling-coarse

# Smoke run of the tiny setup (seconds; make /tmp/tiny-base as in evaluation/transfer.py):
python evaluation/scaling.py --recipe training/recipes/tiny.yaml --backbone /tmp/tiny-base --num_tasks 1 3 \
    --prefinetune_steps 2 --tasks training/data/tiny/tiny_sentiment.yaml training/data/tiny/tiny_qa.yaml --seeds 1 \
    --finetune_args="--max_steps 2" --output_dir /tmp/scaling
```

Subsets are nested prefixes of one order of the recipe's tasks: family by family in turn (classification, pair
classification, multiple choice, span MRC in the offline suite), recipe order within a family, so every subset mixes
families. Each variant keeps the recipe's sampling (natural), batching (heterogeneous), loss scaling and caps.

Writes to `--output_dir`: `results.json` (settings, the subsets, every pre-finetuning and fine-tuning run, mean and
std over seeds per model and task), `results.md` (the table, also printed) and `scaling.png` (held-out score against
the number of pre-finetuning tasks, a panel per task). A re-run skips the runs that finished.
"""

from dataclasses import dataclass, field
from pathlib import Path

from common import (
    PrefinetuneBudgetArguments,
    aggregate,
    base_backbone,
    experiment_payload,
    held_out_names,
    load_recipe,
    plot_lines,
    run_variants,
    selected,
    task_names,
    variant_tables,
    warn_if_not_held_out,
    write_results,
)
from transformers import HfArgumentParser

from muppet_hf.tasks import get_task


@dataclass
class ScalingArguments(PrefinetuneBudgetArguments):
    """[`PrefinetuneBudgetArguments`] plus the subset sizes.

    Args:
        num_tasks (`list[int]`, *optional*, defaults to `[4, 8, 12, 16, 23]`): sizes of the nested task subsets; each
            at most the number of tasks in the recipe.
        with_base (`bool`, *optional*, defaults to `True`): fine-tune the base model too (the 0-task point). `false`
            skips its runs when they were made elsewhere with the same protocol; pair them with
            `evaluation/compare_results.py`.
    """

    output_dir: str = field(default="runs/evaluation/scaling", metadata={"help": "Experiment folder."})
    num_tasks: list[int] = field(
        default_factory=lambda: [4, 8, 12, 16, 23], metadata={"help": "Sizes of the nested task subsets."}
    )
    with_base: bool = field(default=True, metadata={"help": "Fine-tune the base model too (the 0-task point)."})


def parse_args(argv: list[str] | None = None) -> ScalingArguments:
    return HfArgumentParser(ScalingArguments).parse_args_into_dataclasses(argv)[0]


def nested_task_order(tasks: list[str]) -> list[str]:
    """The tasks taken family by family in turn (recipe order within a family), so every prefix mixes families."""
    by_family: dict[str, list[str]] = {}
    for task in tasks:
        by_family.setdefault(get_task(task).family, []).append(task)
    queues = list(by_family.values())
    order = []
    for position in range(max(len(queue) for queue in queues)):
        order += [queue[position] for queue in queues if position < len(queue)]
    return order


def main(args: ScalingArguments) -> dict:
    """Runs (or resumes) the experiment, then writes `results.json`, `results.md` and the plot; returns the results."""
    experiment_dir = Path(args.output_dir)
    experiment_dir.mkdir(parents=True, exist_ok=True)
    recipe = load_recipe(args.recipe)
    order = nested_task_order(recipe["tasks"])
    sizes = sorted(set(args.num_tasks))
    if not sizes or sizes[0] < 1 or sizes[-1] > len(order):
        raise ValueError(
            f"field `num_tasks`: subset sizes must be between 1 and the {len(order)} tasks of {args.recipe}, "
            f"got {args.num_tasks}"
        )
    warn_if_not_held_out(task_names(order[: sizes[-1]]), args)
    variants = {f"tasks_{size}": {"tasks": order[:size]} for size in sizes}
    base = base_backbone(recipe, args) if args.with_base else None
    models, records, runs = run_variants(experiment_dir, args, recipe, variants, base=base)

    num_tasks = {"base": 0, **{name: len(overrides["tasks"]) for name, overrides in variants.items()}}
    aggregates = aggregate(selected(runs))
    for entry in [*runs, *aggregates]:
        entry["num_tasks"] = num_tasks[entry["model"]]
    for record in records:
        record["num_tasks"] = num_tasks[record["variant"]]
    tasks = held_out_names(args)
    plot_lines(
        aggregates, experiment_dir / "scaling.png", tasks, list(models), x_of=num_tasks,
        xlabel="pre-finetuning tasks (0 = base model)", log_x=False,
        title=f"Held-out score vs pre-finetuning tasks ({100 * args.fraction:g}% of training data)",
    )  # fmt: skip
    # Pre-finetuning validation on the tasks every variant saw: those of the smallest subset.
    table, scores = variant_tables(aggregates, models, args, records, recipe)
    payload = experiment_payload(
        "scaling", args, runs, aggregates, models=models, task_order=order, prefinetune=records,
        prefinetune_scores=scores,
    )  # fmt: skip
    write_results(experiment_dir, payload, table)
    return payload


if __name__ == "__main__":
    main(parse_args())
