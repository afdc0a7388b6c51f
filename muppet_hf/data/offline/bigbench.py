"""BIG-bench converters: `task.json` examples and SQuAD-format files of the `bigbench==1.0.0` sdist -> canonical rows.

BIG-bench `task.json` files hold `examples`, each with an `input` and either `target_scores` (`{choice: 0 or 1}`) or a
`target`. Inputs that pack two fields into one string are split into text pairs by a pattern per task; the patterns
live beside the suite's task table (`suite.py`).

BIG-bench files carry a canary string that asks for them to stay out of training corpora: never publish a checkpoint
trained on a task tagged `canary`.
"""

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

from .archives import BIGBENCH_ROOT
from .task import OfflineTask, Reader, task_error


# Converters: BIG-bench records -> canonical rows ---------------------------------------------------------------------


def _single_correct(target_scores: dict[str, float]) -> str | None:
    """The one choice scored 1, or None when there is not exactly one."""
    correct = [choice for choice, score in target_scores.items() if score == 1]
    return correct[0] if len(correct) == 1 else None


def _parse_input(pattern: re.Pattern, example: dict, index: int, task: str) -> re.Match:
    """The fields packed into an example's input, as `pattern` parses them; an input it does not match is an error."""
    match = pattern.match(example["input"])
    if match is None:
        raise task_error(task, f"example {index}, field `input`", f"does not match {pattern.pattern!r}")
    return match


def _class_id(example: dict, index: int, task: str, label_names: list[str], drops: Counter) -> int | None:
    """The class of the choice scored 1 (matched case-insensitively), or None (counted) when there is not one."""
    correct = _single_correct(example["target_scores"])
    if correct is None:
        drops["not exactly one target scored 1"] += 1
        return None
    classes = [name.lower() for name in label_names]
    if correct.lower() not in classes:
        raise task_error(task, f"example {index}, field `target_scores`", f"{correct!r} is not in {label_names}")
    return classes.index(correct.lower())


def bigbench_classification(
    examples: list[dict],
    task: str,
    label_names: list[str],
    text_pattern: re.Pattern | None = None,
    suffix: str = "",
    drops: Counter | None = None,
) -> list[dict]:
    """BIG-bench `target_scores` examples -> `text`, `label`.

    Args:
        examples (`list[dict]`): the `examples` of a `task.json`.
        task (`str`): the task name, for errors.
        label_names (`list[str]`): class names; a choice matches its class case-insensitively.
        text_pattern (`re.Pattern`, *optional*): a pattern whose group `text` holds the example text inside the
            prompt (e.g. the claim inside "the following claim was made: ..."). Defaults to the whole input.
        suffix (`str`, *optional*): appended to the text, for prompts that end mid-sentence.
        drops (`Counter`, *optional*): receives the number of dropped rows per reason.
    """
    drops = Counter() if drops is None else drops
    rows = []
    for index, example in enumerate(examples):
        text = example["input"] if text_pattern is None else _parse_input(text_pattern, example, index, task)["text"]
        label = _class_id(example, index, task, label_names, drops)
        if label is not None:
            rows.append({"text": text.strip() + suffix, "label": label})
    return rows


def bigbench_pairs(
    examples: list[dict], task: str, label_names: list[str], pattern: re.Pattern, drops: Counter | None = None
) -> list[dict]:
    """BIG-bench examples whose input packs two fields (`Sentence 1: ... Sentence 2: ...`) -> `text`, `text_pair`,
    `label`. `pattern` has the groups `text` and `text_pair`; an input it does not match is an error."""
    drops = Counter() if drops is None else drops
    rows = []
    for index, example in enumerate(examples):
        match = _parse_input(pattern, example, index, task)
        label = _class_id(example, index, task, label_names, drops)
        if label is not None:
            rows.append({"text": match["text"].strip(), "text_pair": match["text_pair"].strip(), "label": label})
    return rows


