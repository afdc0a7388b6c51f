from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from transformers import EvalPrediction

from muppet_hf import MuppetConfig, MuppetForMultiTask
from muppet_hf.metrics import (
    normalize_answer,
    postprocess_span_predictions,
    rouge_scores,
    rouge_tokenize,
    squad_exact_match,
    squad_f1,
    squad_scores,
    tagging_scores,
)
from muppet_hf.tasks import load_task_spec, prepare_task
from muppet_hf.testing_utils import tiny_config, tiny_tokenizer
from muppet_hf.trainer import MuppetTrainer
from muppet_hf.training_args import MuppetTrainingArguments


TINY_QA = Path(__file__).resolve().parent.parent / "training" / "data" / "tiny" / "tiny_qa.yaml"


def arguments(tmp_path, **overrides) -> MuppetTrainingArguments:
    defaults = {
        "output_dir": str(tmp_path / "out"),
        "per_device_eval_batch_size": 4,
        "report_to": "none",
        "use_cpu": True,
        "seed": 0,
        "disable_tqdm": True,
    }
    return MuppetTrainingArguments(**{**defaults, **overrides})


def span_model(task: str) -> MuppetForMultiTask:
    torch.manual_seed(0)
    config = MuppetConfig(base_model_config=tiny_config(), heads={"span": {"type": "span"}}, tasks={task: "span"})
    return MuppetForMultiTask(config)


# ---- SQuAD ----


def test_normalize_answer_drops_case_punctuation_articles_and_extra_spaces():
    assert normalize_answer("  The Eiffel   Tower! ") == "eiffel tower"
    assert normalize_answer("An apple, a pie.") == "apple pie"
    # Articles go only as whole words, and punctuation inside a word joins its parts.
    assert normalize_answer("Theatre anthem") == "theatre anthem"
    assert normalize_answer("rock'n'roll") == "rocknroll"


def test_exact_match_and_f1_on_hand_cases():
    assert squad_exact_match("the Cat.", "cat") == 1.0
    assert squad_exact_match("cat sat", "cat") == 0.0
    # Prediction [cat, sat] against [cat, sat, down]: precision 1, recall 2/3.
    assert squad_f1("the cat sat", "a cat sat down") == pytest.approx(0.8)
    assert squad_f1("dog", "cat") == 0.0
    assert squad_f1("cat cat", "cat") == pytest.approx(2 * 0.5 * 1 / 1.5)


def test_squad_scores_take_the_best_gold_answer_and_report_percentages():
    scores = squad_scores(["the cat sat", "paris", "london"], [["a cat sat down", "dog"], ["Paris"], ["rome"]])
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (0.8 + 1.0 + 0.0) / 3)
    # An unanswerable question (no gold answer) is right only with the empty answer.
    assert squad_scores(["", "cat"], [[], []]) == {"exact_match": 50.0, "f1": 50.0}
    with pytest.raises(ValueError, match="2 predictions but 1"):
        squad_scores(["a", "b"], [["a"]])


