"""The data path of Muppet pre-finetuning (arXiv 2101.11038) at full size: the offline suite uncapped.

The main recipe (`training/recipes/offline_suite.yaml`) caps every task at 2,000 training examples; the suite holds
~188k. This benchmark measures what changes without the cap, all on CPU:

```bash
# Needs the built suite (`muppet-hf data build offline-suite`); ~15 minutes on 2 shared CPU cores.
HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 nice -n 10 python benchmarks/fullsize.py --output benchmarks/results/fullsize_cpu.json
```

It prints its figures and writes them as JSON, in four sections:

1. `tokenization`: `prepare_task` (canonical columns + tokenization) throughput in source examples per second, with
   `num_proc` 1 and 2, on in-memory copies of the first 4,000 training rows of a pair-classification, a
   multiple-choice and an MRC task (so no cache is read or written), interleaved 1, 2, 1, 2.
2. `sampler`: time to build the sampler over the uncapped training sets of the recipe's tasks (their tokenized rows,
   one per MRC window; per-example lengths included) and to plan one epoch, and the peak memory traced while doing
   so; the same for a synthetic mixture of the 47 paper datasets at their specs' sizes (3.6M examples; random
   lengths, no data).
3. `dataloader`: the trainer's own dataloader (sampler, Arrow fetch, collation) over the uncapped tasks: time per
   update (`tasks_per_update` sub-batches), measured before and after a few training updates of the recipe's
   model, and its share of the training step (goal: under 2%).
4. `memory`: peak resident memory (`VmHWM` at exit) of `training/prefinetune.py` on the recipe for a few updates:
   uncapped, capped, then uncapped again (goal: uncapped less than 1 GB above capped); the second uncapped run must
   canonicalize and tokenize no split (goal: a second run re-tokenizes nothing).

Timings are ratios inside one run, as the machine may be shared; say so when quoting them.
"""

import argparse
import gc
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import datasets
import numpy as np
import transformers
import yaml
from transformers import AutoTokenizer, TrainerCallback

from muppet_hf import MuppetForMultiTask
from muppet_hf.data import resolve_model_path
from muppet_hf.io_utils import write_json
from muppet_hf.sampling import MultiTaskBatchSampler, MultiTaskDataset
from muppet_hf.tasks import get_tasks, heads_for, list_tasks, prepare_task
from muppet_hf.trainer import MuppetTrainer
from muppet_hf.training_args import MuppetTrainingArguments


REPO_ROOT = Path(__file__).resolve().parent.parent
GIGABYTE = 1024**3
GOALS = {"data_share_of_step": 0.02, "rss_growth_gb": 1.0, "splits_recomputed_second_run": 0}
TOKENIZATION_TASKS = ("vitaminc", "math_qa", "squad_v1_dev")


