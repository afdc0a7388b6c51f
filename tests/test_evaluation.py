"""Smoke tests of the miniature experiments in evaluation/, end to end with the tiny setup.

The tiny recipe pre-finetunes a random tiny BERT saved to a folder (so the base model and the pre-finetuned ones start
from the same weights), and two tiny tasks stand in for the held-out ones. Runs go in-process (`--in_process`) to skip
an interpreter start-up per run; one slow test runs a script and its runs as child processes, as by default.
"""

import ast
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from muppet_hf import MuppetConfig, MuppetForMultiTask
from muppet_hf.testing_utils import tiny_config, tiny_tokenizer


REPO = Path(__file__).resolve().parent.parent
EVALUATION = REPO / "evaluation"
TINY = REPO / "training" / "data" / "tiny"
TINY_RECIPE = REPO / "training" / "recipes" / "tiny.yaml"
SCRIPTS = ("transfer", "scaling", "batching", "ablations")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def load_script(monkeypatch):
    """Loads evaluation/<name>.py as a module; the scripts import their sibling `common`, as when run directly."""
    monkeypatch.syspath_prepend(str(EVALUATION))

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"evaluation_{name}", EVALUATION / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    """A tiny random BERT folder with the tiny tokenizer: the base model of every smoke run."""
    path = tmp_path_factory.mktemp("tiny") / "base"
    MuppetForMultiTask(MuppetConfig(base_model_config=tiny_config(), heads={})).save_backbone(path)
    tiny_tokenizer().save_pretrained(path)
    return path


@pytest.fixture(autouse=True)
def one_thread():
    # Ops of a tiny model are far too small for several OpenMP threads: on a busy 2-core machine they cost seconds
    # per step instead of milliseconds.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_flags(tiny_base: Path, output_dir: Path, *tasks: str) -> list[str]:
    return [
        "--recipe", str(TINY_RECIPE), "--backbone", str(tiny_base), "--output_dir", str(output_dir),
        "--tasks", *[str(TINY / f"{task}.yaml") for task in tasks], "--finetune_steps", "4", "--finetune_eval_steps", "2",
        "--learning_rates", "1e-3", "--in_process",
    ]  # fmt: skip


def check_results(output_dir: Path, plots: list[str], runs: int, aggregates: int, seeds: int) -> dict:
    """results.json has the expected runs and aggregates with finite scores, and the plots are PNG files."""
    results = json.loads((output_dir / "results.json").read_text())
    assert len(results["runs"]) == runs and len(results["aggregates"]) == aggregates
    for run in results["runs"]:
        assert math.isfinite(run["score"]) and 0 <= run["score"] <= 100, run
        assert (Path(run["output_dir"]) / "run.log").is_file()
        assert not list(Path(run["output_dir"]).glob("*.safetensors")), "fine-tuned weights are dropped by default"
    for entry in results["aggregates"]:
        assert entry["n"] == seeds and entry["metric"] in ("accuracy", "f1")
        assert all(math.isfinite(entry[key]) for key in ("mean", "std", "min", "max")), entry
    assert "| task |" in (output_dir / "results.md").read_text()
    for plot in plots:
        assert (output_dir / plot).read_bytes()[:8] == PNG_SIGNATURE, plot
    return results


