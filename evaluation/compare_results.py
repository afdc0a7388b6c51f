"""Pairs one model's runs in one finished experiment with another model's runs in another, as transfer.py pairs
Muppet with its base: same task, training share and fine-tuning seed, each at the learning rate it chose on
validation. For two experiments of the same protocol that differ in one setting of a model, e.g. the base model
fine-tuned with mean pooling against the same base with first-token pooling:

```bash
python evaluation/compare_results.py \
    --compared runs/evaluation/transfer-long-mean/results.json:base --compared_label base_mean \
    --reference runs/evaluation/transfer-long/results.json:base --reference_label base_first \
    --output_dir runs/evaluation/pooling-base
```

A side is `RESULTS_JSON:MODEL` (a model label of that experiment's runs). `--tasks` keeps only the tasks it names,
e.g. to see the verdict without one task that carries it; the same two sides with and without it re-use the same
runs, so nothing is copied or re-run. Runs without a partner on the other side
(e.g. a seed only one experiment ran) are left out of the pairs and of the score columns alike. Paired runs must
have trained on the same number of examples and been scored on the same split, else the experiments do not share a
protocol and this stops.
Writes `results.json` (both sides' runs, the pairs and the paired comparison of `paired_stats`) and `results.md` (the
tables of transfer.py, also printed) to `--output_dir`, which must not be the folder of either input.
"""

from dataclasses import dataclass, field
from pathlib import Path

from common import aggregate, selected, write_results
from transfer import compare, paired_differences, tables
from transformers import HfArgumentParser

from muppet_hf.io_utils import read_json


@dataclass
class CompareArguments:
    """Arguments of compare_results.py.

    Args:
        compared (`str`): `RESULTS_JSON:MODEL`, the side whose score comes first in each difference.
        reference (`str`): `RESULTS_JSON:MODEL`, the side subtracted.
        compared_label, reference_label (`str`, *optional*): names in the tables; default to the model labels.
        tasks (`list[str]`, *optional*): only these tasks; defaults to every task the two sides share.
        output_dir (`str`): where `results.json` and `results.md` go.
    """

    compared: str = field(metadata={"help": "RESULTS_JSON:MODEL, the side whose score comes first."})
    reference: str = field(metadata={"help": "RESULTS_JSON:MODEL, the side subtracted."})
    output_dir: str = field(metadata={"help": "Folder for results.json and results.md."})
    compared_label: str | None = field(default=None, metadata={"help": "Name of the compared side."})
    reference_label: str | None = field(default=None, metadata={"help": "Name of the reference side."})
    tasks: list[str] | None = field(default=None, metadata={"help": "Only these tasks (default: all shared ones)."})


def parse_args(argv: list[str] | None = None) -> CompareArguments:
    return HfArgumentParser(CompareArguments).parse_args_into_dataclasses(argv)[0]


def load_side(side: str, label: str | None, name: str) -> tuple[str, list[dict]]:
    """The label and the runs of `side` (`RESULTS_JSON:MODEL`), relabelled."""
    path, _, model = side.rpartition(":")
    if not path or not model:
        raise ValueError(f"field `{name}` must be RESULTS_JSON:MODEL, got {side!r}")
    results = read_json(Path(path))
    runs = [run for run in results.get("runs", []) if run["model"] == model]
    if not runs:
        models = sorted({run["model"] for run in results.get("runs", [])})
        raise ValueError(f"{path}: no runs of model {model!r} (field `runs`); its models are {models}")
    label = label or model
    return label, [{**run, "model": label, "experiment": path} for run in runs]


def check_same_protocol(pairs: list[dict], runs: list[dict]):
    """Stops when a pair's two runs trained on different numbers of examples or were scored on different splits."""
    chosen = {(run["model"], run["task"], run["train_fraction"], run["seed"]): run for run in selected(runs)}
    for pair in pairs:
        key = (pair["task"], pair["train_fraction"], pair["seed"])
        compared, reference = chosen[(pair["model"], *key)], chosen[(pair["reference"], *key)]
        for field_name in ("train_examples", "score_split"):
            if compared[field_name] != reference[field_name]:
                raise ValueError(
                    f"task {pair['task']!r}, share {pair['train_fraction']:g}, seed {pair['seed']}: field "
                    f"`{field_name}` is {compared[field_name]!r} in {compared['experiment']} but "
                    f"{reference[field_name]!r} in {reference['experiment']}; the two experiments do not share a "
                    "protocol"
                )


def main(args: CompareArguments) -> dict:
    experiment_dir = Path(args.output_dir)
    for side in (args.compared, args.reference):
        if (experiment_dir / "results.json").resolve() == Path(side.rpartition(":")[0]).resolve():
            raise ValueError(f"field `output_dir`: {experiment_dir} holds an input, {side}; write elsewhere")
    label, compared_runs = load_side(args.compared, args.compared_label, "compared")
    reference, reference_runs = load_side(args.reference, args.reference_label, "reference")
    if label == reference:
        raise ValueError(f"both sides are labelled {label!r}; give --compared_label and --reference_label")
    runs = compared_runs + reference_runs
    if args.tasks is not None:
        unknown = sorted(set(args.tasks) - {run["task"] for run in runs})
        if unknown:
            raise ValueError(
                f"field `tasks`: {unknown} have no runs in {args.compared} or {args.reference}; their tasks are "
                f"{sorted({run['task'] for run in runs})}"
            )
        runs = [run for run in runs if run["task"] in args.tasks]
    pairs = paired_differences(runs, [label], reference)
    if not pairs:
        raise ValueError(f"{args.compared} and {args.reference} share no (task, share, seed): nothing to pair")
    check_same_protocol(pairs, runs)
    # The score columns hold the paired runs only, so that both sides are averaged over the same seeds.
    paired = {(pair["task"], pair["train_fraction"], pair["seed"]) for pair in pairs}
    runs = [run for run in runs if (run["task"], run["train_fraction"], run["seed"]) in paired]
    tasks = list(dict.fromkeys(pair["task"] for pair in pairs))
    fractions = sorted({pair["train_fraction"] for pair in pairs})
    comparison = compare(pairs, tasks, fractions, [label])
    aggregates = aggregate(selected(runs))
    pooled = aggregate([run for run in selected(runs) if run["model"] == label], keys=("task", "train_fraction"))
    payload = {
        "experiment": "compare_results",
        "compared": {"label": label, "side": args.compared},
        "reference": {"label": reference, "side": args.reference},
        "tasks": args.tasks,
        "runs": runs,
        "aggregates": aggregates,
        "pairs": pairs,
        "comparison": comparison,
    }
    experiment_dir.mkdir(parents=True, exist_ok=True)
    write_results(
        experiment_dir, payload, tables(aggregates, pooled, comparison, tasks, fractions, [label], reference)
    )
    return payload


if __name__ == "__main__":
    main(parse_args())