def bigbench_multiple_choice(examples: list[dict], drops: Counter | None = None) -> list[dict]:
    """BIG-bench `target_scores` examples -> `context`, `choices`, `label` (the index of the choice scored 1).

    All choices are kept, in an order fixed by hashing each choice with the context. Some BIG-bench tasks list the
    right answer at a fixed position (always third in timedial, always first in question_selection); a model would
    learn the position instead of the task.
    """
    drops = Counter() if drops is None else drops
    rows = []
    for example in examples:
        context = example["input"].strip()
        correct = _single_correct(example["target_scores"])
        if correct is None:
            drops["not exactly one target scored 1"] += 1
            continue
        # Choices carry stray trailing spaces ("two hours "), which would make equal answers differ.
        choices = [choice.strip() for choice in example["target_scores"]]
        if len(set(choices)) != len(choices) or len(choices) < 2:
            drops["fewer than two distinct choices"] += 1
            continue
        correct = correct.strip()
        choices.sort(key=lambda choice: hashlib.sha256(f"{context}\0{choice}".encode()).hexdigest())
        rows.append({"context": context, "choices": choices, "label": choices.index(correct)})
    return rows


def bigbench_summarization(examples: list[dict], task: str, drops: Counter | None = None) -> list[dict]:
    """BIG-bench GEM examples -> `source`, `target`."""
    drops = Counter() if drops is None else drops
    rows = []
    for index, example in enumerate(examples):
        target = example.get("target")
        if not isinstance(target, str):
            raise task_error(task, f"example {index}, field `target`", f"expected one summary, got {target!r}")
        if not example["input"].strip() or not target.strip():
            drops["empty document or summary"] += 1
            continue
        rows.append({"source": example["input"].strip(), "target": target.strip()})
    return rows


def _nearest(context: str, text: str, start: int) -> int:
    """The occurrence of `text` in `context` closest to `start`, or -1."""
    best, position = -1, context.find(text)
    while position >= 0:
        if best < 0 or abs(position - start) < abs(best - start):
            best = position
        position = context.find(text, position + 1)
    return best


def squad_rows(squad: dict, task: str, drops: Counter | None = None) -> list[dict]:
    """A SQuAD-format file (`data` -> `paragraphs` -> `qas`) -> one row per question, all its answers kept.

    Some `answer_start` offsets in SQuADShifts are off (by one in squaddev and reddit, where answers begin with a
    space; further in amazon_reviews). Answers are stripped and moved to the occurrence of their text nearest the
    given offset; an answer whose text is not in its paragraph is dropped, and a question left with none.
    """
    drops = Counter() if drops is None else drops
    rows = []
    for article in squad["data"]:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                texts, starts = [], []
                for answer in qa["answers"]:
                    text, start = answer["text"], answer["answer_start"]
                    stripped = text.strip()
                    start += len(text) - len(text.lstrip())
                    if context[start : start + len(stripped)] != stripped:
                        start = _nearest(context, stripped, start)
                        if start < 0:
                            drops["answers not found in their paragraph"] += 1
                            continue
                        drops["answer offsets corrected"] += 1
                    texts.append(stripped)
                    starts.append(start)
                if not texts:
                    drops["questions without a locatable answer"] += 1
                    continue
                rows.append(
                    {
                        "context": context,
                        "question": qa["question"],
                        "answers": {"text": texts, "answer_start": starts},
                    }
                )
    return rows


def _locate(context: str, answer: str, prefer_from: int = 0) -> tuple[str, int] | None:
    """Finds a generated answer in a passage: without the period Natural Instructions appends to every answer, then
    as written, then ignoring case. Occurrences at or after `prefer_from` win. Returns the passage's own text and its
    offset."""
    for candidate in dict.fromkeys((answer.strip().rstrip(".").strip(), answer.strip())):
        if not candidate:
            continue
        for haystack, needle in ((context, candidate), (context.lower(), candidate.lower())):
            start = haystack.find(needle, prefer_from)
            if start < 0:
                start = haystack.find(needle)
            if start >= 0:
                return context[start : start + len(candidate)], start
    return None


