"""The backbone's own learning rate (`backbone_learning_rate`): its parameters in optimizer groups of their own.

A lower peak rate than the heads' `learning_rate` protects the trained backbone from the large gradients of randomly
initialised heads, as `head_warmup_steps` does by freezing it for the first updates.
"""

import torch
from torch import nn


def split_backbone_groups(optimizer: torch.optim.Optimizer, backbone: nn.Module, learning_rate: float) -> None:
    """Splits each of `optimizer`'s groups in two: its head parameters, and its backbone parameters at `learning_rate`.

    Both halves keep the group's other settings (weight decay, betas); an empty half is dropped. Call it on a fresh
    optimizer: before the first step it holds no state, so its groups can be rebuilt, and a scheduler made next
    scales each group's own peak rate.

    Args:
        optimizer (`torch.optim.Optimizer`): the optimizer, before its first step.
        backbone (`nn.Module`): the module whose parameters get `learning_rate`.
        learning_rate (`float`): the backbone's peak learning rate.
    """
    in_backbone = {id(parameter) for parameter in backbone.parameters()}
    groups = []
    for group in optimizer.param_groups:
        heads = [parameter for parameter in group["params"] if id(parameter) not in in_backbone]
        body = [parameter for parameter in group["params"] if id(parameter) in in_backbone]
        groups += [{**group, "params": heads}] if heads else []
        groups += [{**group, "params": body, "lr": learning_rate}] if body else []
    optimizer.param_groups = []
    for group in groups:
        optimizer.add_param_group(group)


__all__ = ["split_backbone_groups"]