def test_transfer_compares_base_and_muppet_then_resumes(load_script, tiny_base, tmp_path, capsys):
    script = load_script("transfer")
    flags = tiny_flags(tiny_base, tmp_path / "transfer", "tiny_sentiment", "tiny_qa")
    flags += ["--muppet_checkpoints", str(tmp_path / "muppet"), "--prefinetune_args=--max_steps 2"]
    flags += ["--fractions", "0.5", "1.0", "--seeds", "1", "2"]
    results = script.main(script.parse_args(flags))

    # 2 models x 2 tasks x 2 fractions x 2 seeds; aggregates over seeds; one comparison per task and fraction.
    check_results(tmp_path / "transfer", ["transfer.png", "transfer_delta.png"], runs=16, aggregates=8, seeds=2)
    assert (tmp_path / "muppet" / "config.json").is_file(), "the missing checkpoint is pre-finetuned from --recipe"
    assert len(results["comparison"]["by_task"]) == 4 and len(results["pairs"]) == 8
    assert all(math.isfinite(entry["mean"]) and entry["n"] == 2 for entry in results["comparison"]["by_task"])
    # The step budget: every run trains at most 4 updates, evaluating validation every 2 and keeping the best.
    for run in results["runs"]:
        argv = json.loads(Path(run["output_dir"], "run.json").read_text())["argv"]
        assert argv[argv.index("--max_steps") + 1] == "4" and "--select_best_model" in argv
        assert run["updates"] <= 4 and run["best_step"] in (2, 4)
        # The tiny tasks have no test split, so they are scored on validation.
        assert run["score_split"] == "validation" and "test" not in run["metrics"]
        assert (run["guess_score"] is None) == (run["task"] == "tiny_qa"), "span F1 has no guess to beat"
    reused = {(run["model"], run["task"]): run["head_reused"] for run in results["runs"]}
    assert reused[("muppet", "tiny_qa")] and not reused[("base", "tiny_qa")]
    assert {run["train_examples"] for run in results["runs"] if run["task"] == "tiny_sentiment"} == {20, 40}
    table = capsys.readouterr().out
    assert "| tiny_qa | f1 | 50% |" in table

    again = script.main(script.parse_args(flags))
    assert capsys.readouterr().out.count("skipped (done)") == 16
    assert [run["score"] for run in again["runs"]] == [run["score"] for run in results["runs"]]
    changed = list(flags)
    changed[changed.index("--finetune_steps") + 1] = "5"
    with pytest.raises(ValueError, match="another command"):
        script.main(script.parse_args(changed))

    # The runs copied into another experiment, under a label of their own, are reused there, not run again.
    shutil.copytree(tmp_path / "transfer" / "finetune" / "base", tmp_path / "other" / "finetune" / "base")
    shutil.copytree(tmp_path / "transfer" / "finetune" / "muppet", tmp_path / "other" / "finetune" / "full_1")
    moved = list(flags)
    moved[moved.index("--output_dir") + 1] = str(tmp_path / "other")
    copied = script.main(script.parse_args([*moved, "--muppet_labels", "full_1"]))
    assert capsys.readouterr().out.count("skipped (done)") == 16
    assert [run["score"] for run in copied["runs"]] == [run["score"] for run in results["runs"]]
    assert {run["model"] for run in copied["runs"]} == {"base", "full_1"}
    assert {entry["model"] for entry in copied["comparison"]["by_checkpoint"]} <= {"full_1"}
    for labels in (["base"], ["a", "b"], ["a/b"]):
        with pytest.raises(ValueError, match="muppet_labels"):
            script.parse_args([*moved, "--muppet_labels", *labels])

    # The same checkpoint twice under two labels, the first as the reference: every pair is the second against the
    # first, run for run (here both fine-tune the same checkpoint, so the differences are 0).
    shutil.copytree(tmp_path / "transfer" / "finetune" / "muppet", tmp_path / "other" / "finetune" / "again")
    twice = [*moved, "--muppet_checkpoints", str(tmp_path / "muppet"), str(tmp_path / "muppet")]
    versus = script.main(script.parse_args([*twice, "--muppet_labels", "full_1", "again", "--reference", "full_1"]))
    assert {(pair["model"], pair["reference"]) for pair in versus["pairs"]} == {("again", "full_1")}
    assert len(versus["pairs"]) == 8 and all(pair["difference"] == 0 for pair in versus["pairs"])
    assert "| again - full_1 over tasks |" in capsys.readouterr().out
    with pytest.raises(ValueError, match="reference"):
        script.parse_args([*twice, "--muppet_labels", "full_1", "again", "--reference", "lora"])


