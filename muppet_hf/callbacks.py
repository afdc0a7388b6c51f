"""Callbacks of [`MuppetTrainer`] for what happens *when*: skipping non-finite updates, and the head-only warm-up.

- [`NonFiniteLossCallback`] drops an update in which any sub-batch had a NaN or inf loss, and stops training (after
  saving a checkpoint) with [`NonFiniteLossError`] when too many updates in a row were dropped; `MuppetTrainer.log`
  reports the dropped updates with [`_log_skipped_updates`].
- [`HeadWarmupCallback`] freezes the backbone for the first `head_warmup_steps` updates.
"""

import logging
from typing import TYPE_CHECKING

import torch
from transformers import TrainerCallback


if TYPE_CHECKING:
    from .trainer import MuppetTrainer


logger = logging.getLogger(__name__)


class NonFiniteLossError(ValueError):
    """Raised when too many updates in a row had a NaN or inf loss; a checkpoint is written first."""


class NonFiniteLossCallback(TrainerCallback):
    """Skips optimizer updates in which any sub-batch, on any process, had a NaN or inf loss.

    The bad sub-batch is named (task and example rows) by [`MuppetTrainer._read_update_losses`]. Here,
    just before the optimizer step, the update's gradients are dropped (`zero_grad(set_to_none=True)`, so the
    optimizer leaves every parameter and its moments untouched). After `max_nonfinite_updates` skipped updates in
    a row, training saves a checkpoint (holding the last good weights) and raises [`NonFiniteLossError`].
    """

    def __init__(self, trainer: "MuppetTrainer"):
        self.trainer = trainer
        self.skipped_in_a_row = 0
        self.error: str | None = None

    def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        trainer = self.trainer
        trainer._read_update_losses()
        bad = trainer._nonfinite_in_update
        flag = torch.tensor(float(len(bad) > 0), device=args.device)
        if args.world_size > 1:
            flag = trainer.accelerator.reduce(flag, reduction="sum")
        if flag.item() == 0:
            self.skipped_in_a_row = 0
            # One flag per update: `log()` counts the skipped ones among the updates since the last log.
            trainer._metrics["train"]["skipped_updates"].append(0.0)
            return
        optimizer.zero_grad(set_to_none=True)
        self.skipped_in_a_row += 1
        trainer._metrics["train"]["skipped_updates"].append(1.0)
        named = ", ".join(f"{task!r} (rows {rows})" for task, rows in bad) or "another process's sub-batch"
        logger.warning(
            "update %d skipped: non-finite loss in %s (%d in a row)",
            state.global_step + 1,
            named,
            self.skipped_in_a_row,
        )
        if self.skipped_in_a_row >= args.max_nonfinite_updates:
            tasks = sorted({task for task, _ in bad})
            self.error = (
                f"{self.skipped_in_a_row} updates in a row had a non-finite loss (last in task(s) {tasks or 'on another process'}, "
                f"update {state.global_step + 1}); stopping. The checkpoint of step {state.global_step + 1} holds "
                "the last good weights"
            )

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.trainer._nonfinite_in_update.clear()

    def on_step_end(self, args, state, control, **kwargs):
        if self.error is not None:
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_save(self, args, state, control, **kwargs):
        if self.error is not None:
            raise NonFiniteLossError(self.error)


class HeadWarmupCallback(TrainerCallback):
    """Freezes the backbone for the first `head_warmup_steps` updates, so only the fresh heads train.

    Only the backbone parameters that train at all are toggled: they are taken when training begins, so with LoRA the
    adapters are frozen for the warm-up and then trained, while the backbone's own weights stay frozen throughout.
    Frozen parameters get no gradient, so AdamW leaves them and their moments untouched (and their backward pass is
    not computed); to DDP they look like the unused heads of a sub-batch, which `ddp_find_unused_parameters` allows.
    The freeze is set at every update's start from the step count alone, so a resumed run freezes the same updates.
    """

    def __init__(self, trainer: "MuppetTrainer"):
        self.trainer = trainer
        self.parameters: list[torch.nn.Parameter] = []

    def on_train_begin(self, args, state, control, **kwargs):
        # Taken once: a second `train()` may begin while a finished warm-up left these frozen.
        if not self.parameters:
            self.parameters = [p for p in self.trainer.model.backbone.parameters() if p.requires_grad]

    def on_step_begin(self, args, state, control, **kwargs):
        trainable = state.global_step >= args.head_warmup_steps
        if self.parameters and self.parameters[0].requires_grad != trainable:
            for parameter in self.parameters:
                parameter.requires_grad_(trainable)
            logger.info("update %d: backbone %s", state.global_step + 1, "unfrozen" if trainable else "frozen")


def _log_skipped_updates(logs: dict, metrics: dict, skipped: list[float], world_size: int) -> dict:
    """Reports how many updates since the last log were skipped for a non-finite loss (`skipped_updates`).

    When all of them were, the Trainer's running loss ([`MuppetTrainer.training_step`] adds 0 for a non-finite
    sub-batch) is not a loss at all: it is dropped from the log rather than shown as 0.
    """
    # Every process appends the same flag for each update (the flag is reduced across processes).
    count, updates = sum(skipped) / world_size, len(skipped) / world_size
    metrics["skipped_updates"] = count
    if count >= updates:
        return {key: value for key, value in logs.items() if key not in ("loss", "grad_norm")}
    if "loss" in logs:
        # The Trainer averages its running loss over every update of the window, the skipped ones adding (about) 0:
        # average over the updates that were applied instead, so a skip does not read as a lower loss.
        logs = {**logs, "loss": logs["loss"] * updates / (updates - count)}
    return logs


__all__ = ["HeadWarmupCallback", "NonFiniteLossCallback", "NonFiniteLossError"]
