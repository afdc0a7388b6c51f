import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from peft.functional import set_adapter
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, TrainerCallback, set_seed
from transformers.trainer_utils import get_last_checkpoint

from muppet_hf import MuppetConfig, MuppetForMultiTask, cli
from muppet_hf.hub import check_model_card, export_checkpoint
from muppet_hf.lora import (
    HEADS_CONFIG_FILE,
    HEADS_WEIGHTS_FILE,
    adapter_parameters,
    add_lora,
    export_adapters,
    export_merged,
    merge_adapters,
)
from muppet_hf.testing_utils import realign_, tiny_config, tiny_tokenizer
from muppet_hf.trainer import MuppetTrainer
from muppet_hf.training_args import MuppetTrainingArguments


HEADS = {
    "sent": {"type": "classification", "num_labels": 2},
    "multiple_choice": {"type": "multiple_choice"},
    "span": {"type": "span"},
}
# Two MRC tasks share the span head, and so its adapter in `per_task` mode.
TASKS = {"sent": "sent", "choice": "multiple_choice", "qa": "span", "qa2": "span"}


def toy_task(head_type: str, size: int, seed: int) -> datasets.Dataset:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, 12, size=size).tolist()
    ids = [rng.integers(5, 99, size=n).tolist() for n in lengths]
    masks = [[1] * n for n in lengths]
    if head_type == "multiple_choice":
        return datasets.Dataset.from_dict(
            {"input_ids": [[row] * 3 for row in ids], "attention_mask": [[m] * 3 for m in masks], "labels": [1] * size}
        )
    columns = {"input_ids": ids, "attention_mask": masks}
    if head_type == "classification":
        columns["labels"] = rng.integers(0, 2, size=size).tolist()
    else:
        columns["start_positions"] = [1] * size
        columns["end_positions"] = [int(rng.integers(1, n)) for n in lengths]
    return datasets.Dataset.from_dict(columns)


def train_data() -> dict[str, datasets.Dataset]:
    return {task: toy_task(HEADS[head]["type"], 8, seed) for seed, (task, head) in enumerate(TASKS.items())}


def build(model_type: str = "bert") -> MuppetForMultiTask:
    torch.manual_seed(0)
    return MuppetForMultiTask(MuppetConfig(base_model_config=tiny_config(model_type), heads=HEADS, tasks=TASKS))


def arguments(tmp_path, **overrides) -> MuppetTrainingArguments:
    defaults = {
        "output_dir": str(tmp_path / "out"),
        "per_device_train_batch_size": 2,
        "tasks_per_update": 8,
        "max_steps": 2,
        "learning_rate": 1e-2,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "seed": 0,
        "disable_tqdm": True,
        "lora_mode": "per_task",
    }
    return MuppetTrainingArguments(**{**defaults, **overrides})


def batch_of(trainer: MuppetTrainer, task: str) -> dict:
    dataset = train_data()[task]
    return trainer.data_collator([{"task": task, "index": i, **dataset[i]} for i in range(4)])


@pytest.mark.parametrize("mode", ["shared", "per_task", "shared+per_task"])
def test_lora_trains_adapters_and_heads_in_heterogeneous_updates_and_freezes_the_backbone(tmp_path, mode):
    model = build()
    frozen = {name: p.detach().clone() for name, p in model.backbone.named_parameters()}
    trainer = MuppetTrainer(model, arguments(tmp_path, lora_mode=mode), train_dataset=train_data())
    adapters = {"shared": ["shared"], "per_task": list(HEADS), "shared+per_task": ["shared", *HEADS]}[mode]
    assert model.config.lora["adapters"] == adapters
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(adapter_parameters(model)) | {n for n, _ in model.heads.named_parameters(prefix="heads")}
    before = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    trainer.train()
    assert set(trainer.tasks_drawn) == set(TASKS)

    # Every adapter's B (zero at the start) and every head moved; the backbone's own weights are bit-identical.
    unchanged = [name for name, p in model.named_parameters() if name in before and torch.equal(p, before[name])]
    assert [name for name in unchanged if "lora_A" not in name] == []
    for name, param in model.backbone.named_parameters():
        if "lora_" not in name:
            assert not param.requires_grad
            assert torch.equal(param, frozen[name.replace(".base_layer", "")]), name