def natural_instructions_spans(
    examples: list[dict], task: str, pattern: re.Pattern, drops: Counter | None = None
) -> list[dict]:
    """BIG-bench Natural Instructions answer-generation examples -> span MRC rows.

    `pattern` parses the input into the groups `question` and `context`, or `background` and `story` (joined into
    the context, story second). The generated answer is located in the context; the story is searched first since
    ROPES questions are about it. A row whose answer is not in the context is dropped; so is one with several target
    spans (Quoref's "What are the names of the two ...?"), which one SQuAD span cannot hold.
    """
    drops = Counter() if drops is None else drops
    rows = []
    for index, example in enumerate(examples):
        match = _parse_input(pattern, example, index, task)
        parts = match.groupdict()
        if parts.get("context") is not None:
            context, prefer_from = parts["context"].strip(), 0
        else:
            background = parts["background"].strip()
            context, prefer_from = f"{background}\n{parts['story'].strip()}", len(background) + 1
        targets = example["target"]
        if len(targets) != 1:
            drops["several answer spans"] += 1
            continue
        located = _locate(context, targets[0], prefer_from)
        if located is None:
            drops["answer not found in the passage"] += 1
            continue
        text, start = located
        rows.append(
            {
                "context": context,
                "question": parts["question"].strip(),
                "answers": {"text": [text], "answer_start": [start]},
            }
        )
    return rows


# Readers: one task's files in the extracted sdist -> rows ------------------------------------------------------------


def _bigbench_examples(source: Path, relative: str, task: str) -> list[dict]:
    path = source / BIGBENCH_ROOT / relative
    with path.open(encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data.get("examples"), list):
        raise task_error(task, str(path), "field `examples` is missing")
    return data["examples"]


def classification_reader(relative: str, pattern: str | None = None, suffix: str = "") -> Reader:
    compiled = re.compile(pattern, re.DOTALL) if pattern else None

    def read(source: Path, task: OfflineTask, drops: Counter) -> tuple[list[dict], None]:
        examples = _bigbench_examples(source, relative, task.name)
        return bigbench_classification(examples, task.name, task.label_names, compiled, suffix, drops), None

    return read


def pairs_reader(relative: str, pattern: str) -> Reader:
    compiled = re.compile(pattern, re.DOTALL)

    def read(source: Path, task: OfflineTask, drops: Counter) -> tuple[list[dict], None]:
        examples = _bigbench_examples(source, relative, task.name)
        return bigbench_pairs(examples, task.name, task.label_names, compiled, drops), None

    return read


def multiple_choice_reader(*relatives: str) -> Reader:
    """Multiple-choice rows of one `task.json`, or of several (the subtasks of one task) pooled."""

    def read(source: Path, task: OfflineTask, drops: Counter) -> tuple[list[dict], None]:
        examples = [example for relative in relatives for example in _bigbench_examples(source, relative, task.name)]
        return bigbench_multiple_choice(examples, drops), None

    return read


def summarization_reader(relative: str) -> Reader:
    def read(source: Path, task: OfflineTask, drops: Counter) -> tuple[list[dict], None]:
        return bigbench_summarization(_bigbench_examples(source, relative, task.name), task.name, drops), None

    return read


def squad_reader(relative: str) -> Reader:
    def read(source: Path, task: OfflineTask, drops: Counter) -> tuple[list[dict], None]:
        path = source / BIGBENCH_ROOT / relative
        with path.open(encoding="utf-8") as handle:
            squad = json.load(handle)
        if not isinstance(squad.get("data"), list):
            raise task_error(task.name, str(path), "field `data` is missing: not a SQuAD-format file")
        return squad_rows(squad, task.name, drops), None

    return read


def spans_reader(relative: str, pattern: str) -> Reader:
    compiled = re.compile(pattern, re.DOTALL)

    def read(source: Path, task: OfflineTask, drops: Counter) -> tuple[list[dict], None]:
        examples = _bigbench_examples(source, relative, task.name)
        return natural_instructions_spans(examples, task.name, compiled, drops), None

    return read
