"""LoRA adapters (Hu et al., arXiv 2106.09685) on the backbone of a [`MuppetForMultiTask`], with stock `peft`.

Three modes (`MuppetTrainingArguments.lora_mode`, recorded in `MuppetConfig.lora`):

- `shared`: one adapter, named `shared`, for every task.
- `per_task`: one adapter per head, named after it. Tasks that share a head share its adapter: every
  multiple-choice task trains the `multiple_choice` head's adapter, every MRC task the `span` head's (paper §3.2).
- `shared+per_task`: the shared adapter plus the head's own, both active in every sub-batch.

The backbone's own weights are frozen; adapters and heads train.

PEFT runs a batch that mixes adapters (`adapter_names=` in `forward`) at inference only. Muppet's sub-batches hold
one task each, so the model activates the sub-batch's adapter(s) at the start of every forward
([`activate_adapters`]) while every adapter stays trainable: an update that accumulates sub-batches of several tasks
updates all the adapters it used, and the heads, in one optimizer step. An adapter gets gradient only from the
sub-batches of its own head: the others never enter its computation graph.

The adapters' settings and names live in `config.lora`, and `MuppetForMultiTask.__init__` re-injects them
([`inject_adapters`]), so `save_pretrained` / `from_pretrained` and trainer checkpoints round-trip (their
`model.safetensors` holds the frozen backbone weights, the adapters and the heads), and `resume_from_checkpoint`
restores them exactly. Exports: [`merge_adapters`] folds them into the backbone weights (`muppet-hf export --merge`),
[`export_adapters`] writes peft adapter folders that plain `peft.PeftModel.from_pretrained` loads
(`muppet-hf export --adapter`).
"""

import copy
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData
from peft import LoraConfig
from peft.functional import get_peft_model_state_dict, inject_adapter_in_model, set_adapter
from peft.tuners.lora import LoraLayer, LoraModel
from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from safetensors.torch import save_file
from torch import nn
from transformers import AutoConfig

from .configuration_muppet import MuppetConfig
from .hub.export import (
    baked_head_state,
    check_no_pickles,
    export_checkpoint,
    load_checkpoint,
    replace_folder,
    resolve_heads,
)
from .hub.model_card import canary_notice, check_model_card, settings_section
from .hub.run_metadata import CANARY_TAGS, hub_id_or_none, read_run_metadata, write_run_metadata
from .io_utils import read_json, write_json
from .modeling_muppet import MuppetForMultiTask
from .training_args import LORA_MODES


SHARED_ADAPTER = "shared"
LORA_FIELDS = ("mode", "r", "alpha", "dropout", "target_modules", "adapters")
# Attention query and value, as in the LoRA paper (§7.1) and peft's own defaults; peft has no entry for mpnet or
# distilbert.
DEFAULT_TARGET_MODULES = {
    **{name: list(targets) for name, targets in TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.items()},
    "mpnet": ["q", "v"],
    "distilbert": ["q_lin", "v_lin"],
}
# Files of an adapter export besides peft's own `adapter_config.json` and `adapter_model.safetensors`.
HEADS_WEIGHTS_FILE = "muppet_heads.safetensors"
HEADS_CONFIG_FILE = "muppet_heads.json"


# ----------------------------------------------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------------------------------------------


def default_target_modules(config: MuppetConfig) -> list[str]:
    """The attention query and value layers of the backbone's family (`query`/`value` for bert and roberta, ...)."""
    model_type = config.base_model_config.model_type
    targets = DEFAULT_TARGET_MODULES.get(model_type)
    if not isinstance(targets, list):
        raise ValueError(
            f"LoRA: no default target modules for a {model_type!r} backbone; set field `lora_target_modules` to the "
            "names of its attention projections"
        )
    return list(targets)


def adapter_names(mode: str, heads: Sequence[str]) -> list[str]:
    """The adapters of a mode: `shared`, one per head, or both."""
    names = [SHARED_ADAPTER] if mode in ("shared", "shared+per_task") else []
    if mode in ("per_task", "shared+per_task"):
        if SHARED_ADAPTER in heads:
            raise ValueError(
                f"LoRA: field `lora_mode` is {mode!r} and a head is named {SHARED_ADAPTER!r}, the shared adapter's "
                "name; rename the head"
            )
        names += list(heads)
    return names


