"""The CPU layout of the main job: one process with 2 threads against two gloo processes with 1 thread each.

```bash
# The main recipe for 30 full updates in each layout, interleaved, 2 repeats (~15 minutes on 2 idle CPU cores;
# needs the built suite, `muppet-hf data build offline-suite`):
HF_HUB_OFFLINE=1 python benchmarks/cpu_layout.py --output benchmarks/results/cpu_layout.json

# CI smoke test: the tiny recipe (random 2-layer BERT, tiny tasks), a few seconds per run:
python benchmarks/cpu_layout.py --quick --output /tmp/cpu_layout.json
```

Each layout runs `accelerate launch --config_file <config> training/prefinetune.py --config <recipe>` as a child,
as a user would:

- `1x2`: `training/accelerate_configs/cpu.yaml`, one process, `OMP_NUM_THREADS=2`, the recipe's `tasks_per_update`.
- `2x1`: `training/accelerate_configs/cpu_2proc.yaml`, two processes (gloo), `OMP_NUM_THREADS=1` each, half the
  recipe's `tasks_per_update` per process, so one update accumulates the same number of sub-batches (paper §3.1:
  every worker draws its own task; one update spans `tasks_per_update × processes` sub-batches).

Both train the recipe's model on the recipe's mixture for `--updates` updates with the head-only warm-up off (the
main job's 100 full updates are most of its training time; head-only updates skip the backbone's backward), evaluate
8 examples per task and save no checkpoint. Figures per run:

- `train_runtime` of the Trainer (first update included) per update, and the training examples drawn and their rate.
  Both layouts draw the same sub-batches: the sampler plans each update once and deals sub-batch `i` to process
  `i % processes`, so equal example counts confirm that the two layouts did the same work;
- the whole command's wall time (model and data loading, the launcher, the short evaluation);
- peak memory: the sum over the training processes of their resident memory, sampled every 0.2 s (the peak of the
  sum), and the sum of each training process's own peak (`VmHWM`), an upper bound; the launcher is reported apart.

The runs alternate (1x2, 2x1, then 2x1, 1x2, ...) and each ratio is 2x1 over 1x2 within one repeat, so the two runs
of a pair are close in time; their median is reported. The machine may be shared: say so when quoting the figures.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from muppet_hf.io_utils import write_json


REPO_ROOT = Path(__file__).resolve().parent.parent
GIGABYTE = 1024**3
CONFIGS = REPO_ROOT / "training" / "accelerate_configs"
# name: (accelerate config, processes, threads per process)
LAYOUTS = {"1x2": ("cpu.yaml", 1, 2), "2x1": ("cpu_2proc.yaml", 2, 1)}
SCRIPT = "prefinetune.py"


def process_tree(root: int) -> dict[int, list[str]]:
    """The live descendants of `root` (itself included), each with its argv, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, stack = {}, [root]
    while stack:
        pid = stack.pop()
        try:
            tree[pid] = (Path("/proc") / str(pid) / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        stack.extend(children.get(pid, []))
    return tree


def memory_kb(pid: int) -> tuple[int, int]:
    """(`VmRSS`, `VmHWM`) of a process in kB; zeros once it has exited."""
    values = {}
    try:
        for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    except OSError:
        pass
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def is_training_process(argv: list[str]) -> bool:
    # A training process runs the script itself (`python [-u] training/prefinetune.py ...`); the accelerate launcher
    # runs `python -m accelerate.commands.launch ... prefinetune.py` and only names it further down its argv.
    return any(argument.endswith(SCRIPT) for argument in argv[1:3])


class MemorySampler(threading.Thread):
    """Samples the process tree of a child every `interval` seconds until stopped."""

    def __init__(self, pid: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.stop = threading.Event()
        self.peak_training_kb = 0
        self.peak_launcher_kb = 0
        self.hwm_kb: dict[int, int] = {}
        self.training_pids: set[int] = set()

    def run(self):
        while not self.stop.is_set():
            training, launcher = 0, 0
            for pid, argv in process_tree(self.pid).items():
                rss, hwm = memory_kb(pid)
                if is_training_process(argv):
                    training += rss
                    self.training_pids.add(pid)
                    self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), hwm)
                else:
                    launcher += rss
            self.peak_training_kb = max(self.peak_training_kb, training)
            self.peak_launcher_kb = max(self.peak_launcher_kb, launcher)
            self.stop.wait(self.interval)


