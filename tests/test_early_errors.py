"""Bad data and recipes fail before any training step, naming the task, file, field and line or row (issue 12)."""

import importlib
import json
import re
from pathlib import Path

import pytest
import yaml

from muppet_hf.tasks import load_raw, prepare_task
from muppet_hf.tasks.spec import load_task_spec
from muppet_hf.testing_utils import tiny_tokenizer
from muppet_hf.training_args import MuppetTrainingArguments


REPO = Path(__file__).resolve().parent.parent
RECIPE = REPO / "training" / "recipes" / "tiny.yaml"
SENTIMENT_ROWS = [{"text": "good film", "label": "positive"}, {"text": "bad film", "label": "negative"}] * 3
QA_ROW = {"context": "ivy lives in rome.", "question": "where?", "answers": {"text": ["rome"], "answer_start": [13]}}


def load_script(name: str):
    return importlib.import_module(f"muppet_hf.scripts.{name}")


def jsonl(rows: list) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def write_task(folder: Path, train: str | None, validation: str | None = None, **spec) -> Path:
    """A sentiment task `bad_task` in `folder` whose files hold the given text (`None`: the file is not written)."""
    data = {
        "name": "bad_task",
        "family": "classification",
        "source": {"files": {"train": "bad_task_train.jsonl", "validation": "bad_task_validation.jsonl"}},
        "columns": {"text": "text", "label": "label"},
        "label_names": ["negative", "positive"],
        **spec,
    }
    for role, text in (
        ("train", train),
        ("validation", validation if validation is not None else jsonl(SENTIMENT_ROWS)),
    ):
        if text is not None:
            (folder / f"bad_task_{role}.jsonl").write_text(text, encoding="utf-8")
    path = folder / "bad_task.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


BAD_DATA = {
    "missing file": ({"train": None}, r"source.files.train`: the train file .*bad_task_train.jsonl does not exist"),
    "malformed line": (
        {"train": jsonl(SENTIMENT_ROWS[:2]) + '{"text": "cut off", "label": \n' + jsonl(SENTIMENT_ROWS)},
        r"bad_task_train.jsonl: task 'bad_task', field `source.files.train`: line 3 is not valid JSON",
    ),
    "empty file": ({"train": ""}, r"source.files.train`: the train file .*bad_task_train.jsonl is empty \(0 bytes\)"),
    "blank file": ({"train": "\n\n"}, r"source.files.train`: the train file .*bad_task_train.jsonl holds no rows"),
    "validation empty after filtering": (
        {"validation": jsonl([{"text": "no label", "label": None}] * 3)},
        r"task 'bad_task', field `source.splits.validation`: the validation split .* has no usable rows",
    ),
    "int and string labels": (
        {"train": jsonl([{"text": "a", "label": 0}, {"text": "b", "label": 1}])},
        r"bad_task_validation.jsonl: task 'bad_task', field `columns.label \(label\)`: line 1 has a label name",
    ),
    "span answers of two lengths": (
        {
            "family": "span_mrc",
            "columns": {"context": "context", "question": "question", "answers": "answers"},
            "label_names": None,
            "train": jsonl([QA_ROW, {**QA_ROW, "answers": {"text": ["rome", "ivy"], "answer_start": [13]}}]),
            "validation": jsonl([QA_ROW]),
        },
        r"task 'bad_task', field `columns.answers`: row 1 of the train split: 2 answer texts but 1 `answer_start`",
    ),
    "text that is a number": (
        {
            "train": jsonl([{"text": 7, "label": "positive"}] * 2),
            "validation": jsonl([{"text": 8, "label": "negative"}]),
        },
        r"task 'bad_task', field `columns.text`: row 0 of the train split: expected a text, got 7",
    ),
}


@pytest.mark.parametrize("changes, match", list(BAD_DATA.values()), ids=list(BAD_DATA))
def test_bad_data_is_named_before_tokenizing(tmp_path, changes, match):
    changes = dict(changes)
    train = changes.pop("train", jsonl(SENTIMENT_ROWS))
    validation = changes.pop("validation", None)
    spec = load_task_spec(write_task(tmp_path, train, validation, **changes))
    with pytest.raises(ValueError, match=match):
        prepare_task(spec, tiny_tokenizer(), cache_dir=str(tmp_path / "cache"))