def test_squad_scores_follow_the_official_v1_1_script_on_hand_checked_cases():
    # The official evaluate-v1.1.py: normalise (lowercase, drop punctuation, drop a/an/the, single spaces), then per
    # question the maximum exact match and the maximum token F1 over the gold answers, averaged and times 100.
    predictions = ["the Denver Broncos", "Broncos.", "in the late 1990s", ""]
    references = [
        # "denver broncos" == "denver broncos": EM 1, F1 1 (the article goes).
        ["Denver Broncos"],
        # "broncos" vs "denver broncos" (the full stop goes): EM 0; 1 shared token, P 1/1, R 1/2, F1 2/3.
        ["Denver Broncos"],
        # "in late 1990s" vs "late 1990s": 2 shared, P 2/3, R 1, F1 0.8; vs "1990s": P 1/3, R 1, F1 0.5;
        # vs "the 1990s" -> "1990s": F1 0.5 again. EM 0 against all three. Best F1 0.8.
        ["late 1990s", "the 1990s", "1990s"],
        # The empty prediction shares no token with a non-empty answer: EM 0, F1 0.
        ["Santa Clara, California"],
    ]
    scores = squad_scores(predictions, references)
    # EM (1 + 0 + 0 + 0) / 4 = 25%; F1 (1 + 2/3 + 0.8 + 0) / 4 = 61.67%.
    assert scores["exact_match"] == pytest.approx(25.0)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3 + 0.8 + 0) / 4)
    # Exact match and F1 take their maxima over the gold answers separately: "Levi's Stadium" matches the second
    # answer exactly, and its F1 against the first ("levis stadium in san francisco bay area", 7 tokens) is only
    # 2 * (2/2 * 2/7) / (1 + 2/7) = 4/9.
    assert squad_f1("Levi's Stadium", "Levi's Stadium in the San Francisco Bay Area") == pytest.approx(4 / 9)
    assert squad_scores(["Levi's Stadium"], [["Levi's Stadium in the San Francisco Bay Area", "Levi's Stadium"]]) == {
        "exact_match": 100.0,
        "f1": 100.0,
    }


def context_offsets(context: str) -> list[list[int]]:
    """Character offsets of the context's words, as a tokenizer's offset mapping would give them."""
    offsets, position = [], 0
    for word in context.split(" "):
        offsets.append([position, position + len(word)])
        position += len(word) + 1
    return offsets


def test_postprocess_picks_the_best_span_across_two_overlapping_windows():
    context = "Bob lives in Doha with a cat"
    words = context_offsets(context)  # Bob lives in Doha with a cat
    # Two windows of [CLS] question-token [SEP] + context words [SEP]: words 0-3, then words 2-6 (stride 2).
    first = [None, None, None, *words[0:4], None]
    second = [None, None, None, *words[2:7], None]
    start_1, end_1 = np.zeros(12), np.zeros(12)
    start_1[4], end_1[4] = 3.0, 3.0  # "lives": 6.0
    start_1[1], end_1[1] = 9.0, 9.0  # the question token scores higher but can never be an answer
    start_1[9:], end_1[9:] = 50.0, 50.0  # padding beyond the window (e.g. the Trainer's) is ignored
    start_2, end_2 = np.zeros(9), np.zeros(9)
    start_2[4], end_2[5] = 4.0, 3.5  # "Doha with": 7.5, the best
    start_2[6], end_2[4] = 5.0, 2.0  # end before start: not a span
    predictions = postprocess_span_predictions(
        [start_1, start_2], [end_1, end_2], ["q1", "q1"], [first, second], {"q1": context}
    )
    assert predictions == {"q1": "Doha with"}
    # Spans longer than max_answer_length are skipped: "Doha with" is two tokens, so the best one-token span wins.
    predictions = postprocess_span_predictions(
        [start_1, start_2], [end_1, end_2], ["q1", "q1"], [first, second], {"q1": context}, max_answer_length=1
    )
    assert predictions == {"q1": "lives"}


def test_postprocess_null_answer_when_it_beats_every_span():
    context = "Bob lives in Doha"
    offsets = [None, *context_offsets(context), None]
    start, end = np.zeros(6), np.zeros(6)
    start[0], end[0] = 5.0, 5.0
    start[2], end[2] = 1.0, 1.0
    arguments = ([start], [end], ["q"], [offsets], {"q": context})
    assert postprocess_span_predictions(*arguments) == {"q": "lives"}
    assert postprocess_span_predictions(*arguments, null_answers=True) == {"q": ""}


