"""Cost of LoRA pre-finetuning against full pre-finetuning (Muppet, arXiv 2101.11038; LoRA, arXiv 2106.09685).

```bash
# The real all-MiniLM-L6-v2 on the main recipe's 23 tasks (training/recipes/offline_suite.yaml), 128 training examples
# per task, full vs shared LoRA vs per-task LoRA, each run twice, interleaved (about 15 minutes on 2 busy CPU cores):
HF_HUB_OFFLINE=1 python benchmarks/lora.py --output runs/lora_benchmark.json

# CI smoke test: a tiny random BERT on synthetic in-memory tasks (under a minute):
python benchmarks/lora.py --quick --output /tmp/lora_benchmark.json
```

For each training mode it reports:

- `trainable_params`: parameters the optimizer updates (backbone + heads for `full`; adapters + heads for LoRA).
- `optimizer_state_bytes`: bytes of the AdamW state (two moments per trainable parameter, plus step counters).
- `step_s`: median seconds per optimizer update (each of `tasks_per_update` sub-batches of the recipe's size, drawn
  from the task mixture, heterogeneous batching), from the end of the first update to the end of the last.
- `peak_rss_mb`: peak resident memory of the process that trained (each run is its own child process, so the
  figure is that run's alone; it includes the Python runtime, torch and the tokenized data, which all modes share).

The runs are interleaved (full, shared, per-task, then again) and medians of the repeats are reported with the ratio of
each mode to `full`: on a machine shared with other jobs only ratios measured side by side mean anything.
"""

import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import numpy as np
import torch
import yaml
from transformers import AutoTokenizer, HfArgumentParser, TrainerCallback, set_seed

from muppet_hf import MuppetConfig, MuppetForMultiTask
from muppet_hf.data import resolve_model_path
from muppet_hf.io_utils import write_json
from muppet_hf.tasks import get_tasks, heads_for, prepare_task
from muppet_hf.testing_utils import tiny_config
from muppet_hf.trainer import MuppetTrainer
from muppet_hf.training_args import MuppetTrainingArguments


REPO = Path(__file__).resolve().parent.parent
RECIPE = REPO / "training" / "recipes" / "offline_suite.yaml"
MODES = ("full", "shared", "per_task")


@dataclass
class LoraBenchmarkArguments:
    """Arguments of the LoRA benchmark.

    Args:
        quick (`bool`, *optional*, defaults to `False`): tiny random BERT and synthetic tasks instead of the recipe.
        steps (`int`, *optional*, defaults to 6): optimizer updates per run (the first is not timed).
        repeats (`int`, *optional*, defaults to 2): runs of each mode, interleaved.
        max_train_examples (`int`, *optional*, defaults to 128): training examples per task.
        lora_r (`int`, *optional*, defaults to 8): adapter rank.
        num_threads (`int`, *optional*, defaults to 1): torch threads per run.
        output (`str`, *optional*): JSON file to write.
        child (`str`, *optional*): internal: run one mode in this process and print its figures as JSON.
    """

    quick: bool = field(default=False, metadata={"help": "Tiny random BERT and synthetic tasks."})
    steps: int = field(default=6, metadata={"help": "Optimizer updates per run (the first is not timed)."})
    repeats: int = field(default=2, metadata={"help": "Runs of each mode, interleaved."})
    max_train_examples: int = field(default=128, metadata={"help": "Training examples per task."})
    lora_r: int = field(default=8, metadata={"help": "Adapter rank."})
    num_threads: int = field(default=1, metadata={"help": "torch threads per run."})
    output: str | None = field(default=None, metadata={"help": "JSON file to write."})
    child: str | None = field(default=None, metadata={"help": "Internal: run one mode and print its figures."})


class StepClock(TrainerCallback):
    """Times every optimizer update."""

    def __init__(self):
        self.ends: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append(time.perf_counter())


def synthetic_tasks(size: int) -> tuple[dict, dict, dict]:
    """Three tasks of three families on the tiny vocabulary: heads, task -> head, and datasets."""
    rng = np.random.default_rng(0)
    ids = [rng.integers(5, 99, size=int(n)).tolist() for n in rng.integers(16, 48, size=size)]
    masks = [[1] * len(row) for row in ids]
    data = {
        "sent": datasets.Dataset.from_dict(
            {"input_ids": ids, "attention_mask": masks, "labels": rng.integers(0, 2, size).tolist()}
        ),
        "choice": datasets.Dataset.from_dict(
            {"input_ids": [[row] * 4 for row in ids], "attention_mask": [[m] * 4 for m in masks], "labels": [1] * size}
        ),
        "qa": datasets.Dataset.from_dict(
            {"input_ids": ids, "attention_mask": masks, "start_positions": [1] * size, "end_positions": [3] * size}
        ),
    }
    heads = {
        "sent": {"type": "classification", "num_labels": 2},
        "multiple_choice": {"type": "multiple_choice"},
        "span": {"type": "span"},
    }
    return heads, {"sent": "sent", "choice": "multiple_choice", "qa": "span"}, data


