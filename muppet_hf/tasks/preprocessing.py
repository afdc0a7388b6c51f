"""From a `TaskSpec` to tokenized features: load the source, map it to canonical columns, tokenize per family.

Everything runs through `datasets.Dataset.map(batched=True)` with fast tokenizers, so results are cached as Arrow
files next to the source data and a second run reuses them.
"""

import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import datasets
from datasets.exceptions import DatasetGenerationError
from transformers import PreTrainedTokenizerBase

from .hooks import HOOKS
from .spec import SUFFIX_FORMATS, TaskSpec
from .validation import check_canonical_rows, check_not_empty, check_source_files, check_window


logger = logging.getLogger(__name__)

# datasets fingerprints module-level functions by name, not code: without the digest of this file in the tokenize
# map's fingerprint (passed as a keyword argument), an edit here would reuse stale cached features.
_SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
# A summary is capped separately from its document: targets are short, documents long.
DEFAULT_MAX_TARGET_LENGTH = 64


def _error(spec: TaskSpec, field_name: str, message: str) -> ValueError:
    return ValueError(f"{spec.file}: task {spec.name!r}, field `{field_name}`: {message}")


def _builders() -> dict[str, Callable[..., datasets.DatasetDict]]:
    # Imported lazily: the offline builder pulls in download helpers a Hub-only user never needs.
    from ..data import load_offline_task

    return {"offline_suite": load_offline_task}


def load_raw(
    spec: TaskSpec, splits: Sequence[str] = ("train", "validation"), cache_dir: str | None = None
) -> datasets.DatasetDict:
    """Loads the task's source rows for the split roles asked for (`train`, `validation`, `test`) that it has."""
    source = spec.source
    if source.builder is not None:
        builders = _builders()
        if source.builder not in builders:
            raise _error(spec, "source.builder", f"unknown builder {source.builder!r}; known: {sorted(builders)}")
        built = builders[source.builder](spec.name, cache_dir=cache_dir)
        return datasets.DatasetDict({role: built[role] for role in splits if role in built})
    if source.files is not None:
        files = {role: path for role, path in source.files.items() if role in splits}
        if not files:
            raise _error(spec, "source.files", f"has none of the splits {list(splits)}")
        check_source_files(spec, splits)
        data_format = source.format or SUFFIX_FORMATS[Path(next(iter(files.values()))).suffix]
        try:
            return datasets.load_dataset(data_format, data_files=files, cache_dir=cache_dir)
        except DatasetGenerationError as err:
            # Rows that parse but do not fit one table (a column that is a number in one row, a text in another).
            cause = err.__cause__ or err
            raise _error(spec, "source.files", f"{data_format} files {files} do not load: {cause}") from err
    split_names = source.splits or {"train": "train", "validation": "validation"}
    wanted = {role: split_names[role] for role in splits if role in split_names}
    loaded = datasets.load_dataset(
        source.hub, source.config, split=list(wanted.values()), revision=source.revision, cache_dir=cache_dir
    )
    return datasets.DatasetDict(dict(zip(wanted, loaded, strict=True)))


def _get_path(batch: dict[str, list], path: str, spec: TaskSpec, field_name: str, split: str) -> list:
    """The values of a column, or of a dotted path into struct columns (`choices.text`)."""
    head, *rest = path.split(".")
    if head not in batch:
        raise _error(
            spec, f"columns.{field_name}", f"column {head!r} is not in the {split} split (columns: {sorted(batch)})"
        )
    values = batch[head]
    for key in rest:
        try:
            values = [value[key] for value in values]
        except (KeyError, TypeError) as err:
            raise _error(spec, f"columns.{field_name}", f"{path!r} does not resolve in the {split} split") from err
    return values


def _get_field(batch: dict[str, list], spec: TaskSpec, field_name: str, split: str) -> list:
    mapping = spec.columns[field_name]
    if isinstance(mapping, str):
        return _get_path(batch, mapping, spec, field_name, split)
    parts = [_get_path(batch, path, spec, field_name, split) for path in mapping]
    if field_name == "choices":
        return [list(row) for row in zip(*parts, strict=True)]
    # Several text columns (title and body, say) become one text.
    return [" ".join(str(part) for part in row if part) for row in zip(*parts, strict=True)]


