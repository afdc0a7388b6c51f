"""A head type is one class and one registration: a toy multi-label head, defined here, pre-finetunes with the rest."""

import math

import datasets
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_trainer import arguments
from torch import nn

from muppet_hf import MuppetConfig, MuppetForMultiTask
from muppet_hf.heads import MuppetHead, MuppetMultiTaskOutput, Target, register_head_type
from muppet_hf.losses import log_n_scale
from muppet_hf.testing_utils import tiny_config
from muppet_hf.trainer import MuppetTrainer


@register_head_type
class MultiLabelHead(MuppetHead):
    """Independent yes/no labels per example (binary cross-entropy), a head type the package does not have."""

    head_type = "toy_multi_label"
    takes_num_labels = True
    target_columns = {"labels": Target(torch.float)}

    def __init__(self, config, spec: dict):
        super().__init__(config, spec)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.out_proj = nn.Linear(config.hidden_size, self.num_labels)

    def predict(self, sequence_output, inputs, pooling):
        return MuppetMultiTaskOutput(logits=self.out_proj(self.dropout(sequence_output[:, 0])))

    def per_example_loss_of(self, outputs, inputs):
        if inputs["labels"] is None:
            return None
        return F.binary_cross_entropy_with_logits(outputs.logits.float(), inputs["labels"], reduction="none").mean(-1)

    def num_outputs_of(self, outputs, inputs):
        # Each label is a yes/no guess: a uniform guess has loss log 2, so n = 2.
        return torch.full(outputs.logits.shape[:1], 2.0, device=outputs.logits.device)

    @classmethod
    def compared_logits(cls, outputs, inputs):
        # R3F compares each label's Bernoulli distribution: softmax over (logit, 0) is (sigmoid, 1 - sigmoid).
        return [(torch.stack([outputs.logits, torch.zeros_like(outputs.logits)], dim=-1), None)]

    @classmethod
    def eval_predictions(cls, outputs, inputs, generate):
        return (outputs.logits > 0).long(), inputs.get("labels")


HEADS = {
    "sent": {"type": "classification", "num_labels": 2},
    "tags": {"type": "toy_multi_label", "num_labels": 3},
}
TASKS = {"sent": "sent", "tags": "tags"}


def toy_data(size: int = 8, seed: int = 0) -> dict[str, datasets.Dataset]:
    rng = np.random.default_rng(seed)
    ids = [rng.integers(5, 99, size=int(n)).tolist() for n in rng.integers(4, 12, size=2 * size)]
    masks = [[1] * len(row) for row in ids]
    return {
        "sent": datasets.Dataset.from_dict(
            {"input_ids": ids[:size], "attention_mask": masks[:size], "labels": rng.integers(0, 2, size).tolist()}
        ),
        "tags": datasets.Dataset.from_dict(
            {
                "input_ids": ids[size:],
                "attention_mask": masks[size:],
                "labels": rng.integers(0, 2, size=(size, 3)).astype(float).tolist(),
            }
        ),
    }


def build() -> MuppetForMultiTask:
    torch.manual_seed(0)
    return MuppetForMultiTask(MuppetConfig(base_model_config=tiny_config("bert"), heads=HEADS, tasks=TASKS))


def test_a_head_type_defined_in_a_test_pre_finetunes_with_the_others(tmp_path):
    model = build()
    before = {name: p.detach().clone() for name, p in model.heads["tags"].named_parameters()}
    # Two tasks of 8 examples in sub-batches of 2: 8 sub-batches, all drawn by 2 heterogeneous updates of 4.
    trainer = MuppetTrainer(
        model, arguments(tmp_path, r3f_lambda=1.0), train_dataset=toy_data(), eval_dataset=toy_data(seed=1)
    )
    trainer.train()
    updates = [set(trainer.tasks_drawn[i : i + 4]) for i in range(0, len(trainer.tasks_drawn), 4)]
    assert set(trainer.tasks_drawn) == {"sent", "tags"} and any(len(update) == 2 for update in updates)
    logged = {key: value for entry in trainer.state.log_history for key, value in entry.items()}
    assert math.isfinite(logged["loss"]) and math.isfinite(logged["loss/tags"]) and logged["r3f/tags"] > 0
    for name, parameter in model.heads["tags"].named_parameters():
        assert not torch.equal(parameter, before[name]), name
    # Evaluation asks the head what to gather; the default metric of the base class scores it.
    metrics = trainer.evaluate()
    assert math.isfinite(metrics["eval_tags_loss"]) and 0 <= metrics["eval_tags_accuracy"] <= 1
    # The config is the whole architecture: the registered type rebuilds from config.json.
    model.save_pretrained(tmp_path / "saved")
    reloaded = MuppetForMultiTask.from_pretrained(tmp_path / "saved")
    assert isinstance(reloaded.heads["tags"], MultiLabelHead)
    assert torch.equal(reloaded.heads["tags"].out_proj.weight, model.heads["tags"].out_proj.weight)


def batch_of(trainer: MuppetTrainer, task: str, dataset: datasets.Dataset) -> dict:
    return trainer.data_collator([{"task": task, "index": i, **dataset[i]} for i in range(4)])


def test_the_toy_heads_num_outputs_drive_the_log_n_scaling(tmp_path):
    model = build().eval()
    trainer = MuppetTrainer(model, arguments(tmp_path), train_dataset=toy_data())
    batch = batch_of(trainer, "tags", toy_data()["tags"])
    assert batch["labels"].dtype == torch.float and batch["labels"].shape == (4, 3)
    outputs = model(**{key: value for key, value in batch.items() if key not in ("task", "example_indices")})
    assert outputs.num_outputs.tolist() == [2.0] * 4
    loss = trainer.compute_loss(model, batch)
    torch.testing.assert_close(loss, (outputs.per_example_loss / math.log(2)).mean())


@pytest.mark.parametrize("task", ["sent", "tags"])
def test_the_scaling_reads_each_heads_num_outputs(tmp_path, monkeypatch, task):
    model = build().eval()
    trainer = MuppetTrainer(model, arguments(tmp_path), train_dataset=toy_data())
    batch = batch_of(trainer, task, toy_data()[task])
    head = type(model.heads[TASKS[task]])
    inputs = {key: value for key, value in batch.items() if key not in ("task", "example_indices")}
    expected = model(**inputs)
    torch.testing.assert_close(
        trainer.compute_loss(model, batch), log_n_scale(expected.per_example_loss, expected.num_outputs).mean()
    )
    # Whatever the head says n is, the trainer divides by log n.
    monkeypatch.setattr(head, "num_outputs_of", lambda self, outputs, inputs: torch.full((4,), 7.0))
    assert model(**inputs).num_outputs.tolist() == [7.0] * 4
    torch.testing.assert_close(trainer.compute_loss(model, batch), (expected.per_example_loss / math.log(7)).mean())