def run_mode(mode: str, args: LoraBenchmarkArguments) -> dict:
    """Trains `args.steps` updates in `mode` in this process and returns its figures."""
    torch.set_num_threads(args.num_threads)
    set_seed(0)
    recipe = yaml.safe_load(RECIPE.read_text())
    if args.quick:
        heads, tasks, train = synthetic_tasks(args.max_train_examples)
        model = MuppetForMultiTask(MuppetConfig(base_model_config=tiny_config("bert"), heads=heads, tasks=tasks))
        sub_batch, tasks_per_update = 4, 3
    else:
        specs = get_tasks(recipe["tasks"])
        backbone = resolve_model_path(recipe["model_name_or_path"])
        tokenizer = AutoTokenizer.from_pretrained(backbone)
        train = {
            spec.name: prepare_task(
                spec,
                tokenizer,
                max_length=recipe["max_length"],
                doc_stride=recipe["doc_stride"],
                splits=["train"],
                max_examples={"train": args.max_train_examples},
                seed=0,
            )["train"]
            for spec in specs
        }
        model = MuppetForMultiTask.from_backbone(backbone, heads=heads_for(specs))
        model.config.tasks = {spec.name: spec.head for spec in specs}
        sub_batch, tasks_per_update = recipe["per_device_train_batch_size"], recipe["tasks_per_update"]
    clock = StepClock()
    with tempfile.TemporaryDirectory() as output_dir:
        training_args = MuppetTrainingArguments(
            output_dir=output_dir,
            per_device_train_batch_size=sub_batch,
            tasks_per_update=tasks_per_update,
            max_steps=args.steps,
            learning_rate=1e-3 if mode != "full" else 1e-4,
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            disable_tqdm=True,
            logging_steps=args.steps,
            seed=0,
            dataloader_num_workers=0,
            lora_mode=None if mode == "full" else mode,
            lora_r=args.lora_r,
        )
        trainer = MuppetTrainer(model, training_args, train_dataset=train, callbacks=[clock])
        trainable = sum(param.numel() for param in model.parameters() if param.requires_grad)
        trainer.train()
    optimizer_bytes = sum(
        value.numel() * value.element_size()
        for state in trainer.optimizer.state.values()
        for value in state.values()
        if torch.is_tensor(value)
    )
    steps = np.diff(clock.ends)
    return {
        "mode": mode,
        "trainable_params": trainable,
        "total_params": sum(param.numel() for param in model.parameters()),
        "adapters": len(model.config.lora["adapters"]) if model.config.lora else 0,
        "optimizer_state_bytes": optimizer_bytes,
        "step_s": float(np.median(steps)) if len(steps) else float("nan"),
        # ru_maxrss is in kilobytes on Linux.
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_benchmark(args: LoraBenchmarkArguments) -> dict:
    """Runs every mode `repeats` times, interleaved, each in a child process; returns medians and ratios to full."""
    runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
    flags = ["--steps", str(args.steps), "--max_train_examples", str(args.max_train_examples)]
    flags += ["--lora_r", str(args.lora_r), "--num_threads", str(args.num_threads)]
    if args.quick:
        flags.append("--quick")
    for repeat in range(args.repeats):
        for mode in MODES:
            command = [sys.executable, str(Path(__file__).resolve()), "--child", mode, *flags]
            result = subprocess.run(
                command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
            )
            if result.returncode != 0:
                raise RuntimeError(f"{mode} run {repeat} failed:\n{result.stderr[-3000:]}")
            runs[mode].append(json.loads(result.stdout.strip().splitlines()[-1]))
    summary = {}
    for mode, results in runs.items():
        summary[mode] = {
            key: statistics.median(result[key] for result in results)
            for key in (
                "trainable_params",
                "total_params",
                "adapters",
                "optimizer_state_bytes",
                "step_s",
                "peak_rss_mb",
            )
        }
    for mode in MODES:
        for key in ("trainable_params", "optimizer_state_bytes", "step_s", "peak_rss_mb"):
            summary[mode][f"{key}_vs_full"] = summary[mode][key] / summary["full"][key]
    return {
        "meta": {**asdict(args), "modes": list(MODES), "torch": torch.__version__},
        "summary": summary,
        "runs": runs,
    }


def format_table(results: dict) -> str:
    lines = [
        f"{'mode':<10} {'adapters':>8} {'trainable':>12} {'optimizer state':>16} {'step':>12} {'peak RSS':>12}",
    ]
    for mode, row in results["summary"].items():
        lines.append(
            f"{mode:<10} {row['adapters']:>8.0f} {row['trainable_params']:>12,.0f} "
            f"{row['optimizer_state_bytes'] / 2**20:>12.1f} MiB {row['step_s']:>10.2f} s {row['peak_rss_mb']:>9.0f} MB"
        )
        if mode != "full":
            lines.append(
                f"{'  vs full':<10} {'':>8} {row['trainable_params_vs_full']:>12.3f} "
                f"{row['optimizer_state_bytes_vs_full']:>16.3f} {row['step_s_vs_full']:>12.2f} "
                f"{row['peak_rss_mb_vs_full']:>12.2f}"
            )
    return "\n".join(lines)


def main(args: LoraBenchmarkArguments) -> dict:
    if args.child is not None:
        logging.disable(logging.WARNING)
        print(json.dumps(run_mode(args.child, args)))
        return {}
    results = run_benchmark(args)
    print(format_table(results))
    if args.output:
        write_json(args.output, results)
    return results


if __name__ == "__main__":
    main(*HfArgumentParser(LoraBenchmarkArguments).parse_args_into_dataclasses())
