"""Metrics of predictions, computed offline: argmax scores, SQuAD exact match and F1 (with span post-processing), ROUGE
and tagging, and the adapters that score a Trainer `EvalPrediction` with them (chosen by each head's
`metric_function`, `muppet_hf.heads`).

- Argmax scores (accuracy, F1, MCC, Pearson/Spearman) from scikit-learn and scipy.

- SQuAD v1.1 (Rajpurkar et al., arXiv 1606.05250), written out here: `evaluate.load("squad")` fetches its script
  from the Hub, and the official definition is short. Answers are compared after normalisation (lowercase, no
  punctuation, no articles, single spaces); a prediction scores its best match over the gold answers.
- ROUGE (Lin, 2004) from the `rouge-score` package: F-measure of unigram (ROUGE-1) and bigram (ROUGE-2) overlap and of
  the longest common subsequence of the whole texts (ROUGE-L).
- Tagging from `seqeval`: entity-level precision, recall and F1 of chunk (BIO) tags, and token accuracy.

SQuAD and ROUGE report percentages (0-100), as the official SQuAD script and summarization papers do; tagging
reports fractions, like the trainer's other argmax metrics.
"""

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from .heads import HEAD_CLASSES
from .losses import IGNORE_INDEX


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
# As summarisation papers and the Hugging Face examples do, ROUGE compares Porter-stemmed words.
ROUGE_USE_STEMMER = True
# Metrics computed from argmax predictions (or regression values) by `compute_task_metrics`.
SUPPORTED_METRICS = ("accuracy", "f1", "macro_f1", "mcc", "pearson", "spearman")
# Chunk tags: outside, or a B(egin)/I(nside)/E(nd)/S(ingle) prefix and an entity type.
_CHUNK_TAG = re.compile(r"O|[BIES]-.+")


# ---- Argmax scores ----


def compute_task_metrics(predictions: np.ndarray, labels: np.ndarray, metric_names: list[str]) -> dict[str, float]:
    """Offline metrics of one task with scikit-learn / scipy; positions labelled -100 (padding) are ignored.

    Args:
        predictions (`np.ndarray`): predicted class ids (or values, for regression), any shape.
        labels (`np.ndarray`): gold labels, same shape.
        metric_names (`list[str]`): names from `SUPPORTED_METRICS`; other names are skipped.
    """
    # Imported here: scikit-learn and scipy take seconds to import, which only evaluation needs.
    from scipy import stats
    from sklearn import metrics as sk_metrics

    predictions, labels = np.asarray(predictions).reshape(-1), np.asarray(labels).reshape(-1)
    keep = labels != IGNORE_INDEX
    predictions, labels = predictions[keep], labels[keep]
    results = {}
    for name in metric_names:
        if name == "accuracy":
            results[name] = float(sk_metrics.accuracy_score(labels, predictions))
        elif name == "f1":
            average = "binary" if len(np.unique(labels)) <= 2 and set(np.unique(labels)) <= {0, 1} else "macro"
            results[name] = float(sk_metrics.f1_score(labels, predictions, average=average, zero_division=0))
        elif name == "macro_f1":
            results[name] = float(sk_metrics.f1_score(labels, predictions, average="macro", zero_division=0))
        elif name == "mcc":
            results[name] = float(sk_metrics.matthews_corrcoef(labels, predictions))
        elif name in ("pearson", "spearman"):
            # A constant prediction has no correlation; report 0 rather than NaN (early, untrained heads).
            if np.std(predictions) == 0 or np.std(labels) == 0:
                results[name] = 0.0
            elif name == "pearson":
                results[name] = float(stats.pearsonr(predictions, labels)[0])
            else:
                results[name] = float(stats.spearmanr(predictions, labels)[0])
    return results


# ---- SQuAD ----