def test_scaling_pre_finetunes_nested_subsets_with_or_without_the_base_model(load_script, tiny_base, tmp_path):
    script = load_script("scaling")
    flags = tiny_flags(tiny_base, tmp_path / "scaling", "tiny_sentiment", "tiny_qa")
    results = script.main(
        script.parse_args([*flags, "--num_tasks", "1", "3", "--prefinetune_steps", "2", "--seeds", "1"])
    )

    # 3 models (base, 1 task, 3 tasks) x 2 tasks x 1 fraction x 1 seed.
    check_results(tmp_path / "scaling", ["scaling.png"], runs=6, aggregates=6, seeds=1)
    assert sorted({entry["num_tasks"] for entry in results["aggregates"]}) == [0, 1, 3]
    subsets = [
        yaml.safe_load(Path(record["output_dir"], "recipe.yaml").read_text()) for record in results["prefinetune"]
    ]
    assert [len(recipe["tasks"]) for recipe in subsets] == [1, 3]
    assert subsets[1]["tasks"][:1] == subsets[0]["tasks"], "subsets are nested"
    assert all(recipe["max_steps"] == 2 and recipe["model_name_or_path"] == str(tiny_base) for recipe in subsets)
    assert all("backbone_config" not in recipe for recipe in subsets)

    # Without the base (its runs made elsewhere): the variant's finished runs are reused, none is added, and the base
    # is neither run nor reported.
    folders = sorted((tmp_path / "scaling").rglob("*"))
    alone = script.main(
        script.parse_args([*flags, "--num_tasks", "3", "--prefinetune_steps", "2", "--seeds", "1", "--with_base", "0"])
    )
    assert {run["model"] for run in alone["runs"]} == {"tasks_3"} and "base" not in alone["models"]
    earlier = {(run["task"], run["score"]) for run in results["runs"] if run["model"] == "tasks_3"}
    assert {(run["task"], run["score"]) for run in alone["runs"]} == earlier
    assert sorted((tmp_path / "scaling").rglob("*")) == folders


def test_nested_order_mixes_families_from_the_first_tasks(load_script):
    script = load_script("scaling")
    common = sys.modules["common"]
    tasks = common.load_recipe("training/recipes/offline_suite.yaml")["tasks"]
    order = script.nested_task_order(tasks)
    assert sorted(order) == sorted(tasks) and len(tasks) == 23
    assert len({script.get_task(task).family for task in order[:4]}) == 4


def test_batching_gives_every_strategy_the_same_examples(load_script, tiny_base, tmp_path):
    script = load_script("batching")
    flags = tiny_flags(tiny_base, tmp_path / "batching", "tiny_qa") + ["--seeds", "1"]
    results = script.main(script.parse_args([*flags, "--prefinetune_steps", "3", "--prefinetune_batch_size", "4"]))

    check_results(tmp_path / "batching", ["batching.png"], runs=3, aggregates=3, seeds=1)
    # Tiny recipe: 3 tasks, 3 sub-batches per update; 1 update per task of 3 sub-batches of 4 examples.
    assert results["budget"] == {"max_steps": 3, "max_examples_per_task": 12}
    recipes = {
        record["variant"]: yaml.safe_load(Path(record["output_dir"], "recipe.yaml").read_text())
        for record in results["prefinetune"]
    }
    assert {name: recipe["batching"] for name, recipe in recipes.items()} == {
        mode: mode for mode in ("dataset_homogeneous", "batch_homogeneous", "heterogeneous")
    }
    assert all(0 <= scores["all"] <= 100 for scores in results["prefinetune_scores"].values())
    assert "| pre-finetuning validation (points) |" in (tmp_path / "batching" / "results.md").read_text()
    log = Path(results["prefinetune"][0]["output_dir"], "run.log").read_text()
    assert "drew sub-batches of tasks ['tiny_sentiment', 'tiny_sentiment', 'tiny_sentiment', 'tiny_choice'" in log


