import json
import logging
import os
import sys

import datasets
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint

from muppet_hf import MuppetConfig, MuppetForMultiTask
from muppet_hf.callbacks import NonFiniteLossError
from muppet_hf.checkpointing import (
    MUPPET_STATE_NAME,
    OPTIMIZER_FILE,
    SCHEDULER_FILE,
    TRAINING_ARGS_FILE,
    load_optimizer_state,
    save_optimizer_state,
)
from muppet_hf.hub.export import PICKLE_SUFFIXES
from muppet_hf.metrics import compute_task_metrics
from muppet_hf.testing_utils import tiny_config
from muppet_hf.trainer import MuppetTrainer
from muppet_hf.training_args import MuppetTrainingArguments


HEADS = {
    "sent": {"type": "classification", "num_labels": 2},
    "sts": {"type": "regression"},
    "multiple_choice": {"type": "multiple_choice"},
    "span": {"type": "span"},
    "pos": {"type": "token_classification", "num_labels": 3},
}
TASKS = {"sent": "sent", "sts": "sts", "choice": "multiple_choice", "qa": "span", "pos": "pos"}


def toy_task(head_type: str, size: int, seed: int = 0) -> datasets.Dataset:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, 12, size=size).tolist()
    ids = [rng.integers(5, 99, size=n).tolist() for n in lengths]
    masks = [[1] * n for n in lengths]
    if head_type == "multiple_choice":
        choices = [int(c) for c in rng.integers(2, 5, size=size)]
        return datasets.Dataset.from_dict(
            {
                "input_ids": [[row] * c for row, c in zip(ids, choices, strict=True)],
                "attention_mask": [[row] * c for row, c in zip(masks, choices, strict=True)],
                "labels": [int(rng.integers(0, c)) for c in choices],
            }
        )
    columns = {"input_ids": ids, "attention_mask": masks}
    if head_type == "classification":
        columns["labels"] = rng.integers(0, 2, size=size).tolist()
    elif head_type == "regression":
        columns["labels"] = rng.uniform(0, 5, size=size).tolist()
    elif head_type == "span":
        columns["start_positions"] = [1] * size
        columns["end_positions"] = [int(rng.integers(1, n)) for n in lengths]
    else:
        columns["labels"] = [rng.integers(0, 3, size=n).tolist() for n in lengths]
    return datasets.Dataset.from_dict(columns)


def build(tasks: dict[str, str] | None = None, **config_kwargs) -> MuppetForMultiTask:
    torch.manual_seed(0)
    tasks = tasks or TASKS
    heads = {head: HEADS[head] for head in set(tasks.values())}
    return MuppetForMultiTask(
        MuppetConfig(base_model_config=tiny_config("bert"), heads=heads, tasks=tasks, **config_kwargs)
    )


def train_data(sizes: dict[str, int] | None = None) -> dict[str, datasets.Dataset]:
    sizes = sizes or dict.fromkeys(TASKS, 8)
    return {task: toy_task(HEADS[TASKS[task]]["type"], size, seed=i) for i, (task, size) in enumerate(sizes.items())}


def arguments(tmp_path, **overrides) -> MuppetTrainingArguments:
    defaults = {
        "output_dir": str(tmp_path / "out"),
        "per_device_train_batch_size": 2,
        "per_device_eval_batch_size": 4,
        "tasks_per_update": 4,
        "max_steps": 2,
        "learning_rate": 1e-2,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "seed": 0,
        "disable_tqdm": True,
    }
    return MuppetTrainingArguments(**{**defaults, **overrides})


def test_two_steps_change_every_trained_parameter_and_log_each_task(tmp_path):
    model = build()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    # Five tasks of 8 examples, sub-batches of 2: 20 sub-batches in the epoch; 2 updates of 10 sub-batches draw
    # every task for certain.
    trainer = MuppetTrainer(model, arguments(tmp_path, tasks_per_update=10), train_dataset=train_data())
    trainer.train()
    assert set(trainer.tasks_drawn) == set(TASKS)
    # The pooler is the backbone's own head; Muppet's heads read the hidden states, so it never gets a gradient.
    unchanged = [
        name
        for name, p in model.named_parameters()
        if p.requires_grad and torch.equal(p, before[name]) and not name.startswith("backbone.pooler.")
    ]
    assert unchanged == []
    logged = {key for entry in trainer.state.log_history for key in entry}
    for task in TASKS:
        assert f"loss/{task}" in logged and f"examples_seen/{task}" in logged
    assert trainer.state.log_history[-1]["examples_seen/sent"] == 8


