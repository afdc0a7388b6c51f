"""The [`~transformers.Trainer`] overrides of [`MuppetTrainer`] for its checkpoints: no pickles, atomic, exact resume.

The files and their format are those of `muppet_hf.checkpointing`. Each checkpoint is written into
`tmp-checkpoint-N/` and renamed to `checkpoint-N/` once complete, with the task sampler's position, so a resumed run
draws the same task/example stream as the uninterrupted one.
"""

import json
import logging
import os
import shutil
from collections import defaultdict

from accelerate.utils import gather_object
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

from .checkpointing import (
    MUPPET_STATE_NAME,
    OPTIMIZER_FILE,
    SCALER_FILE,
    SCHEDULER_FILE,
    TRAINING_ARGS_FILE,
    load_optimizer_state,
    load_rng_state,
    rng_state_file,
    save_optimizer_state,
    save_rng_state,
    write_json,
)
from .io_utils import read_json
from .lora import check_checkpoint_adapters
from .safety import remove_stale_staging, resolve_resume


logger = logging.getLogger(__name__)


class CheckpointMixin:
    """The [`~transformers.Trainer`] overrides of [`MuppetTrainer`] for its checkpoints; put it before `Trainer`.

    - `train`: resumes from `True`/`"latest"` or a folder, restoring the task sampler and the examples seen; a run
      that already finished trains nothing.
    - `_save_checkpoint`, `_get_output_dir`: atomic checkpoints, with `muppet_trainer_state.json`.
    - `_save_optimizer_and_scheduler`, `_save_scaler`, `_save_rng_state`, `_save` and their `_load_*`: the files of
      `muppet_hf.checkpointing` instead of pickles, except where an engine (DeepSpeed, FSDP, XLA, ...) owns that state.

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

    # Trainer state without pickles (`muppet_hf.checkpointing`). DeepSpeed, FSDP, XLA and SageMaker write their
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

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        """No push from inside training: `Trainer._push_from_checkpoint` pickles the training arguments into
        `training_args.bin` and uploads the output folder without the canary and upload checks. The push at the end
        of training (`push_to_hub()`, which `save_model()` calls when `push_to_hub` is set, as the training scripts do
        at the end) uploads safetensors and JSON after those checks."""
        if self.args.push_to_hub and self.is_world_process_zero():
            logger.warning(
                "%s: not pushed during training (training_args.bin would be pickled); push_to_hub() at the end of "
                "training uploads the final model after its checks",
                os.path.basename(checkpoint_folder),
            )


__all__ = ["CheckpointMixin"]