def test_ablations_set_both_ablated_fields_in_every_variant(load_script, tiny_base, tmp_path):
    script = load_script("ablations")
    flags = tiny_flags(tiny_base, tmp_path / "ablations", "tiny_sentiment")
    # One variant first, as one of two side-by-side processes would; the run naming all three re-uses its runs.
    part = script.main(
        script.parse_args([*flags, "--prefinetune_steps", "2", "--seeds", "1", "2", "--variants", "r3f"])
    )
    assert [record["variant"] for record in part["prefinetune"]] == ["r3f"] and len(part["runs"]) == 2
    weights = Path(part["prefinetune"][0]["output_dir"], "model.safetensors")
    written = weights.stat().st_mtime_ns
    results = script.main(script.parse_args([*flags, "--prefinetune_steps", "2", "--seeds", "1", "2"]))
    assert weights.stat().st_mtime_ns == written

    check_results(tmp_path / "ablations", ["ablations.png"], runs=6, aggregates=3, seeds=2)
    settings = {
        record["variant"]: yaml.safe_load(Path(record["output_dir"], "recipe.yaml").read_text())
        for record in results["prefinetune"]
    }
    assert {name: (recipe["loss_scaling"], recipe["r3f_lambda"]) for name, recipe in settings.items()} == {
        "baseline": ("log_n", 0.0),
        "no_loss_scaling": ("none", 0.0),
        "r3f": ("log_n", 1.0),
    }
    assert all(math.isfinite(record["train_runtime"]) for record in results["prefinetune"])
    with pytest.raises(ValueError, match="field `variants`"):
        script.parse_args([*flags, "--variants", "r4f"])

    # The recipe's own choices, on request: each is the baseline (re-used, not re-run) with one field changed.
    extra = ["--variants", "baseline", "no_head_warmup", "first_token_pooling"]
    results = script.main(script.parse_args([*flags, "--prefinetune_steps", "2", "--seeds", "1", "2", *extra]))
    settings = {
        record["variant"]: yaml.safe_load(Path(record["output_dir"], "recipe.yaml").read_text())
        for record in results["prefinetune"]
    }
    changed = {
        name: {key: value for key, value in recipe.items() if settings["baseline"].get(key) != value}
        for name, recipe in settings.items()
    }
    assert changed == {
        "baseline": {},
        "no_head_warmup": {"head_warmup_steps": 0},
        "first_token_pooling": {"pooling": "first"},
    }
    config = json.loads(Path(results["prefinetune"][2]["output_dir"], "config.json").read_text())
    assert config["pooling"] == "first"

    # Heads at the backbone's rate: needs a recipe with a `backbone_learning_rate`, which the tiny one lacks.
    with pytest.raises(ValueError, match="one_learning_rate.*no `backbone_learning_rate`"):
        script.main(script.parse_args([*flags, "--variants", "one_learning_rate"]))
    two_rates = tmp_path / "two_rates.yaml"
    recipe = {**yaml.safe_load(TINY_RECIPE.read_text()), "learning_rate": 1e-3, "backbone_learning_rate": 1e-4}
    two_rates.write_text(yaml.safe_dump(recipe))
    flags = tiny_flags(tiny_base, tmp_path / "two_rates", "tiny_sentiment")
    flags[flags.index("--recipe") + 1] = str(two_rates)
    extra = ["--variants", "baseline", "one_learning_rate"]
    results = script.main(script.parse_args([*flags, "--prefinetune_steps", "2", "--seeds", "1", *extra]))
    training = {
        record["variant"]: json.loads(Path(record["output_dir"], "muppet_run.json").read_text())["training"]
        for record in results["prefinetune"]
    }
    rates = {name: (run["learning_rate"], run["backbone_learning_rate"]) for name, run in training.items()}
    assert rates == {"baseline": (1e-3, 1e-4), "one_learning_rate": (1e-4, None)}


