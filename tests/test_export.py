import argparse
import json
import os
import re
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import huggingface_hub
import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from safetensors.torch import save_file
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer, RobertaTokenizerFast

import muppet_hf  # noqa: F401  (registers the Auto classes)
from muppet_hf import MuppetConfig, MuppetForMultiTask
from muppet_hf.commands import register_export, register_push
from muppet_hf.hub import (
    RunMetadata,
    TaskRecord,
    build_model_card,
    check_model_card,
    export_checkpoint,
    is_export_folder,
    list_upload_files,
    push_export,
    read_run_metadata,
    write_run_metadata,
)
from muppet_hf.hub.model_card import available_card_templates
from muppet_hf.hub.run_metadata import RUN_METADATA_FILE, backbone_hub_id
from muppet_hf.tasks import TaskSpec
from muppet_hf.testing_utils import realign_, tiny_config, tiny_tokenizer


FAKE_TOKEN = "hf_MuppetTestToken0123456789abcdefXYZ"


def heads_for(encoder_decoder: bool) -> dict:
    heads = {
        "mnli": {"type": "classification", "num_labels": 3, "label_names": ["entailment", "neutral", "contradiction"]},
        "stsb": {"type": "regression"},
        "multiple_choice": {"type": "multiple_choice"},
        "span": {"type": "span"},
        "conll": {"type": "token_classification", "num_labels": 5},
    }
    if encoder_decoder:
        heads["seq2seq"] = {"type": "seq2seq"}
    return heads


def build(model_type: str = "roberta", **config_kwargs) -> MuppetForMultiTask:
    torch.manual_seed(0)
    base = tiny_config(model_type)
    heads = heads_for(base.is_encoder_decoder)
    tasks = {"mnli": "mnli", "stsb": "stsb", "hellaswag": "multiple_choice", "squad": "span", "conll2003": "conll"}
    config = MuppetConfig(base_model_config=base, heads=heads, tasks=tasks, **config_kwargs)
    model = MuppetForMultiTask(config).eval()
    if config.spectral_norm:
        # A few training-mode passes move the power-iteration vectors away from their initial values, so the test
        # checks the weights a trained model holds rather than freshly initialised ones.
        model.train()
        for _ in range(3):
            model(head="mnli", **batch())
        model.eval()
    return model


