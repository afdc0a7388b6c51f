"""`HfArgumentParser` with YAML recipes: `--config recipe.yaml` supplies defaults and flags override them."""

import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import yaml
from transformers import HfArgumentParser


class MuppetArgumentParser(HfArgumentParser):
    """An [`~transformers.HfArgumentParser`] that also reads a YAML recipe, like TRL's `TrlParser`.

    Every key of the recipe must be a field of one of the dataclasses; a misspelt key is an error that names the
    recipe file, not a silently ignored setting.
    """

    def parse_args_and_config(self, args: Sequence[str] | None = None) -> tuple:
        """Parses `--config <recipe.yaml>` as defaults, then the remaining flags on top of them.

        Returns:
            The dataclass instances, in the order given to the parser, followed by the recipe's folder (`Path`, or
            `None` without `--config`), against which relative paths in the recipe can be resolved.
        """
        args = list(sys.argv[1:] if args is None else args)
        recipe_dir = None
        if "--config" in args:
            index = args.index("--config")
            if index + 1 >= len(args):
                raise ValueError("--config needs a YAML recipe path")
            recipe = Path(args[index + 1])
            del args[index : index + 2]
            if not recipe.is_file():
                raise FileNotFoundError(f"recipe {recipe} not found (--config)")
            with recipe.open(encoding="utf-8") as handle:
                defaults = yaml.safe_load(handle) or {}
            if not isinstance(defaults, dict):
                raise TypeError(f"{recipe}: a recipe must be a YAML mapping of argument -> value")
            known = {f.name for dataclass_type in self.dataclass_types for f in fields(dataclass_type)}
            unknown = sorted(set(defaults) - known)
            if unknown:
                raise ValueError(f"{recipe}: unknown field(s) {unknown}")
            self.set_defaults(**defaults)
            recipe_dir = recipe.resolve().parent
        return (*self.parse_args_into_dataclasses(args=args), recipe_dir)


__all__ = ["MuppetArgumentParser"]
