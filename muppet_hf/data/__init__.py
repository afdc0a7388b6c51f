"""Offline data: the real-data suite built from PyPI and npm packages, and the default offline backbone."""

from .offline.archives import ARCHIVES, SourceArchive, offline_cache_dir
from .offline.backbone import OFFLINE_BACKBONE, default_backbone_path, resolve_model_path
from .offline.build import build_offline_suite, load_offline_task, unavailable_offline_tasks
from .offline.suite import DOWNSTREAM_TASKS, OFFLINE_TASKS
from .offline.task import OfflineTask


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
    "unavailable_offline_tasks",
]
