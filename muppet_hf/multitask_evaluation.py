"""Per-task evaluation of [`MuppetTrainer`]: each task on its own, through its head.

`evaluate()` runs the Trainer's evaluation loop once per task and reports `<prefix>_<task>_loss` and
`<prefix>_<task>_<metric>`. What a sub-batch contributes and how the task is scored are its head's
(`MuppetHead.eval_predictions` and `MuppetHead.metric_function`, `muppet_hf.heads`):

- argmax heads (classification, multiple choice, regression values) report scikit-learn/scipy metrics, as fractions;
- `squad` (span heads) post-processes the start/end logits of all windows of each question into an answer and
  reports `exact_match` and `f1`; it needs the `example_id`, `offset_mapping`, `context` and `answers` columns that
  `prepare_task` keeps on non-train splits, and lets a task with unanswerable questions (empty gold lists, SQuAD 2.0)
  predict the empty answer;
- `rouge` (seq2seq heads) reports `rouge1`, `rouge2` and `rougeL` of greedy generations, decoded with
  `processing_class`. SQuAD and ROUGE are percentages;
- `seqeval` (token classification heads) reports entity `precision`, `recall` and `f1` when the head's
  `label_names` are BIO tags, and token `accuracy` always (fractions, as the other argmax metrics).
"""

import logging
from collections.abc import Callable
from functools import partial

import datasets
import torch
from torch import nn

from .collator import pad_token_id_of
from .heads import MuppetHead, TaskEvaluation, head_class
from .losses import IGNORE_INDEX
from .sampling import MultiTaskDataset


logger = logging.getLogger(__name__)


class MultiTaskEvaluationMixin:
    """The `Trainer` overrides of per-task evaluation, mixed into [`MuppetTrainer`] (before `Trainer`).

    Reads what `MuppetTrainer.__init__` sets: `head_types` (head name -> type), `task_metrics`,
    `generation_max_examples`, `generation_max_new_tokens` and `_nonfinite_eval_rows`.
    """

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
        return list(self.task_metrics.get(task, self._head_of(task).default_metrics))

    def _head_of(self, task: str) -> type[MuppetHead]:
        """The class of the task's head, which decides what evaluating the task gathers and reports."""
        return head_class(self.head_types[self.model.config.tasks[task]])

    def _task_compute_metrics(self, task: str, dataset: datasets.Dataset) -> Callable | None:
        """The `compute_metrics` of one task's evaluation (the head's `metric_function`), or None for loss only."""
        evaluation = TaskEvaluation(
            task=task,
            metric_names=self._metric_names(task),
            asked=task in self.task_metrics,
            dataset=dataset,
            columns=dataset.column_names if isinstance(dataset, datasets.Dataset) else [],
            label_names=self.model.config.heads[self.model.config.tasks[task]].get("label_names"),
            tokenizer=self.processing_class,
            pad_token_id=pad_token_id_of(self.processing_class, self.model),
        )
        return self._head_of(task).metric_function(evaluation)

    def prediction_step(
        self, model: nn.Module, inputs: dict, prediction_loss_only: bool, ignore_keys: list[str] | None = None
    ) -> tuple[torch.Tensor | None, torch.Tensor | tuple[torch.Tensor, ...] | None, torch.Tensor | None]:
        """Loss, predictions and labels of one task's sub-batch; predictions only when the task computes metrics.

        What is gathered is the head's (`MuppetHead.eval_predictions`): class ids, regression values or token class
        ids, with the labels. Span heads return `(start_logits, end_logits)`, and as labels each window's row in its
        task's dataset (the gold answers are texts, read from the dataset when scoring). Seq2seq heads return greedy
        generations of the examples among the first `generation_max_examples` rows of the split (other rows are
        all -100), with the target ids as labels.
        """
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss, outputs = self.compute_loss(model, inputs, return_outputs=True)
        loss = loss.detach()
        # Counted on the device (no host sync per sub-batch); reported by `evaluate()` beside the task's loss.
        nonfinite = (~torch.isfinite(outputs.per_example_loss.detach())).sum()
        self._nonfinite_eval_rows = (
            nonfinite if self._nonfinite_eval_rows is None else self._nonfinite_eval_rows + nonfinite
        )
        if prediction_loss_only or self.compute_metrics is None:
            return loss, None, None
        gathered = self._head_of(inputs["task"]).eval_predictions(
            outputs, inputs, partial(self._generate, model, inputs)
        )
        return (loss, None, None) if gathered is None else (loss, *gathered)

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
            head=self.model.config.tasks[inputs["task"]],
            input_ids=inputs["input_ids"][chosen],
            attention_mask=attention_mask[chosen] if attention_mask is not None else None,
            max_new_tokens=self.generation_max_new_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=pad_token_id_of(self.processing_class, self.model),
        )
        generated = generated.new_full((rows.shape[0], summaries.shape[1]), IGNORE_INDEX)
        generated[chosen] = summaries
        return generated


__all__ = ["MultiTaskEvaluationMixin"]
