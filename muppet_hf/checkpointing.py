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

[`CheckpointMixin`] holds the Trainer overrides that write and read these files, write each checkpoint atomically
(staged in `tmp-checkpoint-N/`, renamed once complete) and resume the task sampler where it stopped.
"""

import json
import logging
import os
import random
import shutil
from collections import defaultdict
from typing import Any

import numpy as np
import torch
from accelerate.utils import gather_object
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from transformers.trainer import TRAINER_STATE_NAME, TRAINING_ARGS_NAME
from transformers.trainer_callback import TrainerState
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, TrainOutput, get_last_checkpoint, rotate_checkpoints
from transformers.training_args import ParallelMode
from transformers.utils import (
    is_sagemaker_mp_enabled,
    is_torch_hpu_available,
    is_torch_mlu_available,
    is_torch_musa_available,
    is_torch_npu_available,
    is_torch_xla_available,
)

from .export import read_json
from .lora import check_checkpoint_adapters
from .safety import remove_stale_staging, resolve_resume


logger = logging.getLogger(__name__)

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
        text = json.dumps(obj, indent=2)
    except TypeError as error:
        raise TypeError(
            f"{path}: the {what} state is not JSON ({error}); muppet_hf checkpoints hold no pickles"
        ) from None
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


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


class CheckpointMixin:
    """The [`~transformers.Trainer`] overrides of [`MuppetTrainer`] for its checkpoints; put it before `Trainer`.

    - `train`: resumes from `True`/`"latest"` or a folder, restoring the task sampler and the examples seen; a run
      that already finished trains nothing.
    - `_save_checkpoint`, `_get_output_dir`: atomic checkpoints, with `muppet_trainer_state.json`.
    - `_save_optimizer_and_scheduler`, `_save_scaler`, `_save_rng_state`, `_save` and their `_load_*`: the files of
      the table above instead of pickles, except where an engine (DeepSpeed, FSDP, XLA, ...) owns that state.

    It reads and sets these attributes of the trainer: `examples_seen` (task -> examples, on this process),
    `_train_sampler` (the [`MultiTaskBatchSampler`] of the run, or None), `_resume_state` (the state read from the
    checkpoint, for `get_train_dataloader`) and `_staging_root` (None except while a checkpoint is being written).
    """

    def train(self, resume_from_checkpoint: str | bool | None = None, trial=None, ignore_keys_for_eval=None, **kwargs):
        """Trains; `resume_from_checkpoint` also restores the task sampler, so the same task/example stream goes on.

        `resume_from_checkpoint` may be `True` or the strings `"true"` / `"latest"` (the latest complete checkpoint
        of `output_dir`), or a checkpoint folder. Resuming a run that already reached `max_steps` trains nothing: it
        loads the checkpoint's weights and state so that the caller can write the final outputs.
        """
        resume_from_checkpoint = resolve_resume(resume_from_checkpoint)
        if self.args.should_save:
            remove_stale_staging(self.args.output_dir)
        if resume_from_checkpoint is True:
            resume_from_checkpoint = get_last_checkpoint(self.args.output_dir)
            if resume_from_checkpoint is None:
                raise ValueError(f"resume_from_checkpoint=True but {self.args.output_dir} holds no checkpoint")
        self._resume_state = None
        if resume_from_checkpoint:
            check_checkpoint_adapters(self.model, resume_from_checkpoint)
            path = os.path.join(resume_from_checkpoint, MUPPET_STATE_NAME)
            if not os.path.isfile(path):
                raise ValueError(
                    f"{resume_from_checkpoint}: no {MUPPET_STATE_NAME}; it was not written by MuppetTrainer"
                )
            with open(path, encoding="utf-8") as handle:
                self._resume_state = {**json.load(handle), "file": path}
            self.examples_seen = defaultdict(int)
            if self.args.process_index == 0:
                self.examples_seen.update(self._resume_state.get("examples_seen", {}))
            finished = self._finished_state(resume_from_checkpoint)
            if finished is not None:
                return self._finish_without_training(resume_from_checkpoint, finished)
        return super().train(
            resume_from_checkpoint=resume_from_checkpoint,
            trial=trial,
            ignore_keys_for_eval=ignore_keys_for_eval,
            **kwargs,
        )

    def _finished_state(self, checkpoint: str) -> TrainerState | None:
        """The checkpoint's `TrainerState` when it already reached this run's end (`max_steps`, or the epochs)."""
        path = os.path.join(checkpoint, TRAINER_STATE_NAME)
        if not os.path.isfile(path):
            return None
        state = TrainerState.load_from_json(path)
        if self.args.max_steps > 0:
            done = state.global_step >= self.args.max_steps
        else:
            done = state.epoch is not None and state.epoch >= self.args.num_train_epochs
        return state if done else None

    def _finish_without_training(self, checkpoint: str, state: TrainerState) -> TrainOutput:
        """Loads a finished run's final checkpoint and returns without a training step (no update, no checkpoint)."""
        logger.warning(
            "%s: the run already finished (step %d of max_steps %d); nothing is trained, only the final outputs are "
            "written from this checkpoint",
            checkpoint,
            state.global_step,
            self.args.max_steps,
        )
        self._load_from_checkpoint(checkpoint)
        self.state = state
        # No update ran, so there is no training loss to report; NaN rather than a misleading 0.
        return TrainOutput(state.global_step, float("nan"), {"train_resumed_finished_run": 1.0})

    def _get_output_dir(self, trial) -> str:
        # While a checkpoint is being written, the Trainer writes it under a staging folder (see _save_checkpoint).
        if self._staging_root is not None:
            return self._staging_root
        return super()._get_output_dir(trial=trial)

    def _save_checkpoint(self, model: nn.Module, trial) -> None:
        """Writes the checkpoint into `tmp-checkpoint-N/` and renames it to `checkpoint-N/` once complete.

        A run killed mid-save leaves only the staging folder, which `get_last_checkpoint` ignores, so resuming never
        picks up half a checkpoint. The sampler's state (`muppet_trainer_state.json`) goes in before the rename.
        """
        run_dir = self._get_output_dir(trial)
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        staging_root = os.path.join(run_dir, f"tmp-{name}")
        if self.args.should_save:
            # This save's own staging folder and any that a kill left behind (empty or half-written).
            remove_stale_staging(run_dir)
        self.accelerator.wait_for_everyone()
        self._staging_root = staging_root
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging_root = None
        staged, final = os.path.join(staging_root, name), os.path.join(run_dir, name)

        seen = dict(self.examples_seen)
        if self.args.world_size > 1:
            totals: dict[str, int] = defaultdict(int)
            for part in gather_object([seen]):
                for task, count in part.items():
                    totals[task] += count
            seen = dict(totals)
        if self.args.should_save:
            state = {
                "sampler": self._train_sampler.state_dict() if self._train_sampler else None,
                "examples_seen": seen,
            }
            with open(os.path.join(staged, MUPPET_STATE_NAME), "w", encoding="utf-8") as handle:
                json.dump(state, handle, indent=2)
            best = self.state.best_model_checkpoint
            if best is not None and best.startswith(staging_root):
                # The Trainer saw the staged path; point at where the folder will be.
                self.state.best_model_checkpoint = os.path.join(run_dir, os.path.basename(best))
                self.state.save_to_json(os.path.join(staged, "trainer_state.json"))
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            if os.path.isdir(final):
                shutil.rmtree(final)
            os.replace(staged, final)
            shutil.rmtree(staging_root)
            rotate_checkpoints(
                output_dir=run_dir,
                save_total_limit=self.args.save_total_limit,
                best_model_checkpoint=self.state.best_model_checkpoint,
            )
        self.accelerator.wait_for_everyone()

    # Trainer state without pickles (the functions above). DeepSpeed, FSDP, XLA and SageMaker write their
    # optimizer state in their own formats, so under those the Trainer's files are kept.

    def _engine_checkpoints(self) -> bool:
        return (
            self.is_deepspeed_enabled or self.is_fsdp_enabled or is_torch_xla_available() or is_sagemaker_mp_enabled()
        )

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        if self._engine_checkpoints():
            return super()._save_optimizer_and_scheduler(output_dir)
        if self.args.should_save:
            save_optimizer_state(self.optimizer.state_dict(), os.path.join(output_dir, OPTIMIZER_FILE))
            write_json(
                self.lr_scheduler.state_dict(), os.path.join(output_dir, SCHEDULER_FILE), "learning-rate scheduler"
            )

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        if checkpoint is None or self._engine_checkpoints():
            return super()._load_optimizer_and_scheduler(checkpoint)
        optimizer_file = os.path.join(checkpoint, OPTIMIZER_FILE)
        if not os.path.isfile(optimizer_file):
            pickled = [
                name for name in ("optimizer.pt", "scheduler.pt") if os.path.isfile(os.path.join(checkpoint, name))
            ]
            if pickled:
                raise ValueError(
                    f"{checkpoint}: the optimizer state is pickled ({', '.join(pickled)}) and muppet_hf does not load "
                    f"pickles; resume from a checkpoint with {OPTIMIZER_FILE}, or train from its weights instead"
                )
            return
        self.optimizer.load_state_dict(load_optimizer_state(optimizer_file))
        scheduler_file = os.path.join(checkpoint, SCHEDULER_FILE)
        if os.path.isfile(scheduler_file):
            self.lr_scheduler.load_state_dict(read_json(scheduler_file))

    def _save_scaler(self, output_dir: str) -> None:
        scaler = getattr(self.accelerator, "scaler", None)
        if scaler is None or is_torch_xla_available():
            return super()._save_scaler(output_dir)
        if self.args.should_save:
            write_json(scaler.state_dict(), os.path.join(output_dir, SCALER_FILE), "gradient scaler")

    def _load_scaler(self, checkpoint: str | None) -> None:
        scaler = getattr(self.accelerator, "scaler", None)
        if checkpoint is None or scaler is None or is_torch_xla_available():
            return super()._load_scaler(checkpoint)
        scaler_file = os.path.join(checkpoint, SCALER_FILE)
        if os.path.isfile(scaler_file):
            scaler.load_state_dict(read_json(scaler_file))

    def _other_accelerator(self) -> bool:
        return any(
            available()
            for available in (
                is_torch_xla_available,
                is_torch_npu_available,
                is_torch_hpu_available,
                is_torch_mlu_available,
                is_torch_musa_available,
            )
        )

    def _save_rng_state(self, output_dir: str) -> None:
        if self._other_accelerator():
            return super()._save_rng_state(output_dir)
        # A process can get here before the main one has created the folder.
        os.makedirs(output_dir, exist_ok=True)
        path = os.path.join(output_dir, rng_state_file(self.args.process_index, self.args.world_size))
        save_rng_state(path, all_cuda_devices=self.args.parallel_mode == ParallelMode.DISTRIBUTED)

    def _load_rng_state(self, checkpoint: str | None) -> None:
        if checkpoint is None or self._other_accelerator():
            return super()._load_rng_state(checkpoint)
        path = os.path.join(checkpoint, rng_state_file(self.args.process_index, self.args.world_size))
        if os.path.isfile(path):
            load_rng_state(path)
        else:
            logger.warning(
                "%s: no %s, so the random generators start afresh and the resumed run will not repeat the "
                "uninterrupted one exactly (pickled rng_state*.pth files are not loaded)",
                checkpoint,
                os.path.basename(path),
            )

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """Saves as the Trainer does, with the training arguments as JSON instead of a pickled `training_args.bin`."""
        super()._save(output_dir, state_dict)
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        pickled = os.path.join(output_dir, TRAINING_ARGS_NAME)
        if self.args.should_save and os.path.isfile(pickled):
            os.remove(pickled)
            with open(os.path.join(output_dir, TRAINING_ARGS_FILE), "w", encoding="utf-8") as handle:
                handle.write(self.args.to_json_string())
