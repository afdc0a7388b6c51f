"""What a pre-finetuning mixture will do, before any GPU hour is spent (`muppet-hf plan RECIPE`).

[`plan_mixture`] turns a task list and the sampling settings of a recipe into the expected draws of the run: each
task's share of sub-batches, the epochs it will go through, the sub-batches per update and the examples per head.
Shares come from [`muppet_hf.sampling.task_weights`], the weight function the sampler itself uses, applied to the
same per-task sizes (training examples after the recipe's `max_train_examples`, then `max_examples_per_task`).
Everything is computed from sizes alone: the specs' `size` fields, or the built offline suite's counts when its cache
is present. Nothing is downloaded or tokenized.

Sizes are counts of *source examples*. An MRC example tokenized into several windows counts once, as natural sampling
counts MRC tasks by their source examples (issue 10); a sampler that counted windows would give MRC tasks a larger
share than planned.
"""

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from .data import offline_cache_dir
from .data.offline.build import task_dir
from .data.offline.task import BUILDER
from .parser import read_recipe, resolve_task_path
from .sampling import task_weights
from .tasks import get_task
from .tasks.spec import TaskSpec
from .training_args import MuppetTrainingArguments


# A task drawn more often than this many times over its data is likely to be over-fitted (and crowds out others).
DEFAULT_MAX_EPOCHS = 10.0


@dataclass
class TaskPlan:
    """One task's row of a [`MixturePlan`].

    Args:
        name (`str`): the task.
        family (`str`): its family (`classification`, `span_mrc`, ...).
        head (`str`): the head it trains.
        head_type (`str`): that head's type.
        train_size (`int`, *optional*): training examples the run can draw from (after `max_train_examples`);
            `None` when no size is known.
        size_source (`str`): where the size came from: `cache` (the built offline suite), `spec` (its `size`
            field), `file` (lines of a local JSON-lines file) or `missing`.
        share (`float`): the task's share of the run's sub-batches (0 when its size is missing).
        sub_batches_per_update (`float`): expected sub-batches of this task in one optimizer update.
        examples (`float`): expected examples drawn from it over the whole run.
        epochs (`float`, *optional*): `examples / train_size`, the expected number of passes over its data.
    """

    name: str
    family: str
    head: str
    head_type: str
    train_size: int | None
    size_source: str
    share: float = 0.0
    sub_batches_per_update: float = 0.0
    examples: float = 0.0
    epochs: float | None = None


