import importlib
import json
from pathlib import Path

import datasets
import pytest

from muppet_hf.cli import main
from muppet_hf.planning import plan_mixture, plan_recipe, train_size
from muppet_hf.sampling import MultiTaskBatchSampler, MultiTaskDataset
from muppet_hf.tasks import get_tasks, heads_for
from muppet_hf.tasks.spec import TaskSpec


REPO = Path(__file__).resolve().parent.parent
PAPER_RECIPES = ["muppet_roberta_base", "muppet_roberta_large", "muppet_bart_large"]


def spec(name: str, head: str | None = None, labels: tuple[str, ...] = ("no", "yes")) -> TaskSpec:
    return TaskSpec(
        name=name,
        family="classification",
        source={"files": {"train": f"{name}.jsonl"}},
        columns={"text": "text", "label": "label"},
        label_names=list(labels),
        head=head,
    )


SPECS = [spec("a"), spec("b")]
SIZES = {"a": (300, "spec"), "b": (100, "spec")}
# Sub-batches of 10, 2 per process x 2 processes = 4 per update, 10 updates: 40 sub-batches, 400 examples drawn.
RUN = {"sub_batch_size": 10, "tasks_per_update": 2, "num_processes": 2, "max_steps": 10}


def rows(plan) -> dict[str, tuple[float, float, float]]:
    return {task.name: (task.share, task.sub_batches_per_update, task.epochs) for task in plan.tasks}


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        # natural: 300 : 100. a draws 0.75 x 400 = 300 examples (1 epoch), b 100 (1 epoch).
        ({}, {"a": (0.75, 3.0, 1.0), "b": (0.25, 1.0, 1.0)}),
        # temperature 2: sqrt(300) : sqrt(100) = 17.3205 : 10 -> 0.633975 : 0.366025.
        (
            {"task_sampling": "temperature", "temperature": 2.0},
            {"a": (0.633975, 2.535898, 0.845299), "b": (0.366025, 1.464102, 1.464102)},
        ),
        # uniform: half each; a 200 of 300 examples, b 200 of 100.
        ({"task_sampling": "uniform"}, {"a": (0.5, 2.0, 2 / 3), "b": (0.5, 2.0, 2.0)}),
        # a capped at 200 per epoch: 200 : 100; a draws 266.7 of its 300 examples, b 133.3 of 100.
        ({"max_examples_per_task": {"a": 200}}, {"a": (2 / 3, 8 / 3, 8 / 9), "b": (1 / 3, 4 / 3, 4 / 3)}),
        # the recipe's max_train_examples 150 shrinks a's data itself: 150 : 100, 240 and 160 examples drawn.
        ({"max_train_examples": 150}, {"a": (0.6, 2.4, 1.6), "b": (0.4, 1.6, 1.6)}),
    ],
)
def test_shares_sub_batches_and_epochs_against_hand_computed_values(settings, expected):
    plan = plan_mixture(SPECS, SIZES, **RUN, **settings)
    assert rows(plan) == {name: pytest.approx(values, rel=1e-5) for name, values in expected.items()}
    assert sum(task.share for task in plan.tasks) == pytest.approx(1.0)
    assert plan.heads == pytest.approx({name: values[1] * 10 for name, values in expected.items()})
    assert plan.updates == 10 and plan.update_size == 4


@pytest.mark.parametrize(
    "settings",
    [{}, {"task_sampling": "temperature", "temperature": 3.0}, {"task_sampling": "uniform"}],
)
def test_shares_are_the_samplers_own_weights(settings):
    data = {
        name: datasets.Dataset.from_dict({"input_ids": [[5]] * size, "labels": [0] * size})
        for name, (size, _) in SIZES.items()
    }
    sampler = MultiTaskBatchSampler(
        MultiTaskDataset(data),
        10,
        task_sampling=settings.get("task_sampling", "natural"),
        temperature=settings.get("temperature", 1.0),
        max_examples_per_task={"a": 250},
        group_by_length=False,
    )
    plan = plan_mixture(SPECS, SIZES, **RUN, **settings, max_examples_per_task={"a": 250})
    assert [task.share for task in plan.tasks] == pytest.approx(sampler.weights.tolist())


def test_epoch_length_and_num_train_epochs():
    # Natural epoch: 30 + 10 sub-batches = 10 updates of 4; two epochs when max_steps is unset.
    plan = plan_mixture(SPECS, SIZES, sub_batch_size=10, tasks_per_update=2, num_processes=2, num_train_epochs=2)
    assert plan.epoch_updates == 10 and plan.updates == 20
    assert [task.epochs for task in plan.tasks] == pytest.approx([2.0, 2.0])
    # 31 + 10 sub-batches are padded to 44, whole updates.
    plan = plan_mixture(SPECS, {**SIZES, "a": (301, "spec")}, sub_batch_size=10, tasks_per_update=4)
    assert plan.epoch_updates == 11


