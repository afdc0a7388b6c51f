import torch
from torch import nn

from muppet_hf.optimization import split_backbone_groups


def groups_by_name(model: nn.Module, optimizer: torch.optim.Optimizer) -> list[tuple[list[str], float, float]]:
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    return [
        ([names[id(parameter)] for parameter in group["params"]], group["lr"], group["weight_decay"])
        for group in optimizer.param_groups
    ]


def test_each_group_is_split_into_its_head_and_backbone_parameters_with_their_own_rates():
    model = nn.ModuleDict({"backbone": nn.Linear(4, 4), "head": nn.Linear(4, 2)})
    decay = [model["backbone"].weight, model["head"].weight]
    no_decay = [model["backbone"].bias, model["head"].bias]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-3
    )
    split_backbone_groups(optimizer, model["backbone"], learning_rate=1e-5)
    assert groups_by_name(model, optimizer) == [
        (["head.weight"], 1e-3, 0.1),
        (["backbone.weight"], 1e-5, 0.1),
        (["head.bias"], 1e-3, 0.0),
        (["backbone.bias"], 1e-5, 0.0),
    ]


def test_a_group_without_backbone_parameters_stays_whole():
    model = nn.ModuleDict({"backbone": nn.Linear(4, 4), "head": nn.Linear(4, 2)})
    optimizer = torch.optim.AdamW(model["head"].parameters(), lr=0.1, weight_decay=0.01)
    split_backbone_groups(optimizer, model["backbone"], learning_rate=1e-5)
    assert groups_by_name(model, optimizer) == [(["head.weight", "head.bias"], 0.1, 0.01)]
