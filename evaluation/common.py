"""Shared pieces of the miniature Muppet experiments (Aghajanyan et al., arXiv 2101.11038) in this folder.

Each experiment pre-finetunes some variants with `training/prefinetune.py`, fine-tunes the held-out tasks from each
resulting model with `training/finetune.py`, then aggregates, plots and tabulates the held-out scores. This module
holds what they share:

- the experiment arguments (held-out fine-tuning grid, recipe, backbone, pass-through flags);
- `run_script`: one training run in its own folder, as a child process with its log saved next to its outputs,
  skipped when its metrics file already exists, so an interrupted experiment picks up where it stopped;
- `prefinetune` and `finetune_grid`: the two kinds of runs;
- `select_learning_rates`: the learning rate of each model and task, chosen on validation;
- `aggregate`, `markdown_table` and the plots (matplotlib's Agg canvas, no display needed).

The fine-tuning protocol (`ExperimentArguments`): every run trains for a budget of updates (`finetune_steps`), whatever
the size of its training set, evaluates on validation every `finetune_eval_steps` updates, keeps the weights of the
best evaluation and stops early after `early_stopping_patience` evaluations without a gain; it is then scored on the
task's test split (on validation where a task has no test split). Each model picks its learning rate from
`learning_rates` by its mean validation score over fine-tuning seeds; its test scores at that rate are the ones
reported.

Scores are in points, so that tasks share one scale: accuracy × 100 for classification, multiple choice and tagging
(token accuracy), SQuAD F1 (already 0-100) for span MRC.
"""

import contextlib
import importlib
import json
import logging
import math
import shlex
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from muppet_hf.data import DOWNSTREAM_TASKS, resolve_model_path
from muppet_hf.finetuning import PRIMARY_METRICS
from muppet_hf.io_utils import read_json, write_json
from muppet_hf.metrics import metrics_in_percent
from muppet_hf.parser import read_recipe
from muppet_hf.scripts.finetune import is_muppet_checkpoint
from muppet_hf.tasks import TaskSpec, get_task


REPO_ROOT = Path(__file__).resolve().parent.parent
PREFINETUNE_SCRIPT = REPO_ROOT / "training" / "prefinetune.py"
FINETUNE_SCRIPT = REPO_ROOT / "training" / "finetune.py"
DEFAULT_RECIPE = "training/recipes/offline_suite.yaml"
# The file each training script writes last: a run folder holding it is finished and is skipped on a re-run.
PREFINETUNE_DONE = "task_metrics.json"
FINETUNE_DONE = "finetune_metrics.json"
RUN_RECORD = "run.json"
RUN_LOG = "run.log"

# Recipe fields that choose the backbone; `--backbone` replaces all of them with `model_name_or_path`.
BACKBONE_FIELDS = ("model_name_or_path", "backbone_config", "use_tiny_tokenizer", "tokenizer_name_or_path")


