import importlib
import json
from pathlib import Path

import pytest

from muppet_hf import MuppetForMultiTask
from muppet_hf.data import OFFLINE_BACKBONE, load_offline_task, offline_cache_dir
from muppet_hf.data.offline.build import task_dir
from muppet_hf.safety import folder_is_canary


REPO = Path(__file__).resolve().parent.parent
TINY_RECIPE = REPO / "training" / "recipes" / "tiny.yaml"


def load_script(name: str):
    return importlib.import_module(f"muppet_hf.scripts.{name}")


def prefinetune(output_dir: Path, *flags: str) -> dict:
    script = load_script("prefinetune")
    return script.main(*script.parse_args(["--output_dir", str(output_dir), "--report_to", "none", *flags]))


def finetune(output_dir: Path, *flags: str) -> dict:
    script = load_script("finetune")
    results = script.main(*script.parse_args(["--output_dir", str(output_dir), "--report_to", "none", *flags]))
    assert json.loads((output_dir / "finetune_metrics.json").read_text()) == results
    return results


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("tiny") / "muppet"
    prefinetune(output_dir, "--config", str(TINY_RECIPE), "--max_steps", "2")
    return output_dir


def test_shared_span_head_is_reused_and_other_heads_dropped(tiny_checkpoint, tmp_path):
    script = load_script("finetune")
    flags = ["--model_name_or_path", str(tiny_checkpoint), "--task", str(REPO / "training/data/tiny/tiny_qa.yaml")]
    args, _ = script.parse_args([*flags, "--output_dir", str(tmp_path / "unused")])
    model, reused = script.load_model(args, script.get_task(args.task))
    assert reused
    pre = MuppetForMultiTask.from_pretrained(tiny_checkpoint)
    for name, tensor in pre.heads["span"].state_dict().items():
        assert (model.heads["span"].state_dict()[name] == tensor).all(), name

    results = finetune(tmp_path / "ft", *flags, "--max_steps", "1", "--use_cpu", "true", "--save_strategy", "no")
    assert results["head"] == "span" and results["head_reused"] is True
    assert {"loss", "exact_match", "f1"} <= set(results["metrics"]["validation"])
    model = MuppetForMultiTask.from_pretrained(tmp_path / "ft")
    assert set(model.config.heads) == {"span"} and model.config.tasks == {"tiny_qa": "span"}


def test_reuse_head_false_starts_fresh_and_fraction_subsamples(tiny_checkpoint, tmp_path):
    common = [
        "--model_name_or_path",
        str(tiny_checkpoint),
        "--task",
        str(REPO / "training/data/tiny/tiny_sentiment.yaml"),
    ]
    common += ["--max_steps", "1", "--use_cpu", "true", "--save_strategy", "no"]
    full = finetune(tmp_path / "full", *common)
    assert full["head_reused"] is True
    fresh = finetune(tmp_path / "fresh", *common, "--reuse_head", "false", "--train_fraction", "0.5")
    assert fresh["head_reused"] is False
    assert fresh["train_examples"] == round(full["train_examples"] * 0.5)


def test_fraction_must_be_in_range(tmp_path):
    script = load_script("finetune")
    with pytest.raises(ValueError, match="train_fraction"):
        script.parse_args(["--model_name_or_path", "x", "--task", "x", "--train_fraction", "0", "--output_dir", "y"])


def test_incompatible_head_is_a_clear_error(tiny_checkpoint, tmp_path):
    spec_file = tmp_path / "tiny_choice_as_classes.yaml"
    spec_file.write_text(
        f"include: {REPO / 'training/data/tiny/tiny_sentiment.yaml'}\nname: other\nhead: tiny_sentiment\n"
        "label_names: [a, b, c]\n"
    )
    with pytest.raises(ValueError, match=r"other.*field `head`.*--reuse_head false"):
        finetune(
            tmp_path / "bad", "--model_name_or_path", str(tiny_checkpoint), "--task", str(spec_file),
            "--max_steps", "1", "--use_cpu", "true",
        )  # fmt: skip