def test_head_warmup_freezes_the_adapters_then_trains_them_and_never_the_backbone(tmp_path):
    model = build()
    trainer = MuppetTrainer(model, arguments(tmp_path, lora_mode="shared", head_warmup_steps=1), train_data())
    initial = {name: p.detach().clone() for name, p in model.named_parameters()}
    with_grad = []

    class Grads(TrainerCallback):
        def on_pre_optimizer_step(self, args, state, control, **kwargs):
            with_grad.append({name for name, p in model.backbone.named_parameters() if p.grad is not None})

    trainer.add_callback(Grads())
    trainer.train()
    # Update 1: no backbone gradient at all; update 2: the adapters' only (the backbone's weights stay frozen).
    assert with_grad[0] == set()
    assert with_grad[1] == {name for name in dict(model.backbone.named_parameters()) if "lora_" in name}
    for name, param in model.named_parameters():
        if name.startswith("backbone.") and "lora_" not in name:
            assert not param.requires_grad and torch.equal(param, initial[name]), name


def test_per_task_adapter_gets_gradient_from_its_own_tasks_only(tmp_path):
    model = build()
    trainer = MuppetTrainer(model, arguments(tmp_path, r3f_lambda=1.0, r3f_eps=1e-2), train_dataset=train_data())
    model.train()
    for task, head in TASKS.items():
        model.zero_grad(set_to_none=False)
        trainer.compute_loss(model, batch_of(trainer, task)).backward()
        for name, param in adapter_parameters(model).items():
            adapter = name.split(".")[-2]
            if adapter != head:
                assert param.grad is None or torch.count_nonzero(param.grad) == 0, (task, name)
            elif "lora_B" in name:
                # A's gradient is B^T (...) = 0 while B is still zero; B's is not.
                assert torch.count_nonzero(param.grad) > 0, (task, name)
    # Every adapter kept requires_grad through the switches, so one optimizer step updates them all.
    assert all(param.requires_grad for param in adapter_parameters(model).values())


def test_save_reload_gives_identical_outputs_and_per_task_routing(tmp_path):
    model = build()
    MuppetTrainer(model, arguments(tmp_path, lora_mode="shared+per_task"), train_dataset=train_data()).train()
    model.save_pretrained(tmp_path / "saved")
    reloaded = MuppetForMultiTask.from_pretrained(tmp_path / "saved")
    assert reloaded.config.lora == model.config.lora
    realign_(model.eval()), realign_(reloaded.eval())
    tokenizer = tiny_tokenizer()
    inputs = tokenizer(["a short sentence", "another one here"], padding=True, return_tensors="pt")
    with torch.no_grad():
        for head in ("sent", "span"):
            expected, actual = model(head=head, **inputs), reloaded(head=head, **inputs)
            key = "logits" if head == "sent" else "start_logits"
            assert torch.equal(actual[key], expected[key]), head
        # Each head runs through its own adapter: the same input gives another encoding under another head.
        sent = model.get_encoder()
        model(head="sent", **inputs)
        through_sent = sent(**inputs).last_hidden_state
        model(head="span", **inputs)
        assert not torch.equal(sent(**inputs).last_hidden_state, through_sent)


