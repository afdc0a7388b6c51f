"""Transfer to held-out tasks, in miniature: Muppet (arXiv 2101.11038) Tables 3-5 and Figure 3.

Fine-tunes the base backbone and a Muppet checkpoint on each held-out task, at several shares of its training set and
with several seeds, and compares them: the paper's gain of pre-finetuned models over their base on downstream tasks
(§4), and its growth as the task's training data shrinks (§5.3, Figure 3).

```bash
# Default: base all-MiniLM-L6-v2 against the main job's checkpoint (train it first with the offline_suite recipe,
# see training/recipes/offline_suite.yaml), on the three held-out tasks x {10%, 30%, 100%} x seeds {1, 2, 3}.
# About an hour on 2 CPU cores (54 fine-tuning runs):
HF_HUB_OFFLINE=1 python evaluation/transfer.py --output_dir runs/evaluation/transfer

# A subset of the grid:
HF_HUB_OFFLINE=1 python evaluation/transfer.py --tasks strategyqa --fractions 0.1 1.0 --seeds 1 2 \
    --output_dir runs/evaluation/transfer-strategyqa

# Smoke run of the tiny setup (seconds): a tiny random base model folder, the tiny recipe pre-finetuned from it (the
# Muppet checkpoint is made from `--recipe` when `--muppet_checkpoint` does not exist), and two tiny tasks:
python -c "from muppet_hf import MuppetConfig, MuppetForMultiTask; from muppet_hf.testing_utils import *; \
MuppetForMultiTask(MuppetConfig(base_model_config=tiny_config(), heads={})).save_backbone('/tmp/tiny-base'); \
tiny_tokenizer().save_pretrained('/tmp/tiny-base')"
python evaluation/transfer.py --recipe training/recipes/tiny.yaml --backbone /tmp/tiny-base \
    --muppet_checkpoint /tmp/tiny-muppet --prefinetune_args="--max_steps 2" \
    --tasks training/data/tiny/tiny_sentiment.yaml training/data/tiny/tiny_qa.yaml --fractions 0.5 1.0 --seeds 1 \
    --finetune_args="--max_steps 2" --output_dir /tmp/transfer
```

Fine-tuning settings (see `evaluation/common.py`): each held-out training set capped at 500 examples (100% = the
capped set; 10% = 50 examples, a subset drawn by the seed), 200 validation examples, 128 tokens, batch 16, learning
rate 1e-4 with 6% warmup and linear decay, 3 epochs, 1 epoch for span MRC (each SQuADShifts-Reddit example is about 2.6
windows of 128 tokens). Budget: about 10 minutes of a 2-core CPU per model and seed, so 6 x 10 = 60 minutes
(estimate in evaluation/README.md).

Writes to `--output_dir`: `results.json` (settings, every run, mean and std over seeds per model, task and fraction,
and muppet - base per task and fraction), `results.md` (the table, also printed), `transfer.png` (score against the
share of training data, a panel per task) and `transfer_delta.png` (muppet - base, task x fraction). Each run has its
folder under `finetune/<model>/<task>/` with `run.log`, `run.json` and `finetune_metrics.json`; a re-run skips the
runs that finished.
"""

import json
import statistics
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
    variant_recipe,
    warn_if_not_held_out,
    write_results,
)
from transformers import HfArgumentParser


@dataclass
class TransferArguments(ExperimentArguments):
    """[`ExperimentArguments`] plus the checkpoint to compare and the training shares.

    Args:
        muppet_checkpoint (`str`, *optional*, defaults to `"runs/muppet-minilm-offline"`): the pre-finetuned model
            (the main job's output). When the folder does not exist it is made by pre-finetuning `--recipe` (with
            `--backbone` and `--prefinetune_args`); a folder without `config.json` (a run still going) is an error.
        fractions (`list[float]`, *optional*, defaults to `[0.1, 0.3, 1.0]`): shares of each capped training set.
    """

    output_dir: str = field(default="runs/evaluation/transfer", metadata={"help": "Experiment folder."})
    muppet_checkpoint: str = field(
        default="runs/muppet-minilm-offline", metadata={"help": "Muppet checkpoint; made from --recipe if missing."}
    )
    fractions: list[float] = field(
        default_factory=lambda: [0.1, 0.3, 1.0], metadata={"help": "Shares of each capped training set."}
    )

    def __post_init__(self):
        super().__post_init__()
        if not self.fractions or not all(0 < fraction <= 1 for fraction in self.fractions):
            raise ValueError(f"field `fractions`: every share must be in (0, 1], got {self.fractions}")