def _map_labels(spec: TaskSpec, raw_labels: list, split: str) -> list[int | float | None]:
    """Raw labels -> class ids; `None` marks a row to drop (unlabelled test rows, `label_map` nulls)."""
    if spec.family == "regression":
        return [None if label is None else float(label) for label in raw_labels]
    names = {name: index for index, name in enumerate(spec.label_names or [])}
    mapped = []
    for label in raw_labels:
        if spec.label_map is not None and str(label) in spec.label_map:
            mapped.append(spec.label_map[str(label)])
        elif isinstance(label, str) and label in names:
            mapped.append(names[label])
        elif isinstance(label, bool | int) and not isinstance(label, str):
            mapped.append(int(label))
        elif label is None:
            mapped.append(None)
        else:
            raise _error(spec, "label_map", f"label {label!r} in the {split} split is neither a class id nor mapped")
    return mapped


def _check_label_range(spec: TaskSpec, labels: list, split: str, num_classes: int | list[int] | None):
    for index, label in enumerate(labels):
        limit = num_classes[index] if isinstance(num_classes, list) else num_classes
        if label is not None and limit is not None and not 0 <= label < limit:
            raise _error(spec, "label", f"label {label} in the {split} split is outside [0, {limit})")


def _check_answers(spec: TaskSpec, contexts: list[str], answers: list[dict], split: str):
    for context, answer in zip(contexts, answers, strict=True):
        for text, start in zip(answer["text"], answer["answer_start"], strict=True):
            if context[start : start + len(text)] != text:
                raise _error(
                    spec,
                    "answers",
                    f"answer {text!r} is not found in its context at offset {start} in the {split} split",
                )


def canonicalize(spec: TaskSpec, raw: datasets.DatasetDict, num_proc: int | None = None) -> datasets.DatasetDict:
    """Maps source rows to the family's canonical columns (see `docs/task_schema.md`), checking labels and spans."""

    def convert(batch: dict[str, list], indices: list[int], split: str) -> dict[str, list]:
        if spec.hook is not None:
            out = HOOKS[spec.hook](batch)
        else:
            out = {name: _get_field(batch, spec, name, split) for name in spec.columns}
        check_canonical_rows(spec, out, split, indices)
        if spec.family == "span_mrc" and "id" not in out:
            out["id"] = [f"{split}-{index}" for index in indices]
        if "label" in out:
            out["label"] = _map_labels(spec, out["label"], split)
            num_classes = [len(choices) for choices in out["choices"]] if "choices" in out else spec.num_labels
            if spec.family != "regression":
                _check_label_range(spec, out["label"], split, num_classes)
        if "tags" in out:
            # Tags map like labels: names through `label_names` (or `label_map`), ids as they are.
            out["tags"] = [_map_labels(spec, tags, split) for tags in out["tags"]]
            for tags in out["tags"]:
                if None in tags:
                    raise _error(spec, "tags", f"a tag in the {split} split is null; every word needs a tag")
                _check_label_range(spec, tags, split, spec.num_labels)
        if "answers" in out:
            _check_answers(spec, out["context"], out["answers"], split)
        # Rows without a label (GLUE test splits use -1, mapped to None) cannot train or score.
        labels = out.get("label")
        if labels is None:
            return out
        keep = [index for index, label in enumerate(labels) if label is not None]
        return {name: [values[index] for index in keep] for name, values in out.items()}

    converted = {}
    for split, dataset in raw.items():
        converted[split] = dataset.map(
            convert,
            batched=True,
            with_indices=True,
            remove_columns=dataset.column_names,
            fn_kwargs={"split": split},
            num_proc=num_proc,
            desc=f"{spec.name}: canonical columns ({split})",
        )
    return datasets.DatasetDict(converted)


def _tokenize_classification(batch, tokenizer, max_length, spec, **_):
    pair = batch["text_pair"] if "text_pair" in batch else None
    features = tokenizer(batch["text"], pair, truncation=True, max_length=max_length)
    features["labels"] = batch["label"]
    return features


