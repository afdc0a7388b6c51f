"""The training scripts' code: `training/prefinetune.py` and `training/finetune.py` are thin launchers of these.

Each module has `parse_args(argv)`, `main(script_args, training_args)` and `run(argv)`, the command line: [`launch`]
of its `main`.
"""

import logging
from collections.abc import Callable
from typing import Any

import torch

from ..distributed import destroy_process_group, end_process


def launch(main: Callable[..., Any], parse_args: Callable[[list[str] | None], tuple], argv: list[str] | None = None):
    """Runs `main(*parse_args(argv))` as a command line (`argv` defaults to `sys.argv`): logs go to stderr, and the
    process group is always torn down, so a failing rank does not leave the others waiting.

    A process of a multi-process run that succeeded ends in [`~muppet_hf.distributed.end_process`] (exit status 0,
    without the interpreter's shutdown, where gloo can abort a finished rank) and does not return; a single process
    returns `main`'s result.
    """
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    try:
        result = main(*parse_args(argv))
    except BaseException:
        destroy_process_group()
        raise
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    if distributed and torch.distributed.get_world_size() > 1:
        end_process(0)
    destroy_process_group()
    return result


__all__ = ["launch"]
