import json
import subprocess
import sys

import pytest
import torch
from transformers import AutoModel, EncoderDecoderConfig

import muppet_hf  # noqa: F401  (registers the Auto classes)
from muppet_hf import MuppetConfig, MuppetForMultiTask
from muppet_hf.testing_utils import realign_, tiny_config


ENCODER_ONLY = ("bert", "roberta", "mpnet", "electra", "deberta-v2")
ENCODER_DECODER = ("bart", "t5")


def all_heads(encoder_decoder: bool) -> dict:
    heads = {
        "sst2": {"type": "classification", "num_labels": 2},
        "stsb": {"type": "regression"},
        "multiple_choice": {"type": "multiple_choice"},
        "span": {"type": "span"},
        "pos": {"type": "token_classification", "num_labels": 5},
    }
    if encoder_decoder:
        heads["seq2seq"] = {"type": "seq2seq"}
    return heads


def build(model_type: str, **config_kwargs) -> MuppetForMultiTask:
    torch.manual_seed(0)
    base = tiny_config(model_type)
    config = MuppetConfig(base_model_config=base, heads=all_heads(base.is_encoder_decoder), **config_kwargs)
    return MuppetForMultiTask(config).eval()


def batch(size: int = 3, length: int = 9) -> dict:
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(5, 99, (size, length), generator=generator)
    attention_mask = torch.ones(size, length, dtype=torch.long)
    attention_mask[0, -3:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


@pytest.mark.parametrize("model_type", ENCODER_ONLY + ENCODER_DECODER)
def test_every_head_shapes_and_loss(model_type):
    model = build(model_type)
    inputs = batch()
    out = model(head="sst2", **inputs, labels=torch.tensor([0, 1, 1]))
    assert out.logits.shape == (3, 2) and out.per_example_loss.shape == (3,)
    assert torch.allclose(out.loss, out.per_example_loss.mean())
    assert out.num_outputs.tolist() == [2.0, 2.0, 2.0]

    out = model(head="stsb", **inputs, labels=torch.tensor([0.5, 4.0, 2.0]))
    assert out.logits.shape == (3, 1) and out.num_outputs.tolist() == [1.0, 1.0, 1.0]
    assert torch.allclose(out.per_example_loss, (out.logits.view(-1) - torch.tensor([0.5, 4.0, 2.0])) ** 2)

    choices = {key: value.unsqueeze(1).expand(-1, 4, -1).contiguous() for key, value in inputs.items()}
    choice_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]], dtype=torch.bool)
    out = model(head="multiple_choice", **choices, choice_mask=choice_mask, labels=torch.tensor([3, 1, 2]))
    assert out.logits.shape == (3, 4)
    assert out.num_outputs.tolist() == [4.0, 2.0, 3.0]
    assert torch.isfinite(out.loss)
    # Identical choices score alike, so the loss of each example is log(number of valid choices).
    assert torch.allclose(out.per_example_loss, torch.log(out.num_outputs), atol=1e-5)

    out = model(head="span", **inputs, start_positions=torch.tensor([1, 2, 3]), end_positions=torch.tensor([2, 4, 8]))
    assert out.start_logits.shape == (3, 9) and out.end_logits.shape == (3, 9)
    assert out.num_outputs.tolist() == [6.0, 9.0, 9.0]
    assert out.start_logits[0, -1] == torch.finfo(out.start_logits.dtype).min

    labels = torch.randint(0, 5, (3, 9))
    labels[:, 0] = -100
    out = model(head="pos", **inputs, labels=labels)
    assert out.logits.shape == (3, 9, 5) and out.per_example_loss.shape == (3,)

    out = model(head="sst2", **inputs)
    assert out.loss is None and out.per_example_loss is None


@pytest.mark.parametrize("model_type", ENCODER_DECODER)
def test_seq2seq_head_loss_and_generate(model_type):
    model = build(model_type)
    inputs = batch()
    labels = torch.randint(5, 99, (3, 6))
    labels[0, -2:] = -100
    out = model(head="seq2seq", **inputs, labels=labels)
    assert out.logits.shape == (3, 6, 99)
    assert out.num_outputs.tolist() == [99.0] * 3
    # Each example averages over its own target tokens, with the config's label smoothing (0.1).
    first = torch.nn.functional.cross_entropy(out.logits[0, :4], labels[0, :4], label_smoothing=0.1)
    assert torch.allclose(out.per_example_loss[0], first, atol=1e-5)
    generated = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert generated.shape[0] == 3 and generated.shape[1] <= 5


def test_seq2seq_head_on_encoder_decoder_model():
    base = EncoderDecoderConfig.from_encoder_decoder_configs(tiny_config("bert"), tiny_config("bert"))
    base.decoder_start_token_id, base.pad_token_id = 2, 0
    config = MuppetConfig(
        base_model_config=base,
        heads={"seq2seq": {"type": "seq2seq"}, "c": {"type": "classification", "num_labels": 3}},
    )
    model = MuppetForMultiTask(config).eval()
    inputs = batch()
    out = model(head="seq2seq", **inputs, labels=torch.randint(5, 99, (3, 6)))
    assert out.logits.shape == (3, 6, 99) and torch.isfinite(out.loss)
    assert model(head="c", **inputs).logits.shape == (3, 3)