def lora_settings(
    config: MuppetConfig,
    mode: str,
    r: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.05,
    target_modules: Sequence[str] | None = None,
) -> dict:
    """The `MuppetConfig.lora` entry for adapters of `mode` on this model's heads (see `MuppetTrainingArguments`)."""
    if mode not in LORA_MODES:
        raise ValueError(f"LoRA: field `lora_mode` is {mode!r}; use one of {LORA_MODES}")
    settings = {
        "mode": mode,
        "r": r,
        "alpha": float(alpha),
        "dropout": float(dropout),
        "target_modules": list(target_modules) if target_modules else default_target_modules(config),
        "adapters": adapter_names(mode, list(config.heads)),
    }
    return validate_settings(settings, source="MuppetTrainingArguments")


def validate_settings(settings: dict, source: str = "config.json") -> dict:
    """Checks a `MuppetConfig.lora` entry; raises `ValueError` naming `source` and the field."""
    if not isinstance(settings, dict) or set(settings) != set(LORA_FIELDS):
        raise ValueError(f"{source}: field `lora` must hold exactly {list(LORA_FIELDS)}, got {settings!r}")
    if settings["mode"] not in LORA_MODES:
        raise ValueError(f"{source}: field `lora.mode` is {settings['mode']!r}; use one of {LORA_MODES}")
    if not isinstance(settings["r"], int) or isinstance(settings["r"], bool) or settings["r"] <= 0:
        raise ValueError(f"{source}: field `lora.r` (lora_r) must be a positive int, got {settings['r']!r}")
    if not settings["target_modules"] or not all(isinstance(name, str) for name in settings["target_modules"]):
        raise ValueError(f"{source}: field `lora.target_modules` must be a non-empty list of module names")
    if not settings["adapters"]:
        raise ValueError(f"{source}: field `lora.adapters` is empty: a `{settings['mode']}` model needs its heads")
    return settings


def check_target_modules(backbone: nn.Module, targets: Sequence[str], field_name: str = "lora_target_modules"):
    """Raises a `ValueError` naming `field_name` when a target matches no linear layer of `backbone`.

    A target matches a layer whose dotted name is the target or ends in `.target`, as peft matches them.
    """
    linear = [name for name, module in backbone.named_modules() if isinstance(module, nn.Linear | LoraLayer)]
    missing = [
        target for target in targets if not any(name == target or name.endswith(f".{target}") for name in linear)
    ]
    if missing:
        endings = sorted({name.rsplit(".", 1)[-1] for name in linear})
        raise ValueError(
            f"LoRA: field `{field_name}`: {missing} match no linear layer of the "
            f"{backbone.config.model_type} backbone; its linear layers are named {endings}"
        )


def adapters_of_head(settings: dict, head: str | None) -> list[str]:
    """The adapters a sub-batch of `head` runs through; `head` may be `None` in `shared` mode only."""
    if settings["mode"] == "shared":
        return [SHARED_ADAPTER]
    if head not in settings["adapters"]:
        raise ValueError(
            f"LoRA: head {head!r} has no adapter (config.json field `lora.adapters`: {settings['adapters']}); in "
            f"`{settings['mode']}` mode every head needs its own"
        )
    return [SHARED_ADAPTER, head] if settings["mode"] == "shared+per_task" else [head]


# ----------------------------------------------------------------------------------------------------------------
# Adapters on the model
# ----------------------------------------------------------------------------------------------------------------


def peft_config(settings: dict, base_model_name_or_path: str | None = None) -> LoraConfig:
    return LoraConfig(
        r=settings["r"],
        lora_alpha=settings["alpha"],
        lora_dropout=settings["dropout"],
        target_modules=list(settings["target_modules"]),
        bias="none",
        base_model_name_or_path=base_model_name_or_path,
    )


def adapter_parameters(model: MuppetForMultiTask) -> dict[str, nn.Parameter]:
    """The adapters' parameters, by name."""
    return {name: param for name, param in model.named_parameters() if LoraModel.prefix in name}


