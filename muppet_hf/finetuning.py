"""Fine-tuning protocol pieces: the score that judges a fine-tuned model, and model selection on validation.

Low-resource fine-tuning is unstable and slow to start: with a few dozen examples, three epochs are a handful of
optimizer updates, too few for a fresh head to move (Mosbach et al., arXiv 2006.04884; Zhang et al., arXiv
2006.05987, both find that small datasets need more updates than the usual 3 epochs, not fewer). The protocol
therefore trains for a number of *updates* whatever the training set's size, evaluates on validation every so often,
and keeps the weights of the best evaluation ([`BestModelCallback`]); it stops early once validation has not improved
for a while. The Trainer's own `load_best_model_at_end` does the same through checkpoint folders (full optimizer state
on disk at every evaluation); here the best weights are a copy in memory, so nothing is written until the end.
"""

import logging

import datasets
import torch
from transformers import TrainerCallback

from .heads import HEAD_CLASSES, head_class


logger = logging.getLogger(__name__)

# The score of each head type on a held-out task (`MuppetHead.held_out_metric`): the key `MuppetTrainer.evaluate`
# reports (`<split>_<task>_<key>`). `finetune_metrics.json` holds it in points (`muppet_hf.metrics.metrics_in_percent`),
# so that tasks share one 0-100 scale. Every one of them is better when higher.
PRIMARY_METRICS = {name: cls.held_out_metric for name, cls in HEAD_CLASSES.items() if cls.held_out_metric is not None}


def primary_metric(head_type: str) -> str:
    """The held-out metric of a head type; `ValueError` for a head type without one."""
    if head_type not in PRIMARY_METRICS:
        raise ValueError(
            f"head type {head_type!r} has no held-out metric here; use a task with a {sorted(PRIMARY_METRICS)} head"
        )
    return PRIMARY_METRICS[head_type]


def metric_to_compute(head_type: str) -> str:
    """The name to ask `MuppetTrainer` for so that it reports the primary metric (`squad` gives span `f1`)."""
    return head_class(head_type).decoded_metric or primary_metric(head_type)


def guess_score(head_type: str, dataset: datasets.Dataset) -> float | None:
    """The accuracy of a guess that ignores the input, the floor a fine-tuned model must clear on `dataset`.

    Classification and tagging: the majority class's (tag's) share of the labels. Multiple choice: the mean of
    1 / number of choices (a uniform guess). `None` for other head types (span F1 has no such floor) and for an empty
    split. Each head class says how (`MuppetHead.guess_score`).
    """
    return head_class(head_type).guess_score(dataset) if len(dataset) else None


class BestModelCallback(TrainerCallback):
    """Keeps the weights of the best evaluation in memory, restores them when training ends, and stops early.

    Args:
        metric_key (`str`): the key of the evaluation metrics to maximise, e.g. `eval_presuppositions_as_nli_accuracy`.
        patience (`int`, *optional*): stop training after this many evaluations in a row without improvement; `None`
            trains the whole budget.

    After training, `best_step` and `best_score` say which evaluation won (`None` if none ran) and `evaluations`
    lists every `(step, score)`. Ties keep the earlier weights: fewer updates for the same validation score.
    """

    def __init__(self, metric_key: str, patience: int | None = None):
        if patience is not None and patience < 1:
            raise ValueError(f"BestModelCallback: `patience` must be at least 1 or None, got {patience}")
        self.metric_key = metric_key
        self.patience = patience
        self.best_score: float | None = None
        self.best_step: int | None = None
        self.evaluations: list[tuple[int, float]] = []
        self._best_state: dict[str, torch.Tensor] | None = None
        self._since_best = 0
        self._training = False

    def on_train_begin(self, args, state, control, **kwargs):
        self._training = True

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        # Evaluations after training (the final scores of each split) select nothing.
        if not self._training:
            return control
        if metrics is None or self.metric_key not in metrics:
            raise ValueError(
                f"BestModelCallback: the evaluation reported no {self.metric_key!r} (got {sorted(metrics or {})}); "
                "the task must compute its primary metric"
            )
        score = float(metrics[self.metric_key])
        self.evaluations.append((state.global_step, score))
        if self.best_score is None or score > self.best_score:
            self.best_score, self.best_step, self._since_best = score, state.global_step, 0
            # A copy on the CPU: the weights of a small encoder (MiniLM: 90 MB), not the optimizer state.
            self._best_state = {
                name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()
            }
        else:
            self._since_best += 1
            if self.patience is not None and self._since_best >= self.patience:
                logger.info(
                    "early stop at step %d: %s has not improved on %.4f (step %d) for %d evaluations",
                    state.global_step,
                    self.metric_key,
                    self.best_score,
                    self.best_step,
                    self._since_best,
                )
                control.should_training_stop = True
        return control

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self._training = False
        if self._best_state is None:
            return
        model.load_state_dict(self._best_state)
        logger.info("restored the weights of step %d (%s = %.4f)", self.best_step, self.metric_key, self.best_score)
        self._best_state = None


__all__ = ["PRIMARY_METRICS", "BestModelCallback", "guess_score", "metric_to_compute", "primary_metric"]
