"""`MuppetTrainer`: multi-task pre-finetuning (Aghajanyan et al., arXiv 2101.11038) on `transformers.Trainer`.

How the loss of one update is formed (paper §3.1, §3.3):

1. A sub-batch holds examples of one task. Its loss is the mean over its examples of `loss_i / log n_i`
   (`loss_scaling="log_n"`), plus `r3f_lambda × mean symmetric KL` when R3F is on.
2. The Trainer divides each sub-batch loss by the number of sub-batches it accumulates, and DDP averages over
   processes: the update's gradient is the *average over sub-batches* of the scaled losses' gradients, as the
   paper prescribes.

`num_items_in_batch` is deliberately not used: the Trainer counts it from `labels != -100`, which mixes
classification examples with seq2seq target tokens (and misses span tasks, which have no `labels`), so normalising
by it would weight a summarisation sub-batch by its token count. The trainer sets `loss_is_scaled_for_ga = False`
so the Trainer's own per-sub-batch averaging applies whatever the model's signature.
"""

import logging
import os
from collections import defaultdict
from collections.abc import Callable
from functools import partial

import datasets
import numpy as np
import torch
from accelerate.utils import gather_object
from huggingface_hub import get_token
from torch import nn
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase, Trainer, TrainerCallback
from transformers.trainer import TRAINING_ARGS_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, seed_worker

from .callbacks import HeadWarmupCallback, NonFiniteLossCallback, _log_skipped_updates
from .collator import MuppetDataCollator, pad_token_id_of
from .distributed import idle_heads_term
from .heads import head_class
from .hub.push import check_upload_folder
from .lora import add_lora_from_arguments
from .losses import log_n_scale
from .modeling_muppet import MuppetForMultiTask
from .multitask_evaluation import MultiTaskEvaluationMixin
from .optimization import split_backbone_groups
from .r3f import clean_and_noised, r3f_divergence, token_embeddings
from .safety import refuse_canary
from .sampling import MultiTaskBatchSampler, MultiTaskDataset
from .tasks.preprocessing import DEFAULT_MAX_TARGET_LENGTH
from .trainer_checkpoints import CheckpointMixin
from .training_args import MuppetTrainingArguments


logger = logging.getLogger(__name__)

# Generation for ROUGE is the costly part of evaluation: by default only the first 256 examples of a split are
# summarised (greedy), enough to follow training; pass `generation_max_examples=None` to score them all.
DEFAULT_GENERATION_MAX_EXAMPLES = 256