@pytest.mark.parametrize("name", SCRIPTS)
def test_docstring_holds_the_default_and_the_smoke_command(name):
    docstring = ast.get_docstring(ast.parse((EVALUATION / f"{name}.py").read_text()))
    assert f"python evaluation/{name}.py --output_dir runs/evaluation/{name}" in docstring
    assert "--recipe training/recipes/tiny.yaml" in docstring


def test_aggregate_mean_and_sample_std(load_script):
    load_script("transfer")
    common = sys.modules["common"]
    runs = [
        {"model": "m", "task": "t", "train_fraction": 1.0, "metric": "f1", "seed": seed, "score": score}
        for seed, score in ((1, 10.0), (2, 14.0))
    ]
    (entry,) = common.aggregate(runs)
    assert (entry["n"], entry["mean"], entry["std"]) == (2, 12.0, pytest.approx(2**0.5 * 2))
    assert common.aggregate(runs[:1])[0]["std"] == 0.0


def test_finetune_metrics_are_read_in_points_whichever_scale_the_file_has(load_script, tmp_path):
    load_script("transfer")
    common = sys.modules["common"]
    points = {
        "score_scale": "percent",
        "metrics": {"test": {"accuracy": 62.5, "loss": 0.7}},
        "guess_accuracy": {"test": 50.0},
    }
    # A file written before `score_scale` existed holds accuracy as a fraction; it is read on the same scale.
    fractions = {"metrics": {"test": {"accuracy": 0.625, "loss": 0.7}}, "guess_accuracy": {"test": 0.5}}
    for name, payload in (("new.json", points), ("old.json", fractions)):
        common.write_json(tmp_path / name, payload)
        result = common.read_finetune_metrics(tmp_path / name, "classification")
        assert result["metrics"] == points["metrics"] and result["guess_accuracy"] == points["guess_accuracy"], name
    # SQuAD F1 is in points either way.
    span = {"metrics": {"validation": {"f1": 40.0}}, "guess_accuracy": {"validation": None}}
    common.write_json(tmp_path / "span.json", span)
    assert common.read_finetune_metrics(tmp_path / "span.json", "span")["metrics"] == span["metrics"]


def test_prefinetune_scores_average_points_by_family_over_the_tasks_every_variant_saw(load_script):
    load_script("batching")
    common = sys.modules["common"]
    recipe = {"tasks": ["rotten_tomatoes", "vitaminc", "squad_v1_dev"]}
    records = [
        {"variant": "a", "task_metrics": {"rotten_tomatoes": {"accuracy": 50.0}, "vitaminc": {"accuracy": 100.0},
                                          "squad_v1_dev": {"f1": 20.0, "exact_match": 10.0}}},
        {"variant": "b", "task_metrics": {"rotten_tomatoes": {"accuracy": 70.0}, "squad_v1_dev": {"f1": 10.0}}},
    ]  # fmt: skip
    scores = common.prefinetune_scores(records, recipe)
    # vitaminc is left out: variant b did not pre-finetune on it. task_metrics.json holds every score in points.
    assert scores == {
        "a": {"classification": 50.0, "span_mrc": 20.0, "all": 35.0},
        "b": {"classification": pytest.approx(70.0), "span_mrc": 10.0, "all": pytest.approx(40.0)},
    }
    assert list(scores["a"]) == ["classification", "span_mrc", "all"]
    assert "| span_mrc | 20.0 | 10.0 |" in common.prefinetune_table(scores)


