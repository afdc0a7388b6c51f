"""Padding of single-task sub-batches for [`MuppetForMultiTask`]."""

from dataclasses import dataclass, field

import torch

from .heads import head_class
from .losses import IGNORE_INDEX
from .sampling import SubBatch


TOKEN_COLUMNS = ("input_ids", "attention_mask", "token_type_ids")


def _pad_2d(rows: list[list[int]], value: int, multiple: int | None) -> torch.Tensor:
    length = max((len(row) for row in rows), default=0)
    if multiple:
        length = -(-length // multiple) * multiple
    out = torch.full((len(rows), length), value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
    return out


def _pad_3d(rows: list[list[list[int]]], value: int, multiple: int | None) -> torch.Tensor:
    choices = max(len(row) for row in rows)
    length = max((len(choice) for row in rows for choice in row), default=0)
    if multiple:
        length = -(-length // multiple) * multiple
    out = torch.full((len(rows), choices, length), value, dtype=torch.long)
    for i, row in enumerate(rows):
        for j, choice in enumerate(row):
            out[i, j, : len(choice)] = torch.as_tensor(choice, dtype=torch.long)
    return out


def _sub_batch_of(examples: list[dict]) -> SubBatch:
    """A [`SubBatch`] from examples that each name their `task` (and, optionally, their row as `index`)."""
    if not examples:
        raise ValueError("MuppetDataCollator received an empty sub-batch")
    tasks = sorted({example["task"] for example in examples})
    if len(tasks) > 1:
        raise ValueError(f"a sub-batch must hold a single task (one head, one collator); it holds {tasks}")
    keys = [key for key in examples[0] if key not in ("task", "index")]
    rows = [example["index"] for example in examples] if "index" in examples[0] else None
    return SubBatch(tasks[0], {key: [example[key] for example in examples] for key in keys}, rows)


def pad_token_id_of(tokenizer, model) -> int:
    """The tokenizer's padding id, else the backbone's, else 0."""
    pad_token_id = tokenizer.pad_token_id if tokenizer is not None else None
    return pad_token_id if pad_token_id is not None else (model.config.base_model_config.pad_token_id or 0)


@dataclass
class MuppetDataCollator:
    """Pads a sub-batch of one task into the keyword arguments of [`MuppetForMultiTask.forward`].

    What is padded, and how, is the task's head's: its `target_columns` and `per_choice` (`muppet_hf.heads`). The
    batch also carries `task` (the task name, for logging and metrics) and `example_indices` (each example's row in
    its task's dataset, to name a bad sub-batch); [`MuppetTrainer`] pops both before the forward pass.

    Args:
        task_heads (`dict[str, str]`): task name -> head name (`MuppetConfig.tasks`).
        head_types (`dict[str, str]`): head name -> head type.
        pad_token_id (`int`, *optional*, defaults to 0): the tokenizer's padding id.
        pad_to_multiple_of (`int`, *optional*): round the padded length up to a multiple (tensor cores like 8).
        label_pad_token_id (`int`, *optional*, defaults to -100): padding of per-token targets, ignored by the loss.
    """

    task_heads: dict[str, str]
    head_types: dict[str, str]
    pad_token_id: int = 0
    pad_to_multiple_of: int | None = None
    label_pad_token_id: int = field(default=IGNORE_INDEX)

    def head_type_of(self, task: str) -> str:
        if task not in self.task_heads:
            raise ValueError(f"task {task!r} has no head in `MuppetConfig.tasks` ({sorted(self.task_heads)})")
        head = self.task_heads[task]
        if head not in self.head_types:
            raise ValueError(f"task {task!r} uses head {head!r}, which is not in `MuppetConfig.heads`")
        return self.head_types[head]

    def __call__(self, features: SubBatch | list[dict]) -> dict:
        """Pads `features`: a [`SubBatch`] (as [`MultiTaskDataset`] returns it), or a list of examples that each
        name their `task` (a plain dataset with a task column)."""
        sub_batch = features if isinstance(features, SubBatch) else _sub_batch_of(features)
        task, columns = sub_batch.task, sub_batch.columns
        head = head_class(self.head_type_of(task))
        batch: dict = {"head": self.task_heads[task], "task": task}
        if sub_batch.rows is not None:
            batch["example_indices"] = torch.tensor(sub_batch.rows, dtype=torch.long)

        multiple = self.pad_to_multiple_of
        pad = _pad_3d if head.per_choice else _pad_2d
        for column in TOKEN_COLUMNS:
            if column in columns:
                batch[column] = pad(columns[column], self.pad_token_id if column == "input_ids" else 0, multiple)
        if head.per_choice:
            # Datasets with 2 and 5 choices share one head (paper §3.2): padding choices are masked out of the softmax.
            counts = torch.tensor([len(choices) for choices in columns["input_ids"]])
            batch["choice_mask"] = torch.arange(batch["input_ids"].shape[1])[None, :] < counts[:, None]
        for column, target in head.target_columns.items():
            if column not in columns:
                continue
            if target.per_token:
                batch[column] = _pad_2d(columns[column], self.label_pad_token_id, multiple)
            else:
                batch[column] = torch.tensor(columns[column], dtype=target.dtype)
        return batch


__all__ = ["MuppetDataCollator", "pad_token_id_of"]