def batch(size: int = 3, length: int = 9) -> dict:
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(5, 99, (size, length), generator=generator)
    attention_mask = torch.ones(size, length, dtype=torch.long)
    attention_mask[0, -3:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def run_metadata(**overrides) -> dict:
    data = {
        "schema_version": 1,
        "base_model": "FacebookAI/roberta-base",
        "tasks": {
            "mnli": {
                "family": "pair_classification",
                "dataset": "nyu-mll/glue",
                "dataset_config": "mnli",
                "size": {"train": 392702, "validation": 9815},
                "tags": ["glue", "paper"],
                "metrics": {"accuracy": 87.4},
                "metrics_split": "validation_matched",
            },
            "squad": {"family": "span_mrc", "dataset": "rajpurkar/squad", "metrics": {"f1": 91.0}},
        },
        "task_sampling": {"strategy": "proportional"},
        "batching": {"heterogeneous": True, "total_batch_size": 64},
        "loss_scaling": {"strategy": "log_n"},
        "r3f": {"enabled": True, "eps": 1e-5, "lambda": 1.0, "noise": "uniform"},
        "training": {"learning_rate": 1e-5, "max_steps": 10},
    }
    data.update(overrides)
    return data


def outputs_of(model: MuppetForMultiTask, head: str) -> torch.Tensor:
    inputs = batch()
    spec = model.config.heads[head]
    with torch.no_grad():
        if spec["type"] == "multiple_choice":
            inputs = {key: value.unsqueeze(1).expand(-1, 2, -1).contiguous() for key, value in inputs.items()}
            return model(head=head, **inputs).logits
        if spec["type"] == "span":
            out = model(head=head, **inputs)
            return torch.stack([out.start_logits, out.end_logits])
        if spec["type"] == "seq2seq":
            return model(head=head, **inputs, decoder_input_ids=inputs["input_ids"][:, :4]).logits
        return model(head=head, **inputs).logits


def run_python(script: str) -> str:
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def all_bytes(folder: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file())


# --------------------------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------------------------


def test_backbone_export_loads_with_vanilla_transformers_bit_identical(tmp_path):
    """`heads="none"` folders load in a process that never imports muppet_hf, with identical backbone outputs."""
    cases = []
    for model_type in ("roberta", "bert", "bart"):
        model = build(model_type)
        folder = export_checkpoint(model, tmp_path / model_type, heads="none", tokenizer=tiny_tokenizer())
        config = json.loads((folder / "config.json").read_text())
        assert config["model_type"] == model_type
        assert not list(folder.glob("*.bin")) and (folder / "model.safetensors").is_file()
        with torch.no_grad():
            encoder = model.get_encoder()
            expected = encoder(**batch()).last_hidden_state
        torch.save({"inputs": batch(), "expected": expected}, tmp_path / f"{model_type}.pt")
        cases.append(
            (str(folder), str(tmp_path / f"{model_type}.pt"), model.config.base_model_config.is_encoder_decoder)
        )
    script = f"""
import sys, torch
from transformers import (AutoModel, AutoModelForQuestionAnswering, AutoModelForSeq2SeqLM,
                          AutoModelForSequenceClassification, AutoTokenizer)
for folder, io_file, encoder_decoder in {cases!r}:
    data = torch.load(io_file, weights_only=True)
    model = AutoModel.from_pretrained(folder).eval()
    for tensor in [*model.parameters(), *model.buffers()]:
        tensor.data = tensor.data.clone()  # aligned storage, as muppet_hf.testing_utils.realign_ does
    encoder = model.get_encoder() if encoder_decoder else model
    with torch.no_grad():
        hidden = encoder(**data["inputs"]).last_hidden_state
    assert torch.equal(hidden, data["expected"]), folder
    AutoModelForSequenceClassification.from_pretrained(folder, num_labels=4)
    if encoder_decoder:
        AutoModelForSeq2SeqLM.from_pretrained(folder)
    else:
        AutoModelForQuestionAnswering.from_pretrained(folder)
    assert AutoTokenizer.from_pretrained(folder)("a b")["input_ids"]
assert "muppet_hf" not in sys.modules
print("ok")
"""
    assert run_python(script).strip().endswith("ok")


@pytest.mark.parametrize(
    ("model_type", "spectral_norm", "bake"),
    [("roberta", False, True), ("roberta", True, True), ("bert", True, False), ("bart", True, True)],
)
def test_multitask_export_reloads_with_identical_head_outputs(model_type, spectral_norm, bake, tmp_path):
    model = build(model_type, spectral_norm=spectral_norm)
    folder = export_checkpoint(
        model, tmp_path / "export", heads="all", tokenizer=tiny_tokenizer(), bake_spectral_norm=bake
    )
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "muppet" and set(config["heads"]) == set(model.config.heads)
    assert config["spectral_norm"] is (spectral_norm and not bake)
    assert "auto_map" not in config and not list(folder.glob("*.py"))
    assert not [path for path in folder.iterdir() if path.suffix in (".bin", ".pt", ".pth", ".pkl")]

    reloaded = realign_(AutoModel.from_pretrained(folder).eval())
    assert type(reloaded) is MuppetForMultiTask
    assert reloaded.config.tasks == model.config.tasks
    for head in model.config.heads:
        assert torch.equal(outputs_of(model, head), outputs_of(reloaded, head)), head
    if spectral_norm and bake:
        assert type(reloaded.heads["mnli"].dense) is torch.nn.Linear
        keys = json.loads((folder / "muppet_run.json").read_text())["export"]
        assert keys["spectral_norm_baked"] is True
    # Exporting leaves the source model as it was: same mode, same weights.
    assert not model.training


def test_export_a_subset_of_heads_and_from_a_checkpoint_folder(tmp_path):
    model = build("roberta")
    model.save_pretrained(tmp_path / "checkpoint")
    tiny_tokenizer().save_pretrained(tmp_path / "checkpoint")
    (tmp_path / "checkpoint" / RUN_METADATA_FILE).write_text(json.dumps(run_metadata()))
    folder = export_checkpoint(tmp_path / "checkpoint", tmp_path / "export", heads=["mnli", "span"])
    config = json.loads((folder / "config.json").read_text())
    assert set(config["heads"]) == {"mnli", "span"}
    assert config["tasks"] == {"mnli": "mnli", "squad": "span"}
    assert (folder / "tokenizer.json").is_file()
    reloaded = realign_(MuppetForMultiTask.from_pretrained(folder).eval())
    assert torch.equal(outputs_of(model, "span"), outputs_of(reloaded, "span"))
    with pytest.raises(ValueError, match=r"heads \['nope'\] are not in the model"):
        export_checkpoint(model, tmp_path / "other", heads=["nope"])


def test_export_never_loads_pickles(tmp_path):
    model = build("bert")
    model.save_pretrained(tmp_path / "checkpoint")
    weights = tmp_path / "checkpoint" / "model.safetensors"
    torch.save(model.state_dict(), tmp_path / "checkpoint" / "pytorch_model.bin")
    weights.unlink()
    with pytest.raises(ValueError, match="never loads pickled weights"):
        export_checkpoint(tmp_path / "checkpoint", tmp_path / "export")
    assert not (tmp_path / "export").exists()


def test_export_is_atomic(tmp_path, monkeypatch):
    model = build("bert")
    first = export_checkpoint(model, tmp_path / "export", heads="none")
    before = sorted(list_upload_files(first))
    with pytest.raises(ValueError, match="already exists"):
        export_checkpoint(model, tmp_path / "export", heads="none")

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    # A failure halfway (after the weights, before the card) leaves the old export intact and no temporary folder.
    monkeypatch.setattr("muppet_hf.hub.export.build_model_card", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        export_checkpoint(model, tmp_path / "export", heads="all", overwrite=True)
    assert sorted(list_upload_files(first)) == before
    assert json.loads((first / "config.json").read_text())["model_type"] == "bert"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["export"]
    monkeypatch.undo()
    export_checkpoint(model, tmp_path / "export", heads="all", overwrite=True)
    assert json.loads((first / "config.json").read_text())["model_type"] == "muppet"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["export"]


def test_remote_code_export_loads_without_muppet_hf(tmp_path):
    model = build("roberta", spectral_norm=True)
    folder = export_checkpoint(model, tmp_path / "export", heads=["mnli", "span"], remote_code=True)
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_muppet.MuppetForMultiTask"
    assert {"modeling_muppet.py", "configuration_muppet.py", "losses.py"} <= {p.name for p in folder.glob("*.py")}
    assert "custom_code" in ModelCard.load(folder / "README.md").data.tags
    torch.save({"inputs": batch(), "expected": outputs_of(model, "mnli")}, tmp_path / "io.pt")
    script = f"""
import sys, torch
from transformers import AutoModel
data = torch.load({str(tmp_path / "io.pt")!r}, weights_only=True)
try:
    AutoModel.from_pretrained({str(folder)!r})
except ValueError as err:
    assert "trust_remote_code" in str(err)
else:
    raise AssertionError("loaded custom code without trust_remote_code=True")
model = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
for tensor in [*model.parameters(), *model.buffers()]:
    tensor.data = tensor.data.clone()
with torch.no_grad():
    logits = model(head="mnli", **data["inputs"]).logits
assert torch.equal(logits, data["expected"])
assert "muppet_hf" not in sys.modules
print("ok")
"""
    assert run_python(script).strip().endswith("ok")
    with pytest.raises(ValueError, match="backbone-only export"):
        export_checkpoint(model, tmp_path / "backbone", heads="none", remote_code=True)


# --------------------------------------------------------------------------------------------------------------
# Run metadata and model cards
# --------------------------------------------------------------------------------------------------------------


def test_read_run_metadata_merges_config_run_file_and_trainer_results(tmp_path):
    build("roberta").save_pretrained(tmp_path)
    (tmp_path / RUN_METADATA_FILE).write_text(json.dumps(run_metadata()))
    (tmp_path / "all_results.json").write_text(
        json.dumps({"eval_mnli_accuracy": 0.5, "eval_conll2003_f1": 0.8, "eval_conll2003_runtime": 3.0, "epoch": 1})
    )
    metadata = read_run_metadata(tmp_path)
    assert metadata.base_model == "FacebookAI/roberta-base" and metadata.backbone_type == "roberta"
    assert set(metadata.heads) == set(heads_for(False))
    # muppet_run.json wins over all_results.json; tasks only in config.json are kept with their head. The Trainer's
    # fractions are read in percent, the scale of muppet_run.json and the card.
    assert metadata.tasks["mnli"].metrics == {"accuracy": 87.4}
    assert metadata.tasks["conll2003"].metrics == {"f1": 80.0}
    assert metadata.tasks["hellaswag"].head == "multiple_choice"
    assert metadata.tasks["mnli"].head == "mnli" and metadata.tasks["mnli"].size["train"] == 392702
    assert metadata.r3f["eps"] == 1e-5 and not metadata.is_canary


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        ({"schema_version": 2}, ValueError, "field `schema_version`"),
        ({"schema_version": 1, "sampling": {}}, ValueError, r"unknown field\(s\) \['sampling'\]"),
        ({"schema_version": 1, "r3f": "on"}, TypeError, "field `r3f` must be a dict"),
        ({"schema_version": 1, "tasks": {"mnli": {"metrics": {"accuracy": "high"}}}}, TypeError, "tasks.mnli.metrics"),
        ({"schema_version": 1, "tasks": {"mnli": {"size": {"train": -1}}}}, ValueError, "tasks.mnli.size.train"),
        ({"schema_version": 1, "tasks": {"mnli": {"examples": {"train": 1.5}}}}, ValueError, "mnli.examples.train"),
        ({"schema_version": 1, "tasks": {"mnli": {"examples_seen": -3}}}, ValueError, "tasks.mnli.examples_seen"),
        ({"schema_version": 1, "tasks": {"MNLI": {}}}, ValueError, "field `tasks.MNLI`"),
        ({"schema_version": 1, "skipped_tasks": ["vitaminc"]}, TypeError, "field `skipped_tasks` must be a dict"),
        ({"schema_version": 1, "skipped_tasks": {"vitaminc": 404}}, TypeError, "field `skipped_tasks.vitaminc`"),
    ],
)
def test_bad_run_metadata_names_the_file_and_field(tmp_path, data, error, match):
    build("bert").save_pretrained(tmp_path)
    (tmp_path / RUN_METADATA_FILE).write_text(json.dumps(data))
    with pytest.raises(error, match=match) as info:
        read_run_metadata(tmp_path)
    assert RUN_METADATA_FILE in str(info.value)