@dataclass
class ExperimentArguments:
    """Arguments every experiment shares: where it writes, what it pre-finetunes from, and its fine-tuning grid.

    Args:
        output_dir (`str`): the experiment folder: `results.json`, `results.md`, the plots and one folder per run.
        recipe (`str`, *optional*, defaults to `"training/recipes/offline_suite.yaml"`): the pre-finetuning recipe
            the variants start from (a path relative to the working directory or to the repository).
        backbone (`str`, *optional*): the base model (Hub id, folder or `offline:all-MiniLM-L6-v2`); defaults to the
            recipe's `model_name_or_path`. When given, it also replaces the recipe's backbone, so that the base model
            and the pre-finetuned ones start from the same weights (needed for recipes with a random
            `backbone_config`).
        tasks (`list[str]`, *optional*, defaults to the offline suite's three held-out tasks): tasks to fine-tune on,
            registry names or task YAML paths.
        seeds (`list[int]`, *optional*): fine-tuning seeds; each also draws its own training subset.
        max_train_examples (`int`, *optional*, defaults to 500): cap on each held-out training set; a fraction of 1.0
            is the capped set.
        max_eval_examples (`int`, *optional*, defaults to 200): cap on each held-out validation set.
        max_test_examples (`int`, *optional*, defaults to 1000): cap on each held-out test set.
        max_length (`int`, *optional*, defaults to 128): token cap of fine-tuning examples.
        finetune_steps (`int`, *optional*, defaults to 300): optimizer updates of every fine-tuning run, whatever the
            size of its training set (at most: early stopping may end it sooner). 0 trains for the epochs below
            instead and keeps the last weights: the protocol of the results made before the step budget.
        finetune_eval_steps (`int`, *optional*, defaults to 25): updates between two validation evaluations; the best
            one's weights are kept.
        early_stopping_patience (`int`, *optional*, defaults to 4): evaluations in a row without a gain that end a
            run (0: never stop early).
        num_train_epochs (`float`, *optional*, defaults to 3): with `finetune_steps` 0, fine-tuning epochs of
            classification and multiple-choice tasks.
        span_num_train_epochs (`float`, *optional*, defaults to 1): with `finetune_steps` 0, fine-tuning epochs of span
            MRC tasks, whose examples are split into several windows each.
        per_device_train_batch_size (`int`, *optional*, defaults to 16): fine-tuning batch size.
        learning_rates (`list[float]`, *optional*, defaults to `[3e-5, 1e-4]`): the learning-rate sweep, the same for
            every model (linear decay, 6% warmup); each model and task keeps the rate of its best mean validation
            score over fine-tuning seeds.
        score_split (`str`, *optional*, defaults to `"test"`): the split whose score is reported: `test` (validation
            for a task without one) or `validation` (as the results made before the step budget).
        finetune_args (`str`, *optional*): extra flags for every `training/finetune.py` run, e.g.
            `--finetune_args="--max_steps 2"`; they come last, so they override the ones above.
        prefinetune_args (`str`, *optional*): extra flags for every `training/prefinetune.py` run.
        keep_models (`bool`, *optional*, defaults to `False`): keep the weights of fine-tuned models (only their
            metrics are needed; MiniLM weights are 90 MB a run).
        in_process (`bool`, *optional*, defaults to `False`): run each training run inside this process instead of as
            a child process. Child processes isolate runs; in-process runs skip the interpreter start-up, which is
            most of the time of a tiny smoke run.
    """

    output_dir: str = field(
        metadata={"help": "Experiment folder (results.json, results.md, plots, one folder per run)."}
    )
    recipe: str = field(default=DEFAULT_RECIPE, metadata={"help": "Pre-finetuning recipe the variants start from."})
    backbone: str | None = field(
        default=None, metadata={"help": "Base model; defaults to the recipe's model_name_or_path and replaces it."}
    )
    tasks: list[str] = field(
        default_factory=lambda: list(DOWNSTREAM_TASKS), metadata={"help": "Held-out tasks (names or YAML paths)."}
    )
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3], metadata={"help": "Fine-tuning seeds."})
    max_train_examples: int | None = field(default=500, metadata={"help": "Cap on each held-out training set."})
    max_eval_examples: int | None = field(default=200, metadata={"help": "Cap on each held-out validation set."})
    max_test_examples: int | None = field(default=1000, metadata={"help": "Cap on each held-out test set."})
    max_length: int = field(default=128, metadata={"help": "Token cap of fine-tuning examples."})
    finetune_steps: int = field(
        default=300, metadata={"help": "Updates of every fine-tuning run (0: the epoch counts below)."}
    )
    finetune_eval_steps: int = field(default=25, metadata={"help": "Updates between validation evaluations."})
    early_stopping_patience: int = field(
        default=4, metadata={"help": "Evaluations without a gain that end a run (0: never)."}
    )
    num_train_epochs: float = field(
        default=3.0, metadata={"help": "With finetune_steps 0: epochs (classification, choice)."}
    )
    span_num_train_epochs: float = field(
        default=1.0, metadata={"help": "With finetune_steps 0: epochs of span MRC tasks."}
    )
    per_device_train_batch_size: int = field(default=16, metadata={"help": "Fine-tuning batch size."})
    learning_rates: list[float] = field(
        default_factory=lambda: [3e-5, 1e-4], metadata={"help": "Learning-rate sweep; each model picks on validation."}
    )
    score_split: str = field(
        default="test", metadata={"help": "Split reported: test (where a task has one) or validation."}
    )
    finetune_args: str = field(default="", metadata={"help": "Extra flags for every training/finetune.py run."})
    prefinetune_args: str = field(default="", metadata={"help": "Extra flags for every training/prefinetune.py run."})
    keep_models: bool = field(default=False, metadata={"help": "Keep the weights of fine-tuned models."})
    in_process: bool = field(default=False, metadata={"help": "Run training runs in this process (smoke tests)."})

    def __post_init__(self):
        if not self.tasks:
            raise ValueError("field `tasks`: give at least one held-out task")
        if not self.seeds:
            raise ValueError("field `seeds`: give at least one seed")
        if self.score_split not in ("test", "validation"):
            raise ValueError(f"field `score_split` must be `test` or `validation`, got {self.score_split!r}")
        if not self.learning_rates or not all(rate > 0 for rate in self.learning_rates):
            raise ValueError(f"field `learning_rates`: give positive rates, got {self.learning_rates}")
        if min(self.finetune_steps, self.early_stopping_patience) < 0 or self.finetune_eval_steps < 1:
            raise ValueError(
                "fields `finetune_steps` and `early_stopping_patience` must be at least 0, `finetune_eval_steps` at "
                "least 1"
            )


