import ast
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from muppet_hf import MuppetForMultiTask
from muppet_hf.data import offline_cache_dir
from muppet_hf.data.offline import build as build_module
from muppet_hf.data.offline.archives import SourceUnavailableError
from muppet_hf.data.offline.build import task_dir
from muppet_hf.hub import check_model_card, read_run_metadata


REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "training" / "prefinetune.py"
RECIPE = REPO / "training" / "recipes" / "tiny.yaml"


def load_script():
    return importlib.import_module("muppet_hf.scripts.prefinetune")


def test_docstring_holds_the_accelerate_launch_command():
    docstring = ast.get_docstring(ast.parse(SCRIPT.read_text()))
    assert "accelerate launch" in docstring and "--config training/recipes/tiny.yaml" in docstring


def test_cli_flags_override_the_recipe_and_unknown_fields_fail(tmp_path):
    script = load_script()
    script_args, training_args = script.parse_args(
        ["--config", str(RECIPE), "--max_steps", "1", "--output_dir", str(tmp_path), "--report_to", "none"]
    )
    assert training_args.max_steps == 1 and training_args.tasks_per_update == 3
    assert script_args.backbone_config["model_type"] == "bert"
    assert all(Path(task).is_file() for task in script_args.tasks)
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [a]\nlearning_rat: 0.1\n")
    with pytest.raises(ValueError, match="learning_rat"):
        script.parse_args(["--config", str(bad)])


def test_tiny_recipe_trains_evaluates_and_writes_a_checkpoint(tmp_path):
    script = load_script()
    output_dir = tmp_path / "run"
    script_args, training_args = script.parse_args(
        ["--config", str(RECIPE), "--output_dir", str(output_dir), "--max_steps", "2", "--report_to", "none"]
    )
    metrics = script.main(script_args, training_args)
    assert set(metrics) == {"tiny_sentiment", "tiny_choice", "tiny_qa"}
    assert {"loss", "accuracy", "f1"} <= set(metrics["tiny_sentiment"])
    assert "loss" in metrics["tiny_qa"]

    model = MuppetForMultiTask.from_pretrained(output_dir)
    assert model.config.tasks == {
        "tiny_sentiment": "tiny_sentiment",
        "tiny_choice": "multiple_choice",
        "tiny_qa": "span",
    }
    assert set(model.config.heads) == {"tiny_sentiment", "multiple_choice", "span"}
    files = set(os.listdir(output_dir))
    assert {"model.safetensors", "tokenizer.json", "task_metrics.json", "muppet_run.json", "all_results.json"} <= files
    assert json.loads((output_dir / "task_metrics.json").read_text()) == metrics
    run = read_run_metadata(output_dir)
    assert run.tasks["tiny_choice"].metrics["accuracy"] == metrics["tiny_choice"]["accuracy"]
    assert run.batching["mode"] == "heterogeneous"
    shares = run.task_sampling["realised_shares"]
    assert set(shares) == set(metrics) and sum(share["sub_batches"] for share in shares.values()) == pytest.approx(1)
    baselines = json.loads((output_dir / "task_baselines.json").read_text())
    assert baselines["tiny_sentiment"]["kind"] == "majority" and baselines["tiny_choice"]["kind"] == "chance"
    assert "tiny_qa" not in baselines
    # In percent, like task_metrics.json: a binary task's majority class holds at least half of its rows.
    assert 50.0 <= baselines["tiny_sentiment"]["accuracy"] <= 100.0
    card = check_model_card(output_dir / "README.md")
    assert "tiny_choice" in card.text


@pytest.mark.skipif(
    not (task_dir(offline_cache_dir(), "rotten_tomatoes") / "build_info.json").is_file(),
    reason="needs `muppet-hf data build offline-suite` (CI runs it first)",
)
def test_skip_unavailable_tasks_trains_on_the_rest_and_says_what_it_left_out(tmp_path, monkeypatch, caplog):
    # BIG-bench cannot be fetched (as on PyPI since 2026-12-07), whether or not this machine's cache has its tasks.
    real_build, attempts = build_module._build_task, []

    def build_without_bigbench(task, cache, force):
        if task.archive == "bigbench":
            attempts.append(task.name)
            raise SourceUnavailableError("could not fetch bigbench==1.0.0: gone from the index")
        return real_build(task, cache, force)

    monkeypatch.setattr(build_module, "_build_task", build_without_bigbench)
    script = load_script()
    tasks = ["rotten_tomatoes", "vitaminc", "bb_social_iqa"]
    flags = ["--config", str(RECIPE), "--tasks", *tasks, "--max_steps", "2", "--max_train_examples", "16"]
    flags += ["--max_eval_examples", "8", "--report_to", "none", "--r3f_lambda", "0"]
    # Without the flag the run stops, naming the task, before it trains.
    with pytest.raises(SourceUnavailableError, match=r"offline task 'vitaminc' is not built.*gone from the index"):
        script.main(*script.parse_args([*flags, "--output_dir", str(tmp_path / "strict")]))
    assert not (tmp_path / "strict" / "model.safetensors").exists()

    attempts.clear()
    output_dir = tmp_path / "run"
    with caplog.at_level("WARNING", logger="muppet_hf.prefinetune"):
        metrics = script.main(
            *script.parse_args([*flags, "--output_dir", str(output_dir), "--skip_unavailable_tasks"])
        )
    assert set(metrics) == {"rotten_tomatoes"}
    assert attempts == ["vitaminc"], "one fetch attempt per source, not one per task"
    assert "left out 2 of the 3 tasks, their source could not be fetched: vitaminc, bb_social_iqa" in caplog.text
    model = MuppetForMultiTask.from_pretrained(output_dir)
    # No multiple-choice head for a task that was not trained, and no canary: no BIG-bench row was seen.
    assert list(model.config.heads) == ["rotten_tomatoes"] and model.config.canary is False
    metadata = read_run_metadata(output_dir)
    assert sorted(metadata.skipped_tasks) == ["bb_social_iqa", "vitaminc"]
    assert "gone from the index" in metadata.skipped_tasks["vitaminc"] and not metadata.is_canary
    card = (output_dir / "README.md").read_text()
    assert "left out because their source could not be fetched (`skip_unavailable_tasks`): `bb_social_iqa`, " in card
    check_model_card(output_dir / "README.md")

    # Nothing left to train on is an error that names the tasks.
    with pytest.raises(ValueError, match=r"none of the tasks \['vitaminc'\] can be built: .*gone from the index"):
        script.main(
            *script.parse_args(
                [*flags, "--tasks", "vitaminc", "--output_dir", str(tmp_path / "none"), "--skip_unavailable_tasks"]
            )
        )


