"""Configuration of the Muppet multi-task model (Aghajanyan et al., arXiv 2101.11038)."""

import re
from typing import Literal

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .heads import HEAD_CLASSES


NAME_PATTERN = re.compile(r"^[a-z0-9_]+$")
POOLING_MODES = ("first", "mean")


def encoder_config_of(config: PreTrainedConfig) -> PreTrainedConfig:
    """Returns the config that describes the encoder's hidden states of any backbone config.

    `EncoderDecoderModel` keeps its two halves in `encoder` / `decoder`; every other supported model (bert,
    roberta, mpnet, deberta-v2, electra, bart, t5) exposes `hidden_size` on its own config.
    """
    if config.model_type == "encoder-decoder":
        return config.encoder
    return config


def validate_head(name: str, spec: dict, is_encoder_decoder: bool, source: str = "MuppetConfig.heads") -> dict:
    """Checks one entry of `MuppetConfig.heads` and returns it normalised (`type`, `num_labels`, `label_names`).

    Raises:
        `ValueError` naming the head, `source` (a file or the config) and the offending field.
    """
    if not NAME_PATTERN.match(name):
        raise ValueError(
            f"{source}: head name {name!r} is invalid (field `name`): it must match [a-z0-9_]+ because it is a "
            "module and state-dict key"
        )
    if not isinstance(spec, dict):
        raise TypeError(f"{source}: head {name!r} must be a dict such as {{'type': 'classification', ...}}")
    unknown = set(spec) - {"type", "num_labels", "label_names"}
    if unknown:
        raise ValueError(f"{source}: head {name!r} has unknown field(s) {sorted(unknown)}")
    head_type = spec.get("type")
    if head_type not in HEAD_CLASSES:
        raise ValueError(
            f"{source}: head {name!r} has unknown type {head_type!r} (field `type`); use one of {tuple(HEAD_CLASSES)}"
        )
    head_class = HEAD_CLASSES[head_type]
    if head_class.needs_encoder_decoder and not is_encoder_decoder:
        raise ValueError(
            f"{source}: head {name!r} is `{head_type}` (field `type`), which needs an encoder-decoder backbone "
            "(bart, t5, encoder-decoder); this backbone is encoder-only"
        )
    label_names = spec.get("label_names")
    num_labels = spec.get("num_labels")
    fixed = head_class.fixed_num_labels
    if fixed is not None:
        num_labels = fixed if num_labels is None else num_labels
    if head_class.takes_num_labels or fixed is not None:
        if num_labels is None and label_names is not None:
            num_labels = len(label_names)
        if not isinstance(num_labels, int) or num_labels < 1:
            raise ValueError(f"{source}: head {name!r} of type {head_type!r} needs a positive int `num_labels`")
        if fixed is not None and num_labels != fixed:
            raise ValueError(f"{source}: {head_type} head {name!r} must have `num_labels` {fixed}, got {num_labels}")
        if label_names is not None and len(label_names) != num_labels:
            raise ValueError(
                f"{source}: head {name!r} has num_labels={num_labels} but {len(label_names)} `label_names`"
            )
    elif num_labels is not None or label_names is not None:
        raise ValueError(
            f"{source}: head {name!r} of type {head_type!r} scores choices or positions and takes no "
            "`num_labels` / `label_names`"
        )
    normalised = {"type": head_type}
    if num_labels is not None:
        normalised["num_labels"] = num_labels
    if label_names is not None:
        normalised["label_names"] = list(label_names)
    return normalised