def inject_adapters(model: MuppetForMultiTask) -> None:
    """Adds the adapters `model.config.lora` describes to the backbone and freezes the backbone's own weights.

    Called by `MuppetForMultiTask.__init__`; use [`add_lora`] to give a model adapters.
    """
    settings = validate_settings(model.config.lora)
    check_target_modules(model.backbone, settings["target_modules"], "lora.target_modules")
    with warnings.catch_warnings():
        # peft warns that a second adapter joins the first, which is the point here.
        warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
        for name in settings["adapters"]:
            inject_adapter_in_model(peft_config(settings), model.backbone, adapter_name=name)
    # Each injection records only its own adapter here; peft's state-dict helpers read every adapter's config from it.
    model.backbone.peft_config = {name: peft_config(settings) for name in settings["adapters"]}
    for name, param in model.backbone.named_parameters():
        param.requires_grad_(LoraModel.prefix in name)


def add_lora(
    model: MuppetForMultiTask,
    mode: str,
    r: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.05,
    target_modules: Sequence[str] | None = None,
) -> MuppetForMultiTask:
    """Gives `model` fresh LoRA adapters of `mode` (in place; returns it). Adapters start as the identity (B = 0)."""
    if model.config.lora is not None:
        raise ValueError(
            "LoRA: the model already has adapters (config.json field `lora`); merge them first with merge_adapters"
        )
    settings = lora_settings(model.config, mode, r, alpha, dropout, target_modules)
    check_target_modules(model.backbone, settings["target_modules"])
    model.config.lora = settings
    inject_adapters(model)
    return model


def add_lora_from_arguments(model: MuppetForMultiTask, args) -> None:
    """Adds the adapters that `args.lora_*` ([`MuppetTrainingArguments`]) ask for; a no-op without `lora_mode`.

    A model that already has exactly these adapters (loaded from a LoRA checkpoint) is left as it is.
    """
    if args.lora_mode is None:
        return
    if model.config.lora is None:
        add_lora(model, args.lora_mode, args.lora_r, args.lora_alpha, args.lora_dropout, args.lora_target_modules)
        return
    wanted = lora_settings(
        model.config, args.lora_mode, args.lora_r, args.lora_alpha, args.lora_dropout, args.lora_target_modules
    )
    for key in LORA_FIELDS:
        if wanted[key] != model.config.lora[key]:
            raise ValueError(
                f"LoRA: the model already has adapters whose `{key}` is {model.config.lora[key]!r}, but the "
                f"training arguments (lora_*) ask for {wanted[key]!r}; merge the model's adapters first or match them"
            )


def activate_adapters(model: MuppetForMultiTask, head: str | None) -> None:
    """Runs the next forward through the adapters of `head`, leaving every adapter's `requires_grad` as it was.

    peft's `set_adapter` also freezes the adapters it deactivates; here all stay trainable, so that one optimizer
    step updates the adapters of every task in the update. An inactive adapter is not in the graph and gets no
    gradient.
    """
    names = adapters_of_head(model.config.lora, head)
    states = [(param, param.requires_grad) for param in adapter_parameters(model).values()]
    set_adapter(model.backbone, names)
    for param, requires_grad in states:
        param.requires_grad_(requires_grad)


def _remove_adapters(backbone: nn.Module, merge: Sequence[str]) -> None:
    """Replaces every LoRA layer of `backbone` by its base layer, first adding to it the adapters in `merge`."""
    for name, module in list(backbone.named_modules()):
        if isinstance(module, LoraLayer):
            if merge:
                module.merge(safe_merge=True, adapter_names=list(merge))
            parent, _, child = name.rpartition(".")
            setattr(backbone.get_submodule(parent), child, module.get_base_layer())
    del backbone.peft_config


