"""`HfArgumentParser` with YAML recipes: `--config recipe.yaml` supplies defaults and flags override them."""

import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml
from transformers import HfArgumentParser


def read_recipe(path: str | Path, what: str = "recipe") -> dict[str, Any]:
    """Reads a YAML recipe: a mapping of argument -> value (an empty file is an empty recipe).

    Args:
        path (`str` or `Path`): the recipe file.
        what (`str`, *optional*, defaults to `"recipe"`): how errors name it, e.g. `"recipe (--config)"`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} not found")
    with path.open(encoding="utf-8") as handle:
        recipe = yaml.safe_load(handle) or {}
    if not isinstance(recipe, dict):
        raise TypeError(f"{path}: a recipe must be a YAML mapping of argument -> value")
    return recipe


# A source checkout: recipes name task files such as `training/data/tiny/tiny_qa.yaml` from its root.
REPO_ROOT = Path(__file__).resolve().parents[1]


def resolve_task_path(name_or_path: str, recipe_dir: Path | None = None) -> str:
    """A recipe's task: a registered name as it is, a task YAML as an absolute path.

    A relative YAML path is looked up in the working directory, then beside the recipe, then at the repository root;
    `training/prefinetune.py` and `muppet-hf plan` resolve a recipe's tasks alike.
    """
    if not name_or_path.endswith((".yaml", ".yml")) or Path(name_or_path).is_absolute():
        return name_or_path
    bases = [base for base in (Path.cwd(), recipe_dir, REPO_ROOT) if base is not None]
    for base in bases:
        if (base / name_or_path).is_file():
            return str((base / name_or_path).resolve())
    raise ValueError(
        f"task file {name_or_path!r} not found in {', '.join(str(base) for base in bases)} (field `tasks`)"
    )


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
            defaults = read_recipe(recipe, "recipe (--config)")
            # Each field's declared annotation: HfArgumentParser rewrites `Field.type` (`float | None` becomes
            # `float`), which would refuse a recipe's `null` for a field whose default is `None`.
            types = {}
            for dataclass_type in self.dataclass_types:
                hints = get_type_hints(dataclass_type)
                types.update({f.name: hints[f.name] for f in fields(dataclass_type)})
            unknown = sorted(set(defaults) - set(types))
            if unknown:
                raise ValueError(f"{recipe}: unknown field(s) {unknown}")
            for key, value in defaults.items():
                check_recipe_value(recipe, key, value, types[key])
            self.set_defaults(**defaults)
            recipe_dir = recipe.resolve().parent
        return (*self.parse_args_into_dataclasses(args=args), recipe_dir)


# The plain types a recipe value is checked against; a field of any other type (Literal, Enum, ...) is left to
# the dataclass's own validation.
_CHECKED_TYPES = (bool, int, float, str, list, dict)


def _allowed_types(annotation: Any) -> tuple[type, ...] | None:
    """The plain types (and `NoneType`) a field's annotation allows, or `None` when it holds anything else."""
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        members = [_allowed_types(member) for member in get_args(annotation)]
        return None if any(member is None for member in members) else tuple(t for m in members for t in m)
    if annotation is type(None):
        return (type(None),)
    plain = origin if origin in (list, dict) else annotation
    return (plain,) if plain in _CHECKED_TYPES else None


def check_recipe_value(recipe: Path, key: str, value: Any, annotation: Any) -> None:
    """Checks one recipe value against its field's type, as argparse would check the same value given as a flag.

    argparse converts and checks strings from the command line only; a recipe's values bypass it, so `tasks: a.yaml`
    would be walked character by character and `max_steps: 2.5` would reach the Trainer.

    Raises:
        `TypeError` naming the recipe file and the field.
    """
    allowed = _allowed_types(annotation)
    if allowed is None:
        return
    if isinstance(value, bool):
        ok = bool in allowed
    elif isinstance(value, int):
        ok = int in allowed or float in allowed
    elif isinstance(value, str):
        # argparse parses a string default as if it were typed (YAML reads `1e-5` as a string), but hands it to a
        # list field whole.
        ok = str in allowed or list not in allowed
    else:
        ok = isinstance(value, allowed)
    if not ok:
        names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
        raise TypeError(f"{recipe}: field `{key}` must be {names}, got {value!r} ({type(value).__name__})")


__all__ = ["MuppetArgumentParser", "check_recipe_value", "read_recipe", "resolve_task_path"]
