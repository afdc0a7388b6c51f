"""Early checks of a task's data: bad files and rows fail before any tokenizing or training, naming where.

`datasets` reports a missing file without the task, a malformed JSONL line as a `DatasetGenerationError`, an empty
file as a bare `StopIteration`; a row of the wrong type surfaces later, deep in a tokenizer. These checks name the
task, the file, the field, and the line or row:

- [`check_source_files`]: local files exist, are not empty, and (JSON Lines) every line is a JSON object; labels
  are all class ids or all names across the task's splits.
- [`check_canonical_rows`]: each canonical column holds the type its family needs (texts are strings, choices a
  list of strings, span answers `text` and `answer_start` lists of one length, ...).
- [`check_not_empty`]: no split asked for is empty after rows without a label were dropped.
"""

import json
from collections.abc import Sequence
from pathlib import Path

import datasets

from .spec import TaskSpec


# Canonical columns that hold one text per row.
TEXT_COLUMNS = ("text", "text_pair", "context", "question", "source", "target")
# File suffixes read line by line as JSON Lines.
JSON_LINES_SUFFIXES = (".jsonl",)


def _error(spec: TaskSpec, field_name: str, message: str, file: str | None = None) -> ValueError:
    return ValueError(f"{file or spec.file}: task {spec.name!r}, field `{field_name}`: {message}")


def _label_column(spec: TaskSpec) -> str | None:
    """The top-level source column of the labels, when it is one plain column."""
    mapping = spec.columns.get("label")
    if spec.hook is not None or not isinstance(mapping, str) or "." in mapping:
        return None
    return mapping


def check_source_files(spec: TaskSpec, splits: Sequence[str]) -> None:
    """Checks the local files of the split roles asked for, before `datasets` reads them."""
    if spec.source.files is None:
        return
    label_column = _label_column(spec)
    label_kinds: dict[str, tuple[str, str, int]] = {}
    for role, path in spec.source.files.items():
        if role not in splits:
            continue
        field_name = f"source.files.{role}"
        file = Path(path)
        if not file.is_file():
            raise _error(spec, field_name, f"the {role} file {path} does not exist")
        if file.stat().st_size == 0:
            raise _error(spec, field_name, f"the {role} file {path} is empty (0 bytes)")
        if file.suffix not in JSON_LINES_SUFFIXES:
            continue
        rows = 0
        with file.open("rb") as handle:
            for number, raw_line in enumerate(handle, start=1):
                try:
                    line = raw_line.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise _error(spec, field_name, f"line {number} is not UTF-8 ({err})", file=path) from None
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise _error(spec, field_name, f"line {number} is not valid JSON ({err})", file=path) from None
                if not isinstance(row, dict):
                    raise _error(
                        spec, field_name, f"line {number} is a JSON {type(row).__name__}, not an object", file=path
                    )
                rows += 1
                if label_column is None or row.get(label_column) is None:
                    continue
                label = row[label_column]
                kind = "name" if isinstance(label, str) else "number" if isinstance(label, int | float) else None
                if kind is None:
                    raise _error(
                        spec,
                        f"columns.label ({label_column})",
                        f"line {number}: label {label!r} is neither a class id nor a label name",
                        file=path,
                    )
                other = next((seen for seen in label_kinds.values() if seen[0] != kind), None)
                if other is not None:
                    raise _error(
                        spec,
                        f"columns.label ({label_column})",
                        f"line {number} has a label {kind} ({label!r}) but line {other[2]} of {other[1]} has a label "
                        f"{other[0]}; give every split's labels as class ids or every split's as label names",
                        file=path,
                    )
                label_kinds.setdefault(role, (kind, path, number))
        if rows == 0:
            raise _error(spec, field_name, f"the {role} file {path} holds no rows", file=path)


def _row_error(spec: TaskSpec, column: str, split: str, row: int, message: str) -> ValueError:
    return _error(spec, f"columns.{column}", f"row {row} of the {split} split: {message}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_canonical_rows(spec: TaskSpec, out: dict[str, list], split: str, indices: Sequence[int]) -> None:
    """Checks the types of a batch of canonical rows (`indices` are their rows in the split, named in errors)."""
    for column in TEXT_COLUMNS:
        for row, value in zip(indices, out.get(column, ()), strict=False):
            if not isinstance(value, str):
                raise _row_error(spec, column, split, row, f"expected a text, got {value!r}")
    for row, value in zip(indices, out.get("label", ()), strict=False):
        if value is not None and not isinstance(value, str | int | float):
            raise _row_error(spec, "label", split, row, f"expected a class id or a label name, got {value!r}")
    for row, choices in zip(indices, out.get("choices", ()), strict=False):
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
            raise _row_error(spec, "choices", split, row, f"expected a list of at least two texts, got {choices!r}")
    for row, tokens in zip(indices, out.get("tokens", ()), strict=False):
        if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
            raise _row_error(spec, "tokens", split, row, f"expected a list of words, got {tokens!r}")
    for row, (tokens, tags) in enumerate(zip(out.get("tokens", ()), out.get("tags", ()), strict=False)):
        # Tags, like labels, are class ids or label names (mapped through `label_names` after this check).
        if (
            not isinstance(tags, list)
            or len(tags) != len(tokens)
            or not all(_is_int(t) or isinstance(t, str) for t in tags)
        ):
            raise _row_error(
                spec,
                "tags",
                split,
                indices[row],
                f"expected one class id or label name per word ({len(tokens)}), got {tags!r}",
            )
    for row, answer in zip(indices, out.get("answers", ()), strict=False):
        if not isinstance(answer, dict) or not {"text", "answer_start"} <= set(answer):
            raise _row_error(
                spec, "answers", split, row, f"expected {{text: [...], answer_start: [...]}}, got {answer!r}"
            )
        texts, starts = answer["text"], answer["answer_start"]
        if not isinstance(texts, list) or not isinstance(starts, list):
            raise _row_error(spec, "answers", split, row, f"`text` and `answer_start` must be lists, got {answer!r}")
        if len(texts) != len(starts):
            raise _row_error(
                spec,
                "answers",
                split,
                row,
                f"{len(texts)} answer texts but {len(starts)} `answer_start` offsets; give one offset per text",
            )
        if not all(isinstance(text, str) for text in texts) or not all(_is_int(start) for start in starts):
            raise _row_error(spec, "answers", split, row, f"answer texts must be strings and offsets ints: {answer!r}")


def check_window(spec: TaskSpec, max_length: int, doc_stride: int, special_tokens: int) -> None:
    """Refuses span MRC windows too short for their stride (the tokenizer would fail deep in its overflow code)."""
    if spec.family == "span_mrc" and doc_stride >= max_length - special_tokens:
        raise _error(
            spec,
            "max_length",
            f"windows of {max_length} tokens ({special_tokens} of them special) leave no room beyond the "
            f"{doc_stride}-token stride of long contexts; raise `max_length` or lower `doc_stride`",
        )


def check_not_empty(spec: TaskSpec, canonical: datasets.DatasetDict) -> None:
    """Refuses a split asked for that has no rows left (all unlabelled, or an empty file)."""
    for split, dataset in canonical.items():
        if len(dataset) == 0:
            file = (spec.source.files or {}).get(split)
            where = f" ({file})" if file else ""
            raise _error(
                spec,
                f"source.splits.{split}",
                f"the {split} split{where} has no usable rows (every row lacked a label or was dropped); "
                "training or evaluating on it would fail only at its end",
            )


__all__ = ["check_canonical_rows", "check_not_empty", "check_source_files", "check_window"]