def test_a_missing_file_is_named_by_load_raw_too(tmp_path):
    spec = load_task_spec(write_task(tmp_path, None))
    with pytest.raises(ValueError, match="bad_task.*does not exist"):
        load_raw(spec, cache_dir=str(tmp_path / "cache"))


def test_duplicate_label_names_are_refused(tmp_path):
    path = write_task(tmp_path, jsonl(SENTIMENT_ROWS), label_names=["negative", "positive", "negative"])
    with pytest.raises(ValueError, match=r"bad_task.yaml: task 'bad_task', field `label_names`: \['negative'\]"):
        load_task_spec(path)


def test_negative_learning_rate_is_refused(tmp_path):
    with pytest.raises(ValueError, match="field `learning_rate` must be non-negative"):
        MuppetTrainingArguments(output_dir=str(tmp_path), learning_rate=-1e-5, report_to="none", use_cpu=True)


@pytest.mark.parametrize(
    "line, match",
    [
        ("max_steps: 2.5", r"recipe.yaml: field `max_steps` must be int, got 2.5"),
        ("tasks: training/data/tiny/tiny_qa.yaml", r"recipe.yaml: field `tasks` must be list, got 'training"),
        ("learning_rate: [1]", r"recipe.yaml: field `learning_rate` must be float, got \[1\]"),
    ],
    ids=["non-integer max_steps", "tasks as a string", "learning rate as a list"],
)
def test_recipe_values_of_the_wrong_type_are_named(tmp_path, line, match):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.read_text() + f"\n{line}\n")
    with pytest.raises(TypeError, match=match):
        load_script("prefinetune").parse_args(["--config", str(recipe), "--output_dir", str(tmp_path / "run")])


def test_a_recipe_learning_rate_written_1e_5_still_parses(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.read_text() + "\nlearning_rate: 1e-5\n")  # YAML 1.1 reads this as a string
    _, training_args = load_script("prefinetune").parse_args(["--config", str(recipe), "--output_dir", "x"])
    assert training_args.learning_rate == 1e-5


def test_a_recipe_may_write_null_for_a_field_whose_default_is_none(tmp_path):
    # HfArgumentParser turns `backbone_learning_rate: float | None` into `float` on the field; the check reads the
    # declared annotation, so `null` (the default, one learning rate for all) is accepted and a list still is not.
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.read_text() + "\nbackbone_learning_rate: null\n")
    _, training_args = load_script("prefinetune").parse_args(["--config", str(recipe), "--output_dir", "x"])
    assert training_args.backbone_learning_rate is None
    recipe.write_text(RECIPE.read_text() + "\nbackbone_learning_rate: [1]\n")
    with pytest.raises(TypeError, match=r"field `backbone_learning_rate` must be float or null, got \[1\]"):
        load_script("prefinetune").parse_args(["--config", str(recipe), "--output_dir", "x"])


@pytest.mark.parametrize("kind", ["missing", "not a checkpoint"])
def test_finetune_names_a_model_folder_that_is_missing_or_not_a_checkpoint(tmp_path, kind):
    folder = tmp_path / "model"
    if kind == "not a checkpoint":
        folder.mkdir()
        (folder / "notes.txt").write_text("hi")
    finetune = load_script("finetune")
    args, training_args = finetune.parse_args(
        ["--task", "tiny_sentiment", "--model_name_or_path", str(folder), "--output_dir", str(tmp_path / "out")]
    )
    args.task = str(REPO / "training" / "data" / "tiny" / "tiny_sentiment.yaml")
    match = "does not exist" if kind == "missing" else "has no config.json"
    with pytest.raises(ValueError, match=rf"field `model_name_or_path`: .*{re.escape(str(folder))} .*{match}"):
        finetune.main(args, training_args)
    assert not (tmp_path / "out").exists()