def test_trainer_squad_scoring_of_oracle_logits_is_perfect_despite_padding_order_and_repeats(tmp_path):
    tokenizer = tiny_tokenizer()
    spec = load_task_spec(TINY_QA)
    # A short max_length splits every context into several windows, not all of which hold the answer.
    validation = prepare_task(spec, tokenizer, max_length=32, doc_stride=6, splits=("validation",))["validation"]
    assert len(set(validation["example_id"])) < len(validation)
    model = span_model("tiny_qa")
    trainer = MuppetTrainer(
        model, arguments(tmp_path), processing_class=tokenizer, task_metrics={"tiny_qa": ["squad"]}
    )
    compute_metrics = trainer._task_compute_metrics("tiny_qa", validation)

    # As gathered by the Trainer: rows in any order, padded with -100 to the longest, the last ones repeated.
    rows = np.random.default_rng(0).permutation(len(validation))
    rows = np.concatenate([rows, rows[:2]])
    length = max(len(ids) for ids in validation["input_ids"]) + 3
    start_logits = np.full((len(rows), length), -100.0, dtype=np.float32)
    end_logits = start_logits.copy()
    for i, row in enumerate(rows):
        example = validation[int(row)]
        start_logits[i, : len(example["input_ids"])] = end_logits[i, : len(example["input_ids"])] = 0.0
        start_logits[i, example["start_positions"]] = end_logits[i, example["end_positions"]] = 10.0
    metrics = compute_metrics(EvalPrediction(predictions=(start_logits, end_logits), label_ids=rows))
    assert metrics == {"exact_match": 100.0, "f1": 100.0}


def test_evaluate_reports_squad_metrics_of_a_tiny_span_task(tmp_path):
    tokenizer = tiny_tokenizer()
    validation = prepare_task(load_task_spec(TINY_QA), tokenizer, max_length=32, doc_stride=6, splits=("validation",))[
        "validation"
    ]
    model = span_model("tiny_qa")
    trainer = MuppetTrainer(
        model, arguments(tmp_path), eval_dataset={"tiny_qa": validation}, processing_class=tokenizer
    )
    metrics = trainer.evaluate()
    assert np.isfinite(metrics["eval_tiny_qa_loss"])
    for name in ("exact_match", "f1"):
        assert 0.0 <= metrics[f"eval_tiny_qa_{name}"] <= 100.0
    # F1 credits partial overlap, so it is never below exact match.
    assert metrics["eval_tiny_qa_f1"] >= metrics["eval_tiny_qa_exact_match"]

    # An oracle pointing at each window's gold positions scores 100 through the whole path: prediction_step, the
    # Trainer's padding of windows of different lengths across batches, and post-processing.
    compute_loss = trainer.compute_loss

    def oracle_loss(model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = compute_loss(model, inputs, return_outputs=True)
        rows = torch.arange(inputs["input_ids"].shape[0])
        for name, positions in (("start_logits", "start_positions"), ("end_logits", "end_positions")):
            logits = torch.zeros_like(outputs[name]).masked_fill(inputs["attention_mask"] == 0, -1e4)
            logits[rows, inputs[positions]] = 10.0
            outputs[name] = logits
        return (loss, outputs) if return_outputs else loss

    trainer.compute_loss = oracle_loss
    metrics = trainer.evaluate()
    assert metrics["eval_tiny_qa_exact_match"] == metrics["eval_tiny_qa_f1"] == 100.0


def test_squad_asked_for_without_the_scoring_columns_fails_naming_the_task(tmp_path):
    dataset = datasets.Dataset.from_dict(
        {"input_ids": [[2, 5, 6, 3]], "attention_mask": [[1, 1, 1, 1]], "start_positions": [1], "end_positions": [2]}
    )
    model = span_model("qa")
    trainer = MuppetTrainer(model, arguments(tmp_path), task_metrics={"qa": ["squad"]})
    with pytest.raises(ValueError, match="'qa'.*offset_mapping"):
        trainer.evaluate({"qa": dataset})
    # Without an explicit request the head type's default is dropped, and the loss is still reported.
    trainer.task_metrics = {}
    assert set(trainer.evaluate({"qa": dataset})) >= {"eval_qa_loss"}


# ---- ROUGE ----


def test_rouge_on_hand_cases():
    scores = rouge_scores(["the cat sat on the mat"], ["The cat lay on the mat."])
    # Unigrams: 5 of 6 shared; bigrams: "the cat", "on the", "the mat" of 5; LCS "the cat on the mat" of 6.
    assert scores["rouge1"] == pytest.approx(100 * 5 / 6)
    assert scores["rouge2"] == pytest.approx(100 * 3 / 5)
    assert scores["rougeL"] == pytest.approx(100 * 5 / 6)
    # Word order matters to ROUGE-2 and ROUGE-L only.
    scores = rouge_scores(["c b a"], ["a b c"])
    assert scores == pytest.approx({"rouge1": 100.0, "rouge2": 0.0, "rougeL": 100 / 3})
    assert rouge_scores(["", "x y"], ["a b", "x y"]) == pytest.approx({"rouge1": 50.0, "rouge2": 50.0, "rougeL": 50.0})


def test_rouge_stemming():
    assert rouge_tokenize("Cats were RUNNING, quickly!") == ["cats", "were", "running", "quickly"]
    assert rouge_tokenize("Cats were RUNNING, quickly!", use_stemmer=True) == ["cat", "were", "run", "quickli"]
    assert rouge_scores(["cats running"], ["cat runs"])["rouge1"] == 0.0
    assert rouge_scores(["cats running"], ["cat runs"], use_stemmer=True)["rouge1"] == 100.0


def test_rouge_agrees_with_the_reference_implementation():
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    predictions = [
        "police killed the gunman in a shootout on tuesday",
        "the quick brown fox jumps over the lazy dog",
        "Markets fell sharply; investors were worried.",
    ]
    references = [
        "the gunman was shot dead by police on tuesday",
        "a quick brown dog outpaces the lazy fox jumping",
        "Investors worried as markets fall sharply",
    ]
    for use_stemmer in (False, True):
        scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=use_stemmer)
        expected = dict.fromkeys(("rouge1", "rouge2", "rougeL"), 0.0)
        for prediction, reference in zip(predictions, references, strict=True):
            for name, score in scorer.score(reference, prediction).items():
                expected[name] += 100 * score.fmeasure / len(predictions)
        assert rouge_scores(predictions, references, use_stemmer=use_stemmer) == pytest.approx(expected)


