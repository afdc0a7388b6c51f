"""Deduplication and deterministic splits of canonical rows.

Splits never follow the row order of a source. Each example goes to train (80%), validation (10%) or test (10%) by
the SHA-256 of its content, so adding or reordering source rows does not move the others. Where a source ships its
own test file (20 Newsgroups, Reuters R8), that file stays the test split and validation is carved from train by the
same hash.
"""

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from typing import Any


# What identifies an example (dedupe) and what keeps related examples together (split). Span MRC and summarization
# split by passage/document, as SQuAD splits by article, so no passage is trained on and evaluated on.
DEDUPE_FIELDS = {
    "classification": ("text",),
    "pair_classification": ("text", "text_pair"),
    "multiple_choice": ("context", "choices"),
    "span_mrc": ("context", "question"),
    "summarization": ("source",),
}
SPLIT_FIELDS = {**DEDUPE_FIELDS, "span_mrc": ("context",)}
# Buckets 0-7 of 10 go to train, 8 to validation, 9 to test: 80/10/10.
NUM_BUCKETS = 10
VALIDATION_BUCKET = 8
TEST_BUCKET = 9


def content_hash(row: dict[str, Any], fields: Iterable[str]) -> str:
    """SHA-256 of the given fields of a row; JSON-encoded, so `("ab", "c")` and `("a", "bc")` differ."""
    values = []
    for name in fields:
        value = row[name]
        # A multiple-choice example is the same whatever order its choices come in.
        values.append(sorted(value) if isinstance(value, list) else value)
    return hashlib.sha256(json.dumps(values, ensure_ascii=False).encode("utf-8")).hexdigest()


def _bucket(digest: str) -> int:
    return int(digest[:8], 16) % NUM_BUCKETS


def _merge_answers(group: list[dict]) -> dict:
    """One span MRC row from several that ask the same question of the same passage: their answers are alternatives
    (SQuAD keeps one per annotator), so they are pooled, each distinct span once."""
    spans = {
        (start, text)
        for row in group
        for text, start in zip(row["answers"]["text"], row["answers"]["answer_start"], strict=True)
    }
    ordered = sorted(spans)
    return {**group[0], "answers": {"text": [text for _, text in ordered], "answer_start": [s for s, _ in ordered]}}


def _dedupe(rows: list[dict], family: str, drops: Counter) -> list[dict]:
    """Keeps one copy of exact duplicates. An input that the source labels in different ways is dropped, every copy,
    except in span MRC, where the answers of a question asked twice are pooled."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(content_hash(row, DEDUPE_FIELDS[family]), []).append(row)
    kept = []
    for digest, group in groups.items():
        distinct = {json.dumps(row, ensure_ascii=False, sort_keys=True) for row in group}
        if len(distinct) == 1:
            drops["exact duplicates"] += len(group) - 1
            kept.append({**group[0], "id": digest[:16]})
        elif family == "span_mrc":
            drops["repeated questions, answers pooled"] += len(group) - 1
            kept.append({**_merge_answers(group), "id": digest[:16]})
        else:
            drops["conflicting duplicates (same input, different labels)"] += len(group)
    return kept


def split_rows(
    rows: list[dict], family: str, test_rows: list[dict] | None = None, drops: Counter | None = None
) -> dict[str, list[dict]]:
    """Dedupes canonical rows and assigns them to `train`/`validation`/`test` by content hash.

    Args:
        rows (`list[dict]`): canonical rows of one task (see `docs/task_schema.md`).
        family (`str`): the task family; it decides which fields identify an example (`DEDUPE_FIELDS`) and which
            keep examples together in one split (`SPLIT_FIELDS`).
        test_rows (`list[dict]`, *optional*): a test split shipped by the source. It is kept as the test split,
            `rows` give train and validation (the test bucket goes to train), and train rows that also appear in it
            are dropped.
        drops (`Counter`, *optional*): receives the number of dropped (or pooled) rows per reason.

    Returns:
        `dict[str, list[dict]]`: rows per split, each with an `id` (16 hex digits of its content hash), sorted by
        that id, so that taking the first rows of a split samples it evenly instead of taking one source file.
    """
    drops = Counter() if drops is None else drops
    rows = _dedupe(rows, family, drops)
    splits: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
    if test_rows is not None:
        splits["test"] = _dedupe(test_rows, family, drops)
        test_ids = {row["id"] for row in splits["test"]}
        overlap = [row for row in rows if row["id"] in test_ids]
        drops["train rows also in the shipped test split"] += len(overlap)
        rows = [row for row in rows if row["id"] not in test_ids]
    for row in rows:
        bucket = _bucket(content_hash(row, SPLIT_FIELDS[family]))
        if bucket == VALIDATION_BUCKET:
            splits["validation"].append(row)
        elif bucket == TEST_BUCKET and test_rows is None:
            splits["test"].append(row)
        else:
            splits["train"].append(row)
    return {name: sorted(split, key=lambda row: row["id"]) for name, split in splits.items()}
