"""The fine-tuning protocol's model selection (`muppet_hf.finetuning`), with a toy module and hand-made scores."""

import datasets
import pytest
import torch
from torch import nn
from transformers import TrainerControl, TrainerState

from muppet_hf.finetuning import BestModelCallback, guess_score, metric_to_compute, primary_metric


def evaluate(callback: BestModelCallback, model: nn.Module, step: int, score: float) -> TrainerControl:
    state = TrainerState(global_step=step)
    metrics = {"eval_toy_accuracy": score}
    return callback.on_evaluate(None, state, TrainerControl(), metrics=metrics, model=model)


def test_keeps_the_best_weights_restores_them_and_stops_after_patience():
    model = nn.Linear(2, 2)
    callback = BestModelCallback("eval_toy_accuracy", patience=2)
    callback.on_train_begin(None, TrainerState(), TrainerControl())
    weights = {}
    for step, score in ((10, 0.5), (20, 0.8), (30, 0.8), (40, 0.6)):
        with torch.no_grad():
            model.weight.fill_(step)
        weights[step] = model.weight.clone()
        control = evaluate(callback, model, step, score)
        # A tie keeps the earlier weights; the second evaluation in a row without a gain stops training.
        assert control.should_training_stop == (step == 40)
    assert (callback.best_step, callback.best_score) == (20, 0.8)
    assert callback.evaluations == [(10, 0.5), (20, 0.8), (30, 0.8), (40, 0.6)]
    callback.on_train_end(None, TrainerState(), TrainerControl(), model=model)
    assert torch.equal(model.weight, weights[20])
    # Evaluations after training (final scores of each split) change nothing.
    evaluate(callback, model, 40, 1.0)
    assert callback.best_score == 0.8


def test_without_patience_trains_on_and_a_missing_metric_is_an_error():
    callback = BestModelCallback("eval_toy_accuracy")
    callback.on_train_begin(None, TrainerState(), TrainerControl())
    model = nn.Linear(2, 2)
    assert not any(evaluate(callback, model, step, 1.0 - step).should_training_stop for step in range(5))
    with pytest.raises(ValueError, match="eval_toy_accuracy"):
        callback.on_evaluate(None, TrainerState(), TrainerControl(), metrics={"eval_toy_loss": 1.0}, model=model)
    with pytest.raises(ValueError, match="patience"):
        BestModelCallback("eval_toy_accuracy", patience=0)


def test_primary_metric_of_each_head_type():
    assert primary_metric("classification") == "accuracy"
    assert primary_metric("span") == "f1" and metric_to_compute("span") == "squad"
    assert metric_to_compute("token_classification") == "accuracy"
    with pytest.raises(ValueError, match="seq2seq"):
        primary_metric("seq2seq")


def test_guess_score_is_the_majority_share_or_a_uniform_guess():
    labels = datasets.Dataset.from_dict({"labels": [0, 1, 1, 1]})
    assert guess_score("classification", labels) == 0.75
    # Tagging: word-piece continuations (-100) are not tags.
    tags = datasets.Dataset.from_dict({"labels": [[-100, 2, -100, 0], [-100, 2, 2, -100]]})
    assert guess_score("token_classification", tags) == 0.75
    # Multiple choice: one example with 2 choices, one with 4.
    choices = datasets.Dataset.from_dict({"input_ids": [[[1, 2], [1, 3]], [[1], [2], [3], [4]]]})
    assert guess_score("multiple_choice", choices) == pytest.approx((1 / 2 + 1 / 4) / 2)
    assert guess_score("span", labels) is None
    # Regression inherits the classification head's layers, not its majority-class floor or its accuracy.
    assert guess_score("regression", datasets.Dataset.from_dict({"labels": [0.5, 0.5, 1.0]})) is None
    with pytest.raises(ValueError, match="no held-out metric"):
        primary_metric("regression")
    assert guess_score("classification", labels.select([])) is None