def test_evaluate_reports_rouge_of_a_few_greedy_summaries(tmp_path):
    tokenizer = tiny_tokenizer()
    sources = ["bob lives in doha with a cat.", "ann has a dog.", "eve lives in rome.", "dee has a fish."]
    targets = ["bob, doha", "ann dog", "eve rome", "dee fish"]
    features = tokenizer(sources)
    features["labels"] = tokenizer(text_target=targets)["input_ids"]
    dataset = datasets.Dataset.from_dict(dict(features))
    torch.manual_seed(0)
    model = MuppetForMultiTask(
        MuppetConfig(
            base_model_config=tiny_config("bart"), heads={"seq2seq": {"type": "seq2seq"}}, tasks={"summ": "seq2seq"}
        )
    )
    trainer = MuppetTrainer(
        model,
        arguments(tmp_path, per_device_eval_batch_size=2),
        processing_class=tokenizer,
        generation_max_examples=3,
        generation_max_new_tokens=4,
    )
    generated = []
    generate = model.generate
    model.generate = lambda **kwargs: generated.append(kwargs["input_ids"].shape[0]) or generate(**kwargs)
    metrics = trainer.evaluate({"summ": dataset})
    assert np.isfinite(metrics["eval_summ_loss"])
    for name in ("rouge1", "rouge2", "rougeL"):
        assert 0.0 <= metrics[f"eval_summ_{name}"] <= 100.0
    assert sum(generated) == 3, "only the first generation_max_examples rows are summarised"

    # An oracle that "generates" each target scores 100: rows of different lengths are padded and decoded, and the
    # fourth row, never generated, is left out of the mean.
    target_of = {tuple(ids): labels for ids, labels in zip(features["input_ids"], features["labels"], strict=True)}

    def oracle_generate(input_ids, **kwargs):
        rows = [[2, *target_of[tuple(ids[ids != 0].tolist())]] for ids in input_ids]
        return torch.nn.utils.rnn.pad_sequence([torch.tensor(row) for row in rows], batch_first=True)

    model.generate = oracle_generate
    metrics = trainer.evaluate({"summ": dataset})
    assert {name: metrics[f"eval_summ_{name}"] for name in ("rouge1", "rouge2", "rougeL")} == dict.fromkeys(
        ("rouge1", "rouge2", "rougeL"), 100.0
    )


