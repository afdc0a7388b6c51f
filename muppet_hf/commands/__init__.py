"""Subcommands of the `muppet-hf` command line that `muppet_hf.cli` registers."""

from .export import register_export
from .plan import register_plan
from .push import register_push


__all__ = ["register_export", "register_plan", "register_push"]
