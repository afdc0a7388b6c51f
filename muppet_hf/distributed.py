"""Multi-process training: what multi-task batches need from FSDP2 that plain DDP does not, and the teardown.

Every sub-batch runs one head, and with heterogeneous batches each process runs its own (paper §3.1), so in one
update process 0 may train the `mnli` head while process 1 trains the `span` head. DDP copes through
`ddp_find_unused_parameters`. FSDP2 does not: the heads belong to the root module's parameter group, whose gradients
are reduce-scattered as one flat buffer, and a process that left a head without a gradient sends a buffer of another
size than its peers (gloo aborts on the mismatch; NCCL may hang or mix up gradients). [`idle_heads_term`] gives every
idle head a zero gradient, so all processes reduce the same buffer.

[`destroy_process_group`] tears the process group down; [`end_process`] ends a multi-process run's process after it
succeeded, as the training scripts do.
"""

import atexit
import gc
import logging
import os
import sys
from typing import NoReturn

import torch

from .modeling_muppet import MuppetForMultiTask


def idle_heads_term(model: MuppetForMultiTask, head: str) -> torch.Tensor:
    """`0 × Σ` of the parameters of every head other than `head`: add it to the sub-batch's loss under FSDP.

    Its value is zero and so is the gradient it gives each idle head's parameters; its cost is one sum per parameter
    tensor of the heads. A backbone part that only some sub-batches run (the decoder of an encoder-decoder, run by
    summarization tasks alone) is not covered: it is sharded in FSDP units of its own, which every process must
    enter in the same order, so mixtures with such tasks need DDP.

    Args:
        model ([`MuppetForMultiTask`]): the model, unwrapped.
        head (`str`): the head the sub-batch ran.
    """
    idle = [
        parameter.sum() for name, module in model.heads.items() if name != head for parameter in module.parameters()
    ]
    if not idle:
        return torch.zeros((), device=model.device)
    return torch.stack(idle).sum() * 0.0


def destroy_process_group() -> None:
    """Destroys the default process group and frees it before the interpreter exits; a no-op in a single process.

    `torch.distributed.destroy_process_group` only unregisters the group: the Trainer's DDP wrapper still holds
    it, in reference cycles, until the interpreter's final collection. A gloo worker thread may then still be
    releasing the last collective's tensors, which needs the GIL while Python shuts down, and the process aborts
    ("terminate called without an active exception") after a run that succeeded: one rank in about 20 two-process
    runs on a busy 2-core machine. Freeing the group from inside a collection instead hung one run in about 80 (a
    collection holds the GIL while gloo joins its threads). So a Python reference keeps the group alive through the
    collection and is dropped last: torch's binding frees the group with the GIL released, and gloo's threads
    finish and are joined.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    group = torch.distributed.group.WORLD
    torch.distributed.destroy_process_group()
    gc.collect()
    del group


def end_process(code: int = 0) -> NoReturn:
    """Ends a multi-process run's process with exit status `code`, without the interpreter's own shutdown.

    [`destroy_process_group`] made the abort at exit rarer but did not remove it: CI still saw one rank of a
    two-process gloo run that had finished and written its results die with "terminate called without an active
    exception" while the interpreter shut down, and the launcher then stops the other rank and reports the run as
    failed. The shutdown is the part that aborts (torch destroys C++ objects that own threads while Python's state is
    being torn down; pytorch/pytorch#179291 describes it), and a finished run needs nothing from it. So this tears
    the group down, runs the `atexit` handlers (trackers' and logging's flushes) while the interpreter is whole,
    flushes stdout and stderr, and leaves with `os._exit`.

    Call it last, once everything is written; it does not return.
    """
    destroy_process_group()
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe has nothing left to flush
            pass
    os._exit(code)


__all__ = ["destroy_process_group", "end_process", "idle_heads_term"]