def normalize_answer(text: str) -> str:
    """Lowercases, drops punctuation and the articles a/an/the, and collapses whitespace (the SQuAD rule)."""
    text = "".join(char for char in text.lower() if char not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def squad_exact_match(prediction: str, answer: str) -> float:
    """1.0 when the normalised prediction equals the normalised answer, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(answer))


def squad_f1(prediction: str, answer: str) -> float:
    """Harmonic mean of the precision and recall of the normalised tokens the prediction shares with the answer."""
    predicted, gold = normalize_answer(prediction).split(), normalize_answer(answer).split()
    if not predicted or not gold:
        # SQuAD 2.0's rule for an empty answer (no answer, or only articles and punctuation): it matches only
        # another empty one. SQuAD 1.1's script scores this case 0 even when both are empty.
        return float(predicted == gold)
    shared = sum((Counter(predicted) & Counter(gold)).values())
    if shared == 0:
        return 0.0
    precision, recall = shared / len(predicted), shared / len(gold)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean exact match and F1 of predicted answers, in percent.

    Args:
        predictions (`Sequence[str]`): one predicted answer per question.
        references (`Sequence[Sequence[str]]`): the gold answers of each question; each prediction scores its best
            match among them. An empty list marks an unanswerable question (SQuAD 2.0): only `""` is right.

    Returns:
        `dict[str, float]`: `exact_match` and `f1`, both between 0 and 100.
    """
    if len(predictions) != len(references):
        raise ValueError(f"squad_scores: {len(predictions)} predictions but {len(references)} reference lists")
    if not predictions:
        raise ValueError("squad_scores: no predictions to score")
    exact = f1 = 0.0
    for prediction, answers in zip(predictions, references, strict=True):
        answers = list(answers) or [""]
        exact += max(squad_exact_match(prediction, answer) for answer in answers)
        f1 += max(squad_f1(prediction, answer) for answer in answers)
    return {"exact_match": 100.0 * exact / len(predictions), "f1": 100.0 * f1 / len(predictions)}


def _best_span(
    start_logits: np.ndarray, end_logits: np.ndarray, context_tokens: np.ndarray, n_best: int, max_answer_length: int
) -> tuple[float, int, int] | None:
    """The highest `start + end` score of a window over spans of context tokens: `(score, first, last)`, or None."""
    if context_tokens.size == 0:
        return None
    # Only the n_best most likely starts and ends are paired: the best valid span is almost always among them, and
    # pairing every token with every token would cost length² per window.
    starts = context_tokens[np.argsort(-start_logits[context_tokens], kind="stable")[:n_best]]
    ends = context_tokens[np.argsort(-end_logits[context_tokens], kind="stable")[:n_best]]
    lengths = ends[None, :] - starts[:, None] + 1
    valid = (lengths >= 1) & (lengths <= max_answer_length)
    if not valid.any():
        return None
    scores = np.where(valid, start_logits[starts][:, None] + end_logits[ends][None, :], -np.inf)
    row, column = np.unravel_index(int(np.argmax(scores)), scores.shape)
    return float(scores[row, column]), int(starts[row]), int(ends[column])


def postprocess_span_predictions(
    start_logits: Sequence[np.ndarray],
    end_logits: Sequence[np.ndarray],
    example_ids: Sequence[str],
    offset_mappings: Sequence[Sequence[Sequence[int] | None]],
    contexts: Mapping[str, str],
    n_best: int = 20,
    max_answer_length: int = 30,
    null_answers: bool = False,
) -> dict[str, str]:
    """Maps the start/end logits of every window back to the best answer text of each example.

    A long context is split into overlapping windows (see `prepare_task`); each window proposes its best span of
    context tokens, and the example's answer is the highest-scoring proposal of all its windows, cut from the
    original context by character offsets (so casing and spacing are the source's, not the tokenizer's).

    Args:
        start_logits, end_logits (`Sequence[np.ndarray]`): per window, a score per token position. Rows may be longer
            than the window (padding, e.g. the Trainer's -100 between batches): only positions with an offset count.
        example_ids (`Sequence[str]`): per window, the id of its example.
        offset_mappings (`Sequence[Sequence[Sequence[int] | None]]`): per window, the `(start, end)` characters of each
            token in the context, `None` for question and special tokens, which can never be part of an answer.
        contexts (`Mapping[str, str]`): example id -> its context.
        n_best (`int`, *optional*, defaults to 20): starts and ends considered per window.
        max_answer_length (`int`, *optional*, defaults to 30): longest answer, in tokens.
        null_answers (`bool`, *optional*, defaults to `False`): allow the empty answer (SQuAD 2.0). Its score is
            `start + end` of the window's first token, where preprocessing points windows without an answer.

    Returns:
        `dict[str, str]`: example id -> predicted answer, in order of first appearance; `""` where no window has a
        valid span (or, with `null_answers`, where no answer scores higher).
    """
    if not len(start_logits) == len(end_logits) == len(example_ids) == len(offset_mappings):
        raise ValueError(
            "postprocess_span_predictions: start_logits, end_logits, example_ids and offset_mappings need one entry "
            f"per window; got {len(start_logits)}, {len(end_logits)}, {len(example_ids)}, {len(offset_mappings)}"
        )
    best: dict[str, tuple[float, str]] = {}
    null_scores: dict[str, float] = {}
    for start, end, example_id, offsets in zip(start_logits, end_logits, example_ids, offset_mappings, strict=True):
        start, end = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
        length = min(len(offsets), start.shape[0], end.shape[0])
        context_tokens = np.asarray([i for i in range(length) if offsets[i] is not None], dtype=np.int64)
        if null_answers:
            # The window least sure that there is no answer speaks for the example (any window may hold it).
            null_scores[example_id] = min(null_scores.get(example_id, np.inf), float(start[0] + end[0]))
        span = _best_span(start, end, context_tokens, n_best, max_answer_length)
        if span is None:
            continue
        score, first, last = span
        if example_id not in best or score > best[example_id][0]:
            best[example_id] = (score, contexts[example_id][offsets[first][0] : offsets[last][1]])
    predictions = {}
    for example_id in dict.fromkeys(example_ids):
        score, text = best.get(example_id, (-np.inf, ""))
        predictions[example_id] = "" if null_answers and null_scores[example_id] > score else text
    return predictions


# ---- ROUGE ----


def rouge_tokenize(text: str, use_stemmer: bool = False) -> list[str]:
    """The tokens ROUGE compares: `rouge_score`'s default tokenizer (lowercased runs of letters and digits; with
    `use_stemmer`, words longer than three characters Porter-stemmed, as the reference ROUGE script does)."""
    from rouge_score.tokenizers import DefaultTokenizer

    return DefaultTokenizer(use_stemmer=use_stemmer).tokenize(text)


def rouge_scores(predictions: Sequence[str], references: Sequence[str], use_stemmer: bool = False) -> dict[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F-measures of predictions against one reference each, in percent.

    Scored by Google's `rouge-score` package (the reimplementation of the ROUGE-1.5.5 script that summarization papers
    and `evaluate`'s `rouge` use). ROUGE-L is the longest common subsequence of the whole texts (not the per-sentence
    `rougeLsum`).

    Args:
        predictions (`Sequence[str]`): generated texts.
        references (`Sequence[str]`): the reference of each prediction.
        use_stemmer (`bool`, *optional*, defaults to `False`): Porter-stem words longer than three characters.

    Returns:
        `dict[str, float]`: `rouge1`, `rouge2` and `rougeL`, each between 0 and 100.
    """
    if len(predictions) != len(references):
        raise ValueError(f"rouge_scores: {len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise ValueError("rouge_scores: no predictions to score")
    # Imported here: rouge_score pulls in nltk and absl, seconds of import that only summarization needs.
    from rouge_score.rouge_scorer import RougeScorer

    scorer = RougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for prediction, reference in zip(predictions, references, strict=True):
        for name, score in scorer.score(target=reference, prediction=prediction).items():
            totals[name] += score.fmeasure
    return {name: 100.0 * total / len(predictions) for name, total in totals.items()}


# ---- Tagging ----


def is_bio_tagset(label_names: Sequence[str] | None) -> bool:
    """Whether tag names follow a chunk scheme seqeval reads (`O`, `B-PER`, `I-PER`; also `E-`/`S-` of IOBES)."""
    return bool(label_names) and all(_CHUNK_TAG.fullmatch(name) for name in label_names)


def tagging_scores(predictions: np.ndarray, labels: np.ndarray, label_names: Sequence[str] | None) -> dict[str, float]:
    """Entity-level precision, recall and F1 of a tagging task (seqeval), with token accuracy as a secondary metric.

    An entity counts only when its type and both its boundaries are right (the CoNLL-2000/2003 rule that NER papers
    report); token accuracy is dominated by `O` tags and is kept for comparison. When the tags are not chunk tags
    (e.g. part-of-speech tags), there are no entities to score and only token accuracy is returned. Values are
    fractions (0-1), like the trainer's other argmax metrics.

    Args:
        predictions (`np.ndarray`): predicted tag ids, `(sequences, positions)`.
        labels (`np.ndarray`): gold tag ids, same shape; positions labelled -100 (special tokens, word pieces after a
            word's first, padding) are left out of both.
        label_names (`Sequence[str]`, *optional*): the tag of each id (`TaskSpec.label_names`), e.g.
            `["O", "B-PER", "I-PER"]`; see [`is_bio_tagset`].

    Returns:
        `dict[str, float]`: `precision`, `recall`, `f1` (micro-averaged over entities) and `accuracy` of chunk tags;
        `accuracy` only otherwise.
    """
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape or predictions.ndim != 2:
        raise ValueError(
            f"tagging_scores: predictions {predictions.shape} and labels {labels.shape} must be the same "
            "(sequences, positions) shape"
        )
    keep = labels != IGNORE_INDEX
    if not keep.any():
        raise ValueError("tagging_scores: no labelled positions to score")
    accuracy = float((predictions[keep] == labels[keep]).mean())
    if not is_bio_tagset(label_names):
        return {"accuracy": accuracy}
    from seqeval.metrics import f1_score, precision_score, recall_score

    names = list(label_names)
    predicted = [[names[tag] for tag in row[mask]] for row, mask in zip(predictions, keep, strict=True)]
    gold = [[names[tag] for tag in row[mask]] for row, mask in zip(labels, keep, strict=True)]
    return {
        "precision": float(precision_score(gold, predicted, zero_division=0)),
        "recall": float(recall_score(gold, predicted, zero_division=0)),
        "f1": float(f1_score(gold, predicted, zero_division=0)),
        "accuracy": accuracy,
    }


# ---- Scoring a Trainer `EvalPrediction` (the `compute_metrics` a head's `metric_function` returns) ----


def scores_of_prediction(prediction, metric_names: list[str]) -> dict[str, float]:
    """`compute_task_metrics` of argmax predictions (or regression values) against their labels."""
    return compute_task_metrics(prediction.predictions, prediction.label_ids, metric_names)


def tagging_of_prediction(prediction, label_names: list[str] | None, metric_names: list[str]) -> dict[str, float]:
    """`seqeval` entity scores and token accuracy, plus any other argmax metric the task asked for."""
    predictions, labels = prediction.predictions, prediction.label_ids
    return {
        **compute_task_metrics(predictions, labels, metric_names),
        **tagging_scores(predictions, labels, label_names),
    }


def squad_of_prediction(prediction, dataset) -> dict[str, float]:
    """SQuAD exact match and F1 of a span task, from the start/end logits of its windows (rows of `dataset`).

    `dataset` holds the span head's scoring columns (`example_id`, `offset_mapping`, `context`, `answers`).
    """
    start_logits, end_logits = prediction.predictions
    # Rows come from every process, padded with -100 to the longest window; a row may repeat where the last batch
    # was evened out across processes.
    rows, first = np.unique(np.asarray(prediction.label_ids).reshape(-1), return_index=True)
    windows = dataset[rows.tolist()]
    contexts, answers = {}, {}
    for example_id, context, gold in zip(windows["example_id"], windows["context"], windows["answers"], strict=True):
        contexts[example_id], answers[example_id] = context, gold["text"]
    predicted = postprocess_span_predictions(
        start_logits[first],
        end_logits[first],
        windows["example_id"],
        windows["offset_mapping"],
        contexts,
        # Tasks with unanswerable questions (SQuAD 2.0) may predict the empty answer.
        null_answers=any(not texts for texts in answers.values()),
    )
    return squad_scores([predicted[example_id] for example_id in answers], list(answers.values()))


def rouge_of_prediction(prediction, tokenizer, pad_token_id: int) -> dict[str, float]:
    """ROUGE of the generated summaries against the targets; rows that were not generated (all -100) are skipped."""
    generated = np.asarray(prediction.predictions)
    targets = np.asarray(prediction.label_ids)
    chosen = (generated != IGNORE_INDEX).any(axis=-1)
    if not chosen.any():
        return {}
    generated = np.where(generated[chosen] == IGNORE_INDEX, pad_token_id, generated[chosen])
    targets = np.where(targets[chosen] == IGNORE_INDEX, pad_token_id, targets[chosen])
    summaries = tokenizer.batch_decode(generated.tolist(), skip_special_tokens=True)
    references = tokenizer.batch_decode(targets.tolist(), skip_special_tokens=True)
    return rouge_scores(summaries, references, use_stemmer=ROUGE_USE_STEMMER)


# ---- Scale ----

# What the trainer reports as fractions (0-1): scikit-learn/scipy argmax metrics and seqeval. SQuAD and ROUGE (heads
# with `percent_scores`: span and seq2seq) are percentages already; losses and counts are no scores.
FRACTION_METRICS = ("accuracy", "f1", "macro_f1", "mcc", "pearson", "spearman", "precision", "recall")


def metrics_in_percent(metrics: Mapping[str, float], head_type: str | None) -> dict[str, float]:
    """One task's evaluation metrics, every score in percent (points), as the paper's tables report them.

    Args:
        metrics (`Mapping[str, float]`): metric name -> value, as `MuppetTrainer.evaluate` reports them for the task
            (`eval_<task>_` taken off).
        head_type (`str`, *optional*): the task's head type; the scores of heads with `percent_scores` (span,
            seq2seq) are left as they are (an unknown head type counts as an argmax head).

    Returns:
        `dict[str, float]`: the names of `FRACTION_METRICS` times 100; other entries (`loss`, counts) unchanged.
    """
    if head_type in HEAD_CLASSES and HEAD_CLASSES[head_type].percent_scores:
        return dict(metrics)
    return {name: 100.0 * value if name in FRACTION_METRICS else value for name, value in metrics.items()}


__all__ = [
    "compute_task_metrics",
    "is_bio_tagset",
    "metrics_in_percent",
    "normalize_answer",
    "postprocess_span_predictions",
    "rouge_of_prediction",
    "rouge_scores",
    "rouge_tokenize",
    "scores_of_prediction",
    "squad_exact_match",
    "squad_f1",
    "squad_of_prediction",
    "squad_scores",
    "tagging_of_prediction",
    "tagging_scores",
]