def merge_adapters(
    model: MuppetForMultiTask, heads: Sequence[str] | None = None, adapters: Sequence[str] | None = None
) -> MuppetForMultiTask:
    """A copy of `model` whose backbone holds the adapters of `heads` merged into its weights, as peft's
    `merge_and_unload` does; its config has no `lora`, so plain `transformers` loads its backbone.

    Args:
        heads (`Sequence[str]`, *optional*): the heads whose adapters to merge; they must all use the same ones (one
            backbone holds one merged set). Defaults to every head.
        adapters (`Sequence[str]`, *optional*): the adapters to merge, by name, instead of those of `heads`; `[]`
            drops every adapter and keeps the backbone's own weights.

    Raises:
        `ValueError` when the model has no adapters or the heads use different ones.
    """
    settings = model.config.lora
    if settings is None:
        raise ValueError("merge: the model has no LoRA adapters (config.json field `lora` is null); nothing to merge")
    if adapters is None:
        heads = list(heads) if heads else list(model.config.heads)
        combinations = {tuple(adapters_of_head(settings, head)) for head in heads}
        if len(combinations) != 1:
            raise ValueError(
                f"merge: heads {heads} use different adapters {sorted(combinations)} (config.json field `lora.mode` "
                f"is {settings['mode']!r}); one backbone holds one merged set, so export one head at a time "
                "(--heads NAME)"
            )
        adapters = combinations.pop()
    unknown = [name for name in adapters if name not in settings["adapters"]]
    if unknown:
        raise ValueError(f"merge: no adapter(s) {unknown} (config.json field `lora.adapters`: {settings['adapters']})")
    merged = copy.deepcopy(model)
    _remove_adapters(merged.backbone, merge=list(adapters))
    merged.config.lora = None
    for param in merged.parameters():
        param.requires_grad_(True)
    return merged


def check_checkpoint_adapters(model: MuppetForMultiTask, checkpoint: str | os.PathLike) -> None:
    """Before resuming: the checkpoint's adapters (its `config.json` field `lora`) must be the model's.

    Raises:
        `ValueError` naming the file and the field, e.g. a `per_task` head of the resumed tasks that has no adapter in
        the checkpoint.
    """
    path = Path(checkpoint) / "config.json"
    if not path.is_file():
        return
    saved, current = read_json(path).get("lora"), model.config.lora
    if saved == current:
        return
    if saved is None or current is None:
        raise ValueError(
            f"{path}: field `lora` is {saved!r} but the model to resume has {current!r}; resume with the lora_* "
            "arguments the checkpoint was trained with"
        )
    missing = [name for name in current["adapters"] if name not in saved["adapters"]]
    if missing:
        raise ValueError(
            f"{path}: field `lora.adapters`: the checkpoint has no adapter for head(s) {missing} of the tasks to "
            f"resume (it has {saved['adapters']}); resume with the tasks it was trained on"
        )
    for key in LORA_FIELDS:
        if saved.get(key) != current[key]:
            raise ValueError(
                f"{path}: field `lora.{key}` is {saved.get(key)!r} but the model to resume has {current[key]!r}; "
                "resume with the lora_* arguments the checkpoint was trained with"
            )


# ----------------------------------------------------------------------------------------------------------------
# Exports
# ----------------------------------------------------------------------------------------------------------------


def export_merged(
    checkpoint: str | os.PathLike, output_dir: str | os.PathLike, heads: str | Sequence[str] = "all", **export_kwargs
) -> Path:
    """`muppet-hf export --merge`: [`export_checkpoint`] of the checkpoint with its adapters merged.

    The adapters of the exported heads are merged (they must share them); with `heads="none"`, the shared adapter.
    """
    checkpoint = Path(checkpoint)
    model, tokenizer = load_checkpoint(checkpoint)
    if model.config.lora is None:
        raise ValueError(f"{checkpoint}/config.json: field `lora` is null: --merge needs a model with LoRA adapters")
    exported_heads = resolve_heads(heads, model.config)
    if exported_heads:
        merged = merge_adapters(model, exported_heads)
    elif SHARED_ADAPTER in model.config.lora["adapters"]:
        # The backbone alone: the shared adapter is what every task's representation builds on.
        merged = merge_adapters(model, adapters=[SHARED_ADAPTER])
    else:
        raise ValueError(
            f"{checkpoint}/config.json: field `lora.mode` is 'per_task': there is no shared adapter to merge into a "
            "backbone-only export; name the head whose adapter to merge (--heads NAME)"
        )
    metadata = read_run_metadata(checkpoint)
    metadata.training = {**metadata.training, "lora_merged": True}
    return export_checkpoint(merged, output_dir, heads, tokenizer=tokenizer, metadata=metadata, **export_kwargs)


