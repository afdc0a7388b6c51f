"""muppet_hf: Muppet pre-finetuning (Aghajanyan et al., arXiv 2101.11038) for Hugging Face transformers."""

from transformers import AutoConfig, AutoModel

from .configuration_muppet import MuppetConfig
from .hub import RunMetadata, TaskRecord, export_checkpoint, push_export, read_run_metadata, write_run_metadata
from .modeling_muppet import (
    MuppetClassificationHead,
    MuppetForMultiTask,
    MuppetMultipleChoiceHead,
    MuppetMultiTaskOutput,
    MuppetPreTrainedModel,
    MuppetSeq2SeqHead,
    MuppetSpanHead,
    MuppetTokenClassificationHead,
)


__version__ = "0.1.0.dev0"

# The project's one extension point: after `import muppet_hf`, `AutoModel.from_pretrained` on a Muppet
# checkpoint returns the multi-task model with all its heads.
AutoConfig.register(MuppetConfig.model_type, MuppetConfig, exist_ok=True)
AutoModel.register(MuppetConfig, MuppetForMultiTask, exist_ok=True)

# The trainer pulls in `transformers.Trainer` (accelerate, datasets); it is imported on first use only.
_LAZY = {"MuppetTrainer": ".trainer", "MuppetTrainingArguments": ".training_args"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MuppetClassificationHead",
    "MuppetConfig",
    "MuppetForMultiTask",
    "MuppetMultiTaskOutput",
    "MuppetMultipleChoiceHead",
    "MuppetPreTrainedModel",
    "MuppetSeq2SeqHead",
    "MuppetSpanHead",
    "MuppetTokenClassificationHead",
    "MuppetTrainer",
    "MuppetTrainingArguments",
    "RunMetadata",
    "TaskRecord",
    "export_checkpoint",
    "push_export",
    "read_run_metadata",
    "write_run_metadata",
]
