"""Trainer state in checkpoints without pickles: optimizer and RNG states as safetensors, the rest as JSON.

`transformers.Trainer` writes `optimizer.pt`, `scheduler.pt`, `rng_state.pth`, `scaler.pt` and `training_args.bin`
with `torch.save`, and reads the first four back with `torch.load`. [`MuppetTrainer`] writes these instead:

| file | holds |
|---|---|
| `optimizer.safetensors` | every tensor of `optimizer.state_dict()`; its `param_groups` and non-tensor entries as JSON metadata |
| `scheduler.json`, `scaler.json` | `lr_scheduler.state_dict()`, `GradScaler.state_dict()` |
| `rng_state.safetensors` (`rng_state_<rank>.safetensors` with several processes) | the CPU and CUDA generators' states; Python's and NumPy's as JSON metadata |
| `training_args.json` | `TrainingArguments.to_json_string()` |
| `muppet_trainer_state.json` | the task sampler's position and the examples seen per task, for an exact resume |

The Trainer overrides that write and read these files are [`muppet_hf.trainer_checkpoints.CheckpointMixin`].
"""

import json
import os
import random
from collections import defaultdict
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from . import io_utils


MUPPET_STATE_NAME = "muppet_trainer_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"
SCHEDULER_FILE = "scheduler.json"
SCALER_FILE = "scaler.json"
TRAINING_ARGS_FILE = "training_args.json"
STATE_FORMAT = "muppet_hf/v1"


def rng_state_file(process_index: int, world_size: int) -> str:
    return "rng_state.safetensors" if world_size <= 1 else f"rng_state_{process_index}.safetensors"


def write_json(obj: Any, path: str | os.PathLike, what: str) -> None:
    try:
        io_utils.write_json(path, obj)
    except TypeError as error:
        # `error` names the file and what JSON cannot hold; pickles are no fallback.
        raise TypeError(f"{error} (the {what} state; muppet_hf checkpoints hold no pickles)") from None


def save_optimizer_state(state_dict: dict, path: str | os.PathLike) -> None:
    """Writes `optimizer.state_dict()`: tensors as `state.<param>.<key>` / `param_groups.<group>.<key>`."""
    tensors, values = {}, {"state": defaultdict(dict), "param_groups": []}
    for param, entries in state_dict["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"state.{param}.{key}"] = value.detach().cpu().contiguous()
            else:
                values["state"][str(param)][key] = value
    for index, group in enumerate(state_dict["param_groups"]):
        plain = {}
        for key, value in group.items():
            if torch.is_tensor(value):
                tensors[f"param_groups.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain[key] = value
        values["param_groups"].append(plain)
    try:
        metadata = {"format": STATE_FORMAT, "values": json.dumps(values)}
    except TypeError as error:
        raise TypeError(f"{path}: optimizer state that is neither a tensor nor JSON ({error})") from None
    save_file(tensors, str(path), metadata=metadata)


def load_optimizer_state(path: str | os.PathLike) -> dict:
    """The `state_dict` that [`save_optimizer_state`] wrote, for `optimizer.load_state_dict`."""
    metadata, tensors = _read_safetensors(path)
    values = json.loads(metadata["values"])
    state = defaultdict(dict)
    for param, entries in values["state"].items():
        state[int(param)].update(entries)
    # JSON turned tuples (Adam's `betas`) into lists; the parameter indices are the only list torch expects.
    param_groups = [
        {key: tuple(value) if isinstance(value, list) and key != "params" else value for key, value in group.items()}
        for group in values["param_groups"]
    ]
    for name, tensor in tensors.items():
        kind, index, key = name.split(".", 2)
        if kind == "state":
            state[int(index)][key] = tensor
        else:
            param_groups[int(index)][key] = tensor
    return {"state": dict(state), "param_groups": param_groups}


def save_rng_state(path: str | os.PathLike, all_cuda_devices: bool) -> None:
    """Writes the Python, NumPy, CPU and (when present) CUDA generators' states."""
    tensors = {"cpu": torch.random.get_rng_state()}
    if torch.cuda.is_available():
        states = torch.cuda.random.get_rng_state_all() if all_cuda_devices else [torch.cuda.random.get_rng_state()]
        tensors.update({f"cuda.{index}": state for index, state in enumerate(states)})
    version, internal, gauss_next = random.getstate()
    generator, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    metadata = {
        "format": STATE_FORMAT,
        "python": json.dumps([version, list(internal), gauss_next]),
        "numpy": json.dumps([generator, keys.tolist(), position, has_gauss, cached_gaussian]),
        "cuda": "all" if all_cuda_devices else "current",
    }
    save_file(tensors, str(path), metadata=metadata)


def load_rng_state(path: str | os.PathLike) -> None:
    """Restores the generators that [`save_rng_state`] saved (CUDA ones only where CUDA is available)."""
    metadata, tensors = _read_safetensors(path)
    version, internal, gauss_next = json.loads(metadata["python"])
    random.setstate((version, tuple(internal), gauss_next))
    generator, keys, position, has_gauss, cached_gaussian = json.loads(metadata["numpy"])
    np.random.set_state((generator, np.array(keys, dtype=np.uint32), position, has_gauss, cached_gaussian))
    torch.random.set_rng_state(tensors["cpu"])
    cuda = [tensors[f"cuda.{index}"] for index in range(len(tensors) - 1)]
    if cuda and torch.cuda.is_available():
        if metadata["cuda"] == "all":
            torch.cuda.random.set_rng_state_all(cuda)
        else:
            torch.cuda.random.set_rng_state(cuda[0])


def _read_safetensors(path: str | os.PathLike) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """A safetensors file's metadata and tensors, read in one pass."""
    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata(), {name: handle.get_tensor(name) for name in handle.keys()}
