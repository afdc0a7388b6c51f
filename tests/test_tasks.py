import textwrap

import datasets
import pytest

from muppet_hf import MuppetConfig
from muppet_hf.tasks import get_task, get_tasks, heads_for, list_tasks, load_task_spec, prepare_task
from muppet_hf.tasks.spec import FAMILIES
from muppet_hf.testing_utils import tiny_config, tiny_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


def write_spec(tmp_path, body: str, name: str = "task.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def raw(rows: list[dict], split: str = "train") -> datasets.DatasetDict:
    return datasets.DatasetDict({split: datasets.Dataset.from_list(rows)})


def test_every_registered_spec_loads_and_builds_its_head():
    specs = list_tasks()
    assert specs, "the registry is empty"
    names = [spec.name for spec in specs]
    assert len(names) == len(set(names))
    for spec in specs:
        assert spec.family in FAMILIES
        assert spec.file.endswith(".yaml")
    encoder_only = [spec for spec in specs if spec.head_type != "seq2seq"]
    MuppetConfig(base_model_config=tiny_config("bert"), heads=heads_for(get_tasks([s.name for s in encoder_only])))


def test_paper_suite_has_the_papers_datasets():
    paper = list_tasks(suite="paper")
    # Appendix A.1: 47 datasets, GLUE and SuperGLUE counted task by task.
    assert len(paper) == 47
    assert {"cola", "mnli", "squad", "hellaswag", "trivia_qa", "cnn_dailymail"} <= {spec.name for spec in paper}
    families = {spec.family for spec in paper}
    assert {"multiple_choice", "span_mrc", "summarization"} <= families
    assert all(spec.source.hub for spec in paper)


def test_shared_heads_by_family(tmp_path):
    mc = write_spec(
        tmp_path,
        """
        name: my_mc
        family: multiple_choice
        source: {hub: some/dataset}
        columns: {context: goal, choices: [sol1, sol2], label: label}
    """,
        "mc.yaml",
    )
    span = write_spec(
        tmp_path,
        """
        name: my_qa
        family: span_mrc
        source: {hub: some/qa}
        columns: {context: context, question: question, answers: answers}
    """,
        "qa.yaml",
    )
    assert load_task_spec(mc).head == "multiple_choice"
    assert load_task_spec(span).head == "span"
    assert heads_for([load_task_spec(mc), load_task_spec(span)]) == {
        "multiple_choice": {"type": "multiple_choice"},
        "span": {"type": "span"},
    }


def test_include_merges_source_and_columns(tmp_path):
    write_spec(
        tmp_path,
        """
        family: pair_classification
        source: {hub: nyu-mll/glue, splits: {train: train, validation: validation}}
        columns: {text: sentence1, text_pair: sentence2, label: label}
        metrics: [accuracy]
    """,
        "_glue.yaml",
    )
    path = write_spec(
        tmp_path,
        """
        include: _glue.yaml
        name: mnli
        source: {config: mnli, splits: {train: train, validation: validation_matched}}
        columns: {text: premise, text_pair: hypothesis}
        label_names: [entailment, neutral, contradiction]
    """,
        "mnli.yaml",
    )
    spec = load_task_spec(path)
    assert spec.source.hub == "nyu-mll/glue" and spec.source.config == "mnli"
    assert spec.source.splits["validation"] == "validation_matched"
    assert spec.columns == {"text": "premise", "text_pair": "hypothesis", "label": "label"}
    assert spec.head_spec() == {
        "type": "classification",
        "num_labels": 3,
        "label_names": ["entailment", "neutral", "contradiction"],
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            "name: Bad-Name\nfamily: classification\nsource: {hub: x}\ncolumns: {text: a, label: b}\nlabel_names: [n, p]",
            "`name`",
        ),
        ("name: t\nfamily: ranking\nsource: {hub: x}", "`family`"),
        ("name: t\nfamily: classification\nsource: {hub: x}\ncolumns: {text: a}\nlabel_names: [n, p]", "`columns`"),
        (
            "name: t\nfamily: classification\nsource: {hub: x, files: {train: a.json}}\ncolumns: {text: a, label: b}\nlabel_names: [n, p]",
            "`source`",
        ),
        (
            "name: t\nfamily: classification\nsource: {hub: x}\ncolumns: {text: a, label: b}\nlabel_names: [n, p]\nnum_labels: 3",
            "`num_labels`",
        ),
        (
            "name: t\nfamily: classification\nsource: {hub: x}\ncolumns: {text: a, label: b}\nlabel_names: [n, p]\nlabel_map: {x: 2}",
            "`label_map`",
        ),
        (
            "name: t\nfamily: classification\nsource: {hub: x}\ncolumns: {text: a, label: b}\nlabel_names: [n, p]\nmetrics: [bleu]",
            "`metrics`",
        ),
        (
            "name: t\nfamily: classification\nsource: {hub: x}\ncolumns: {text: a, label: b}\nlabel_names: [n, p]\nhook: nope",
            "`hook`",
        ),
        (
            "name: t\nfamily: classification\nsource: {hub: x}\ncolumns: {text: a, label: b}\nlabel_names: [n, p]\ncolour: red",
            "`colour`",
        ),
    ],
)
def test_bad_specs_name_the_file_and_field(tmp_path, body, field):
    path = write_spec(tmp_path, body)
    with pytest.raises(ValueError) as error:
        load_task_spec(path)
    assert str(path) in str(error.value) and field in str(error.value)


