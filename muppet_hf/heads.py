"""Task heads of [`MuppetForMultiTask`]: one class per head type, each owning its behaviour end to end.

As each `RobertaForX` of transformers owns its loss, a Muppet head type is one [`MuppetHead`] subclass registered
under its name ([`register_head_type`]). The class knows

- its inputs: the target columns a sub-batch carries and how they are padded (`target_columns`), whether each
  example holds several sequences (`per_choice`), and the columns its evaluation reads (`scoring_columns`);
- its forward pass, its loss per example and `num_outputs`, the n of the 1/log n scaling (paper §3.3);
- the output distributions R3F compares (`compared_logits`, arXiv 2008.03156);
- what evaluation gathers of a sub-batch (`eval_predictions`) and how it is scored (`metric_function`); the metric
  maths live in `muppet_hf.metrics`.

`MuppetForMultiTask.forward`, [`MuppetDataCollator`], R3F and [`MuppetTrainer`]'s evaluation ask the head class;
none of them names a head type. The module names of each head are state-dict keys (`heads.<name>.out_proj.weight`),
so they never change.

This file ships with remote-code exports (`modeling_muppet.py` imports it), so it imports nothing that inference
does not need: the metrics module is imported on first use.
"""

import importlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm
from transformers import PreTrainedConfig
from transformers.utils import ModelOutput

from .losses import (
    IGNORE_INDEX,
    cross_entropy_per_example,
    mse_per_example,
    span_loss_per_example,
    token_cross_entropy_per_example,
)


@dataclass
class MuppetMultiTaskOutput(ModelOutput):
    r"""
    Output of [`MuppetForMultiTask`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned when labels are given):
            Mean of `per_example_loss`, unscaled.
        per_example_loss (`torch.FloatTensor` of shape `(batch_size,)`, *optional*, returned when labels are given):
            One loss per example, before the 1/log n scaling that [`MuppetTrainer`] applies.
        num_outputs (`torch.FloatTensor` of shape `(batch_size,)`, *optional*, returned when labels are given):
            n per example: the number of classes, valid choices, valid positions or vocabulary entries its head
            predicts over (1 for regression).
        logits (`torch.FloatTensor`):
            `(batch_size, num_labels)` for classification and regression, `(batch_size, num_choices)` for
            multiple choice, `(batch_size, sequence_length, num_labels)` for tagging and
            `(batch_size, target_length, vocab_size)` for seq2seq. `None` for span heads.
        start_logits, end_logits (`torch.FloatTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Span-start and span-end scores of extractive MRC heads; padding positions hold the dtype's minimum.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            The backbone's (encoder's) hidden states, when `output_hidden_states=True`.
        attentions (`tuple(torch.FloatTensor)`, *optional*):
            The backbone's (encoder's) attention weights, when `output_attentions=True`.
    """

    loss: torch.FloatTensor | None = None
    per_example_loss: torch.FloatTensor | None = None
    num_outputs: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    start_logits: torch.FloatTensor | None = None
    end_logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass(frozen=True)
class Target:
    """A target column of a sub-batch: its dtype, and whether it holds one value per token (padded) or per example.

    Per-token targets are padded with the collator's `label_pad_token_id` (-100, ignored by the loss).
    """

    dtype: torch.dtype = torch.long
    per_token: bool = False


@dataclass
class TaskEvaluation:
    """What a head's `metric_function` needs to score one task's evaluation split.

    Args:
        task (`str`): the task name, for error messages.
        metric_names (`list[str]`): the metrics to report (the task's own, else the head's `default_metrics`).
        asked (`bool`): whether the task named them; a metric the task asked for must be computable, a head's
            default is dropped quietly when it is not.
        dataset: the task's evaluation rows (a `datasets.Dataset` for the scoring columns of span tasks).
        columns (`list[str]`): the columns of `dataset`, empty when it is no `datasets.Dataset`.
        label_names (`list[str]`, *optional*): the head's label names (`MuppetConfig.heads[...]["label_names"]`).
        tokenizer (*optional*): decodes generated text (seq2seq).
        pad_token_id (`int`, *optional*, defaults to 0): replaces -100 before decoding.
    """

    task: str
    metric_names: list[str]
    asked: bool
    dataset: Any = None
    columns: list[str] = field(default_factory=list)
    label_names: list[str] | None = None
    tokenizer: Any = None
    pad_token_id: int = 0


