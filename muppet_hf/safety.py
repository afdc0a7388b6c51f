"""Guards that keep a command from destroying a run, publishing canary data, silently mis-training or overrunning.

Each guard runs before any work starts (data preparation, a training step, a file write) and fails with a
`ValueError` that names the folder, file or field at fault:

- [`check_export_target`]: an export never writes over, into or around its own source folder.
- [`prepare_output_dir`]: a training run never mixes its checkpoints with another run's in a reused folder.
- [`check_training_arguments`]: `max_steps` is positive (or -1 with epochs) and the learning rate is not negative.
- [`resolve_resume`]: `--resume_from_checkpoint true` / `latest` means "the latest complete checkpoint".
- [`check_model_path`]: a local model folder exists and holds a `config.json`.
- [`head_label_order`] / [`reorder_head_labels`]: a re-used head predicts the task's labels in the task's order.
- [`refuse_canary`] / [`folder_is_canary`]: models trained on BIG-bench (canary) data are not uploaded.
- [`redact`]: a Hub token never reaches the terminal through an echoed error message.
"""

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from .io_utils import write_json


if TYPE_CHECKING:
    from .modeling_muppet import MuppetForMultiTask
    from .training_args import MuppetTrainingArguments


logger = logging.getLogger(__name__)

# Command-line spellings of `resume_from_checkpoint=True` (the latest complete checkpoint of `output_dir`).
RESUME_LATEST = ("true", "latest")
RESUME_NONE = ("", "false", "none")
# What a staging folder of `MuppetTrainer._save_checkpoint` is called; a kill can leave one behind.
STAGING_PATTERN = re.compile(r"^tmp-checkpoint-\d+$")
# What a training run writes into its output folder: checkpoints (and their staging folders), the final model and
# its records, TensorBoard logs. Other files (a recipe or a launcher's log put there beforehand) are not a run.
RUN_OUTPUT_PATTERN = re.compile(
    r"^((tmp-)?checkpoint-\d+|runs|config\.json|README\.md|.*\.safetensors(\.index\.json)?|trainer_state\.json|"
    r"training_args\.(json|bin)|.*results\.json|task_metrics\.json|finetune_metrics\.json|muppet_run\.json)$"
)
CANARY_MESSAGE = (
    "BIG-bench (canary) data: BIG-bench asks that models trained on its tasks not be published, so that its tasks "
    "stay usable as an evaluation"
)


def check_export_target(source: str | os.PathLike, output_dir: str | os.PathLike) -> None:
    """Refuses an export whose output folder is its source, contains it, or lies inside it.

    `--overwrite` replaces the output folder, so any of these would delete the run being exported (its checkpoints,
    metrics and logs), and writing inside the source would mix an export into a checkpoint. Refused with or without
    `overwrite`.
    """
    source_path, target = Path(source).resolve(), Path(output_dir).resolve()
    if source_path == target or source_path.is_relative_to(target) or target.is_relative_to(source_path):
        relation = (
            "is the source"
            if source_path == target
            else "contains the source"
            if source_path.is_relative_to(target)
            else "lies inside the source"
        )
        raise ValueError(
            f"export: the output folder {output_dir} {relation} {source}; exporting there would replace or mix "
            "into the run being exported. Pick an output folder outside it"
        )


def check_training_arguments(args: "MuppetTrainingArguments") -> None:
    """Checks the training arguments that `transformers.TrainingArguments` lets through but that mis-train.

    - `max_steps` must be an int, positive, or -1 (then `num_train_epochs` decides): 0 would still run one update.
    - `learning_rate` must not be negative (it would climb the loss).
    """
    max_steps = args.max_steps
    if not isinstance(max_steps, int) or isinstance(max_steps, bool):
        raise TypeError(f"MuppetTrainingArguments: field `max_steps` must be an int, got {max_steps!r}")
    if max_steps == 0 or max_steps < -1:
        raise ValueError(
            f"MuppetTrainingArguments: field `max_steps` is {max_steps}; give a positive number of updates, or -1 to "
            "train for `num_train_epochs`"
        )
    if max_steps == -1 and not args.num_train_epochs > 0:
        raise ValueError(
            f"MuppetTrainingArguments: field `num_train_epochs` is {args.num_train_epochs} with `max_steps` -1; "
            "nothing would be trained"
        )
    if not args.learning_rate >= 0:
        raise ValueError(
            f"MuppetTrainingArguments: field `learning_rate` must be non-negative, got {args.learning_rate}"
        )