@dataclass
class PrefinetuneBudgetArguments(ExperimentArguments):
    """[`ExperimentArguments`] plus the pre-finetuning budget of each variant, for the experiments that pre-finetune
    several variants and fine-tune each on one reduced held-out grid.

    Args:
        fraction (`float`, *optional*, defaults to 0.3): share of each (capped) held-out training set.
        prefinetune_steps (`int`, *optional*, defaults to 60): optimizer updates of every variant.
        prefinetune_batch_size (`int`, *optional*): sub-batch size of pre-finetuning; defaults to the recipe's
            `per_device_train_batch_size`. An update holds the recipe's `tasks_per_update` sub-batches.
        prefinetune_max_eval_examples (`int`, *optional*, defaults to 32): cap on each pre-finetuning task's
            validation set (evaluated once, at the end).
    """

    seeds: list[int] = field(default_factory=lambda: [1, 2], metadata={"help": "Fine-tuning seeds."})
    max_eval_examples: int | None = field(default=100, metadata={"help": "Cap on each held-out validation set."})
    fraction: float = field(default=0.3, metadata={"help": "Share of each held-out training set."})
    prefinetune_steps: int = field(default=60, metadata={"help": "Optimizer updates of every variant."})
    prefinetune_batch_size: int | None = field(
        default=None, metadata={"help": "Sub-batch size of pre-finetuning; defaults to the recipe's."}
    )
    prefinetune_max_eval_examples: int | None = field(
        default=32, metadata={"help": "Cap on each pre-finetuning task's validation set."}
    )

    def __post_init__(self):
        super().__post_init__()
        if not 0 < self.fraction <= 1:
            raise ValueError(f"field `fraction` must be in (0, 1], got {self.fraction}")
        if self.prefinetune_steps < 1 or (self.prefinetune_batch_size or 1) < 1:
            raise ValueError("fields `prefinetune_steps` and `prefinetune_batch_size` must be at least 1")


# Tasks and recipes ---------------------------------------------------------------------------------------------------


def primary_metric(spec: TaskSpec) -> str:
    """The held-out metric of a task (`muppet_hf.finetuning.PRIMARY_METRICS`)."""
    if spec.head_type not in PRIMARY_METRICS:
        raise ValueError(
            f"{spec.file}: task {spec.name!r}, field `family`: {spec.family} tasks have no held-out metric here; "
            f"use a task with a {sorted(PRIMARY_METRICS)} head"
        )
    return PRIMARY_METRICS[spec.head_type]


def has_test_split(spec: TaskSpec) -> bool:
    """Whether the task declares a test split: offline-suite tasks all have one, file and Hub tasks when they name it."""
    if spec.source.builder is not None:
        return True
    if spec.source.files is not None:
        return "test" in spec.source.files
    return "test" in (spec.source.splits or {})


def _resolve_path(path: str, *bases: Path) -> Path:
    """A path as given if it exists, else under the first base where it exists, else as given."""
    candidate = Path(path)
    if candidate.is_absolute() or candidate.exists():
        return candidate.resolve()
    for base in bases:
        if (base / path).exists():
            return (base / path).resolve()
    return candidate


def load_recipe(path: str) -> dict:
    """Reads a pre-finetuning recipe, with task YAML paths made absolute so a copy of it works from any folder."""
    recipe_path = _resolve_path(path, REPO_ROOT)
    recipe = read_recipe(recipe_path, "recipe (field `recipe`)")
    if not recipe.get("tasks"):
        raise ValueError(f"{recipe_path}: a recipe must be a YAML mapping with a `tasks` list")
    recipe["tasks"] = [
        str(_resolve_path(task, recipe_path.parent, REPO_ROOT)) if task.endswith((".yaml", ".yml")) else task
        for task in recipe["tasks"]
    ]
    return recipe


def base_backbone(recipe: dict, args: ExperimentArguments) -> str:
    """The base model: `--backbone`, else the recipe's pretrained `model_name_or_path`."""
    if args.backbone is not None:
        return args.backbone
    if recipe.get("model_name_or_path") is None:
        raise ValueError(
            f"{args.recipe}: the recipe builds a random backbone (field `backbone_config`); pass --backbone <folder> "
            "so that the base model and the pre-finetuned ones start from the same weights"
        )
    return recipe["model_name_or_path"]


def variant_recipe(recipe: dict, args: ExperimentArguments, **overrides) -> dict:
    """A copy of the recipe with `--backbone` (when given) in place of its backbone, and `overrides` on top."""
    variant = dict(recipe)
    if args.backbone is not None:
        for name in BACKBONE_FIELDS:
            variant.pop(name, None)
        variant["model_name_or_path"] = args.backbone
    variant.pop("output_dir", None)
    variant.update(overrides)
    return variant


def budget_overrides(args: PrefinetuneBudgetArguments) -> dict:
    """Recipe fields that set the pre-finetuning budget of a variant: updates, sub-batch size, evaluation cap.

    Variants save only their final model (`save_strategy: no`) and log to their `run.log` alone.
    """
    overrides = {"max_steps": args.prefinetune_steps, "save_strategy": "no", "report_to": "none", "disable_tqdm": True}
    if args.prefinetune_batch_size is not None:
        overrides["per_device_train_batch_size"] = args.prefinetune_batch_size
    if args.prefinetune_max_eval_examples is not None:
        overrides["max_eval_examples"] = args.prefinetune_max_eval_examples
    return overrides


def task_names(tasks: list[str]) -> list[str]:
    """Task names of registry names or task YAML paths."""
    return [get_task(task).name for task in tasks]


def held_out_names(args: ExperimentArguments) -> list[str]:
    return task_names(args.tasks)


def warn_if_not_held_out(pre_finetuned: list[str], args: ExperimentArguments):
    """Says so when a "held-out" task is also pre-finetuned on (fine for smoke runs, wrong for real ones).

    Args:
        pre_finetuned (`list[str]`): names of the pre-finetuning tasks.
    """
    seen = sorted(set(pre_finetuned) & set(held_out_names(args)))
    if seen:
        print(f"note: {seen} are pre-finetuned on too, so they are not held out", flush=True)


