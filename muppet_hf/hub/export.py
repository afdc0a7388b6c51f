"""Export of pre-finetuned Muppet checkpoints as Hub-ready folders.

Most people who download a Muppet checkpoint never import muppet_hf: they call
`AutoModel.from_pretrained("…/muppet-roberta-large")` and fine-tune. [`export_checkpoint`] therefore writes two kinds
of folder:

- `heads="none"`: the backbone alone in its own model type (`roberta`, `bert`, `bart`, ...). Plain `transformers`
  loads it with `AutoModel`, `AutoModelForSequenceClassification`, `AutoModelForQuestionAnswering` (or
  `AutoModelForSeq2SeqLM` for encoder-decoders); new heads are initialised as usual.
- `heads="all"` or a list of head names: the multi-task model (`model_type = "muppet"`) with those heads, loaded by
  `import muppet_hf; AutoModel.from_pretrained(...)`. The released facebook/muppet-roberta-* checkpoints lost their
  heads, and their cards warn that results may be lower for it; this kind keeps them.

Every export holds `safetensors` weights only (never pickles, and it never loads them), the tokenizer, a `README.md`
model card built with `huggingface_hub.ModelCard` from a template in `model_cards/`, and a `muppet_run.json` whose
`export` field marks the folder as an export. It is written to a temporary folder beside `output_dir` and renamed into
place, so a crash leaves either the old folder or the new one, never half of one.

Two choices, both documented on the card:

- Spectral-norm heads (`MuppetConfig.spectral_norm`, the "R4F" of arXiv 2008.03156) are *baked* by default: each
  head `Linear` is written with the normalised weight `W / sigma(W)` the model used at export time, and the exported
  config says `spectral_norm: false`. Outputs are unchanged, the state dict has plain `weight` keys that any code can
  read, and fine-tuning starts from the very function that was pre-finetuned without re-imposing the constraint.
  `bake_spectral_norm=False` keeps the parametrisation (its `original` weight and power-iteration vectors), for
  continuing R4F training exactly.
- `remote_code=True` also copies this package's model files into the folder and sets `auto_map`, so that
  `AutoModel.from_pretrained(repo, trust_remote_code=True)` works without muppet_hf installed. It is off by default:
  `trust_remote_code` runs whatever Python the repository holds at the revision loaded, so anyone who can push to the
  repository can run code on its users' machines. Users who opt in should pin `revision=` to a commit they have read.
"""

import copy
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from huggingface_hub.utils import filter_repo_objects
from torch import nn
from transformers import AutoTokenizer, PreTrainedTokenizerBase
from transformers.dynamic_module_utils import get_relative_import_files
from transformers.trainer_utils import get_last_checkpoint

from .. import modeling_muppet
from ..configuration_muppet import MuppetConfig
from ..heads import build_head
from ..io_utils import read_json
from ..modeling_muppet import MuppetForMultiTask
from ..safety import check_export_target, mark_canary
from .model_card import build_model_card, check_model_card
from .run_metadata import RunMetadata, read_run_metadata, write_run_metadata


# Weights are written as safetensors only; any of these in a folder means a pickle slipped in.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")


def resolve_heads(heads: str | Sequence[str], config: MuppetConfig) -> list[str]:
    """Turns `"all"`, `"none"` or a list of head names into the list of heads to export.

    Raises:
        `ValueError` naming an unknown head and the heads the model has.
    """
    if isinstance(heads, str):
        if heads == "all":
            return list(config.heads)
        if heads == "none":
            return []
        heads = [heads]
    heads = list(heads)
    unknown = [name for name in heads if name not in config.heads]
    if unknown:
        raise ValueError(f"heads {unknown} are not in the model (config.json field `heads`: {sorted(config.heads)})")
    return heads


def baked_head_state(head: nn.Module) -> dict[str, torch.Tensor]:
    # `Linear.weight` of a spectral-norm parametrised layer is W / sigma(W); reading it in eval mode runs no power
    # iteration, so it is exactly the weight the model's forward pass uses.
    return {
        f"{prefix}.{name}" if prefix else name: tensor.detach().clone()
        for prefix, module in head.named_modules()
        if isinstance(module, nn.Linear)
        for name, tensor in (("weight", module.weight), ("bias", module.bias))
        if tensor is not None
    }


def _multitask_export_model(
    model: MuppetForMultiTask, heads: Sequence[str], bake_spectral_norm: bool, remote_code: bool
) -> MuppetForMultiTask:
    """A model that shares `model`'s backbone and holds copies of the chosen heads (baked or not)."""
    config = copy.deepcopy(model.config)
    config.heads = {name: dict(model.config.heads[name]) for name in heads}
    config.tasks = {task: head for task, head in model.config.tasks.items() if head in config.heads}
    config.spectral_norm = model.config.spectral_norm and not bake_spectral_norm
    if remote_code:
        # Module paths relative to the repository, where `_copy_model_code` puts the files.
        config.auto_map = {
            "AutoConfig": "configuration_muppet.MuppetConfig",
            "AutoModel": "modeling_muppet.MuppetForMultiTask",
        }
    # As in `MuppetForMultiTask.from_backbone`: the random backbone built here is replaced right away.
    with torch.device("meta"):
        exported = MuppetForMultiTask(config)
    exported.backbone = model.backbone
    new_heads = {}
    for name in heads:
        source = model.heads[name]
        state = (
            baked_head_state(source) if bake_spectral_norm else {k: v.clone() for k, v in source.state_dict().items()}
        )
        head = build_head(config, config.heads[name])
        # `assign` keeps the source's dtype and device. No `post_init` afterwards: it would re-initialise these heads.
        head.load_state_dict(state, strict=True, assign=True)
        new_heads[name] = head
    exported.heads = nn.ModuleDict(new_heads)
    return exported.eval()