def resolve_resume(value: str | bool | None) -> str | bool | None:
    """`resume_from_checkpoint` as `Trainer.train` takes it: `True` for "latest", `None` for "no", else the path."""
    if not isinstance(value, str):
        return value
    if value.strip().lower() in RESUME_LATEST:
        return True
    if value.strip().lower() in RESUME_NONE:
        return None
    return value


def run_outputs(folder: str | os.PathLike) -> list[str]:
    """The entries of `folder` that a training run wrote (see `RUN_OUTPUT_PATTERN`), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(path.name for path in folder.iterdir() if RUN_OUTPUT_PATTERN.match(path.name))


def prepare_output_dir(args: "MuppetTrainingArguments") -> None:
    """Refuses an `output_dir` that holds a run unless a resume or `overwrite_output_dir` is asked for.

    A second run in a folder that holds another run's checkpoints would overwrite some of them and keep the others,
    so "the latest checkpoint" could belong to the old run. A folder holding any checkpoint, model, run record or
    TensorBoard log is therefore refused; files a launcher put there first (a recipe, a log) are not a run. With
    `overwrite_output_dir` the whole folder is moved aside in one rename and deleted, so no mix of the two runs is
    ever visible. Called by the training scripts before any data is prepared; in a multi-process run only the main
    process checks and clears the folder.
    """
    if resolve_resume(args.resume_from_checkpoint) is not None:
        return
    output_dir = Path(args.output_dir)
    with args.main_process_first(desc="check the output folder"):
        if args.process_index != 0 or not output_dir.is_dir():
            return
        entries = run_outputs(output_dir)
        if not entries:
            return
        if not args.overwrite_output_dir:
            shown = entries[:5] + (["..."] if len(entries) > 5 else [])
            raise ValueError(
                f"output folder {output_dir} holds a run ({', '.join(shown)}); a new run there would mix its "
                "checkpoints with the old ones. Pass --overwrite_output_dir to replace the folder, "
                "--resume_from_checkpoint true to continue the run, or choose another --output_dir"
            )
        clear_folder(output_dir)
        logger.warning("--overwrite_output_dir: removed the previous contents of %s", output_dir)


def clear_folder(folder: Path) -> None:
    """Empties `folder` atomically: it is renamed aside in one step, recreated empty, then the old one is deleted."""
    retired = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
    retired.rmdir()
    folder.rename(retired)
    folder.mkdir()
    shutil.rmtree(retired)


def remove_stale_staging(run_dir: str | os.PathLike, keep: str | None = None) -> list[str]:
    """Deletes `tmp-checkpoint-N` folders that a kill mid-save left in `run_dir`; returns their names."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    stale = [
        path for path in run_dir.iterdir() if path.is_dir() and STAGING_PATTERN.match(path.name) and path.name != keep
    ]
    for path in stale:
        shutil.rmtree(path)
    return sorted(path.name for path in stale)


def check_model_path(name_or_path: str | None, field_name: str = "model_name_or_path") -> None:
    """Refuses a local model folder that does not exist or holds no `config.json`, before any Hub lookup.

    A name that can only be a path (absolute, `./`, `../`, `~`, more than one `/`, or not a valid Hub id) must be
    an existing folder. Without this check, a missing folder reaches the Hub client
    as an invalid repository id, and a folder without a config gives a tokenizer hint about sentencepiece.
    """
    if name_or_path is None:
        return
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"field `{field_name}`: {name_or_path} is a file; give a model folder or a Hub id")
        if not (path / "config.json").is_file():
            raise ValueError(
                f"field `{field_name}`: {name_or_path} is not a model folder: it has no config.json (a run "
                "interrupted before its final save keeps its weights in checkpoint-N/ subfolders)"
            )
        return
    looks_local = path.is_absolute() or name_or_path.startswith((".", "~")) or name_or_path.count("/") > 1
    if not looks_local:
        try:
            validate_repo_id(name_or_path)
        except HFValidationError:
            looks_local = True
    if looks_local:
        raise ValueError(f"field `{field_name}`: the folder {name_or_path} does not exist")