# Running scripts -----------------------------------------------------------------------------------------------------


# The package module behind each launcher in training/ (imported on first in-process run: it pulls in the Trainer).
SCRIPT_MODULES = {PREFINETUNE_SCRIPT: "muppet_hf.scripts.prefinetune", FINETUNE_SCRIPT: "muppet_hf.scripts.finetune"}


def _run_in_process(script: Path, argv: list[str], log):
    """`script`'s `main(*parse_args(argv))` in this process, its prints and `muppet_hf` logs sent to `log`."""
    module = importlib.import_module(SCRIPT_MODULES[script])
    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package_logger = logging.getLogger("muppet_hf")
    level = package_logger.level
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            module.main(*module.parse_args(argv))
    except Exception:
        traceback.print_exc(file=log)
        raise
    finally:
        package_logger.removeHandler(handler)
        package_logger.setLevel(level)


def run_script(script: Path, argv: list[str], run_dir: Path, done_file: str, in_process: bool = False) -> dict:
    """Runs `script argv` once for `run_dir`, unless `run_dir/done_file` shows it already finished.

    The command goes to `run_dir/run.json` and the output to `run_dir/run.log`. A finished run made by a different
    command is an error rather than a silent mix of settings; its `--output_dir` may differ, so that the runs of one
    experiment copied into another (the same models and protocol) are reused rather than run again.

    Returns:
        `dict` with `skipped` (`bool`) and `wall_seconds` (of the run that made the folder, when known).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    record_path = run_dir / RUN_RECORD
    record = {"script": str(script.relative_to(REPO_ROOT)), "argv": argv}
    if (run_dir / done_file).is_file():
        if record_path.is_file():
            previous = json.loads(record_path.read_text(encoding="utf-8"))
            # The folder is the run's identity: one copied from another experiment (its `--output_dir` names the
            # folder it was made in) is the same run.
            if (previous["script"], _without_output_dir(previous["argv"])) != (
                record["script"],
                _without_output_dir(record["argv"]),
            ):
                raise ValueError(
                    f"{run_dir} holds a finished run of another command ({record_path}, field `argv`); delete the "
                    "folder to run it again with the new settings, or pick another --output_dir"
                )
            return {"skipped": True, "wall_seconds": previous.get("wall_seconds")}
        return {"skipped": True, "wall_seconds": None}
    write_json(record_path, record)
    start = time.perf_counter()
    with open(run_dir / RUN_LOG, "w", encoding="utf-8") as log:
        log.write(shlex.join([sys.executable, record["script"], *argv]) + "\n")
        log.flush()
        if in_process:
            _run_in_process(script, argv, log)
            returncode = 0
        else:
            returncode = subprocess.run(
                [sys.executable, str(script), *argv], stdout=log, stderr=subprocess.STDOUT, check=False
            ).returncode
    record["wall_seconds"] = round(time.perf_counter() - start, 2)
    if returncode != 0 or not (run_dir / done_file).is_file():
        tail = "".join((run_dir / RUN_LOG).read_text(encoding="utf-8", errors="replace").splitlines(True)[-25:])
        raise RuntimeError(f"{record['script']} failed (exit {returncode}); log {run_dir / RUN_LOG}:\n{tail}")
    write_json(record_path, record)
    return {"skipped": False, "wall_seconds": record["wall_seconds"]}


def _without_output_dir(argv: list[str]) -> list[str]:
    """`argv` without its `--output_dir` flag and value."""
    if "--output_dir" not in argv:
        return argv
    index = argv.index("--output_dir")
    return argv[:index] + argv[index + 2 :]


def read_finetune_metrics(path: Path, head_type: str) -> dict:
    """A run's `finetune_metrics.json` with every score in points, as `training/finetune.py` writes it.

    A file from before the file had `score_scale` holds accuracies as fractions; its `metrics` and `guess_accuracy` are
    converted, so that an experiment resumed over older finished runs never mixes the two scales.
    """
    result = read_json(path)
    if result.get("score_scale") != "percent":
        result["metrics"] = {
            split: metrics_in_percent(values, head_type) for split, values in result["metrics"].items()
        }
        guesses = result.get("guess_accuracy") or {}
        result["guess_accuracy"] = {
            split: None if guess is None else 100.0 * guess for split, guess in guesses.items()
        }
    return result


def prefinetune(run_dir: Path, recipe: dict, args: ExperimentArguments, label: str) -> dict:
    """Pre-finetunes one variant: `recipe` is written to `run_dir/recipe.yaml` and run with `--prefinetune_args`.

    Returns:
        `dict` describing the run: `variant`, `output_dir`, `wall_seconds`, `train_runtime` and the per-task
        validation metrics of pre-finetuning (`task_metrics`).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    recipe_path = run_dir / "recipe.yaml"
    argv = ["--config", str(recipe_path), "--output_dir", str(run_dir), *shlex.split(args.prefinetune_args)]
    if not (run_dir / PREFINETUNE_DONE).is_file():
        recipe_path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    elif yaml.safe_load(recipe_path.read_text(encoding="utf-8")) != recipe:
        raise ValueError(
            f"{run_dir} holds a finished pre-finetuning run of another recipe ({recipe_path}); delete the folder to "
            "run it again with the new settings, or pick another --output_dir"
        )
    print(f"pre-finetune {label}: {len(recipe['tasks'])} tasks -> {run_dir}", flush=True)
    outcome = run_script(PREFINETUNE_SCRIPT, argv, run_dir, PREFINETUNE_DONE, in_process=args.in_process)
    print(f"  {'skipped (done)' if outcome['skipped'] else 'done'}{_seconds(outcome['wall_seconds'])}", flush=True)
    return prefinetune_record(run_dir, label)


