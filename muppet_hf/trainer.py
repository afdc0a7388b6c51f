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

import gc
import json
import logging
import os
import shutil
from collections import defaultdict
from collections.abc import Callable
from functools import partial

import datasets
import numpy as np
import torch
from accelerate.utils import gather_object
from huggingface_hub import get_token
from scipy import stats
from sklearn import metrics as sk_metrics
from torch import nn
from torch.utils.data import DataLoader
from transformers import EvalPrediction, PreTrainedTokenizerBase, Trainer, TrainerCallback
from transformers.trainer import TRAINER_STATE_NAME, TRAINING_ARGS_NAME
from transformers.trainer_callback import TrainerState
from transformers.trainer_utils import (
    PREFIX_CHECKPOINT_DIR,
    TrainOutput,
    get_last_checkpoint,
    rotate_checkpoints,
    seed_worker,
)
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
from .collator import MuppetDataCollator
from .distributed import idle_heads_term
from .hub.push import check_upload_folder
from .io_utils import read_json
from .lora import add_lora_from_arguments, check_checkpoint_adapters
from .losses import IGNORE_INDEX, log_n_scale
from .metrics import postprocess_span_predictions, rouge_scores, squad_scores, tagging_scores
from .modeling_muppet import MuppetForMultiTask
from .r3f import capture_embeddings, embedding_noise, fork_rng, r3f_divergence, sample_noise, token_embeddings
from .safety import refuse_canary, remove_stale_staging, resolve_resume
from .sampling import MultiTaskBatchSampler, MultiTaskDataset
from .tasks.preprocessing import DEFAULT_MAX_TARGET_LENGTH
from .training_args import MuppetTrainingArguments


logger = logging.getLogger(__name__)

MUPPET_STATE_NAME = "muppet_trainer_state.json"
# Metrics each head type reports when a task names none.
DEFAULT_METRICS = {
    "classification": ["accuracy"],
    "regression": ["pearson", "spearman"],
    "multiple_choice": ["accuracy"],
    # Entity precision/recall/F1 and token accuracy (`muppet_hf.metrics.tagging_scores`).
    "token_classification": ["seqeval"],
    "span": ["squad"],
    "seq2seq": ["rouge"],
}
# Metrics computed from argmax predictions.
SUPPORTED_METRICS = ("accuracy", "f1", "macro_f1", "mcc", "pearson", "spearman")
# Metrics of decoded text (`muppet_hf.metrics`), by the head type that produces it.
TEXT_METRICS = {"span": "squad", "seq2seq": "rouge"}
# Columns of a span task's evaluation windows that SQuAD scoring reads (`prepare_task` keeps them off `train`).
SPAN_SCORING_COLUMNS = ("example_id", "offset_mapping", "context", "answers")
# Generation for ROUGE is the costly part of evaluation: by default only the first 256 examples of a split are
# summarised (greedy), enough to follow training; pass `generation_max_examples=None` to score them all.
DEFAULT_GENERATION_MAX_EXAMPLES = 256
# As summarisation papers and the Hugging Face examples do, ROUGE compares Porter-stemmed words.
ROUGE_USE_STEMMER = True


class NonFiniteLossError(ValueError):
    """Raised when too many updates in a row had a NaN or inf loss; a checkpoint is written first."""


