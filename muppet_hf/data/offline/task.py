"""`OfflineTask`: how one task of the offline suite is built.

What a task *is* (its family, columns, label names and tags) is declared once, in its YAML spec under
`muppet_hf/tasks/specs/offline/`, the project's one task registry. An `OfflineTask` adds only what the spec cannot
say: which archive holds the task's source and which converter reads it. Label names that a converter needs (to turn
a source's class strings into ids) are read from the spec too.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import datasets

from ...tasks.registry import get_task
from ...tasks.spec import CANONICAL_COLUMNS, TaskSpec


# The `source.builder` of every spec this suite builds (see `muppet_hf.tasks.preprocessing.load_raw`).
BUILDER = "offline_suite"

# The Arrow type of each column the suite writes. `label` is a `ClassLabel` when the spec names its classes.
COLUMN_FEATURES = {
    "id": datasets.Value("string"),
    "text": datasets.Value("string"),
    "text_pair": datasets.Value("string"),
    "label": datasets.Value("int64"),
    "context": datasets.Value("string"),
    "choices": datasets.Sequence(datasets.Value("string")),
    "question": datasets.Value("string"),
    "answers": {
        "text": datasets.Sequence(datasets.Value("string")),
        "answer_start": datasets.Sequence(datasets.Value("int64")),
    },
    "source": datasets.Value("string"),
    "target": datasets.Value("string"),
}

Reader = Callable[[Path, "OfflineTask", Counter], tuple[list[dict], list[dict] | None]]


def task_error(task: str, where: str, message: str) -> ValueError:
    return ValueError(f"offline task {task!r}, {where}: {message}")


@dataclass(frozen=True)
class OfflineTask:
    """The builder of one task of the offline suite; family, columns and label names come from its spec.

    Args:
        name (`str`): the task's name in the registry, e.g. `vitaminc`; its spec must have
            `source: {builder: offline_suite}`.
        archive (`str`): key of its `SourceArchive` in `ARCHIVES`.
        read (`Callable`): `(source_dir, task, drops) -> (rows, shipped_test_rows or None)`.
    """

    name: str
    archive: str
    read: Reader

    @property
    def spec(self) -> TaskSpec:
        spec = get_task(self.name)
        if spec.source.builder != BUILDER:
            raise ValueError(
                f"{spec.file}: task {self.name!r}, field `source.builder`: is {spec.source.builder!r}, but the offline "
                f"suite builds this task; set it to {BUILDER!r}"
            )
        return spec

    @property
    def family(self) -> str:
        return self.spec.family

    @property
    def label_names(self) -> list[str] | None:
        """Class names in class-id order, from the spec."""
        return self.spec.label_names

    def label_ids(self, names: dict[str, str], where: str) -> dict[str, int]:
        """Maps a source's raw class values to class ids through the spec's label names.

        Args:
            names (`dict[str, str]`): raw value in the source -> label name in the spec.
            where (`str`): the source file and field, for errors.
        """
        label_names = self.label_names or []
        unknown = sorted(name for name in names.values() if name not in label_names)
        if unknown:
            raise task_error(
                self.name, where, f"{unknown} are not label names of {self.spec.file} (field `label_names`)"
            )
        return {raw: label_names.index(name) for raw, name in names.items()}

    def features(self) -> datasets.Features:
        """The columns the builder writes: `id`, then the canonical columns of the spec's family.

        An offline spec's `columns` must map each column it names to itself: the suite writes canonical columns.
        """
        spec = self.spec
        columns = ("id", *CANONICAL_COLUMNS[spec.family])
        for column, source in spec.columns.items():
            if column not in columns or source != column:
                raise ValueError(
                    f"{spec.file}: task {spec.name!r}, field `columns`: the offline suite writes {list(columns)}; "
                    f"map each to itself (got {column!r}: {source!r})"
                )
        missing = [column for column in columns if column not in COLUMN_FEATURES]
        if missing:
            raise ValueError(
                f"{spec.file}: task {spec.name!r}, field `family`: the offline suite cannot write {spec.family} "
                f"columns {missing}"
            )
        features = {column: COLUMN_FEATURES[column] for column in columns}
        if spec.label_names:
            features["label"] = datasets.ClassLabel(names=spec.label_names)
        return datasets.Features(features)
