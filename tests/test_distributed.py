"""Distributed paths that can be checked on CPU: sharding of the sub-batch stream across processes, uneven tasks per
rank (gloo, two processes), and FSDP2 with different heads on different ranks.

accelerate 1.x drops an FSDP config on CPU (`use_cpu` makes the run MULTI_CPU, which it wraps in DDP), so the FSDP2
test shards `MuppetForMultiTask` with `torch.distributed.fsdp.fully_shard` itself, as accelerate does on GPUs.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
from accelerate.data_loader import BatchSamplerShard

from muppet_hf.sampling import MultiTaskBatchSampler, MultiTaskDataset


REPO = Path(__file__).resolve().parent.parent
# "small" has 3 sub-batches of 2 per epoch, an odd number, so it ends its epoch on one rank while the other rank
# is still drawing another task.
SIZES = {"big": 14, "mid": 8, "small": 6}


def toy(size: int, seed: int) -> datasets.Dataset:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, 12, size=size)
    return datasets.Dataset.from_dict(
        {
            "input_ids": [[2, *rng.integers(5, 90, size=int(n) - 2).tolist(), 3] for n in lengths],
            "attention_mask": [[1] * int(n) for n in lengths],
            "labels": rng.integers(0, 2, size=size).tolist(),
        }
    )


@pytest.mark.parametrize("batching", ["heterogeneous", "batch_homogeneous", "dataset_homogeneous"])
@pytest.mark.parametrize("task_sampling", ["natural", "uniform"])
def test_every_process_gets_as_many_sub_batches_and_none_is_lost(batching, task_sampling):
    # accelerate hands sub-batch i to process i % 2 (BatchSamplerShard); an uneven count would leave one process
    # waiting in a collective for a step its peer never takes.
    dataset = MultiTaskDataset({name: toy(size, i) for i, (name, size) in enumerate(SIZES.items())})
    sampler = MultiTaskBatchSampler(dataset, 2, update_size=3 * 2, batching=batching, task_sampling=task_sampling)
    stream = [tuple(batch) for batch in sampler]
    shards = [
        [tuple(batch) for batch in BatchSamplerShard(sampler, num_processes=2, process_index=rank)] for rank in (0, 1)
    ]
    assert len(shards[0]) == len(shards[1]) == len(stream) // 2
    assert sorted(shards[0] + shards[1]) == sorted(stream)
    # Whole updates: every process accumulates the same number of sub-batches in each of them.
    assert len(shards[0]) % 3 == 0


SCRIPT = """
import json, sys
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, {tests!r})
from test_distributed import SIZES, toy
from muppet_hf import MuppetConfig, MuppetForMultiTask, MuppetTrainer, MuppetTrainingArguments
from muppet_hf.distributed import end_process
from muppet_hf.testing_utils import tiny_config

torch.manual_seed(0)
heads = {{name: {{"type": "classification", "num_labels": 2}} for name in SIZES}}
config = MuppetConfig(base_model_config=tiny_config("bert"), heads=heads, tasks={{name: name for name in SIZES}})
args = MuppetTrainingArguments(
    output_dir=sys.argv[1], per_device_train_batch_size=2, tasks_per_update=2, max_steps=8,
    batching="dataset_homogeneous", learning_rate=1e-2, logging_steps=1, save_strategy="no", report_to="none",
    use_cpu=True, seed=0, disable_tqdm=True,
)
train = {{name: toy(size, i) for i, (name, size) in enumerate(SIZES.items())}}
trainer = MuppetTrainer(MuppetForMultiTask(config), args, train_dataset=train)
trainer.train()
# One file per rank: two processes printing to one pipe can interleave their lines.
result = {{"rank": args.process_index, "step": trainer.state.global_step, "epoch": trainer.state.epoch,
    "tasks": trainer.tasks_drawn}}