def compute_task_metrics(predictions: np.ndarray, labels: np.ndarray, metric_names: list[str]) -> dict[str, float]:
    """Offline metrics of one task with scikit-learn / scipy; positions labelled -100 (padding) are ignored.

    Args:
        predictions (`np.ndarray`): predicted class ids (or values, for regression), any shape.
        labels (`np.ndarray`): gold labels, same shape.
        metric_names (`list[str]`): names from `SUPPORTED_METRICS`; other names are skipped.
    """
    predictions, labels = np.asarray(predictions).reshape(-1), np.asarray(labels).reshape(-1)
    keep = labels != IGNORE_INDEX
    predictions, labels = predictions[keep], labels[keep]
    results = {}
    for name in metric_names:
        if name == "accuracy":
            results[name] = float(sk_metrics.accuracy_score(labels, predictions))
        elif name == "f1":
            average = "binary" if len(np.unique(labels)) <= 2 and set(np.unique(labels)) <= {0, 1} else "macro"
            results[name] = float(sk_metrics.f1_score(labels, predictions, average=average, zero_division=0))
        elif name == "macro_f1":
            results[name] = float(sk_metrics.f1_score(labels, predictions, average="macro", zero_division=0))
        elif name == "mcc":
            results[name] = float(sk_metrics.matthews_corrcoef(labels, predictions))
        elif name in ("pearson", "spearman"):
            # A constant prediction has no correlation; report 0 rather than NaN (early, untrained heads).
            if np.std(predictions) == 0 or np.std(labels) == 0:
                results[name] = 0.0
            elif name == "pearson":
                results[name] = float(stats.pearsonr(predictions, labels)[0])
            else:
                results[name] = float(stats.spearmanr(predictions, labels)[0])
    return results


class NonFiniteLossCallback(TrainerCallback):
    """Skips optimizer updates in which any sub-batch, on any process, had a NaN or inf loss.

    The bad sub-batch is named (task and example rows) by [`MuppetTrainer.compute_loss`] when it happens. Here,
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

    Frozen parameters get no gradient, so AdamW leaves them and their moments untouched (and their backward pass is
    not computed); to DDP they look like the unused heads of a sub-batch, which `ddp_find_unused_parameters` allows.
    The freeze is set at every update's start from the step count alone, so a resumed run freezes the same updates.
    """

    def __init__(self, trainer: "MuppetTrainer"):
        self.trainer = trainer

    def on_step_begin(self, args, state, control, **kwargs):
        trainable = state.global_step >= args.head_warmup_steps
        backbone = self.trainer.model.backbone
        if next(backbone.parameters()).requires_grad != trainable:
            backbone.requires_grad_(trainable)
            logger.info("update %d: backbone %s", state.global_step + 1, "unfrozen" if trainable else "frozen")


