"""Throughput benchmark of Muppet pre-finetuning (Aghajanyan et al., arXiv 2101.11038) against a plain `Trainer`.

```bash
# Full run: the real all-MiniLM-L6-v2 on five single-text classification tasks of the offline suite, plus a short run
# of the main recipe for its memory (at most ~15 minutes on 2 CPU cores; bf16 on a GPU with `--device auto`):
HF_HUB_OFFLINE=1 python benchmarks/throughput.py --output benchmarks/results/cpu.json

# On a CPU shared with other jobs: one thread per process, so no parallel region waits on a descheduled thread
# (with two threads next to another busy job, a MiniLM forward + backward ran 5x slower than with one):
HF_HUB_OFFLINE=1 python benchmarks/throughput.py --num_threads 1 --output benchmarks/results/cpu_1thread.json

# CI smoke test: a tiny random BERT on synthetic in-memory tasks, no download (under a minute on CPU):
python benchmarks/throughput.py --quick --output /tmp/throughput.json

# Where one MiniLM update's time goes: torch.profiler op shares with 1 and 2 threads.
HF_HUB_OFFLINE=1 python benchmarks/throughput.py --profile --output benchmarks/results/cpu_profile.json \
    --markdown docs/results/profile.md

# Candidate speed-ups, each timed against the default configuration in the same interleaved run:
HF_HUB_OFFLINE=1 python benchmarks/throughput.py --experiments adamw_foreach adamw_for_loop bf16_autocast \
    attention_dropout_off dropout_off compile_backbone --output benchmarks/results/cpu_experiments.json

# Scaling curve: useful tokens/s per sub-batch size (8, 16, 32, 64) and tasks_per_update (1, 4, 16):
HF_HUB_OFFLINE=1 python benchmarks/throughput.py --scaling --output benchmarks/results/cpu_scaling.json \
    --markdown docs/results/throughput_scaling.md --plot docs/results/throughput_scaling.png
```

By default it prints a table and writes a JSON file with five sections, each with its goal:

1. `throughput`: useful (non-padding) tokens per second of training of [`MuppetTrainer`] against `transformers.Trainer`
   fine-tuning `AutoModelForSequenceClassification` on the very same examples, and the padding fraction of each.
   All use the same backbone, sub-batch size, maximum length, accumulation and number of optimizer steps. Two
   baselines: the `Trainer` defaults (a random sampler over the concatenated tasks and `DataCollatorWithPadding`;
   goal: Muppet at least 2.0x), and the `Trainer` with length grouping, its best single-stream loader
   (`train_sampling_strategy="group_by_length"`, which was `group_by_length=True` before transformers 5; goal:
   Muppet, mixing tasks, at least 1.0x). The baselines have one head with `max(num_labels)` outputs and every task
   keeps its label ids: the head reads one pooled vector per example, so its layout costs nothing next to the token
   work. Each run trains exactly one epoch of the example pool (the pool is sized so the sub-batches fill whole
   updates), so every trainer sees every example exactly once. Runs are interleaved (Muppet, Trainer, grouped
   Trainer, Muppet with R3F, then again) and medians are reported; ratios are medians of the per-repeat ratios,
   which pair runs close in time.
2. `r3f`: step time with R3F (`r3f_lambda=1`, arXiv 2008.03156) over step time without (goal: at most 2.0x, the
   two passes the method needs).
3. `utilisation`: FLOP/s spent on useful tokens, `6 × per-token parameters × tokens + 12 × layers × hidden × Σ length²`
   (the attention products, on each example's true length), over the peak of a 2048 × 2048 matmul in the training
   dtype measured next to each repeat (goal: at least 70%).
4. `sampler_scaling`: sampler + fetch + collate time of one update with 5, 50 and 500 synthetic tasks
   (`muppet_hf.sampling.benchmark_sampler`), as a share of the measured Muppet step time (goal: under 2% at 500).
5. `memory`: peak resident memory of `training/prefinetune.py --config <recipe> --max_steps N`, run as a child
   process and read from its resource usage (goal: at most 4 GB). This is a lower bound on the peak of the full
   run: activations grow with the largest sub-batch drawn, and a multiple-choice sub-batch holds
   `choices × sub-batch size` sequences, so a long run meets heavier sub-batches than the first N updates.

Timing: each run's clock starts at the end of its first optimizer step (which also pays for the optimizer's state
and the first kernels) and stops at the end of its last, so data loading, collation, forward, backward and
optimizer steps of the timed updates are all inside it. Tokens are counted from the `attention_mask` of every
sub-batch as the trainer trains on it. Next to wall-clock time, the process's CPU time over the same window is
recorded: on a CPU shared with other jobs it leaves out the time spent waiting for a core, so its ratios are the
steadier ones there (most of all with `--num_threads 1`).
"""

import logging
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import datasets
import numpy as np
import torch
import transformers
import yaml
from torch import nn
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    HfArgumentParser,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_callback import PrinterCallback

from muppet_hf import MuppetConfig, MuppetForMultiTask
from muppet_hf.io_utils import write_json
from muppet_hf.sampling import benchmark_sampler
from muppet_hf.testing_utils import TINY_VOCAB_SIZE, tiny_config, tiny_tokenizer
from muppet_hf.trainer import MuppetTrainer
from muppet_hf.training_args import MuppetTrainingArguments


logger = logging.getLogger("muppet_hf.benchmarks.throughput")
REPO_ROOT = Path(__file__).resolve().parent.parent

# Goals of issue 15 (round two): Muppet >= 2x the default `Trainer` and >= 1x the length-grouped one, R3F at the
# two-pass limit, 70% of the matmul peak.
GOALS = {
    "speedup": 2.0,
    "speedup_grouped": 1.0,
    "r3f_ratio": 2.0,
    "utilisation": 0.7,
    "sampler_share": 0.02,
    "peak_rss_gb": 4.0,
}
DEFAULT_TASKS = ["rotten_tomatoes", "multiemo_en", "fever_claims", "election_tweets", "spam_assassin"]
# Synthetic tasks of the quick mode: (name, number of labels, shortest and longest length). Short and long tasks
# side by side, as in the real mix (tweets and claims against reviews and e-mails cut at `max_length`).
QUICK_TASKS = [
    ("short_claims", 2, 6, 16),
    ("tweets", 2, 20, 40),
    ("snippets", 2, 15, 35),
    ("reviews", 4, 60, 128),
    ("emails", 2, 90, 128),
]
# Full-mode and quick-mode values of the size fields left unset on the command line.
SIZE_DEFAULTS = {
    "examples_per_task": (32, 16),
    "sub_batch_size": (16, 4),
    "tasks_per_update": (2, 2),
    "repeats": (3, 2),
    "memory_steps": (3, 2),
    "memory_max_eval_examples": (8, 8),
    "sampler_examples_per_task": (64, 8),
    "sampler_steps": (200, 50),
    # The tiny model's ops are too small to split across threads; one thread also keeps CI runners steady.
    "num_threads": (None, 1),
    "scaling_examples_per_task": (640, 64),
}
GIGABYTE = 1e9
LEARNING_RATE = 1e-4


# ---- Variants of MuppetTrainer timed by `--experiments` ----
# Each takes the freshly built model (and may change it in place) and returns the overrides of its training
# arguments and an optimizer to use instead of the Trainer's (or None). A new candidate (a per-family token budget of
# the sampler, say) is one more entry here.


def _adamw(foreach: bool) -> Callable[[nn.Module], tuple[dict, torch.optim.Optimizer | None]]:
    def variant(model: nn.Module) -> tuple[dict, torch.optim.Optimizer | None]:
        # The Trainer's own AdamW with weight decay 0 (its default) has the same update.
        return {}, torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, foreach=foreach, fused=False)

    return variant


