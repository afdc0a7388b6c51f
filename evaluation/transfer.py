"""Transfer to held-out tasks, in miniature: Muppet (arXiv 2101.11038) Tables 3-5 and Figure 3.

Fine-tunes the base backbone and one or more Muppet checkpoints (pre-finetuned with different seeds) on each held-out
task, at several shares of its training set, with several fine-tuning seeds and a small learning-rate sweep, and
compares them pair by pair: the paper's gain of pre-finetuned models over their base on downstream tasks (§4), and its
growth as the task's training data shrinks (§5.3, Figure 3).

```bash
# Default: base all-MiniLM-L6-v2 against the main job's checkpoint (train it first with the offline_suite recipe,
# see training/recipes/offline_suite.yaml), on the eight held-out tasks x {10%, 30%, 100%} x seeds {1, 2, 3} x
# learning rates {3e-5, 1e-4}, each run at most 300 updates with early stopping on validation, scored on test:
HF_HUB_OFFLINE=1 python evaluation/transfer.py --output_dir runs/evaluation/transfer

# Two pre-finetuning seeds (the second checkpoint is pre-finetuned from --recipe with seed 2 if its folder is
# missing), at 10% of the training data, one learning rate:
HF_HUB_OFFLINE=1 python evaluation/transfer.py --muppet_checkpoints runs/muppet-long-s1 runs/muppet-long-s2 \
    --prefinetune_seeds 1 2 --fractions 0.1 --learning_rates 1e-4 --output_dir runs/evaluation/transfer-10

# LoRA against full pre-finetuning at the same updates, run for run: label the checkpoints and pair them with the full
# one (runs copied from another experiment of the same protocol, e.g. its finetune/base/, are reused):
HF_HUB_OFFLINE=1 python evaluation/transfer.py --recipe training/recipes/offline_suite_long.yaml \
    --muppet_checkpoints runs/muppet-minilm-offline-long-s1 runs/muppet-minilm-offline-lora-long-s1 \
    --muppet_labels full_1 lora_1 --reference full_1 --fractions 0.1 --learning_rates 1e-4 \
    --output_dir runs/evaluation/transfer-lora-long

# Smoke run of the tiny setup (seconds): a tiny random base model folder, the tiny recipe pre-finetuned from it (the
# Muppet checkpoint is made from `--recipe` when it does not exist), and tiny tasks:
python -c "from muppet_hf import MuppetConfig, MuppetForMultiTask; from muppet_hf.testing_utils import *; \
MuppetForMultiTask(MuppetConfig(base_model_config=tiny_config(), heads={})).save_backbone('/tmp/tiny-base'); \
tiny_tokenizer().save_pretrained('/tmp/tiny-base')"
python evaluation/transfer.py --recipe training/recipes/tiny.yaml --backbone /tmp/tiny-base \
    --muppet_checkpoints /tmp/tiny-muppet --prefinetune_args="--max_steps 2" \
    --tasks training/data/tiny/tiny_sentiment.yaml training/data/tiny/tiny_tags.yaml --fractions 0.5 1.0 --seeds 1 \
    --finetune_steps 4 --finetune_eval_steps 2 --output_dir /tmp/transfer
```

The protocol (see `evaluation/common.py` and evaluation/README.md): each held-out training set capped at 500 examples
(100% = the capped set; 10% = 50 examples, a subset drawn by the fine-tuning seed), 200 validation and 1,000 test
examples, 128 tokens, batch 16; every run trains for at most `--finetune_steps` updates (linear decay, 6% warmup),
evaluates validation every `--finetune_eval_steps`, keeps the best weights and stops after `--early_stopping_patience`
evaluations without a gain; each model picks its learning rate on validation; scores are on the test split.
`--finetune_steps 0` restores the old protocol (3 epochs, 1 for span MRC, last weights).

Writes to `--output_dir`: `results.json` (settings, every run, the learning rates chosen, mean and std over seeds per
model, task and fraction, every paired difference, and the paired comparison: per task, per pre-finetuning seed and
over tasks), `results.md` (the tables, also printed), `transfer.png` (score against the share of training data, a panel
per task) and `transfer_delta.png` (mean paired difference, task x fraction). Each run has its folder under
`finetune/<model>/<task>/` with `run.log`, `run.json` and `finetune_metrics.json`; a re-run skips the runs that
finished.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from common import (
    ExperimentArguments,
    aggregate,
    base_backbone,
    experiment_payload,
    finetune_grid,
    format_score,
    held_out_names,
    load_recipe,
    lookup,
    markdown_table,
    plot_heatmap,
    plot_lines,
    prefinetune,
    prefinetune_record,
    selected,
    variant_recipe,
    warn_if_not_held_out,
    write_results,
)
from paired_stats import across_tasks_summary, paired_summary
from transformers import HfArgumentParser

from muppet_hf.checkpointing import TRAINING_ARGS_FILE


@dataclass
class TransferArguments(ExperimentArguments):
    """[`ExperimentArguments`] plus the checkpoints to compare and the training shares.

    Args:
        muppet_checkpoints (`list[str]`, *optional*, defaults to `["runs/muppet-minilm-offline"]`): the pre-finetuned
            models, one per pre-finetuning seed. A folder that does not exist is made by pre-finetuning `--recipe`
            (with `--backbone`, `--prefinetune_args` and its seed from `--prefinetune_seeds`); a folder without
            `config.json` (a run still going) is an error.
        prefinetune_seeds (`list[int]`, *optional*): the pre-finetuning seed of each checkpoint, in order: the seed of
            the ones made here, and a label for all. Defaults to what each checkpoint's `training_args.json` says.
        muppet_labels (`list[str]`, *optional*): a name per checkpoint, in order, for its run folders
            (`finetune/<label>/`) and tables, e.g. `full_1 lora_1` to compare two ways of pre-finetuning. Defaults to
            `muppet` for one checkpoint and `muppet_1, muppet_2, ...` for several.
        reference (`str`, *optional*, defaults to `"base"`): the model every other one is paired with: `base`, or
            one of `muppet_labels` (e.g. `full_1` to compare LoRA against full pre-finetuning run for run).
        fractions (`list[float]`, *optional*, defaults to `[0.1, 0.3, 1.0]`): shares of each capped training set.
    """

    output_dir: str = field(default="runs/evaluation/transfer", metadata={"help": "Experiment folder."})
    muppet_checkpoints: list[str] = field(
        default_factory=lambda: ["runs/muppet-minilm-offline"],
        metadata={"help": "Muppet checkpoints, one per pre-finetuning seed; made from --recipe if missing."},
    )
    prefinetune_seeds: list[int] | None = field(
        default=None, metadata={"help": "Pre-finetuning seed of each checkpoint (used to make missing ones)."}
    )
    muppet_labels: list[str] | None = field(
        default=None, metadata={"help": "A name per checkpoint (default: muppet, or muppet_1, muppet_2, ...)."}
    )
    reference: str = field(
        default="base", metadata={"help": "The model the others are paired with: base, or one of --muppet_labels."}
    )
    fractions: list[float] = field(
        default_factory=lambda: [0.1, 0.3, 1.0], metadata={"help": "Shares of each capped training set."}
    )

    def __post_init__(self):
        super().__post_init__()
        if not self.fractions or not all(0 < fraction <= 1 for fraction in self.fractions):
            raise ValueError(f"field `fractions`: every share must be in (0, 1], got {self.fractions}")
        if not self.muppet_checkpoints:
            raise ValueError("field `muppet_checkpoints`: give at least one checkpoint")
        if self.prefinetune_seeds is not None and len(self.prefinetune_seeds) != len(self.muppet_checkpoints):
            raise ValueError(
                f"field `prefinetune_seeds`: one seed per checkpoint of `muppet_checkpoints`, got "
                f"{len(self.prefinetune_seeds)} seeds for {len(self.muppet_checkpoints)} checkpoints"
            )
        if self.muppet_labels is not None:
            labels = self.muppet_labels
            if len(labels) != len(self.muppet_checkpoints) or len(set(labels)) != len(labels) or "base" in labels:
                raise ValueError(
                    f"field `muppet_labels`: one distinct name per checkpoint of `muppet_checkpoints`, other than "
                    f"'base'; got {labels} for {len(self.muppet_checkpoints)} checkpoints"
                )
            if not all(label.replace("_", "").replace("-", "").isalnum() for label in labels):
                raise ValueError(f"field `muppet_labels`: names are folder names (letters, digits, _ or -): {labels}")
        if self.reference != "base" and self.reference not in (self.muppet_labels or []):
            raise ValueError(
                f"field `reference`: {self.reference!r} is neither 'base' nor one of `muppet_labels` "
                f"({self.muppet_labels})"
            )


def parse_args(argv: list[str] | None = None) -> TransferArguments:
    return HfArgumentParser(TransferArguments).parse_args_into_dataclasses(argv)[0]


def muppet_checkpoint(args: TransferArguments, recipe: dict, index: int, label: str) -> tuple[Path, dict]:
    """The `index`-th Muppet checkpoint, pre-finetuned from `--recipe` first when its folder does not exist.

    Returns:
        The checkpoint folder and what it says about its pre-finetuning run, with its `prefinetune_seed`.
    """
    path = Path(args.muppet_checkpoints[index])
    seed = args.prefinetune_seeds[index] if args.prefinetune_seeds is not None else None
    if (path / "config.json").is_file():
        record = prefinetune_record(path, label)
    elif path.exists():
        raise ValueError(
            f"{path} holds no finished checkpoint (no config.json; field `muppet_checkpoints`): wait for its "
            "pre-finetuning to end, or delete the folder to pre-finetune it here"
        )
    else:
        print(f"no Muppet checkpoint at {path}: pre-finetuning it from {args.recipe}", flush=True)
        overrides = {} if seed is None else {"seed": seed}
        record = prefinetune(path, variant_recipe(recipe, args, **overrides), args, label)
    if seed is None and (path / TRAINING_ARGS_FILE).is_file():
        seed = json.loads((path / TRAINING_ARGS_FILE).read_text(encoding="utf-8")).get("seed")
    return path, {**record, "prefinetune_seed": seed}


def paired_differences(runs: list[dict], muppets: list[str], reference: str = "base") -> list[dict]:
    """Every pair of the comparison: a Muppet checkpoint and the `reference` model (the base) fine-tuned on the same
    task, training share and fine-tuning seed, each at the learning rate it chose on validation; `difference` =
    Muppet - reference, and the reference's score is under `base`."""
    chosen = {(run["model"], run["task"], run["train_fraction"], run["seed"]): run for run in selected(runs)}
    pairs = []
    for (model, task, fraction, seed), muppet in chosen.items():
        base = chosen.get((reference, task, fraction, seed))
        if model not in muppets or base is None:
            continue
        pairs.append(
            {
                "model": model,
                "reference": reference,
                "task": task,
                "train_fraction": fraction,
                "seed": seed,
                "metric": base["metric"],
                "score_split": base["score_split"],
                "base": base["score"],
                "muppet": muppet["score"],
                "difference": muppet["score"] - base["score"],
                "learning_rates": {"base": base["learning_rate"], "muppet": muppet["learning_rate"]},
            }
        )
    return pairs


