"""The task registry: declarative YAML specs of the paper's datasets, the offline suite and user tasks."""

from .hooks import HOOKS, register_hook
from .preprocessing import canonicalize, load_raw, prepare_task
from .registry import get_task, get_tasks, heads_for, list_tasks
from .spec import FAMILIES, HEAD_TYPE_OF_FAMILY, TaskSource, TaskSpec, load_task_spec


__all__ = [
    "FAMILIES",
    "HEAD_TYPE_OF_FAMILY",
    "HOOKS",
    "TaskSource",
    "TaskSpec",
    "canonicalize",
    "get_task",
    "get_tasks",
    "heads_for",
    "list_tasks",
    "load_raw",
    "load_task_spec",
    "prepare_task",
    "register_hook",
]
