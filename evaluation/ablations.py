"""Ablations of pre-finetuning, in miniature: Muppet (arXiv 2101.11038) loss scaling (§3.3) and R3F, and two of the
offline recipe's own choices.

Pre-finetunes the recipe at the same update budget as the baseline (1/log n loss scaling, no R3F) and as variants
that change one thing: without loss scaling, with R3F (arXiv 2008.03156, `r3f_lambda` 1.0), and, on request, without
the head-only warm-up (`head_warmup_steps: 0`), with first-token instead of the recipe's pooling, or with the heads at
the backbone's learning rate instead of their own higher one. Then fine-tunes each model on the held-out tasks. The
paper reports that scaling each head's loss by 1/log n helps multi-task training, and uses R3F-style regularisation
on top of pre-finetuning; the warm-up, the pooling and the heads' rate are this package's choices for a
sentence-embedding backbone, kept only if they help.

```bash
# Default: the offline_suite recipe, 60 of its updates (4 sub-batches of 16) per variant, then the held-out tasks at
# 30% of their (500-example) training sets, seeds 1-3, with the fine-tuning protocol of evaluation/README.md. With the
# old 3-epoch protocol and three held-out tasks it took about 45 minutes on 2 CPU cores (pre-finetuning runs of ~6.5,
# ~6.5 and ~11.5 minutes, as an R3F step costs about two plain ones; 27 fine-tuning runs of ~40 s); the step budget
# and learning-rate sweep cost more:
HF_HUB_OFFLINE=1 python evaluation/ablations.py --output_dir runs/evaluation/ablations

# In parts: two variants side by side, one thread each, into one folder; then all three together, which finds the
# finished runs, runs the rest and writes the joint results.json:
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
for variant in baseline no_loss_scaling; do
  python evaluation/ablations.py --variants $variant --output_dir runs/evaluation/ablations &
done; wait
python evaluation/ablations.py --output_dir runs/evaluation/ablations

# Smoke run of the tiny setup (seconds; make /tmp/tiny-base as in evaluation/transfer.py):
python evaluation/ablations.py --recipe training/recipes/tiny.yaml --backbone /tmp/tiny-base --prefinetune_steps 2 \
    --tasks training/data/tiny/tiny_sentiment.yaml --seeds 1 --finetune_args="--max_steps 2" \
    --output_dir /tmp/ablations
```

Every variant sets both paper fields, whatever the recipe says (the tiny recipe has R3F on): `baseline` is
`loss_scaling: log_n, r3f_lambda: 0`, `no_loss_scaling` changes the first, `r3f` the second (with the recipe's
`r3f_dropout`, by default independent masks per pass as in fairseq's rxf); `no_head_warmup` and `first_token_pooling`
are the baseline plus `head_warmup_steps: 0` or `pooling: first`; `one_learning_rate` trains everything at the
recipe's `backbone_learning_rate` (`learning_rate` set to it, `backbone_learning_rate: null`), and needs a recipe that
has one. Without `--variants` the first three run.

Writes to `--output_dir`: `results.json` (settings, every pre-finetuning and fine-tuning run, mean and std over seeds
per variant and task), `results.md` (the table, also printed) and `ablations.png` (a panel per task, a bar per
variant). A re-run skips the runs that finished.
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


VARIANTS = ("baseline", "no_loss_scaling", "r3f", "no_head_warmup", "first_token_pooling", "one_learning_rate")
DEFAULT_VARIANTS = VARIANTS[:3]


@dataclass
class AblationArguments(PrefinetuneBudgetArguments):
    """[`PrefinetuneBudgetArguments`] plus the variants to run and the R3F weight of the `r3f` variant.

    Args:
        variants (`list[str]`, *optional*, defaults to `baseline`, `no_loss_scaling`, `r3f`): which of those,
            `no_head_warmup`, `first_token_pooling` and `one_learning_rate` to pre-finetune and fine-tune. Two
            processes given disjoint variants and the same `--output_dir` run side by side; a last run naming them
            all then finds every run finished and writes the joint results.
        r3f_lambda (`float`, *optional*, defaults to 1.0): weight of the symmetric-KL term in the `r3f` variant
            (noise and eps as in the recipe, else the `MuppetTrainingArguments` defaults: uniform, 1e-5).
    """

    output_dir: str = field(default="runs/evaluation/ablations", metadata={"help": "Experiment folder."})
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3], metadata={"help": "Fine-tuning seeds."})
    variants: list[str] = field(
        default_factory=lambda: list(DEFAULT_VARIANTS), metadata={"help": f"Variants to run, of {list(VARIANTS)}."}
    )
    r3f_lambda: float = field(default=1.0, metadata={"help": "R3F weight of the `r3f` variant."})

    def __post_init__(self):
        super().__post_init__()
        unknown = sorted(set(self.variants) - set(VARIANTS))
        if unknown or not self.variants:
            raise ValueError(f"field `variants`: choose among {list(VARIANTS)}, got {self.variants}")
        if self.r3f_lambda <= 0:
            raise ValueError(f"field `r3f_lambda` must be positive (the `r3f` variant), got {self.r3f_lambda}")


def parse_args(argv: list[str] | None = None) -> AblationArguments:
    return HfArgumentParser(AblationArguments).parse_args_into_dataclasses(argv)[0]


def main(args: AblationArguments) -> dict:
    """Runs (or resumes) the experiment, then writes `results.json`, `results.md` and the plot; returns the results."""
    experiment_dir = Path(args.output_dir)
    experiment_dir.mkdir(parents=True, exist_ok=True)
    recipe = load_recipe(args.recipe)
    warn_if_not_held_out(task_names(recipe["tasks"]), args)
    # Every variant sets both paper fields; the others change one more.
    baseline = {"loss_scaling": "log_n", "r3f_lambda": 0.0}
    variants = {
        "baseline": baseline,
        "no_loss_scaling": {**baseline, "loss_scaling": "none"},
        "r3f": {**baseline, "r3f_lambda": args.r3f_lambda},
        "no_head_warmup": {**baseline, "head_warmup_steps": 0},
        "first_token_pooling": {**baseline, "pooling": "first"},
    }
    if "one_learning_rate" in args.variants:
        if recipe.get("backbone_learning_rate") is None:
            raise ValueError(
                f"variant `one_learning_rate`: the recipe {args.recipe} has no `backbone_learning_rate`, so its heads "
                "and backbone already share `learning_rate`"
            )
        variants["one_learning_rate"] = {
            **baseline,
            "learning_rate": recipe["backbone_learning_rate"],
            "backbone_learning_rate": None,
        }
    variants = {name: overrides for name, overrides in variants.items() if name in args.variants}
    models, records, runs = run_variants(experiment_dir, args, recipe, variants)

    return report_variants(
        "ablations", experiment_dir, args, recipe, models, records, runs,
        title=f"Ablations: held-out score ({100 * args.fraction:g}% of training data)",
    )  # fmt: skip


if __name__ == "__main__":
    main(parse_args())