def test_write_run_metadata_round_trips_and_task_record_from_spec(tmp_path):
    spec = TaskSpec(
        name="boolq",
        family="pair_classification",
        source={"hub": "google/boolq"},
        columns={"text": "question", "text_pair": "passage", "label": "answer"},
        label_names=["no", "yes"],
        size={"train": 9427},
        tags=["superglue"],
    )
    metadata = RunMetadata(base_model="FacebookAI/roberta-base", tasks={"boolq": TaskRecord.from_spec(spec)})
    metadata.tasks["boolq"].metrics = {"accuracy": 0.8}
    build("bert").save_pretrained(tmp_path)
    write_run_metadata(tmp_path, metadata)
    read = read_run_metadata(tmp_path)
    assert read.tasks["boolq"] == metadata.tasks["boolq"]
    assert read.tasks["boolq"].dataset == "google/boolq" and read.tasks["boolq"].head == "boolq"
    # Tasks a run left out are kept through a re-read (an export's card says so too), and absent when there were none.
    assert read.skipped_tasks is None and "skipped_tasks" not in json.loads((tmp_path / RUN_METADATA_FILE).read_text())
    metadata.skipped_tasks = {"vitaminc": "could not fetch bigbench==1.0.0"}
    write_run_metadata(tmp_path, metadata)
    assert read_run_metadata(tmp_path).skipped_tasks == {"vitaminc": "could not fetch bigbench==1.0.0"}