class KillAt(TrainerCallback):
    """Simulates a crash at the end of the given step."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def test_generate_runs_through_the_adapters_of_the_seq2seq_head_it_is_given():
    torch.manual_seed(0)
    heads = {
        "xsum": {"type": "seq2seq"},
        "wikilingua": {"type": "seq2seq"},
        "c": {"type": "classification", "num_labels": 2},
    }
    model = add_lora(MuppetForMultiTask(MuppetConfig(base_model_config=tiny_config("bart"), heads=heads)), "per_task")
    with torch.no_grad():
        for param in adapter_parameters(model).values():
            param.normal_(0.0, 0.5)  # B starts at 0 (identity adapters): make each head's adapter change the outputs
    model.eval()
    inputs = {"input_ids": torch.randint(5, 99, (2, 7)), "max_new_tokens": 3, "do_sample": False}
    options = {"output_scores": True, "return_dict_in_generate": True}

    def scores(head: str, after: str) -> torch.Tensor:
        # The adapters that the last forward left active must not matter.
        model(head=after, input_ids=inputs["input_ids"], labels=torch.randint(5, 99, (2, 4)))
        return torch.stack(model.generate(**inputs, **options, head=head).scores)

    assert torch.equal(scores("xsum", after="wikilingua"), scores("xsum", after="xsum"))
    assert not torch.allclose(scores("xsum", after="xsum"), scores("wikilingua", after="xsum"))
    with pytest.raises(ValueError, match=r"pass head=\.\.\. to pick the adapters"):
        model.generate(**inputs)
    with pytest.raises(ValueError, match="not a seq2seq head"):
        model.generate(**inputs, head="c")
    # One shared adapter: no head to name, even on a model whose heads include no seq2seq one.
    heads = {"c": heads["c"]}
    shared = add_lora(MuppetForMultiTask(MuppetConfig(base_model_config=tiny_config("bart"), heads=heads)), "shared")
    assert shared.eval().generate(**inputs).shape[0] == 2


def test_resume_with_lora_ends_with_the_uninterrupted_weights(tmp_path):
    settings = {"max_steps": 4, "save_strategy": "steps", "save_steps": 2, "tasks_per_update": 3, "r3f_lambda": 1.0}
    reference = MuppetTrainer(build(), arguments(tmp_path / "a", **settings), train_data())
    reference.train()
    killed = MuppetTrainer(build(), arguments(tmp_path / "b", **settings), train_data(), callbacks=[KillAt(3)])
    with pytest.raises(KeyboardInterrupt):
        killed.train()
    checkpoint = get_last_checkpoint(str(tmp_path / "b" / "out"))
    assert checkpoint.endswith("checkpoint-2")
    resumed = MuppetTrainer(build(), arguments(tmp_path / "b", **settings), train_data())
    torch.manual_seed(1234)
    resumed.train(resume_from_checkpoint=checkpoint)
    expected = dict(reference.model.named_parameters())
    for name, param in resumed.model.named_parameters():
        torch.testing.assert_close(param, expected[name], rtol=0, atol=0, msg=name)


def test_resume_refuses_a_per_task_head_without_an_adapter(tmp_path):
    settings = {"max_steps": 1, "save_strategy": "steps", "save_steps": 1}
    two_tasks = {task: data for task, data in train_data().items() if task in ("sent", "choice")}
    model = MuppetForMultiTask(
        MuppetConfig(
            base_model_config=tiny_config(),
            heads={k: HEADS[k] for k in ("sent", "multiple_choice")},
            tasks={"sent": "sent", "choice": "multiple_choice"},
        )
    )
    MuppetTrainer(model, arguments(tmp_path, **settings), two_tasks).train()
    trainer = MuppetTrainer(build(), arguments(tmp_path, **{**settings, "max_steps": 2}), train_data())
    with pytest.raises(ValueError, match=r"config.json: field `lora.adapters`.*\['span'\]"):
        trainer.train(resume_from_checkpoint=True)


def test_bad_lora_settings_fail_before_training_naming_the_field(tmp_path):
    with pytest.raises(ValueError, match="`lora_r`"):
        arguments(tmp_path, lora_r=0)
    with pytest.raises(ValueError, match="`lora_mode`"):
        arguments(tmp_path, lora_mode="per_head")
    with pytest.raises(ValueError, match=r"`lora_target_modules`: \['attn'\] match no linear layer"):
        MuppetTrainer(build(), arguments(tmp_path, lora_target_modules=["attn"]), train_dataset=train_data())
    with pytest.raises(ValueError, match="field `lora` is null"):
        merge_adapters(build())
    with pytest.raises(ValueError, match="already has adapters"):
        add_lora(add_lora(build(), "shared"), "per_task")
    # An existing adapter set that the arguments contradict.
    with pytest.raises(ValueError, match="whose `r` is 8"):
        MuppetTrainer(add_lora(build(), "per_task"), arguments(tmp_path, lora_r=4), train_dataset=train_data())


@pytest.mark.parametrize("model_type", ["bert", "roberta", "mpnet", "deberta-v2", "bart"])
def test_default_targets_are_attention_query_and_value_of_each_family(model_type):
    torch.manual_seed(0)
    config = MuppetConfig(base_model_config=tiny_config(model_type), heads={"sent": HEADS["sent"]})
    model = add_lora(MuppetForMultiTask(config), "shared")
    adapted = {name.split(".lora_A")[0].rsplit(".", 1)[-1] for name in adapter_parameters(model) if "lora_A" in name}
    assert adapted == set(model.config.lora["target_modules"]) and len(adapted) == 2


def trained_checkpoint(tmp_path, mode: str) -> tuple[Path, MuppetForMultiTask]:
    """A LoRA run saved with its tokenizer, and the pristine base backbone in `tmp_path / "base"`."""
    model = build()
    model.save_backbone(tmp_path / "base")
    MuppetTrainer(model, arguments(tmp_path, lora_mode=mode), train_dataset=train_data()).train()
    model.save_pretrained(tmp_path / "run")
    tiny_tokenizer().save_pretrained(tmp_path / "run")
    return tmp_path / "run", realign_(model.eval())


@pytest.mark.parametrize(("mode", "heads"), [("shared", "none"), ("per_task", ["sent"])])
def test_merged_export_loads_in_vanilla_auto_model_with_the_adapted_outputs(tmp_path, mode, heads):
    checkpoint, model = trained_checkpoint(tmp_path, mode)
    export_merged(checkpoint, tmp_path / "merged", heads=heads)
    inputs = tiny_tokenizer()(["a short sentence", "another one"], padding=True, return_tensors="pt")
    with torch.no_grad():
        model(head="sent", **inputs)  # activates the adapters of `sent`
        expected = model.get_encoder()(**inputs).last_hidden_state
        if heads == "none":
            actual = AutoModel.from_pretrained(tmp_path / "merged")(**inputs).last_hidden_state
        else:
            reloaded = AutoModel.from_pretrained(tmp_path / "merged")
            assert reloaded.config.lora is None
            actual = reloaded.get_encoder()(**inputs).last_hidden_state
            torch.testing.assert_close(
                reloaded(head="sent", **inputs).logits, model(head="sent", **inputs).logits, rtol=0, atol=1e-5
            )
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5)


def test_merge_refuses_heads_with_different_adapters(tmp_path):
    checkpoint, _ = trained_checkpoint(tmp_path, "per_task")
    with pytest.raises(ValueError, match="use different adapters"):
        export_merged(checkpoint, tmp_path / "all", heads="all")
    with pytest.raises(ValueError, match="no shared adapter.*--heads NAME"):
        export_merged(checkpoint, tmp_path / "none", heads="none")


PLAIN_PEFT = """
import sys
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModel

