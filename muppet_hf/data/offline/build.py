"""Building and loading the offline suite: what `muppet-hf data build offline-suite` runs.

Each task is read by its converter (`suite.OFFLINE_TASKS`) from its extracted archive, deduplicated and split by
content hash (`splits.py`), and saved in the canonical columns of its spec's family:

    offline_suite/v1/<task>/         `DatasetDict.save_to_disk` output, plus `build_info.json` (counts, drops)
"""

import json
import os
from collections import Counter
from pathlib import Path

import datasets
from datasets.utils import tqdm

from .archives import ARCHIVES, atomic_dir, offline_cache_dir, source_dir
from .splits import split_rows
from .suite import OFFLINE_TASKS
from .task import OfflineTask


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