def test_model_card_parses_and_validates(tmp_path):
    model = build("roberta", spectral_norm=True)
    folder = export_checkpoint(
        model, tmp_path / "export", tokenizer=tiny_tokenizer(), metadata=run_metadata(), repo_id="me/muppet-tiny"
    )
    card = check_model_card(folder / "README.md")
    assert card.data.base_model == "FacebookAI/roberta-base"
    assert card.data.license == "mit" and card.data.library_name == "transformers"
    assert card.data.datasets == ["nyu-mll/glue", "rajpurkar/squad"]
    results = {(r.dataset_name, r.metric_type): r for r in card.data.eval_results}
    assert results["mnli", "accuracy"].metric_value == 87.4
    assert results["mnli", "accuracy"].dataset_type == "nyu-mll/glue"
    assert results["mnli", "accuracy"].dataset_split == "validation_matched"
    assert results["squad", "f1"].task_type == "question-answering"
    assert card.data.to_dict()["model-index"][0]["name"] == "muppet-tiny"
    assert "canary" not in card.data.tags
    text = card.text
    assert "arXiv:2101.11038" in text and "RoBERTa-base" in text
    assert "head reuse" in text and 'head="mnli"' in text and "add_head" in text
    assert "| r3f | eps | 1e-05 |" in text and "392,702" in text
    assert "{{" not in card.content


def test_card_templates_are_chosen_from_the_base_model(tmp_path):
    assert {"muppet-roberta-base", "muppet-roberta-large", "muppet-bart-large", "muppet-minilm-offline"} <= set(
        available_card_templates()
    )
    model = build("bart")
    metadata = run_metadata(base_model="facebook/bart-large")
    folder = export_checkpoint(model, tmp_path / "bart", heads="none", metadata=metadata)
    card = check_model_card(folder / "README.md")
    assert "BART-large" in card.text and "AutoModelForSeq2SeqLM" in card.text
    assert card.data.pipeline_tag == "summarization"
    folder = export_checkpoint(
        model, tmp_path / "minilm", heads="none", metadata=metadata, card_template="muppet-minilm-offline"
    )
    assert "demo" in ModelCard.load(folder / "README.md").text
    with pytest.raises(ValueError, match="neither a .md file nor one of"):
        export_checkpoint(model, tmp_path / "x", card_template="muppet-gpt-5")


