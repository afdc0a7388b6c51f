"""Padding of single-task sub-batches for [`MuppetForMultiTask`]."""

from dataclasses import dataclass, field

import torch

from .losses import IGNORE_INDEX


# Columns preprocessing keeps for scoring (span MRC) that are no model inputs.
SCORING_COLUMNS = ("offset_mapping", "example_id")
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


@dataclass
class MuppetDataCollator:
    """Pads a sub-batch of one task into the keyword arguments of [`MuppetForMultiTask.forward`].

    The batch also carries `task` (the task name, for logging and metrics) and `example_indices` (each example's row
    in its task's dataset, to name a bad sub-batch); [`MuppetTrainer`] pops both before the forward pass.

    Args:
        task_heads (`dict[str, str]`): task name -> head name (`MuppetConfig.tasks`).
        head_types (`dict[str, str]`): head name -> head type.
        pad_token_id (`int`, *optional*, defaults to 0): the tokenizer's padding id.
        pad_to_multiple_of (`int`, *optional*): round the padded length up to a multiple (tensor cores like 8).
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

    def __call__(self, features: list[dict]) -> dict:
        if not features:
            raise ValueError("MuppetDataCollator received an empty sub-batch")
        task = features[0]["task"]
        if any(feature["task"] != task for feature in features):
            tasks = sorted({feature["task"] for feature in features})
            raise ValueError(f"a sub-batch must hold a single task (one head, one collator); it holds {tasks}")
        head_type = self.head_type_of(task)
        batch: dict = {"head": self.task_heads[task], "task": task}
        if "index" in features[0]:
            batch["example_indices"] = torch.tensor([feature["index"] for feature in features], dtype=torch.long)

        multiple = self.pad_to_multiple_of
        for column in TOKEN_COLUMNS:
            if column not in features[0]:
                continue
            value = self.pad_token_id if column == "input_ids" else 0
            rows = [feature[column] for feature in features]
            batch[column] = (
                _pad_3d(rows, value, multiple) if head_type == "multiple_choice" else _pad_2d(rows, value, multiple)
            )
        if head_type == "multiple_choice":
            # Datasets with 2 and 5 choices share one head (paper §3.2): padding choices are masked out of the softmax.
            counts = torch.tensor([len(feature["input_ids"]) for feature in features])
            batch["choice_mask"] = torch.arange(batch["input_ids"].shape[1])[None, :] < counts[:, None]

        if head_type == "span":
            for column in ("start_positions", "end_positions"):
                if column in features[0]:
                    batch[column] = torch.tensor([feature[column] for feature in features], dtype=torch.long)
        elif "labels" in features[0]:
            labels = [feature["labels"] for feature in features]
            if head_type in ("token_classification", "seq2seq"):
                batch["labels"] = _pad_2d(labels, self.label_pad_token_id, multiple)
            elif head_type == "regression":
                batch["labels"] = torch.tensor(labels, dtype=torch.float)
            else:
                batch["labels"] = torch.tensor(labels, dtype=torch.long)
        return batch


__all__ = ["MuppetDataCollator"]