def prefinetune_record(run_dir: Path, label: str) -> dict:
    """What a pre-finetuned model folder says about its run: `variant`, `output_dir`, `wall_seconds` (when this
    module ran it), `train_runtime` and the per-task validation metrics of pre-finetuning (`task_metrics`)."""

    def read(name: str) -> dict | None:
        path = run_dir / name
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    return {
        "variant": label,
        "output_dir": str(run_dir),
        "wall_seconds": (read(RUN_RECORD) or {}).get("wall_seconds"),
        "train_runtime": (read("train_results.json") or {}).get("train_runtime"),
        "task_metrics": read(PREFINETUNE_DONE),
    }


def _seconds(value: float | None) -> str:
    return "" if value is None else f" in {value:.0f} s"


def _number(value: float) -> str:
    """A flag value as the CLI reads it back: 3.0 -> "3", 0.1 -> "0.1"."""
    return str(int(value)) if float(value).is_integer() else str(value)


def finetune_argv(
    args: ExperimentArguments,
    spec: TaskSpec,
    task: str,
    model: str,
    fraction: float,
    seed: int,
    output_dir: Path,
    learning_rate: float,
) -> list[str]:
    """The `training/finetune.py` flags of one run of the grid (see the module docstring for the protocol)."""
    argv = [
        "--model_name_or_path", model, "--task", task, "--output_dir", str(output_dir),
        "--train_fraction", _number(fraction), "--seed", str(seed), "--max_length", str(args.max_length),
        "--per_device_train_batch_size", str(args.per_device_train_batch_size), "--per_device_eval_batch_size", "64",
        "--learning_rate", str(learning_rate), "--lr_scheduler_type", "linear",
        # 6% warmup and 0.01 weight decay, as the pre-finetuning recipe.
        "--warmup_steps", "0.06", "--weight_decay", "0.01",
        "--save_strategy", "no", "--report_to", "none", "--logging_steps", "10", "--disable_tqdm", "true",
        "--eval_splits", "validation", *(["test"] if args.score_split == "test" and has_test_split(spec) else []),
    ]  # fmt: skip
    if args.finetune_steps > 0:
        argv += [
            "--max_steps", str(args.finetune_steps), "--eval_strategy", "steps",
            "--eval_steps", str(args.finetune_eval_steps), "--select_best_model", "true",
        ]  # fmt: skip
        if args.early_stopping_patience > 0:
            argv += ["--early_stopping_patience", str(args.early_stopping_patience)]
    else:
        epochs = args.span_num_train_epochs if spec.head_type == "span" else args.num_train_epochs
        argv += ["--num_train_epochs", _number(epochs)]
    if args.max_train_examples is not None:
        argv += ["--max_train_examples", str(args.max_train_examples)]
    if args.max_eval_examples is not None:
        argv += ["--max_eval_examples", str(args.max_eval_examples)]
    if args.max_test_examples is not None:
        argv += ["--max_test_examples", str(args.max_test_examples)]
    return argv + shlex.split(args.finetune_args)