def compare(pairs: list[dict], tasks: list[str], fractions: list[float], muppets: list[str]) -> dict:
    """The paired comparison: per task and fraction, per Muppet checkpoint (pre-finetuning seed) and fraction, and over
    all tasks per fraction (see `paired_stats`)."""

    def differences(**where) -> list[float]:
        return [pair["difference"] for pair in pairs if all(pair[key] == value for key, value in where.items())]

    by_task, by_checkpoint, over_tasks = [], [], []
    for fraction in fractions:
        per_task = {task: differences(task=task, train_fraction=fraction) for task in tasks}
        per_task = {task: values for task, values in per_task.items() if values}
        for task, values in per_task.items():
            by_task.append({"task": task, "train_fraction": fraction, **paired_summary(values)})
        if per_task:
            over_tasks.append({"train_fraction": fraction, **across_tasks_summary(per_task)})
        for model in muppets:
            groups = {task: differences(task=task, train_fraction=fraction, model=model) for task in tasks}
            groups = {task: values for task, values in groups.items() if values}
            if groups:
                by_checkpoint.append({"model": model, "train_fraction": fraction, **across_tasks_summary(groups)})
    return {"by_task": by_task, "by_checkpoint": by_checkpoint, "over_tasks": over_tasks}


def _compared(muppets: list[str], reference: str) -> str:
    """How tables and plots name the side paired with `reference`: `Muppet` against the base, else the labels."""
    return "Muppet" if reference == "base" else " and ".join(muppets)