def _metrics():
    """`muppet_hf.metrics`, imported on first use: remote-code exports ship this file without it (see module doc)."""
    return importlib.import_module(".metrics", __package__)


def _projection(in_features: int, out_features: int, use_spectral_norm: bool) -> nn.Linear:
    linear = nn.Linear(in_features, out_features)
    # R4F (arXiv 2008.03156 §3.2) bounds each head's Lipschitz constant with spectral normalisation.
    return spectral_norm(linear) if use_spectral_norm else linear


def _pool(hidden_states: torch.Tensor, attention_mask: torch.Tensor | None, pooling: str) -> torch.Tensor:
    if pooling == "first":
        return hidden_states[:, 0]
    if attention_mask is None:
        return hidden_states.mean(dim=1)
    mask = attention_mask.unsqueeze(-1).to(hidden_states.dtype)
    return (hidden_states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def _labelled_tokens(outputs: MuppetMultiTaskOutput, inputs: dict) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """The per-token distributions of the labelled positions (tagging and seq2seq compare only those under R3F)."""
    labels = inputs.get("labels")
    return [(outputs.logits, labels != IGNORE_INDEX if labels is not None else None)]


def _majority_share(labels: Any) -> float | None:
    """The most frequent label's share of `labels`, ignored positions (-100) left out; `None` if none is labelled."""
    counts = Counter(label for label in labels if label != IGNORE_INDEX)
    return max(counts.values()) / sum(counts.values()) if counts else None


class MuppetHead(nn.Module):
    """Base class of the heads of [`MuppetForMultiTask`]; a subclass per head type, registered by name.

    The class attributes describe the head type; the methods run it. Subclasses set `head_type` and override what
    differs: an encoder head implements `predict` and `per_example_loss_of`/`num_outputs_of`; a head that runs the
    backbone its own way (seq2seq) overrides `forward`.

    `forward(model, inputs)` receives the [`MuppetForMultiTask`] it belongs to (its encoder: `model.encode`) and the
    keyword arguments of `MuppetForMultiTask.forward` as a dict.

    Args:
        config ([`MuppetConfig`]): the model's config (hidden size, dropout, spectral norm, ...).
        spec (`dict`): the head's entry in `MuppetConfig.heads`, validated (`type`, `num_labels`, `label_names`).
    """

    # ---- The head type, as `MuppetConfig.heads` declares it ----
    #: Registry key and the `type` field of a head spec.
    head_type: ClassVar[str]
    #: Whether the spec gives the output size (`num_labels` / `label_names`); other heads score choices or positions.
    takes_num_labels: ClassVar[bool] = False
    #: The only `num_labels` the type allows (regression: 1), filled in when the spec leaves it out.
    fixed_num_labels: ClassVar[int | None] = None
    #: Whether the head generates with the backbone's decoder.
    needs_encoder_decoder: ClassVar[bool] = False

    # ---- Inputs: what the collator pads, what evaluation reads ----
    #: Target columns of a sub-batch (model keyword arguments) and how each is collated.
    target_columns: ClassVar[dict[str, Target]] = {"labels": Target()}
    #: Whether each example holds one sequence per choice, `(choices, length)`: padded to 3-D, with a `choice_mask`.
    per_choice: ClassVar[bool] = False
    #: Columns of a non-train split that scoring reads besides the model inputs (kept by `prepare_task`).
    scoring_columns: ClassVar[tuple[str, ...]] = ()

    # ---- Training and evaluation ----
    #: Whether the head predicts a distribution that R3F can compare (regression does not).
    compares_distributions: ClassVar[bool] = True
    #: Metrics reported when a task names none.
    default_metrics: ClassVar[tuple[str, ...]] = ("accuracy",)
    #: The metric computed from decoded text (answers, summaries), which reports keys of its own; else `None`.
    decoded_metric: ClassVar[str | None] = None
    #: Whether its scores are percentages already (SQuAD, ROUGE) rather than fractions.
    percent_scores: ClassVar[bool] = False
    #: The score that judges a fine-tuned model on a held-out task (the key `MuppetTrainer.evaluate` reports, higher
    #: is better), or `None` where the fine-tuning protocol has none (`muppet_hf.finetuning`).
    held_out_metric: ClassVar[str | None] = None

    def __init__(self, config: PreTrainedConfig, spec: dict):
        super().__init__()
        self.num_labels = spec.get("num_labels")

    # ---- Forward and loss ----

    def forward(self, model: nn.Module, inputs: dict) -> MuppetMultiTaskOutput:
        """Runs `model`'s encoder and this head on the keyword arguments of [`MuppetForMultiTask.forward`].

        The loss comes back only when the targets are given.
        """
        encoded = self.encode(model, inputs)
        outputs = self.predict(encoded.last_hidden_state, inputs, model.config.pooling)
        outputs.hidden_states, outputs.attentions = encoded.hidden_states, encoded.attentions
        return self.with_loss(outputs, inputs)

    def encode(self, model: nn.Module, inputs: dict):
        """The encoder's output for the sub-batch (`model.encode`); multiple choice flattens its choices first."""
        return model.encode(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            token_type_ids=inputs["token_type_ids"],
            inputs_embeds=inputs["inputs_embeds"],
            output_hidden_states=inputs["output_hidden_states"],
            output_attentions=inputs["output_attentions"],
        )

    def predict(self, sequence_output: torch.Tensor, inputs: dict, pooling: str) -> MuppetMultiTaskOutput:
        """The head's scores over the encoder's last hidden states."""
        raise NotImplementedError(f"{type(self).__name__} must implement `predict` or `forward`")

    def with_loss(self, outputs: MuppetMultiTaskOutput, inputs: dict) -> MuppetMultiTaskOutput:
        """Adds `per_example_loss`, `num_outputs` and `loss` to `outputs` when the sub-batch has its targets."""
        per_example = self.per_example_loss_of(outputs, inputs)
        if per_example is not None:
            outputs.per_example_loss = per_example
            outputs.num_outputs = self.num_outputs_of(outputs, inputs).to(per_example.dtype)
            outputs.loss = per_example.mean()
        return outputs

    def per_example_loss_of(self, outputs: MuppetMultiTaskOutput, inputs: dict) -> torch.Tensor | None:
        """One loss per example (a pure function of `muppet_hf.losses`), or `None` without targets."""
        if inputs["labels"] is None:
            return None
        return cross_entropy_per_example(outputs.logits, inputs["labels"])

    def num_outputs_of(self, outputs: MuppetMultiTaskOutput, inputs: dict) -> torch.Tensor:
        """n per example, the number of outputs the head predicts over: the trainer divides each loss by log n."""
        batch_size = outputs.logits.shape[0]
        return torch.full((batch_size,), float(self.num_labels), device=outputs.logits.device)

    # ---- R3F ----

    @classmethod
    def compared_logits(cls, outputs: MuppetMultiTaskOutput, inputs: dict) -> list[tuple[torch.Tensor, Any]]:
        """The distributions R3F compares between the clean and the noised pass, each with its mask (or `None`)."""
        return [(outputs.logits, None)]

    # ---- Evaluation ----

    @classmethod
    def eval_predictions(
        cls, outputs: MuppetMultiTaskOutput, inputs: dict, generate: Callable[[], torch.Tensor]
    ) -> tuple[Any, torch.Tensor | None] | None:
        """What evaluation gathers of one sub-batch, `(predictions, label_ids)`; `None` to keep its loss only.

        `generate` produces greedy generations of the sub-batch (heads that score generated text call it).
        """
        return outputs.logits.argmax(dim=-1), inputs.get("labels")

    @classmethod
    def guess_score(cls, dataset: Any) -> float | None:
        """The accuracy of a guess that ignores the input on a tokenized split, the floor a model must clear; `None`
        where the head type has no such floor (span F1, ROUGE, correlations)."""
        return None

    @classmethod
    def metric_function(cls, evaluation: TaskEvaluation) -> Callable | None:
        """The `compute_metrics` of a task's evaluation (an `EvalPrediction` -> scores), or `None` for loss only."""
        metrics = _metrics()
        names = [name for name in evaluation.metric_names if name in metrics.SUPPORTED_METRICS]
        return partial(metrics.scores_of_prediction, metric_names=names) if names else None


class MuppetClassificationHead(MuppetHead):
    """Sentence-level head (dense, tanh, projection) over the pooled encoder state, as RoBERTa's classifier."""

    head_type = "classification"
    takes_num_labels = True
    held_out_metric = "accuracy"

    def __init__(self, config: PreTrainedConfig, spec: dict):
        super().__init__(config, spec)
        self.dense = _projection(config.hidden_size, config.hidden_size, config.spectral_norm)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.out_proj = _projection(config.hidden_size, self.num_labels, config.spectral_norm)

    def score(self, pooled: torch.Tensor) -> torch.Tensor:
        x = self.dropout(pooled)
        x = torch.tanh(self.dense(x))
        return self.out_proj(self.dropout(x))

    def predict(self, sequence_output: torch.Tensor, inputs: dict, pooling: str) -> MuppetMultiTaskOutput:
        return MuppetMultiTaskOutput(logits=self.score(_pool(sequence_output, inputs["attention_mask"], pooling)))

    @classmethod
    def guess_score(cls, dataset: Any) -> float | None:
        # The majority class's share of the labels.
        return _majority_share(dataset["labels"])


class MuppetRegressionHead(MuppetClassificationHead):
    """The classification head with one output, float targets and a squared-error loss (STS-B); n = 1 (unscaled)."""

    head_type = "regression"
    fixed_num_labels = 1
    target_columns = {"labels": Target(torch.float)}
    compares_distributions = False
    default_metrics = ("pearson", "spearman")
    held_out_metric = None

    @classmethod
    def guess_score(cls, dataset: Any) -> float | None:
        return None

    def per_example_loss_of(self, outputs: MuppetMultiTaskOutput, inputs: dict) -> torch.Tensor | None:
        if inputs["labels"] is None:
            return None
        return mse_per_example(outputs.logits, inputs["labels"])

    @classmethod
    def eval_predictions(
        cls, outputs: MuppetMultiTaskOutput, inputs: dict, generate: Callable[[], torch.Tensor]
    ) -> tuple[Any, torch.Tensor | None] | None:
        return outputs.logits.view(-1), inputs.get("labels")


class MuppetMultipleChoiceHead(MuppetClassificationHead):
    """Sentence-ranking head: scores each `context + choice` encoding with one output; softmax over choices.

    Muppet shares one such head across every commonsense dataset whatever its number of choices (paper §3.2).
    """

    head_type = "multiple_choice"
    takes_num_labels = False
    per_choice = True

    def __init__(self, config: PreTrainedConfig, spec: dict):
        # One score per choice; the number of choices varies by example, and `num_outputs_of` reads it.
        super().__init__(config, {**spec, "num_labels": 1})

    def encode(self, model: nn.Module, inputs: dict):
        # Encode every choice as its own sequence: [batch, choices, length] -> [batch * choices, length].
        flat = {
            key: inputs[key].flatten(0, 1) if inputs[key] is not None else None
            for key in ("input_ids", "attention_mask", "token_type_ids", "inputs_embeds")
        }
        return super().encode(model, {**inputs, **flat})

    def predict(self, sequence_output: torch.Tensor, inputs: dict, pooling: str) -> MuppetMultiTaskOutput:
        leading = inputs["input_ids"] if inputs["input_ids"] is not None else inputs["inputs_embeds"]
        attention_mask = inputs["attention_mask"].flatten(0, 1) if inputs["attention_mask"] is not None else None
        scores = self.score(_pool(sequence_output, attention_mask, pooling)).view(leading.shape[:2])
        choice_mask = inputs["choice_mask"]
        if choice_mask is None:
            choice_mask = torch.ones_like(scores, dtype=torch.bool)
        return MuppetMultiTaskOutput(logits=scores.masked_fill(~choice_mask.bool(), torch.finfo(scores.dtype).min))

    @classmethod
    def guess_score(cls, dataset: Any) -> float | None:
        # A uniform guess over each question's own choices.
        return sum(1 / len(choices) for choices in dataset["input_ids"]) / len(dataset)

    def num_outputs_of(self, outputs: MuppetMultiTaskOutput, inputs: dict) -> torch.Tensor:
        if inputs["choice_mask"] is None:
            return torch.full(outputs.logits.shape[:1], float(outputs.logits.shape[1]), device=outputs.logits.device)
        return inputs["choice_mask"].sum(dim=-1)


class MuppetSpanHead(MuppetHead):
    """Extractive MRC head: a start and an end score per token, shared across MRC datasets (paper §3.2)."""

    head_type = "span"
    target_columns = {"start_positions": Target(), "end_positions": Target()}
    scoring_columns = ("example_id", "offset_mapping", "context", "answers")
    default_metrics = ("squad",)
    decoded_metric = "squad"
    percent_scores = True
    held_out_metric = "f1"

    def __init__(self, config: PreTrainedConfig, spec: dict):
        super().__init__(config, spec)
        self.qa_outputs = _projection(config.hidden_size, 2, config.spectral_norm)

    def predict(self, sequence_output: torch.Tensor, inputs: dict, pooling: str) -> MuppetMultiTaskOutput:
        start_logits, end_logits = (logits.squeeze(-1) for logits in self.qa_outputs(sequence_output).split(1, dim=-1))
        if inputs["attention_mask"] is not None:
            padding = inputs["attention_mask"] == 0
            start_logits = start_logits.masked_fill(padding, torch.finfo(start_logits.dtype).min)
            end_logits = end_logits.masked_fill(padding, torch.finfo(end_logits.dtype).min)
        return MuppetMultiTaskOutput(start_logits=start_logits, end_logits=end_logits)

    def per_example_loss_of(self, outputs: MuppetMultiTaskOutput, inputs: dict) -> torch.Tensor | None:
        if inputs["start_positions"] is None or inputs["end_positions"] is None:
            return None
        return span_loss_per_example(
            outputs.start_logits, outputs.end_logits, inputs["start_positions"], inputs["end_positions"]
        )

    def num_outputs_of(self, outputs: MuppetMultiTaskOutput, inputs: dict) -> torch.Tensor:
        # The number of positions is each example's unpadded length.
        batch_size, length = outputs.start_logits.shape
        attention_mask = inputs["attention_mask"]
        positions = attention_mask.sum(dim=-1) if attention_mask is not None else length
        return torch.as_tensor(positions, device=outputs.start_logits.device).expand(batch_size)

    @classmethod
    def compared_logits(cls, outputs: MuppetMultiTaskOutput, inputs: dict) -> list[tuple[torch.Tensor, Any]]:
        return [(outputs.start_logits, None), (outputs.end_logits, None)]

    @classmethod
    def eval_predictions(
        cls, outputs: MuppetMultiTaskOutput, inputs: dict, generate: Callable[[], torch.Tensor]
    ) -> tuple[Any, torch.Tensor | None] | None:
        # Labels are each window's row in its task's dataset: the gold answers are texts, read from the dataset.
        rows = inputs.get("example_indices")
        if rows is None:
            return None
        return (outputs.start_logits.detach(), outputs.end_logits.detach()), rows

    @classmethod
    def metric_function(cls, evaluation: TaskEvaluation) -> Callable | None:
        if cls.decoded_metric not in evaluation.metric_names:
            return None
        missing = [column for column in cls.scoring_columns if column not in evaluation.columns]
        if missing:
            if evaluation.asked:
                raise ValueError(
                    f"evaluate: task {evaluation.task!r}, metric `squad` needs the columns {list(cls.scoring_columns)} "
                    f"of a non-train split made by `prepare_task`; the evaluation dataset lacks {missing}"
                )
            return None
        dataset = evaluation.dataset.select_columns(list(cls.scoring_columns))
        return partial(_metrics().squad_of_prediction, dataset=dataset)


class MuppetTokenClassificationHead(MuppetHead):
    """Tagging head: one label distribution per token."""

    head_type = "token_classification"
    takes_num_labels = True
    target_columns = {"labels": Target(per_token=True)}
    # Entity precision/recall/F1 and token accuracy (`muppet_hf.metrics.tagging_scores`).
    default_metrics = ("seqeval",)
    # Token accuracy counts every word's first piece (the other pieces are -100).
    held_out_metric = "accuracy"

    def __init__(self, config: PreTrainedConfig, spec: dict):
        super().__init__(config, spec)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = _projection(config.hidden_size, self.num_labels, config.spectral_norm)

    def predict(self, sequence_output: torch.Tensor, inputs: dict, pooling: str) -> MuppetMultiTaskOutput:
        return MuppetMultiTaskOutput(logits=self.classifier(self.dropout(sequence_output)))

    def per_example_loss_of(self, outputs: MuppetMultiTaskOutput, inputs: dict) -> torch.Tensor | None:
        if inputs["labels"] is None:
            return None
        return token_cross_entropy_per_example(outputs.logits, inputs["labels"])

    @classmethod
    def guess_score(cls, dataset: Any) -> float | None:
        # The most frequent tag's share of the labelled tokens.
        return _majority_share([tag for row in dataset["labels"] for tag in row])

    @classmethod
    def compared_logits(cls, outputs: MuppetMultiTaskOutput, inputs: dict) -> list[tuple[torch.Tensor, Any]]:
        return _labelled_tokens(outputs, inputs)

    @classmethod
    def metric_function(cls, evaluation: TaskEvaluation) -> Callable | None:
        if "seqeval" not in evaluation.metric_names:
            return super().metric_function(evaluation)
        metrics = _metrics()
        names = [name for name in evaluation.metric_names if name in metrics.SUPPORTED_METRICS]
        return partial(metrics.tagging_of_prediction, label_names=evaluation.label_names, metric_names=names)


class MuppetSeq2SeqHead(MuppetHead):
    """Generation head of encoder-decoder backbones.

    The decoder and LM head belong to the backbone (so its exported checkpoint stays a complete seq2seq model);
    this module holds no weights and only records what the loss needs: the vocabulary size (the n of 1/log n) and
    the label smoothing.
    """

    head_type = "seq2seq"
    needs_encoder_decoder = True
    target_columns = {"labels": Target(per_token=True)}
    default_metrics = ("rouge",)
    decoded_metric = "rouge"
    percent_scores = True

    def __init__(self, config: PreTrainedConfig, spec: dict):
        super().__init__(config, spec)
        self.vocab_size = config.vocab_size
        self.label_smoothing = config.label_smoothing

    def forward(self, model: nn.Module, inputs: dict) -> MuppetMultiTaskOutput:
        labels, decoder_input_ids = inputs["labels"], inputs["decoder_input_ids"]
        if decoder_input_ids is None:
            if labels is None:
                raise ValueError("the seq2seq head needs `labels` or `decoder_input_ids`")
            decoder_input_ids = model.backbone.prepare_decoder_input_ids_from_labels(labels=labels)
        seq2seq_outputs = model.backbone(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            inputs_embeds=inputs["inputs_embeds"],
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=inputs["decoder_attention_mask"],
            return_dict=True,
        )
        return self.with_loss(MuppetMultiTaskOutput(logits=seq2seq_outputs.logits), inputs)

    def per_example_loss_of(self, outputs: MuppetMultiTaskOutput, inputs: dict) -> torch.Tensor | None:
        if inputs["labels"] is None:
            return None
        return token_cross_entropy_per_example(outputs.logits, inputs["labels"], label_smoothing=self.label_smoothing)

    def num_outputs_of(self, outputs: MuppetMultiTaskOutput, inputs: dict) -> torch.Tensor:
        return torch.full(outputs.logits.shape[:1], float(self.vocab_size), device=outputs.logits.device)

    @classmethod
    def compared_logits(cls, outputs: MuppetMultiTaskOutput, inputs: dict) -> list[tuple[torch.Tensor, Any]]:
        return _labelled_tokens(outputs, inputs)

    @classmethod
    def eval_predictions(
        cls, outputs: MuppetMultiTaskOutput, inputs: dict, generate: Callable[[], torch.Tensor]
    ) -> tuple[Any, torch.Tensor | None] | None:
        return generate(), inputs.get("labels")

    @classmethod
    def metric_function(cls, evaluation: TaskEvaluation) -> Callable | None:
        if cls.decoded_metric not in evaluation.metric_names:
            return None
        if evaluation.tokenizer is None:
            if evaluation.asked:
                raise ValueError(
                    f"evaluate: task {evaluation.task!r}, metric `rouge` decodes generated summaries; give the "
                    "trainer the tokenizer as `processing_class`"
                )
            return None
        return partial(
            _metrics().rouge_of_prediction, tokenizer=evaluation.tokenizer, pad_token_id=evaluation.pad_token_id
        )


HEAD_CLASSES: dict[str, type[MuppetHead]] = {}


def register_head_type(head_class: type[MuppetHead]) -> type[MuppetHead]:
    """Registers a head type under `head_class.head_type`, so head specs, the model and the trainer accept it.

    Usable as a class decorator. Registering a name twice replaces the earlier class (e.g. a test re-run).
    """
    if not (isinstance(head_class, type) and issubclass(head_class, MuppetHead)):
        raise TypeError(f"register_head_type: {head_class!r} is not a MuppetHead subclass")
    HEAD_CLASSES[head_class.head_type] = head_class
    return head_class


for _head_class in (
    MuppetClassificationHead,
    MuppetRegressionHead,
    MuppetMultipleChoiceHead,
    MuppetSpanHead,
    MuppetTokenClassificationHead,
    MuppetSeq2SeqHead,
):
    register_head_type(_head_class)


def head_class(head_type: str) -> type[MuppetHead]:
    """The class registered for `head_type`; `ValueError` naming the known types otherwise."""
    if head_type not in HEAD_CLASSES:
        raise ValueError(f"unknown head type {head_type!r}; registered types are {sorted(HEAD_CLASSES)}")
    return HEAD_CLASSES[head_type]


def build_head(config: PreTrainedConfig, spec: dict) -> MuppetHead:
    """A freshly initialised head of `spec["type"]` (an entry of `MuppetConfig.heads`)."""
    return head_class(spec["type"])(config, spec)


__all__ = [
    "HEAD_CLASSES",
    "MuppetClassificationHead",
    "MuppetHead",
    "MuppetMultiTaskOutput",
    "MuppetMultipleChoiceHead",
    "MuppetRegressionHead",
    "MuppetSeq2SeqHead",
    "MuppetSpanHead",
    "MuppetTokenClassificationHead",
    "TaskEvaluation",
    "Target",
    "build_head",
    "head_class",
    "register_head_type",
]