def finetune_grid(
    experiment_dir: Path,
    models: dict[str, str],
    args: ExperimentArguments,
    fractions: list[float],
    pooling: str | None = None,
) -> list[dict]:
    """Fine-tunes every model on every held-out task, fraction, seed and learning rate; returns one record per run.

    Runs go to `experiment_dir/finetune/<model>/<task>/f<fraction>-s<seed>-lr<rate>`. The loop runs seed by seed, so
    an interrupted experiment already holds whole seeds, and the models of one (task, fraction, seed) side by side.
    Each record's `score` is its test score (`score_split`), or its validation score for a task without a test split;
    `selected` marks the runs at the learning rate each model chose on validation ([`select_learning_rates`]).

    Args:
        models (`dict[str, str]`): label -> model to start from (a Muppet checkpoint or a plain backbone).
        pooling (`str`, *optional*): the pooling of a plain backbone's fresh head (`training/finetune.py --pooling`):
            the recipe's, so that the base reads the encoder as the checkpoints pre-finetuned from it do. Muppet
            checkpoints keep their own.
    """
    specs = {task: get_task(task) for task in args.tasks}
    grid = [
        (seed, fraction, task, model, rate)
        for seed in args.seeds
        for fraction in fractions
        for task in args.tasks
        for model in models
        for rate in args.learning_rates
    ]
    plain = {model for model, path in models.items() if not is_muppet_checkpoint(resolve_model_path(path))}
    runs = []
    for index, (seed, fraction, task, model, rate) in enumerate(grid, start=1):
        spec = specs[task]
        metric = primary_metric(spec)
        run_dir = experiment_dir / "finetune" / model / spec.name / f"f{_number(fraction)}-s{seed}-lr{rate:g}"
        argv = finetune_argv(args, spec, task, models[model], fraction, seed, run_dir, rate)
        if pooling is not None and model in plain:
            argv += ["--pooling", pooling]
        outcome = run_script(FINETUNE_SCRIPT, argv, run_dir, FINETUNE_DONE, in_process=args.in_process)
        if not args.keep_models and not outcome["skipped"]:
            for weights in run_dir.glob("*.safetensors"):
                weights.unlink()
        result = read_finetune_metrics(run_dir / FINETUNE_DONE, spec.head_type)
        validation = result["metrics"]["validation"]
        score_split = "test" if "test" in result["metrics"] else "validation"
        score = result["metrics"][score_split][metric]
        status = "skipped (done)" if outcome["skipped"] else "done" + _seconds(outcome["wall_seconds"])
        print(
            f"[{index:>{len(str(len(grid)))}}/{len(grid)}] {model} {spec.name} fraction {_number(fraction)} seed "
            f"{seed} lr {rate:g}: validation {metric} {validation[metric]:.1f}, {score_split} {score:.1f} "
            f"after {result.get('global_step')} updates ({status})",
            flush=True,
        )
        selection = result.get("selection") or {}
        guess = (result.get("guess_accuracy") or {}).get(score_split)
        runs.append(
            {
                "model": model,
                "model_name_or_path": models[model],
                "task": spec.name,
                "metric": metric,
                "train_fraction": fraction,
                "seed": seed,
                "learning_rate": rate,
                "score": score,
                "score_split": score_split,
                "validation_score": validation[metric],
                # The majority class's accuracy (uniform guess for multiple choice) on the scored split, in points.
                "guess_score": guess,
                "train_examples": result["train_examples"],
                "head_reused": result["head_reused"],
                "updates": result.get("global_step"),
                "best_step": selection.get("best_step"),
                "train_runtime": result.get("train_runtime"),
                "wall_seconds": outcome["wall_seconds"],
                "metrics": result["metrics"],
                "output_dir": str(run_dir),
            }
        )
    chosen = select_learning_rates(runs)
    for run in runs:
        run["selected"] = run["learning_rate"] == chosen[(run["model"], run["task"], run["train_fraction"])]
    return runs


def select_learning_rates(runs: list[dict]) -> dict[tuple[str, str, float], float]:
    """The learning rate of each (model, task, fraction): the one with the best mean validation score over seeds.

    Every model gets its own choice from the same sweep, as the paper tunes base and Muppet models alike. A tie goes
    to the rate listed first.
    """
    means: dict[tuple[str, str, float], dict[float, list[float]]] = {}
    for run in runs:
        key = (run["model"], run["task"], run["train_fraction"])
        means.setdefault(key, {}).setdefault(run["learning_rate"], []).append(run["validation_score"])
    return {key: max(by_rate, key=lambda rate: statistics.fmean(by_rate[rate])) for key, by_rate in means.items()}


def selected(runs: list[dict]) -> list[dict]:
    """The runs at the learning rate their model chose on validation: the ones results report."""
    return [run for run in runs if run["selected"]]


def run_variants(
    experiment_dir: Path,
    args: PrefinetuneBudgetArguments,
    recipe: dict,
    variants: dict[str, dict],
    base: str | None = None,
) -> tuple[dict[str, str], list[dict], list[dict]]:
    """Pre-finetunes each variant (the recipe, the budget, then the variant's overrides), then fine-tunes each
    resulting model, and `base` when given, on the held-out grid at `args.fraction`.

    Returns:
        The models (label -> path), the pre-finetuning records and the fine-tuning runs.
    """
    models = {} if base is None else {"base": base}
    records = []
    for index, (name, overrides) in enumerate(variants.items(), start=1):
        print(f"[variant {index}/{len(variants)}]", end=" ", flush=True)
        variant = variant_recipe(recipe, args, **{**budget_overrides(args), **overrides})
        records.append(
            {**prefinetune(experiment_dir / "prefinetune" / name, variant, args, name), "overrides": overrides}
        )
        models[name] = records[-1]["output_dir"]
    return models, records, finetune_grid(experiment_dir, models, args, [args.fraction], recipe.get("pooling"))


def write_results(experiment_dir: Path, payload: dict, table: str):
    """Writes `results.json` and `results.md`, and prints the markdown table."""
    write_json(experiment_dir / "results.json", payload)
    (experiment_dir / "results.md").write_text(table, encoding="utf-8")
    print(f"\n{table}\nresults: {experiment_dir / 'results.json'}, {experiment_dir / 'results.md'}", flush=True)


# Aggregates and tables -----------------------------------------------------------------------------------------------


def aggregate(runs: list[dict], keys: tuple[str, ...] = ("model", "task", "train_fraction")) -> list[dict]:
    """Mean and spread of the score over seeds, for each combination of `keys` (in order of first appearance).

    `std` is the sample standard deviation (n - 1); with a single seed it is 0.
    """
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault(tuple(run[key] for key in keys), []).append(run)
    aggregates = []
    for key, members in groups.items():
        scores = [run["score"] for run in members]
        aggregates.append(
            {
                **dict(zip(keys, key, strict=True)),
                "metric": members[0]["metric"],
                "score_split": members[0].get("score_split", "validation"),
                "guess_score": _mean_or_none([run.get("guess_score") for run in members]),
                "n": len(scores),
                "mean": statistics.fmean(scores),
                "std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
                "min": min(scores),
                "max": max(scores),
                "seeds": [run["seed"] for run in members],
                "scores": scores,
            }
        )
    return aggregates