base_dir, folder, inputs_file, head = sys.argv[1:]
inputs = load_file(inputs_file)
model = PeftModel.from_pretrained(AutoModel.from_pretrained(base_dir), folder, subfolder=head, adapter_name=head)
model.eval()
with torch.no_grad():
    hidden = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).last_hidden_state
torch.testing.assert_close(hidden, inputs["expected"], rtol=0, atol=1e-5)
assert not [name for name in sys.modules if name.startswith("muppet_hf")]
print("ok", sorted(model.peft_config))
"""


def test_adapter_export_loads_with_plain_peft_in_a_process_without_muppet_hf(tmp_path):
    checkpoint, model = trained_checkpoint(tmp_path, "per_task")
    folder = export_adapters(checkpoint, tmp_path / "adapters", base_model=str(tmp_path / "base"))
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == sorted(HEADS)
    for head in HEADS:
        config = json.loads((folder / head / "adapter_config.json").read_text())
        assert config["peft_type"] == "LORA" and config["base_model_name_or_path"] == str(tmp_path / "base")
    heads = json.loads((folder / HEADS_CONFIG_FILE).read_text())
    assert heads["adapters"]["span"] == ["span"] and heads["tasks"]["qa2"] == "span"
    assert set(load_file(folder / HEADS_WEIGHTS_FILE)) >= {"sent.out_proj.weight", "span.qa_outputs.weight"}
    card = check_model_card(folder / "README.md")
    assert card.data.library_name == "peft" and "PeftModel.from_pretrained" in card.text

    inputs = dict(tiny_tokenizer()(["a short sentence", "another one"], padding=True, return_tensors="pt"))
    with torch.no_grad():
        model(head="span", **inputs)
        expected = model.get_encoder()(**inputs).last_hidden_state
    save_file({**{k: v.contiguous() for k, v in inputs.items()}, "expected": expected}, tmp_path / "inputs.st")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", PLAIN_PEFT, str(tmp_path / "base"), str(folder), str(tmp_path / "inputs.st"), "span"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[0] == "ok"


def test_adapter_export_needs_adapters_and_a_base_model(tmp_path):
    model = build()
    model.save_pretrained(tmp_path / "full")
    with pytest.raises(ValueError, match="field `lora` is null"):
        export_adapters(tmp_path / "full", tmp_path / "out", base_model="x")
    with pytest.raises(ValueError, match="field `lora` is null: --merge"):
        export_merged(tmp_path / "full", tmp_path / "out")
    add_lora(model, "shared").save_pretrained(tmp_path / "lora")
    with pytest.raises(ValueError, match="--base-model"):
        export_adapters(tmp_path / "lora", tmp_path / "out")
    assert AutoConfig.from_pretrained(tmp_path / "lora").lora["mode"] == "shared"


def test_export_command_merge_and_adapter_flags(tmp_path, capsys):
    checkpoint, _ = trained_checkpoint(tmp_path, "shared")
    assert cli.main(["export", str(checkpoint), str(tmp_path / "merged"), "--merge", "--heads", "none"]) == 0
    assert AutoConfig.from_pretrained(tmp_path / "merged").model_type == "bert"
    assert cli.main(["export", str(checkpoint), str(tmp_path / "a"), "--adapter", "--base-model", "org/base"]) == 0
    assert (tmp_path / "a" / "adapter_model.safetensors").is_file()
    assert check_model_card(tmp_path / "a" / "README.md").data.base_model == "org/base"
    assert cli.main(["export", str(checkpoint), str(tmp_path / "b"), "--merge", "--adapter"]) == 2
    assert "pass one of them" in capsys.readouterr().err
    assert cli.main(["export", str(tmp_path / "merged"), str(tmp_path / "c"), "--merge"]) == 2


REPO = Path(__file__).resolve().parent.parent
TINY_RECIPE = REPO / "training" / "recipes" / "tiny.yaml"
TINY_QA = REPO / "training" / "data" / "tiny" / "tiny_qa.yaml"
TINY_SENTIMENT = REPO / "training" / "data" / "tiny" / "tiny_sentiment.yaml"


def load_script(name: str):
    return importlib.import_module(f"muppet_hf.scripts.{name}")


def run_script(name: str, output_dir: Path, *flags: str):
    script = load_script(name)
    return script.main(*script.parse_args(["--output_dir", str(output_dir), "--report_to", "none", *flags]))


@pytest.fixture(scope="module")
def per_task_checkpoint(tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("lora") / "muppet"
    run_script("prefinetune", output_dir, "--config", str(TINY_RECIPE), "--max_steps", "2", "--lora_mode", "per_task")
    return output_dir


def backbone_weights(model: MuppetForMultiTask) -> dict[str, torch.Tensor]:
    """The backbone's own weights, under their names without LoRA."""
    return {
        name.replace(".base_layer", ""): param.detach()
        for name, param in model.backbone.named_parameters()
        if "lora_" not in name
    }


