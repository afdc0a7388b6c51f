"""`TaskSpec`: one dataset of the multi-task mixture, declared in YAML (schema: `docs/task_schema.md`)."""

import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ..configuration_muppet import NAME_PATTERN


FAMILIES = (
    "classification",
    "pair_classification",
    "regression",
    "multiple_choice",
    "span_mrc",
    "tagging",
    "summarization",
)
HEAD_TYPE_OF_FAMILY = {
    "classification": "classification",
    "pair_classification": "classification",
    "regression": "regression",
    "multiple_choice": "multiple_choice",
    "span_mrc": "span",
    "tagging": "token_classification",
    "summarization": "seq2seq",
}
# Muppet shares one head across all datasets of these families (paper §3.2); every other task gets its own.
SHARED_HEAD_OF_FAMILY = {"multiple_choice": "multiple_choice", "span_mrc": "span", "summarization": "seq2seq"}
CANONICAL_COLUMNS = {
    "classification": ("text", "label"),
    "pair_classification": ("text", "text_pair", "label"),
    "regression": ("text", "label"),
    "multiple_choice": ("context", "choices", "label"),
    "span_mrc": ("context", "question", "answers"),
    "tagging": ("tokens", "tags"),
    "summarization": ("source", "target"),
}
# `id` names an example in predictions; span MRC scoring groups windows by it (made from the row index if absent).
OPTIONAL_COLUMNS = dict.fromkeys(CANONICAL_COLUMNS, ("id",)) | {"regression": ("id", "text_pair")}
METRICS = ("accuracy", "f1", "macro_f1", "mcc", "pearson", "spearman", "squad", "rouge", "seqeval")
SPLIT_ROLES = ("train", "validation", "test")
SUFFIX_FORMATS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}


def _spec_error(file: str | None, name: str | None, field_name: str, message: str) -> ValueError:
    where = f"{file}: " if file else ""
    task = f"task {name!r}, " if name else ""
    return ValueError(f"{where}{task}field `{field_name}`: {message}")


@dataclass
class TaskSource:
    """Where a task's rows come from: exactly one of a Hub dataset, local files or a registered offline builder.

    Args:
        hub (`str`, *optional*): Hub dataset id, e.g. `nyu-mll/glue`.
        config (`str`, *optional*): the dataset's config name, e.g. `mnli`.
        revision (`str`, *optional*): a Hub revision to pin.
        splits (`dict[str, str]`, *optional*): split role (`train`, `validation`, `test`) -> split name or
            expression. Defaults to `{train: train, validation: validation}` for Hub sources and to the keys of
            `files` for local files.
        files (`dict[str, str]`, *optional*): split role -> local file, relative to the YAML file.
        format (`str`, *optional*): `json`, `csv` or `parquet`; defaults from the files' suffix.
        builder (`str`, *optional*): a registered offline builder, e.g. `offline_suite`.
    """

    hub: str | None = None
    config: str | None = None
    revision: str | None = None
    splits: dict[str, str] | None = None
    files: dict[str, str] | None = None
    format: str | None = None
    builder: str | None = None

    @property
    def kind(self) -> str:
        return "hub" if self.hub else "files" if self.files else "builder"

    def describe(self) -> str:
        if self.hub:
            return self.hub + (f" ({self.config})" if self.config else "")
        if self.files:
            return "files: " + ", ".join(sorted(self.files))
        return f"builder: {self.builder}"


