"""Fine-tunes a base backbone or a Muppet checkpoint on one task, re-using the pre-finetuned head when there is one.

The code of `training/finetune.py`, the script users launch (its docstring holds the commands). [`run`] is that
script's entry point; tests and `evaluation/` call [`parse_args`] and [`main`].

The paper (arXiv 2101.11038, §4) fine-tunes Muppet models on each downstream task; when the task was seen in
pre-finetuning its head is kept, and tasks of a shared head type (multiple choice, span MRC) start from the shared
head. Here that happens by default (`--reuse_head false` starts from a fresh head instead).

A checkpoint pre-finetuned with LoRA first has its adapters merged into the backbone: the adapters of the re-used head
(its own in `per_task` mode, plus the shared one), or the shared adapter for a fresh head. A `per_task` checkpoint
holds no adapter for a task it never saw, so such a task starts from the backbone's own weights (a warning says so).

The output folder holds the fine-tuned model and `finetune_metrics.json`: the task, the starting model, whether the
head was re-used, the training-set size, the seed, the updates trained, the metrics of each evaluated split, the
accuracy of an input-blind guess on each (`guess_accuracy`: majority class, or 1 / choices) and, with
`--select_best_model`, which evaluation's weights were kept (`selection`). Every score is in percent
(`score_scale`), as in `task_metrics.json`: accuracy 87.4, not 0.874; SQuAD F1 and ROUGE as they are.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

from transformers import AutoConfig, AutoTokenizer, set_seed

from muppet_hf import MuppetForMultiTask
from muppet_hf.configuration_muppet import POOLING_MODES
from muppet_hf.data import resolve_model_path
from muppet_hf.finetuning import BestModelCallback, guess_score, metric_to_compute, primary_metric
from muppet_hf.io_utils import write_json
from muppet_hf.lora import SHARED_ADAPTER, adapters_of_head, merge_adapters
from muppet_hf.metric_keys import split_metric_keys
from muppet_hf.metrics import metrics_in_percent
from muppet_hf.parser import MuppetArgumentParser
from muppet_hf.safety import (
    check_model_path,
    folder_is_canary,
    head_label_order,
    prepare_output_dir,
    reorder_head_labels,
)
from muppet_hf.scripts import launch
from muppet_hf.tasks import TaskSpec, get_task, load_raw, prepare_task
from muppet_hf.trainer import MuppetTrainer
from muppet_hf.training_args import MuppetTrainingArguments


logger = logging.getLogger("muppet_hf.finetune")
METRICS_FILE = "finetune_metrics.json"


@dataclass
class FinetuneArguments:
    """Arguments of the fine-tuning script that are not training arguments.

    Args:
        task (`str`): a registry task name (`muppet-hf tasks list`) or a task YAML path.
        model_name_or_path (`str`): a Muppet checkpoint (its heads can be re-used), or a plain backbone (Hub id,
            folder, or `offline:all-MiniLM-L6-v2`).
        tokenizer_name_or_path (`str`, *optional*): defaults to `model_name_or_path`.
        reuse_head (`bool`, *optional*, defaults to `True`): start from the checkpoint's head for this task (its own
            head if the task was pre-finetuned on, else the shared head of its type) when the checkpoint has one.
        train_fraction (`float`, *optional*, defaults to 1.0): share of the training split to train on; the subset
            is drawn with `--seed`, so every seed sees a different low-resource sample.
        max_length (`int`, *optional*, defaults to 128), doc_stride (`int`, *optional*, defaults to 48): as in
            pre-finetuning.
        max_train_examples, max_eval_examples (`int`, *optional*): caps applied before `train_fraction`.
        max_test_examples (`int`, *optional*): cap on the `test` split; defaults to `max_eval_examples`.
        eval_splits (`list[str]`, *optional*, defaults to `["validation"]`): splits evaluated after training; the
            first is also the one evaluated during training (`--eval_strategy`).
        select_best_model (`bool`, *optional*, defaults to `False`): keep the weights of the evaluation during
            training that scored best on the task's primary metric (accuracy, or SQuAD F1 for span MRC), held in
            memory ([`~muppet_hf.finetuning.BestModelCallback`]); needs `--eval_strategy steps`.
        early_stopping_patience (`int`, *optional*): with `select_best_model`, stop after this many evaluations in a
            row without improvement.
        lora (`bool`, *optional*, defaults to `False`): fine-tune a LoRA adapter on the frozen backbone and the head,
            with the `lora_*` training arguments (`lora_mode` defaults to `shared`).
        pooling (`str`, *optional*): how a plain backbone's fresh head reads the encoder: `first`, `mean`, or `auto`
            (the pooling a sentence-transformers backbone declares), as `pooling` in pre-finetuning; defaults to
            `first` for encoder-only backbones. Compare a base with a Muppet checkpoint at the checkpoint's pooling. A
            Muppet checkpoint keeps the pooling its heads were trained with: `auto` or that value, else an error.
        trust_remote_code (`bool`, *optional*, defaults to `False`): run code shipped with the model.
    """

    task: str = field(metadata={"help": "Task name from the registry or a task YAML path."})
    model_name_or_path: str = field(metadata={"help": "Muppet checkpoint or plain backbone to start from."})
    tokenizer_name_or_path: str | None = field(default=None, metadata={"help": "Defaults to model_name_or_path."})
    reuse_head: bool = field(default=True, metadata={"help": "Re-use the checkpoint's head for this task's head."})
    train_fraction: float = field(default=1.0, metadata={"help": "Share of the training split to use, in (0, 1]."})
    max_length: int = field(default=128, metadata={"help": "Token cap per example."})
    doc_stride: int = field(default=48, metadata={"help": "Window overlap of long MRC contexts."})
    max_train_examples: int | None = field(default=None, metadata={"help": "Cap on training examples."})
    max_eval_examples: int | None = field(default=None, metadata={"help": "Cap on evaluation examples per split."})
    max_test_examples: int | None = field(
        default=None, metadata={"help": "Cap on test examples; defaults to max_eval_examples."}
    )
    eval_splits: list[str] = field(default_factory=lambda: ["validation"], metadata={"help": "Splits to evaluate."})
    select_best_model: bool = field(
        default=False, metadata={"help": "Keep the weights of the best evaluation during training (primary metric)."}
    )
    early_stopping_patience: int | None = field(
        default=None, metadata={"help": "Stop after this many evaluations without improvement (select_best_model)."}
    )
    lora: bool = field(
        default=False,
        metadata={"help": "Fine-tune a LoRA adapter on the frozen backbone (sets `lora_mode: shared` if unset)."},
    )
    pooling: str | None = field(
        default=None,
        metadata={
            "help": "Pooling of a plain backbone's head: `first`, `mean` or `auto` (what a sentence-transformers "
            "backbone declares). Default: `first` (encoder-only). A Muppet checkpoint keeps its own."
        },
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Run code shipped with the model."})

    def __post_init__(self):
        if self.pooling not in (None, "auto", *POOLING_MODES):
            raise ValueError(f"field `pooling` must be one of auto, {', '.join(POOLING_MODES)}; got {self.pooling!r}")
        if not 0 < self.train_fraction <= 1:
            raise ValueError(f"field `train_fraction` must be in (0, 1], got {self.train_fraction}")
        if self.early_stopping_patience is not None and not self.select_best_model:
            raise ValueError("field `early_stopping_patience` needs `select_best_model`: it stops on the same metric")
        if self.select_best_model and not self.eval_splits:
            raise ValueError("field `select_best_model` needs a split to select on (field `eval_splits`)")


def parse_args(argv: list[str] | None = None) -> tuple[FinetuneArguments, MuppetTrainingArguments]:
    """Parses `--config <recipe.yaml>` as defaults, then the remaining flags on top of them."""
    parser = MuppetArgumentParser((FinetuneArguments, MuppetTrainingArguments))
    finetune_args, training_args, _ = parser.parse_args_and_config(argv)
    finetune_args.model_name_or_path = resolve_model_path(finetune_args.model_name_or_path)
    finetune_args.tokenizer_name_or_path = resolve_model_path(finetune_args.tokenizer_name_or_path)
    if finetune_args.lora and training_args.lora_mode is None:
        training_args.lora_mode = "shared"
    return finetune_args, training_args


def is_muppet_checkpoint(name_or_path: str, trust_remote_code: bool = False) -> bool:
    return AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code).model_type == "muppet"


def load_model(args: FinetuneArguments, spec: TaskSpec, r4f: bool = False) -> tuple[MuppetForMultiTask, bool]:
    """The model to fine-tune with exactly one head, the task's; returns it and whether that head was re-used."""
    wanted = spec.head_spec()
    if not is_muppet_checkpoint(args.model_name_or_path, args.trust_remote_code):
        model = MuppetForMultiTask.from_backbone(
            args.model_name_or_path,
            heads={spec.head: wanted},
            trust_remote_code=args.trust_remote_code,
            spectral_norm=r4f,
            pooling=args.pooling,
        )
        model.config.tasks = {spec.name: spec.head}
        model.config.canary = spec.is_canary or folder_is_canary(args.model_name_or_path)
        return model, False

    model = MuppetForMultiTask.from_pretrained(args.model_name_or_path, trust_remote_code=args.trust_remote_code)
    if args.pooling not in (None, "auto", model.config.pooling):
        raise ValueError(
            f"{args.model_name_or_path}: field `pooling` is {args.pooling!r} but the checkpoint's heads were trained "
            f"with {model.config.pooling!r} pooling (config.json field `pooling`); drop --pooling to keep it"
        )
    existing = model.config.heads.get(spec.head)
    reused = args.reuse_head and existing is not None
    if model.config.lora is not None:
        model = merge_pretrained_adapters(model, spec.head if reused else None)
    if reused and (existing["type"], existing.get("num_labels")) != (wanted["type"], wanted.get("num_labels")):
        raise ValueError(
            f"{spec.file}: task {spec.name!r}, field `head`: the checkpoint's head {spec.head!r} is {existing} but "
            f"the task needs {wanted}; rename the task's head or pass --reuse_head false to train a fresh one"
        )
    if reused:
        match_head_labels(model, spec)
    for name in list(model.config.heads):
        # Only the task's head is trained; the others would sit idle (and upset DDP's unused-parameter check).
        if name != spec.head or not reused:
            model.remove_head(name)
    if not reused:
        model.add_head(spec.head, wanted["type"], wanted.get("num_labels"), wanted.get("label_names"))
    model.config.tasks = {spec.name: spec.head}
    # A model that saw BIG-bench data at any stage stays unpublishable (`config.json` field `canary`).
    model.config.canary = model.config.canary or spec.is_canary
    return model, reused


