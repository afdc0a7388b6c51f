"""Fuzzing: randomly corrupted task specs and JSONL files fail with a `ValueError` naming the task or the file.

Spec loading and `prepare_task` may refuse a corrupted task, but only with a `ValueError` whose message names the
task (`task 'fuzz'`) or one of its files: never a `KeyError`, `TypeError`, `StopIteration` or `datasets` error from
deep inside a library. The corruptions are drawn from a fixed seed, so a failure is reproducible by its case id.
"""

import copy
import json
import random
from pathlib import Path

import pytest
import yaml

from muppet_hf.tasks import prepare_task
from muppet_hf.tasks.spec import load_task_spec
from muppet_hf.testing_utils import tiny_tokenizer


TINY = Path(__file__).resolve().parent.parent / "training" / "data" / "tiny"
SEED = 12
SPEC_CASES = 240
FILE_CASES = 120
BASES = ("tiny_sentiment", "tiny_choice", "tiny_qa")
# Values of the wrong type (or the right type with odd content) that a hand-edited YAML or JSONL file may hold.
ODD_VALUES = (None, 0, -3, 2.5, True, "", "x", "ünïcødé ☃ 𝔘", "a\u0000b", [], [1, "a"], {}, {"text": 1}, ["positive"])


def read_base(name: str) -> tuple[dict, dict[str, list[dict]]]:
    spec = yaml.safe_load((TINY / f"{name}.yaml").read_text())
    rows = {
        role: [json.loads(line) for line in (TINY / f"{name}_{role}.jsonl").read_text().splitlines()[:6]]
        for role in ("train", "validation")
    }
    return spec, rows


def corrupt_spec(rng: random.Random, spec: dict) -> dict:
    spec = copy.deepcopy(spec)
    for _ in range(rng.randint(1, 2)):
        kind = rng.choice(["drop", "retype", "source", "columns", "labels", "extra"])
        if kind == "drop":
            spec.pop(rng.choice(sorted(spec)), None)
        elif kind == "retype":
            spec[rng.choice(sorted(spec))] = rng.choice(ODD_VALUES)
        elif kind == "source":
            source = spec["source"] if isinstance(spec.get("source"), dict) else {}
            key = rng.choice(["files", "format", "splits", "hub", "builder"])
            source[key] = rng.choice([*ODD_VALUES, {"train": 3}, {"train": "missing.jsonl"}, {"dev": "a.jsonl"}])
            spec["source"] = source
        elif kind == "columns":
            columns = spec["columns"] if isinstance(spec.get("columns"), dict) else {}
            columns[rng.choice(["text", "label", "choices", "answers", "context", "bogus"])] = rng.choice(ODD_VALUES)
            spec["columns"] = columns
        elif kind == "labels":
            spec["label_names"] = rng.choice([["a", "a"], ["a"], [1, 2], "ab", None, ["negative", "positive", 3]])
            if rng.random() < 0.5:
                spec["label_map"] = rng.choice([{"x": 5}, {"negative": "one"}, {"positive": None}, [], "m"])
        else:
            spec[rng.choice(["include_not", "labels", "num_labels", "max_length", "hook"])] = rng.choice(ODD_VALUES)
    return spec


def corrupt_lines(rng: random.Random, rows: list[dict]) -> bytes:
    rows = copy.deepcopy(rows)
    kind = rng.choice(["empty", "blank", "truncate", "drop_key", "retype", "unicode", "not_object", "bad_bytes"])
    if kind == "empty":
        return b""
    if kind == "blank":
        return b"\n \n"
    index = rng.randrange(len(rows))
    if kind == "drop_key":
        rows[index].pop(rng.choice(sorted(rows[index])))
    elif kind == "retype":
        rows[index][rng.choice(sorted(rows[index]))] = rng.choice(ODD_VALUES)
    elif kind == "unicode":
        key = rng.choice(sorted(rows[index]))
        rows[index][key] = rng.choice(["ünïcødé ☃ 𝔘", "\u202e\u200b", "𝔘" * 40])
    lines = [json.dumps(row, ensure_ascii=rng.random() < 0.5) for row in rows]
    if kind == "truncate":
        lines[index] = lines[index][: rng.randrange(1, len(lines[index]))]
    elif kind == "not_object":
        lines[index] = rng.choice(["[1, 2]", "3", '"text"', "null"])
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if kind == "bad_bytes":
        data = data.replace(b"\n", b"\xff\xfe\n", 1)
    return data


def write_case(folder: Path, spec: dict, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True)
    for role, data in files.items():
        (folder / f"fuzz_{role}.jsonl").write_bytes(data)
    path = folder / "fuzz.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return path


def assert_named_failure(path: Path, tokenizer, cache_dir: Path) -> bool:
    """Loads and prepares the task; returns whether it failed (with a `ValueError` naming the task or a file)."""
    try:
        spec = load_task_spec(path)
        prepare_task(spec, tokenizer, max_length=96, cache_dir=str(cache_dir))
    except ValueError as err:
        message = str(err)
        assert "'fuzz'" in message or str(path.parent) in message, f"{path}: {message}"
        return True
    return False


def base_case(name: str) -> tuple[dict, dict[str, list[dict]]]:
    spec, rows = read_base(name)
    spec["name"] = "fuzz"
    spec["source"] = {"files": {"train": "fuzz_train.jsonl", "validation": "fuzz_validation.jsonl"}}
    return spec, rows


def encode(rows: list[dict]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode("utf-8")


def test_corrupted_specs_fail_with_a_named_value_error(tmp_path):
    rng = random.Random(SEED)
    tokenizer = tiny_tokenizer()
    failures = 0
    for case in range(SPEC_CASES):
        spec, rows = base_case(rng.choice(BASES))
        files = {role: encode(role_rows) for role, role_rows in rows.items()}
        path = write_case(tmp_path / f"spec-{case}", corrupt_spec(rng, spec), files)
        failures += assert_named_failure(path, tokenizer, tmp_path / "cache")
    # Most corruptions must be caught; the few that leave a valid spec (a dropped `tags`, say) may load.
    assert failures > SPEC_CASES * 0.6


def test_corrupted_jsonl_files_fail_with_a_named_value_error(tmp_path):
    rng = random.Random(SEED + 1)
    tokenizer = tiny_tokenizer()
    failures = 0
    for case in range(FILE_CASES):
        spec, rows = base_case(rng.choice(BASES))
        role = rng.choice(["train", "validation"])
        files = {name: encode(role_rows) for name, role_rows in rows.items()}
        files[role] = corrupt_lines(rng, rows[role])
        path = write_case(tmp_path / f"file-{case}", spec, files)
        failures += assert_named_failure(path, tokenizer, tmp_path / "cache")
    assert failures > FILE_CASES * 0.5


@pytest.mark.parametrize("name", BASES)
def test_the_uncorrupted_bases_prepare(tmp_path, name):
    spec, rows = base_case(name)
    path = write_case(tmp_path / "case", spec, {role: encode(role_rows) for role, role_rows in rows.items()})
    assert not assert_named_failure(path, tiny_tokenizer(), tmp_path / "cache")