def test_card_without_hub_base_model_omits_it(tmp_path):
    # A base model read from a local folder cannot be linked from the Hub, so the card leaves the field out.
    model = build("bert")
    model.config.base_model_config._name_or_path = str(tmp_path)
    folder = export_checkpoint(model, tmp_path / "export")
    card = check_model_card(folder / "README.md")
    assert card.data.base_model is None and card.data.eval_results is None


def test_card_metrics_share_one_scale_and_tasks_give_examples_used_and_seen(tmp_path):
    build("roberta").save_pretrained(tmp_path)
    data = run_metadata()
    data["tasks"]["mnli"].update(examples={"train": 2000, "validation": 200}, examples_seen=6400)
    data["tasks"]["mnli"]["metrics"]["loss"] = 1.1
    (tmp_path / RUN_METADATA_FILE).write_text(json.dumps(data))
    # The Trainer reports accuracy as a fraction and SQuAD F1 in percent; the card shows both in percent.
    (tmp_path / "all_results.json").write_text(
        json.dumps({"eval_hellaswag_accuracy": 0.31, "eval_squad_exact_match": 6.5})
    )
    card = build_model_card(read_run_metadata(tmp_path), model_id="me/muppet-tiny")
    values = {(r.dataset_name, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert values == {
        ("hellaswag", "accuracy"): 31.0,
        ("mnli", "accuracy"): 87.4,
        ("squad", "exact_match"): 6.5,
        ("squad", "f1"): 91.0,
    }
    # The loss is no score: the results table shows it, model-index (all scores, in percent) leaves it out.
    assert "| `mnli` | loss | 1.1 | validation_matched |" in card.text
    # The dataset's size, then the rows the run kept after its caps and the training rows it drew.
    assert "| `mnli` | pair_classification | `mnli` | 392,702 | 2,000 | 6,400 | 200 |" in card.text


@pytest.mark.parametrize(
    "name_or_path",
    ["offline:all-MiniLM-L6-v2", "{tmp}/cache/backbones/all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"],
)
def test_card_names_the_offline_backbone_by_its_hub_id_never_its_folder(tmp_path, name_or_path):
    name_or_path = name_or_path.format(tmp=tmp_path)
    assert backbone_hub_id(name_or_path) == "sentence-transformers/all-MiniLM-L6-v2"
    metadata = RunMetadata(base_model=name_or_path, backbone_type="bert", card_template="muppet-minilm-offline")
    card = build_model_card(metadata, model_id="muppet-minilm-offline")
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    first_sentence = card.text.split("# muppet-minilm-offline", 1)[1].strip().split(". ")[0]
    assert "sentence-transformers/all-MiniLM-L6-v2 pre-finetuned" in first_sentence
    assert str(tmp_path) not in card.content
    # Any other local folder is no Hub id: the card names no base model rather than a path on this machine.
    assert backbone_hub_id(str(tmp_path / "my-backbone")) is None and backbone_hub_id("offline:other") is None
    local = build_model_card(
        RunMetadata(base_model=str(tmp_path), card_template="muppet-minilm-offline"), model_id="muppet-minilm-offline"
    )
    assert local.data.base_model is None and str(tmp_path) not in local.content


def test_card_usage_feeds_each_head_its_trained_input_shape():
    heads = {
        "sentiment": {"type": "classification", "num_labels": 2},
        "nli": {"type": "classification", "num_labels": 3},
    }
    tasks = {
        "rotten_tomatoes": TaskRecord(name="rotten_tomatoes", head="sentiment", family="classification"),
        "mnli": TaskRecord(name="mnli", head="nli", family="pair_classification"),
    }
    metadata = RunMetadata(heads=heads, tasks=tasks)
    single = build_model_card(metadata, model_id="m", exported_heads=["sentiment"]).text
    assert 'tokenizer("a sentence", return_tensors="pt")' in single and "hypothesis" not in single
    pair = build_model_card(metadata, model_id="m", exported_heads=["nli"]).text
    assert 'tokenizer("a premise", "a hypothesis", return_tensors="pt")' in pair


def test_card_examples_run(tmp_path):
    """The fine-tuning examples of every kind of card run as written, against the exported folders."""
    roberta, bart = build("roberta"), build("bart")
    # Like BART's own tokenizer, this one must not emit segment ids, which BART has no embedding for.
    bart_tokenizer = tiny_tokenizer()
    bart_tokenizer.model_input_names = ["input_ids", "attention_mask"]
    script = ""
    # The head-reuse example differs for classification, span and multiple-choice heads; "none" is backbone-only.
    cases = [
        (roberta, heads, tiny_tokenizer())
        for heads in (["mnli", "span"], ["span"], ["multiple_choice"], ["stsb"], ["conll"], "none")
    ]
    cases += [(bart, heads, bart_tokenizer) for heads in ("all", ["seq2seq"], "none")]
    for index, (model, heads, tokenizer) in enumerate(cases):
        folder = export_checkpoint(
            model, tmp_path / f"export_{index}", heads=heads, tokenizer=tokenizer, metadata=run_metadata()
        )
        blocks = re.findall(r"```python\n(.*?)```", (folder / "README.md").read_text(), flags=re.DOTALL)
        script += "\n".join(blocks).replace(f'"{folder.name}"', repr(str(folder)))
        if heads != "none":
            script += "\nassert torch.isfinite(outputs.loss)\n"
    # One process for all cards: starting Python with torch and transformers costs more than the examples.
    run_python(script)


def test_canary_checkpoint_card_and_push_refusal(tmp_path):
    model = build("bert")
    metadata = run_metadata()
    metadata["tasks"]["bigbench_logic"] = {"family": "multiple_choice", "tags": ["bigbench", "canary"]}
    folder = export_checkpoint(model, tmp_path / "export", metadata=metadata)
    card = check_model_card(folder / "README.md")
    assert {"canary", "bigbench", "do-not-publish"} <= set(card.data.tags)
    assert "Do not publish this checkpoint" in card.text and "`bigbench_logic`" in card.text
    assert read_run_metadata(folder).is_canary

    with pytest.raises(ValueError, match="BIG-bench.*Refusing to upload"):
        push_export(folder, "me/secret", dry_run=True)
    with pytest.warns(UserWarning, match="Uploading anyway"):
        result = push_export(folder, "me/secret", dry_run=True, allow_canary=True)
    assert result.dry_run and result.files

    # The run-level flag alone (no tagged task) is enough.
    flagged = export_checkpoint(model, tmp_path / "flagged", metadata=run_metadata(canary=True))
    with pytest.raises(ValueError, match="Refusing to upload"):
        push_export(flagged, "me/secret", dry_run=True)


# --------------------------------------------------------------------------------------------------------------
# Push
# --------------------------------------------------------------------------------------------------------------


def test_dry_run_lists_exactly_the_exported_files(tmp_path):
    model = build("roberta")
    folder = export_checkpoint(model, tmp_path / "export", tokenizer=tiny_tokenizer(), metadata=run_metadata())
    on_disk = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert on_disk == sorted(
        ["README.md", "config.json", "model.safetensors", RUN_METADATA_FILE, "tokenizer.json", "tokenizer_config.json"]
    )
    result = push_export(folder, "me/muppet-tiny", dry_run=True)
    assert [path for path, _ in result.files] == on_disk
    assert all(size == (folder / path).stat().st_size for path, size in result.files)

    # A checkpoint folder is exported first; the files are those an export of it holds.
    model.save_pretrained(tmp_path / "checkpoint")
    tiny_tokenizer().save_pretrained(tmp_path / "checkpoint")
    (tmp_path / "checkpoint" / "training_args.bin").write_bytes(b"pickle")
    assert not is_export_folder(tmp_path / "checkpoint") and is_export_folder(folder)
    result = push_export(tmp_path / "checkpoint", "me/muppet-tiny", dry_run=True)
    assert [path for path, _ in result.files] == on_disk


def test_token_never_written_and_push_calls_hfapi(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    model = build("roberta")
    model.save_pretrained(tmp_path / "checkpoint")
    folder = export_checkpoint(tmp_path / "checkpoint", tmp_path / "export", metadata=run_metadata())
    calls = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs))

    def create_branch(self, repo_id, **kwargs):
        calls.append(("create_branch", repo_id, kwargs))

    def upload_folder(self, **kwargs):
        uploaded = sorted(
            p.relative_to(kwargs["folder_path"]).as_posix() for p in Path(kwargs["folder_path"]).rglob("*")
        )
        calls.append(("upload_folder", kwargs["repo_id"], {**kwargs, "files": uploaded}))
        assert FAKE_TOKEN.encode() not in all_bytes(Path(kwargs["folder_path"]))

        class Commit:
            commit_url = "http://hub.invalid/me/muppet-tiny/commit/abc"
            pr_url = "http://hub.invalid/me/muppet-tiny/discussions/1"

        return Commit()

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "create_branch", create_branch)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    result = push_export(folder, "me/muppet-tiny", private=True, revision="v1")
    assert [call[0] for call in calls] == ["create_repo", "create_branch", "upload_folder"]
    assert calls[0][2]["private"] is True and calls[0][2]["exist_ok"] is True
    assert calls[1][2]["branch"] == "v1"
    upload = calls[2][2]
    assert upload["revision"] == "v1" and upload["create_pr"] is False and upload["repo_type"] == "model"
    assert upload["files"] == [path for path, _ in result.files]
    assert result.url.endswith("/commit/abc")

    calls.clear()
    result = push_export(tmp_path / "checkpoint", "me/muppet-tiny", create_pr=True, revision="v1")
    assert [call[0] for call in calls] == ["create_repo", "upload_folder"]
    assert calls[1][2]["create_pr"] is True and result.url.endswith("/discussions/1")

    assert FAKE_TOKEN.encode() not in all_bytes(tmp_path)

    # A folder that somehow holds the token is refused before anything is sent.
    (folder / "notes.txt").write_text(f"token={FAKE_TOKEN}")
    calls.clear()
    with pytest.raises(ValueError, match="contains the Hugging Face token") as info:
        push_export(folder, "me/muppet-tiny")
    assert FAKE_TOKEN not in str(info.value) and not calls