def load_recipe(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def in_memory(spec, examples: int) -> datasets.DatasetDict:
    """The first `examples` training rows of a task as an in-memory dataset: `map` neither reads nor writes a cache."""
    from muppet_hf.tasks.preprocessing import load_raw

    train = load_raw(spec, ("train",))["train"]
    train = train.select(range(min(examples, len(train))))
    return datasets.DatasetDict({"train": datasets.Dataset.from_dict(train.to_dict())})


def measure_tokenization(recipe: dict, tokenizer, repeats: int, examples: int) -> dict:
    results = {}
    for name in TOKENIZATION_TASKS:
        (spec,) = get_tasks([name])
        raw = in_memory(spec, examples)
        count = len(raw["train"])
        seconds = {1: [], 2: []}
        for _ in range(repeats):
            for num_proc in (1, 2):
                start = time.perf_counter()
                prepare_task(
                    spec,
                    tokenizer,
                    max_length=recipe["max_length"],
                    doc_stride=recipe["doc_stride"],
                    splits=("train",),
                    raw=raw,
                    num_proc=num_proc,
                )
                seconds[num_proc].append(time.perf_counter() - start)
        results[name] = {
            "family": spec.family,
            "source_examples": count,
            "examples_per_s": {f"num_proc_{n}": count / statistics.median(times) for n, times in seconds.items()},
            "seconds": {f"num_proc_{n}": times for n, times in seconds.items()},
        }
        results[name]["speedup_num_proc_2"] = (
            results[name]["examples_per_s"]["num_proc_2"] / results[name]["examples_per_s"]["num_proc_1"]
        )
    return results


def traced(function):
    """Runs `function()`; returns its result, its seconds and the peak memory (GB) Python and numpy allocated."""
    gc.collect()
    tracemalloc.start()
    start = time.perf_counter()
    result = function()
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, seconds, peak / GIGABYTE


def measure_sampler(train: dict[str, datasets.Dataset], recipe: dict, seed: int) -> dict:
    sub_batch_size = recipe["per_device_train_batch_size"]
    update_size = recipe["tasks_per_update"]

    def build(task_datasets, lengths=None):
        return MultiTaskBatchSampler(
            MultiTaskDataset(task_datasets), sub_batch_size, update_size=update_size, lengths=lengths, seed=seed
        )

    sampler, build_s, build_gb = traced(lambda: build(train))
    plan, plan_s, plan_gb = traced(lambda: sampler.plan(0))
    suite = {
        "tasks": len(train),
        "examples": int(sampler.dataset.sizes.sum()),
        "sub_batches_per_epoch": len(plan),
        "build_s": build_s,
        "build_peak_gb": build_gb,
        "plan_s": plan_s,
        "plan_peak_gb": plan_gb,
    }
    # The paper's mixture: sizes from the specs, random lengths; `range` stands in for each dataset (only its length
    # is read when the lengths are given).
    rng = np.random.default_rng(seed)
    sizes = {spec.name: spec.size["train"] for spec in list_tasks(suite="paper")}
    lengths = [rng.integers(8, 512, size=size) for size in sizes.values()]
    paper_sampler, build_s, build_gb = traced(
        lambda: build({name: range(size) for name, size in sizes.items()}, lengths)
    )
    plan, plan_s, plan_gb = traced(lambda: paper_sampler.plan(0))
    paper = {
        "tasks": len(sizes),
        "examples": int(sum(sizes.values())),
        "sub_batches_per_epoch": len(plan),
        "build_s": build_s,
        "build_peak_gb": build_gb,
        "plan_s": plan_s,
        "plan_peak_gb": plan_gb,
    }
    return {"offline_suite_uncapped": suite, "paper_mixture_synthetic": paper}


class StepTimes(TrainerCallback):
    def __init__(self):
        self.ends: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append(time.perf_counter())


def time_dataloader(trainer: MuppetTrainer, updates: int) -> float:
    """Seconds per update spent in the trainer's dataloader alone (sampler, fetch, collation)."""
    loader = trainer.get_train_dataloader()
    iterator = iter(loader)
    next(iterator)  # the first batch pays for the plan of the epoch; reported in `sampler`
    sub_batches = updates * trainer.args.gradient_accumulation_steps
    start = time.perf_counter()
    for _ in range(sub_batches):
        next(iterator)
    return (time.perf_counter() - start) / updates


def measure_dataloader(train, recipe: dict, tokenizer, model_path: str, updates: int, tmp: str) -> dict:
    specs = get_tasks(recipe["tasks"])
    model = MuppetForMultiTask.from_backbone(model_path, heads=heads_for(specs))
    model.config.tasks = {spec.name: spec.head for spec in specs}
    args = MuppetTrainingArguments(
        output_dir=str(Path(tmp) / "step"),
        per_device_train_batch_size=recipe["per_device_train_batch_size"],
        tasks_per_update=recipe["tasks_per_update"],
        learning_rate=recipe["learning_rate"],
        max_steps=updates + 1,
        seed=recipe["seed"],
        use_cpu=True,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    times = StepTimes()
    trainer = MuppetTrainer(model, args, train_dataset=train, processing_class=tokenizer, callbacks=[times])
    data_before = time_dataloader(trainer, 10)
    trainer.train()
    data_after = time_dataloader(trainer, 10)
    # The first update also pays for the optimizer state and the epoch's plan.
    step_s = statistics.median(np.diff(times.ends).tolist())
    data_s = statistics.median([data_before, data_after])
    return {
        "sub_batch_size": args.per_device_train_batch_size,
        "tasks_per_update": args.tasks_per_update,
        "data_per_update_s": {"before_training": data_before, "after_training": data_after},
        "training_step_s": step_s,
        "step_times_s": np.diff(times.ends).tolist(),
        "data_share_of_step": data_s / step_s,
        "goal": GOALS["data_share_of_step"],
        "met": data_s / step_s < GOALS["data_share_of_step"],
    }


# Runs a script as `__main__` and prints the peak resident memory of this process at exit. The kernel's `ru_maxrss`
# of a child would not do: a forked child starts from its parent's resident pages, which exec records as the child's
# peak (this benchmark holds the uncapped data and a model, so every child would report at least that).
PEAK_RSS_WRAPPER = """
import atexit, runpy, sys

def report():
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    print(f"PEAK_RSS_KB {peak}", flush=True)

atexit.register(report)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_recipe(recipe_path: Path, updates: int, tmp: str, label: str) -> dict:
    """Runs the training script as a child; returns its peak RSS (`VmHWM` at its exit), seconds, and the splits it
    canonicalized or tokenized: `datasets` shows a progress bar for a `map` it computes, none for one read from its
    cache. (Counting new cache files would not do: other jobs may write into the same cache meanwhile.)"""
    command = [
        sys.executable,
        "-c",
        PEAK_RSS_WRAPPER,
        str(REPO_ROOT / "training" / "prefinetune.py"),
        "--config",
        str(recipe_path),
        "--max_steps",
        str(updates),
        "--max_eval_examples",
        "8",
        "--output_dir",
        str(Path(tmp) / label),
        "--save_strategy",
        "no",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
    ]
    log_path = Path(tmp) / f"{label}.log"
    start = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as log:
        returncode = subprocess.run(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - start
    log = log_path.read_text(encoding="utf-8", errors="replace")
    peak = re.search(r"PEAK_RSS_KB (\d+)", log)
    if returncode != 0 or peak is None:
        raise RuntimeError(f"{label}: the recipe run failed: {' '.join(command[3:])}\n{log[-3000:]}")
    return {
        "command": " ".join(command[3:]),
        "seconds": seconds,
        "peak_rss_gb": int(peak.group(1)) * 1024 / GIGABYTE,
        "tokenized_splits": sorted(set(re.findall(r"(\w+): tokenize \((\w+)\)", log))),
        "canonicalized_splits": sorted(set(re.findall(r"(\w+): canonical columns \((\w+)\)", log))),
    }


def measure_memory(recipe_path: Path, recipe: dict, updates: int, tmp: str) -> dict:
    uncapped = {key: value for key, value in recipe.items() if key != "max_train_examples"}
    uncapped["tasks"] = [str(task) for task in recipe["tasks"]]
    uncapped_path = Path(tmp) / "uncapped.yaml"
    uncapped_path.write_text(yaml.safe_dump(uncapped), encoding="utf-8")
    runs = {}
    # The uncapped run twice (the second must find everything cached), the capped one in between.
    for label, path in (("uncapped_1", uncapped_path), ("capped", recipe_path), ("uncapped_2", uncapped_path)):
        runs[label] = run_recipe(path, updates, tmp, label)
        print(f"  {label}: {runs[label]}", flush=True)
    growth = runs["uncapped_2"]["peak_rss_gb"] - runs["capped"]["peak_rss_gb"]
    second = len(runs["uncapped_2"]["tokenized_splits"]) + len(runs["uncapped_2"]["canonicalized_splits"])
    return {
        "updates": updates,
        "runs": runs,
        "rss_growth_gb": growth,
        "rss_goal_gb": GOALS["rss_growth_gb"],
        "rss_met": growth < GOALS["rss_growth_gb"],
        "splits_recomputed_second_run": second,
        "cache_met": second == GOALS["splits_recomputed_second_run"],
    }


def format_summary(results: dict) -> str:
    lines = ["tokenization (prepare_task, source examples/s):"] if "tokenization" in results else []
    for name, row in results.get("tokenization", {}).items():
        rates = row["examples_per_s"]
        lines.append(
            f"  {name:<14} {row['family']:<20} {row['source_examples']:>7,} examples  num_proc 1: "
            f"{rates['num_proc_1']:8.0f}/s  num_proc 2: {rates['num_proc_2']:8.0f}/s  ({row['speedup_num_proc_2']:.2f}x)"
        )
    if "sampler" in results:
        lines.append("sampler (build incl. lengths / plan one epoch, traced peak memory):")
    for name, row in results.get("sampler", {}).items():
        lines.append(
            f"  {name:<24} {row['tasks']} tasks, {row['examples']:,} examples: build {row['build_s']:.2f} s "
            f"({row['build_peak_gb']:.3f} GB), plan {row['plan_s']:.2f} s ({row['plan_peak_gb']:.3f} GB)"
        )
    if "dataloader" in results:
        row = results["dataloader"]
        lines.append(
            f"dataloader: {1000 * row['data_per_update_s']['before_training']:.1f} / "
            f"{1000 * row['data_per_update_s']['after_training']:.1f} ms per update (before / after training) "
            f"vs a {row['training_step_s']:.2f} s step: {100 * row['data_share_of_step']:.2f}% (goal < 2%)"
        )
    if "memory" in results:
        row = results["memory"]
        runs = row["runs"]
        lines.append(
            f"peak RSS, {row['updates']} updates: capped {runs['capped']['peak_rss_gb']:.2f} GB, uncapped "
            f"{runs['uncapped_2']['peak_rss_gb']:.2f} GB: +{row['rss_growth_gb']:.2f} GB (goal < 1 GB)"
        )
        lines.append(
            "splits tokenized (canonicalized): "
            + ", ".join(
                f"{label} {len(run['tokenized_splits'])} ({len(run['canonicalized_splits'])})"
                for label, run in runs.items()
            )
            + " (goal: 0 in the second uncapped run)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="training/recipes/offline_suite.yaml", help="the capped recipe")
    parser.add_argument("--updates", type=int, default=3, help="training updates of the step and memory runs")
    parser.add_argument("--repeats", type=int, default=2, help="repeats of each tokenization measurement")
    parser.add_argument("--tokenization_examples", type=int, default=4000, help="training rows per tokenized task")
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=("tokenization", "sampler", "dataloader", "memory"),
        help="sections to skip",
    )
    parser.add_argument("--output", help="write the results as JSON here")
    args = parser.parse_args(argv)
    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()

    recipe_path = Path(args.recipe)
    recipe_path = recipe_path if recipe_path.is_absolute() else REPO_ROOT / recipe_path
    recipe = load_recipe(recipe_path)
    model_path = resolve_model_path(recipe["model_name_or_path"])
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    results: dict = {"recipe": str(recipe_path.relative_to(REPO_ROOT)), "goals": GOALS}

    if "tokenization" not in args.skip:
        print("1/4 tokenization", flush=True)
        results["tokenization"] = measure_tokenization(recipe, tokenizer, args.repeats, args.tokenization_examples)
    needs_data = {"sampler", "dataloader"} - set(args.skip)
    if needs_data:
        print("2/4 tokenizing the uncapped training sets (cached after the first run)", flush=True)
        start = time.perf_counter()
        specs = get_tasks(recipe["tasks"])
        train = {
            spec.name: prepare_task(
                spec,
                tokenizer,
                max_length=recipe["max_length"],
                doc_stride=recipe["doc_stride"],
                splits=("train",),
                seed=recipe["seed"],
            )["train"]
            for spec in specs
        }
        results["prepare_uncapped_s"] = time.perf_counter() - start
    if "sampler" not in args.skip:
        results["sampler"] = measure_sampler(train, recipe, recipe["seed"])
    with tempfile.TemporaryDirectory(prefix="fullsize-") as tmp:
        if "dataloader" not in args.skip:
            print("3/4 dataloader against the training step", flush=True)
            results["dataloader"] = measure_dataloader(train, recipe, tokenizer, model_path, args.updates, tmp)
        if "memory" not in args.skip:
            print("4/4 peak RSS: uncapped, capped, uncapped again", flush=True)
            results["memory"] = measure_memory(recipe_path, recipe, args.updates, tmp)
    print(format_summary(results))
    if args.output:
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        write_json(output, results)
    return results


if __name__ == "__main__":
    main()