def test_prefinetune_with_per_task_lora_records_it_and_finetune_lora_merges_the_head_adapter(
    per_task_checkpoint, tmp_path
):
    pre = MuppetForMultiTask.from_pretrained(per_task_checkpoint)
    assert pre.config.lora["adapters"] == ["tiny_sentiment", "multiple_choice", "span"]
    run = json.loads((per_task_checkpoint / "muppet_run.json").read_text())
    assert run["training"]["lora"]["mode"] == "per_task"

    common = ["--model_name_or_path", str(per_task_checkpoint), "--max_steps", "1", "--use_cpu", "true"]
    common += ["--save_strategy", "no", "--lora"]
    results = run_script("finetune", tmp_path / "ft", *common, "--task", str(TINY_QA))
    assert results["head_reused"] is True and results["lora_mode"] == "shared"
    tuned = MuppetForMultiTask.from_pretrained(tmp_path / "ft")
    assert tuned.config.lora["adapters"] == ["shared"]
    # Fine-tuning started from the backbone with the span head's adapter merged, and kept it frozen.
    merged = backbone_weights(merge_adapters(pre, heads=["span"]))
    assert all(torch.equal(tensor, merged[name]) for name, tensor in backbone_weights(tuned).items())
    assert not torch.equal(
        merged["encoder.layer.0.attention.self.query.weight"],
        backbone_weights(pre)["encoder.layer.0.attention.self.query.weight"],
    )