def head_label_order(existing: Sequence[str] | None, wanted: Sequence[str] | None, where: str) -> list[int] | None:
    """The row of the existing head that each wanted label reads, or `None` when the head can be used as it is.

    Raises:
        `ValueError` (prefixed by `where`) when the two heads name different label sets.
    """
    if existing is None or wanted is None or list(existing) == list(wanted):
        return None
    if sorted(existing) != sorted(wanted):
        raise ValueError(
            f"{where}: the checkpoint's head predicts the labels {list(existing)} but the task's `label_names` are "
            f"{list(wanted)}; re-using it would mis-label every prediction. Pass --reuse_head false to train a fresh "
            "head, or give the task a head of its own name"
        )
    return [list(existing).index(name) for name in wanted]


@torch.no_grad()
def reorder_head_labels(model: "MuppetForMultiTask", head: str, label_names: Sequence[str]) -> None:
    """Permutes the output rows of a classification or tagging head so that it predicts `label_names` in order.

    The config's `label_names` of the head are updated to match. Spectral-norm heads are permuted through their
    `original` weight, which has the same spectral norm after a row permutation.
    """
    spec = model.config.heads[head]
    order = head_label_order(spec.get("label_names"), label_names, f"head {head!r}")
    if order is None:
        return
    module = model.heads[head]
    projection = module.out_proj if spec["type"] == "classification" else module.classifier
    index = torch.tensor(order, device=projection.bias.device)
    parametrized = torch.nn.utils.parametrize.is_parametrized(projection, "weight")
    weight = projection.parametrizations.weight.original if parametrized else projection.weight
    weight.copy_(weight[index])
    projection.bias.copy_(projection.bias[index])
    if parametrized:
        # The power-iteration vector `u` lives in the output space, so it is permuted with the rows.
        for parametrization in projection.parametrizations.weight:
            parametrization._u.copy_(parametrization._u[index])
    spec["label_names"] = list(label_names)


def folder_is_canary(folder: str | os.PathLike) -> bool:
    """Whether a local model folder's `config.json` marks it as trained on BIG-bench (canary) data."""
    config_path = Path(folder) / "config.json"
    if not config_path.is_file():
        return False
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_path}: not valid JSON: {err}") from err
    return isinstance(config, dict) and config.get("canary") is True


def mark_canary(config_path: str | os.PathLike) -> None:
    """Sets `"canary": true` in a `config.json`, so that the mark travels with any folder holding the weights."""
    config_path = Path(config_path)
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["canary"] = True
    write_json(config_path, config, sort_keys=True)


def refuse_canary(what: str, allow_canary: bool) -> None:
    """Raises unless `allow_canary`; `what` names the model or folder (and the canary tasks when known)."""
    if not allow_canary:
        raise ValueError(
            f"{what} was trained on {CANARY_MESSAGE}. Refusing to upload it; pass --allow-canary "
            "(allow_canary=True) to override, and keep the repository private"
        )


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret (a Hub token) and every `Bearer …` credential replaced by `***`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return re.sub(r"(?i)(bearer\s+)\S+", r"\1***", text)


__all__ = [
    "check_export_target",
    "check_model_path",
    "check_training_arguments",
    "clear_folder",
    "folder_is_canary",
    "head_label_order",
    "mark_canary",
    "prepare_output_dir",
    "redact",
    "refuse_canary",
    "remove_stale_staging",
    "reorder_head_labels",
    "resolve_resume",
    "run_outputs",
]
