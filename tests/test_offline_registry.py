"""One registry: every offline task spec against the builder of the offline suite and the data it built."""

import json

import datasets
import pytest

from muppet_hf.data import DOWNSTREAM_TASKS, OFFLINE_TASKS, offline_cache_dir
from muppet_hf.data.offline.build import task_dir
from muppet_hf.data.offline.task import BUILDER
from muppet_hf.tasks import list_tasks
from muppet_hf.tasks.spec import CANONICAL_COLUMNS


OFFLINE_SPECS = list_tasks(suite="offline")


def test_every_offline_spec_has_a_builder_and_every_builder_a_spec():
    assert sorted(spec.name for spec in OFFLINE_SPECS) == sorted(OFFLINE_TASKS)
    # No spec elsewhere names the offline builder, and every offline spec does.
    assert sorted(spec.name for spec in list_tasks() if spec.source.builder == BUILDER) == sorted(OFFLINE_TASKS)
    assert sorted(DOWNSTREAM_TASKS) == sorted(spec.name for spec in OFFLINE_SPECS if "downstream" in spec.tags)


@pytest.mark.parametrize("spec", OFFLINE_SPECS, ids=lambda spec: spec.name)
def test_builder_writes_the_columns_and_labels_of_the_spec(spec):
    task = OFFLINE_TASKS[spec.name]
    assert task.family == spec.family
    features = task.features()
    assert list(features) == ["id", *CANONICAL_COLUMNS[spec.family]]
    # The spec reads the built columns as they are: each maps to itself.
    assert all(column == source and column in features for column, source in spec.columns.items())
    if spec.label_names:
        assert isinstance(features["label"], datasets.ClassLabel)
        assert features["label"].names == spec.label_names
    elif "label" in features:
        assert features["label"] == datasets.Value("int64")


def test_source_classes_must_be_label_names_of_the_spec():
    task = OFFLINE_TASKS["election_tweets"]
    assert task.label_ids({"HillaryClinton": "clinton", "realDonaldTrump": "trump"}, "toy.tab") == {
        "HillaryClinton": 0,
        "realDonaldTrump": 1,
    }
    with pytest.raises(ValueError, match=r"election_tweets.*toy\.tab.*\['obama'\].*election_tweets\.yaml"):
        task.label_ids({"BarackObama": "obama"}, "toy.tab")


@pytest.mark.slow
@pytest.mark.parametrize("spec", OFFLINE_SPECS, ids=lambda spec: spec.name)
def test_built_task_agrees_with_its_spec(spec):
    """Reads the suite that `muppet-hf data build offline-suite` built in `$MUPPET_HF_CACHE` (CI builds it first)."""
    path = task_dir(offline_cache_dir(), spec.name)
    if not (path / "build_info.json").is_file():
        pytest.skip(f"{spec.name} is not built in {path.parent}: run `muppet-hf data build offline-suite`")
    info = json.loads((path / "build_info.json").read_text(encoding="utf-8"))
    assert (info["task"], info["family"]) == (spec.name, spec.family)
    # The sizes the spec documents (and `muppet-hf tasks list` shows) are the built ones.
    assert info["num_rows"] == spec.size
    built = datasets.load_from_disk(str(path))
    assert sorted(built) == ["test", "train", "validation"]
    for role, split in built.items():
        assert split.num_rows == info["num_rows"][role]
        assert split.column_names == ["id", *CANONICAL_COLUMNS[spec.family]]
        assert split.features == OFFLINE_TASKS[spec.name].features()
        if spec.label_names:
            assert split.features["label"].names == spec.label_names
            assert set(split["label"]) <= set(range(len(spec.label_names)))
        elif spec.family == "multiple_choice":
            assert all(
                0 <= label < len(choices) for label, choices in zip(split["label"], split["choices"], strict=True)
            )