def _mean_or_none(values: list[float | None]) -> float | None:
    return None if any(value is None for value in values) else statistics.fmean(values)


def lookup(aggregates: list[dict], **where) -> dict | None:
    """The aggregate whose fields match `where`, or `None`."""
    for entry in aggregates:
        if all(entry[key] == value for key, value in where.items()):
            return entry
    return None


def format_score(entry: dict | None) -> str:
    if entry is None:
        return "–"
    return f"{entry['mean']:.1f} ± {entry['std']:.1f}" if entry["n"] > 1 else f"{entry['mean']:.1f}"


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub markdown table; the first column left-aligned, the others right-aligned."""
    align = [":---"] + ["---:"] * (len(headers) - 1)
    lines = [headers, align, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines) + "\n"


def score_table(aggregates: list[dict], models: list[str], tasks: list[str], fraction: float) -> str:
    """Held-out scores (mean ± std over seeds) with a row per task and a column per model, at one fraction."""
    rows = []
    for task in tasks:
        entries = [lookup(aggregates, model=model, task=task, train_fraction=fraction) for model in models]
        metric = next((entry["metric"] for entry in entries if entry is not None), "")
        rows.append([task, metric, *[format_score(entry) for entry in entries]])
    return markdown_table(["task", "metric", *models], rows)


def prefinetune_scores(records: list[dict], recipe: dict) -> dict[str, dict[str, float]]:
    """Each variant's own validation score after pre-finetuning, by task family: the mean, in points, of the primary
    metric (as held-out scores) over the tasks that every variant pre-finetuned on, plus `all` over those tasks.

    Held-out scores fine-tune again; these show what pre-finetuning itself learned, on the same tasks for every
    variant (all of them in batching and ablations, the smallest subset in scaling). Losses are not compared: a
    variant without loss scaling reports unscaled ones.

    Args:
        records (`list[dict]`): pre-finetuning records, with the `task_metrics` of [`prefinetune_record`].
        recipe (`dict`): the recipe the variants started from (its tasks give each task's family and metric).

    Returns:
        `dict`: variant -> family (`classification`, ..., `all`) -> mean score in points.
    """
    specs = {spec.name: spec for spec in (get_task(task) for task in recipe["tasks"])}
    evaluated = [set(record["task_metrics"] or {}) for record in records]
    shared = [name for name in specs if all(name in tasks for tasks in evaluated)]
    scores = {}
    for record in records:
        by_family: dict[str, list[float]] = {}
        for name in shared:
            # task_metrics.json holds points already (training/prefinetune.py writes every score in percent).
            metric = primary_metric(specs[name])
            value = record["task_metrics"][name][metric]
            by_family.setdefault(specs[name].family, []).append(value)
            by_family.setdefault("all", []).append(value)
        # Families in recipe order, `all` last.
        ordered = sorted(by_family.items(), key=lambda item: item[0] == "all")
        scores[record["variant"]] = {family: statistics.fmean(values) for family, values in ordered}
    return scores


def prefinetune_table(scores: dict[str, dict[str, float]]) -> str:
    """[`prefinetune_scores`] as a markdown table: a row per task family, a column per variant."""
    variants = list(scores)
    families = list(next(iter(scores.values()), {}))
    rows = [[family, *[f"{scores[variant][family]:.1f}" for variant in variants]] for family in families]
    return markdown_table(["pre-finetuning validation (points)", *variants], rows)


def variant_tables(
    aggregates: list[dict], models: dict[str, str], args: PrefinetuneBudgetArguments, records: list[dict], recipe: dict
) -> tuple[str, dict[str, dict[str, float]]]:
    """The markdown of a variants experiment, held-out scores then [`prefinetune_table`], and the
    [`prefinetune_scores`] it shows."""
    scores = prefinetune_scores(records, recipe)
    table = (
        score_table(aggregates, list(models), held_out_names(args), args.fraction) + "\n" + prefinetune_table(scores)
    )
    return table, scores


def experiment_payload(
    name: str, args: ExperimentArguments, runs: list[dict], aggregates: list[dict], **extra
) -> dict:
    """What `results.json` holds: the settings, every run, the aggregates, and the time the runs took."""
    return {
        "experiment": name,
        "paper": "Muppet, Aghajanyan et al., arXiv 2101.11038",
        "score": "points: accuracy x 100 (classification, multiple choice, tagging), SQuAD F1 (span MRC), on the test "
        "split (validation where a task has none), at the learning rate each model chose on validation; mean and "
        "sample std over seeds",
        "config": vars(args),
        **extra,
        "runs": runs,
        "aggregates": aggregates,
        "wall_seconds": {
            "finetune": sum(run["wall_seconds"] or 0.0 for run in runs),
            "prefinetune": sum(run["wall_seconds"] or 0.0 for run in extra.get("prefinetune", [])),
        },
    }


# Plots ---------------------------------------------------------------------------------------------------------------


def _panels(count: int, width: float = 4.2, height: float = 3.4) -> tuple[Figure, list]:
    """A figure of `count` side-by-side panels on the Agg canvas (PNG output, no display, no pyplot state)."""
    figure = Figure(figsize=(max(width * count, 6.0), height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, list(figure.subplots(1, count, squeeze=False)[0])


def plot_lines(
    aggregates: list[dict],
    path: Path,
    tasks: list[str],
    series: list[str],
    x_of: dict[str, float] | None = None,
    xlabel: str = "share of the training set",
    title: str = "",
    log_x: bool = True,
):
    """One panel per task: held-out score (mean ± std over seeds) against the x value, one line per series.

    With `x_of`, every series is a single point at `x_of[series]` and they form one line (the scaling curve);
    without it, x is the training fraction and each series (a model) is its own line.
    """
    figure, axes = _panels(len(tasks))
    for axis, task in zip(axes, tasks, strict=True):
        entries = [entry for entry in aggregates if entry["task"] == task and entry["model"] in series]
        if x_of is not None:
            entries.sort(key=lambda entry: x_of[entry["model"]])
            lines = {"": entries}
        else:
            lines = {
                model: sorted((e for e in entries if e["model"] == model), key=lambda e: e["train_fraction"])
                for model in series
            }
        for label, points in lines.items():
            xs = [x_of[e["model"]] if x_of is not None else e["train_fraction"] for e in points]
            axis.errorbar(
                xs, [e["mean"] for e in points], yerr=[e["std"] for e in points], marker="o", capsize=3,
                label=label or None,
            )  # fmt: skip
        xs = sorted({x_of[e["model"]] if x_of is not None else e["train_fraction"] for e in entries})
        if log_x:
            axis.set_xscale("log")
        axis.set_xticks(xs, [f"{x:g}" if x_of is not None else f"{100 * x:g}%" for x in xs])
        axis.minorticks_off()
        metric = entries[0]["metric"] if entries else ""
        axis.set(title=task, xlabel=xlabel, ylabel=f"{metric} (points)")
        axis.grid(alpha=0.3)
        if x_of is None:
            axis.legend()
    if title:
        figure.suptitle(title)
    figure.savefig(path, dpi=120)


def plot_bars(aggregates: list[dict], path: Path, tasks: list[str], series: list[str], title: str = ""):
    """One panel per task: a bar per series with the held-out score (mean, std over seeds as error bar)."""
    figure, axes = _panels(len(tasks))
    colors = [f"C{index}" for index in range(len(series))]
    for axis, task in zip(axes, tasks, strict=True):
        entries = [lookup(aggregates, model=model, task=task) for model in series]
        means = [entry["mean"] if entry else math.nan for entry in entries]
        stds = [entry["std"] if entry else 0.0 for entry in entries]
        bars = axis.bar(range(len(series)), means, yerr=stds, capsize=4, color=colors)
        axis.bar_label(bars, fmt="%.1f", label_type="center", color="white", fontsize=8)
        axis.set_xticks(range(len(series)), series, rotation=20, ha="right")
        metric = next((entry["metric"] for entry in entries if entry), "")
        axis.set(title=task, ylabel=f"{metric} (points)")
        axis.grid(axis="y", alpha=0.3)
    if title:
        figure.suptitle(title)
    figure.savefig(path, dpi=120)


def plot_heatmap(matrix: list[list[float]], rows: list[str], columns: list[str], path: Path, title: str, label: str):
    """A diverging heatmap centred on 0, each cell annotated with its value (signed)."""
    figure, (axis,) = _panels(1, width=1.6 * len(columns) + 3.0, height=0.6 * len(rows) + 1.6)
    finite = [abs(value) for row in matrix for value in row if math.isfinite(value)]
    limit = max(finite, default=1.0) or 1.0
    image = axis.imshow(matrix, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            # White on the dark ends of the colour map, black elsewhere.
            color = "white" if math.isfinite(value) and abs(value) > 0.6 * limit else "black"
            text = f"{value:+.1f}" if math.isfinite(value) else "–"
            axis.text(j, i, text, ha="center", va="center", fontsize=9, color=color)
    axis.set_xticks(range(len(columns)), columns)
    axis.set_yticks(range(len(rows)), rows)
    axis.set_title(title)
    figure.colorbar(image, ax=axis, label=label)
    figure.savefig(path, dpi=120)


def report_variants(
    name: str,
    experiment_dir: Path,
    args: PrefinetuneBudgetArguments,
    recipe: dict,
    models: dict[str, str],
    records: list[dict],
    runs: list[dict],
    title: str,
    **extra,
) -> dict:
    """Aggregates the held-out runs of pre-finetuning variants of `recipe`, plots a bar per variant (`<name>.png`)
    and writes `results.json` / `results.md`; returns the payload."""
    aggregates = aggregate(selected(runs))
    tasks = held_out_names(args)
    plot_bars(aggregates, experiment_dir / f"{name}.png", tasks, list(models), title=title)
    table, scores = variant_tables(aggregates, models, args, records, recipe)
    payload = experiment_payload(
        name, args, runs, aggregates, models=models, **extra, prefinetune=records, prefinetune_scores=scores
    )
    write_results(experiment_dir, payload, table)
    return payload