def test_transfer_scores_on_test_after_a_learning_rate_sweep_and_pairs_each_pre_finetuning_seed(
    load_script, tiny_base, tmp_path
):
    script = load_script("transfer")
    flags = tiny_flags(tiny_base, tmp_path / "transfer", "tiny_tags")
    flags += ["--muppet_checkpoints", str(tmp_path / "muppet-a"), str(tmp_path / "muppet-b"), "--prefinetune_seeds"]
    flags += ["3", "4", "--prefinetune_args=--max_steps 2", "--fractions", "1.0", "--seeds", "1", "2"]
    flags += ["--learning_rates", "1e-3", "1e-2"]
    results = script.main(script.parse_args(flags))

    # 3 models (base and two pre-finetuning seeds) x 2 seeds x 2 learning rates; aggregates at the chosen rate.
    check_results(tmp_path / "transfer", ["transfer.png"], runs=12, aggregates=3, seeds=2)
    recipes = [
        yaml.safe_load(Path(record["output_dir"], "recipe.yaml").read_text()) for record in results["prefinetune"]
    ]
    assert [recipe["seed"] for recipe in recipes] == [3, 4]
    assert [record["prefinetune_seed"] for record in results["prefinetune"]] == [3, 4]
    for run in results["runs"]:
        # A tagging task with a test split: scored on test, token accuracy in points, beside the majority tag's share.
        assert run["score_split"] == "test" and run["score"] == pytest.approx(run["metrics"]["test"]["accuracy"])
        assert 25 < run["guess_score"] < 100
    chosen = [run for run in results["runs"] if run["selected"]]
    assert len(chosen) == 6 and len({(run["model"], run["learning_rate"]) for run in chosen}) == 3
    for model in ("base", "muppet_1", "muppet_2"):
        validation = {
            rate: sum(
                run["validation_score"]
                for run in results["runs"]
                if (run["model"], run["learning_rate"]) == (model, rate)
            )
            for rate in (1e-3, 1e-2)
        }
        assert results["learning_rates"][f"{model}/tiny_tags/1"] == max(validation, key=validation.get)
    # Pairs: 2 checkpoints x 2 fine-tuning seeds, each checkpoint against the base model of the same seed.
    assert len(results["pairs"]) == 4
    (by_task,) = results["comparison"]["by_task"]
    assert by_task["n"] == 4 and by_task["wins"] + by_task["losses"] + by_task["ties"] == 4
    assert by_task["ci_low"] <= by_task["mean"] <= by_task["ci_high"]
    assert [entry["model"] for entry in results["comparison"]["by_checkpoint"]] == ["muppet_1", "muppet_2"]
    table = (tmp_path / "transfer" / "results.md").read_text()
    assert "| tiny_tags | accuracy | 100% |" in table and "| muppet_2 | 100% | 1 |" in table


def test_transfer_fine_tunes_the_base_with_the_recipe_pooling(load_script, tiny_base, tmp_path):
    """The base's fresh head reads the encoder as the checkpoint pre-finetuned with the recipe does (here mean)."""
    recipe = yaml.safe_load(TINY_RECIPE.read_text())
    recipe["pooling"] = "mean"
    (tmp_path / "mean.yaml").write_text(yaml.safe_dump(recipe))
    script = load_script("transfer")
    flags = tiny_flags(tiny_base, tmp_path / "transfer", "tiny_sentiment")
    flags[flags.index("--recipe") + 1] = str(tmp_path / "mean.yaml")
    flags += ["--muppet_checkpoints", str(tmp_path / "muppet"), "--prefinetune_args=--max_steps 1"]
    results = script.main(script.parse_args([*flags, "--fractions", "1.0", "--seeds", "1"]))

    for run in results["runs"]:
        argv = json.loads(Path(run["output_dir"], "run.json").read_text())["argv"]
        # Only the plain backbone is told; the checkpoint keeps the pooling it was pre-finetuned with.
        assert ("--pooling" in argv) == (run["model"] == "base"), argv
        assert json.loads(Path(run["output_dir"], "config.json").read_text())["pooling"] == "mean"