def test_heads_that_disagree_are_rejected(tmp_path):
    a = write_spec(
        tmp_path,
        "name: a\nfamily: classification\nhead: shared\nsource: {hub: x}\ncolumns: {text: t, label: l}\nlabel_names: [n, p]",
        "a.yaml",
    )
    b = write_spec(
        tmp_path,
        "name: b\nfamily: classification\nhead: shared\nsource: {hub: x}\ncolumns: {text: t, label: l}\nlabel_names: [x, y, z]",
        "b.yaml",
    )
    with pytest.raises(ValueError, match="head 'shared'"):
        get_tasks([str(a), str(b)])


def test_unknown_task_name():
    with pytest.raises(ValueError, match="unknown task 'no_such_task'"):
        get_task("no_such_task")


def test_seq2seq_task_on_encoder_only_backbone(tmp_path):
    path = write_spec(
        tmp_path, "name: xs\nfamily: summarization\nsource: {hub: x}\ncolumns: {source: document, target: summary}"
    )
    with pytest.raises(ValueError, match="encoder-decoder backbone"):
        MuppetConfig(base_model_config=tiny_config("bert"), heads=heads_for([load_task_spec(path)]))


def test_pair_classification_with_string_labels(tmp_path, tokenizer):
    spec = load_task_spec(
        write_spec(
            tmp_path,
            """
        name: nli
        family: pair_classification
        source: {hub: x}
        columns: {text: premise, text_pair: hypothesis, label: gold}
        label_names: [entailment, neutral, contradiction]
        label_map: {"-": null}
    """,
        )
    )
    rows = [
        {"premise": "a cat sat", "hypothesis": "an animal sat", "gold": "entailment"},
        {"premise": "a dog ran", "hypothesis": "nobody ran", "gold": "contradiction"},
        {"premise": "x", "hypothesis": "y", "gold": "-"},
    ]
    prepared = prepare_task(spec, tokenizer, max_length=32, splits=("train",), raw=raw(rows))
    train = prepared["train"]
    assert len(train) == 2 and train["labels"] == [0, 2]
    assert set(train.column_names) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    assert 1 in train[0]["token_type_ids"]


def test_label_outside_num_labels(tmp_path, tokenizer):
    spec = load_task_spec(
        write_spec(
            tmp_path,
            "name: c\nfamily: classification\nsource: {hub: x}\ncolumns: {text: t, label: l}\nlabel_names: [n, p]",
        )
    )
    with pytest.raises(ValueError, match=r"task 'c', field `label`: label 2 in the train split is outside \[0, 2\)"):
        prepare_task(spec, tokenizer, splits=("train",), raw=raw([{"t": "fine", "l": 2}]))


def test_missing_column(tmp_path, tokenizer):
    spec = load_task_spec(
        write_spec(
            tmp_path,
            "name: c\nfamily: classification\nsource: {hub: x}\ncolumns: {text: sentence, label: l}\nlabel_names: [n, p]",
        )
    )
    with pytest.raises(ValueError, match=r"field `columns.text`: column 'sentence' is not in the train split"):
        prepare_task(spec, tokenizer, splits=("train",), raw=raw([{"t": "fine", "l": 1}]))


def test_multiple_choice_nested_choices(tmp_path, tokenizer):
    spec = load_task_spec(
        write_spec(
            tmp_path,
            """
        name: csqa
        family: multiple_choice
        source: {hub: x}
        columns: {context: question, choices: choices.text, label: answerKey}
        label_map: {A: 0, B: 1, C: 2}
    """,
        )
    )
    rows = [
        {"question": "where do fish live", "choices": {"text": ["sea", "sky", "desk"]}, "answerKey": "A"},
        {"question": "what is hot", "choices": {"text": ["ice", "fire", "snow"]}, "answerKey": "B"},
    ]
    train = prepare_task(spec, tokenizer, max_length=32, splits=("train",), raw=raw(rows))["train"]
    assert train["labels"] == [0, 1]
    assert [len(choices) for choices in train["input_ids"]] == [3, 3]
    decoded = tokenizer.decode(train[0]["input_ids"][1], skip_special_tokens=True).replace(" ", "")
    assert decoded == "wheredofishlivesky"


def test_multiple_choice_label_beyond_choices(tmp_path, tokenizer):
    spec = load_task_spec(
        write_spec(
            tmp_path,
            "name: m\nfamily: multiple_choice\nsource: {hub: x}\ncolumns: {context: q, choices: [a, b], label: l}",
        )
    )
    with pytest.raises(ValueError, match="outside"):
        prepare_task(spec, tokenizer, splits=("train",), raw=raw([{"q": "q", "a": "x", "b": "y", "l": 2}]))