class MuppetTrainer(Trainer):
    r"""
    [`~transformers.Trainer`] for Muppet pre-finetuning of a [`MuppetForMultiTask`] on many tasks at once.

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
            defaults by head type (accuracy; pearson/spearman for regression; `seqeval` for token classification;
            `squad` for span; `rouge` for seq2seq).
        callbacks (`list[TrainerCallback]`, *optional*): extra callbacks.
        generation_max_examples (`int`, *optional*, defaults to 256): `rouge` scores summaries of only the first
            this many examples of each seq2seq evaluation split (greedy generation is slow); `None` scores all.
        generation_max_new_tokens (`int`, *optional*, defaults to 64): length cap of generated summaries.

    Evaluation: `squad` (span heads) post-processes the start/end logits of all windows of each question into an
    answer and reports `exact_match` and `f1`; it needs the `example_id`, `offset_mapping`, `context` and `answers`
    columns that `prepare_task` keeps on non-train splits, and lets a task with unanswerable questions (empty gold
    lists, SQuAD 2.0) predict the empty answer. `rouge` (seq2seq heads) reports `rouge1`, `rouge2` and
    `rougeL` of greedy generations, decoded with `processing_class`. Both are percentages. `seqeval` (token
    classification heads) reports entity `precision`, `recall` and `f1` when the head's `label_names` are BIO tags,
    and token `accuracy` always (fractions, as the other argmax metrics).

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
                pad_token_id=_pad_token_id(processing_class, model),
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
        if self.args.backbone_learning_rate is None:
            return optimizer
        backbone = {id(parameter) for parameter in self.model.backbone.parameters()}
        groups = []
        for group in optimizer.param_groups:
            heads = [parameter for parameter in group["params"] if id(parameter) not in backbone]
            body = [parameter for parameter in group["params"] if id(parameter) in backbone]
            groups += [{**group, "params": heads}] if heads else []
            groups += [{**group, "params": body, "lr": self.args.backbone_learning_rate}] if body else []
        # Before the first step the optimizer holds no state, so its groups can be rebuilt; the scheduler, made
        # next, scales each group's own peak rate.
        optimizer.param_groups = []
        for group in groups:
            optimizer.add_param_group(group)
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
        head_type = self.head_types[inputs["head"]]
        training = model.training
        use_r3f = training and self.args.r3f_lambda > 0 and head_type != "regression"

        if use_r3f:
            embeddings = token_embeddings(self.accelerator.unwrap_model(model))
            # Sampled before the forks, so both passes below draw the same dropout masks: the KL then measures the
            # effect of the embedding noise alone, and is exactly 0 at eps = 0.
            noise = sample_noise(
                inputs["input_ids"],
                embeddings.embedding_dim,
                self.args.r3f_eps,
                self.args.r3f_noise,
                embeddings.weight.dtype,
            )
            with fork_rng(inputs["input_ids"].device), capture_embeddings(embeddings) as clean:
                outputs = model(**inputs)
            # The noised pass reuses the clean pass's lookup, so the word-embedding gradient is built once.
            with embedding_noise(embeddings, clean[0], noise):
                noised = model(**inputs)
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
            divergence = r3f_divergence(head_type, outputs, noised, inputs)
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

    # ---- Evaluation ----

    def evaluate(
        self,
        eval_dataset: dict[str, datasets.Dataset] | str | None = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        """Evaluates every task on its own, reporting `<prefix>_<task>_loss` and `<prefix>_<task>_<metric>`.

        The loss is on the training objective's scale (1/log n: 1.0 is a uniform guess on every head). Span tasks
        add `exact_match` and `f1` (metric `squad`), seq2seq tasks `rouge1`, `rouge2` and `rougeL` (metric `rouge`).
        """
        if isinstance(eval_dataset, str):
            eval_dataset = {eval_dataset: self.eval_dataset[eval_dataset]}
        eval_dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if not isinstance(eval_dataset, dict):
            raise TypeError("MuppetTrainer.evaluate needs a dict of task name -> dataset (one head per task)")
        results = {}
        for task, dataset in eval_dataset.items():
            if task not in self.model.config.tasks:
                raise ValueError(f"evaluate: task {task!r} has no head in `model.config.tasks`")
            compute_metrics = self.compute_metrics
            self.compute_metrics = self._task_compute_metrics(task, dataset)
            self._nonfinite_eval_rows = None
            # The filter is off for training (it reads every sub-batch's loss on the host), but evaluation reads its
            # losses anyway: it keeps the loss of the finite rows, and `_nonfinite_eval_report` counts the others.
            nan_inf_filter, self.args.logging_nan_inf_filter = self.args.logging_nan_inf_filter, True
            try:
                results.update(
                    super().evaluate(MultiTaskDataset({task: dataset}), ignore_keys, f"{metric_key_prefix}_{task}")
                )
            finally:
                self.compute_metrics = compute_metrics
                self.args.logging_nan_inf_filter = nan_inf_filter
            results.update(self._nonfinite_eval_report(task, f"{metric_key_prefix}_{task}"))
        return results

    def _nonfinite_eval_report(self, task: str, prefix: str) -> dict[str, float]:
        """`{prefix}_nonfinite_rows` when some evaluation rows had a NaN/inf loss, which the Trainer's loss leaves out.

        `transformers` drops non-finite sub-batch losses from the evaluation loss (`logging_nan_inf_filter`), so the
        loss reported is that of the finite rows only; the count says how many rows it does not cover.
        """
        count = self._nonfinite_eval_rows
        if count is None:
            # Every process takes part in the reduction below, also one that evaluated no sub-batch.
            count = torch.zeros((), dtype=torch.long, device=self.args.device)
        if self.args.world_size > 1:
            count = self.accelerator.reduce(count, reduction="sum")
        count = int(count.item())
        if count == 0:
            return {}
        logger.warning(
            "evaluate: task %r, %d rows had a non-finite loss; `%s_loss` covers the other rows only",
            task,
            count,
            prefix,
        )
        return {f"{prefix}_nonfinite_rows": float(count)}

    def _metric_names(self, task: str) -> list[str]:
        head_type = self.head_types[self.model.config.tasks[task]]
        return list(self.task_metrics.get(task, DEFAULT_METRICS[head_type]))

    def _task_compute_metrics(self, task: str, dataset: datasets.Dataset) -> Callable | None:
        """The `compute_metrics` of one task's evaluation, or None when it reports its loss only."""
        head_type = self.head_types[self.model.config.tasks[task]]
        names = self._metric_names(task)
        if head_type == "token_classification" and "seqeval" in names:
            label_names = self.model.config.heads[self.model.config.tasks[task]].get("label_names")
            names = [name for name in names if name in SUPPORTED_METRICS]
            return partial(_tagging_of_prediction, label_names=label_names, metric_names=names)
        if head_type not in TEXT_METRICS:
            names = [name for name in names if name in SUPPORTED_METRICS]
            return partial(_metrics_of_prediction, metric_names=names) if names else None
        metric = TEXT_METRICS[head_type]
        if metric not in names:
            return None
        # A metric the task asked for must be computable; the head type's default is dropped quietly when not.
        asked = task in self.task_metrics
        if head_type == "span":
            columns = dataset.column_names if isinstance(dataset, datasets.Dataset) else []
            missing = [column for column in SPAN_SCORING_COLUMNS if column not in columns]
            if missing:
                if asked:
                    raise ValueError(
                        f"evaluate: task {task!r}, metric `squad` needs the columns {list(SPAN_SCORING_COLUMNS)} of "
                        f"a non-train split made by `prepare_task`; the evaluation dataset lacks {missing}"
                    )
                return None
            return partial(_squad_of_prediction, dataset=dataset.select_columns(list(SPAN_SCORING_COLUMNS)))
        if self.processing_class is None:
            if asked:
                raise ValueError(
                    f"evaluate: task {task!r}, metric `rouge` decodes generated summaries; give the trainer the "
                    "tokenizer as `processing_class`"
                )
            return None
        return partial(
            _rouge_of_prediction,
            tokenizer=self.processing_class,
            pad_token_id=_pad_token_id(self.processing_class, self.model),
        )

    def prediction_step(
        self, model: nn.Module, inputs: dict, prediction_loss_only: bool, ignore_keys: list[str] | None = None
    ) -> tuple[torch.Tensor | None, torch.Tensor | tuple[torch.Tensor, ...] | None, torch.Tensor | None]:
        """Loss, predictions and labels of one task's sub-batch.

        Predictions are class ids, regression values or token class ids, with the labels. Span heads return
        `(start_logits, end_logits)`, and as labels each window's row in its task's dataset (the gold answers are
        texts, read from the dataset when scoring). Seq2seq heads whose task reports `rouge` return greedy
        generations of the examples among the first `generation_max_examples` rows of the split (other rows are
        all -100), with the target ids as labels.
        """
        inputs = self._prepare_inputs(inputs)
        head_type = self.head_types[inputs["head"]]
        labels = inputs.get("labels")
        with torch.no_grad(), self.compute_loss_context_manager():
            loss, outputs = self.compute_loss(model, inputs, return_outputs=True)
        loss = loss.detach()
        # Counted on the device (no host sync per sub-batch); reported by `evaluate()` beside the task's loss.
        nonfinite = (~torch.isfinite(outputs.per_example_loss.detach())).sum()
        self._nonfinite_eval_rows = (
            nonfinite if self._nonfinite_eval_rows is None else self._nonfinite_eval_rows + nonfinite
        )
        if prediction_loss_only:
            return loss, None, None
        if head_type == "span":
            rows = inputs.get("example_indices")
            if rows is None:
                return loss, None, None
            return loss, (outputs.start_logits.detach(), outputs.end_logits.detach()), rows
        if head_type == "seq2seq":
            if "rouge" not in self._metric_names(inputs["task"]) or self.processing_class is None:
                return loss, None, None
            return loss, self._generate(model, inputs), labels
        if head_type == "regression":
            predictions = outputs.logits.view(-1)
        else:
            predictions = outputs.logits.argmax(dim=-1)
        return loss, predictions, labels

    def _generate(self, model: nn.Module, inputs: dict) -> torch.Tensor:
        """Greedy generations of the sub-batch's rows below `generation_max_examples`; other rows are all -100."""
        rows = inputs["example_indices"]
        chosen = torch.ones_like(rows, dtype=torch.bool)
        if self.generation_max_examples is not None:
            chosen = rows < self.generation_max_examples
        generated = torch.full((rows.shape[0], 1), IGNORE_INDEX, dtype=torch.long, device=rows.device)
        if not chosen.any():
            return generated
        attention_mask = inputs.get("attention_mask")
        summaries = self.accelerator.unwrap_model(model).generate(
            input_ids=inputs["input_ids"][chosen],
            attention_mask=attention_mask[chosen] if attention_mask is not None else None,
            max_new_tokens=self.generation_max_new_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=_pad_token_id(self.processing_class, self.model),
        )
        generated = generated.new_full((rows.shape[0], summaries.shape[1]), IGNORE_INDEX)
        generated[chosen] = summaries
        return generated

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

    # ---- Checkpoints ----

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