Path(sys.argv[1]).mkdir(parents=True, exist_ok=True)
Path(sys.argv[1], f"result-{{args.process_index}}.json").write_text(json.dumps(result))
end_process()  # as the training scripts end: the interpreter's shutdown aborted a finished rank under load in CI
"""


@pytest.mark.multiprocess
def test_a_rank_whose_task_ends_its_epoch_first_does_not_deadlock(tmp_path):
    # Tasks one after another (dataset_homogeneous) over 2 epochs: at each task boundary one process finishes a task
    # while the other draws the next one, and "small" ends its epoch on one process first. Both must reach the last
    # update; a deadlock would hit the timeout.
    script = tmp_path / "uneven.py"
    script.write_text(SCRIPT.format(tests=str(REPO / "tests")))
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29541",
        str(script), str(tmp_path / "run"),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    ranks = {row["rank"]: row for row in (json.loads(p.read_text()) for p in (tmp_path / "run").glob("result-*.json"))}
    assert set(ranks) == {0, 1}, log[-4000:]
    assert ranks[0]["step"] == ranks[1]["step"] == 8 and ranks[0]["epoch"] == 2.0
    # In some sub-batch step one process was on "small" while the other was on another task.
    drawn = list(zip(ranks[0]["tasks"], ranks[1]["tasks"], strict=True))
    assert any("small" in pair and len(set(pair)) == 2 for pair in drawn), drawn


FSDP_SCRIPT = """
import sys
import torch, torch.distributed as dist
from torch.distributed.fsdp import fully_shard
from muppet_hf import MuppetConfig, MuppetForMultiTask
from muppet_hf.distributed import end_process, idle_heads_term
from muppet_hf.testing_utils import tiny_config

dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)
heads = {"two": {"type": "classification", "num_labels": 2}, "three": {"type": "classification", "num_labels": 3},
         "span": {"type": "span"}}
model = MuppetForMultiTask(MuppetConfig(base_model_config=tiny_config("bert"), heads=heads))
before = {name: p.detach().clone() for name, p in model.named_parameters()}
# As accelerate's TRANSFORMER_BASED_WRAP does: one unit per transformer layer, the rest (heads) in the root's.
for layer in model.backbone.encoder.layer:
    fully_shard(layer)
fully_shard(model)
optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
generator = torch.Generator().manual_seed(rank)
for step in range(3):
    head = ["two", "three"][(rank + step) % 2]  # the two ranks always run different heads
    input_ids = torch.randint(5, 90, (4, 10), generator=generator)
    labels = torch.randint(0, 2, (4,), generator=generator)
    loss = model(head=head, input_ids=input_ids, labels=labels).loss
    (loss + idle_heads_term(model, head)).backward()
    optimizer.step()
    optimizer.zero_grad()
after = {name: p.full_tensor() for name, p in model.named_parameters()}
changed = sorted(name for name in after if not torch.equal(after[name], before[name]))
if rank == 0:
    print("CHANGED", ",".join(changed), flush=True)
end_process()  # as the training scripts end: the interpreter's shutdown aborted a rank under load in CI
"""


@pytest.mark.multiprocess
def test_fsdp2_with_different_heads_on_each_rank_trains_every_used_head(tmp_path):
    # Without `idle_heads_term` this run aborts: the ranks reduce-scatter root-group buffers of different sizes.
    script = tmp_path / "fsdp2.py"
    script.write_text(FSDP_SCRIPT)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29543"]
    result = subprocess.run([*command, str(script)], cwd=REPO, capture_output=True, text=True, timeout=240)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    changed = set(re.search(r"CHANGED (.*)", log).group(1).split(","))
    assert any(name.startswith("heads.two.") for name in changed)
    assert any(name.startswith("heads.three.") for name in changed)
    assert any(name.startswith("backbone.encoder.layer.0.") for name in changed)
    # The span head ran nowhere: its zero gradient leaves it untouched.
    assert not any(name.startswith("heads.span.") for name in changed)