def run_layout(layout: str, recipe_path: Path, tasks_per_update: int, updates: int, tmp: Path, label: str) -> dict:
    config, processes, threads = LAYOUTS[layout]
    if tasks_per_update % processes:
        raise ValueError(
            f"{recipe_path}: tasks_per_update {tasks_per_update} does not split over {processes} processes, so the "
            f"{layout} layout could not keep the update's number of sub-batches (pass an even --tasks_per_update)"
        )
    output_dir = tmp / label
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(CONFIGS / config),
        str(REPO_ROOT / "training" / SCRIPT),
        "--config",
        str(recipe_path),
        "--tasks_per_update",
        str(tasks_per_update // processes),
        "--head_warmup_steps",
        "0",
        "--max_steps",
        str(updates),
        "--max_eval_examples",
        "8",
        "--output_dir",
        str(output_dir),
        "--save_strategy",
        "no",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    log_path = tmp / f"{label}.log"
    start = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as log:
        child = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        sampler = MemorySampler(child.pid)
        sampler.start()
        returncode = child.wait()
        sampler.stop.set()
        sampler.join()
    seconds = time.perf_counter() - start
    if returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"{label}: the {layout} run failed: {' '.join(command[3:])}\n{tail}")
    if len(sampler.training_pids) != processes:
        raise RuntimeError(f"{label}: expected {processes} training processes, sampled {len(sampler.training_pids)}")
    train = json.loads((output_dir / "train_results.json").read_text(encoding="utf-8"))
    run = json.loads((output_dir / "muppet_run.json").read_text(encoding="utf-8"))
    examples = sum(task["examples_seen"] for task in run["tasks"].values())
    return {
        "layout": layout,
        "command": f"OMP_NUM_THREADS={threads} " + " ".join(command[3:]),
        "wall_s": seconds,
        "train_runtime_s": train["train_runtime"],
        "s_per_update": train["train_runtime"] / updates,
        "examples": examples,
        "examples_per_s": examples / train["train_runtime"],
        "peak_training_rss_gb": sampler.peak_training_kb * 1024 / GIGABYTE,
        "sum_of_process_peaks_gb": sum(sampler.hwm_kb.values()) * 1024 / GIGABYTE,
        "peak_launcher_rss_gb": sampler.peak_launcher_kb * 1024 / GIGABYTE,
    }


def summarise(runs: list[dict]) -> dict:
    by_repeat: dict[int, dict[str, dict]] = {}
    for run in runs:
        by_repeat.setdefault(run["repeat"], {})[run["layout"]] = run
    ratios = {
        key: statistics.median(pair["2x1"][key] / pair["1x2"][key] for pair in by_repeat.values())
        for key in ("s_per_update", "examples_per_s", "wall_s", "peak_training_rss_gb")
    }
    medians = {
        layout: {
            key: statistics.median(run[key] for run in runs if run["layout"] == layout)
            for key in ("s_per_update", "examples_per_s", "wall_s", "peak_training_rss_gb", "sum_of_process_peaks_gb")
        }
        for layout in LAYOUTS
    }
    return {"ratio_2x1_over_1x2": ratios, "median": medians}


def format_summary(results: dict) -> str:
    lines = [f"{results['recipe']}, {results['updates']} updates per run, {results['repeats']} repeats:"]
    for layout, row in results["median"].items():
        lines.append(
            f"  {layout}: {row['s_per_update']:.2f} s/update, {row['examples_per_s']:.1f} examples/s, whole command "
            f"{row['wall_s']:.0f} s, peak RSS of the training processes {row['peak_training_rss_gb']:.2f} GB "
            f"(sum of their own peaks {row['sum_of_process_peaks_gb']:.2f} GB)"
        )
    ratio = results["ratio_2x1_over_1x2"]
    lines.append(
        f"  2x1 / 1x2 (median of paired ratios): time per update {ratio['s_per_update']:.2f}, examples/s "
        f"{ratio['examples_per_s']:.2f}, whole command {ratio['wall_s']:.2f}, peak RSS {ratio['peak_training_rss_gb']:.2f}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="training/recipes/offline_suite.yaml", help="the recipe to time")
    parser.add_argument("--updates", type=int, default=30, help="training updates per run")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each layout, interleaved")
    parser.add_argument(
        "--tasks_per_update", type=int, help="sub-batches per update over all processes; defaults to the recipe's"
    )
    parser.add_argument(
        "--quick", action="store_true", help="the tiny recipe, 2 sub-batches per update, 6 updates, 1 repeat (CI)"
    )
    parser.add_argument("--output", help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.recipe, args.tasks_per_update, args.updates, args.repeats = "training/recipes/tiny.yaml", 2, 6, 1
    recipe_path = Path(args.recipe)
    recipe_path = recipe_path if recipe_path.is_absolute() else REPO_ROOT / recipe_path
    recipe = yaml.safe_load(recipe_path.read_text(encoding="utf-8"))
    tasks_per_update = args.tasks_per_update or int(recipe.get("tasks_per_update", 1))

    runs = []
    with tempfile.TemporaryDirectory(prefix="cpu-layout-") as tmp:
        for repeat in range(args.repeats):
            order = list(LAYOUTS) if repeat % 2 == 0 else list(reversed(LAYOUTS))
            for layout in order:
                run = run_layout(layout, recipe_path, tasks_per_update, args.updates, Path(tmp), f"{layout}-{repeat}")
                run["repeat"] = repeat
                print(f"  repeat {repeat} {layout}: {json.dumps({k: v for k, v in run.items() if k != 'command'})}")
                runs.append(run)
    results = {
        "recipe": str(recipe_path.relative_to(REPO_ROOT)),
        "tasks_per_update": tasks_per_update,
        "updates": args.updates,
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "runs": runs,
        **summarise(runs),
    }
    print(format_summary(results))
    if args.output:
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        write_json(output, results)
    return results


if __name__ == "__main__":
    main()
