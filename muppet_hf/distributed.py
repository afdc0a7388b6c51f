"""What multi-task training needs from sharded data parallelism (FSDP2) that plain DDP does not.

Every sub-batch runs one head, and with heterogeneous batches each process runs its own (paper §3.1), so in one
update process 0 may train the `mnli` head while process 1 trains the `span` head. DDP copes through
`ddp_find_unused_parameters`. FSDP2 does not: the heads belong to the root module's parameter group, whose gradients
are reduce-scattered as one flat buffer, and a process that left a head without a gradient sends a buffer of another
size than its peers (gloo aborts on the mismatch; NCCL may hang or mix up gradients). [`idle_heads_term`] gives every
idle head a zero gradient, so all processes reduce the same buffer.
"""

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


__all__ = ["idle_heads_term"]