def test_finetune_lora_from_a_base_backbone_and_a_fresh_head_on_a_per_task_checkpoint(
    per_task_checkpoint, tmp_path, caplog
):
    pre = MuppetForMultiTask.from_pretrained(per_task_checkpoint)
    merge_adapters(pre, adapters=[]).save_backbone(tmp_path / "base")
    tiny_tokenizer().save_pretrained(tmp_path / "base")
    common = [
        "--max_steps",
        "1",
        "--use_cpu",
        "true",
        "--save_strategy",
        "no",
        "--lora",
        "--task",
        str(TINY_SENTIMENT),
    ]
    results = run_script("finetune", tmp_path / "ft_base", "--model_name_or_path", str(tmp_path / "base"), *common)
    assert results["head_reused"] is False and results["lora_mode"] == "shared"

    fresh = [*common, "--reuse_head", "false", "--model_name_or_path", str(per_task_checkpoint)]
    run_script("finetune", tmp_path / "ft_fresh", *fresh)
    assert "a fresh head starts from the backbone's own weights" in caplog.text
    base = backbone_weights(pre)
    assert all(
        torch.equal(t, base[n])
        for n, t in backbone_weights(MuppetForMultiTask.from_pretrained(tmp_path / "ft_fresh")).items()
    )


@pytest.mark.multiprocess
def test_two_processes_train_per_task_adapters_and_keep_the_backbone_frozen(tmp_path):
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29541",
        str(REPO / "training" / "prefinetune.py"), "--config", str(TINY_RECIPE), "--output_dir", str(tmp_path / "run"),
        "--report_to", "none", "--lora_mode", "per_task", "--max_steps", "3",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    trained = MuppetForMultiTask.from_pretrained(tmp_path / "run")
    # Every head's adapter moved away from B = 0 ...
    for adapter in ("tiny_sentiment", "multiple_choice", "span"):
        b = [p for name, p in adapter_parameters(trained).items() if f"lora_B.{adapter}." in name]
        assert b and all(torch.count_nonzero(p) > 0 for p in b), adapter
    # ... and the backbone is the random one the same seed builds, bit for bit.
    script = load_script("prefinetune")
    script_args, training_args = script.parse_args(["--config", str(TINY_RECIPE), "--output_dir", str(tmp_path / "x")])
    set_seed(training_args.seed)
    fresh = backbone_weights(script.build_model(script_args, training_args, dict(trained.config.heads)))
    assert all(torch.equal(tensor, fresh[name]) for name, tensor in backbone_weights(trained).items())


def test_exports_refuse_a_backbone_of_another_size_and_a_plain_backbone_export_of_adapters(tmp_path):
    checkpoint, _ = trained_checkpoint(tmp_path, "shared")
    torch.manual_seed(0)
    deeper = tiny_config("bert")
    deeper.num_hidden_layers = 3
    AutoModel.from_config(deeper).save_pretrained(tmp_path / "deeper")
    with pytest.raises(ValueError, match="field `base_model`.*`num_hidden_layers` is 3"):
        export_adapters(checkpoint, tmp_path / "export", base_model=str(tmp_path / "deeper"))
    AutoModel.from_config(tiny_config("roberta")).save_pretrained(tmp_path / "roberta")
    with pytest.raises(ValueError, match="`model_type` is 'roberta'"):
        export_adapters(checkpoint, tmp_path / "export", base_model=str(tmp_path / "roberta"))
    with pytest.raises(ValueError, match="--merge.*--adapter"):
        export_checkpoint(checkpoint, tmp_path / "export", heads="none")
    # With heads, the multi-task export keeps the adapters and reloads them through muppet_hf.
    export_checkpoint(checkpoint, tmp_path / "multitask", heads="all")
    assert MuppetForMultiTask.from_pretrained(tmp_path / "multitask").config.lora["mode"] == "shared"


