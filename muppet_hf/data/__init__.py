"""Offline data: the real-data suite built from PyPI and npm packages, and the default offline backbone."""

from .offline import (
    ARCHIVES,
    DOWNSTREAM_TASKS,
    OFFLINE_BACKBONE,
    OFFLINE_TASKS,
    OfflineTask,
    SourceArchive,
    build_offline_suite,
    default_backbone_path,
    load_offline_task,
    offline_cache_dir,
    resolve_model_path,
)


__all__ = [
    "ARCHIVES",
    "DOWNSTREAM_TASKS",
    "OFFLINE_BACKBONE",
    "OFFLINE_TASKS",
    "OfflineTask",
    "SourceArchive",
    "build_offline_suite",
    "default_backbone_path",
    "load_offline_task",
    "offline_cache_dir",
    "resolve_model_path",
]