@dataclass
class MixturePlan:
    """The expected draws of a pre-finetuning run, per task and per head, with the warnings they raise.

    Args:
        tasks (`list[TaskPlan]`): one row per task, in the recipe's order.
        heads (`dict[str, float]`): head name -> expected examples per optimizer update.
        task_sampling (`str`), temperature (`float`), max_examples_per_task (`int` or `dict`, *optional*): the
            sampling settings the shares follow.
        sub_batch_size (`int`): examples per sub-batch (`per_device_train_batch_size`).
        tasks_per_update (`int`): sub-batches per process per update.
        num_processes (`int`): processes (GPUs) of the run.
        updates (`int`): optimizer updates of the run.
        epoch_updates (`float`): updates in one epoch of the sampler (each example once under natural sampling).
        warnings (`list[str]`): tasks seen less than once or more than `max_epochs` times, heads whose tasks
            disagree in shape, missing sizes.
        recipe (`str`, *optional*): the recipe file.
    """

    tasks: list[TaskPlan]
    heads: dict[str, float]
    task_sampling: str
    temperature: float
    max_examples_per_task: int | dict[str, int] | None
    sub_batch_size: int
    tasks_per_update: int
    num_processes: int
    updates: int
    epoch_updates: float
    warnings: list[str] = field(default_factory=list)
    recipe: str | None = None

    @property
    def update_size(self) -> int:
        """Sub-batches per optimizer update, across all processes."""
        return self.tasks_per_update * self.num_processes

    def to_dict(self) -> dict:
        data = asdict(self)
        data["update_size"] = self.update_size
        return data

    def format(self) -> str:
        """The plan as text tables: tasks, heads, then the run and the warnings."""
        header = ("task", "family", "head", "train", "size from", "share", "sub-batches/update", "epochs")
        rows = [
            (
                task.name,
                task.family,
                task.head,
                "-" if task.train_size is None else f"{task.train_size:,}",
                task.size_source,
                f"{task.share:.4f}",
                f"{task.sub_batches_per_update:.3f}",
                "-" if task.epochs is None else f"{task.epochs:.2f}",
            )
            for task in self.tasks
        ]
        lines = _table(header, rows, right_aligned=(3, 5, 6, 7))
        shares = sum(task.share for task in self.tasks)
        sized = [task for task in self.tasks if task.train_size is not None]
        lines.append(
            f"{len(self.tasks)} tasks, {sum(task.train_size for task in sized):,} training examples; shares sum to "
            f"{shares:.4f}"
        )
        lines.append("")
        head_types = {task.head: task.head_type for task in self.tasks}
        head_tasks = {head: sum(task.head == head for task in self.tasks) for head in self.heads}
        head_rows = [
            (head, head_types[head], str(head_tasks[head]), f"{examples:.1f}") for head, examples in self.heads.items()
        ]
        lines += _table(("head", "type", "tasks", "examples/update"), head_rows, right_aligned=(2, 3))
        lines.append("")
        caps = "" if self.max_examples_per_task is None else f", max_examples_per_task {self.max_examples_per_task}"
        temperature = f" (T = {self.temperature:g})" if self.task_sampling == "temperature" else ""
        lines.append(
            f"sampling: {self.task_sampling}{temperature}{caps}; an update is {self.tasks_per_update} sub-batches x "
            f"{self.num_processes} process(es) x {self.sub_batch_size} examples = "
            f"{self.update_size * self.sub_batch_size:,} examples"
        )
        lines.append(
            f"run: {self.updates:,} updates = {self.updates * self.update_size * self.sub_batch_size:,} examples "
            f"drawn; one epoch of the mixture is {self.epoch_updates:,.1f} updates"
        )
        if self.warnings:
            lines.append("")
            lines += [f"warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], right_aligned: tuple[int, ...] = ()) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(width) if i in right_aligned else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return [line(header), line(tuple("-" * width for width in widths)), *(line(row) for row in rows)]


def _epochs_list(rows: list[TaskPlan]) -> str:
    return ", ".join(f"{row.name} ({row.epochs:.2f} epochs of {row.train_size:,})" for row in rows)


def train_size(spec: TaskSpec, cache_dir: str | os.PathLike | None = None) -> tuple[int | None, str]:
    """A task's number of training examples, without downloading or tokenizing anything.

    The built offline suite's count (`build_info.json`) wins when present, since it is what training will read;
    then a local JSON-lines training file's line count; then the spec's `size.train`.

    Returns:
        `(size, source)`, source one of `cache`, `file`, `spec`, or `(None, "missing")`.
    """
    if spec.source.builder == BUILDER:
        info = task_dir(offline_cache_dir(cache_dir), spec.name) / "build_info.json"
        if info.is_file():
            num_rows = json.loads(info.read_text(encoding="utf-8")).get("num_rows", {})
            if "train" in num_rows:
                return int(num_rows["train"]), "cache"
    if spec.source.files and "train" in spec.source.files:
        path = Path(spec.source.files["train"])
        if path.suffix == ".jsonl" and path.is_file():
            with path.open(encoding="utf-8") as handle:
                return sum(1 for line in handle if line.strip()), "file"
    if spec.size and "train" in spec.size:
        return int(spec.size["train"]), "spec"
    return None, "missing"


def plan_mixture(
    specs: list[TaskSpec],
    sizes: dict[str, tuple[int | None, str]],
    sub_batch_size: int,
    tasks_per_update: int = 1,
    num_processes: int = 1,
    max_steps: int = -1,
    num_train_epochs: float = 1.0,
    task_sampling: str = "natural",
    temperature: float = 1.0,
    max_examples_per_task: int | dict[str, int] | None = None,
    max_train_examples: int | None = None,
    max_epochs: float = DEFAULT_MAX_EPOCHS,
) -> MixturePlan:
    """The expected draws of a run over `specs`, as the trainer's sampler will make them.

    Args:
        specs (`list[TaskSpec]`): the tasks, in the recipe's order.
        sizes (`dict[str, tuple[int | None, str]]`): task name -> `(training examples, where the count came from)`,
            as [`train_size`] returns it.
        sub_batch_size (`int`): examples per sub-batch.
        tasks_per_update (`int`, *optional*, defaults to 1): sub-batches per process per update.
        num_processes (`int`, *optional*, defaults to 1): processes of the run.
        max_steps (`int`, *optional*, defaults to -1): updates of the run; when not positive, `num_train_epochs`
            epochs of the sampler.
        num_train_epochs (`float`, *optional*, defaults to 1.0): used when `max_steps` is not positive.
        task_sampling, temperature, max_examples_per_task: as in [`MuppetTrainingArguments`].
        max_train_examples (`int`, *optional*): the recipe's cap on each task's training examples.
        max_epochs (`float`, *optional*, defaults to 10): warn about tasks expected to be seen more often.
    """
    if sub_batch_size < 1 or tasks_per_update < 1 or num_processes < 1:
        raise ValueError("plan: `sub_batch_size`, `tasks_per_update` and `num_processes` must be at least 1")
    warnings = []
    rows = []
    for spec in specs:
        size, source = sizes[spec.name]
        if size is not None and max_train_examples is not None:
            size = min(size, max_train_examples)
        rows.append(TaskPlan(spec.name, spec.family, spec.head, spec.head_type, size, source))
        if size is None:
            warnings.append(
                f"task {spec.name!r} ({spec.file}): no training size (no `size.train` in its spec and no built "
                "cache); left out of the shares"
            )
        elif size == 0:
            warnings.append(f"task {spec.name!r} ({spec.file}): its training split is empty")

    seen: dict[str, TaskSpec] = {}
    heads: dict[str, TaskSpec] = {}
    for spec in specs:
        if spec.name in seen:
            warnings.append(f"task {spec.name!r} is listed twice ({seen[spec.name].file} and {spec.file})")
        seen.setdefault(spec.name, spec)
        other = heads.setdefault(spec.head, spec)
        if other.head_spec() != spec.head_spec():
            warnings.append(
                f"head {spec.head!r}: task {spec.name!r} needs {spec.head_spec()} but task {other.name!r} needs "
                f"{other.head_spec()}; they cannot share it"
            )

    sized = [row for row in rows if row.train_size]
    if isinstance(max_examples_per_task, dict):
        caps = [max_examples_per_task.get(row.name) for row in sized]
    else:
        caps = [max_examples_per_task] * len(sized)
    # What the sampler weighs: each task's size after its per-epoch cap.
    used = np.asarray(
        [row.train_size if cap is None else min(row.train_size, cap) for row, cap in zip(sized, caps, strict=True)],
        dtype=np.int64,
    )
    update_size = tasks_per_update * num_processes
    # Every sampling mode keeps the natural epoch's number of sub-batches, padded to whole updates (sampling.py).
    epoch_sub_batches = int(np.sum(-(-used // sub_batch_size))) if sized else 0
    epoch_sub_batches += (-epoch_sub_batches) % update_size
    epoch_updates = epoch_sub_batches / update_size
    updates = max_steps if max_steps > 0 else math.ceil(num_train_epochs * epoch_updates)
    total_sub_batches = updates * update_size
    if sized:
        for row, share in zip(sized, task_weights(used, task_sampling, temperature), strict=True):
            row.share = float(share)
            row.sub_batches_per_update = row.share * update_size
            row.examples = row.share * total_sub_batches * sub_batch_size
            row.epochs = row.examples / row.train_size
        under = [row for row in sized if row.epochs < 1]
        over = [row for row in sized if row.epochs > max_epochs]
        if under:
            warnings.append(
                f"{len(under)} task(s) expected to be seen less than once, so part of their training data is never "
                f"drawn: {_epochs_list(under)}"
            )
        if over:
            warnings.append(
                f"{len(over)} task(s) expected to be seen more than {max_epochs:g} times, a risk of over-fitting them "
                f"(cap them or lower the sampling temperature): {_epochs_list(over)}"
            )
    head_examples: dict[str, float] = {}
    for row in rows:
        head_examples[row.head] = head_examples.get(row.head, 0.0) + row.sub_batches_per_update * sub_batch_size
    return MixturePlan(
        tasks=rows,
        heads=head_examples,
        task_sampling=task_sampling,
        temperature=temperature,
        max_examples_per_task=max_examples_per_task,
        sub_batch_size=sub_batch_size,
        tasks_per_update=tasks_per_update,
        num_processes=num_processes,
        updates=updates,
        epoch_updates=epoch_updates,
        warnings=warnings,
    )


def load_recipe(path: str | os.PathLike) -> tuple[dict, MuppetTrainingArguments]:
    """Reads a pre-finetuning recipe and validates its training arguments, offline.

    The recipe's training-argument keys build a [`MuppetTrainingArguments`], so a bad sampling mode or a
    contradictory `tasks_per_update` fails here, naming the field. Mixed precision (`bf16`, `fp16`) is turned off
    for that check only: it needs an accelerator, and is checked when the run starts there.

    Returns:
        The recipe as a mapping, and its training arguments.
    """
    path = Path(path)
    recipe = read_recipe(path)
    if not recipe.get("tasks"):
        raise ValueError(f"{path}: field `tasks`: the recipe lists no tasks")
    known = {f.name for f in fields(MuppetTrainingArguments)}
    training = {key: value for key, value in recipe.items() if key in known}
    training.update(bf16=False, fp16=False)
    training.setdefault("output_dir", "plan")
    try:
        args = MuppetTrainingArguments(**training)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path}: {err}") from err
    recipe["tasks"] = [resolve_task_path(str(task), path.resolve().parent) for task in recipe["tasks"]]
    return recipe, args


def plan_recipe(
    path: str | os.PathLike,
    num_processes: int = 1,
    max_epochs: float = DEFAULT_MAX_EPOCHS,
    cache_dir: str | os.PathLike | None = None,
) -> MixturePlan:
    """[`plan_mixture`] of a recipe file: its tasks (every spec resolved), sizes and sampling settings."""
    recipe, args = load_recipe(path)
    specs = [get_task(task) for task in recipe["tasks"]]
    plan = plan_mixture(
        specs,
        {spec.name: train_size(spec, cache_dir) for spec in specs},
        sub_batch_size=args.per_device_train_batch_size,
        tasks_per_update=args.tasks_per_update,
        num_processes=num_processes,
        max_steps=args.max_steps,
        num_train_epochs=args.num_train_epochs,
        task_sampling=args.task_sampling,
        temperature=args.sampling_temperature,
        max_examples_per_task=args.max_examples_per_task,
        max_train_examples=recipe.get("max_train_examples"),
        max_epochs=max_epochs,
    )
    plan.recipe = str(path)
    return plan


__all__ = ["DEFAULT_MAX_EPOCHS", "MixturePlan", "TaskPlan", "load_recipe", "plan_mixture", "plan_recipe", "train_size"]