@pytest.mark.parametrize("model_type", ("bert", "roberta", "bart", "t5"))
def test_save_and_auto_model_reload_is_bit_identical(model_type, tmp_path):
    model = build(model_type, spectral_norm=True)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert not list(tmp_path.glob("*.bin"))
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(reloaded) is MuppetForMultiTask
    assert reloaded.config.heads == model.config.heads
    saved, loaded = model.state_dict(), reloaded.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[key], loaded[key]) for key in saved)
    realign_(reloaded)
    inputs = batch()
    for head in model.config.heads:
        if head in ("multiple_choice", "seq2seq", "span"):
            continue
        assert torch.equal(model(head=head, **inputs).logits, reloaded(head=head, **inputs).logits)
    assert torch.equal(model(head="span", **inputs).start_logits, reloaded(head="span", **inputs).start_logits)


def test_backbone_export_loads_with_vanilla_transformers(tmp_path):
    model = build("roberta")
    model.save_backbone(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "roberta"
    inputs = batch()
    with torch.no_grad():
        expected = model.backbone(**inputs).last_hidden_state
    torch.save({"inputs": inputs, "expected": expected}, tmp_path.parent / "io.pt")
    script = f"""
import sys, torch
from transformers import AutoModel, AutoModelForSequenceClassification
data = torch.load({str(tmp_path.parent / "io.pt")!r}, weights_only=True)
model = AutoModel.from_pretrained({str(tmp_path)!r}).eval()
for tensor in [*model.parameters(), *model.buffers()]:
    tensor.data = tensor.data.clone()  # aligned storage, as muppet_hf.testing_utils.realign_ does
with torch.no_grad():
    hidden = model(**data["inputs"]).last_hidden_state
assert torch.equal(hidden, data["expected"]), "backbone outputs differ"
AutoModelForSequenceClassification.from_pretrained({str(tmp_path)!r}, num_labels=3)
assert "muppet_hf" not in sys.modules
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


@pytest.mark.parametrize("model_type", ("roberta", "bart"))
def test_from_backbone_keeps_pretrained_weights(model_type, tmp_path):
    from transformers import AutoModelForSeq2SeqLM

    torch.manual_seed(3)
    base = tiny_config(model_type)
    auto = AutoModelForSeq2SeqLM if base.is_encoder_decoder else AutoModel
    plain = auto.from_config(base)
    plain.save_pretrained(tmp_path)
    model = MuppetForMultiTask.from_backbone(tmp_path, heads={"rte": {"type": "classification", "num_labels": 2}})
    reference = plain.state_dict()
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, reference[key]), key
    assert model.config.heads == {"rte": {"type": "classification", "num_labels": 2}}
    assert model.heads["rte"].out_proj.weight.device.type == "cpu"
    out = model(head="rte", **batch(), labels=torch.tensor([0, 1, 0]))
    assert torch.isfinite(out.loss)


def test_add_and_remove_head_round_trip(tmp_path):
    model = build("bert")
    model.add_head("boolq", "classification", label_names=["no", "yes"])
    assert model.config.heads["boolq"] == {"type": "classification", "num_labels": 2, "label_names": ["no", "yes"]}
    model.remove_head("pos")
    model.save_pretrained(tmp_path)
    reloaded = MuppetForMultiTask.from_pretrained(tmp_path)
    assert set(reloaded.heads) == set(model.heads)
    assert torch.equal(reloaded.heads["boolq"].out_proj.weight, model.heads["boolq"].out_proj.weight)
    with pytest.raises(ValueError, match="already exists"):
        model.add_head("boolq", "classification", num_labels=2)
    with pytest.raises(ValueError, match="does not exist"):
        model.remove_head("nope")


@pytest.mark.parametrize(
    ("heads", "match"),
    [
        ({"x": {"type": "ranking"}}, "unknown type 'ranking'"),
        ({"Bad-Name": {"type": "span"}}, "field `name`"),
        ({"x": {"type": "classification"}}, "positive int `num_labels`"),
        ({"x": {"type": "classification", "num_labels": 3, "label_names": ["a", "b"]}}, "num_labels=3 but 2"),
        ({"x": {"type": "span", "num_labels": 2}}, "takes no"),
        ({"seq2seq": {"type": "seq2seq"}}, "encoder-decoder backbone"),
    ],
)
def test_bad_head_specs_raise(heads, match):
    with pytest.raises(ValueError, match=match):
        MuppetConfig(base_model_config=tiny_config("bert"), heads=heads)


def test_unknown_head_at_forward_names_the_heads():
    model = build("bert")
    with pytest.raises(ValueError, match="unknown head 'mnli'"):
        model(head="mnli", **batch())


def test_pooling_auto_reads_a_sentence_transformers_folder(tmp_path):
    AutoModel.from_config(tiny_config("bert")).save_pretrained(tmp_path)
    heads = {"rte": {"type": "classification", "num_labels": 2}}
    # A plain model folder declares nothing: the default (first token) stays.
    assert MuppetForMultiTask.from_backbone(tmp_path, heads=heads, pooling="auto").config.pooling == "first"
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    (tmp_path / "1_Pooling").mkdir()
    pooling = {"word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True}
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    model = MuppetForMultiTask.from_backbone(tmp_path, heads=heads, pooling="auto")
    assert model.config.pooling == "mean"
    # An explicit choice is kept as given.
    assert MuppetForMultiTask.from_backbone(tmp_path, heads=heads, pooling="first").config.pooling == "first"
    with pytest.raises(ValueError, match="`pooling`"):
        MuppetConfig(base_model_config=tiny_config("bert"), pooling="auto")
