"""`muppet-hf plan RECIPE`: the mixture a pre-finetuning recipe will draw, offline, before any GPU hour is spent."""

import argparse
import json

from ..planning import DEFAULT_MAX_EPOCHS, plan_recipe


def run_plan(args: argparse.Namespace) -> int:
    plan = plan_recipe(
        args.recipe, num_processes=args.num_processes, max_epochs=args.max_epochs, cache_dir=args.cache_dir
    )
    print(json.dumps(plan.to_dict(), indent=2) if args.json else plan.format())
    return 0


def register_plan(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    """Adds the `plan` subcommand to the `muppet-hf` parser's subparsers; returns its parser."""
    parser = subparsers.add_parser(
        "plan",
        help="print what a pre-finetuning recipe's mixture will draw (offline)",
        description="Per task: family, head, training size (from the built offline suite or the spec), share of "
        "sub-batches under the recipe's sampling, sub-batches per update and expected epochs; per head: examples "
        "per update; warnings for tasks seen less than once or more than --max-epochs times, heads whose tasks "
        "disagree in shape and missing sizes. Downloads nothing.",
    )
    parser.add_argument("recipe", metavar="RECIPE", help="a pre-finetuning YAML recipe (training/recipes/*.yaml)")
    parser.add_argument("--num-processes", type=int, default=1, help="processes (GPUs) the run will use (default: 1)")
    parser.add_argument(
        "--max-epochs",
        type=float,
        default=DEFAULT_MAX_EPOCHS,
        help="warn about tasks expected to be seen more often (default: 10)",
    )
    parser.add_argument("--cache-dir", help="offline suite cache (default: $MUPPET_HF_CACHE or ~/.cache/muppet_hf)")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.set_defaults(func=run_plan)
    return parser