def _pad_token_id(tokenizer: PreTrainedTokenizerBase | None, model: MuppetForMultiTask) -> int:
    """The tokenizer's padding id, else the backbone's, else 0."""
    pad_token_id = tokenizer.pad_token_id if tokenizer is not None else None
    return pad_token_id if pad_token_id is not None else (model.config.base_model_config.pad_token_id or 0)


def _metrics_of_prediction(prediction: EvalPrediction, metric_names: list[str]) -> dict[str, float]:
    return compute_task_metrics(prediction.predictions, prediction.label_ids, metric_names)


def _tagging_of_prediction(
    prediction: EvalPrediction, label_names: list[str] | None, metric_names: list[str]
) -> dict[str, float]:
    """`seqeval` entity scores and token accuracy, plus any other argmax metric the task asked for."""
    predictions, labels = prediction.predictions, prediction.label_ids
    return {
        **compute_task_metrics(predictions, labels, metric_names),
        **tagging_scores(predictions, labels, label_names),
    }


def _squad_of_prediction(prediction: EvalPrediction, dataset: datasets.Dataset) -> dict[str, float]:
    """SQuAD exact match and F1 of a span task, from the start/end logits of its windows (rows of `dataset`)."""
    start_logits, end_logits = prediction.predictions
    # Rows come from every process, padded with -100 to the longest window; a row may repeat where the last batch
    # was evened out across processes.
    rows, first = np.unique(np.asarray(prediction.label_ids).reshape(-1), return_index=True)
    windows = dataset[rows.tolist()]
    contexts, answers = {}, {}
    for example_id, context, gold in zip(windows["example_id"], windows["context"], windows["answers"], strict=True):
        contexts[example_id], answers[example_id] = context, gold["text"]
    predicted = postprocess_span_predictions(
        start_logits[first],
        end_logits[first],
        windows["example_id"],
        windows["offset_mapping"],
        contexts,
        # Tasks with unanswerable questions (SQuAD 2.0) may predict the empty answer.
        null_answers=any(not texts for texts in answers.values()),
    )
    return squad_scores([predicted[example_id] for example_id in answers], list(answers.values()))


def _rouge_of_prediction(
    prediction: EvalPrediction, tokenizer: PreTrainedTokenizerBase, pad_token_id: int
) -> dict[str, float]:
    """ROUGE of the generated summaries against the targets; rows that were not generated (all -100) are skipped."""
    generated = np.asarray(prediction.predictions)
    targets = np.asarray(prediction.label_ids)
    chosen = (generated != IGNORE_INDEX).any(axis=-1)
    if not chosen.any():
        return {}
    generated = np.where(generated[chosen] == IGNORE_INDEX, pad_token_id, generated[chosen])
    targets = np.where(targets[chosen] == IGNORE_INDEX, pad_token_id, targets[chosen])
    summaries = tokenizer.batch_decode(generated.tolist(), skip_special_tokens=True)
    references = tokenizer.batch_decode(targets.tolist(), skip_special_tokens=True)
    return rouge_scores(summaries, references, use_stemmer=ROUGE_USE_STEMMER)


__all__ = [
    "HeadWarmupCallback",
    "MuppetTrainer",
    "NonFiniteLossCallback",
    "NonFiniteLossError",
    "compute_task_metrics",
]
