"""Hardening (issue 12): no command destroys a run, publishes canary data, silently mis-trains or overruns."""

import importlib
import json
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest
import torch
from transformers.trainer_utils import get_last_checkpoint

from muppet_hf import MuppetConfig, MuppetForMultiTask
from muppet_hf.callbacks import _log_skipped_updates
from muppet_hf.cli import main as cli_main
from muppet_hf.hub import export_checkpoint, push_export, read_run_metadata
from muppet_hf.testing_utils import tiny_config, tiny_tokenizer
from muppet_hf.trainer import MuppetTrainer
from muppet_hf.training_args import MuppetTrainingArguments


REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "training" / "data" / "tiny"
RECIPE = REPO / "training" / "recipes" / "tiny.yaml"
SENTIMENT = {"type": "classification", "num_labels": 2, "label_names": ["negative", "positive"]}


def load_script(name: str):
    return importlib.import_module(f"muppet_hf.scripts.{name}")


def tiny_model(heads: dict | None = None, **config_kwargs) -> MuppetForMultiTask:
    torch.manual_seed(0)
    heads = heads if heads is not None else {"tiny_sentiment": SENTIMENT, "span": {"type": "span"}}
    tasks = {name: name for name in heads}
    config = MuppetConfig(base_model_config=tiny_config("bert"), heads=heads, tasks=tasks, **config_kwargs)
    return MuppetForMultiTask(config)


def save_checkpoint(model: MuppetForMultiTask, folder: Path, tokenizer: bool = True) -> Path:
    model.save_pretrained(folder)
    if tokenizer:
        tiny_tokenizer().save_pretrained(folder)
    return folder


def fake_run(root: Path, **config_kwargs) -> Path:
    """A run folder as a pre-finetuning run leaves it: checkpoints, metrics and a log."""
    run = root / "run"
    for step in (3, 6):
        save_checkpoint(tiny_model(**config_kwargs), run / f"checkpoint-{step}")
    (run / "all_results.json").write_text("{}")
    (run / "train.log").write_text("log\n")
    return run


def run_args(output_dir: Path, *flags: str) -> list[str]:
    return ["--config", str(RECIPE), "--output_dir", str(output_dir), "--report_to", "none", *flags]


