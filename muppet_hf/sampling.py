"""Multi-task batch sampling for Muppet pre-finetuning (Aghajanyan et al., arXiv 2101.11038 §3.1, §5.2).

[`MultiTaskDataset`] puts the tokenized datasets of all tasks behind one global index; [`MultiTaskBatchSampler`]
yields lists of global indices, each list a *sub-batch* of one task, which the dataset returns as one [`SubBatch`]
that names its task once. The sampler plans one epoch at a time from
`(seed, epoch)` alone, so a run is deterministic and a resumed run replays the same stream.

Updates are contiguous blocks of `update_size` sub-batches in the sampler's global stream. With several processes,
`accelerate` hands sub-batch `i` to process `i % num_processes`, and the Trainer accumulates
`gradient_accumulation_steps` of them per process, so `update_size = gradient_accumulation_steps × num_processes`
sub-batches make exactly one optimizer update across all processes, each process drawing its own tasks.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch


# Length grouping sorts examples inside windows of this many sub-batches: big enough to find neighbours of similar
# length, small enough that the order stays random across the epoch (as transformers' LengthGroupedSampler does).
LENGTH_GROUPING_WINDOW = 50
# How a task's size is counted: its source examples (an MRC example's windows count once, as the paper sizes its
# datasets) or its tokenized rows (windows).
TASK_SIZE_UNITS = ("examples", "windows")


# The column preprocessing gives each window of a span MRC example (`prepare_task`): all windows of one source
# example share its id, so sampling can count source examples rather than windows.
EXAMPLE_ID_COLUMN = "example_id"


def example_lengths(dataset: datasets.Dataset | Sequence[dict], column: str = "input_ids") -> np.ndarray:
    """The padded cost of each example: its token count, or `choices × longest choice` for multiple choice."""
    rows, longest = example_shapes(dataset, column)
    return rows * longest


def example_shapes(
    dataset: datasets.Dataset | Sequence[dict], column: str = "input_ids"
) -> tuple[np.ndarray, np.ndarray]:
    """Each example's sequences (its choices for multiple choice, else 1) and the token count of its longest one."""
    if isinstance(dataset, datasets.Dataset):
        values = dataset.with_format("arrow")[column]
        if isinstance(values, pa.Table):
            values = values.column(0)
        values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        if pa.types.is_list(values.type.value_type) or pa.types.is_large_list(values.type.value_type):
            num_choices = pc.list_value_length(values).to_numpy(zero_copy_only=False).astype(np.int64)
            inner = pc.list_value_length(pc.list_flatten(values)).to_numpy(zero_copy_only=False).astype(np.int64)
            longest = np.zeros(len(num_choices), dtype=np.int64)
            starts = np.concatenate([[0], np.cumsum(num_choices)[:-1]])
            nonempty = num_choices > 0
            if inner.size:
                longest[nonempty] = np.maximum.reduceat(inner, starts[nonempty])
            return num_choices, longest
        lengths = pc.list_value_length(values).to_numpy(zero_copy_only=False).astype(np.int64)
        return np.ones_like(lengths), lengths
    rows, longest = [], []
    for example in dataset:
        ids = example[column]
        is_choices = len(ids) > 0 and isinstance(ids[0], list | tuple | torch.Tensor)
        rows.append(len(ids) if is_choices else 1)
        longest.append(max(len(choice) for choice in ids) if is_choices else len(ids))
    return np.asarray(rows, dtype=np.int64), np.asarray(longest, dtype=np.int64)


def source_examples(dataset: datasets.Dataset | Sequence[dict], column: str = EXAMPLE_ID_COLUMN) -> np.ndarray | None:
    """Each row's source example, as codes `0 .. examples - 1`; `None` when every row is its own example.

    Span MRC preprocessing cuts a long context into several windows, one row each, that share the `example_id` of
    their question; other tasks have no such column.
    """
    if isinstance(dataset, datasets.Dataset):
        if column not in dataset.column_names:
            return None
        ids = dataset.with_format("arrow")[column]
        ids = ids.column(0) if isinstance(ids, pa.Table) else ids
        ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
        ids = np.asarray(ids.to_pylist(), dtype=object)
    else:
        if len(dataset) == 0 or column not in dataset[0]:
            return None
        ids = np.asarray([example[column] for example in dataset], dtype=object)
    return np.unique(ids.astype(str), return_inverse=True)[1].astype(np.int64)