# ---- Tagging ----

NER_TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def test_tagging_scores_count_whole_entities_and_ignore_unlabelled_positions():
    # "John Smith lives in Paris" and "New York" (padded with -100, where the predictions are ignored).
    labels = np.array([[1, 2, 0, 0, 3], [3, 4, -100, -100, -100]])
    # PER cut short ("John" alone), "in" taken for a place, Paris and New York right.
    predictions = np.array([[1, 0, 0, 3, 3], [3, 4, 1, 2, 1]])
    scores = tagging_scores(predictions, labels, NER_TAGS)
    # Gold entities: PER John Smith, LOC Paris, LOC New York (3). Predicted: PER John, LOC in, LOC Paris,
    # LOC New York (4). Right: Paris and New York (2). P 2/4, R 2/3, F1 2PR/(P+R) = 4/7.
    # Token accuracy: 5 of the 7 labelled positions ("Smith" and "in" are wrong), though entity F1 is far lower.
    assert scores == pytest.approx({"precision": 0.5, "recall": 2 / 3, "f1": 4 / 7, "accuracy": 5 / 7})


def test_tagging_scores_fall_back_to_token_accuracy_without_chunk_tags():
    labels = np.array([[0, 1, 2, -100]])
    predictions = np.array([[0, 1, 1, 2]])
    for label_names in (["NOUN", "VERB", "DET"], None):
        assert tagging_scores(predictions, labels, label_names) == {"accuracy": pytest.approx(2 / 3)}
    with pytest.raises(ValueError, match="no labelled positions"):
        tagging_scores(predictions, np.full((1, 4), -100), NER_TAGS)


def test_evaluate_reports_entity_scores_of_a_bio_tagging_task(tmp_path):
    torch.manual_seed(0)
    heads = {
        "ner": {"type": "token_classification", "label_names": NER_TAGS},
        "pos": {"type": "token_classification", "label_names": ["NOUN", "VERB", "DET"]},
    }
    model = MuppetForMultiTask(
        MuppetConfig(base_model_config=tiny_config(), heads=heads, tasks={"ner": "ner", "pos": "pos"})
    )
    rng = np.random.default_rng(0)
    lengths = [5, 7, 4, 6]
    dataset = datasets.Dataset.from_dict(
        {
            "input_ids": [rng.integers(5, 99, size=n).tolist() for n in lengths],
            "attention_mask": [[1] * n for n in lengths],
            "labels": [[-100, *rng.integers(0, 3, size=n - 2).tolist(), -100] for n in lengths],
        }
    )
    trainer = MuppetTrainer(model, arguments(tmp_path))
    metrics = trainer.evaluate({"ner": dataset, "pos": dataset})
    for name in ("precision", "recall", "f1", "accuracy"):
        assert 0.0 <= metrics[f"eval_ner_{name}"] <= 1.0
    # Part-of-speech tags have no entities: token accuracy only.
    assert "eval_pos_accuracy" in metrics and "eval_pos_f1" not in metrics