@pytest.mark.multiprocess
def test_two_cpu_processes_draw_different_tasks(tmp_path):
    # accelerate 1.x starts several CPU processes through torchrun with `--multi_gpu`; the recipe's `use_cpu: true`
    # then selects gloo. (`--num_processes 2 --cpu` alone starts one process: its CPU launcher needs mpirun.)
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29533",
        str(SCRIPT), "--config", str(RECIPE), "--output_dir", str(tmp_path / "run"), "--report_to", "none",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    drawn = dict(re.findall(r"process (\d) of 2 drew sub-batches of tasks (\[.*?\])", log))
    assert set(drawn) == {"0", "1"}, log[-4000:]
    assert drawn["0"] != drawn["1"]
    assert (tmp_path / "run" / "model.safetensors").is_file()

    # Each process wrote its own RNG state; resuming from the middle ends with the uninterrupted run's weights.
    checkpoint = tmp_path / "run" / "checkpoint-3"
    assert {"rng_state_0.safetensors", "rng_state_1.safetensors", "optimizer.safetensors"} <= set(
        os.listdir(checkpoint)
    )
    shutil.copytree(checkpoint, tmp_path / "resumed" / "checkpoint-3")
    resume = [
        *command[: command.index("--output_dir")],
        "--output_dir",
        str(tmp_path / "resumed"),
        "--report_to",
        "none",
    ]
    resume += ["--resume_from_checkpoint", str(tmp_path / "resumed" / "checkpoint-3")]
    result = subprocess.run(resume, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    expected = load_file(tmp_path / "run" / "model.safetensors")
    actual = load_file(tmp_path / "resumed" / "model.safetensors")
    assert expected.keys() == actual.keys() and all(torch.equal(actual[name], expected[name]) for name in expected)


GLOO_GROUP_HELD_IN_A_CYCLE = """
import os, tempfile
import torch, torch.distributed as dist
from muppet_hf.distributed import destroy_process_group

def gloo_threads():
    return [open(f"/proc/self/task/{task}/comm").read().strip()
            for task in os.listdir("/proc/self/task")].count("pt_gloo_runloop")

dist.init_process_group("gloo", init_method=f"file://{tempfile.mkdtemp()}/store", rank=0, world_size=1)
holder = {"model": torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(2, 2))}
holder["self"] = holder
gathered = [None]
dist.all_gather_object(gathered, {"seen": 1})
dist.barrier()
del holder
before = gloo_threads()
destroy_process_group()
print(before, gloo_threads())
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads the thread names from /proc")
def test_destroy_process_group_joins_the_gloo_threads_before_exit():
    # A group that outlives the scripts' main() lets gloo's worker threads free tensors while the interpreter shuts
    # down, which aborted a rank of the two-process run in CI. torch's own destroy leaves a group that a DDP wrapper
    # in a reference cycle still holds, with its threads running.
    result = subprocess.run(
        [sys.executable, "-c", GLOO_GROUP_HELD_IN_A_CYCLE], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    before, after = map(int, result.stdout.split())
    assert before > 0 and after == 0


ENDS_WITH_END_PROCESS = """
import atexit, sys
from muppet_hf.distributed import end_process

atexit.register(lambda: open(sys.argv[1], "w").write("flushed by atexit"))
print("written before the end", end="")  # a pipe is block-buffered: this stays in the buffer until a flush
end_process(3)
print("never reached")
"""


def test_end_process_runs_atexit_handlers_flushes_and_keeps_the_exit_status(tmp_path):
    # The scripts' multi-process ranks leave through `end_process`, skipping the interpreter's shutdown (where gloo
    # aborted a finished rank): what that shutdown would have done for them must still happen.
    marker = tmp_path / "atexit.txt"
    result = subprocess.run(
        [sys.executable, "-c", ENDS_WITH_END_PROCESS, str(marker)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 3, result.stderr[-2000:]
    assert result.stdout == "written before the end"
    assert marker.read_text() == "flushed by atexit"