def copy_task(folder: Path, name: str = "tiny_sentiment", **changes) -> Path:
    """A copy of a tiny task's YAML and data in `folder`, with some top-level fields changed."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    for path in TINY.glob(f"{name}_*.jsonl"):
        shutil.copy(path, folder / path.name)
    data = yaml.safe_load((TINY / f"{name}.yaml").read_text())
    data.update(changes)
    path = folder / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# ---- 1. Export never deletes its own source ----


@pytest.mark.parametrize(
    "source, target",
    [("run", "run"), ("run/checkpoint-6", "run"), ("run/checkpoint-6", "."), ("run", "run/export")],
    ids=["same", "parent", "grandparent", "inside"],
)
@pytest.mark.parametrize("overwrite", [False, True])
def test_export_refuses_an_output_folder_that_is_contains_or_lies_in_its_source(tmp_path, source, target, overwrite):
    run = fake_run(tmp_path)
    if source == "run":
        # An exportable run folder: its final model beside its checkpoints.
        save_checkpoint(tiny_model(), run)
    before = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*"))
    with pytest.raises(ValueError, match="source"):
        export_checkpoint(tmp_path / source, tmp_path / target, overwrite=overwrite)
    assert sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*")) == before
    args = ["export", str(tmp_path / source), str(tmp_path / target)] + (["--overwrite"] if overwrite else [])
    assert cli_main(args) == 2
    assert (run / "checkpoint-6" / "model.safetensors").is_file() and (run / "train.log").is_file()


# ---- 2. Canary status travels in config.json and every push refuses it ----


def test_canary_travels_in_config_json_of_checkpoints_exports_and_fine_tuned_models(tmp_path):
    canary_task = copy_task(tmp_path / "tasks", tags=["bigbench", "canary"])
    prefinetune = load_script("prefinetune")
    script_args, training_args = prefinetune.parse_args(
        run_args(tmp_path / "run", "--max_steps", "2", "--save_steps", "1", "--save_total_limit", "5")
    )
    script_args.tasks = [str(canary_task), *script_args.tasks[1:]]
    prefinetune.main(script_args, training_args)
    checkpoint = tmp_path / "run" / "checkpoint-1"
    assert not (checkpoint / "muppet_run.json").exists()
    for folder in (checkpoint, tmp_path / "run"):
        assert json.loads((folder / "config.json").read_text())["canary"] is True
        with pytest.raises(ValueError, match="canary"):
            push_export(folder, "someone/model", dry_run=True)
        assert cli_main(["push", str(folder), "someone/model", "--dry-run"]) == 2
    with pytest.warns(UserWarning, match="Uploading anyway because allow_canary=True"):
        assert push_export(checkpoint, "someone/model", dry_run=True, allow_canary=True).files

    for heads in ("all", "none"):
        exported = export_checkpoint(checkpoint, tmp_path / f"export-{heads}", heads=heads)
        assert json.loads((exported / "config.json").read_text())["canary"] is True
        assert read_run_metadata(exported).is_canary
        with pytest.raises(ValueError, match="canary"):
            push_export(exported, "someone/model", dry_run=True)

    # Fine-tuning on a task without the tag, from the canary checkpoint or its backbone export, keeps the mark.
    finetune = load_script("finetune")
    for start in (checkpoint, tmp_path / "export-none"):
        args = finetune.FinetuneArguments(task=str(TINY / "tiny_qa.yaml"), model_name_or_path=str(start))
        model, _ = finetune.load_model(args, finetune.get_task(args.task))
        assert model.config.canary is True
        save_checkpoint(model, tmp_path / "ft")
        with pytest.raises(ValueError, match="canary"):
            push_export(tmp_path / "ft", "someone/model", dry_run=True)
        shutil.rmtree(tmp_path / "ft")


def test_inherited_push_to_hub_refuses_a_canary_model(tmp_path, monkeypatch):
    model = tiny_model(canary=True)
    uploads = []
    monkeypatch.setattr(type(model).__mro__[1], "push_to_hub", lambda self, *a, **k: uploads.append(a) or "url")
    with pytest.raises(ValueError, match="canary"):
        model.push_to_hub("someone/model")
    assert uploads == []
    assert model.push_to_hub("someone/model", allow_canary=True) == "url"
    assert tiny_model().push_to_hub("someone/model") == "url"
    reloaded = MuppetForMultiTask.from_pretrained(save_checkpoint(model, tmp_path / "ckpt"))
    assert reloaded.config.canary is True
    # Nor is the Trainer's upload of each checkpoint (`push_to_hub=True`) or its own `push_to_hub`.
    args = {"output_dir": str(tmp_path / "out"), "report_to": "none", "use_cpu": True}
    with pytest.raises(ValueError, match="canary"):
        MuppetTrainer(model, MuppetTrainingArguments(**args, push_to_hub=True, hub_model_id="someone/model"))
    with pytest.raises(ValueError, match="canary"):
        MuppetTrainer(model, MuppetTrainingArguments(**args)).push_to_hub()


# ---- 3. A re-used head predicts the task's labels in the task's order ----


def head_logits(model: MuppetForMultiTask, head: str) -> torch.Tensor:
    torch.manual_seed(3)
    input_ids = torch.randint(5, 99, (4, 7))
    with torch.no_grad():
        return model.eval()(head=head, input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).logits


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_reused_head_is_remapped_when_the_labels_come_in_another_order(tmp_path, spectral_norm, caplog):
    checkpoint = save_checkpoint(tiny_model(spectral_norm=spectral_norm), tmp_path / "ckpt")
    original = head_logits(MuppetForMultiTask.from_pretrained(checkpoint), "tiny_sentiment")
    flipped = copy_task(tmp_path / "tasks", label_names=["positive", "negative"])
    finetune = load_script("finetune")
    args = finetune.FinetuneArguments(task=str(flipped), model_name_or_path=str(checkpoint))
    with caplog.at_level("WARNING", logger="muppet_hf.finetune"):
        model, reused = finetune.load_model(args, finetune.get_task(args.task))
    assert reused and "re-ordered" in caplog.text
    assert model.config.heads["tiny_sentiment"]["label_names"] == ["positive", "negative"]
    torch.testing.assert_close(head_logits(model, "tiny_sentiment"), original[:, [1, 0]])
    # It saves and reloads in the new order.
    model.save_pretrained(tmp_path / "ft")
    torch.testing.assert_close(
        head_logits(MuppetForMultiTask.from_pretrained(tmp_path / "ft"), "tiny_sentiment"), original[:, [1, 0]]
    )


def test_reused_head_with_other_labels_is_refused(tmp_path):
    checkpoint = save_checkpoint(tiny_model(), tmp_path / "ckpt")
    other = copy_task(tmp_path / "tasks", label_names=["bad", "good"], label_map={"negative": 0, "positive": 1})
    finetune = load_script("finetune")
    args = finetune.FinetuneArguments(task=str(other), model_name_or_path=str(checkpoint))
    with pytest.raises(ValueError, match=r"tiny_sentiment.yaml: task 'tiny_sentiment', field `label_names`"):
        finetune.load_model(args, finetune.get_task(args.task))
    args.reuse_head = False
    model, reused = finetune.load_model(args, finetune.get_task(args.task))
    assert not reused and model.config.heads["tiny_sentiment"]["label_names"] == ["bad", "good"]


# ---- 4. Resuming a finished run trains nothing ----


def trainer_for(output_dir: Path, **overrides) -> MuppetTrainer:
    import datasets

    torch.manual_seed(0)
    model = tiny_model({"sent": {"type": "classification", "num_labels": 2}})
    rows = {"input_ids": [[5 + i, 6, 7, 8] for i in range(16)], "labels": [i % 2 for i in range(16)]}
    rows["attention_mask"] = [[1] * 4] * 16
    settings = {
        "output_dir": str(output_dir),
        "per_device_train_batch_size": 2,
        "max_steps": 6,
        "save_strategy": "steps",
        "save_steps": 3,
        "learning_rate": 1e-2,
        "report_to": "none",
        "use_cpu": True,
        "disable_tqdm": True,
        **overrides,
    }
    return MuppetTrainer(model, MuppetTrainingArguments(**settings), {"sent": datasets.Dataset.from_dict(rows)})


@pytest.mark.parametrize("resume", ["checkpoint-6", True, "latest", "true"])
def test_resuming_a_finished_run_trains_nothing_and_keeps_its_weights(tmp_path, resume):
    trainer_for(tmp_path / "out").train()
    final = tmp_path / "out" / "checkpoint-6"
    (tmp_path / "out" / "tmp-checkpoint-7").mkdir()  # what a kill between rename and clean-up leaves
    resumed = trainer_for(tmp_path / "out")
    result = resumed.train(resume_from_checkpoint=str(final) if resume == "checkpoint-6" else resume)
    assert result.global_step == 6 and resumed.state.global_step == 6
    assert sorted(os.listdir(tmp_path / "out")) == ["checkpoint-3", "checkpoint-6"]
    saved = MuppetForMultiTask.from_pretrained(final)
    for name, tensor in saved.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], tensor, rtol=0, atol=0, msg=name)


def test_resume_latest_on_the_command_line_continues_from_the_latest_checkpoint(tmp_path):
    trainer_for(tmp_path / "out", max_steps=3).train()
    resumed = trainer_for(tmp_path / "out")
    resumed.train(resume_from_checkpoint="latest")
    assert resumed.state.global_step == 6
    assert get_last_checkpoint(str(tmp_path / "out")).endswith("checkpoint-6")
    from muppet_hf.safety import resolve_resume

    assert resolve_resume("false") is None and resolve_resume("runs/x/checkpoint-3") == "runs/x/checkpoint-3"


def test_resuming_a_run_killed_during_its_final_save_only_writes_the_outputs(tmp_path):
    from safetensors.torch import load_file

    prefinetune = load_script("prefinetune")
    run = tmp_path / "run"
    prefinetune.main(*prefinetune.parse_args(run_args(run, "--max_steps", "2", "--save_steps", "1")))
    for name in ("model.safetensors", "README.md", "muppet_run.json", "task_metrics.json"):
        (run / name).unlink()  # a kill during the final save
    metrics = prefinetune.main(
        *prefinetune.parse_args(run_args(run, "--max_steps", "2", "--resume_from_checkpoint", "true"))
    )
    assert sorted(path.name for path in run.glob("*checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    final, last = load_file(run / "model.safetensors"), load_file(run / "checkpoint-2" / "model.safetensors")
    assert final.keys() == last.keys() and all(torch.equal(final[name], last[name]) for name in final)
    assert set(metrics) == {"tiny_sentiment", "tiny_choice", "tiny_qa"}
    assert (run / "README.md").is_file() and (run / "muppet_run.json").is_file()


# ---- 5. max_steps 0 (or below -1) is rejected before any work ----


@pytest.mark.parametrize("max_steps", ["0", "-2"])
def test_max_steps_zero_or_below_minus_one_is_rejected_while_parsing(tmp_path, max_steps):
    prefinetune = load_script("prefinetune")
    with pytest.raises(ValueError, match="field `max_steps`"):
        prefinetune.parse_args(run_args(tmp_path / "run", "--max_steps", max_steps))
    assert not (tmp_path / "run").exists()


# ---- 6. A reused output folder never mixes two runs ----


def test_non_empty_output_folder_is_refused_unless_overwritten_or_resumed(tmp_path):
    prefinetune = load_script("prefinetune")
    run = tmp_path / "run"
    old = run / "checkpoint-9"
    old.mkdir(parents=True)
    (old / "model.safetensors").write_bytes(b"old run")
    with pytest.raises(ValueError, match="holds a run \\(checkpoint-9\\).*--overwrite_output_dir"):
        prefinetune.main(*prefinetune.parse_args(run_args(run, "--max_steps", "1")))
    assert sorted(os.listdir(run)) == ["checkpoint-9"]
    for name in ("config.json", "runs", "all_results.json", "tmp-checkpoint-2", "model.safetensors"):
        assert run_outputs_of(tmp_path / "other", name) == [name]
    # What a launcher writes there first (its recipe and log) is not a run.
    assert run_outputs_of(tmp_path / "other", "recipe.yaml", "run.log", "run.json") == []

    prefinetune.main(*prefinetune.parse_args(run_args(run, "--max_steps", "1", "--overwrite_output_dir", "true")))
    assert not old.exists() and (run / "model.safetensors").is_file()
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".run.old")]


def run_outputs_of(folder: Path, *names: str) -> list[str]:
    from muppet_hf.safety import run_outputs

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for name in names:
        (folder / name).write_text("x")
    return run_outputs(folder)


# ---- Smaller ----


def test_push_error_text_never_shows_the_token(tmp_path, monkeypatch, capsys):
    token = "hf_" + "x" * 30
    monkeypatch.setenv("HF_TOKEN", token)
    push_module = sys.modules["muppet_hf.commands.push"]

    def echoing_server(*args, **kwargs):
        raise ConnectionError(f"403 from server; request headers: Authorization: Bearer {token}; token={token}")

    monkeypatch.setattr(push_module, "push_export", echoing_server)
    assert cli_main(["push", str(tmp_path), "someone/model"]) == 1
    err = capsys.readouterr().err
    assert token not in err and "***" in err
    from muppet_hf.safety import redact

    assert redact("Authorization: Bearer abc.def", []) == "Authorization: Bearer ***"


def test_exported_files_are_readable_like_their_folder(tmp_path):
    exported = export_checkpoint(save_checkpoint(tiny_model(), tmp_path / "ckpt"), tmp_path / "export")
    assert stat.S_IMODE(exported.stat().st_mode) == 0o755
    for path in exported.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o044 == 0o044, path


def test_export_of_an_interrupted_run_names_what_is_missing(tmp_path):
    run = fake_run(tmp_path)
    with pytest.raises(FileNotFoundError, match="stopped before its final save.*checkpoint-6"):
        export_checkpoint(run, tmp_path / "export")
    no_tokenizer = save_checkpoint(tiny_model(), tmp_path / "bare", tokenizer=False)
    with pytest.warns(UserWarning, match="no tokenizer"):
        export_checkpoint(no_tokenizer, tmp_path / "export")


def test_model_path_that_does_not_exist_or_is_not_a_checkpoint_is_named(tmp_path):
    from muppet_hf.safety import check_model_path

    with pytest.raises(ValueError, match=f"field `model_name_or_path`: the folder {tmp_path}/nope does not exist"):
        check_model_path(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="has no config.json"):
        check_model_path(str(tmp_path / "empty"))
    check_model_path("FacebookAI/roberta-base")  # a Hub id is left to the Hub client


def regression_trainer(output_dir: Path, labels: list[float], **overrides) -> MuppetTrainer:
    import datasets

    torch.manual_seed(0)
    rows = {
        "input_ids": [[5 + i, 6, 7, 8] for i in range(len(labels))],
        "attention_mask": [[1] * 4] * len(labels),
        "labels": labels,
    }
    settings = {
        "output_dir": str(output_dir),
        "per_device_train_batch_size": 2,
        "per_device_eval_batch_size": 4,
        "max_steps": 2,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "disable_tqdm": True,
        "group_by_length": False,
        **overrides,
    }
    data = {"sts": datasets.Dataset.from_dict(rows)}
    model = tiny_model({"sts": {"type": "regression"}})
    return MuppetTrainer(model, MuppetTrainingArguments(**settings), data, eval_dataset=data)


def test_skipped_updates_are_counted_and_never_logged_as_a_zero_loss(tmp_path):
    trainer = regression_trainer(tmp_path / "out", [float("nan")] * 8, max_nonfinite_updates=5)
    trainer.train()
    steps = [entry for entry in trainer.state.log_history if "skipped_updates" in entry]
    assert [entry["skipped_updates"] for entry in steps] == [1.0, 1.0]
    assert all("loss" not in entry for entry in steps), steps


def test_eval_reports_the_non_finite_rows_its_loss_leaves_out(tmp_path):
    trainer = regression_trainer(tmp_path / "out", [1.0, 2.0, 3.0, 4.0] + [float("nan")] * 4)
    metrics = trainer.evaluate()
    assert metrics["eval_sts_nonfinite_rows"] == 4
    assert torch.isfinite(torch.tensor(metrics["eval_sts_loss"]))
    finite = regression_trainer(tmp_path / "out2", [1.0, 2.0, 3.0, 4.0]).evaluate()
    assert "eval_sts_nonfinite_rows" not in finite


def test_a_partly_skipped_logging_window_averages_the_loss_over_the_applied_updates():
    # Two updates in the window, one skipped (it added 0 to the Trainer's running loss): the applied one's loss is 1.0.
    metrics = {}
    logs = _log_skipped_updates({"loss": 0.5, "grad_norm": 2.0}, metrics, [1.0, 0.0], world_size=1)
    assert logs == {"loss": 1.0, "grad_norm": 2.0} and metrics == {"skipped_updates": 1.0}
    # Two processes append the same flags: the counts are per update, not per process.
    logs = _log_skipped_updates({"loss": 0.5}, {}, [1.0, 0.0, 1.0, 0.0], world_size=2)
    assert logs == {"loss": 1.0}
