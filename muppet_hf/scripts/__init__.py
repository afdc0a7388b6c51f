"""The training scripts' code: `training/prefinetune.py` and `training/finetune.py` are thin launchers of these.

Each module has `parse_args(argv)`, `main(script_args, training_args)` and `run(argv)`, the command line: [`launch`]
of its `main`.
"""

import logging
from collections.abc import Callable
from typing import Any

from ..distributed import destroy_process_group


def launch(main: Callable[..., Any], parse_args: Callable[[list[str] | None], tuple], argv: list[str] | None = None):
    """Runs `main(*parse_args(argv))` as a command line (`argv` defaults to `sys.argv`): logs go to stderr, and the
    process group is always torn down, so a failing rank does not leave the others waiting."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    try:
        return main(*parse_args(argv))
    finally:
        destroy_process_group()


__all__ = ["launch"]