def _tokenize_multiple_choice(batch, tokenizer, max_length, spec, **_):
    # Each choice is encoded with its context as one sequence; the head scores each and softmaxes over choices.
    counts = [len(choices) for choices in batch["choices"]]
    contexts = [context for context, count in zip(batch["context"], counts, strict=True) for _ in range(count)]
    choices = [choice for row in batch["choices"] for choice in row]
    flat = (
        tokenizer(contexts, choices, truncation=True, max_length=max_length)
        if any(contexts)
        else tokenizer(choices, truncation=True, max_length=max_length)
    )
    features: dict[str, list] = {key: [] for key in flat}
    offset = 0
    for count in counts:
        for key, values in flat.items():
            features[key].append(values[offset : offset + count])
        offset += count
    features["labels"] = batch["label"]
    return features


def _tokenize_span(batch, tokenizer, max_length, spec, doc_stride, keep_offsets, stats, **_):
    # SQuAD-style windows: question first, context truncated with overlapping strides. Every window must leave the
    # context more room than the stride, so overlong questions are cut to half of what is left (and counted).
    max_question_tokens = max(1, (max_length - tokenizer.num_special_tokens_to_add(pair=True) - doc_stride) // 2)
    questions = [question.lstrip() for question in batch["question"]]
    encoded = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    for index, offsets in enumerate(encoded["offset_mapping"]):
        if len(offsets) > max_question_tokens:
            questions[index] = questions[index][: offsets[max_question_tokens - 1][1]]
            stats["question_truncated"] = stats.get("question_truncated", 0) + 1
    features = tokenizer(
        questions,
        batch["context"],
        truncation="only_second",
        max_length=max_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    sample_map = features.pop("overflow_to_sample_mapping")
    offsets = features["offset_mapping"]
    features["start_positions"], features["end_positions"], features["example_id"] = [], [], []
    for index, sample in enumerate(sample_map):
        sequence_ids = features.sequence_ids(index)
        answer = batch["answers"][sample]
        context_tokens = [i for i, sequence_id in enumerate(sequence_ids) if sequence_id == 1]
        start_token = end_token = 0  # the first token stands for "no answer in this window"
        if answer["answer_start"] and context_tokens:
            start_char = answer["answer_start"][0]
            end_char = start_char + len(answer["text"][0])
            first, last = context_tokens[0], context_tokens[-1]
            if offsets[index][first][0] <= start_char and offsets[index][last][1] >= end_char:
                start_token = next(i for i in context_tokens if offsets[index][i][1] > start_char)
                end_token = max(i for i in context_tokens if offsets[index][i][0] < end_char)
            else:
                stats["answer_outside_window"] += 1
        features["start_positions"].append(start_token)
        features["end_positions"].append(end_token)
        features["example_id"].append(str(batch["id"][sample]))
        if keep_offsets:
            offsets[index] = [offset if sequence_ids[i] == 1 else None for i, offset in enumerate(offsets[index])]
    if keep_offsets:
        # Scoring maps predicted token spans back to context characters and compares them with the gold texts.
        features["context"] = [batch["context"][sample] for sample in sample_map]
        features["answers"] = [batch["answers"][sample] for sample in sample_map]
    else:
        # Training windows keep only their example's id, so sampling can count source examples, not windows.
        features.pop("offset_mapping")
    return features


def _tokenize_tagging(batch, tokenizer, max_length, spec, **_):
    features = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True, max_length=max_length)
    labels = []
    for index, tags in enumerate(batch["tags"]):
        previous, row = None, []
        for word in features.word_ids(index):
            # Only a word's first piece carries its tag; the rest are ignored in the loss (-100).
            row.append(tags[word] if word is not None and word != previous else -100)
            previous = word
        labels.append(row)
    features["labels"] = labels
    return features


def _tokenize_summarization(batch, tokenizer, max_length, spec, max_target_length, **_):
    features = tokenizer(batch["source"], truncation=True, max_length=max_length)
    features["labels"] = tokenizer(text_target=batch["target"], truncation=True, max_length=max_target_length)[
        "input_ids"
    ]
    return features


TOKENIZERS = {
    "classification": _tokenize_classification,
    "pair_classification": _tokenize_classification,
    "regression": _tokenize_classification,
    "multiple_choice": _tokenize_multiple_choice,
    "span_mrc": _tokenize_span,
    "tagging": _tokenize_tagging,
    "summarization": _tokenize_summarization,
}


def _cap(dataset: datasets.Dataset, limit: int | None, seed: int) -> datasets.Dataset:
    if limit is None or len(dataset) <= limit:
        return dataset
    # A seeded shuffle, not the head of the file: sources are often sorted by label or topic.
    return dataset.shuffle(seed=seed).select(range(limit))


def prepare_task(
    spec: TaskSpec,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int = 128,
    doc_stride: int = 64,
    splits: Sequence[str] = ("train", "validation"),
    max_examples: int | dict[str, int] | None = None,
    max_target_length: int = DEFAULT_MAX_TARGET_LENGTH,
    seed: int = 0,
    cache_dir: str | None = None,
    raw: datasets.DatasetDict | None = None,
    num_proc: int | None = None,
) -> datasets.DatasetDict:
    """Loads, canonicalizes and tokenizes one task.

    Args:
        spec (`TaskSpec`): the task.
        tokenizer (`PreTrainedTokenizerBase`): a fast tokenizer (span MRC needs offset mappings).
        max_length (`int`, *optional*, defaults to 128): token cap, lowered further by the spec's `max_length`.
        doc_stride (`int`, *optional*, defaults to 64): overlap between windows of long MRC contexts.
        splits (`Sequence[str]`, *optional*): split roles to prepare.
        max_examples (`int` or `dict[str, int]`, *optional*): cap on source examples, for all splits or per split.
        max_target_length (`int`, *optional*, defaults to 64): token cap of summarization targets.
        seed (`int`, *optional*, defaults to 0): seed of the shuffle that picks capped examples.
        raw (`datasets.DatasetDict`, *optional*): source rows already loaded (skips `load_raw`).
        num_proc (`int`, *optional*): processes for the canonicalizing and tokenizing `map`s.

    Returns:
        `datasets.DatasetDict` of tokenized features. Span MRC windows carry their question's `example_id` (so a
        sampler can count source examples); splits other than `train` also keep `offset_mapping`, `context` and
        `answers` (per window) for SQuAD scoring.
    """
    if not tokenizer.is_fast:
        raise ValueError(f"task {spec.name!r}: preprocessing needs a fast tokenizer (offsets, word ids)")
    if spec.max_length is not None:
        max_length = min(max_length, spec.max_length)
    check_window(spec, max_length, doc_stride, tokenizer.num_special_tokens_to_add(pair=True))
    raw = raw if raw is not None else load_raw(spec, splits, cache_dir=cache_dir)
    missing = [split for split in splits if split not in raw]
    if "train" in splits and "train" in missing:
        raise _error(spec, "source.splits", "has no train split")
    canonical = canonicalize(spec, raw, num_proc=num_proc)
    check_not_empty(spec, canonical)
    tokenize = TOKENIZERS[spec.family]
    prepared = {}
    for split, dataset in canonical.items():
        limit = max_examples.get(split) if isinstance(max_examples, dict) else max_examples
        dataset = _cap(dataset, limit, seed)
        stats = {"answer_outside_window": 0}
        prepared[split] = dataset.map(
            tokenize,
            batched=True,
            remove_columns=dataset.column_names,
            fn_kwargs={
                "tokenizer": tokenizer,
                "max_length": max_length,
                "spec": spec,
                "doc_stride": doc_stride,
                "keep_offsets": split != "train",
                "max_target_length": max_target_length,
                "stats": stats,
                "source_digest": _SOURCE_DIGEST,
            },
            # Worker processes count into copies of `stats`, so with num_proc > 1 the warnings below see zeros.
            num_proc=num_proc,
            desc=f"{spec.name}: tokenize ({split})",
        )
        if stats["answer_outside_window"]:
            logger.info(
                "task %s (%s): %d windows do not contain their answer and point at the first token",
                spec.name,
                split,
                stats["answer_outside_window"],
            )
        if stats.get("question_truncated"):
            logger.warning(
                "task %s (%s): %d questions were longer than half a window (max_length %d, doc_stride %d) and cut",
                spec.name,
                split,
                stats["question_truncated"],
                max_length,
                doc_stride,
            )
    return datasets.DatasetDict(prepared)