class MuppetConfig(PreTrainedConfig):
    r"""
    Configuration of [`MuppetForMultiTask`]: a pretrained backbone and a dictionary of task heads. The config is
    the whole architecture, so `from_pretrained` rebuilds every head from it.

    Args:
        base_model_config (`PreTrainedConfig` or `dict`, *optional*):
            The backbone's config, of any type `AutoModel` knows: encoder-only (bert, roberta, mpnet, deberta-v2,
            electra) or encoder-decoder (bart, t5, encoder-decoder). Defaults to a `roberta` config.
        heads (`dict[str, dict]`, *optional*):
            `{head_name: {"type": ..., "num_labels": ..., "label_names": [...]}}`. `type` is one of
            `classification`, `regression`, `multiple_choice`, `span`, `token_classification`, `seq2seq`, or a
            type registered with [`muppet_hf.heads.register_head_type`].
            Muppet gives each classification dataset its own head and shares one `multiple_choice`, one `span` and
            the `seq2seq` head across all datasets of those families (paper §3.2).
        tasks (`dict[str, str]`, *optional*):
            Which head each training task used, `{task_name: head_name}`; written by the trainer as metadata.
        pooling (`str`, *optional*):
            How sequence-level heads read the encoder: `"first"` (the `<s>`/`[CLS]` token) or `"mean"` (masked
            mean, for backbones such as T5 that have no such token). Defaults to `"first"` for encoder-only and
            `"mean"` for encoder-decoder backbones. `MuppetForMultiTask.from_backbone(..., pooling="auto")` takes
            the pooling a sentence-transformers backbone declares instead.
        classifier_dropout (`float`, *optional*, defaults to 0.1):
            Dropout before and inside the classification, multiple-choice and tagging heads.
        label_smoothing (`float`, *optional*, defaults to 0.1):
            Label smoothing of the `seq2seq` head's token cross-entropy.
        spectral_norm (`bool`, *optional*, defaults to `False`):
            Spectral normalisation of the head projections: the "R4F" half of R4F (arXiv 2008.03156).
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialisation of new head weights.
        canary (`bool`, *optional*, defaults to `False`):
            Whether the weights were trained, at any stage, on BIG-bench (canary) data, whose authors ask that such
            models not be published. Kept in `config.json` so that it travels with every checkpoint, export and
            fine-tuned model; `muppet-hf push` and `push_to_hub` refuse such models unless told otherwise.
        lora (`dict`, *optional*):
            LoRA adapters on the backbone, written by `muppet_hf.lora.add_lora`: `mode`, `r`, `alpha`, `dropout`,
            `target_modules` and the `adapters`' names. The model rebuilds them from it, so a LoRA checkpoint
            round-trips `from_pretrained`; `None` (default) for a model without adapters.

    Example:

    ```python
    >>> from transformers import AutoConfig
    >>> from muppet_hf import MuppetConfig

    >>> config = MuppetConfig(
    ...     base_model_config=AutoConfig.for_model("roberta"),
    ...     heads={"mnli": {"type": "classification", "num_labels": 3}, "multiple_choice": {"type": "multiple_choice"}},
    ... )
    ```"""

    model_type = "muppet"
    sub_configs_defaults = {"base_model_config": SubConfigSpec(config_class=AutoConfig, model_type="roberta")}

    base_model_config: dict | PreTrainedConfig | None = None
    heads: dict | None = None
    tasks: dict | None = None
    pooling: Literal["first", "mean"] | None = None
    classifier_dropout: float = 0.1
    label_smoothing: float = 0.1
    spectral_norm: bool = False
    initializer_range: float = 0.02
    canary: bool = False
    lora: dict | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.base_model_config.model_type == self.model_type:
            raise ValueError("MuppetConfig.base_model_config cannot itself be a muppet config")
        is_encoder_decoder = bool(self.base_model_config.is_encoder_decoder)
        self.heads = {name: validate_head(name, spec, is_encoder_decoder) for name, spec in (self.heads or {}).items()}
        self.tasks = dict(self.tasks or {})
        for task, head in self.tasks.items():
            if head not in self.heads:
                raise ValueError(f"MuppetConfig.tasks: task {task!r} names head {head!r}, which is not in `heads`")
        if self.pooling is None:
            self.pooling = "mean" if is_encoder_decoder else "first"
        if self.pooling not in POOLING_MODES:
            raise ValueError(
                f"MuppetConfig: field `pooling` is {self.pooling!r}; use one of {POOLING_MODES} ('auto' is resolved "
                "from the backbone folder by MuppetForMultiTask.from_backbone)"
            )

    @property
    def hidden_size(self) -> int:
        return encoder_config_of(self.base_model_config).hidden_size

    @property
    def vocab_size(self) -> int:
        return self.base_model_config.get_text_config(decoder=True).vocab_size


__all__ = ["MuppetConfig"]