@dataclass
class TaskSpec:
    """One task of the multi-task mixture, validated on construction.

    Args:
        name (`str`): `[a-z0-9_]+`, unique in the registry; it becomes a state-dict and logging key.
        family (`str`): one of `FAMILIES`; it fixes the head type and the canonical columns.
        source (`TaskSource`): where the rows come from.
        columns (`dict[str, str | list[str]]`): canonical field -> source column(s) or dotted path.
        head (`str`, *optional*): head name; defaults to the task name, or to the shared head of
            multiple-choice, span MRC and summarization tasks.
        label_names (`list[str]`, *optional*): class names in class-id order.
        num_labels (`int`, *optional*): the head's output size; derived from `label_names` (1 for regression)
            and checked against them when given.
        label_map (`dict`, *optional*): raw label value -> class id; a null id drops the row.
        metrics (`list[str]`): metric names from `METRICS`.
        max_length (`int`, *optional*): per-task cap on tokens.
        hook (`str`, *optional*): name of a row converter in `muppet_hf.tasks.hooks`.
        size (`dict[str, int]`, *optional*): known split sizes, for listings.
        tags (`list[str]`): free labels such as `paper`, `downstream`, `offline`, `canary`.
        description, citation, license (`str`, *optional*): documentation.
        file (`str`, *optional*): the YAML file it was read from; named in every error.
    """

    name: str
    family: str
    source: TaskSource
    columns: dict[str, Any] = field(default_factory=dict)
    head: str | None = None
    label_names: list[str] | None = None
    num_labels: int | None = None
    label_map: dict[str, int | None] | None = None
    metrics: list[str] = field(default_factory=list)
    max_length: int | None = None
    hook: str | None = None
    size: dict[str, int] | None = None
    tags: list[str] = field(default_factory=list)
    description: str | None = None
    citation: str | None = None
    license: str | None = None
    file: str | None = None

    def __post_init__(self):
        def error(field_name: str, message: str) -> ValueError:
            return _spec_error(self.file, self.name if isinstance(self.name, str) else None, field_name, message)

        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise error("name", f"{self.name!r} is invalid: task names match [a-z0-9_]+")
        _check_field_types(self, error)
        if self.family not in FAMILIES:
            raise error("family", f"unknown family {self.family!r}; use one of {FAMILIES}")
        if isinstance(self.source, dict):
            unknown = set(self.source) - {f.name for f in fields(TaskSource)}
            if unknown:
                raise error("source", f"unknown key(s) {sorted(unknown)}")
            self.source = TaskSource(**self.source)
        kinds = [kind for kind in ("hub", "files", "builder") if getattr(self.source, kind)]
        if len(kinds) != 1:
            raise error("source", f"give exactly one of `hub`, `files`, `builder` (got {kinds or 'none'})")
        if self.source.files is not None:
            if not isinstance(self.source.files, dict) or not self.source.files:
                raise error("source.files", "must map split roles to file paths")
            if self.source.format is None:
                suffixes = {Path(path).suffix for path in self.source.files.values()}
                if len(suffixes) != 1 or suffixes.pop() not in SUFFIX_FORMATS:
                    raise error("source.format", "cannot tell the format from the file suffixes; set it")
        if self.source.format is not None and self.source.format not in set(SUFFIX_FORMATS.values()):
            raise error("source.format", f"unknown format {self.source.format!r}")
        roles = set(self.source.splits or {}) | set(self.source.files or {})
        if roles - set(SPLIT_ROLES):
            raise error("source.splits", f"unknown split role(s) {sorted(roles - set(SPLIT_ROLES))}")

        if self.hook is None:
            required = CANONICAL_COLUMNS[self.family]
            missing = [column for column in required if column not in self.columns]
            if missing:
                raise error("columns", f"a {self.family} task must map {list(required)}; missing {missing}")
        allowed = set(CANONICAL_COLUMNS[self.family]) | set(OPTIONAL_COLUMNS[self.family])
        if self.family == "pair_classification":
            allowed.add("text_pair")
        unknown_columns = set(self.columns) - allowed
        if unknown_columns:
            raise error("columns", f"{sorted(unknown_columns)} are not columns of a {self.family} task")

        expected_head = SHARED_HEAD_OF_FAMILY.get(self.family, self.name)
        if self.head is None:
            self.head = expected_head
        elif not NAME_PATTERN.match(self.head):
            raise error("head", f"{self.head!r} is invalid: head names match [a-z0-9_]+")

        if self.family in ("classification", "pair_classification", "tagging"):
            if not self.label_names or len(self.label_names) < 2:
                raise error("label_names", f"a {self.family} task needs at least two label names")
            duplicates = sorted({name for name in self.label_names if self.label_names.count(name) > 1})
            if duplicates:
                raise error("label_names", f"{duplicates} appear more than once; each class needs its own name")
        elif self.family != "regression" and self.label_names is not None:
            raise error("label_names", f"a {self.family} task has no label names")
        derived = 1 if self.family == "regression" else len(self.label_names) if self.label_names else None
        if self.num_labels is not None and self.num_labels != derived:
            raise error("num_labels", f"is {self.num_labels} but the task's labels give {derived}")
        self.num_labels = derived
        if self.label_map is not None:
            num_labels = len(self.label_names) if self.label_names else None
            for raw, class_id in self.label_map.items():
                if class_id is None:
                    continue
                if not isinstance(class_id, int) or isinstance(class_id, bool):
                    raise error("label_map", f"{raw!r} maps to {class_id!r}, which is not a class id")
                if num_labels is not None and not 0 <= class_id < num_labels:
                    raise error("label_map", f"{raw!r} maps to {class_id!r}, outside [0, {num_labels})")
            # YAML reads `0:` as an int key; labels are compared as strings, see `preprocessing._map_labels`.
            self.label_map = {str(raw): class_id for raw, class_id in self.label_map.items()}

        unknown_metrics = set(self.metrics) - set(METRICS)
        if unknown_metrics:
            raise error("metrics", f"unknown metric(s) {sorted(unknown_metrics)}; use {METRICS}")
        if self.hook is not None:
            from .hooks import HOOKS

            if self.hook not in HOOKS:
                raise error("hook", f"no hook named {self.hook!r} in muppet_hf/tasks/hooks.py")
        if self.max_length is not None and (not isinstance(self.max_length, int) or self.max_length < 8):
            raise error("max_length", f"{self.max_length!r} is not a usable token count")

    @property
    def head_type(self) -> str:
        return HEAD_TYPE_OF_FAMILY[self.family]

    @property
    def is_canary(self) -> bool:
        """True for tasks built from BIG-bench, whose canary asks that models trained on them stay unpublished."""
        return "canary" in self.tags or "bigbench" in self.tags

    def head_spec(self) -> dict:
        """The entry this task needs in `MuppetConfig.heads`."""
        spec = {"type": self.head_type}
        if self.head_type in ("classification", "token_classification"):
            spec["num_labels"] = self.num_labels
            spec["label_names"] = list(self.label_names)
        elif self.head_type == "regression":
            spec["num_labels"] = 1
        return spec

    def to_dict(self) -> dict:
        return asdict(self)