def check_base_model(config: MuppetConfig, base_model: str) -> None:
    """Raises a `ValueError` naming `base_model` when it is a local folder whose backbone differs from the one the
    adapters were trained on (architecture, width or depth): their weights would not fit it.

    A Hub id is not checked here (that needs the network); peft itself refuses mismatched shapes when loading.
    """
    if not Path(base_model).is_dir():
        return
    expected = config.base_model_config
    actual = AutoConfig.from_pretrained(base_model)
    for key in ("model_type", "hidden_size", "num_hidden_layers"):
        mine, theirs = expected.to_dict().get(key), actual.to_dict().get(key)
        if mine != theirs:
            raise ValueError(
                f"{base_model}: field `base_model` (--base-model): its `{key}` is {theirs!r} but the adapters were "
                f"trained on a backbone with {mine!r}; name the backbone they were trained on"
            )


def _adapter_folders(settings: dict, heads: Sequence[str]) -> dict[str, str]:
    """Adapter name -> folder inside the export: the shared adapter at the top (peft's `default`), the others in a
    sub-folder named after them, as `PeftModel.save_pretrained` lays out named adapters."""
    names = [SHARED_ADAPTER] if SHARED_ADAPTER in settings["adapters"] else []
    if settings["mode"] != "shared":
        names += (
            [head for head in heads if head in settings["adapters"]] if heads else settings["adapters"][len(names) :]
        )
    return {name: "" if name == SHARED_ADAPTER else name for name in names}


def _adapter_usage(model_id: str, base_model: str, folders: dict[str, str], heads: Sequence[str]) -> str:
    if "" in folders.values():
        load = f'model = PeftModel.from_pretrained(base, "{model_id}")  # the shared adapter'
    else:
        first = next(iter(folders))
        load = f'model = PeftModel.from_pretrained(base, "{model_id}", subfolder="{first}", adapter_name="{first}")'
    others = [name for name, folder in folders.items() if folder and f'"{name}"' not in load]
    extra = "".join(
        f'\nmodel.load_adapter("{model_id}", subfolder="{name}", adapter_name="{name}")' for name in others
    )
    switch = ""
    per_task = [name for name, folder in folders.items() if folder]
    if per_task:
        both = '["default", "' + per_task[0] + '"]' if "" in folders.values() else f'"{per_task[0]}"'
        switch = f"\nmodel.base_model.set_adapter({both})  # the adapter(s) of the `{per_task[0]}` head"
    heads_note = (
        f"The task heads ({', '.join(f'`{h}`' for h in heads)}) are in `{HEADS_WEIGHTS_FILE}`, described by "
        f"`{HEADS_CONFIG_FILE}`; muppet_hf rebuilds them, plain peft does not need them."
        if heads
        else "No task heads are included."
    )
    return f"""### Loading with plain `peft`

```python
from peft import PeftModel
from transformers import AutoModel, AutoTokenizer

base = AutoModel.from_pretrained("{base_model}")
tokenizer = AutoTokenizer.from_pretrained("{model_id}")
{load}{extra}{switch}
hidden_states = model(**tokenizer("a sentence", return_tensors="pt")).last_hidden_state
```

Merge an adapter into the backbone for inference without peft: `model.merge_and_unload()`. {heads_note}"""