def _interval(entry: dict, mean_key: str = "mean") -> str:
    return f"{entry[mean_key]:+.1f} [{entry['ci_low']:+.1f}, {entry['ci_high']:+.1f}]"


def _summary_row(label: str, entry: dict) -> list[str]:
    return [
        label,
        f"{100 * entry['train_fraction']:g}%",
        str(entry["tasks"]),
        _interval(entry, "mean_of_task_means"),
        f"{entry['tasks_ahead']}/{entry['tasks_behind']}",
    ]


def tables(
    aggregates: list[dict],
    pooled: list[dict],
    comparison: dict,
    tasks: list[str],
    fractions: list[float],
    muppets: list[str],
    reference: str = "base",
) -> str:
    """The markdown of the experiment: scores and paired differences per task, then the verdict over tasks.

    Args:
        aggregates (`list[dict]`): per model, task and fraction (the `reference` model's scores).
        pooled (`list[dict]`): per task and fraction over every Muppet checkpoint and seed (the Muppet column).
    """
    by_task = {(entry["task"], entry["train_fraction"]): entry for entry in comparison["by_task"]}
    rows = []
    for task in tasks:
        for fraction in fractions:
            base = lookup(aggregates, model=reference, task=task, train_fraction=fraction)
            muppet = lookup(pooled, task=task, train_fraction=fraction)
            pair = by_task.get((task, fraction))
            rows.append(
                [
                    task,
                    (base or {}).get("metric", ""),
                    f"{100 * fraction:g}%",
                    "–" if base is None or base["guess_score"] is None else f"{base['guess_score']:.1f}",
                    format_score(base),
                    format_score(muppet),
                    _interval(pair) if pair else "–",
                    f"{pair['wins']}/{pair['losses']}/{pair['ties']}" if pair else "–",
                ]
            )
    compared = _compared(muppets, reference)
    headers = ["task", "metric", "train share", "guess", reference, compared, "Δ mean [95% CI]", "Δ > 0 / < 0 / = 0"]
    overall = "all checkpoints" if len(muppets) > 1 else compared
    summary = [_summary_row(overall, entry) for entry in comparison["over_tasks"]]
    if len(muppets) > 1:
        summary += [_summary_row(entry["model"], entry) for entry in comparison["by_checkpoint"]]
    return (
        markdown_table(headers, rows)
        + "\n"
        + markdown_table(
            [
                f"{compared} - {reference} over tasks",
                "train share",
                "tasks",
                "mean of task means [95% CI]",
                "tasks ahead/behind",
            ],
            summary,
        )
    )


