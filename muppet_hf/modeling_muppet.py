"""Muppet multi-task model: one pretrained backbone and a dictionary of task heads (arXiv 2101.11038)."""

import importlib
import json
import logging
import os

import torch
from torch import nn
from torch.nn.utils import parametrize
from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput
from transformers.utils import cached_file

from .configuration_muppet import MuppetConfig, validate_head
from .heads import (
    MuppetClassificationHead,
    MuppetMultipleChoiceHead,
    MuppetMultiTaskOutput,
    MuppetRegressionHead,
    MuppetSeq2SeqHead,
    MuppetSpanHead,
    MuppetTokenClassificationHead,
    build_head,
)


logger = logging.getLogger(__name__)

# A sentence-transformers folder lists its modules in `modules.json`; its Pooling module's config names the mode.
SENTENCE_TRANSFORMERS_MODULES = "modules.json"
SENTENCE_TRANSFORMERS_POOLING = "sentence_transformers.models.Pooling"
# The pooling modes a Muppet head can read, by the sentence-transformers flag that declares them.
DECLARED_POOLING = {"pooling_mode_cls_token": "first", "pooling_mode_mean_tokens": "mean"}


def declared_pooling(pretrained_model_name_or_path: str | os.PathLike, **hub_kwargs) -> str | None:
    """The pooling a sentence-transformers backbone was trained with (`"first"` or `"mean"`), else `None`.

    Reads `modules.json` and the Pooling module's `config.json` (usually `1_Pooling/config.json`). A plain model
    folder declares nothing; neither does a mode Muppet heads cannot read (max, weighted mean), which is logged.

    Args:
        pretrained_model_name_or_path (`str` or `os.PathLike`): Hub id or local folder of the backbone.
        hub_kwargs: `revision`, `cache_dir`, `token`, `local_files_only`, passed to the download.
    """
    lookup = {**hub_kwargs, "_raise_exceptions_for_missing_entries": False}
    modules_file = cached_file(pretrained_model_name_or_path, SENTENCE_TRANSFORMERS_MODULES, **lookup)
    if modules_file is None:
        return None
    with open(modules_file, encoding="utf-8") as handle:
        modules = json.load(handle)
    paths = [module["path"] for module in modules if module.get("type") == SENTENCE_TRANSFORMERS_POOLING]
    if not paths:
        return None
    pooling_file = cached_file(pretrained_model_name_or_path, f"{paths[0]}/config.json", **lookup)
    if pooling_file is None:
        return None
    with open(pooling_file, encoding="utf-8") as handle:
        pooling = json.load(handle)
    modes = [mode for flag, mode in DECLARED_POOLING.items() if pooling.get(flag)]
    if len(modes) != 1:
        logger.warning(
            "%s: %s/config.json declares pooling %s, which Muppet heads cannot read; using the default",
            pretrained_model_name_or_path,
            paths[0],
            {key: value for key, value in pooling.items() if key.startswith("pooling_mode") and value},
        )
        return None
    return modes[0]


def _lora_module():
    """`muppet_hf.lora`, imported on first use: it imports this module, and only models with adapters need peft.

    Not a `from .lora import` statement: a remote-code export ships the files this module imports relatively, and
    LoRA (peft, the exporter) is not among them; models with adapters are never exported as remote code.
    """
    return importlib.import_module(".lora", __package__)


def _build_backbone(base_model_config) -> PreTrainedModel:
    # Encoder-decoder backbones keep their LM head so the `seq2seq` head can generate and the exported
    # backbone is a complete `AutoModelForSeq2SeqLM` checkpoint.
    if base_model_config.is_encoder_decoder:
        return AutoModelForSeq2SeqLM.from_config(base_model_config)
    return AutoModel.from_config(base_model_config)