@dataclass
class SubBatch:
    """Examples of one task, fetched together: the task travels once, as the sub-batch's key.

    Args:
        task (`str`): the task's name.
        columns (`dict[str, list]`): column name -> one value per example.
        rows (`list[int]`, *optional*): each example's row in its task's dataset (names a bad sub-batch, finds the
            scoring columns of span windows, bounds generation).
    """

    task: str
    columns: dict[str, list]
    rows: list[int] | None = None


class MultiTaskDataset(torch.utils.data.Dataset):
    """The datasets of several tasks behind one global index; a fetch returns one [`SubBatch`] of one task.

    Indices `offsets[t] .. offsets[t + 1] - 1` belong to task `t`. Fetching goes through `__getitems__`, so a
    sub-batch of one task costs one batched read of its `datasets.Dataset`.

    Args:
        task_datasets (`dict[str, datasets.Dataset]`): task name -> tokenized dataset.
    """

    def __init__(self, task_datasets: dict[str, datasets.Dataset | Sequence[dict]]):
        if not isinstance(task_datasets, dict) or not task_datasets:
            raise TypeError("MultiTaskDataset needs a non-empty dict of task name -> dataset")
        for name, dataset in task_datasets.items():
            if len(dataset) == 0:
                raise ValueError(f"task {name!r}: its training dataset is empty")
        self.task_names = list(task_datasets)
        self.datasets = [task_datasets[name] for name in self.task_names]
        self.sizes = np.asarray([len(dataset) for dataset in self.datasets], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def task_of(self, index: int) -> int:
        return int(np.searchsorted(self.offsets, index, side="right") - 1)

    def __getitem__(self, index: int) -> SubBatch:
        return self.__getitems__([index])

    def __getitems__(self, indices: Sequence[int]) -> SubBatch:
        """The examples at global `indices`, all of one task (a sub-batch of [`MultiTaskBatchSampler`])."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size == 0:
            raise ValueError("MultiTaskDataset: a sub-batch needs at least one index")
        task_id = self.task_of(int(indices[0]))
        start, end = self.offsets[task_id], self.offsets[task_id + 1]
        if not ((indices >= start) & (indices < end)).all():
            tasks = sorted({self.task_names[self.task_of(int(index))] for index in indices})
            raise ValueError(f"a sub-batch must hold a single task (one head, one collator); it holds {tasks}")
        rows = (indices - start).tolist()
        dataset = self.datasets[task_id]
        if isinstance(dataset, datasets.Dataset):
            columns = dict(dataset[rows])
        else:
            examples = [dataset[row] for row in rows]
            columns = {key: [example[key] for example in examples] for key in examples[0]}
        return SubBatch(self.task_names[task_id], columns, rows)


def task_weights(sizes: Sequence[int], task_sampling: str, temperature: float = 1.0) -> np.ndarray:
    """How often each task is drawn, as probabilities: natural (∝ size), temperature (∝ size^(1/T)) or uniform."""
    sizes = np.asarray(sizes, dtype=np.float64)
    if task_sampling == "natural":
        weights = sizes
    elif task_sampling == "temperature":
        weights = sizes ** (1.0 / temperature)
    elif task_sampling == "uniform":
        weights = np.ones_like(sizes)
    else:
        raise ValueError(f"unknown task_sampling {task_sampling!r}; use natural, temperature or uniform")
    return weights / weights.sum()


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Integer counts summing to `total`, as close to `total * weights` as rounding allows."""
    exact = total * weights
    counts = np.floor(exact).astype(np.int64)
    short = total - counts.sum()
    # Stable order, so ties go to the earlier task and the plan stays deterministic.
    counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    return counts


class MultiTaskBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Yields sub-batches (lists of global indices into a [`MultiTaskDataset`]), each from a single task.

    Every epoch is planned from `(seed, epoch)` alone:

    1. Sub-batches per task. `natural`: `ceil(examples / sub_batch_size)`, so each example is seen once per epoch.
       `temperature` / `uniform`: the same total, shared out by the task weights (tasks above their size are
       up-sampled by cycling through fresh shuffles, tasks below it get a random subset).
    2. Examples per task: a fresh permutation, cut into sub-batches after sorting windows of
       `LENGTH_GROUPING_WINDOW` sub-batches by length (`group_by_length`), so a sub-batch pads little.

    With `task_size="examples"` a task is sized by its *source* examples: the windows of a long MRC context (rows
    that share an `example_id`) count once, and each epoch draws one window of each example, the next one of its
    windows every epoch (from a random first one), so all windows are seen over as many epochs as the longest
    example has windows. With `max_tokens_per_sub_batch`, each sub-batch takes from its task's (length-grouped)
    stream as many examples as fit (up to `sub_batch_size`) without its padded token count
    (`examples × most choices × longest sequence`) exceeding the budget: a 5-choice multiple-choice sub-batch then
    holds about a fifth of the questions and costs about what a classification sub-batch costs. The budget changes
    what a sub-batch holds, not how often its task is drawn: counts in step 1 stay those of `sub_batch_size`, so
    every task's share of the draws (of the compute, and of the gradient, where each sub-batch weighs the same)
    stays its share of the source examples, and a budgeted task sees a fresh random subset of its examples each
    epoch.
    3. Order (paper §5.2): `heterogeneous` shuffles all sub-batches of all tasks together, so each block of
       `update_size` holds several tasks; `batch_homogeneous` shuffles blocks of `update_size` sub-batches of one
       task; `dataset_homogeneous` lays the tasks out one after another, in the given order.

    The epoch is padded to whole updates (extra sub-batches from the most frequent tasks; under
    `batch_homogeneous`, each task's count is rounded up to whole blocks) so no update straddles two epochs.

    Args:
        dataset (`MultiTaskDataset`): the tasks' examples.
        sub_batch_size (`int`): examples per sub-batch.
        update_size (`int`, *optional*, defaults to 1): sub-batches per optimizer update across all processes.
        batching (`str`, *optional*, defaults to `"heterogeneous"`): see [`MuppetTrainingArguments.batching`].
        task_sampling (`str`, *optional*, defaults to `"natural"`): see [`MuppetTrainingArguments.task_sampling`].
        temperature (`float`, *optional*, defaults to 1.0): temperature of `task_sampling="temperature"`.
        max_examples_per_task (`int` or `dict[str, int]`, *optional*): cap per task per epoch, for all tasks or
            by task name.
        group_by_length (`bool`, *optional*, defaults to `True`): whether to group examples of similar length.
        lengths (`list[np.ndarray]`, *optional*): per-task example lengths, computed when not given.
        max_tokens_per_sub_batch (`int`, *optional*): padded-token budget of one sub-batch (see above); an
            example alone over it makes a sub-batch of one.
        task_size (`str`, *optional*, defaults to `"examples"`): `"examples"` counts source examples (an MRC
            example's windows once), `"windows"` counts tokenized rows.
        seed (`int`, *optional*, defaults to 0): seed of every random choice.
    """

    def __init__(
        self,
        dataset: MultiTaskDataset,
        sub_batch_size: int,
        update_size: int = 1,
        batching: str = "heterogeneous",
        task_sampling: str = "natural",
        temperature: float = 1.0,
        max_examples_per_task: int | dict[str, int] | None = None,
        group_by_length: bool = True,
        lengths: list[np.ndarray] | None = None,
        max_tokens_per_sub_batch: int | None = None,
        task_size: str = "examples",
        seed: int = 0,
    ):
        if sub_batch_size < 1 or update_size < 1:
            raise ValueError("MultiTaskBatchSampler: `sub_batch_size` and `update_size` must be at least 1")
        if batching not in ("heterogeneous", "batch_homogeneous", "dataset_homogeneous"):
            raise ValueError(f"MultiTaskBatchSampler: unknown batching {batching!r}")
        if task_size not in TASK_SIZE_UNITS:
            raise ValueError(f"MultiTaskBatchSampler: unknown task_size {task_size!r}; use one of {TASK_SIZE_UNITS}")
        if max_tokens_per_sub_batch is not None and max_tokens_per_sub_batch < 1:
            raise ValueError("MultiTaskBatchSampler: `max_tokens_per_sub_batch` must be at least 1")
        self.dataset = dataset
        self.sub_batch_size = sub_batch_size
        self.update_size = update_size
        self.batching = batching
        self.task_sampling = task_sampling
        self.temperature = temperature
        self.group_by_length = group_by_length
        self.max_tokens_per_sub_batch = max_tokens_per_sub_batch
        self.task_size = task_size
        self.seed = seed
        self.epoch = 0
        # Each task's source examples: rows grouped by `example_id` (span MRC windows), else one row each.
        self.groups = [source_examples(d) if task_size == "examples" else None for d in dataset.datasets]
        self.num_examples = np.asarray(
            [len(d) if g is None else int(g.max()) + 1 for d, g in zip(dataset.datasets, self.groups, strict=True)],
            dtype=np.int64,
        )
        caps = max_examples_per_task
        if isinstance(caps, dict):
            unknown = set(caps) - set(dataset.task_names)
            if unknown:
                raise ValueError(
                    f"MultiTaskBatchSampler: `max_examples_per_task` names unknown tasks {sorted(unknown)}"
                )
            self.caps = {name: caps.get(name) for name in dataset.task_names}
        else:
            self.caps = dict.fromkeys(dataset.task_names, caps)
        self.used_sizes = np.asarray(
            [
                size if self.caps[name] is None else min(size, self.caps[name])
                for name, size in zip(dataset.task_names, self.num_examples.tolist(), strict=True)
            ],
            dtype=np.int64,
        )
        shapes = None
        if max_tokens_per_sub_batch is not None or (group_by_length and lengths is None):
            shapes = [example_shapes(d) for d in dataset.datasets]
        self.shapes = shapes if max_tokens_per_sub_batch is not None else None
        if group_by_length:
            self.lengths = lengths if lengths is not None else [rows * longest for rows, longest in shapes]
        else:
            self.lengths = None
        self.weights = task_weights(self.used_sizes, task_sampling, temperature)
        self.sub_batches_per_task = self._plan_counts()

    def _plan_counts(self) -> np.ndarray:
        natural = -(-self.used_sizes // self.sub_batch_size)
        counts = (
            natural
            if self.task_sampling == "natural"
            else np.maximum(_largest_remainder(int(natural.sum()), self.weights), 1)
        )
        block = self.update_size
        if self.batching == "batch_homogeneous":
            return -(-counts // block) * block
        missing = (-int(counts.sum())) % block
        # Pad the epoch to whole updates with sub-batches of the most frequent tasks.
        order = np.argsort(-self.weights, kind="stable")
        for extra in range(missing):
            counts[order[extra % len(order)]] += 1
        return counts

    def __len__(self) -> int:
        return int(self.sub_batches_per_task.sum())

    def set_epoch(self, epoch: int):
        """Selects which epoch to plan; the Trainer calls it at the start of each epoch."""
        self.epoch = epoch

    def _windows_of(self, task_id: int, examples: np.ndarray, epoch: int) -> np.ndarray:
        """The row (window) each source example contributes this epoch: its windows in turn, from a random one."""
        groups = self.groups[task_id]
        order = np.argsort(groups, kind="stable")
        counts = np.bincount(groups)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        # Drawn from the seed alone, not the epoch, so that successive epochs step through every window.
        first = np.random.default_rng([self.seed, task_id]).integers(counts)
        return order[starts[examples] + (first[examples] + epoch) % counts[examples]]

    def _task_sub_batches(self, task_id: int, rng: np.random.Generator, epoch: int) -> list[np.ndarray]:
        size = int(self.num_examples[task_id])
        used = int(self.used_sizes[task_id])
        count = int(self.sub_batches_per_task[task_id])
        # Each example once when the count is the natural one; otherwise full sub-batches, cycling through fresh
        # shuffles (up-sampling) or stopping early (down-sampling and caps).
        natural = -(-used // self.sub_batch_size)
        wanted = used if count == natural else count * self.sub_batch_size
        cycles = [rng.permutation(size) for _ in range(-(-wanted // size))]
        stream = np.concatenate(cycles)[:wanted]
        if self.groups[task_id] is not None:
            stream = self._windows_of(task_id, stream, epoch)
        if self.lengths is not None:
            window = LENGTH_GROUPING_WINDOW * self.sub_batch_size
            lengths = self.lengths[task_id]
            for start in range(0, len(stream), window):
                chunk = stream[start : start + window]
                # Longest first within a window; stable, so equal lengths keep their random order.
                stream[start : start + window] = chunk[np.argsort(-lengths[chunk], kind="stable")]
        if self.shapes is not None:
            return self._pack(task_id, stream, count)
        return [stream[start : start + self.sub_batch_size] for start in range(0, wanted, self.sub_batch_size)]

    def _pack(self, task_id: int, stream: np.ndarray, count: int) -> list[np.ndarray]:
        """`count` sub-batches taken in order from `stream`, each as many examples as fit in the token budget.

        A sub-batch pads every example to its most choices and its longest sequence; it takes at most
        `sub_batch_size` examples, and at least one even when that one alone is over the budget.
        """
        rows, longest = self.shapes[task_id]
        sub_batches, start = [], 0
        while len(sub_batches) < count and start < len(stream):
            end, widest_rows, widest = start, 0, 0
            while end < len(stream) and end - start < self.sub_batch_size:
                next_rows = max(widest_rows, int(rows[stream[end]]))
                next_widest = max(widest, int(longest[stream[end]]))
                if end > start and (end - start + 1) * next_rows * next_widest > self.max_tokens_per_sub_batch:
                    break
                end, widest_rows, widest = end + 1, next_rows, next_widest
            sub_batches.append(stream[start:end])
            start = end
        return sub_batches

    def plan(self, epoch: int | None = None) -> list[tuple[int, np.ndarray]]:
        """The epoch's sub-batches in order, as `(task_id, local indices)`."""
        epoch = self.epoch if epoch is None else epoch
        per_task = [
            self._task_sub_batches(task_id, np.random.default_rng([self.seed, epoch, task_id]), epoch)
            for task_id in range(len(self.dataset.task_names))
        ]
        rng = np.random.default_rng([self.seed, epoch])
        if self.batching == "heterogeneous":
            flat = [(task_id, batch) for task_id, batches in enumerate(per_task) for batch in batches]
            return [flat[i] for i in rng.permutation(len(flat))]
        if self.batching == "batch_homogeneous":
            blocks = []
            for task_id, batches in enumerate(per_task):
                batches = [batches[i] for i in rng.permutation(len(batches))]
                for start in range(0, len(batches), self.update_size):
                    blocks.append([(task_id, batch) for batch in batches[start : start + self.update_size]])
            return [item for i in rng.permutation(len(blocks)) for item in blocks[i]]
        # dataset_homogeneous: one task after another, in the order given.
        return [
            (task_id, batches[i]) for task_id, batches in enumerate(per_task) for i in rng.permutation(len(batches))
        ]

    def __iter__(self):
        for task_id, local in self.plan():
            yield (local + self.dataset.offsets[task_id]).tolist()

    def task_shares(self, num_sub_batches: int, epoch: int = 0) -> dict[str, dict[str, float]]:
        """What each task gets of the first `num_sub_batches` sub-batches of the stream from `epoch` on.

        Returns:
            `dict[str, dict[str, float]]`: per task, `examples` (its share of the rows trained on: source examples,
            or windows of them for span MRC), `sub_batches` (its share of the draws; every sub-batch weighs the
            same in its update, so this is also its share of the gradient) and `examples_per_sub_batch`.
        """
        examples = np.zeros(len(self.dataset.task_names), dtype=np.int64)
        sub_batches = np.zeros_like(examples)
        remaining = num_sub_batches
        while remaining > 0:
            plan = self.plan(epoch)[:remaining]
            for task_id, local in plan:
                examples[task_id] += len(local)
                sub_batches[task_id] += 1
            remaining -= len(plan)
            epoch += 1
        return {
            name: {
                "examples": round(float(examples[task_id] / max(examples.sum(), 1)), 4),
                "sub_batches": round(float(sub_batches[task_id] / max(sub_batches.sum(), 1)), 4),
                "examples_per_sub_batch": round(float(examples[task_id] / max(sub_batches[task_id], 1)), 2),
            }
            for task_id, name in enumerate(self.dataset.task_names)
        }

    def state_dict(self) -> dict:
        """What a checkpoint must hold to replay this stream: the epoch and everything the plan depends on."""
        return {
            "epoch": self.epoch,
            "seed": self.seed,
            "sub_batch_size": self.sub_batch_size,
            "update_size": self.update_size,
            "batching": self.batching,
            "task_sampling": self.task_sampling,
            "temperature": self.temperature,
            "group_by_length": self.group_by_length,
            "task_sizes": dict(zip(self.dataset.task_names, self.dataset.sizes.tolist(), strict=True)),
            "caps": self.caps,
            "task_size": self.task_size,
            "max_tokens_per_sub_batch": self.max_tokens_per_sub_batch,
            "task_examples": dict(zip(self.dataset.task_names, self.num_examples.tolist(), strict=True)),
        }

    def load_state_dict(self, state: dict, source: str = "checkpoint"):
        """Restores the epoch after checking that the checkpoint planned the very same stream.

        Raises:
            `ValueError` naming `source` and the first field that differs (a changed task list, size, seed, ...).
        """
        current = self.state_dict()
        for key, value in current.items():
            if key == "epoch":
                continue
            if key not in state:
                raise ValueError(f"{source}: sampler state has no field `{key}`")
            saved = state[key]
            if key == "task_sizes" and list(saved) != list(value):
                raise ValueError(f"{source}: sampler field `task_sizes`: tasks were {list(saved)}, now {list(value)}")
            if saved != value:
                raise ValueError(
                    f"{source}: sampler field `{key}` was {saved!r} when the checkpoint was written, now {value!r}; "
                    "resuming would not replay the same task/example stream"
                )
        self.epoch = int(state["epoch"])


def benchmark_sampler(
    num_tasks: int,
    examples_per_task: int = 64,
    sub_batch_size: int = 8,
    update_size: int = 8,
    steps: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    """Times the data side of one training step as the number of tasks grows (synthetic tokenized tasks).

    Returns seconds: `plan_s` (planning one epoch), `per_sub_batch_s` (sampler + fetch + collate of one
    sub-batch, averaged over `steps`), `per_update_s` (= `update_size` sub-batches) and `setup_s` (building the
    dataset view and the sampler, incl. length computation).
    """
    from .collator import MuppetDataCollator

    rng = np.random.default_rng(seed)
    task_datasets = {}
    for task in range(num_tasks):
        lengths = rng.integers(8, 64, size=examples_per_task)
        task_datasets[f"task_{task}"] = datasets.Dataset.from_dict(
            {
                "input_ids": [list(range(1, int(n) + 1)) for n in lengths],
                "attention_mask": [[1] * int(n) for n in lengths],
                "labels": rng.integers(0, 2, size=examples_per_task).tolist(),
            }
        )
    start = time.perf_counter()
    dataset = MultiTaskDataset(task_datasets)
    sampler = MultiTaskBatchSampler(dataset, sub_batch_size, update_size=update_size, seed=seed)
    setup_s = time.perf_counter() - start
    collator = MuppetDataCollator(
        task_heads={name: name for name in task_datasets},
        head_types=dict.fromkeys(task_datasets, "classification"),
    )
    start = time.perf_counter()
    plan = sampler.plan(0)
    plan_s = time.perf_counter() - start
    iterator = iter(sampler)
    start = time.perf_counter()
    done = 0
    for _ in range(min(steps, len(plan))):
        collator(dataset.__getitems__(next(iterator)))
        done += 1
    per_sub_batch_s = (time.perf_counter() - start) / max(done, 1)
    return {
        "num_tasks": num_tasks,
        "setup_s": setup_s,
        "plan_s": plan_s,
        "per_sub_batch_s": per_sub_batch_s,
        "per_update_s": per_sub_batch_s * update_size,
        "sub_batches_per_epoch": len(sampler),
    }


__all__ = [
    "MultiTaskBatchSampler",
    "MultiTaskDataset",
    "SubBatch",
    "benchmark_sampler",
    "example_lengths",
    "example_shapes",
    "source_examples",
    "task_weights",
]