# The type of each spec field as YAML gives it, and of its items; `None` is allowed where the field is optional.
_FIELD_TYPES: dict[str, tuple[type | tuple[type, ...], type | tuple[type, ...] | None, bool]] = {
    "family": (str, None, False),
    "source": ((dict, TaskSource), None, False),
    "columns": (dict, (str, list), False),
    "head": (str, None, True),
    "label_names": (list, str, True),
    "num_labels": (int, None, True),
    "label_map": (dict, None, True),
    "metrics": (list, str, False),
    "max_length": (int, None, True),
    "hook": (str, None, True),
    "size": (dict, int, True),
    "tags": (list, str, False),
    "description": (str, None, True),
    "citation": (str, None, True),
    "license": (str, None, True),
}
_SOURCE_TYPES = {f.name: (dict, str) if f.name in ("splits", "files") else (str, None) for f in fields(TaskSource)}


def _type_name(expected: type | tuple[type, ...]) -> str:
    expected = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join("mapping" if t is dict else t.__name__ for t in expected if t is not TaskSource)


def _check_field_types(spec: "TaskSpec", error) -> None:
    """Checks that each field (and each item of a list or mapping field) has the type YAML should give it."""

    def check(field_name: str, value, expected, items, optional: bool):
        if value is None and optional:
            return
        if not isinstance(value, expected) or isinstance(value, bool) and bool not in _as_tuple(expected):
            raise error(field_name, f"must be a {_type_name(expected)}, got {value!r}")
        if items is None or not isinstance(value, list | dict):
            return
        for item in value.values() if isinstance(value, dict) else value:
            if not isinstance(item, items) or isinstance(item, bool):
                raise error(field_name, f"items must be {_type_name(items)}, got {item!r}")

    for field_name, (expected, items, optional) in _FIELD_TYPES.items():
        check(field_name, vars(spec)[field_name], expected, items, optional)
    if isinstance(spec.source, dict):
        for field_name, (expected, items) in _SOURCE_TYPES.items():
            check(f"source.{field_name}", spec.source.get(field_name), expected, items, True)
    for column, mapping in spec.columns.items():
        if isinstance(mapping, list) and not all(isinstance(path, str) for path in mapping):
            raise error(f"columns.{column}", f"must be a column name or a list of them, got {mapping!r}")


def _as_tuple(expected: type | tuple[type, ...]) -> tuple[type, ...]:
    return expected if isinstance(expected, tuple) else (expected,)


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    if path in seen:
        raise ValueError(f"{path}: `include` loops back to itself through {[str(p) for p in seen]}")
    try:
        with path.open(encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a task spec must be a YAML mapping")
    include = data.pop("include", None)
    if include is None:
        return data
    base = _read_yaml((path.parent / include).resolve(), (*seen, path))
    # Keys of the including file win; `source` and `columns` merge one level deep so a variant can change a
    # single split or column.
    for key in ("source", "columns"):
        if isinstance(base.get(key), dict) and isinstance(data.get(key), dict):
            data[key] = {**base[key], **data[key]}
    return {**base, **data}


def load_task_spec(path: str | Path) -> TaskSpec:
    """Reads and validates one task YAML file; local `source.files` become absolute paths."""
    path = Path(path).resolve()
    data = _read_yaml(path)
    known = {f.name for f in fields(TaskSpec)} - {"file"}
    unknown = set(data) - known
    name = data.get("name")
    if unknown:
        raise _spec_error(str(path), name, sorted(unknown)[0], f"unknown field(s) {sorted(unknown)}")
    for required in ("name", "family", "source"):
        if required not in data:
            raise _spec_error(str(path), name, required, "is required")
    source = data["source"]
    if isinstance(source, dict) and isinstance(source.get("files"), dict):
        data["source"] = {
            **source,
            "files": {role: str((path.parent / file).resolve()) for role, file in source["files"].items()},
        }
    return TaskSpec(**data, file=str(path))


def is_task_file(path: Path) -> bool:
    return path.suffix in (".yaml", ".yml") and not path.name.startswith("_")


def looks_like_path(name_or_path: str) -> bool:
    return bool(re.search(r"[/\\]|\.ya?ml$", name_or_path))
