"""The `muppet-hf` command line: task registry, offline data, mixture plans, export and push."""

import argparse
import json
import sys
from collections.abc import Sequence

import yaml

from .commands import register_export, register_plan, register_push
from .tasks import get_task, list_tasks
from .tasks.spec import TaskSpec


def _size(spec: TaskSpec) -> str:
    if not spec.size:
        return "-"
    return " / ".join(f"{spec.size[role]:,}" for role in ("train", "validation", "test") if role in spec.size)


def _tasks_list(args: argparse.Namespace) -> int:
    specs = list_tasks(suite=args.suite, tag=args.tag)
    if args.json:
        rows = [
            {
                "name": spec.name,
                "family": spec.family,
                "head": spec.head,
                "source": spec.source.describe(),
                "size": spec.size,
                "tags": spec.tags,
            }
            for spec in specs
        ]
        print(json.dumps(rows, indent=2))
        return 0
    header = ("name", "family", "head", "source", "size (train / validation / test)")
    rows = [(spec.name, spec.family, spec.head, spec.source.describe(), _size(spec)) for spec in specs]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * width for width in widths), *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    print(f"\n{len(specs)} tasks")
    return 0


def _tasks_show(args: argparse.Namespace) -> int:
    spec = get_task(args.name)
    data = spec.to_dict()
    data["head_type"] = spec.head_type
    print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip())
    return 0


def _data_build(args: argparse.Namespace) -> int:
    from .data import OFFLINE_TASKS, build_offline_suite, default_backbone_path, offline_cache_dir
    from .data.offline.archives import SourceUnavailableError, add_archive

    for path in args.archive or ():
        print(f"added {path} as {add_archive(path, offline_cache_dir(args.cache_dir))}")
    counts = build_offline_suite(
        cache_dir=args.cache_dir, tasks=args.tasks, force=args.force, skip_unavailable=args.skip_unavailable
    )
    header = ("task", "train", "validation", "test")
    print("  ".join(header))
    for task, splits in counts.items():
        print("  ".join([task, *(f"{splits.get(role, 0):,}" for role in header[1:])]))
    missing = [name for name in (args.tasks or OFFLINE_TASKS) if name not in counts]
    if missing:
        print(f"not built, their source is unavailable (see the warning above): {', '.join(missing)}", file=sys.stderr)
    if args.tasks is None:  # the whole suite: with the default backbone that its recipes name
        try:
            print(f"backbone offline:all-MiniLM-L6-v2: {default_backbone_path(args.cache_dir)}")
        except SourceUnavailableError as err:
            if not args.skip_unavailable:
                raise
            print(f"backbone not fetched: {err}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="muppet-hf", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    tasks = commands.add_parser("tasks", help="the task registry").add_subparsers(dest="action", required=True)
    listing = tasks.add_parser("list", help="list registered tasks")
    listing.add_argument("--suite", help="one suite only: paper, downstream, offline or extra")
    listing.add_argument("--tag", help="tasks with this tag only (e.g. glue, canary)")
    listing.add_argument("--json", action="store_true", help="print a JSON list of objects")
    listing.set_defaults(func=_tasks_list)
    show = tasks.add_parser("show", help="print one task's spec")
    show.add_argument("name", help="a registered task name or a path to a task YAML file")
    show.set_defaults(func=_tasks_show)

    data = commands.add_parser("data", help="offline datasets").add_subparsers(dest="action", required=True)
    build = data.add_parser("build", help="download, convert and cache a dataset suite")
    build.add_argument("suite", choices=("offline-suite",), help="what to build")
    build.add_argument("--cache-dir", help="cache directory (default: $MUPPET_HF_CACHE or ~/.cache/muppet_hf)")
    build.add_argument("--tasks", nargs="+", help="build these tasks only")
    build.add_argument("--force", action="store_true", help="rebuild even if cached")
    build.add_argument(
        "--archive",
        nargs="+",
        metavar="FILE",
        help="pinned archives obtained elsewhere (e.g. bigbench-1.0.0.tar.gz): checked against their SHA-256 and "
        "copied into the cache first",
    )
    build.add_argument(
        "--skip-unavailable",
        action="store_true",
        help="build the tasks whose source can be fetched, list the others and exit 0 (default: exit 2)",
    )
    build.set_defaults(func=_data_build)

    register_plan(commands)
    register_export(commands)
    register_push(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"muppet-hf: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