def match_head_labels(model: MuppetForMultiTask, spec: TaskSpec):
    """Re-orders the re-used head's rows when it names the task's labels in another order; refuses other labels."""
    existing = model.config.heads[spec.head].get("label_names")
    where = f"{spec.file}: task {spec.name!r}, field `label_names`"
    if head_label_order(existing, spec.label_names, where) is None:
        return
    reorder_head_labels(model, spec.head, spec.label_names)
    logger.warning(
        "%s: the checkpoint's head %r predicts %s; its rows were re-ordered to the task's order %s",
        where,
        spec.head,
        existing,
        spec.label_names,
    )


def merge_pretrained_adapters(model: MuppetForMultiTask, head: str | None) -> MuppetForMultiTask:
    """The LoRA-pre-finetuned `model` with the adapters of `head` (or, for a fresh head, the shared one) merged."""
    settings = model.config.lora
    if head is not None:
        adapters = adapters_of_head(settings, head)
    else:
        adapters = [name for name in settings["adapters"] if name == SHARED_ADAPTER]
        if not adapters:
            logger.warning(
                "the checkpoint's %s adapters belong to its own heads; a fresh head starts from the backbone's own "
                "weights, not from a pre-finetuned representation",
                settings["mode"],
            )
    return merge_adapters(model, adapters=adapters)