@pytest.mark.parametrize("r3f_dropout", ["shared", "independent"])
def test_r3f_term_with_dropout_on_zero_at_zero_eps_only_with_shared_masks(tmp_path, r3f_dropout):
    model = build({"sent": "sent", "choice": "multiple_choice", "qa": "span", "pos": "pos"})
    data = {task: toy_task(HEADS[TASKS[task]]["type"], 4) for task in ("sent", "choice", "qa", "pos")}
    for eps, positive in ((0.0, r3f_dropout == "independent"), (1e-2, True)):
        args = arguments(tmp_path, r3f_lambda=1.0, r3f_eps=eps, r3f_dropout=r3f_dropout)
        trainer = MuppetTrainer(model, args, train_dataset=data)
        model.train()  # dropout on: shared masks leave only the noise, independent ones differ without it
        for task, dataset in data.items():
            batch = trainer.data_collator([{"task": task, "index": i, **dataset[i]} for i in range(len(dataset))])
            loss = trainer.compute_loss(model, batch)
            model.zero_grad()
            loss.backward()
            assert model.get_input_embeddings().weight.grad.abs().sum() > 0
            trainer._read_update_losses()  # what the trainer does once per update
            divergence = trainer._metrics["train"][f"r3f/{task}"][-1]
            assert (divergence > 0) is positive, (task, eps, divergence)
            if not positive:
                assert divergence == 0.0


# Reads of a tensor's value on the host; on a GPU each waits for all queued work.
HOST_READS = ("item", "tolist", "__bool__", "__float__", "__int__", "cpu", "numpy")


def count_host_reads(monkeypatch) -> list[str]:
    """Patches the host reads of `torch.Tensor` to record each call made by the trainers (not torch, not the model).

    Left out: torch's own reads (AdamW reads its step counters, which stay on the CPU when training on a GPU) and
    the backbone's: transformers reads each forward's padding mask (`padding_mask.all()` in `masking_utils`, to skip
    an all-ones mask), one read per forward that belongs to the model, not to the training loop.
    """
    torch_dir = os.path.dirname(torch.__file__)
    reads = []

    def counting(name, original):
        def read(self, *args, **kwargs):
            caller = sys._getframe(1).f_code
            if not caller.co_filename.startswith(torch_dir) and not caller.co_filename.endswith("masking_utils.py"):
                reads.append(f"{name} in {caller.co_name}")
            return original(self, *args, **kwargs)

        return read

    for name in HOST_READS:
        monkeypatch.setattr(torch.Tensor, name, counting(name, getattr(torch.Tensor, name)))
    return reads


@pytest.mark.parametrize("r3f_lambda", [0.0, 1.0])
def test_host_reads_per_update_do_not_grow_with_tasks_per_update(tmp_path, monkeypatch, r3f_lambda):
    data = {"sent": toy_task("classification", 32), "pos": toy_task("token_classification", 32, seed=1)}
    counts = {}
    for tasks_per_update in (2, 8):
        model = build({"sent": "sent", "pos": "pos"})
        args = arguments(
            tmp_path / str(tasks_per_update),
            tasks_per_update=tasks_per_update,
            max_steps=3,
            r3f_lambda=r3f_lambda,
            logging_strategy="no",
        )
        trainer = MuppetTrainer(model, args, train_dataset=data)
        with monkeypatch.context() as patch:
            reads = count_host_reads(patch)
            trainer.train()
        counts[tasks_per_update] = reads
        assert not [read for read in reads if "training_step" in read or "compute_loss" in read], reads
    # Per update, one read of all its sub-batches' losses and one of the skip flag; one more when training ends.
    assert len(counts[2]) == len(counts[8]) <= 2 * 3 + 1, counts