def _dropout_off(where: str) -> Callable[[nn.Module], tuple[dict, torch.optim.Optimizer | None]]:
    def variant(model: nn.Module) -> tuple[dict, torch.optim.Optimizer | None]:
        for name, module in model.named_modules():
            # BERT's SDPA attention reads its dropout probability from `attention.self.dropout.p`.
            if isinstance(module, nn.Dropout) and (where == "all" or name.endswith("attention.self.dropout")):
                module.p = 0.0
        return {}, None

    return variant


def _compile_backbone(model: nn.Module) -> tuple[dict, torch.optim.Optimizer | None]:
    # Dynamic shapes: every sub-batch has its own length; the heads stay eager (one per task).
    model.backbone.compile(dynamic=True)
    return {}, None


VARIANTS: dict[str, Callable[[nn.Module], tuple[dict, torch.optim.Optimizer | None]]] = {
    "adamw_foreach": _adamw(foreach=True),
    "adamw_for_loop": _adamw(foreach=False),
    "bf16_autocast": lambda model: ({"bf16": True}, None),
    "attention_dropout_off": _dropout_off("attention"),
    "dropout_off": _dropout_off("all"),
    "compile_backbone": _compile_backbone,
}
# What each variant changes beside speed: only those that change nothing else can become the default.
VARIANT_NOTES = {
    "adamw_foreach": "torch AdamW, foreach kernels (the default is `adamw_torch_fused`, the fused CPU kernel)",
    "adamw_for_loop": "torch AdamW, one parameter at a time",
    "bf16_autocast": "bf16 autocast on the CPU (changes numerics)",
    "attention_dropout_off": "attention-probability dropout 0 (changes the regularisation; bound, not a candidate)",
    "dropout_off": "every dropout 0: what all mask generation and masking cost (bound, not a candidate)",
    "compile_backbone": "torch.compile(backbone, dynamic=True); compile time is the first update's extra time",
}


