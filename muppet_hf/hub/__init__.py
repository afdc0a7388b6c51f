"""Sharing pre-finetuned Muppet checkpoints on the Hugging Face Hub, in four layers:

- [`run_metadata`]: what a run records (`muppet_run.json`: [`RunMetadata`], [`TaskRecord`]) and how it is read back.
- [`model_card`]: the `README.md` model card built from that record.
- [`export`]: Hub-ready folders ([`export_checkpoint`]): safetensors weights, tokenizer, card, metadata.
- [`push`]: their upload ([`push_export`]) and the checks every upload path shares.
"""

from .export import export_checkpoint
from .model_card import build_model_card, check_model_card
from .push import PushResult, is_export_folder, list_upload_files, push_export
from .run_metadata import RunMetadata, TaskRecord, read_run_metadata, write_run_metadata


__all__ = [
    "PushResult",
    "RunMetadata",
    "TaskRecord",
    "build_model_card",
    "check_model_card",
    "export_checkpoint",
    "is_export_folder",
    "list_upload_files",
    "push_export",
    "read_run_metadata",
    "write_run_metadata",
]