def test_batch_homogeneous_through_the_trainer(tmp_path):
    trainer = MuppetTrainer(
        build(), arguments(tmp_path, batching="batch_homogeneous", tasks_per_update=2, max_steps=6), train_data()
    )
    trainer.train()
    updates = [trainer.tasks_drawn[i : i + 2] for i in range(0, len(trainer.tasks_drawn), 2)]
    assert all(len(set(update)) == 1 for update in updates)
    assert len({update[0] for update in updates}) > 1


def final_weights(trainer: MuppetTrainer) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in trainer.model.named_parameters()}


class KillAt(TrainerCallback):
    """Simulates a crash: raises at the end of the given step, after any checkpoint of an earlier step."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def test_resume_after_a_checkpoint_ends_with_the_uninterrupted_weights(tmp_path):
    settings = {"max_steps": 6, "save_strategy": "steps", "save_steps": 3, "tasks_per_update": 2, "r3f_lambda": 1.0}
    reference = MuppetTrainer(build(), arguments(tmp_path / "a", **settings), train_data())
    reference.train()

    killed = MuppetTrainer(build(), arguments(tmp_path / "b", **settings), train_data(), callbacks=[KillAt(4)])
    with pytest.raises(KeyboardInterrupt):
        killed.train()
    output_dir = tmp_path / "b" / "out"
    assert get_last_checkpoint(str(output_dir)).endswith("checkpoint-3")
    resumed = MuppetTrainer(build(), arguments(tmp_path / "b", **settings), train_data())
    torch.manual_seed(1234)  # whatever the process did before, the checkpoint's RNG state takes over
    resumed.train(resume_from_checkpoint=True)

    assert resumed.tasks_drawn == reference.tasks_drawn[len(reference.tasks_drawn) - len(resumed.tasks_drawn) :]
    expected, actual = final_weights(reference), final_weights(resumed)
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=0, msg=name)


def test_resume_refuses_a_changed_task_mixture(tmp_path):
    settings = {"max_steps": 3, "save_strategy": "steps", "save_steps": 3, "tasks_per_update": 2}
    MuppetTrainer(build(), arguments(tmp_path, **settings), train_data()).train()
    changed = train_data({**dict.fromkeys(TASKS, 8), "sent": 10})
    trainer = MuppetTrainer(build(), arguments(tmp_path, **{**settings, "max_steps": 6}), changed)
    with pytest.raises(ValueError, match="task_sizes"):
        trainer.train(resume_from_checkpoint=True)


def test_checkpoints_are_safetensors_written_through_a_staging_folder(tmp_path):
    args = arguments(tmp_path, max_steps=2, save_strategy="steps", save_steps=1, save_total_limit=1)
    stale = os.path.join(args.output_dir, "tmp-checkpoint-9")
    os.makedirs(stale)  # what a save killed midway leaves behind
    trainer = MuppetTrainer(build(), args, train_data())
    trainer.train()
    # The stale staging folder is removed at the next save.
    assert sorted(os.listdir(args.output_dir)) == ["checkpoint-2"]
    assert get_last_checkpoint(args.output_dir).endswith("checkpoint-2")
    checkpoint = os.path.join(args.output_dir, "checkpoint-2")
    files = set(os.listdir(checkpoint))
    assert {"model.safetensors", MUPPET_STATE_NAME, "trainer_state.json"} <= files
    # The Trainer's optimizer, scheduler, RNG and arguments pickles are replaced by safetensors and JSON.
    assert {OPTIMIZER_FILE, SCHEDULER_FILE, "rng_state.safetensors", TRAINING_ARGS_FILE} <= files
    assert not [name for name in files if name.endswith(PICKLE_SUFFIXES)]
    assert load_file(os.path.join(checkpoint, "model.safetensors"))
    assert json.loads(open(os.path.join(checkpoint, TRAINING_ARGS_FILE)).read())["max_steps"] == 2


def test_optimizer_state_round_trips_through_safetensors(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.8, 0.95))
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    save_optimizer_state(optimizer.state_dict(), tmp_path / OPTIMIZER_FILE)

    restored = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), lr=5.0)
    restored.load_state_dict(load_optimizer_state(tmp_path / OPTIMIZER_FILE))
    expected, actual = optimizer.state_dict(), restored.state_dict()
    assert actual["param_groups"] == expected["param_groups"]
    assert actual["param_groups"][0]["betas"] == (0.8, 0.95)
    for param, entries in expected["state"].items():
        for key, value in entries.items():
            torch.testing.assert_close(actual["state"][param][key], value, rtol=0, atol=0)


def test_resume_refuses_a_pickled_optimizer_state(tmp_path):
    settings = {"max_steps": 2, "save_strategy": "steps", "save_steps": 2, "tasks_per_update": 2}
    MuppetTrainer(build(), arguments(tmp_path, **settings), train_data()).train()
    checkpoint = get_last_checkpoint(os.path.join(tmp_path, "out"))
    os.remove(os.path.join(checkpoint, OPTIMIZER_FILE))
    with open(os.path.join(checkpoint, "optimizer.pt"), "wb") as handle:
        handle.write(b"not loaded")  # what a plain Trainer leaves there
    trainer = MuppetTrainer(build(), arguments(tmp_path, **{**settings, "max_steps": 4}), train_data())
    with pytest.raises(ValueError, match=r"checkpoint-2: the optimizer state is pickled \(optimizer.pt\)"):
        trainer.train(resume_from_checkpoint=True)


def nan_task(size: int) -> datasets.Dataset:
    data = toy_task("regression", size).to_dict()
    data["labels"] = [float("nan")] * size
    return datasets.Dataset.from_dict(data)


def test_nan_in_one_task_skips_the_update_names_the_task_and_training_goes_on(tmp_path, caplog):
    data = {"sent": toy_task("classification", 24), "sts": nan_task(2)}
    model = build({"sent": "sent", "sts": "sts"})
    args = arguments(tmp_path, tasks_per_update=2, max_steps=7, max_nonfinite_updates=2)
    trainer = MuppetTrainer(model, args, data)
    weights = []

    class Snapshot(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            weights.append(model.heads["sent"].out_proj.weight.detach().clone())

    trainer.add_callback(Snapshot())
    with caplog.at_level(logging.WARNING, logger="muppet_hf.trainer"):
        trainer.train()
    assert trainer.state.global_step == 7
    bad_updates = [i for i in range(7) if "sts" in trainer.tasks_drawn[2 * i : 2 * i + 2]]
    assert bad_updates, trainer.tasks_drawn
    assert "non-finite loss (nan) in task 'sts'" in caplog.text
    assert "update skipped" in caplog.text or "skipped" in caplog.text
    for step in bad_updates:
        previous = weights[step - 1] if step else None
        if previous is not None:
            assert torch.equal(weights[step], previous)
    assert all(torch.isfinite(w).all() for w in weights)
    assert any("skipped_updates" in entry for entry in trainer.state.log_history)


def test_repeated_nan_saves_a_checkpoint_then_stops_with_a_clear_error(tmp_path):
    model = build({"sts": "sts"})
    args = arguments(tmp_path, tasks_per_update=1, max_steps=10, max_nonfinite_updates=3)
    trainer = MuppetTrainer(model, args, {"sts": nan_task(8)})
    with pytest.raises(NonFiniteLossError, match="'sts'"):
        trainer.train()
    checkpoint = get_last_checkpoint(args.output_dir)
    assert checkpoint is not None and checkpoint.endswith("checkpoint-3")
    saved = load_file(os.path.join(checkpoint, "model.safetensors"))
    assert all(torch.isfinite(tensor).all() for tensor in saved.values())


def test_evaluate_reports_per_task_metrics(tmp_path):
    model = build()
    eval_data = {task: toy_task(HEADS[TASKS[task]]["type"], 6, seed=9) for task in TASKS}
    trainer = MuppetTrainer(
        model,
        arguments(tmp_path),
        train_dataset=train_data(),
        eval_dataset=eval_data,
        task_metrics={"sent": ["accuracy", "f1", "mcc"]},
    )
    metrics = trainer.evaluate()
    for task in TASKS:
        assert np.isfinite(metrics[f"eval_{task}_loss"])
    assert {"eval_sent_accuracy", "eval_sent_f1", "eval_sent_mcc"} <= set(metrics)
    assert {"eval_sts_pearson", "eval_sts_spearman", "eval_choice_accuracy", "eval_pos_accuracy"} <= set(metrics)
    assert "eval_qa_accuracy" not in metrics


def test_compute_task_metrics_ignores_padding():
    predictions = np.array([[1, 0, 2], [0, 0, 0]])
    labels = np.array([[1, 1, -100], [0, -100, -100]])
    assert compute_task_metrics(predictions, labels, ["accuracy"]) == {"accuracy": 2 / 3}


def test_arguments_validate_their_fields(tmp_path):
    with pytest.raises(ValueError, match="tasks_per_update"):
        arguments(tmp_path, tasks_per_update=4, gradient_accumulation_steps=2)
    assert arguments(tmp_path, tasks_per_update=3).gradient_accumulation_steps == 3
    with pytest.raises(ValueError, match="remove_unused_columns"):
        arguments(tmp_path, remove_unused_columns=True)
    with pytest.raises(ValueError, match="r3f_lambda"):
        arguments(tmp_path, r4f=True)
    with pytest.raises(ValueError, match="batching"):
        arguments(tmp_path, batching="mixed")
    with pytest.raises(ValueError, match="spectral"):
        MuppetTrainer(build(), arguments(tmp_path, r4f=True, r3f_lambda=1.0), train_data())
    with pytest.raises(ValueError, match="'extra'"):
        MuppetTrainer(build(), arguments(tmp_path), {**train_data(), "extra": toy_task("classification", 4)})


def test_head_warmup_freezes_the_backbone_then_trains_it(tmp_path):
    model = build({"sent": "sent"})
    data = {"sent": toy_task("classification", 16)}
    initial = {name: p.detach().clone() for name, p in model.named_parameters()}
    args = arguments(tmp_path, tasks_per_update=1, max_steps=2, head_warmup_steps=2)
    MuppetTrainer(model, args, train_dataset=data).train()
    after_warmup = {name: p.detach().clone() for name, p in model.named_parameters()}
    for name in initial:
        frozen = torch.equal(after_warmup[name], initial[name])
        assert frozen == name.startswith("backbone."), name
    # Two updates past the warm-up, the backbone trains too.
    model = build({"sent": "sent"})
    MuppetTrainer(model, arguments(tmp_path, tasks_per_update=1, max_steps=4, head_warmup_steps=2), data).train()
    backbone = [name for name, _ in model.backbone.named_parameters(prefix="backbone") if ".encoder." in name]
    parameters = dict(model.named_parameters())
    assert backbone and all(not torch.equal(parameters[name], initial[name]) for name in backbone)
    assert all(p.requires_grad for p in model.backbone.parameters())


def test_backbone_learning_rate_gets_its_own_parameter_groups(tmp_path):
    model = build({"sent": "sent"})
    args = arguments(tmp_path, learning_rate=1e-3, backbone_learning_rate=1e-5, lr_scheduler_type="constant")
    trainer = MuppetTrainer(model, args, train_dataset={"sent": toy_task("classification", 8)})
    trainer.create_optimizer_and_scheduler(num_training_steps=2)
    backbone = {id(p) for p in model.backbone.parameters()}
    rates = {}
    for group in trainer.optimizer.param_groups:
        kinds = {id(p) in backbone for p in group["params"]}
        assert len(kinds) == 1
        rates.setdefault(kinds.pop(), set()).add(group["lr"])
    assert rates == {True: {1e-5}, False: {1e-3}}
    assert sum(len(group["params"]) for group in trainer.optimizer.param_groups) == len(list(model.parameters()))
    for field_name, value in (("head_warmup_steps", -1), ("backbone_learning_rate", -1.0)):
        with pytest.raises(ValueError, match=field_name):
            arguments(tmp_path, **{field_name: value})
    with pytest.raises(ValueError, match="max_tokens_per_sub_batch"):
        arguments(tmp_path, max_tokens_per_sub_batch=0)