class MuppetTrainer(MultiTaskEvaluationMixin, CheckpointMixin, Trainer):
    r"""
    [`~transformers.Trainer`] for Muppet pre-finetuning of a [`MuppetForMultiTask`] on many tasks at once.

    It overrides the Trainer where multi-task training differs: `get_train_dataloader` (sub-batches of one task
    each), `compute_loss` and `training_step` (scaled per-task losses, R3F), `log` (per-task metrics),
    `create_optimizer` (`backbone_learning_rate`) and `push_to_hub` (refused for a canary model). `evaluate` and
    `prediction_step` (each task on its own head) come from [`MultiTaskEvaluationMixin`]; checkpoints without pickles and exact resumes come from
    [`~muppet_hf.trainer_checkpoints.CheckpointMixin`]; skipping non-finite updates and the head-only warm-up are
    callbacks (`muppet_hf.callbacks`).

    Args:
        model ([`MuppetForMultiTask`]): the model; `model.config.tasks` maps every task to its head.
        args ([`MuppetTrainingArguments`]): the training arguments.
        train_dataset (`dict[str, datasets.Dataset]`): task name -> tokenized training examples.
        eval_dataset (`dict[str, datasets.Dataset]`, *optional*): task name -> tokenized evaluation examples;
            `evaluate()` reports `eval_<task>_<metric>` for each.
        processing_class ([`~transformers.PreTrainedTokenizerBase`], *optional*): the tokenizer, saved with every
            checkpoint; its `pad_token_id` pads sub-batches.
        data_collator (`Callable`, *optional*): defaults to [`MuppetDataCollator`] built from the model's config.
        task_metrics (`dict[str, list[str]]`, *optional*): metric names per task (e.g. `TaskSpec.metrics`);
            defaults to the head's `default_metrics` (accuracy; pearson/spearman for regression; `seqeval` for token
            classification; `squad` for span; `rouge` for seq2seq).
        callbacks (`list[TrainerCallback]`, *optional*): extra callbacks.
        generation_max_examples (`int`, *optional*, defaults to 256): `rouge` scores summaries of only the first
            this many examples of each seq2seq evaluation split (greedy generation is slow); `None` scores all.
        generation_max_new_tokens (`int`, *optional*, defaults to 64): length cap of generated summaries.

    Logging: every `logging_steps`, `loss/<task>` (mean scaled loss of the task's sub-batches since the last log) and
    `examples_seen/<task>` (cumulative, all processes), averaged and flushed in `log()`.
    """

    _tag_names = ["muppet"]

    def __init__(
        self,
        model: MuppetForMultiTask,
        args: MuppetTrainingArguments,
        train_dataset: dict[str, datasets.Dataset] | None = None,
        eval_dataset: dict[str, datasets.Dataset] | None = None,
        processing_class: PreTrainedTokenizerBase | None = None,
        data_collator: Callable | None = None,
        task_metrics: dict[str, list[str]] | None = None,
        callbacks: list[TrainerCallback] | None = None,
        generation_max_examples: int | None = DEFAULT_GENERATION_MAX_EXAMPLES,
        generation_max_new_tokens: int = DEFAULT_MAX_TARGET_LENGTH,
        **kwargs,
    ):
        if not isinstance(model, MuppetForMultiTask):
            raise TypeError(f"MuppetTrainer trains a MuppetForMultiTask, got {type(model).__name__}")
        if not isinstance(args, MuppetTrainingArguments):
            raise TypeError(f"MuppetTrainer needs MuppetTrainingArguments, got {type(args).__name__}")
        for role, task_datasets in (("train_dataset", train_dataset), ("eval_dataset", eval_dataset)):
            if task_datasets is None:
                continue
            if not isinstance(task_datasets, dict):
                raise TypeError(f"MuppetTrainer: `{role}` must be a dict of task name -> dataset")
            for task in task_datasets:
                if task not in model.config.tasks:
                    raise ValueError(
                        f"MuppetTrainer: task {task!r} of `{role}` has no head in `model.config.tasks` "
                        f"({sorted(model.config.tasks)}); set config.tasks[{task!r}] to its head"
                    )
        if args.r4f and not model.config.spectral_norm:
            raise ValueError(
                "MuppetTrainer: `r4f=True` needs spectral-norm heads; build the model with "
                "MuppetConfig(spectral_norm=True) (training/prefinetune.py does this from `r4f`)"
            )
        if args.push_to_hub and model.config.canary:
            # The Trainer uploads every checkpoint with `push_to_hub=True`; a canary model must stay unpublished.
            refuse_canary(
                "MuppetTrainer(push_to_hub=True): the model (config.json field `canary`)", allow_canary=False
            )
        # LoRA (`lora_mode`): adapters on the frozen backbone, added before the optimizer sees the parameters.
        add_lora_from_arguments(model, args)
        self.head_types = {head: spec["type"] for head, spec in model.config.heads.items()}
        if data_collator is None:
            data_collator = MuppetDataCollator(
                task_heads=dict(model.config.tasks),
                head_types=self.head_types,
                pad_token_id=pad_token_id_of(processing_class, model),
            )
        super().__init__(
            model=model,
            args=args,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            data_collator=data_collator,
            callbacks=callbacks,
            **kwargs,
        )
        # Each sub-batch loss is a mean over its own examples; the Trainer must average the sub-batches of an update.
        self.loss_is_scaled_for_ga = False
        self.task_metrics = dict(task_metrics or {})
        if generation_max_examples is not None and generation_max_examples < 1:
            raise ValueError("MuppetTrainer: `generation_max_examples` must be at least 1, or None for all examples")
        self.generation_max_examples = generation_max_examples
        self.generation_max_new_tokens = generation_max_new_tokens
        self._metrics: dict[str, defaultdict[str, list[float]]] = {
            "train": defaultdict(list),
            "eval": defaultdict(list),
        }
        self.examples_seen: dict[str, int] = defaultdict(int)
        # Tasks of the sub-batches this process trained on, in order (shows what each rank drew).
        self.tasks_drawn: list[str] = []
        self._nonfinite_in_update: list[tuple[str, list[int]]] = []
        self._nonfinite_eval_rows: torch.Tensor | None = None
        # Per sub-batch of the current update: task, example rows, R3F on, device tensor [loss, task loss, R3F term].
        self._update_losses: list[tuple[str, torch.Tensor | None, bool, torch.Tensor]] = []
        self._resume_state: dict | None = None
        self._staging_root: str | None = None
        self._train_sampler: MultiTaskBatchSampler | None = None
        # Each task's share of the run's examples and sub-batches, set when training starts (`_log_task_shares`).
        self.task_shares: dict[str, dict[str, float]] = {}
        self.add_callback(NonFiniteLossCallback(self))
        if args.head_warmup_steps > 0:
            self.add_callback(HeadWarmupCallback(self))

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        """The Trainer's optimizer; with `backbone_learning_rate`, the backbone's parameters in groups of their own."""
        optimizer = super().create_optimizer(model)
        if self.args.backbone_learning_rate is not None:
            split_backbone_groups(optimizer, self.model.backbone, self.args.backbone_learning_rate)
        return optimizer

    # ---- Data ----

    def get_train_dataloader(self) -> DataLoader:
        """Sub-batches of one task each, mixed into updates as `args.batching` says (see [`MultiTaskBatchSampler`]).

        The sampler plans the global stream of sub-batches on every process from the seed alone; `accelerate`
        gives process `r` sub-batches `r, r + num_processes, ...`, so each process draws its own tasks and one
        update spans `tasks_per_update × num_processes` sub-batches.
        """
        if self.train_dataset is None:
            raise ValueError("MuppetTrainer: training requires a train_dataset (dict of task name -> dataset)")
        args = self.args
        dataset = MultiTaskDataset(self.train_dataset)
        sampler = MultiTaskBatchSampler(
            dataset,
            sub_batch_size=self._train_batch_size,
            update_size=args.gradient_accumulation_steps * args.world_size,
            batching=args.batching,
            task_sampling=args.task_sampling,
            temperature=args.sampling_temperature,
            max_examples_per_task=args.max_examples_per_task,
            group_by_length=args.group_by_length,
            max_tokens_per_sub_batch=args.max_tokens_per_sub_batch,
            task_size=args.task_size,
            seed=args.data_seed if args.data_seed is not None else args.seed,
        )
        if self._resume_state is not None:
            sampler.load_state_dict(self._resume_state["sampler"], source=self._resume_state["file"])
        self._train_sampler = sampler
        self.task_shares = self._log_task_shares(sampler)
        dataloader = DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=self.data_collator,
            num_workers=args.dataloader_num_workers,
            pin_memory=args.dataloader_pin_memory,
            persistent_workers=args.dataloader_persistent_workers and args.dataloader_num_workers > 0,
            worker_init_fn=partial(seed_worker, num_workers=args.dataloader_num_workers, rank=args.process_index),
        )
        return self.accelerator.prepare(dataloader)

    def _log_task_shares(self, sampler: MultiTaskBatchSampler) -> dict[str, dict[str, float]]:
        """Logs what each task gets of the whole run's sub-batches (examples, draws, examples per draw); returns it."""
        args = self.args
        per_epoch = len(sampler) // sampler.update_size
        updates = args.max_steps if args.max_steps > 0 else int(np.ceil(args.num_train_epochs * per_epoch))
        shares = sampler.task_shares(updates * sampler.update_size)
        if self.is_world_process_zero():
            for task, share in shares.items():
                logger.info(
                    "task %s: %.1f%% of the examples, %.1f%% of the %d sub-batches, %.1f examples per sub-batch",
                    task,
                    100 * share["examples"],
                    100 * share["sub_batches"],
                    updates * sampler.update_size,
                    share["examples_per_sub_batch"],
                )
        return shares

    # ---- Loss ----

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict,
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ):
        """Scaled loss of one single-task sub-batch (see the module docstring for how sub-batches combine).

        `num_items_in_batch` is ignored on purpose: it counts classification examples and seq2seq tokens alike.
        """
        inputs = dict(inputs)
        task = inputs.pop("task")
        example_indices = inputs.pop("example_indices", None)
        head = head_class(self.head_types[inputs["head"]])
        training = model.training
        use_r3f = training and self.args.r3f_lambda > 0 and head.compares_distributions

        if use_r3f:
            embeddings = token_embeddings(self.accelerator.unwrap_model(model))
            outputs, noised = clean_and_noised(
                model,
                embeddings,
                inputs,
                self.args.r3f_eps,
                self.args.r3f_noise,
                shared_dropout=self.args.r3f_dropout == "shared",
            )
        else:
            outputs = model(**inputs)

        per_example = outputs.per_example_loss
        if per_example is None:
            raise ValueError(f"task {task!r}: the sub-batch has no labels, so the model returned no loss")
        if self.args.loss_scaling == "log_n":
            per_example = log_n_scale(per_example, outputs.num_outputs)
        task_loss = per_example.mean()
        loss = task_loss
        if use_r3f:
            divergence = r3f_divergence(head.head_type, outputs, noised, inputs)
            loss = loss + self.args.r3f_lambda * divergence.mean()
        if training and self.is_fsdp_enabled:
            # FSDP2 reduces the heads' gradients as one buffer: every process must give every head one.
            loss = loss + idle_heads_term(self.accelerator.unwrap_model(model), inputs["head"])

        if training:
            # Kept on the device: `_read_update_losses` reads every sub-batch of the update in one transfer.
            values = torch.stack([loss, task_loss, divergence.mean() if use_r3f else torch.zeros_like(loss)])
            self._update_losses.append((task, example_indices, use_r3f, values.detach().float()))
            self.examples_seen[task] += int(per_example.shape[0])
            self.tasks_drawn.append(task)
        return (loss, outputs) if return_outputs else loss

    def _read_update_losses(self) -> None:
        """Reads the losses of the update's sub-batches from the device, all in one transfer, and records them.

        A sub-batch whose loss is NaN or inf is named (task and example rows) and marks the update for skipping
        ([`NonFiniteLossCallback`]); the others add their task loss (and R3F term) to the logged metrics. One read per
        update rather than one per sub-batch: on a GPU every read waits for all the work queued before it.
        """
        pending, self._update_losses = self._update_losses, []
        if not pending:
            return
        values = torch.stack([sub_batch_values for *_, sub_batch_values in pending]).tolist()
        for (task, example_indices, use_r3f, _), (loss, task_loss, divergence) in zip(pending, values, strict=True):
            if not np.isfinite(loss):
                rows = example_indices.tolist() if example_indices is not None else []
                self._nonfinite_in_update.append((task, rows))
                logger.warning(
                    "step %d: non-finite loss (%s) in task %r, sub-batch of rows %s; the update will be skipped",
                    self.state.global_step + 1,
                    loss,
                    task,
                    rows,
                )
                continue
            self._metrics["train"][f"loss/{task}"].append(task_loss)
            if use_r3f:
                self._metrics["train"][f"r3f/{task}"].append(divergence)

    def training_step(
        self, model: nn.Module, inputs: dict, num_items_in_batch: torch.Tensor | int | None = None
    ) -> torch.Tensor:
        """The Trainer's step; a non-finite sub-batch adds 0 to the Trainer's running `loss`, decided on the device.

        It replaces the Trainer's `logging_nan_inf_filter` (off by default in [`MuppetTrainingArguments`]), which
        reads every sub-batch's loss on the host; the update itself is skipped by [`NonFiniteLossCallback`].
        """
        loss = super().training_step(model, inputs, num_items_in_batch)
        return torch.where(torch.isfinite(loss), loss, torch.zeros_like(loss))

    # ---- Logging ----

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Adds the per-task metrics collected since the last log (averaged over all processes), then flushes them."""
        mode = "train" if self.model.training else "eval"
        collected = {key: list(values) for key, values in self._metrics[mode].items()}
        seen = dict(self.examples_seen)
        if self.args.world_size > 1:
            # Every process calls log() at the same points, so this collective is matched on all of them.
            collected_all = gather_object([collected])
            seen_all = gather_object([seen])
            collected, seen = defaultdict(list), defaultdict(int)
            for part in collected_all:
                for key, values in part.items():
                    collected[key].extend(values)
            for part in seen_all:
                for task, count in part.items():
                    seen[task] += count
        skipped = collected.pop("skipped_updates", None) if mode == "train" else None
        metrics = {key: sum(values) / len(values) for key, values in collected.items() if values}
        if skipped and sum(skipped) > 0:
            logs = _log_skipped_updates(logs, metrics, skipped, self.args.world_size)
        if mode == "train":
            metrics.update({f"examples_seen/{task}": float(count) for task, count in seen.items()})
        else:
            metrics = {f"eval_{key}": value for key, value in metrics.items()}
        super().log({**logs, **metrics}, start_time)
        self._metrics[mode].clear()

    def push_to_hub(self, *args, allow_canary: bool = False, **kwargs):
        """`Trainer.push_to_hub` with the checks of `muppet-hf push`: refused for a model trained on BIG-bench data
        unless `allow_canary=True`, and when `output_dir`, which it uploads, holds a pickle or the Hub token
        ([`~muppet_hf.hub.push.check_upload_folder`])."""
        if self.model.config.canary:
            refuse_canary("MuppetTrainer.push_to_hub: the model (config.json field `canary`)", allow_canary)
        if self.is_world_process_zero() and os.path.isdir(self.args.output_dir):
            token = kwargs.get("token") or self.args.hub_token or get_token()
            # What `Trainer.push_to_hub` leaves out of its upload; and `training_args.bin`, which the `save_model`
            # it starts with replaces by `training_args.json` (the Trainer's per-checkpoint push writes one).
            ignore = ["_*", f"{PREFIX_CHECKPOINT_DIR}-*", TRAINING_ARGS_NAME]
            check_upload_folder(self.args.output_dir, allow_canary, token=token, ignore_patterns=ignore)
        return super().push_to_hub(*args, **kwargs)


__all__ = [
    "MuppetTrainer",
]
