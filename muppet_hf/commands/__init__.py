"""Subcommands of the `muppet-hf` command line that `muppet_hf.cli` registers."""

from .export import register_export
from .push import register_push


__all__ = ["register_export", "register_push"]