class _FakeHub(BaseHTTPRequestHandler):
    """Answers `create_repo` as the Hub does and records each request, for the push tests."""

    requests: list[dict] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.requests.append(
            {"path": self.path, "authorization": self.headers.get("Authorization"), "body": json.loads(body or b"{}")}
        )
        reply = json.dumps({"url": f"http://{self.server.server_address[0]}/me/muppet-tiny"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass  # keep pytest's output clean


def test_push_against_a_local_endpoint(tmp_path, monkeypatch):
    """`create_repo` goes over HTTP to a local fake Hub; `upload_folder` (LFS/xet transfers) is captured instead."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    # CI runs with HF_HUB_OFFLINE=1, which huggingface_hub reads at import; the local server stands in for a network.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    uploaded = {}
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kwargs: uploaded.update(kwargs) or _commit())
    try:
        folder = export_checkpoint(build("bert"), tmp_path / "export", heads="none")
        api = HfApi(endpoint=f"http://127.0.0.1:{server.server_address[1]}", token=FAKE_TOKEN)
        push_export(folder, "me/muppet-tiny", private=True, api=api)
    finally:
        server.shutdown()
    [request] = _FakeHub.requests
    assert request["path"] == "/api/repos/create"
    assert request["body"]["name"] == "muppet-tiny" and request["body"]["organization"] == "me"
    # huggingface_hub 1.x sends `visibility`; older releases sent `private`.
    assert request["body"].get("visibility") == "private" or request["body"].get("private") is True
    assert request["authorization"] == f"Bearer {FAKE_TOKEN}"
    assert uploaded["folder_path"] == folder and uploaded["repo_id"] == "me/muppet-tiny"


def _commit():
    class Commit:
        commit_url = "http://127.0.0.1/me/muppet-tiny/commit/abc"
        pr_url = None

    return Commit()


def test_push_without_network_or_token_fails_clearly(tmp_path, monkeypatch):
    folder = export_checkpoint(build("bert"), tmp_path / "export", heads="none")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # no stored login
    with pytest.raises(ValueError, match="no Hugging Face token"):
        push_export(folder, "me/muppet-tiny", api=HfApi(token=False))
    # Port 9 (discard) has no listener: the connection is refused as it is without network.
    api = HfApi(endpoint="http://127.0.0.1:9", token=FAKE_TOKEN)
    with pytest.raises(ConnectionError, match="cannot reach the Hugging Face Hub at http://127.0.0.1:9") as info:
        push_export(folder, "me/muppet-tiny", api=api)
    assert FAKE_TOKEN not in str(info.value)
    with pytest.raises(FileNotFoundError):
        push_export(tmp_path / "missing", "me/muppet-tiny", dry_run=True)


# --------------------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------------------


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="muppet-hf")
    commands = parser.add_subparsers(dest="command", required=True)
    register_export(commands)
    register_push(commands)
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_export_and_push(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    model = build("roberta", spectral_norm=True)
    model.save_pretrained(tmp_path / "checkpoint")
    tiny_tokenizer().save_pretrained(tmp_path / "checkpoint")
    export = tmp_path / "export"
    assert cli(["export", str(tmp_path / "checkpoint"), str(export), "--heads", "mnli", "span", "--remote-code"]) == 0
    assert set(json.loads((export / "config.json").read_text())["heads"]) == {"mnli", "span"}
    printed = capsys.readouterr().out
    assert "model.safetensors" in printed and "modeling_muppet.py" in printed

    assert cli(["push", str(export), "me/muppet-tiny", "--dry-run", "--private", "--revision", "v1"]) == 0
    printed = capsys.readouterr().out
    listed = re.findall(r"^  (\S+)  \(", printed, flags=re.MULTILINE)
    assert listed == [path for path, _ in list_upload_files(export)]
    assert "me/muppet-tiny@v1 (private" in printed and FAKE_TOKEN not in printed

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr("muppet_hf.hub.push.HfApi", lambda: HfApi(endpoint="http://127.0.0.1:9"))
    assert cli(["push", str(export), "me/muppet-tiny"]) == 1
    captured = capsys.readouterr()
    assert "cannot reach the Hugging Face Hub" in captured.err and FAKE_TOKEN not in captured.err + captured.out

    with pytest.raises(ValueError, match="cannot be combined"):
        cli(["export", str(tmp_path / "checkpoint"), str(tmp_path / "x"), "--heads", "all", "mnli"])


# --------------------------------------------------------------------------------------------------------------
# Downstream: from_backbone on a folder laid out like facebook/muppet-roberta-base
# --------------------------------------------------------------------------------------------------------------


def test_from_backbone_on_a_muppet_roberta_base_layout(tmp_path):
    """facebook/muppet-roberta-base holds a RoBERTa config, backbone weights, a BPE tokenizer and a README."""
    torch.manual_seed(0)
    base = tiny_config("roberta")
    base.architectures = ["RobertaForMaskedLM"]
    released = AutoModelForMaskedLM.from_config(base)
    weights = {key: value.contiguous() for key, value in released.state_dict().items() if "lm_head.decoder" not in key}
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    base.save_pretrained(tmp_path)
    tokens = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", *"abcdefgh", "Ġ", "ab"]
    vocab = {token: index for index, token in enumerate(tokens)}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\n")
    (tmp_path / "README.md").write_text("---\nlanguage: en\nlicense: mit\n---\n# Muppet RoBERTa base\n")

    model = MuppetForMultiTask.from_backbone(
        tmp_path, heads={"rte": {"type": "classification", "num_labels": 2}, "span": {"type": "span"}}
    )
    reference = released.roberta.state_dict()
    loaded = model.backbone.state_dict()
    # A masked-LM checkpoint has no pooler; AutoModel initialises it, as for any such checkpoint.
    assert set(loaded) - set(reference) == {"pooler.dense.weight", "pooler.dense.bias"}
    for key, value in reference.items():
        assert torch.equal(loaded[key], value), key
    tokenizer = RobertaTokenizerFast.from_pretrained(tmp_path)
    inputs = tokenizer(["a b c", "d e"], padding=True, return_tensors="pt")
    assert torch.isfinite(model(head="rte", **inputs, labels=torch.tensor([0, 1])).loss)
    # ...and the fine-tuned model exports back with its heads and the same tokenizer.
    folder = export_checkpoint(model, tmp_path / "export", heads="all", tokenizer=tokenizer)
    assert AutoTokenizer.from_pretrained(folder)("a b c")["input_ids"] == tokenizer("a b c")["input_ids"]


WHEEL_CHECK = """
import muppet_hf
from muppet_hf.hub import model_card
print(model_card.MODEL_CARDS_DIR.relative_to(model_card.Path(muppet_hf.__file__).parent))
print(" ".join(model_card.available_card_templates()))
"""


@pytest.mark.slow
def test_wheel_ships_the_card_templates_and_task_specs(tmp_path):
    # The templates sit at the repository's top level; a non-editable install must still find them.
    repo = Path(__file__).resolve().parent.parent
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(repo),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = tmp_path.glob("muppet_hf-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    templates = sorted(path.name for path in (repo / "model_cards").glob("*.md"))
    assert {f"muppet_hf/model_cards/{name}" for name in templates} <= names
    assert "muppet_hf/tasks/specs/offline/rotten_tomatoes.yaml" in names

    # Run from the unpacked wheel, not from the checkout.
    result = subprocess.run(
        [sys.executable, "-c", WHEEL_CHECK],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    location, names_found = result.stdout.splitlines()
    assert location == "model_cards"
    assert names_found.split() == [name.removesuffix(".md") for name in templates]
