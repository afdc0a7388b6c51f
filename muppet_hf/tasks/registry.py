"""The task registry: every YAML spec shipped in `muppet_hf/tasks/specs/`, looked up by name."""

from functools import cache
from pathlib import Path

from .spec import TaskSpec, is_task_file, load_task_spec, looks_like_path


SPECS_DIR = Path(__file__).parent / "specs"


@cache
def _registry() -> dict[str, TaskSpec]:
    registry: dict[str, TaskSpec] = {}
    for path in sorted(SPECS_DIR.rglob("*.y*ml")):
        if not is_task_file(path):
            continue
        spec = load_task_spec(path)
        if spec.name in registry:
            raise ValueError(f"{path}: task name {spec.name!r} is already defined in {registry[spec.name].file}")
        registry[spec.name] = spec
    return registry


def list_tasks(suite: str | None = None, tag: str | None = None) -> list[TaskSpec]:
    """All registered task specs, optionally those of one suite folder (`paper`, `downstream`, `offline`) or tag."""
    specs = list(_registry().values())
    if suite is not None:
        specs = [spec for spec in specs if Path(spec.file).parent.name == suite]
    if tag is not None:
        specs = [spec for spec in specs if tag in spec.tags]
    return specs


def get_task(name_or_path: str | Path) -> TaskSpec:
    """A registered task by name, or any task YAML file by path (how users add tasks without code)."""
    name_or_path = str(name_or_path)
    if looks_like_path(name_or_path):
        return load_task_spec(name_or_path)
    registry = _registry()
    if name_or_path not in registry:
        raise ValueError(
            f"unknown task {name_or_path!r}: not in the registry ({len(registry)} tasks, see `muppet-hf tasks list`) "
            "and not a path to a YAML file"
        )
    return registry[name_or_path]


def get_tasks(names_or_paths: list[str]) -> list[TaskSpec]:
    """Several tasks, checking that names are unique and that tasks sharing a head agree on its shape."""
    specs = [get_task(name) for name in names_or_paths]
    seen: dict[str, TaskSpec] = {}
    heads: dict[str, TaskSpec] = {}
    for spec in specs:
        if spec.name in seen:
            raise ValueError(f"task {spec.name!r} is listed twice ({seen[spec.name].file} and {spec.file})")
        seen[spec.name] = spec
        other = heads.setdefault(spec.head, spec)
        if other.head_spec() != spec.head_spec():
            raise ValueError(
                f"{spec.file}: task {spec.name!r}, field `head`: head {spec.head!r} is {spec.head_spec()} here but "
                f"{other.head_spec()} for task {other.name!r} ({other.file})"
            )
    return specs


def heads_for(specs: list[TaskSpec]) -> dict[str, dict]:
    """The `MuppetConfig.heads` entries a list of tasks needs."""
    return {spec.head: spec.head_spec() for spec in specs}
