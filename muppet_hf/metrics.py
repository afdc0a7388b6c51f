"""Metrics of decoded text, computed offline: SQuAD exact match and F1 (with span post-processing) and ROUGE.

`evaluate.load("squad")` and `evaluate.load("rouge")` fetch their scripts from the Hub, so the definitions are
written out here. Both report percentages (0-100), as the official SQuAD script and summarization papers do.

- SQuAD v1.1 (Rajpurkar et al., arXiv 1606.05250): answers are compared after normalisation (lowercase, no
  punctuation, no articles, single spaces); a prediction scores its best match over the gold answers.
- ROUGE (Lin, 2004): F-measure of unigram (ROUGE-1) and bigram (ROUGE-2) overlap and of the longest common
  subsequence of the whole texts (ROUGE-L), on lowercased alphanumeric tokens, optionally Porter-stemmed.
"""

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)
_ROUGE_TOKEN = re.compile(r"[a-z0-9]+")


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


def rouge_tokenize(text: str, stemmer=None) -> list[str]:
    """Lowercased runs of letters and digits; with a stemmer (e.g. `nltk.stem.PorterStemmer()`), words longer than
    three characters are stemmed, as the reference ROUGE implementation does."""
    tokens = _ROUGE_TOKEN.findall(text.lower())
    if stemmer is None:
        return tokens
    return [stemmer.stem(token) if len(token) > 3 else token for token in tokens]


def _f_measure(overlap: int, predicted: int, reference: int) -> float:
    if overlap == 0:
        return 0.0
    precision, recall = overlap / predicted, overlap / reference
    return 2 * precision * recall / (precision + recall)


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _lcs_length(first: list[str], second: list[str]) -> int:
    """Length of the longest common subsequence, by dynamic programming over one row of the table."""
    if len(second) > len(first):
        first, second = second, first
    row = [0] * (len(second) + 1)
    for token in first:
        diagonal = 0  # row[j - 1] of the previous row
        for j, other in enumerate(second, start=1):
            above = row[j]
            row[j] = diagonal + 1 if token == other else max(above, row[j - 1])
            diagonal = above
    return row[-1]


def rouge_scores(predictions: Sequence[str], references: Sequence[str], use_stemmer: bool = False) -> dict[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F-measures of predictions against one reference each, in percent.

    ROUGE-L is the longest common subsequence of the whole texts (not the per-sentence `rougeLsum`).

    Args:
        predictions (`Sequence[str]`): generated texts.
        references (`Sequence[str]`): the reference of each prediction.
        use_stemmer (`bool`, *optional*, defaults to `False`): Porter-stem words longer than three characters
            (`nltk.stem.PorterStemmer`, which needs no downloaded data).

    Returns:
        `dict[str, float]`: `rouge1`, `rouge2` and `rougeL`, each between 0 and 100.
    """
    if len(predictions) != len(references):
        raise ValueError(f"rouge_scores: {len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise ValueError("rouge_scores: no predictions to score")
    stemmer = None
    if use_stemmer:
        from nltk.stem import PorterStemmer

        stemmer = PorterStemmer()
    totals = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for prediction, reference in zip(predictions, references, strict=True):
        predicted, gold = rouge_tokenize(prediction, stemmer), rouge_tokenize(reference, stemmer)
        for n in (1, 2):
            predicted_ngrams, gold_ngrams = _ngrams(predicted, n), _ngrams(gold, n)
            overlap = sum((predicted_ngrams & gold_ngrams).values())
            totals[f"rouge{n}"] += _f_measure(overlap, sum(predicted_ngrams.values()), sum(gold_ngrams.values()))
        totals["rougeL"] += _f_measure(_lcs_length(predicted, gold), len(predicted), len(gold))
    return {name: 100.0 * total / len(predictions) for name, total in totals.items()}


__all__ = [
    "normalize_answer",
    "postprocess_span_predictions",
    "rouge_scores",
    "rouge_tokenize",
    "squad_exact_match",
    "squad_f1",
    "squad_scores",
]