def parse_args(argv: list[str] | None = None) -> TransferArguments:
    return HfArgumentParser(TransferArguments).parse_args_into_dataclasses(argv)[0]


def muppet_checkpoint(args: TransferArguments, recipe: dict) -> tuple[Path, dict]:
    """The Muppet checkpoint, pre-finetuned from `--recipe` first when its folder does not exist.

    Returns:
        The checkpoint folder and what it says about its pre-finetuning run.
    """
    path = Path(args.muppet_checkpoint)
    if (path / "config.json").is_file():
        return path, prefinetune_record(path, "muppet")
    if path.exists():
        raise ValueError(
            f"{path} holds no finished checkpoint (no config.json; field `muppet_checkpoint`): wait for its "
            "pre-finetuning to end, or delete the folder to pre-finetune it here"
        )
    print(f"no Muppet checkpoint at {path}: pre-finetuning it from {args.recipe}", flush=True)
    return path, prefinetune(path, variant_recipe(recipe, args), args, "muppet")


def deltas(runs: list[dict], aggregates: list[dict], tasks: list[str], fractions: list[float]) -> list[dict]:
    """muppet - base for each task and fraction: the difference of means, and mean and std of the per-seed paired
    differences (both models fine-tuned on the same subset with the same seed)."""
    by_key = {(run["model"], run["task"], run["train_fraction"], run["seed"]): run["score"] for run in runs}
    table = []
    for task in tasks:
        for fraction in fractions:
            base = lookup(aggregates, model="base", task=task, train_fraction=fraction)
            muppet = lookup(aggregates, model="muppet", task=task, train_fraction=fraction)
            if base is None or muppet is None:
                continue
            paired = [
                by_key[("muppet", task, fraction, seed)] - by_key[("base", task, fraction, seed)]
                for seed in base["seeds"]
                if ("muppet", task, fraction, seed) in by_key
            ]
            table.append(
                {
                    "task": task,
                    "train_fraction": fraction,
                    "metric": base["metric"],
                    "base_mean": base["mean"],
                    "muppet_mean": muppet["mean"],
                    "delta": muppet["mean"] - base["mean"],
                    "paired_delta_std": statistics.stdev(paired) if len(paired) > 1 else 0.0,
                    "n": len(paired),
                }
            )
    return table


def main(args: TransferArguments) -> dict:
    """Runs (or resumes) the grid, then writes `results.json`, `results.md` and the plots; returns the results."""
    experiment_dir = Path(args.output_dir)
    experiment_dir.mkdir(parents=True, exist_ok=True)
    recipe = load_recipe(args.recipe)
    backbone = base_backbone(recipe, args)
    checkpoint, record = muppet_checkpoint(args, recipe)
    config = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
    warn_if_not_held_out(list(config.get("tasks") or {}), args)

    runs = finetune_grid(experiment_dir, {"base": backbone, "muppet": str(checkpoint)}, args, args.fractions)
    aggregates = aggregate(runs)
    tasks = held_out_names(args)
    gains = deltas(runs, aggregates, tasks, args.fractions)

    plot_lines(
        aggregates, experiment_dir / "transfer.png", tasks, ["base", "muppet"],
        title="Held-out fine-tuning: base vs Muppet",
    )  # fmt: skip
    gain = {(entry["task"], entry["train_fraction"]): entry["delta"] for entry in gains}
    plot_heatmap(
        [[gain.get((task, fraction), float("nan")) for fraction in args.fractions] for task in tasks],
        tasks,
        [f"{100 * fraction:g}%" for fraction in args.fractions],
        experiment_dir / "transfer_delta.png",
        title="Muppet - base (points)",
        label="points (accuracy x 100 or F1)",
    )
    rows = []
    for task in tasks:
        for fraction in args.fractions:
            base = lookup(aggregates, model="base", task=task, train_fraction=fraction)
            muppet = lookup(aggregates, model="muppet", task=task, train_fraction=fraction)
            delta = f"{gain[(task, fraction)]:+.1f}" if (task, fraction) in gain else "–"
            metric = (base or muppet or {}).get("metric", "")
            rows.append([task, metric, f"{100 * fraction:g}%", format_score(base), format_score(muppet), delta])
    table = markdown_table(["task", "metric", "train share", "base", "Muppet", "Δ"], rows)
    payload = experiment_payload(
        "transfer",
        args,
        runs,
        aggregates,
        models={"base": backbone, "muppet": str(checkpoint)},
        prefinetune=[record],
        deltas=gains,
    )
    write_results(experiment_dir, payload, table)
    return payload


if __name__ == "__main__":
    main(parse_args())