def _copy_model_code(folder: Path):
    """Copies `modeling_muppet.py` and the files it imports relatively, for `trust_remote_code=True` loading."""
    modeling_file = Path(modeling_muppet.__file__)
    for source in [modeling_file, *map(Path, get_relative_import_files(str(modeling_file)))]:
        shutil.copyfile(source, folder / source.name)


def load_checkpoint(checkpoint_dir: Path) -> tuple[MuppetForMultiTask, PreTrainedTokenizerBase | None]:
    config_path = checkpoint_dir / "config.json"
    if not config_path.is_file():
        latest = get_last_checkpoint(str(checkpoint_dir)) if checkpoint_dir.is_dir() else None
        if latest is not None:
            raise FileNotFoundError(
                f"{config_path}: not found: the run in {checkpoint_dir} stopped before its final save (no final "
                f"model, tokenizer or card). Export its latest complete checkpoint, {latest}, or resume the run"
            )
        raise FileNotFoundError(f"{config_path}: not found; is {checkpoint_dir} a checkpoint folder?")
    model_type = read_json(config_path).get("model_type")
    if model_type != MuppetConfig.model_type:
        raise ValueError(
            f"{config_path}: field `model_type` is {model_type!r}, not 'muppet'; this is not a Muppet checkpoint"
        )
    if not list(checkpoint_dir.glob("*.safetensors")):
        raise ValueError(
            f"{checkpoint_dir}: no *.safetensors weights; muppet_hf never loads pickled weights (pytorch_model.bin). "
            "Re-save the model with `save_pretrained` (safetensors) first"
        )
    model = MuppetForMultiTask.from_pretrained(checkpoint_dir, use_safetensors=True).eval()
    tokenizer_files = ("tokenizer.json", "tokenizer_config.json")
    has_tokenizer = any((checkpoint_dir / name).is_file() for name in tokenizer_files)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint_dir) if has_tokenizer else None
    return model, tokenizer


def check_no_pickles(folder: Path, ignore_patterns: Sequence[str] | None = None):
    """Refuses a folder holding a pickled file (see `PICKLE_SUFFIXES`), leaving out paths that match
    `ignore_patterns` (`upload_folder`'s patterns, for a folder that is uploaded with them)."""
    files = [path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()]
    pickles = sorted(
        name for name in filter_repo_objects(files, ignore_patterns=ignore_patterns) if name.endswith(PICKLE_SUFFIXES)
    )
    if pickles:
        raise ValueError(f"{folder}: holds pickled files {pickles}; muppet_hf writes and uploads safetensors only")


def replace_folder(staging: Path, output_dir: Path):
    """Moves the finished `staging` folder to `output_dir`, replacing an old export with two renames."""
    if not output_dir.exists():
        staging.rename(output_dir)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.old-", dir=output_dir.parent))
    retired.rmdir()
    output_dir.rename(retired)
    staging.rename(output_dir)
    shutil.rmtree(retired)


