import datasets
import numpy as np
import pytest
import torch
from scipy import stats

from muppet_hf.collator import MuppetDataCollator
from muppet_hf.sampling import (
    MultiTaskBatchSampler,
    MultiTaskDataset,
    benchmark_sampler,
    example_lengths,
    task_weights,
)


def toy_tasks(sizes: dict[str, int], seed: int = 0) -> dict[str, datasets.Dataset]:
    rng = np.random.default_rng(seed)
    tasks = {}
    for name, size in sizes.items():
        lengths = rng.integers(3, 40, size=size)
        tasks[name] = datasets.Dataset.from_dict(
            {
                "input_ids": [list(range(5, 5 + int(n))) for n in lengths],
                "attention_mask": [[1] * int(n) for n in lengths],
                "labels": rng.integers(0, 2, size=size).tolist(),
            }
        )
    return tasks


def task_stream(sampler: MultiTaskBatchSampler, epoch: int = 0) -> list[str]:
    return [sampler.dataset.task_names[task_id] for task_id, _ in sampler.plan(epoch)]


SIZES = {"big": 160, "mid": 80, "small": 40, "tiny": 20}


def test_sub_batches_are_single_task_and_natural_epoch_sees_every_example_once():
    dataset = MultiTaskDataset(toy_tasks(SIZES))
    sampler = MultiTaskBatchSampler(dataset, sub_batch_size=4)
    seen = []
    for indices in sampler:
        tasks = {dataset.task_of(index) for index in indices}
        assert len(tasks) == 1
        seen.extend(indices)
    assert sorted(seen) == list(range(len(dataset)))
    assert len(sampler) == sum(-(-size // 4) for size in SIZES.values())


@pytest.mark.parametrize(("task_sampling", "temperature"), [("natural", 1.0), ("temperature", 2.0), ("uniform", 1.0)])
def test_task_frequencies_match_the_sampling_weights(task_sampling, temperature):
    # Chi-square of the task counts in the first 60 sub-batches against the weights, over 30 seeds. Drawing inside
    # a planned epoch is without replacement, so the test is conservative: at 5% a few rejections are expected at
    # most; a biased sampler fails on nearly every seed.
    sizes = {"big": 400, "mid": 200, "small": 100, "tiny": 50}
    dataset = MultiTaskDataset(toy_tasks(sizes))
    expected_weights = task_weights(list(sizes.values()), task_sampling, temperature)
    p_values = []
    for seed in range(30):
        sampler = MultiTaskBatchSampler(
            dataset, 2, task_sampling=task_sampling, temperature=temperature, group_by_length=False, seed=seed
        )
        stream = task_stream(sampler)[:60]
        observed = np.array([stream.count(name) for name in sizes])
        p_values.append(stats.chisquare(observed, expected_weights * observed.sum()).pvalue)
    assert sum(p < 0.05 for p in p_values) <= 5, p_values
    # Over a whole epoch the counts follow the weights up to rounding.
    full = task_stream(MultiTaskBatchSampler(dataset, 2, task_sampling=task_sampling, temperature=temperature))
    fractions = np.array([full.count(name) for name in sizes]) / len(full)
    np.testing.assert_allclose(fractions, expected_weights, atol=0.01)


def test_heterogeneous_updates_hold_several_tasks():
    dataset = MultiTaskDataset(toy_tasks(SIZES))
    sampler = MultiTaskBatchSampler(dataset, 4, update_size=4, batching="heterogeneous")
    stream = task_stream(sampler)
    updates = [stream[i : i + 4] for i in range(0, len(stream), 4)]
    assert len(stream) % 4 == 0
    mixed = sum(len(set(update)) > 1 for update in updates)
    assert mixed / len(updates) > 0.6


def test_batch_homogeneous_updates_hold_one_task_each():
    dataset = MultiTaskDataset(toy_tasks(SIZES))
    sampler = MultiTaskBatchSampler(dataset, 4, update_size=3, batching="batch_homogeneous")
    stream = task_stream(sampler)
    assert len(stream) % 3 == 0
    updates = [stream[i : i + 3] for i in range(0, len(stream), 3)]
    assert all(len(set(update)) == 1 for update in updates)
    # The tasks of successive updates are drawn at random, not one task after another.
    firsts = [update[0] for update in updates]
    assert sum(a != b for a, b in zip(firsts, firsts[1:], strict=False)) > len(SIZES)


def test_dataset_homogeneous_goes_through_the_tasks_in_order():
    dataset = MultiTaskDataset(toy_tasks(SIZES))
    sampler = MultiTaskBatchSampler(dataset, 4, update_size=2, batching="dataset_homogeneous")
    stream = task_stream(sampler)
    order = [name for i, name in enumerate(stream) if i == 0 or stream[i - 1] != name]
    assert order == list(SIZES)


def test_plan_is_deterministic_for_a_seed_and_changes_with_epoch_and_seed():
    dataset = MultiTaskDataset(toy_tasks(SIZES))
    first = [batch.tolist() for _, batch in MultiTaskBatchSampler(dataset, 4, seed=3).plan(0)]
    again = [batch.tolist() for _, batch in MultiTaskBatchSampler(dataset, 4, seed=3).plan(0)]
    assert first == again
    assert first != [batch.tolist() for _, batch in MultiTaskBatchSampler(dataset, 4, seed=3).plan(1)]
    assert first != [batch.tolist() for _, batch in MultiTaskBatchSampler(dataset, 4, seed=4).plan(0)]


def test_length_grouping_reduces_padding():
    dataset = MultiTaskDataset(toy_tasks(SIZES))

    def padded_tokens(group_by_length: bool) -> int:
        sampler = MultiTaskBatchSampler(dataset, 8, group_by_length=group_by_length)
        total = 0
        for task_id, batch in sampler.plan(0):
            lengths = sampler_lengths[task_id][batch]
            total += int(lengths.max()) * len(batch)
        return total

    sampler_lengths = [example_lengths(d) for d in dataset.datasets]
    assert padded_tokens(True) < 0.8 * padded_tokens(False)


def test_caps_upsampling_and_padding_to_whole_updates():
    dataset = MultiTaskDataset(toy_tasks({"a": 100, "b": 10}))
    capped = MultiTaskBatchSampler(dataset, 5, max_examples_per_task={"a": 20})
    assert capped.sub_batches_per_task.tolist() == [4, 2]
    uniform = MultiTaskBatchSampler(dataset, 5, task_sampling="uniform", update_size=4)
    counts = uniform.sub_batches_per_task
    assert counts.sum() % 4 == 0 and abs(int(counts[0]) - int(counts[1])) <= 2
    # Task b (10 examples) is up-sampled: every sub-batch is full and drawn from its own examples.
    b_batches = [batch for task_id, batch in uniform.plan(0) if task_id == 1]
    assert all(len(batch) == 5 and batch.max() < 10 for batch in b_batches)


def test_state_dict_round_trip_and_mismatch_names_the_field():
    dataset = MultiTaskDataset(toy_tasks(SIZES))
    sampler = MultiTaskBatchSampler(dataset, 4, seed=1)
    sampler.set_epoch(3)
    state = sampler.state_dict()
    restored = MultiTaskBatchSampler(dataset, 4, seed=1)
    restored.load_state_dict(state)
    assert restored.epoch == 3
    with pytest.raises(ValueError, match="`seed`"):
        MultiTaskBatchSampler(dataset, 4, seed=2).load_state_dict(state, source="ckpt/muppet_trainer_state.json")
    other = MultiTaskDataset(toy_tasks({**SIZES, "tiny": 21}))
    with pytest.raises(ValueError, match="task_sizes"):
        MultiTaskBatchSampler(other, 4, seed=1).load_state_dict(state)


def test_multiple_choice_lengths_and_collator_pads_choices():
    mc = datasets.Dataset.from_dict(
        {
            "input_ids": [[[2, 5, 3], [2, 6, 7, 3]], [[2, 5, 3], [2, 8, 3], [2, 9, 9, 9, 9, 3]]],
            "attention_mask": [[[1, 1, 1], [1, 1, 1, 1]], [[1, 1, 1], [1, 1, 1], [1] * 6]],
            "labels": [1, 2],
        }
    )
    assert example_lengths(mc).tolist() == [8, 18]
    dataset = MultiTaskDataset({"choice": mc})
    collator = MuppetDataCollator({"choice": "multiple_choice"}, {"multiple_choice": "multiple_choice"})
    batch = collator(dataset.__getitems__([0, 1]))
    assert batch["input_ids"].shape == (2, 3, 6)
    assert batch["choice_mask"].tolist() == [[True, True, False], [True, True, True]]
    assert batch["head"] == "multiple_choice" and batch["task"] == "choice"
    assert batch["example_indices"].tolist() == [0, 1]


def test_collator_label_padding_per_head_type_and_rejects_mixed_tasks():
    collator = MuppetDataCollator(
        {"pos": "pos", "sts": "sts", "qa": "span"},
        {"pos": "token_classification", "sts": "regression", "span": "span"},
    )
    tagged = collator(
        [
            {"task": "pos", "input_ids": [2, 5, 3], "attention_mask": [1, 1, 1], "labels": [-100, 1, -100]},
            {"task": "pos", "input_ids": [2, 5, 6, 3], "attention_mask": [1] * 4, "labels": [-100, 2, 0, -100]},
        ]
    )
    assert tagged["labels"].tolist() == [[-100, 1, -100, -100], [-100, 2, 0, -100]]
    assert tagged["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    regression = collator([{"task": "sts", "input_ids": [2, 3], "labels": 2.5}])
    assert regression["labels"].dtype == torch.float
    span = collator(
        [{"task": "qa", "input_ids": [2, 3], "start_positions": 1, "end_positions": 1, "offset_mapping": [None]}]
    )
    assert "offset_mapping" not in span and span["start_positions"].tolist() == [1]
    with pytest.raises(ValueError, match="single task"):
        collator([{"task": "pos", "input_ids": [2]}, {"task": "sts", "input_ids": [2]}])
    with pytest.raises(ValueError, match="'nope'"):
        collator([{"task": "nope", "input_ids": [2]}])


def test_benchmark_sampler_reports_costs():
    result = benchmark_sampler(num_tasks=5, examples_per_task=16, steps=5)
    assert result["num_tasks"] == 5 and result["per_sub_batch_s"] > 0
    assert result["sub_batches_per_epoch"] % 8 == 0


def mrc_windows(examples: int, windows: int, seed: int = 0) -> datasets.Dataset:
    """Span-MRC-like rows: `windows` rows per source example, sharing its `example_id` as prepare_task writes it."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(20, 40, size=examples * windows)
    return datasets.Dataset.from_dict(
        {
            "input_ids": [list(range(5, 5 + int(n))) for n in lengths],
            "attention_mask": [[1] * int(n) for n in lengths],
            "start_positions": [0] * len(lengths),
            "end_positions": [0] * len(lengths),
            "example_id": [f"q{example}" for example in range(examples) for _ in range(windows)],
        }
    )


def test_natural_sampling_by_examples_gives_each_mrc_task_its_example_share():
    tasks = {
        "cls": toy_tasks({"cls": 120})["cls"],
        "mrc_long": mrc_windows(examples=40, windows=4),
        "mrc_short": mrc_windows(examples=40, windows=1, seed=1),
    }
    dataset = MultiTaskDataset(tasks)
    examples = {"cls": 120, "mrc_long": 40, "mrc_short": 40}
    by_examples = MultiTaskBatchSampler(dataset, 4, update_size=2, seed=5)
    shares = by_examples.task_shares(len(by_examples))
    for name, count in examples.items():
        assert shares[name]["sub_batches"] == pytest.approx(count / 200, abs=0.02), name
        assert shares[name]["examples"] == pytest.approx(count / 200, abs=0.02), name
    # Counting windows instead would give the 4-window task 160 of 320 rows: half of the draws.
    by_windows = MultiTaskBatchSampler(dataset, 4, update_size=2, task_size="windows", seed=5)
    assert by_windows.task_shares(len(by_windows))["mrc_long"]["sub_batches"] == pytest.approx(0.5, abs=0.02)
    # One window of each source example per epoch; over 4 epochs each example's 4 windows, each once.
    groups = np.asarray(tasks["mrc_long"]["example_id"])
    seen = []
    for epoch in range(4):
        rows = np.concatenate([local for task_id, local in by_examples.plan(epoch) if task_id == 1])
        assert sorted(groups[rows].tolist()) == sorted(set(groups.tolist()))
        seen.extend(rows.tolist())
    assert sorted(seen) == list(range(len(groups)))


def test_token_budget_keeps_multiple_choice_sub_batches_under_the_cap():
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 40, size=(60, 5))
    choice = datasets.Dataset.from_dict(
        {
            "input_ids": [[list(range(5, 5 + int(n))) for n in row] for row in lengths],
            "attention_mask": [[[1] * int(n) for n in row] for row in lengths],
            "labels": rng.integers(0, 5, size=60).tolist(),
        }
    )
    tasks = {"choice": choice, "sent": toy_tasks({"sent": 60})["sent"]}
    dataset = MultiTaskDataset(tasks)
    cap = 16 * 40
    sampler = MultiTaskBatchSampler(dataset, 16, max_tokens_per_sub_batch=cap, seed=1)
    # Questions of 5 choices of 10-39 tokens: 3 to 12 of them fit in 640 tokens; 16 sentences of < 40 tokens fit.
    collator = MuppetDataCollator(
        {"choice": "multiple_choice", "sent": "sent"}, {"multiple_choice": "multiple_choice", "sent": "classification"}
    )
    sizes = {"choice": set(), "sent": set()}
    for indices in sampler:
        batch = collator(dataset.__getitems__(indices))
        assert batch["input_ids"].numel() <= cap, batch["task"]
        sizes[batch["task"]].add(batch["input_ids"].shape[0])
    assert sizes["sent"] == {16, 60 - 3 * 16}
    assert min(sizes["choice"]) >= 3 and max(sizes["choice"]) < 16
    # The budget changes what a sub-batch holds, not how often its task is drawn.
    unbudgeted = MultiTaskBatchSampler(dataset, 16, seed=1)
    assert sampler.sub_batches_per_task.tolist() == unbudgeted.sub_batches_per_task.tolist()
    with pytest.raises(ValueError, match="max_tokens_per_sub_batch"):
        MultiTaskBatchSampler(dataset, 16, max_tokens_per_sub_batch=0)
    with pytest.raises(ValueError, match="task_size"):
        MultiTaskBatchSampler(dataset, 16, task_size="rows")