def main(args: FinetuneArguments, training_args: MuppetTrainingArguments) -> dict:
    """Fine-tunes, evaluates and writes the model and `finetune_metrics.json`; returns what that file holds."""
    spec = get_task(args.task)
    check_model_path(args.model_name_or_path)
    check_model_path(args.tokenizer_name_or_path, "tokenizer_name_or_path")
    prepare_output_dir(training_args)
    set_seed(training_args.seed)
    tokenizer = AutoTokenizer.from_pretrained(
        args.tokenizer_name_or_path or args.model_name_or_path, trust_remote_code=args.trust_remote_code
    )
    model, reused = load_model(args, spec, r4f=training_args.r4f)
    logger.info("task %s: head %r %s", spec.name, spec.head, "re-used from the checkpoint" if reused else "fresh")

    splits = ["train", *[split for split in args.eval_splits if split != "train"]]
    with training_args.main_process_first(desc="tokenize task"):
        raw = load_raw(spec, splits)
        missing = [split for split in splits if split not in raw]
        if missing:
            raise ValueError(f"{spec.file}: task {spec.name!r} has no {missing} split(s) (field `source.splits`)")
        available = (
            len(raw["train"]) if args.max_train_examples is None else min(len(raw["train"]), args.max_train_examples)
        )
        train_examples = max(1, round(available * args.train_fraction))
        caps = {"train": train_examples, **dict.fromkeys(args.eval_splits, args.max_eval_examples)}
        if "test" in caps and args.max_test_examples is not None:
            caps["test"] = args.max_test_examples
        prepared = prepare_task(
            spec,
            tokenizer,
            max_length=args.max_length,
            doc_stride=args.doc_stride,
            splits=splits,
            max_examples=caps,
            seed=training_args.seed,
            raw=raw,
        )

    metric_names = list(spec.metrics)
    selection = None
    if args.select_best_model:
        if training_args.eval_strategy == "no":
            raise ValueError(
                "field `select_best_model` selects among the evaluations made during training; set `eval_strategy` "
                "(e.g. `--eval_strategy steps --eval_steps 25`)"
            )
        metric = primary_metric(spec.head_type)
        if metric_to_compute(spec.head_type) not in metric_names:
            metric_names.append(metric_to_compute(spec.head_type))
        selection = BestModelCallback(f"eval_{spec.name}_{metric}", patience=args.early_stopping_patience)
    trainer = MuppetTrainer(
        model=model,
        args=training_args,
        train_dataset={spec.name: prepared["train"]},
        eval_dataset={spec.name: prepared[args.eval_splits[0]]} if args.eval_splits else None,
        processing_class=tokenizer,
        task_metrics={spec.name: metric_names},
        callbacks=[selection] if selection is not None else None,
    )
    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)

    guesses = {split: guess_score(spec.head_type, prepared[split]) for split in args.eval_splits}
    results = {
        "task": spec.name,
        "model_name_or_path": args.model_name_or_path,
        "head": spec.head,
        "head_reused": reused,
        "lora_mode": training_args.lora_mode,
        "train_fraction": args.train_fraction,
        "train_examples": train_examples,
        "seed": training_args.seed,
        "train_runtime": train_result.metrics.get("train_runtime"),
        "train_loss": train_result.metrics.get("train_loss"),
        "global_step": train_result.global_step,
        "max_steps": trainer.state.max_steps,
        # Every score below in percent, as in task_metrics.json and the paper's tables (readers check this field).
        "score_scale": "percent",
        "metrics": {},
        # Accuracy of the majority class (or a uniform guess for multiple choice) on each evaluated split.
        "guess_accuracy": {split: None if guess is None else 100.0 * guess for split, guess in guesses.items()},
    }
    if selection is not None:

        def in_percent(score: float | None) -> float | None:
            return None if score is None else metrics_in_percent({metric: score}, spec.head_type)[metric]

        results["selection"] = {
            "split": args.eval_splits[0],
            "metric": selection.metric_key,
            "best_step": selection.best_step,
            "best_score": in_percent(selection.best_score),
            "evaluations": [[step, in_percent(score)] for step, score in selection.evaluations],
        }
    for split in args.eval_splits:
        metrics = trainer.evaluate({spec.name: prepared[split]}, metric_key_prefix=split)
        by_task = split_metric_keys(metrics, [spec.name], prefix=split)
        results["metrics"][split] = metrics_in_percent(by_task.get(spec.name, {}), spec.head_type)
        trainer.log_metrics(split, metrics)
    if trainer.is_world_process_zero():
        write_json(Path(training_args.output_dir) / METRICS_FILE, results)
    return results


def run(argv: list[str] | None = None) -> dict:
    """The command line of `training/finetune.py` (see [`~muppet_hf.scripts.launch`])."""
    return launch(main, parse_args, argv)


if __name__ == "__main__":
    run()