def test_pooling_reaches_a_plain_backbone_and_a_checkpoint_keeps_its_own(tiny_checkpoint, tmp_path):
    script = load_script("finetune")
    backbone = tmp_path / "backbone"
    MuppetForMultiTask.from_pretrained(tiny_checkpoint).save_backbone(backbone)
    # A sentence-transformers folder declaring mean pooling, as all-MiniLM-L6-v2's does.
    modules = [{"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    (backbone / "modules.json").write_text(json.dumps(modules))
    (backbone / "1_Pooling").mkdir()
    (backbone / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    task = str(REPO / "training/data/tiny/tiny_sentiment.yaml")

    def pooling_of(model_path: Path, *flags: str) -> str:
        argv = ["--model_name_or_path", str(model_path), "--task", task, "--output_dir", str(tmp_path / "x"), *flags]
        args, _ = script.parse_args(argv)
        model, _ = script.load_model(args, script.get_task(args.task))
        return model.config.pooling

    assert pooling_of(backbone) == "first", "without --pooling a fresh head reads the first token, as in prefinetune"
    assert pooling_of(backbone, "--pooling", "auto") == "mean"
    assert pooling_of(backbone, "--pooling", "first") == "first"
    assert pooling_of(tiny_checkpoint) == pooling_of(tiny_checkpoint, "--pooling", "auto") == "first"
    with pytest.raises(ValueError, match=r"field `pooling` is 'mean'.*trained with 'first'"):
        pooling_of(tiny_checkpoint, "--pooling", "mean")
    with pytest.raises(ValueError, match="field `pooling`"):
        pooling_of(backbone, "--pooling", "max")


def _offline_suite_ready() -> bool:
    try:
        load_offline_task("squadshifts_reddit")
    except (FileNotFoundError, ValueError):
        return False
    return (offline_cache_dir() / "backbones").is_dir()


def few_step_prefinetune(output_dir: Path, tasks: list[str], *flags: str) -> dict:
    """Real MiniLM on real tasks for 3 updates of one sub-batch of 4 per task, 32 training examples a task."""
    return prefinetune(
        output_dir,
        "--model_name_or_path", OFFLINE_BACKBONE, "--tasks", *tasks, "--tasks_per_update", str(len(tasks)),
        "--max_steps", "3", "--per_device_train_batch_size", "4",
        "--max_train_examples", "32", "--max_eval_examples", "8", "--max_length", "96",
        "--use_cpu", "true", "--save_strategy", "no", *flags,
    )  # fmt: skip


def few_step_finetune(output_dir: Path, model: str | Path, task: str, fraction: str) -> dict:
    """2 updates of 4 on `fraction` of `task`'s training set, scored on 8 validation examples."""
    return finetune(
        output_dir, "--model_name_or_path", str(model), "--task", task, "--train_fraction", fraction,
        "--max_steps", "2", "--per_device_train_batch_size", "4", "--max_eval_examples", "8",
        "--max_length", "96", "--use_cpu", "true", "--save_strategy", "no",
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(not _offline_suite_ready(), reason="needs `muppet-hf data build offline-suite` (CI runs it first)")
def test_real_minilm_prefinetune_then_finetune_held_out_with_head_reuse(tmp_path):
    """Real MiniLM, real tasks of three families, a few steps; then a held-out MRC task re-uses the span head."""
    tasks = ["rotten_tomatoes", "bb_social_iqa", "squad_v1_dev"]
    metrics = few_step_prefinetune(tmp_path / "muppet", tasks)
    assert set(metrics) == set(tasks)
    assert {"accuracy", "loss"} <= set(metrics["bb_social_iqa"]) and "f1" in metrics["squad_v1_dev"]
    reused = few_step_finetune(tmp_path / "reddit", tmp_path / "muppet", "squadshifts_reddit", "0.002")
    assert reused["head_reused"] is True and 0 <= reused["metrics"]["validation"]["f1"] <= 100
    base = few_step_finetune(tmp_path / "base", OFFLINE_BACKBONE, "strategyqa", "0.01")
    assert base["head_reused"] is False and 0 <= base["metrics"]["validation"]["accuracy"] <= 100


# The tasks of the suite that come from other packages than BIG-bench: real data without a canary.
PACKAGE_TASKS = ["rotten_tomatoes", "reuters_r8", "newsgroups20"]


def _package_tasks_ready() -> bool:
    # The backbone is fetched by the test if it is not cached yet.
    return all((task_dir(offline_cache_dir(), name) / "build_info.json").is_file() for name in PACKAGE_TASKS)


@pytest.mark.slow
@pytest.mark.skipif(not _package_tasks_ready(), reason="needs `muppet-hf data build offline-suite` (CI runs it first)")
def test_real_minilm_on_the_package_tasks_reuses_a_seen_head_and_is_publishable(tmp_path):
    """Real MiniLM and real tasks that need no BIG-bench archive: pre-finetune two, fine-tune a seen and an unseen."""
    metrics = few_step_prefinetune(tmp_path / "muppet", PACKAGE_TASKS[:2], "--pooling", "auto")
    assert set(metrics) == set(PACKAGE_TASKS[:2]) and {"accuracy", "loss"} <= set(metrics["reuters_r8"])
    # No BIG-bench task, so no canary mark: this checkpoint may be exported and pushed.
    assert not folder_is_canary(tmp_path / "muppet")
    seen = few_step_finetune(tmp_path / "seen", tmp_path / "muppet", "rotten_tomatoes", "0.002")
    assert seen["head_reused"] is True and 0 <= seen["metrics"]["validation"]["accuracy"] <= 100
    unseen = few_step_finetune(tmp_path / "unseen", tmp_path / "muppet", PACKAGE_TASKS[2], "0.002")
    assert unseen["head_reused"] is False and 0 <= unseen["metrics"]["validation"]["accuracy"] <= 100


def test_select_best_model_ends_with_the_weights_of_the_best_validation_score(tiny_checkpoint, tmp_path):
    flags = [
        "--model_name_or_path",
        str(tiny_checkpoint),
        "--task",
        str(REPO / "training/data/tiny/tiny_sentiment.yaml"),
    ]
    flags += ["--use_cpu", "true", "--save_strategy", "no", "--max_steps", "6", "--learning_rate", "1e-3"]
    flags += ["--eval_strategy", "steps", "--eval_steps", "2", "--select_best_model", "true"]
    results = finetune(tmp_path / "ft", *flags)
    selection = results["selection"]
    assert [step for step, _ in selection["evaluations"]] == [2, 4, 6] and results["global_step"] == 6
    scores = [score for _, score in selection["evaluations"]]
    assert selection["best_score"] == max(scores) and selection["best_step"] == 2 * (scores.index(max(scores)) + 1)
    # The final validation score is that of the restored weights, not of the last update.
    assert results["metrics"]["validation"]["accuracy"] == pytest.approx(selection["best_score"])
    assert selection["metric"] == "eval_tiny_sentiment_accuracy"
    # In percent, as task_metrics.json: the restored weights' accuracy and the majority guess both on 0-100.
    assert results["score_scale"] == "percent" and 50 <= results["guess_accuracy"]["validation"] <= 100


def test_select_best_model_needs_evaluations_during_training(tiny_checkpoint, tmp_path):
    flags = [
        "--model_name_or_path",
        str(tiny_checkpoint),
        "--task",
        str(REPO / "training/data/tiny/tiny_sentiment.yaml"),
    ]
    with pytest.raises(ValueError, match="eval_strategy"):
        finetune(tmp_path / "ft", *flags, "--max_steps", "1", "--use_cpu", "true", "--select_best_model", "true")
    script = load_script("finetune")
    with pytest.raises(ValueError, match="early_stopping_patience"):
        script.parse_args([*flags, "--early_stopping_patience", "2", "--output_dir", str(tmp_path / "unused")])