def squad_rows():
    context = "the eiffel tower is in paris. it was built in 1889 by gustave eiffel for the world fair."
    return [
        {
            "id": "q1",
            "context": context,
            "question": "where is the tower?",
            "answers": {"text": ["paris"], "answer_start": [context.index("paris")]},
        },
        {
            "id": "q2",
            "context": context,
            "question": "who built it?",
            "answers": {"text": ["gustave eiffel"], "answer_start": [context.index("gustave")]},
        },
    ]


def test_span_windows_and_positions(tmp_path, tokenizer):
    spec = load_task_spec(
        write_spec(
            tmp_path,
            "name: qa\nfamily: span_mrc\nsource: {hub: x}\ncolumns: {context: context, question: question, answers: answers, id: id}",
        )
    )
    data = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(squad_rows()), "validation": datasets.Dataset.from_list(squad_rows())}
    )
    prepared = prepare_task(spec, tokenizer, max_length=48, doc_stride=16, raw=data)
    train, validation = prepared["train"], prepared["validation"]
    assert len(train) > 2, "long contexts must be split into several windows"
    assert "offset_mapping" not in train.column_names and "offset_mapping" in validation.column_names
    found = 0
    for row in train:
        if row["start_positions"] == 0:
            continue
        span = tokenizer.decode(row["input_ids"][row["start_positions"] : row["end_positions"] + 1]).replace(" ", "")
        assert span in ("paris", "gustaveeiffel")
        found += 1
    assert found >= 2
    assert set(validation["example_id"]) == {"q1", "q2"}


def test_span_answer_not_in_context(tmp_path, tokenizer):
    spec = load_task_spec(
        write_spec(
            tmp_path,
            "name: qa\nfamily: span_mrc\nsource: {hub: x}\ncolumns: {context: context, question: question, answers: answers}",
        )
    )
    rows = squad_rows()
    rows[0]["answers"] = {"text": ["london"], "answer_start": [5]}
    with pytest.raises(ValueError, match="answer 'london' is not found in its context"):
        prepare_task(spec, tokenizer, raw=raw(rows))


def test_tagging_labels_first_word_piece(tmp_path, tokenizer):
    spec = load_task_spec(
        write_spec(
            tmp_path,
            "name: pos\nfamily: tagging\nsource: {hub: x}\ncolumns: {tokens: words, tags: pos}\nlabel_names: [NOUN, VERB, DET]",
        )
    )
    train = prepare_task(
        spec, tokenizer, raw=raw([{"words": ["the", "cat", "sat"], "pos": [2, 0, 1]}]), splits=("train",)
    )["train"]
    labels = train[0]["labels"]
    # [CLS] t ##h ##e c ##a ##t s ##a ##t [SEP]
    assert labels == [-100, 2, -100, -100, 0, -100, -100, 1, -100, -100, -100]


def test_tagging_tags_given_as_names_map_through_label_names(tmp_path, tokenizer):
    spec = load_task_spec(
        write_spec(
            tmp_path,
            "name: pos\nfamily: tagging\nsource: {hub: x}\ncolumns: {tokens: words, tags: pos}\nlabel_names: [NOUN, VERB, DET]",
        )
    )
    rows = [{"words": ["the", "cat", "sat"], "pos": ["DET", "NOUN", "VERB"]}]
    train = prepare_task(spec, tokenizer, raw=raw(rows), splits=("train",))["train"]
    assert train[0]["labels"] == [-100, 2, -100, -100, 0, -100, -100, 1, -100, -100, -100]
    rows = [{"words": ["the", "cat"], "pos": ["DET", "ADJ"]}]
    with pytest.raises(ValueError, match="pos.*label 'ADJ' in the train split"):
        prepare_task(spec, tokenizer, raw=raw(rows), splits=("train",))


def test_summarization_targets(tmp_path, tokenizer):
    spec = load_task_spec(
        write_spec(
            tmp_path, "name: xs\nfamily: summarization\nsource: {hub: x}\ncolumns: {source: document, target: summary}"
        )
    )
    train = prepare_task(
        spec,
        tokenizer,
        raw=raw([{"document": "a long story about cats", "summary": "cats"}]),
        splits=("train",),
        max_target_length=8,
    )["train"]
    assert tokenizer.decode(train[0]["labels"], skip_special_tokens=True).replace(" ", "") == "cats"


def test_files_source_and_caps(tmp_path, tokenizer):
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(f'{{"sentence": "example {i}", "label": {i % 2}}}' for i in range(20)))
    spec = load_task_spec(
        write_spec(
            tmp_path,
            """
        name: local
        family: classification
        source: {files: {train: data.jsonl}}
        columns: {text: sentence, label: label}
        label_names: [even, odd]
    """,
        )
    )
    assert spec.source.files["train"] == str(data)
    prepared = prepare_task(spec, tokenizer, splits=("train",), max_examples=5)
    assert len(prepared["train"]) == 5
    again = prepare_task(spec, tokenizer, splits=("train",), max_examples=5)
    assert again["train"]["input_ids"] == prepared["train"]["input_ids"]