def export_adapters(
    checkpoint: str | os.PathLike,
    output_dir: str | os.PathLike,
    heads: str | Sequence[str] = "all",
    *,
    base_model: str | None = None,
    repo_id: str | None = None,
    overwrite: bool = False,
) -> Path:
    """`muppet-hf export --adapter`: the checkpoint's adapters as peft adapter folders, plus its heads.

    The shared adapter is written at the top of `output_dir` (what `PeftModel.from_pretrained(base, output_dir)`
    loads), each per-task adapter in `output_dir/<head>/` (`subfolder=<head>`). The heads go to
    `muppet_heads.safetensors` (spectral norm baked) and `muppet_heads.json`; a `README.md` card says
    `library_name: peft`.

    Args:
        base_model (`str`, *optional*): the backbone the adapters apply to, written as `base_model_name_or_path`;
            defaults to the run's `base_model` (`muppet_run.json`).
    """
    checkpoint, output_dir = Path(checkpoint), Path(output_dir)
    if output_dir.exists() and not overwrite:
        raise ValueError(f"{output_dir} already exists; pass overwrite=True (--overwrite) to replace it")
    model, tokenizer = load_checkpoint(checkpoint)
    settings = model.config.lora
    if settings is None:
        raise ValueError(f"{checkpoint}/config.json: field `lora` is null: --adapter needs a model with LoRA adapters")
    metadata = read_run_metadata(checkpoint)
    base_model = base_model or metadata.base_model
    if base_model is None:
        raise ValueError(
            f"{checkpoint}: the run recorded no `base_model` (muppet_run.json); pass --base-model, the backbone the "
            "adapters apply to"
        )
    check_base_model(model.config, base_model)
    exported_heads = resolve_heads(heads, model.config)
    folders = _adapter_folders(settings, exported_heads)
    metadata.backbone_type = model.config.base_model_config.model_type
    metadata.heads = {name: dict(spec) for name, spec in model.config.heads.items()}
    metadata.export = {"kind": "lora_adapter", "heads": exported_heads, "adapters": list(folders)}

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", suffix=".tmp", dir=output_dir.parent))
    try:
        for name, folder in folders.items():
            target = staging / folder
            target.mkdir(exist_ok=True)
            peft_config(settings, base_model).save_pretrained(target)
            state = get_peft_model_state_dict(model.backbone, adapter_name=name)
            # The keys `PeftModel.save_pretrained` writes: the PeftModel's own prefix, no adapter name.
            state = {f"base_model.model.{key}": tensor.detach().contiguous() for key, tensor in state.items()}
            save_file(state, str(target / "adapter_model.safetensors"), metadata={"format": "pt"})
        if exported_heads:
            head_state = {
                f"{head}.{key}": tensor.contiguous()
                for head in exported_heads
                for key, tensor in baked_head_state(model.heads[head]).items()
            }
            save_file(head_state, str(staging / HEADS_WEIGHTS_FILE), metadata={"format": "pt"})
            heads_config = {
                "heads": {head: model.config.heads[head] for head in exported_heads},
                "tasks": {task: head for task, head in model.config.tasks.items() if head in exported_heads},
                "pooling": model.config.pooling,
                "classifier_dropout": model.config.classifier_dropout,
                "adapters": {head: adapters_of_head(settings, head) for head in exported_heads},
            }
            write_json(staging / HEADS_CONFIG_FILE, heads_config)
        if tokenizer is not None:
            tokenizer.save_pretrained(staging)
        write_run_metadata(staging, metadata)
        model_id = repo_id or output_dir.name
        tags = ["muppet", "multi-task", "pre-finetuning", "lora", "peft", metadata.backbone_type]
        if metadata.is_canary:
            tags += [*CANARY_TAGS, "do-not-publish"]
        card_data = ModelCardData(
            base_model=hub_id_or_none(base_model),
            language=metadata.language,
            library_name="peft",
            license=metadata.license,
            tags=tags,
        )
        text = f"""---
{card_data.to_yaml()}
---

# {model_id}

{canary_notice(metadata)}
LoRA adapters (`{settings["mode"]}` mode, rank {settings["r"]}, alpha {settings["alpha"]:g}, on
`{", ".join(settings["target_modules"])}`) from Muppet pre-finetuning (arXiv 2101.11038) of `{base_model}`, made with
muppet_hf. Adapters: {", ".join(f"`{name}`" for name in folders)}.

{_adapter_usage(model_id, base_model, folders, exported_heads)}

## Training settings

{settings_section(metadata)}
"""
        ModelCard(text).save(staging / "README.md")
        check_model_card(staging / "README.md")
        check_no_pickles(staging)
        staging.chmod(0o755)
        replace_folder(staging, output_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return output_dir


__all__ = [
    "LORA_MODES",
    "add_lora",
    "add_lora_from_arguments",
    "adapters_of_head",
    "check_checkpoint_adapters",
    "export_adapters",
    "export_merged",
    "merge_adapters",
]