def export_checkpoint(
    model: MuppetForMultiTask | str | os.PathLike,
    output_dir: str | os.PathLike,
    heads: str | Sequence[str] = "all",
    *,
    tokenizer: PreTrainedTokenizerBase | None = None,
    metadata: RunMetadata | dict | None = None,
    card_template: str | os.PathLike | None = None,
    repo_id: str | None = None,
    bake_spectral_norm: bool = True,
    remote_code: bool = False,
    overwrite: bool = False,
) -> Path:
    """Writes a Hub-ready folder: safetensors weights, tokenizer, `README.md` model card and `muppet_run.json`.

    Args:
        model (`MuppetForMultiTask`, `str` or `os.PathLike`):
            The model, or a checkpoint folder to read it (and its tokenizer and run metadata) from. Folders must hold
            safetensors weights; pickles are never loaded.
        output_dir (`str` or `os.PathLike`):
            Where to write. Written to a temporary sibling folder first, then renamed into place.
        heads (`str` or `Sequence[str]`, *optional*, defaults to `"all"`):
            `"none"` writes the backbone alone in its own model type, loadable by plain `transformers`; `"all"` or a
            list of head names writes the multi-task model with those heads (`model_type = "muppet"`).
        tokenizer (`PreTrainedTokenizerBase`, *optional*):
            Saved into the folder. Defaults to the checkpoint folder's tokenizer when `model` is a path.
        metadata (`RunMetadata` or `dict`, *optional*):
            The run metadata for the card: a [`RunMetadata`] used as it is, or a `muppet_run.json` mapping laid over
            what is recorded: [`read_run_metadata`] of the folder when `model` is a path, the model's config
            otherwise.
        card_template (`str` or `os.PathLike`, *optional*):
            A template name in `model_cards/` or a `.md` path; see [`resolve_card_template`].
        repo_id (`str`, *optional*):
            The Hub id the card's examples load; defaults to the name of `output_dir`.
        bake_spectral_norm (`bool`, *optional*, defaults to `True`):
            Write spectral-norm heads as plain `Linear` layers holding their normalised weight (see module docstring).
        remote_code (`bool`, *optional*, defaults to `False`):
            Also ship the model code and `auto_map` for `trust_remote_code=True` users; see the module docstring for
            the security trade-off. Only for exports with heads.
        overwrite (`bool`, *optional*, defaults to `False`):
            Replace an existing `output_dir`.

    Returns:
        `Path`: the written folder.

    Raises:
        `ValueError` if `output_dir` exists (without `overwrite`), a head is unknown, or the checkpoint holds pickles.
    """
    output_dir = Path(output_dir)
    if isinstance(model, str | os.PathLike):
        check_export_target(model, output_dir)
    if output_dir.exists() and not overwrite:
        raise ValueError(f"{output_dir} already exists; pass overwrite=True (--overwrite) to replace it")
    recorded = None
    if isinstance(model, str | os.PathLike):
        checkpoint_dir = Path(model)
        model, folder_tokenizer = load_checkpoint(checkpoint_dir)
        tokenizer = tokenizer if tokenizer is not None else folder_tokenizer
        if tokenizer is None:
            warnings.warn(
                f"{checkpoint_dir}: no tokenizer (tokenizer.json, tokenizer_config.json), so the export will have "
                "none and its users cannot tokenize text for it; export a folder that has one (the run's final "
                "folder) or pass `tokenizer=`",
                UserWarning,
                stacklevel=2,
            )
        recorded = read_run_metadata(checkpoint_dir)
    if not isinstance(model, MuppetForMultiTask):
        raise TypeError(f"export_checkpoint takes a MuppetForMultiTask or a folder, got {type(model).__name__}")
    if isinstance(metadata, RunMetadata):
        # A copy: the export fields set below must not leak into the caller's object.
        metadata = copy.deepcopy(metadata)
    else:
        overlay = metadata
        metadata = recorded or RunMetadata.from_config(model.config)
        if overlay is not None:
            metadata.update(overlay, source="metadata")
    exported_heads = resolve_heads(heads, model.config)
    if model.config.lora is not None and (not exported_heads or remote_code):
        raise ValueError(
            "the model has LoRA adapters (config.json field `lora`), which a backbone-only or remote-code export cannot "
            "hold: merge them into the backbone (--merge) or write them as peft adapters (--adapter)"
        )
    if remote_code and not exported_heads:
        raise ValueError("remote_code=True ships the Muppet model code, which a backbone-only export does not need")
    base_config = model.config.base_model_config
    metadata.backbone_type = base_config.model_type
    metadata.heads = {name: dict(spec) for name, spec in model.config.heads.items()}
    metadata.export = {
        "kind": "multitask" if exported_heads else "backbone",
        "heads": exported_heads,
        "spectral_norm_baked": bool(exported_heads) and model.config.spectral_norm and bake_spectral_norm,
        "remote_code": remote_code,
    }

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", suffix=".tmp", dir=output_dir.parent))
    was_training = model.training
    try:
        # Eval mode: dropout off and, for spectral norm, no power-iteration step that would change the weights.
        model.eval()
        if exported_heads:
            _multitask_export_model(model, exported_heads, bake_spectral_norm, remote_code).save_pretrained(staging)
            if remote_code:
                _copy_model_code(staging)
        else:
            model.save_backbone(staging)
        if tokenizer is not None:
            tokenizer.save_pretrained(staging)
        if metadata.is_canary:
            mark_canary(staging / "config.json")
        write_run_metadata(staging, metadata)
        card = build_model_card(
            metadata,
            model_id=repo_id or output_dir.name,
            exported_heads=exported_heads,
            encoder_decoder=bool(base_config.is_encoder_decoder),
            template=card_template,
            remote_code=remote_code,
        )
        card.save(staging / "README.md")
        check_model_card(staging / "README.md")
        check_no_pickles(staging)
        # mkdtemp makes the folder private to its owner; an export is meant to be read by others, files included.
        staging.chmod(0o755)
        for path in staging.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        replace_folder(staging, output_dir)
    finally:
        model.train(was_training)
        if staging.exists():
            shutil.rmtree(staging)
    return output_dir


__all__ = [
    "PICKLE_SUFFIXES",
    "baked_head_state",
    "check_no_pickles",
    "export_checkpoint",
    "load_checkpoint",
    "replace_folder",
    "resolve_heads",
]