def test_compare_results_pairs_two_experiments_and_refuses_what_does_not_pair(load_script, tmp_path):
    script = load_script("compare_results")

    def run(model: str, task: str, seed: int, score: float, rate: float = 1e-4, examples: int = 50) -> dict:
        return {
            "model": model, "task": task, "train_fraction": 0.1, "seed": seed, "score": score, "selected": True,
            "metric": "accuracy", "score_split": "test", "learning_rate": rate, "train_examples": examples,
            "guess_score": 50.0,
        }  # fmt: skip

    first = [run("base", task, seed, 50.0 + seed) for task in ("a", "b") for seed in (1, 2)]
    mean = [run("base", "a", seed, 60.0 + seed) for seed in (1, 2)] + [run("base", "b", 1, 40.0)]
    mean.append(run("other", "b", 2, 0.0))
    for name, runs in (("first", first), ("mean", mean)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps({"runs": runs}))
    flags = ["--compared", f"{tmp_path / 'mean/results.json'}:base", "--compared_label", "base_mean"]
    flags += ["--reference", f"{tmp_path / 'first/results.json'}:base", "--reference_label", "base_first"]
    results = script.main(script.parse_args([*flags, "--output_dir", str(tmp_path / "pooling")]))

    # Task a: +10 twice; task b: one pair (seed 2 of `mean` is another model's), 40 - 51.
    assert sorted((pair["task"], pair["difference"]) for pair in results["pairs"]) == [
        ("a", 10),
        ("a", 10),
        ("b", -11),
    ]
    # The score columns average the paired runs only: task b's reference has its seed 1 alone.
    (first_b,) = [entry for entry in results["aggregates"] if (entry["model"], entry["task"]) == ("base_first", "b")]
    assert first_b["n"] == 1 and first_b["mean"] == 51.0
    (over,) = results["comparison"]["over_tasks"]
    assert over["mean_of_task_means"] == pytest.approx(-0.5) and (over["tasks_ahead"], over["tasks_behind"]) == (1, 1)
    assert "| base_mean - base_first over tasks |" in (tmp_path / "pooling" / "results.md").read_text()
    # Without task b, the verdict of task a alone, from the same runs.
    only_a = script.main(script.parse_args([*flags, "--tasks", "a", "--output_dir", str(tmp_path / "only_a")]))
    assert {pair["task"] for pair in only_a["pairs"]} == {"a"} and {run["task"] for run in only_a["runs"]} == {"a"}
    assert only_a["comparison"]["over_tasks"][0]["mean_of_task_means"] == pytest.approx(10.0)
    with pytest.raises(ValueError, match=r"field `tasks`: \['c'\] have no runs"):
        script.main(script.parse_args([*flags, "--tasks", "a", "c", "--output_dir", str(tmp_path / "only_a")]))
    with pytest.raises(ValueError, match="output_dir"):
        script.main(script.parse_args([*flags, "--output_dir", str(tmp_path / "first")]))
    with pytest.raises(ValueError, match=r"no runs of model 'muppet'.*\['base', 'other'\]"):
        other = ["--compared", f"{tmp_path / 'mean/results.json'}:muppet", *flags[2:]]
        script.main(script.parse_args([*other, "--output_dir", str(tmp_path / "pooling")]))
    mean[0]["train_examples"] = 100
    (tmp_path / "mean" / "results.json").write_text(json.dumps({"runs": mean}))
    with pytest.raises(ValueError, match="`train_examples`.*do not share a protocol"):
        script.main(script.parse_args([*flags, "--output_dir", str(tmp_path / "pooling")]))


@pytest.mark.slow
def test_transfer_as_a_command_with_child_processes(tiny_base, tmp_path):
    command = [
        sys.executable, str(EVALUATION / "transfer.py"), *tiny_flags(tiny_base, tmp_path / "transfer", "tiny_qa")[:-1],
        "--muppet_checkpoints", str(tmp_path / "muppet"), "--prefinetune_args=--max_steps 2", "--fractions", "1.0",
        "--seeds", "1",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "| tiny_qa | f1 | 100% |" in result.stdout
    check_results(tmp_path / "transfer", ["transfer.png", "transfer_delta.png"], runs=2, aggregates=2, seeds=1)