class MuppetPreTrainedModel(PreTrainedModel):
    config: MuppetConfig
    config_class = MuppetConfig
    base_model_prefix = "backbone"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_attention_backend = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        # Only the heads reach this method: the backbone is a `PreTrainedModel` and initialises itself.
        if isinstance(module, nn.Linear):
            weight = module.parametrizations.weight.original if parametrize.is_parametrized(module) else module.weight
            init.normal_(weight, mean=0.0, std=self.config.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)


class MuppetForMultiTask(MuppetPreTrainedModel):
    r"""
    A backbone with one head per classification task and heads shared across multiple-choice, MRC and
    summarization tasks, as in Muppet pre-finetuning (arXiv 2101.11038).

    Example:

    ```python
    >>> from muppet_hf import MuppetForMultiTask

    >>> model = MuppetForMultiTask.from_backbone(
    ...     "FacebookAI/roberta-base",
    ...     heads={"mnli": {"type": "classification", "num_labels": 3}, "span": {"type": "span"}},
    ... )
    >>> outputs = model(head="mnli", input_ids=..., attention_mask=..., labels=...)
    ```"""

    def __init__(self, config: MuppetConfig):
        super().__init__(config)
        self.backbone = _build_backbone(config.base_model_config)
        self.heads = nn.ModuleDict({name: build_head(config, spec) for name, spec in config.heads.items()})
        self.post_init()
        if config.lora is not None:
            # After `post_init`, whose weight initialisation would overwrite LoRA's (B = 0: the adapters start as the
            # identity).
            _lora_module().inject_adapters(self)

    @classmethod
    def from_backbone(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        heads: dict[str, dict] | None = None,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
        trust_remote_code: bool = False,
        **config_kwargs,
    ) -> "MuppetForMultiTask":
        """Loads pretrained backbone weights from any checkpoint `AutoModel` can read and adds fresh heads.

        Works on a plain model folder or Hub repo (roberta, bert, bart, ...) and on backbone-only Muppet releases
        such as `facebook/muppet-roberta-base`. Checkpoints saved with task heads (e.g. `RobertaForMaskedLM`)
        load their base model and drop the rest, as `AutoModel` does.

        Args:
            pretrained_model_name_or_path (`str` or `os.PathLike`): Hub id or local folder of the backbone.
            heads (`dict[str, dict]`, *optional*): heads to add, in the format of [`MuppetConfig.heads`].
            revision, cache_dir, token, local_files_only: passed to the Hub download.
            trust_remote_code (`bool`, *optional*, defaults to `False`):
                Whether to run modeling code shipped inside the checkpoint. Off unless you trust its authors.
            config_kwargs: other [`MuppetConfig`] fields (`pooling`, `spectral_norm`, ...). `pooling="auto"` takes
                the pooling a sentence-transformers backbone declares (see [`declared_pooling`]), else the default.
        """
        hub_kwargs = {
            "revision": revision,
            "cache_dir": cache_dir,
            "token": token,
            "local_files_only": local_files_only,
            "trust_remote_code": trust_remote_code,
        }
        base_model_config = AutoConfig.from_pretrained(pretrained_model_name_or_path, **hub_kwargs)
        if base_model_config.model_type == MuppetConfig.model_type:
            raise ValueError(
                f"{pretrained_model_name_or_path} is already a Muppet checkpoint; load it with "
                "`MuppetForMultiTask.from_pretrained` (or `AutoModel.from_pretrained` after `import muppet_hf`)"
            )
        if config_kwargs.get("pooling") == "auto":
            lookup = {key: value for key, value in hub_kwargs.items() if key != "trust_remote_code"}
            config_kwargs["pooling"] = declared_pooling(pretrained_model_name_or_path, **lookup)
            logger.info("pooling='auto': %s", config_kwargs["pooling"] or "nothing declared, the default")
        auto_class = AutoModelForSeq2SeqLM if base_model_config.is_encoder_decoder else AutoModel
        backbone = auto_class.from_pretrained(pretrained_model_name_or_path, config=base_model_config, **hub_kwargs)
        config = MuppetConfig(base_model_config=backbone.config, heads=heads or {}, **config_kwargs)
        # Build on the meta device: the random backbone it would create is replaced right away.
        with torch.device("meta"):
            model = cls(config)
        model.backbone = backbone
        model.heads = nn.ModuleDict(
            {name: build_head(config, spec).to(backbone.device) for name, spec in config.heads.items()}
        )
        for head in model.heads.values():
            head.apply(model._init_weights)
        model.post_init()
        model.eval()
        return model

    def add_head(self, name: str, head_type: str, num_labels: int | None = None, label_names: list[str] | None = None):
        """Adds a freshly initialised head and records it in the config, so it saves and reloads."""
        if name in self.heads:
            raise ValueError(f"head {name!r} already exists; remove it first or pick another name")
        spec = {"type": head_type}
        if num_labels is not None:
            spec["num_labels"] = num_labels
        if label_names is not None:
            spec["label_names"] = list(label_names)
        spec = validate_head(name, spec, bool(self.config.base_model_config.is_encoder_decoder))
        head = build_head(self.config, spec).to(self.device)
        head.apply(self._init_weights)
        self.heads[name] = head
        self.config.heads[name] = spec

    def remove_head(self, name: str):
        """Removes a head and every task entry that used it."""
        if name not in self.heads:
            raise ValueError(f"head {name!r} does not exist; heads are {sorted(self.heads)}")
        del self.heads[name]
        del self.config.heads[name]
        self.config.tasks = {task: head for task, head in self.config.tasks.items() if head != name}

    def save_backbone(self, save_directory: str | os.PathLike, **save_kwargs):
        """Writes the backbone alone in its own model type (e.g. `roberta`, `bart`), as safetensors.

        The folder loads with plain `transformers.AutoModel` / `AutoModelForSequenceClassification` /
        `AutoModelForQuestionAnswering` (or `AutoModelForSeq2SeqLM` for encoder-decoders) in a process that never
        imports muppet_hf.
        """
        self.backbone.save_pretrained(save_directory, **save_kwargs)

    def push_to_hub(self, repo_id: str, *args, allow_canary: bool = False, **kwargs) -> str:
        """`PreTrainedModel.push_to_hub`, refused for a model trained on BIG-bench data (`config.canary`).

        Args:
            allow_canary (`bool`, *optional*, defaults to `False`): upload a canary model anyway.
        """
        if self.config.canary and not allow_canary:
            # As `muppet-hf push` refuses it: the inherited method must not be a way around that check.
            raise ValueError(
                f"push_to_hub({repo_id!r}): this model was trained on BIG-bench (canary) data (config.json field "
                "`canary`), and BIG-bench asks that such models not be published. Pass allow_canary=True to upload "
                "it anyway, and keep the repository private"
            )
        return super().push_to_hub(repo_id, *args, **kwargs)

    def get_input_embeddings(self) -> nn.Module:
        return self.backbone.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module):
        self.backbone.set_input_embeddings(value)

    def get_encoder(self) -> nn.Module:
        """The module whose hidden states the non-generative heads read."""
        if self.config.base_model_config.is_encoder_decoder:
            return self.backbone.get_encoder()
        return self.backbone

    @torch.no_grad()
    def generate(self, *args, head: str | None = None, **kwargs) -> torch.LongTensor:
        """Generates with the encoder-decoder backbone for a `seq2seq` head; see `GenerationMixin.generate`.

        Args:
            head (`str`, *optional*):
                The `seq2seq` head to generate for. With LoRA adapters, its adapters are the ones generation runs
                through, as in `forward(head=...)`; without, every `seq2seq` head shares the backbone's decoder and
                `head` only checks the name. Defaults to the model's only `seq2seq` head; with per-task adapters and
                several `seq2seq` heads it must be given, since each runs through its own adapter.
        """
        if not self.config.base_model_config.is_encoder_decoder:
            raise ValueError("generate() needs an encoder-decoder backbone; this Muppet model is encoder-only")
        seq2seq = sorted(name for name, spec in self.config.heads.items() if spec["type"] == "seq2seq")
        if head is None and len(seq2seq) == 1:
            head = seq2seq[0]
        if head is not None and head not in seq2seq:
            raise ValueError(f"generate(head={head!r}): not a seq2seq head; this model's seq2seq heads are {seq2seq}")
        if self.config.lora is not None:
            if head is None and self.config.lora["mode"] != "shared":
                raise ValueError(
                    f"generate(): this model has per-task LoRA adapters (config.json field `lora.mode` is "
                    f"{self.config.lora['mode']!r}) and the seq2seq heads {seq2seq}; pass head=... to pick the adapters"
                )
            # In `shared` mode every head runs through the one shared adapter, so no head is needed.
            _lora_module().activate_adapters(self, head)
        return self.backbone.generate(*args, **kwargs)

    def forward(
        self,
        head: str,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        choice_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        start_positions: torch.LongTensor | None = None,
        end_positions: torch.LongTensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
    ) -> MuppetMultiTaskOutput:
        r"""
        Args:
            head (`str`):
                Which head to run; a key of `config.heads`.
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`, or
                `(batch_size, num_choices, sequence_length)` for a `multiple_choice` head):
                Token ids; each choice of a multiple-choice example is encoded as `context + choice`.
            choice_mask (`torch.Tensor` of shape `(batch_size, num_choices)`, *optional*):
                1 for real choices, 0 for padding choices, so one shared head serves datasets with different
                numbers of choices. Defaults to all choices real.
            labels (`torch.Tensor`, *optional*):
                Class ids `(batch_size,)` for classification and multiple choice, floats for regression, token label
                ids `(batch_size, sequence_length)` for tagging and target ids `(batch_size, target_length)` for
                seq2seq, -100 where ignored.
            start_positions, end_positions (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
                Gold span of a `span` head, as token indices.
            decoder_input_ids (`torch.LongTensor`, *optional*):
                Decoder inputs of a `seq2seq` head; made by shifting `labels` right when not given.
        """
        if head not in self.heads:
            raise ValueError(f"unknown head {head!r}; this model has heads {sorted(self.heads)}")
        if self.config.lora is not None:
            _lora_module().activate_adapters(self, head)
        # The head runs the backbone and computes its own loss (`muppet_hf.heads`).
        inputs = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
            "inputs_embeds": inputs_embeds,
            "choice_mask": choice_mask,
            "labels": labels,
            "start_positions": start_positions,
            "end_positions": end_positions,
            "decoder_input_ids": decoder_input_ids,
            "decoder_attention_mask": decoder_attention_mask,
            "output_hidden_states": output_hidden_states,
            "output_attentions": output_attentions,
        }
        return self.heads[head](self, inputs)

    def encode(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
    ) -> BaseModelOutput:
        """The encoder's outputs for a batch of sequences: what every head but `seq2seq` reads."""
        encoder_kwargs = {"input_ids": input_ids, "attention_mask": attention_mask, "inputs_embeds": inputs_embeds}
        if token_type_ids is not None:
            # Only tokenizers of models that have segment embeddings emit them (mpnet, bart and t5 do not).
            encoder_kwargs["token_type_ids"] = token_type_ids
        return self.get_encoder()(
            **encoder_kwargs,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )


__all__ = [
    "MuppetClassificationHead",
    "MuppetForMultiTask",
    "MuppetMultiTaskOutput",
    "MuppetMultipleChoiceHead",
    "MuppetPreTrainedModel",
    "MuppetRegressionHead",
    "MuppetSeq2SeqHead",
    "MuppetSpanHead",
    "MuppetTokenClassificationHead",
    "declared_pooling",
]