def main(args: TransferArguments) -> dict:
    """Runs (or resumes) the grid, then writes `results.json`, `results.md` and the plots; returns the results."""
    experiment_dir = Path(args.output_dir)
    experiment_dir.mkdir(parents=True, exist_ok=True)
    recipe = load_recipe(args.recipe)
    backbone = base_backbone(recipe, args)
    muppets = args.muppet_labels or (["muppet"] if len(args.muppet_checkpoints) == 1 else [
        f"muppet_{index}" for index in range(1, len(args.muppet_checkpoints) + 1)
    ])  # fmt: skip
    models, records = {"base": backbone}, []
    for index, label in enumerate(muppets):
        checkpoint, record = muppet_checkpoint(args, recipe, index, label)
        config = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
        warn_if_not_held_out(list(config.get("tasks") or {}), args)
        models[label] = str(checkpoint)
        records.append(record)

    runs = finetune_grid(experiment_dir, models, args, args.fractions, recipe.get("pooling"))
    aggregates = aggregate(selected(runs))
    tasks = held_out_names(args)
    # With a checkpoint as the reference, the others (not the base) are paired with it.
    muppets = [label for label in muppets if label != args.reference]
    pairs = paired_differences(runs, muppets, args.reference)
    comparison = compare(pairs, tasks, args.fractions, muppets)

    plot_lines(
        aggregates, experiment_dir / "transfer.png", tasks, list(models),
        title="Held-out fine-tuning: base vs Muppet",
    )  # fmt: skip
    gain = {(entry["task"], entry["train_fraction"]): entry["mean"] for entry in comparison["by_task"]}
    plot_heatmap(
        [[gain.get((task, fraction), float("nan")) for fraction in args.fractions] for task in tasks],
        tasks,
        [f"{100 * fraction:g}%" for fraction in args.fractions],
        experiment_dir / "transfer_delta.png",
        title=f"{_compared(muppets, args.reference)} - {args.reference}, mean paired difference (points)",
        label="points (accuracy x 100 or F1)",
    )
    pooled = aggregate([run for run in selected(runs) if run["model"] in muppets], keys=("task", "train_fraction"))
    table = tables(aggregates, pooled, comparison, tasks, args.fractions, muppets, args.reference)
    payload = experiment_payload(
        "transfer",
        args,
        runs,
        aggregates,
        models=models,
        prefinetune=records,
        learning_rates={
            f"{run['model']}/{run['task']}/{run['train_fraction']:g}": run["learning_rate"] for run in selected(runs)
        },
        pairs=pairs,
        comparison=comparison,
    )
    write_results(experiment_dir, payload, table)
    return payload


if __name__ == "__main__":
    main(parse_args())