def test_warnings_name_under_and_over_seen_tasks_missing_sizes_and_head_disagreements():
    specs = [*SPECS, spec("c"), spec("d", head="shared"), spec("e", head="shared", labels=("x", "y", "z"))]
    sizes = {**SIZES, "c": (None, "missing"), "d": (100, "spec"), "e": (100, "spec")}
    plan = plan_mixture(specs, sizes, **RUN, task_sampling="uniform", max_epochs=1.2)
    text = "\n".join(plan.warnings)
    # uniform over a, b, d, e: 100 examples each; a (300) is seen 1/3 of a time, b, d and e once (no warning).
    assert "1 task(s) expected to be seen less than once" in text and "a (0.33 epochs of 300)" in text
    assert "more than" not in text
    assert "task 'c'" in text and "no training size" in text
    assert "head 'shared'" in text and "'e'" in text and "'d'" in text
    assert plan.tasks[2].share == 0 and plan.tasks[2].epochs is None
    assert sum(task.share for task in plan.tasks) == pytest.approx(1.0)

    over = plan_mixture(SPECS, SIZES, **RUN, task_sampling="uniform", max_epochs=1.5)
    assert any("more than 1.5 times" in warning and "b (2.00 epochs of 100)" in warning for warning in over.warnings)
    assert "warning: 1 task(s) expected to be seen more than 1.5 times" in over.format()


def test_sizes_come_from_the_built_cache_then_the_spec(tmp_path):
    squad = get_tasks(["squad_v1_dev"])[0]
    assert train_size(squad, cache_dir=tmp_path) == (squad.size["train"], "spec")
    info = tmp_path / "offline_suite" / "v1" / "squad_v1_dev" / "build_info.json"
    info.parent.mkdir(parents=True)
    info.write_text(json.dumps({"num_rows": {"train": 123, "validation": 4}}))
    assert train_size(squad, cache_dir=tmp_path) == (123, "cache")
    assert train_size(spec("nowhere")) == (None, "missing")


@pytest.mark.parametrize("name", PAPER_RECIPES)
def test_paper_recipes_load_validate_and_plan_offline(name):
    recipe = REPO / "training" / "recipes" / f"{name}.yaml"
    script = importlib.import_module("muppet_hf.scripts.prefinetune")
    # bf16 needs an accelerator; everything else of the recipe is validated as the training script parses it.
    script_args, training_args = script.parse_args(["--config", str(recipe), "--bf16", "false"])
    specs = get_tasks(script_args.tasks)
    encoder_decoder = "bart" in name
    assert len(specs) == (47 if encoder_decoder else 42)
    assert ("seq2seq" in heads_for(specs)) == encoder_decoder
    assert training_args.batching == "heterogeneous" and training_args.loss_scaling == "log_n"
    assert training_args.task_sampling == "natural" and training_args.tasks_per_update * 8 >= 64

    plan = plan_recipe(recipe, num_processes=8)
    assert [task.name for task in plan.tasks] == [spec.name for spec in specs]
    assert all(task.size_source == "spec" for task in plan.tasks)
    assert sum(task.share for task in plan.tasks) == pytest.approx(1.0)
    assert plan.warnings == []
    assert 2.5 < plan.tasks[0].epochs < 3.5


def test_plan_command_prints_the_table_and_json(capsys):
    recipe = str(REPO / "training" / "recipes" / "muppet_bart_large.yaml")
    assert main(["plan", recipe, "--num-processes", "8"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:4] == ["task", "family", "head", "train"]
    assert "47 tasks, 3,607,029 training examples; shares sum to 1.0000" in out
    assert main(["plan", recipe, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["tasks"]) == 47 and data["update_size"] == 16 and data["num_processes"] == 1
    assert set(data["heads"]) >= {"mnli", "multiple_choice", "span", "seq2seq"}


def test_plan_command_reports_a_bad_recipe(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [rte]\ntask_sampling: sometimes\n")
    assert main(["plan", str(bad)]) == 2
    assert "task_sampling" in capsys.readouterr().err


def test_plan_and_training_resolve_a_recipes_task_files_alike(tmp_path, monkeypatch, capsys):
    from muppet_hf.scripts.prefinetune import parse_args

    # A recipe outside the repository, run from another folder, names a task file from the repository's root.
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("tasks: [training/data/tiny/tiny_sentiment.yaml]\noutput_dir: out\n")
    monkeypatch.chdir(tmp_path)
    expected = str(REPO / "training" / "data" / "tiny" / "tiny_sentiment.yaml")
    assert parse_args(["--config", str(recipe)])[0].tasks == [expected]
    assert main(["plan", str(recipe)]) == 0
    assert "tiny_sentiment" in capsys.readouterr().out
    recipe.write_text("tasks: [training/data/tiny/missing.yaml]\n")
    assert main(["plan", str(recipe)]) == 2
    assert "'training/data/tiny/missing.yaml' not found" in capsys.readouterr().err
