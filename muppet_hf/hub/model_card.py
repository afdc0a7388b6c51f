"""Model cards of Muppet checkpoints and exports: filled from `model_cards/` templates with `huggingface_hub.ModelCard`.

[`build_model_card`] turns a run's [`RunMetadata`] into a card: the YAML header (`ModelCardData`, with a `model-index`
of every score in percent), the tasks, heads, settings and results tables, and a usage snippet that feeds the example
head the input shape it was trained on. [`check_model_card`] checks a written card offline.
"""

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .run_metadata import CANARY_TAGS, RunMetadata, backbone_hub_id, hub_id_or_none


# `muppet_hf/model_cards/` in an installed wheel, the repository's top-level `model_cards/` in a source checkout.
MODEL_CARDS_DIR = Path(__file__).resolve().parent.parent / "model_cards"
if not MODEL_CARDS_DIR.is_dir():
    MODEL_CARDS_DIR = MODEL_CARDS_DIR.parent.parent / "model_cards"
# The card template of each released base model, matched as a substring of `base_model` (first match wins).
TEMPLATE_OF_BASE_MODEL = (
    ("roberta-large", "muppet-roberta-large"),
    ("roberta-base", "muppet-roberta-base"),
    ("bart-large", "muppet-bart-large"),
    ("minilm", "muppet-minilm-offline"),
)
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
MUPPET_BIBTEX = """@article{aghajanyan2021muppet,
  title={Muppet: Massive Multi-task Representations with Pre-Finetuning},
  author={Aghajanyan, Armen and Gupta, Anchit and Shrivastava, Akshat and Chen, Xilun and Zettlemoyer, Luke and
          Gupta, Sonal},
  journal={arXiv preprint arXiv:2101.11038},
  year={2021}
}"""


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


def settings_section(metadata: RunMetadata) -> str:
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


def _skipped_tasks_note(metadata: RunMetadata) -> str:
    if not metadata.skipped_tasks:
        return ""
    names = ", ".join(f"`{name}`" for name in sorted(metadata.skipped_tasks))
    return (
        f"\n\nThe recipe also listed {len(metadata.skipped_tasks)} task(s) that this run left out because their "
        f"source could not be fetched (`skip_unavailable_tasks`): {names}."
    )


def _tasks_section(metadata: RunMetadata) -> str:
    if not metadata.tasks:
        return "The run recorded no tasks." + _skipped_tasks_note(metadata)
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
        "except for span MRC, where a long context gives several windows." + _skipped_tasks_note(metadata)
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


def canary_notice(metadata: RunMetadata) -> str:
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
        canary_notice=canary_notice(metadata),
        usage=_usage_section(model_id, metadata, exported_heads, encoder_decoder, remote_code),
        heads_section=_heads_section(metadata, exported_heads),
        tasks_section=_tasks_section(metadata),
        settings_section=settings_section(metadata),
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
            if hub_id_or_none(base_model) is None:
                raise ValueError(f"{path}: field `base_model` {base_model!r} is not a Hub model id")
    for result in data.eval_results or []:
        if not isinstance(result.metric_value, int | float) or isinstance(result.metric_value, bool):
            raise ValueError(f"{path}: field `model-index` holds a non-numeric value for {result.dataset_name}")
    if "do-not-publish" in (data.tags or []) and "canary" not in data.tags:
        raise ValueError(f"{path}: field `tags` marks the model do-not-publish but lacks `canary`")
    return card


__all__ = [
    "MODEL_CARDS_DIR",
    "available_card_templates",
    "build_model_card",
    "canary_notice",
    "check_model_card",
    "resolve_card_template",
    "settings_section",
]