@dataclass
class ThroughputArguments:
    r"""
    Arguments of the throughput benchmark. Size fields left unset take their full-mode value, or their `--quick` one.

    Parameters:
        quick (`bool`, *optional*, defaults to `False`):
            Smoke-test mode: a tiny random BERT, synthetic in-memory tasks, the `tiny` recipe for memory; no download.
        output (`str`, *optional*):
            Where to write the JSON results.
        device (`str`, *optional*, defaults to `"auto"`):
            `"cuda"` (bf16), `"cpu"` (fp32) or `"auto"` (cuda when available).
        tasks (`list[str]`, *optional*):
            Single-text classification tasks of the registry (full mode).
        examples_per_task (`int`, *optional*, defaults to 32, or 16 with `--quick`):
            Training examples drawn from each task (a seeded subset); a multiple of `sub_batch_size`.
        sub_batch_size (`int`, *optional*, defaults to 16, or 4 with `--quick`):
            Examples per sub-batch, for both trainers.
        tasks_per_update (`int`, *optional*, defaults to 2):
            Sub-batches per optimizer update (gradient accumulation), for both trainers.
        max_length (`int`, *optional*, defaults to 128):
            Token cap per example.
        repeats (`int`, *optional*, defaults to 3, or 2 with `--quick`):
            Interleaved repeats of (Muppet, Trainer, Muppet with R3F).
        r3f_lambda (`float`, *optional*, defaults to 1.0):
            R3F weight of the R3F runs.
        sampler_task_counts (`list[int]`, *optional*, defaults to `[5, 50, 500]`):
            Task counts of the sampler-scaling section.
        sampler_examples_per_task (`int`, *optional*, defaults to 64, or 8 with `--quick`):
            Synthetic examples per task of the sampler-scaling section.
        sampler_steps (`int`, *optional*, defaults to 200, or 50 with `--quick`):
            Sub-batches timed per task count.
        recipe (`str`, *optional*):
            Recipe of the memory section; defaults to `training/recipes/offline_suite.yaml` (`tiny.yaml` with
            `--quick`). When the file is missing, an equivalent recipe is generated (MiniLM on the offline suite).
        memory_steps (`int`, *optional*, defaults to 3, or 2 with `--quick`):
            `--max_steps` of the recipe run.
        memory_max_eval_examples (`int`, *optional*, defaults to 8):
            `--max_eval_examples` of the recipe run, which evaluates every task at the end.
        num_threads (`int`, *optional*, defaults to 1 with `--quick`):
            CPU threads of torch; defaults to torch's choice (one per core) in full mode. On a CPU shared with
            another job, 1 thread avoids the stalls of a parallel region waiting for a descheduled thread, so ratios
            are steadier.
        seed (`int`, *optional*, defaults to 42):
            Seed of the example subsets, the models and the samplers.
        max_updates (`int`, *optional*):
            Trains only the first this many updates of the pool's epoch, so that the pool can be large enough for the
            `Trainer`'s length grouping (it sorts mega-batches of `min(50, n / (4 × sub-batch))` sub-batches) at an
            affordable cost. Each trainer then sees its own subset of the pool. Defaults to the whole epoch.
        profile (`bool`, *optional*, defaults to `False`):
            Runs only the profile: one update of MuppetTrainer under `torch.profiler`, per thread count, with each
            op's and each op family's share of the update's op time.
        profile_threads (`list[int]`, *optional*, defaults to `[1, 2]`):
            Thread counts of the profile.
        experiments (`list[str]`, *optional*):
            Runs only these variants of MuppetTrainer (names of `VARIANTS`), interleaved with the default
            configuration, and reports each one's step time over the default's (median of paired runs).
        scaling (`bool`, *optional*, defaults to `False`):
            Runs only the scaling curve: useful tokens/s of MuppetTrainer for every sub-batch size and
            `tasks_per_update` below, on one example pool.
        scaling_sub_batch_sizes (`list[int]`, *optional*, defaults to `[8, 16, 32, 64]`):
            Sub-batch sizes of the scaling curve.
        scaling_tasks_per_update (`list[int]`, *optional*, defaults to `[1, 4, 16]`):
            `tasks_per_update` values of the scaling curve.
        scaling_timed_updates (`int`, *optional*, defaults to 2):
            Timed updates per point of the curve, after one untimed update.
        scaling_examples_per_task (`int`, *optional*, defaults to 640, or 64 with `--quick`):
            Example pool per task of the curve; it must hold `(1 + scaling_timed_updates) × sub-batch ×
            tasks_per_update` examples in all for the largest point.
        markdown (`str`, *optional*):
            Where to write the profile, experiments or scaling table as markdown.
        plot (`str`, *optional*):
            Where to write the scaling curve as a PNG.
    """

    quick: bool = field(default=False, metadata={"help": "Tiny random BERT and synthetic tasks (CI smoke test)."})
    output: str | None = field(default=None, metadata={"help": "Where to write the JSON results."})
    device: Literal["auto", "cpu", "cuda"] = field(
        default="auto", metadata={"help": "`cuda` (bf16), `cpu` (fp32) or `auto` (cuda when available)."}
    )
    tasks: list[str] = field(
        default_factory=lambda: list(DEFAULT_TASKS),
        metadata={"help": "Single-text classification tasks of the registry (full mode)."},
    )
    examples_per_task: int | None = field(
        default=None, metadata={"help": "Examples per task, a multiple of sub_batch_size (32; quick: 16)."}
    )
    sub_batch_size: int | None = field(default=None, metadata={"help": "Examples per sub-batch (16; quick: 4)."})
    tasks_per_update: int | None = field(default=None, metadata={"help": "Sub-batches per optimizer update (2)."})
    max_length: int = field(default=128, metadata={"help": "Token cap per example."})
    repeats: int | None = field(default=None, metadata={"help": "Interleaved repeats (3; quick: 2)."})
    r3f_lambda: float = field(default=1.0, metadata={"help": "R3F weight of the R3F runs."})
    sampler_task_counts: list[int] = field(
        default_factory=lambda: [5, 50, 500], metadata={"help": "Task counts of the sampler-scaling section."}
    )
    sampler_examples_per_task: int | None = field(
        default=None, metadata={"help": "Synthetic examples per task when timing the sampler (64; quick: 8)."}
    )
    sampler_steps: int | None = field(default=None, metadata={"help": "Sub-batches timed per task count (200)."})
    recipe: str | None = field(
        default=None, metadata={"help": "Recipe of the memory run (offline_suite.yaml; quick: tiny.yaml)."}
    )
    memory_steps: int | None = field(default=None, metadata={"help": "--max_steps of the recipe run (3; quick: 2)."})
    memory_max_eval_examples: int | None = field(
        default=None, metadata={"help": "--max_eval_examples of the recipe run (8)."}
    )
    num_threads: int | None = field(
        default=None, metadata={"help": "CPU threads of torch (default: torch's, one per core)."}
    )
    seed: int = field(default=42, metadata={"help": "Seed of the example subsets, models and samplers."})
    max_updates: int | None = field(
        default=None,
        metadata={"help": "Train only the first N updates of the pool's epoch (default: the whole epoch)."},
    )
    profile: bool = field(
        default=False,
        metadata={"help": "Instead of the five sections: profile one update, op shares per thread count."},
    )
    profile_threads: list[int] = field(
        default_factory=lambda: [1, 2], metadata={"help": "Thread counts of the profile."}
    )
    experiments: list[str] | None = field(
        default=None,
        metadata={
            "help": f"Instead of the five sections: time these variants against the default ({list(VARIANTS)})."
        },
    )
    scaling: bool = field(
        default=False,
        metadata={"help": "Instead of the five sections: useful tokens/s per sub-batch size and tasks_per_update."},
    )
    scaling_sub_batch_sizes: list[int] = field(
        default_factory=lambda: [8, 16, 32, 64], metadata={"help": "Sub-batch sizes of the scaling curve."}
    )
    scaling_tasks_per_update: list[int] = field(
        default_factory=lambda: [1, 4, 16], metadata={"help": "tasks_per_update values of the scaling curve."}
    )
    scaling_timed_updates: int = field(default=2, metadata={"help": "Timed updates per point of the scaling curve."})
    scaling_examples_per_task: int | None = field(
        default=None, metadata={"help": "Example pool per task of the scaling curve (640; quick: 64)."}
    )
    markdown: str | None = field(
        default=None, metadata={"help": "Where to write the profile, experiments or scaling table as markdown."}
    )
    plot: str | None = field(default=None, metadata={"help": "Where to write the scaling curve as a PNG."})

    def __post_init__(self):
        for name, (full, quick) in SIZE_DEFAULTS.items():
            if getattr(self, name) is None:
                setattr(self, name, quick if self.quick else full)
        if self.recipe is None:
            self.recipe = "training/recipes/tiny.yaml" if self.quick else "training/recipes/offline_suite.yaml"
        if self.device == "auto":
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        unknown = sorted(set(self.experiments or []) - set(VARIANTS))
        if unknown:
            raise ValueError(
                f"ThroughputArguments: field `experiments` names unknown variants {unknown}; use {list(VARIANTS)}"
            )
        for name in ("examples_per_task", "sub_batch_size", "tasks_per_update", "repeats", "memory_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"ThroughputArguments: field `{name}` must be at least 1")
        if self.examples_per_task % self.sub_batch_size:
            raise ValueError(
                f"ThroughputArguments: field `examples_per_task` ({self.examples_per_task}) must be a multiple of "
                f"`sub_batch_size` ({self.sub_batch_size}), so every sub-batch of both trainers is full"
            )
        num_tasks = len(QUICK_TASKS) if self.quick else len(self.tasks)
        sub_batches = num_tasks * self.examples_per_task // self.sub_batch_size
        if sub_batches % self.tasks_per_update or sub_batches // self.tasks_per_update < 2:
            raise ValueError(
                f"ThroughputArguments: {sub_batches} sub-batches must fill at least two whole updates of "
                f"`tasks_per_update` ({self.tasks_per_update}) sub-batches; change `examples_per_task`"
            )
        if self.max_updates is not None and self.max_updates < 2:
            raise ValueError("ThroughputArguments: field `max_updates` must be at least 2 (the first is untimed)")

    @property
    def num_updates(self) -> int:
        num_tasks = len(QUICK_TASKS) if self.quick else len(self.tasks)
        epoch = num_tasks * self.examples_per_task // (self.sub_batch_size * self.tasks_per_update)
        return epoch if self.max_updates is None else min(epoch, self.max_updates)


# ---- Setup: the same examples and backbone for both trainers ----


@dataclass
class BenchmarkSetup:
    """What both trainers train on: per-task tokenized datasets, the heads Muppet needs and the backbone to load."""

    task_datasets: dict[str, datasets.Dataset]
    heads: dict[str, dict]
    tokenizer: PreTrainedTokenizerBase
    backbone: str
    backbone_path: str | None = None

    @property
    def max_num_labels(self) -> int:
        return max(head["num_labels"] for head in self.heads.values())

    def muppet_model(self) -> MuppetForMultiTask:
        if self.backbone_path is None:
            model = MuppetForMultiTask(MuppetConfig(base_model_config=tiny_config(), heads=self.heads))
        else:
            model = MuppetForMultiTask.from_backbone(self.backbone_path, heads=self.heads)
        model.config.tasks = {name: name for name in self.task_datasets}
        return model

    def plain_model(self) -> PreTrainedModel:
        if self.backbone_path is None:
            return AutoModelForSequenceClassification.from_config(tiny_config(num_labels=self.max_num_labels))
        return AutoModelForSequenceClassification.from_pretrained(self.backbone_path, num_labels=self.max_num_labels)

    def concatenated(self) -> datasets.Dataset:
        """All tasks' examples in one dataset, labels kept as they are (the baseline's head has max(num_labels))."""
        columns: dict[str, list] = {}
        for dataset in self.task_datasets.values():
            for column in ("input_ids", "token_type_ids", "attention_mask", "labels"):
                if column in dataset.column_names:
                    columns.setdefault(column, []).extend(dataset[column])
        return datasets.Dataset.from_dict(columns)


def quick_setup(args: ThroughputArguments) -> BenchmarkSetup:
    """Synthetic tokenized tasks for a tiny random BERT (vocabulary of `tiny_tokenizer`)."""
    rng = np.random.default_rng(args.seed)
    task_datasets, heads = {}, {}
    for name, num_labels, shortest, longest in QUICK_TASKS:
        lengths = rng.integers(shortest, min(longest, args.max_length) + 1, size=args.examples_per_task)
        # Ids 5.. are ordinary tokens of the tiny vocabulary; 2 and 3 are [CLS] and [SEP].
        input_ids = [[2, *rng.integers(5, TINY_VOCAB_SIZE, size=int(n) - 2).tolist(), 3] for n in lengths]
        task_datasets[name] = datasets.Dataset.from_dict(
            {
                "input_ids": input_ids,
                "token_type_ids": [[0] * len(ids) for ids in input_ids],
                "attention_mask": [[1] * len(ids) for ids in input_ids],
                "labels": rng.integers(0, num_labels, size=args.examples_per_task).tolist(),
            }
        )
        heads[name] = {"type": "classification", "num_labels": num_labels}
    return BenchmarkSetup(task_datasets, heads, tiny_tokenizer(model_max_length=args.max_length), "tiny random BERT")


def offline_setup(args: ThroughputArguments) -> BenchmarkSetup:
    """The real MiniLM backbone and a seeded subset of each task's training split, tokenized by `prepare_task`."""
    from muppet_hf.data.offline.backbone import BACKBONE_NAME, default_backbone_path
    from muppet_hf.tasks import get_tasks, heads_for, prepare_task

    specs = get_tasks(args.tasks)
    for spec in specs:
        if spec.family != "classification":
            raise ValueError(
                f"{spec.file}: task {spec.name!r}: the benchmark needs single-text classification tasks, so both "
                f"trainers read the same inputs (field `family` is {spec.family!r})"
            )
    path = str(default_backbone_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    task_datasets = {}
    for spec in specs:
        prepared = prepare_task(
            spec,
            tokenizer,
            max_length=args.max_length,
            splits=("train",),
            max_examples={"train": args.examples_per_task},
            seed=args.seed,
        )
        task_datasets[spec.name] = prepared["train"]
    heads = heads_for(specs)
    if set(heads) != set(task_datasets):
        raise ValueError(
            f"the benchmark gives every task its own head, as the baseline cannot share one; heads {sorted(heads)} "
            f"do not match tasks {sorted(task_datasets)} (field `head` of the task specs)"
        )
    return BenchmarkSetup(task_datasets, heads, tokenizer, BACKBONE_NAME, path)


# ---- Measuring one training run ----


def synchronize(device: str):
    """Waits for queued device work, so wall-clock times cover it (a no-op on CPU, where work is synchronous)."""
    if device == "cuda":
        torch.cuda.synchronize()


class TokenCountingMixin:
    """Records every sub-batch a trainer trains on, as it trains on it: its update and each example's true length.

    Counting in `training_step` rather than in the collator is exact: accelerate's dataloader fetches one batch
    ahead, so collator calls run one sub-batch ahead of the training. Lengths stay on the device until the run ends.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sub_batches: list[tuple[int, int, torch.Tensor]] = []

    def training_step(self, model, inputs, num_items_in_batch=None):
        mask = inputs["attention_mask"]
        self.sub_batches.append((self.state.global_step, mask.numel(), mask.sum(dim=-1)))
        return super().training_step(model, inputs, num_items_in_batch)


class CountingMuppetTrainer(TokenCountingMixin, MuppetTrainer):
    """[`MuppetTrainer`] that records the tokens of every sub-batch."""


class CountingTrainer(TokenCountingMixin, Trainer):
    """`transformers.Trainer` that records the tokens of every sub-batch."""


class StepTimerCallback(TrainerCallback):
    """Wall-clock and process CPU time at the end of every optimizer step.

    The CPU time of this process is the steadier measure on a CPU shared with other jobs (with one thread, it leaves
    out the time the thread waited for a core); on a GPU it is only the host's share of the work.
    """

    def __init__(self, device: str):
        self.device = device
        self.step_ends: dict[int, tuple[float, float]] = {}

    def on_train_begin(self, args, state, control, **kwargs):
        self.step_ends[0] = (time.perf_counter(), time.process_time())

    def on_step_end(self, args, state, control, **kwargs):
        synchronize(self.device)
        self.step_ends[state.global_step] = (time.perf_counter(), time.process_time())


@dataclass
class RunResult:
    """One training run: its timed window (updates 2..N) and the token counts of the whole run."""

    kind: str
    timed_updates: int
    seconds: float
    cpu_seconds: float
    useful_tokens: int
    padded_tokens: int
    sum_squared_lengths: int
    total_useful_tokens: int
    total_padded_tokens: int
    examples: int
    # Wall-clock seconds of the first, untimed update (with torch.compile, it holds the compilation).
    first_update_s: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.useful_tokens / self.seconds

    @property
    def step_s(self) -> float:
        return self.seconds / self.timed_updates

    @property
    def cpu_tokens_per_s(self) -> float:
        return self.useful_tokens / self.cpu_seconds

    @property
    def cpu_step_s(self) -> float:
        return self.cpu_seconds / self.timed_updates

    @property
    def padding_fraction(self) -> float:
        return 1.0 - self.total_useful_tokens / self.total_padded_tokens

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "tokens_per_s": self.tokens_per_s,
            "step_s": self.step_s,
            "cpu_tokens_per_s": self.cpu_tokens_per_s,
            "cpu_step_s": self.cpu_step_s,
            "padding_fraction": self.padding_fraction,
        }


def run_training(
    kind: str,
    setup: BenchmarkSetup,
    args: ThroughputArguments,
    r3f_lambda: float = 0.0,
    variant: str | None = None,
    max_steps: int | None = None,
) -> RunResult:
    """Trains with `kind` = `"muppet"`, `"plain"` or `"plain_grouped"` and measures it.

    Args:
        kind (`str`): the trainer; `"plain_grouped"` is the `Trainer` with length grouping, its best single-stream
            loader (`train_sampling_strategy="group_by_length"`, `group_by_length=True` before transformers 5).
        r3f_lambda (`float`, *optional*, defaults to 0): R3F weight of a MuppetTrainer run.
        variant (`str`, *optional*): a name of `VARIANTS`, applied to a MuppetTrainer run.
        max_steps (`int`, *optional*): updates to train; defaults to one epoch of the example pool.
    """
    set_seed(args.seed)
    model = setup.muppet_model() if kind == "muppet" else setup.plain_model()
    max_steps = max_steps if max_steps is not None else args.num_updates
    training_overrides, optimizer = {}, None
    if variant is not None:
        training_overrides, optimizer = VARIANTS[variant](model)
    timer = StepTimerCallback(args.device)
    with tempfile.TemporaryDirectory(prefix=f"throughput-{kind}-") as output_dir:
        common = {
            "output_dir": output_dir,
            "per_device_train_batch_size": args.sub_batch_size,
            "gradient_accumulation_steps": args.tasks_per_update,
            "max_steps": max_steps,
            "learning_rate": LEARNING_RATE,
            "seed": args.seed,
            "use_cpu": args.device == "cpu",
            "bf16": args.device == "cuda",
            "dataloader_num_workers": 0,
            "dataloader_pin_memory": args.device == "cuda",
            "logging_strategy": "no",
            "save_strategy": "no",
            "report_to": "none",
            "disable_tqdm": True,
        }
        if kind == "muppet":
            trainer = CountingMuppetTrainer(
                model=model,
                args=MuppetTrainingArguments(
                    **{**common, **training_overrides}, tasks_per_update=args.tasks_per_update, r3f_lambda=r3f_lambda
                ),
                train_dataset=setup.task_datasets,
                processing_class=setup.tokenizer,
                callbacks=[timer],
                optimizers=(optimizer, None),
            )
        else:
            # Trainer defaults: random sampler over the mixed examples, DataCollatorWithPadding (pad to longest);
            # the grouped baseline draws mega-batches of 50 sub-batches and sorts each by length.
            sampling = {"train_sampling_strategy": "group_by_length"} if kind == "plain_grouped" else {}
            trainer = CountingTrainer(
                model=model,
                args=TrainingArguments(**common, **sampling),
                train_dataset=setup.concatenated(),
                processing_class=setup.tokenizer,
                callbacks=[timer],
            )
        # `disable_tqdm` swaps the progress bar for a callback that prints every log; the table is the report here.
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    warmup = 1
    (start, cpu_start), (end, cpu_end) = timer.step_ends[warmup], timer.step_ends[max_steps]
    useful = padded = squared = total_useful = total_padded = examples = 0
    for update, numel, lengths in trainer.sub_batches:
        lengths = lengths.long().cpu()
        count = int(lengths.sum())
        total_useful += count
        total_padded += numel
        examples += len(lengths)
        if update >= warmup:
            useful += count
            padded += numel
            squared += int((lengths**2).sum())
    name = kind if r3f_lambda == 0 else f"{kind}_r3f"
    return RunResult(
        kind=name if variant is None else f"{name}_{variant}",
        timed_updates=max_steps - warmup,
        seconds=end - start,
        cpu_seconds=cpu_end - cpu_start,
        useful_tokens=useful,
        padded_tokens=padded,
        sum_squared_lengths=squared,
        total_useful_tokens=total_useful,
        total_padded_tokens=total_padded,
        examples=examples,
        first_update_s=start - timer.step_ends[0][0],
    )


# ---- FLOPs ----


def per_token_parameters(backbone: nn.Module) -> int:
    """Parameters every token goes through: the backbone without its embedding tables (looked up, not multiplied)
    and its pooler (one vector per sequence)."""
    skipped = {id(p) for module in backbone.modules() if isinstance(module, nn.Embedding) for p in module.parameters()}
    return sum(
        p.numel() for name, p in backbone.named_parameters() if id(p) not in skipped and not name.startswith("pooler.")
    )


def training_flops(run: RunResult, parameters: int, num_layers: int, hidden_size: int) -> float:
    """Forward + backward FLOPs of the run's timed useful tokens (Kaplan et al. 2020; PaLM, arXiv 2204.02311 app. B).

    6 per parameter per token for the matmuls (2 forward, 4 backward), plus QK^T and AV: 2 × 2 × n² × hidden per
    layer for an example of n tokens forward, ×3 with the backward.
    """
    return 6.0 * parameters * run.useful_tokens + 12.0 * num_layers * hidden_size * run.sum_squared_lengths


def matmul_peak_flops(device: str, dtype: torch.dtype, size: int = 2048, trials: int = 5) -> tuple[float, float]:
    """The practical peak the training is compared against: a `size` × `size` matmul in `dtype`.

    Returns:
        `tuple[float, float]`: the best FLOP/s of wall-clock time, and the best FLOP per second of process CPU time
        (the steadier one on a shared CPU).
    """
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    out = torch.empty(size, size, device=device, dtype=dtype)

    def timed(iterations: int) -> tuple[float, float]:
        synchronize(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(iterations):
            torch.matmul(a, b, out=out)
        synchronize(device)
        return (time.perf_counter() - start) / iterations, (time.process_time() - cpu_start) / iterations

    timed(2)  # warm-up: thread pools, kernel selection
    # Enough matmuls per trial to last ~0.1 s, so a fast GPU is not timed at the clock's resolution.
    iterations = max(1, math.ceil(0.1 / timed(1)[0]))
    trial_times = [timed(iterations) for _ in range(trials)]
    flops = 2.0 * size**3
    return flops / min(wall for wall, _ in trial_times), flops / min(cpu for _, cpu in trial_times)


# ---- Memory of the recipe ----


def fallback_recipe(path: Path, device: str):
    """A stand-in for the main recipe: MiniLM on every encoder-compatible task of the offline suite."""
    from muppet_hf.data import default_backbone_path
    from muppet_hf.tasks import list_tasks

    recipe = {
        "tasks": [spec.name for spec in list_tasks(suite="offline") if spec.head_type != "seq2seq"],
        "model_name_or_path": str(default_backbone_path()),
        "max_length": 128,
        "max_train_examples": 2000,
        "per_device_train_batch_size": 16,
        "per_device_eval_batch_size": 64,
        "tasks_per_update": 4,
        "use_cpu": device == "cpu",
        "bf16": device == "cuda",
        "dataloader_num_workers": 0,
    }
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")


def measure_recipe_memory(args: ThroughputArguments) -> dict:
    """Runs the recipe for a few updates in a child process and reads the child's peak resident memory.

    `os.wait4` returns the resource usage of that child alone (on Linux its `ru_maxrss` also covers its own waited-for
    children, as the largest of them, e.g. dataloader workers), so nothing this benchmark process allocated counts.
    """
    recipe = Path(args.recipe)
    if not recipe.is_absolute():
        recipe = REPO_ROOT / recipe
    with tempfile.TemporaryDirectory(prefix="throughput-memory-") as tmp:
        generated = not recipe.is_file()
        if generated:
            logger.warning("recipe %s not found; measuring a generated stand-in (MiniLM, offline suite)", recipe)
            recipe = Path(tmp) / "fallback_recipe.yaml"
            fallback_recipe(recipe, args.device)
        command = [
            sys.executable,
            str(REPO_ROOT / "training" / "prefinetune.py"),
            "--config",
            str(recipe),
            "--max_steps",
            str(args.memory_steps),
            "--max_eval_examples",
            str(args.memory_max_eval_examples),
            "--output_dir",
            str(Path(tmp) / "run"),
            "--save_strategy",
            "no",
            "--report_to",
            "none",
            "--disable_tqdm",
            "true",
        ]
        log_path = Path(tmp) / "recipe.log"
        start = time.perf_counter()
        with log_path.open("w", encoding="utf-8") as log:
            process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        if process.returncode != 0:
            tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
            raise RuntimeError(f"the recipe run failed with status {process.returncode}: {' '.join(command)}\n{tail}")
    # ru_maxrss is in kilobytes on Linux.
    peak_gb = usage.ru_maxrss * 1024 / GIGABYTE
    return {
        "recipe": str(recipe.relative_to(REPO_ROOT)) if not generated else "generated stand-in (recipe missing)",
        "command": " ".join(command[1:]),
        "max_steps": args.memory_steps,
        "seconds": seconds,
        "peak_rss_gb": peak_gb,
        "lower_bound": "peak of the first `max_steps` updates; a full run may draw heavier sub-batches",
        "goal_gb": GOALS["peak_rss_gb"],
        "met": peak_gb <= GOALS["peak_rss_gb"],
    }


# ---- The benchmark ----


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def cpu_flags() -> list[str]:
    """The processor's bf16 and wide-vector flags (Linux `/proc/cpuinfo`), which decide what bf16 autocast can use."""
    path = Path("/proc/cpuinfo")
    if not path.is_file():
        return []
    wanted = {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("flags"):
            return sorted(wanted & set(line.split(":", 1)[1].split()))
    return []


def benchmark_meta(args: ThroughputArguments, setup: BenchmarkSetup) -> dict:
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    return {
        "mode": "quick" if args.quick else "full",
        "device": args.device,
        "dtype": str(dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "backbone": setup.backbone,
        "tasks": list(setup.task_datasets),
        "examples_per_task": args.examples_per_task,
        "sub_batch_size": args.sub_batch_size,
        "tasks_per_update": args.tasks_per_update,
        "updates_per_run": args.num_updates,
        "timed_updates_per_run": args.num_updates - 1,
        "max_length": args.max_length,
        "repeats": args.repeats,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "cpu_flags": cpu_flags(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "command": " ".join(["python", *sys.argv]),
        "baseline_head": f"one head with max(num_labels) = {setup.max_num_labels} outputs, task labels as is",
    }


def run_benchmark(args: ThroughputArguments) -> dict:
    """Runs all five sections and returns the results as a JSON-ready dict."""
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    if args.num_threads is not None:
        torch.set_num_threads(args.num_threads)
    setup = quick_setup(args) if args.quick else offline_setup(args)
    logger.info(
        "tasks %s, %d examples each; %d updates per run",
        list(setup.task_datasets),
        args.examples_per_task,
        args.num_updates,
    )

    runs: dict[str, list[RunResult]] = {"muppet": [], "plain": [], "plain_grouped": [], "muppet_r3f": []}
    peaks: list[tuple[float, float]] = []
    for repeat in range(args.repeats):
        peaks.append(matmul_peak_flops(args.device, dtype))
        for kind, r3f_lambda in (("muppet", 0.0), ("plain", 0.0), ("plain_grouped", 0.0), ("muppet", args.r3f_lambda)):
            result = run_training(kind, setup, args, r3f_lambda)
            runs[result.kind].append(result)
            logger.info(
                "repeat %d %-13s %8.1f useful tokens/s, %.3f s/update, padding %.1f%%",
                repeat + 1,
                result.kind,
                result.tokens_per_s,
                result.step_s,
                100 * result.padding_fraction,
            )

    muppet, plain, grouped, r3f = runs["muppet"], runs["plain"], runs["plain_grouped"], runs["muppet_r3f"]
    speedups = [m.tokens_per_s / p.tokens_per_s for m, p in zip(muppet, plain, strict=True)]
    grouped_speedups = [m.tokens_per_s / g.tokens_per_s for m, g in zip(muppet, grouped, strict=True)]
    r3f_ratios = [r.step_s / m.step_s for m, r in zip(muppet, r3f, strict=True)]
    cpu_speedups = [m.cpu_tokens_per_s / p.cpu_tokens_per_s for m, p in zip(muppet, plain, strict=True)]
    cpu_r3f_ratios = [r.cpu_step_s / m.cpu_step_s for m, r in zip(muppet, r3f, strict=True)]
    throughput = {
        "muppet_tokens_per_s": median([run.tokens_per_s for run in muppet]),
        "plain_tokens_per_s": median([run.tokens_per_s for run in plain]),
        "speedup": median(speedups),
        "speedups": speedups,
        "speedup_cpu_time": median(cpu_speedups),
        "muppet_padding_fraction": median([run.padding_fraction for run in muppet]),
        "plain_padding_fraction": median([run.padding_fraction for run in plain]),
        "muppet_step_s": median([run.step_s for run in muppet]),
        "plain_step_s": median([run.step_s for run in plain]),
        "goal": GOALS["speedup"],
        "met": median(speedups) >= GOALS["speedup"],
        "grouped_tokens_per_s": median([run.tokens_per_s for run in grouped]),
        "speedup_vs_grouped": median(grouped_speedups),
        "speedups_vs_grouped": grouped_speedups,
        "speedup_vs_grouped_cpu_time": median(
            [m.cpu_tokens_per_s / g.cpu_tokens_per_s for m, g in zip(muppet, grouped, strict=True)]
        ),
        "grouped_padding_fraction": median([run.padding_fraction for run in grouped]),
        "grouped_step_s": median([run.step_s for run in grouped]),
        "goal_vs_grouped": GOALS["speedup_grouped"],
        "met_vs_grouped": median(grouped_speedups) >= GOALS["speedup_grouped"],
        "runs": [run.to_dict() for run in [*muppet, *plain, *grouped]],
    }
    r3f_section = {
        "step_s_without": median([run.step_s for run in muppet]),
        "step_s_with": median([run.step_s for run in r3f]),
        "ratio": median(r3f_ratios),
        "ratios": r3f_ratios,
        "ratio_cpu_time": median(cpu_r3f_ratios),
        "r3f_lambda": args.r3f_lambda,
        "goal": GOALS["r3f_ratio"],
        "met": median(r3f_ratios) <= GOALS["r3f_ratio"],
        "runs": [run.to_dict() for run in r3f],
    }

    backbone = setup.muppet_model().backbone
    config = backbone.config
    parameters = per_token_parameters(backbone)
    achieved = [
        training_flops(run, parameters, config.num_hidden_layers, config.hidden_size) / run.seconds for run in muppet
    ]
    utilisations = [flops / peak for flops, (peak, _) in zip(achieved, peaks, strict=True)]
    cpu_utilisations = [
        training_flops(run, parameters, config.num_hidden_layers, config.hidden_size) / run.cpu_seconds / peak
        for run, (_, peak) in zip(muppet, peaks, strict=True)
    ]
    utilisation = {
        "achieved_flops_per_s": median(achieved),
        "peak_flops_per_s": median([peak for peak, _ in peaks]),
        "utilisation": median(utilisations),
        "utilisations": utilisations,
        "utilisation_cpu_time": median(cpu_utilisations),
        "per_token_parameters": parameters,
        "peak": f"2048x2048 torch.matmul, {str(dtype).removeprefix('torch.')}",
        "goal": GOALS["utilisation"],
        "met": median(utilisations) >= GOALS["utilisation"],
    }

    step_s = throughput["muppet_step_s"]
    scaling = {}
    for num_tasks in args.sampler_task_counts:
        timing = benchmark_sampler(
            num_tasks,
            examples_per_task=args.sampler_examples_per_task,
            sub_batch_size=args.sub_batch_size,
            update_size=args.tasks_per_update,
            steps=args.sampler_steps,
            seed=args.seed,
        )
        scaling[str(num_tasks)] = {**timing, "share_of_step": timing["per_update_s"] / step_s}
    largest = scaling[str(max(args.sampler_task_counts))]["share_of_step"]
    sampler_section = {
        "tasks": scaling,
        "step_s": step_s,
        "goal_share": GOALS["sampler_share"],
        "met": largest < GOALS["sampler_share"],
    }

    memory = measure_recipe_memory(args)

    return {
        "meta": benchmark_meta(args, setup),
        "throughput": throughput,
        "r3f": r3f_section,
        "utilisation": utilisation,
        "sampler_scaling": sampler_section,
        "memory": memory,
    }


def format_table(results: dict) -> str:
    """The results as a fixed-width text table, one line per number, with its goal and whether it is met."""
    meta, throughput, r3f = results["meta"], results["throughput"], results["r3f"]
    utilisation, scaling, memory = results["utilisation"], results["sampler_scaling"], results["memory"]

    def verdict(met: bool) -> str:
        return "yes" if met else "NO"

    rows = [
        ("1. useful tokens/s, MuppetTrainer", f"{throughput['muppet_tokens_per_s']:.1f}", "", ""),
        ("   useful tokens/s, Trainer", f"{throughput['plain_tokens_per_s']:.1f}", "", ""),
        ("   useful tokens/s, Trainer grouped by length", f"{throughput['grouped_tokens_per_s']:.1f}", "", ""),
        (
            "   speedup vs Trainer (median of paired runs)",
            f"{throughput['speedup']:.2f}x",
            f">= {GOALS['speedup']:.1f}x",
            verdict(throughput["met"]),
        ),
        ("   speedup vs Trainer in process CPU time", f"{throughput['speedup_cpu_time']:.2f}x", "", ""),
        (
            "   speedup vs grouped Trainer (paired runs)",
            f"{throughput['speedup_vs_grouped']:.2f}x",
            f">= {GOALS['speedup_grouped']:.1f}x",
            verdict(throughput["met_vs_grouped"]),
        ),
        ("   speedup vs grouped in process CPU time", f"{throughput['speedup_vs_grouped_cpu_time']:.2f}x", "", ""),
        ("   padding fraction, MuppetTrainer", f"{100 * throughput['muppet_padding_fraction']:.1f}%", "", ""),
        ("   padding fraction, Trainer", f"{100 * throughput['plain_padding_fraction']:.1f}%", "", ""),
        ("   padding fraction, grouped Trainer", f"{100 * throughput['grouped_padding_fraction']:.1f}%", "", ""),
        (
            "   s/update, MuppetTrainer / Trainer / grouped",
            f"{throughput['muppet_step_s']:.3f} / {throughput['plain_step_s']:.3f} / {throughput['grouped_step_s']:.3f}",
            "",
            "",
        ),
        ("2. s/update with R3F / without", f"{r3f['step_s_with']:.3f} / {r3f['step_s_without']:.3f}", "", ""),
        (
            "   R3F cost (median of paired runs)",
            f"{r3f['ratio']:.2f}x",
            f"<= {GOALS['r3f_ratio']:.1f}x",
            verdict(r3f["met"]),
        ),
        ("   R3F cost in process CPU time", f"{r3f['ratio_cpu_time']:.2f}x", "", ""),
        ("3. useful GFLOP/s, MuppetTrainer", f"{utilisation['achieved_flops_per_s'] / 1e9:.1f}", "", ""),
        (f"   peak GFLOP/s ({utilisation['peak']})", f"{utilisation['peak_flops_per_s'] / 1e9:.1f}", "", ""),
        (
            "   utilisation",
            f"{100 * utilisation['utilisation']:.1f}%",
            f">= {100 * GOALS['utilisation']:.0f}%",
            verdict(utilisation["met"]),
        ),
        ("   utilisation in process CPU time", f"{100 * utilisation['utilisation_cpu_time']:.1f}%", "", ""),
    ]
    counts = list(scaling["tasks"])
    for index, count in enumerate(counts):
        timing = scaling["tasks"][count]
        last = index == len(counts) - 1
        rows.append(
            (
                f"{'4.' if index == 0 else '  '} sampler+collator per update, {count} tasks",
                f"{1e3 * timing['per_update_s']:.2f} ms = {100 * timing['share_of_step']:.3f}%",
                f"< {100 * GOALS['sampler_share']:.0f}%" if last else "",
                verdict(scaling["met"]) if last else "",
            )
        )
    rows.append(
        (
            f"5. peak RSS, first {memory['max_steps']} updates of the recipe (lower bound)",
            f"{memory['peak_rss_gb']:.2f} GB",
            f"<= {GOALS['peak_rss_gb']:.0f} GB",
            verdict(memory["met"]),
        )
    )
    header = (
        f"Muppet throughput benchmark ({meta['mode']}): {meta['backbone']}, {meta['device']} {meta['dtype']}, "
        f"{meta['threads']} threads; {len(meta['tasks'])} tasks x {meta['examples_per_task']} examples, sub-batch "
        f"{meta['sub_batch_size']}, {meta['tasks_per_update']} per update, {meta['updates_per_run']} updates per run "
        f"(first untimed), {meta['repeats']} interleaved repeats; recipe {memory['recipe']}"
    )
    width = max(len(row[0]) for row in rows)
    value_width = max(len(row[1]) for row in rows)
    lines = [header, f"{'metric':<{width}}  {'value':>{value_width}}  {'goal':<9}  met"]
    lines += [f"{name:<{width}}  {value:>{value_width}}  {goal:<9}  {met}".rstrip() for name, value, goal, met in rows]
    return "\n".join(lines)


# ---- Profile of one update ----

# Op families of the profile, matched on the op name in this order; the rest is "other".
OP_FAMILIES = [
    ("matmul (mm, addmm, bmm)", ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")),
    ("attention kernels (SDPA)", ("scaled_dot_product", "_flash_attention", "_efficient_attention")),
    ("dropout masks (bernoulli_)", ("aten::bernoulli",)),
    ("optimizer (AdamW)", ("adam",)),
    ("embedding backward", ("embedding",)),
    ("layer norm", ("layer_norm",)),
    ("GELU", ("gelu",)),
    ("softmax / log-softmax", ("softmax",)),
    ("element-wise mul / add / div", ("aten::mul", "aten::add", "aten::div", "aten::sub", "aten::where")),
    (
        "copies, fills, zeros",
        ("aten::copy_", "aten::fill_", "aten::zero_", "aten::clone", "aten::to", "aten::_to_copy"),
    ),
    ("reductions (sum, mean)", ("aten::sum", "aten::mean")),
]


def op_family(name: str) -> str:
    lowered = name.lower()
    for family, patterns in OP_FAMILIES:
        if any(pattern in lowered for pattern in patterns):
            return family
    return "other"


class ProfileUpdateCallback(TrainerCallback):
    """Runs `torch.profiler` around one optimizer update (the second, after the first paid for the warm-up)."""

    def __init__(self, update: int = 1):
        self.update = update
        self.profiler: torch.profiler.profile | None = None
        self.wall_s = 0.0
        self._start = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.update:
            self.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
            self.profiler.__enter__()
            self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.update + 1 and self.profiler is not None:
            self.wall_s = time.perf_counter() - self._start
            self.profiler.__exit__(None, None, None)


def profile_update(setup: BenchmarkSetup, args: ThroughputArguments, num_threads: int, top: int = 15) -> dict:
    """Op shares of one MuppetTrainer update (default configuration) with `num_threads` threads.

    Shares are of the summed self CPU time of all ops, which leaves out Python time between ops; `op_time_share`
    says how much of the update's wall-clock time the ops cover.
    """
    torch.set_num_threads(num_threads)
    set_seed(args.seed)
    callback = ProfileUpdateCallback()
    with tempfile.TemporaryDirectory(prefix="throughput-profile-") as output_dir:
        trainer = MuppetTrainer(
            model=setup.muppet_model(),
            args=MuppetTrainingArguments(
                output_dir=output_dir,
                per_device_train_batch_size=args.sub_batch_size,
                tasks_per_update=args.tasks_per_update,
                max_steps=2,
                learning_rate=LEARNING_RATE,
                seed=args.seed,
                use_cpu=args.device == "cpu",
                bf16=args.device == "cuda",
                logging_strategy="no",
                save_strategy="no",
                report_to="none",
                disable_tqdm=True,
            ),
            train_dataset=setup.task_datasets,
            processing_class=setup.tokenizer,
            callbacks=[callback],
        )
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    events = callback.profiler.key_averages()
    # Self time in microseconds; `self_device_time_total` would be the GPU's.
    self_times = {event.key: (event.self_cpu_time_total, event.count) for event in events}
    total = sum(time_us for time_us, _ in self_times.values())
    families: dict[str, float] = {}
    for name, (time_us, _) in self_times.items():
        families[op_family(name)] = families.get(op_family(name), 0.0) + time_us / total
    ops = sorted(self_times.items(), key=lambda item: -item[1][0])[:top]
    return {
        "threads": num_threads,
        "update_wall_s": callback.wall_s,
        "op_time_s": total / 1e6,
        "op_time_share": total / 1e6 / callback.wall_s,
        "families": dict(sorted(families.items(), key=lambda item: -item[1])),
        "top_ops": [{"op": name, "share": time_us / total, "calls": count} for name, (time_us, count) in ops],
    }


def run_profile(args: ThroughputArguments) -> dict:
    setup = quick_setup(args) if args.quick else offline_setup(args)
    profiles = [profile_update(setup, args, threads) for threads in args.profile_threads]
    return {"meta": benchmark_meta(args, setup), "profiles": profiles}


def profile_markdown(results: dict) -> str:
    profiles = results["profiles"]
    threads = " | ".join(f"{p['threads']} thread{'s' if p['threads'] > 1 else ''}" for p in profiles)
    lines = [
        f"| op family | {threads} |",
        "|---|" + "---|" * len(profiles),
    ]
    families = list(profiles[0]["families"])
    for profile in profiles[1:]:
        families += [family for family in profile["families"] if family not in families]
    for family in families:
        shares = " | ".join(f"{100 * p['families'].get(family, 0.0):.1f}%" for p in profiles)
        lines.append(f"| {family} | {shares} |")
    walls = " | ".join(f"{p['update_wall_s']:.2f} s ({100 * p['op_time_share']:.0f}% in ops)" for p in profiles)
    lines.append(f"| *update wall time* | {walls} |")
    for profile in profiles:
        lines += ["", f"Top ops, {profile['threads']} thread(s):", "", "| op | share | calls |", "|---|---|---|"]
        lines += [f"| `{op['op']}` | {100 * op['share']:.1f}% | {op['calls']} |" for op in profile["top_ops"]]
    return "\n".join(lines)


# ---- Variants against the default configuration ----


def run_experiments(args: ThroughputArguments) -> dict:
    """Times each variant against the default MuppetTrainer, interleaved (default, variant, variant, ...) per repeat."""
    if args.num_threads is not None:
        torch.set_num_threads(args.num_threads)
    setup = quick_setup(args) if args.quick else offline_setup(args)
    runs: dict[str, list[RunResult]] = {name: [] for name in ["default", *args.experiments]}
    for repeat in range(args.repeats):
        for name in runs:
            result = run_training("muppet", setup, args, variant=None if name == "default" else name)
            runs[name].append(result)
            logger.info("repeat %d %-22s %.3f s/update", repeat + 1, name, result.step_s)
    default = runs["default"]
    variants = {}
    for name in args.experiments:
        ratios = [run.step_s / base.step_s for run, base in zip(runs[name], default, strict=True)]
        variants[name] = {
            "what": VARIANT_NOTES[name],
            "step_s": median([run.step_s for run in runs[name]]),
            "step_ratio": median(ratios),
            "step_ratios": ratios,
            "step_ratio_cpu_time": median(
                [run.cpu_step_s / base.cpu_step_s for run, base in zip(runs[name], default, strict=True)]
            ),
            "first_update_extra_s": median(
                [run.first_update_s - base.first_update_s for run, base in zip(runs[name], default, strict=True)]
            ),
        }
    return {
        "meta": benchmark_meta(args, setup),
        "default_step_s": median([run.step_s for run in default]),
        "variants": variants,
        "runs": {name: [run.to_dict() for run in results] for name, results in runs.items()},
    }


def experiments_markdown(results: dict) -> str:
    lines = [
        "| variant | what | step time / default (CPU time) | extra time of the first update |",
        "|---|---|---|---|",
    ]
    for name, variant in results["variants"].items():
        lines.append(
            f"| `{name}` | {variant['what']} | {variant['step_ratio']:.3f}× ({variant['step_ratio_cpu_time']:.3f}×) "
            f"| {variant['first_update_extra_s']:+.1f} s |"
        )
    return "\n".join(lines)


# ---- Scaling curve ----


def run_scaling(args: ThroughputArguments) -> dict:
    """Useful tokens/s of MuppetTrainer for each sub-batch size and `tasks_per_update`, on one example pool."""
    if args.num_threads is not None:
        torch.set_num_threads(args.num_threads)
    updates = 1 + args.scaling_timed_updates
    largest = max(args.scaling_sub_batch_sizes) * max(args.scaling_tasks_per_update) * updates
    pool_args = replace(
        args,
        examples_per_task=args.scaling_examples_per_task,
        sub_batch_size=min(args.scaling_sub_batch_sizes),
        tasks_per_update=1,
    )
    setup = quick_setup(pool_args) if args.quick else offline_setup(pool_args)
    pool = sum(len(dataset) for dataset in setup.task_datasets.values())
    if pool < largest:
        raise ValueError(
            f"ThroughputArguments: field `scaling_examples_per_task` gives a pool of {pool} examples; the largest "
            f"point trains on {largest}; raise it"
        )
    points = []
    for tasks_per_update in args.scaling_tasks_per_update:
        for sub_batch_size in args.scaling_sub_batch_sizes:
            # The pool is `setup`'s and `max_steps` is given, so `examples_per_task` only has to pass validation.
            point_args = replace(
                pool_args,
                sub_batch_size=sub_batch_size,
                tasks_per_update=tasks_per_update,
                examples_per_task=2 * sub_batch_size * tasks_per_update,
            )
            result = run_training("muppet", setup, point_args, max_steps=updates)
            points.append(
                {
                    "sub_batch_size": sub_batch_size,
                    "tasks_per_update": tasks_per_update,
                    "tokens_per_s": result.tokens_per_s,
                    "cpu_tokens_per_s": result.cpu_tokens_per_s,
                    "step_s": result.step_s,
                    "padding_fraction": result.padding_fraction,
                    "run": result.to_dict(),
                }
            )
            logger.info(
                "sub-batch %3d, %2d per update: %8.1f useful tokens/s, padding %.1f%%",
                sub_batch_size,
                tasks_per_update,
                result.tokens_per_s,
                100 * result.padding_fraction,
            )
    return {"meta": benchmark_meta(pool_args, setup), "timed_updates": args.scaling_timed_updates, "points": points}


def scaling_markdown(results: dict) -> str:
    points = results["points"]
    sizes = sorted({point["sub_batch_size"] for point in points})
    lines = [
        "Useful tokens/s of wall-clock time / of process CPU time (padding fraction).",
        "",
        "| tasks_per_update | " + " | ".join(f"sub-batch {size}" for size in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for tasks_per_update in sorted({point["tasks_per_update"] for point in points}):
        row = {p["sub_batch_size"]: p for p in points if p["tasks_per_update"] == tasks_per_update}
        cells = [
            f"{row[size]['tokens_per_s']:.0f} / {row[size]['cpu_tokens_per_s']:.0f} "
            f"({100 * row[size]['padding_fraction']:.0f}% pad)"
            if size in row
            else ""
            for size in sizes
        ]
        lines.append(f"| {tasks_per_update} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_scaling(results: dict, path: Path) -> None:
    """Useful tokens/s against sub-batch size, one line per `tasks_per_update`: of wall-clock time and of CPU time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, panels = plt.subplots(1, 2, figsize=(9, 3.6))
    points = results["points"]
    for axes, key, label in zip(
        panels, ("tokens_per_s", "cpu_tokens_per_s"), ("wall-clock", "process CPU time"), strict=True
    ):
        for tasks_per_update in sorted({point["tasks_per_update"] for point in points}):
            line = sorted(
                (p for p in points if p["tasks_per_update"] == tasks_per_update), key=lambda p: p["sub_batch_size"]
            )
            axes.plot(
                [p["sub_batch_size"] for p in line],
                [p[key] for p in line],
                marker="o",
                label=f"tasks_per_update={tasks_per_update}",
            )
        axes.set_xscale("log", base=2)
        axes.set_xlabel("sub-batch size (examples)")
        axes.set_ylabel(f"useful tokens / s of {label}")
        axes.grid(alpha=0.3)
    panels[0].legend()
    meta = results["meta"]
    figure.suptitle(
        f"MuppetTrainer, {meta['backbone']}, {meta['device']} {meta['dtype']}, {meta['threads']} thread(s)"
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(args: ThroughputArguments) -> dict:
    """Runs the benchmark (or the profile, the experiments or the scaling curve), prints a table, writes the files."""
    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    if args.profile:
        results = run_profile(args)
        table = profile_markdown(results)
    elif args.experiments:
        results = run_experiments(args)
        table = experiments_markdown(results)
    elif args.scaling:
        results = run_scaling(args)
        table = scaling_markdown(results)
        if args.plot is not None:
            plot_scaling(results, Path(args.plot))
    else:
        results = run_benchmark(args)
        table = format_table(results)
    print(table)
    if args.markdown is not None:
        markdown = Path(args.markdown)
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(f"`{results['meta']['command']}`\n\n{table}\n", encoding="utf-8")
    if args.output is not None:
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        write_json(output, results)
    return results


if __name__ == "__main__":
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    (benchmark_args,) = HfArgumentParser(ThroughputArguments).parse_args_into_dataclasses()
    main(benchmark_args)