def test_backbone_only_merge_of_shared_plus_per_task_holds_the_shared_adapter(tmp_path):
    checkpoint, model = trained_checkpoint(tmp_path, "shared+per_task")
    export_merged(checkpoint, tmp_path / "merged", heads="none")
    inputs = tiny_tokenizer()(["a short sentence", "another one"], padding=True, return_tensors="pt")
    set_adapter(model.backbone, ["shared"])
    with torch.no_grad():
        expected = model.get_encoder()(**inputs).last_hidden_state
        actual = AutoModel.from_pretrained(tmp_path / "merged")(**inputs).last_hidden_state
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5)


def test_a_nan_sub_batch_skips_the_update_of_every_adapter(tmp_path):
    nan_task = datasets.Dataset.from_dict(
        {"input_ids": [list(range(5, 12))] * 2, "attention_mask": [[1] * 7] * 2, "labels": [float("nan")] * 2}
    )
    heads = {"sent": HEADS["sent"], "sts": {"type": "regression"}}
    torch.manual_seed(0)
    model = MuppetForMultiTask(
        MuppetConfig(base_model_config=tiny_config(), heads=heads, tasks={"sent": "sent", "sts": "sts"})
    )
    data = {"sent": toy_task("classification", 24, 0), "sts": nan_task}
    trainer = MuppetTrainer(model, arguments(tmp_path, tasks_per_update=2, max_steps=7), data)
    snapshots = []

    class Snapshot(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            snapshots.append({name: p.detach().clone() for name, p in adapter_parameters(model).items()})

    trainer.add_callback(Snapshot())
    trainer.train()
    bad = [i for i in range(1, 7) if "sts" in trainer.tasks_drawn[2 * i : 2 * i + 2]]
    assert bad, trainer.tasks_drawn
    for step in bad:
        assert all(torch.equal(snapshots[step][name], snapshots[step - 1][name]) for name in snapshots[step])
    assert all(torch.isfinite(p).all() for p in adapter_parameters(model).values())


@pytest.mark.slow
def test_quick_lora_benchmark_reports_every_mode(tmp_path):
    output = tmp_path / "lora.json"
    command = [sys.executable, str(REPO / "benchmarks" / "lora.py"), "--quick", "--repeats", "1", "--steps", "3"]
    result = subprocess.run([*command, "--output", str(output)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(output.read_text())["summary"]
    assert set(summary) == {"full", "shared", "per_task"}
    assert summary["per_task"]["adapters"] == 3 and summary["shared"]["adapters"] == 1
    # Adapters and heads are a fraction of the model, and so is the optimizer state that follows them.
    assert summary["shared"]["trainable_params"] < summary["per_task"]["trainable_params"]
    assert summary["per_task"]["trainable_params_vs_full"] < 0.5
    assert summary["per_task"]["optimizer_state_bytes_vs_full"] < 0.5
    assert all(row["step_s"] > 0 and row["peak_rss_mb"] > 0 for row in summary.values())


def test_per_task_lora_with_batch_homogeneous_updates(tmp_path):
    model = build()
    args = arguments(tmp_path, batching="batch_homogeneous", tasks_per_update=2, max_steps=4)
    trainer = MuppetTrainer(model, args, train_dataset=train_data())
    trainer.train()
    updates = [trainer.tasks_drawn[i : i + 2] for i in range(0, len(trainer.tasks_drawn), 2)]
    assert all(len(set(update)) == 1 for update in updates)
    drawn = {TASKS[task] for task in trainer.tasks_drawn}
    for name, param in adapter_parameters(model).items():
        if "lora_B" in name:
            # An adapter moved if and only if an update drew one of its head's tasks.
            assert (torch.count_nonzero(param) > 0) == (name.split(".")[-2] in drawn), name
