"""Row converters for tasks whose source layout a YAML column mapping cannot express.

A hook is referenced by name from a task's YAML (`hook: copa`). It takes a batch of source rows
(`dict[str, list]`, as `datasets.Dataset.map(batched=True)` passes them) and returns the canonical
columns of the task's family (see `docs/task_schema.md`). Rows a hook cannot use are dropped by
returning shorter lists.
"""

from collections.abc import Callable


HookFn = Callable[[dict[str, list]], dict[str, list]]
HOOKS: dict[str, HookFn] = {}


def register_hook(name: str) -> Callable[[HookFn], HookFn]:
    def decorator(fn: HookFn) -> HookFn:
        if name in HOOKS:
            raise ValueError(f"hook {name!r} is registered twice")
        HOOKS[name] = fn
        return fn

    return decorator


# SuperGLUE -----------------------------------------------------------------------------------------------------------


def _star_span(text: str, start: int, end: int) -> str:
    """Wraps `text[start:end]` in asterisks, or returns `text` unchanged when the offsets do not fit it."""
    if 0 <= start < end <= len(text):
        return f"{text[:start]}*{text[start:end]}*{text[end:]}"
    return text


@register_hook("wic")
def wic(batch: dict[str, list]) -> dict[str, list]:
    """WiC (`aps/super_glue`, `wic`) -> `text`, `text_pair`, `label`.

    Why a hook: the task is about one occurrence of a word, given by character offsets. A column mapping could
    only join whole columns, so the target occurrence is starred in each sentence and the word is prefixed to the
    first one.
    """
    text, text_pair = [], []
    for word, sentence1, sentence2, start1, end1, start2, end2 in zip(
        batch["word"],
        batch["sentence1"],
        batch["sentence2"],
        batch["start1"],
        batch["end1"],
        batch["start2"],
        batch["end2"],
        strict=True,
    ):
        text.append(f"{word}: {_star_span(sentence1, start1, end1)}")
        text_pair.append(_star_span(sentence2, start2, end2))
    return {"text": text, "text_pair": text_pair, "label": list(batch["label"])}


@register_hook("wsc")
def wsc(batch: dict[str, list]) -> dict[str, list]:
    """WSC (`aps/super_glue`, `wsc.fixed`) -> `text`, `text_pair`, `label`.

    Why a hook: the pronoun is identified by a word index, which no column mapping can use. The pronoun is starred
    in the sentence, and the second segment states the coreference to be judged.
    """
    text, text_pair = [], []
    for sentence, span1_text, span2_text, span2_index in zip(
        batch["text"], batch["span1_text"], batch["span2_text"], batch["span2_index"], strict=True
    ):
        words = sentence.split(" ")
        # Star the pronoun only where the index points at it; a few sentences tokenize differently from the spans.
        if 0 <= span2_index < len(words) and words[span2_index].lower().startswith(span2_text.split(" ")[0].lower()):
            words[span2_index] = f"*{words[span2_index]}*"
        text.append(" ".join(words))
        text_pair.append(f"{span2_text} refers to {span1_text}")
    return {"text": text, "text_pair": text_pair, "label": list(batch["label"])}


_COPA_QUESTIONS = {"cause": "What was the cause?", "effect": "What happened as a result?"}


@register_hook("copa")
def copa(batch: dict[str, list]) -> dict[str, list]:
    """COPA (`aps/super_glue`, `copa`) -> `context`, `choices`, `label`.

    Why a hook: the `question` column holds only "cause" or "effect", which must become a question appended to the
    premise; the two alternatives become the choices.
    """
    context = []
    for premise, question in zip(batch["premise"], batch["question"], strict=True):
        if question not in _COPA_QUESTIONS:
            raise ValueError(f"task 'copa', hook `copa`: unknown question type {question!r}")
        context.append(f"{premise} {_COPA_QUESTIONS[question]}")
    choices = [[choice1, choice2] for choice1, choice2 in zip(batch["choice1"], batch["choice2"], strict=True)]
    return {"context": context, "choices": choices, "label": list(batch["label"])}


def _answer_offset(passage: str, answer: str, spans: dict[str, list]) -> int | None:
    """Character offset of `answer` in `passage`: a matching entity span when one checks out, else the first match."""
    for text, start in zip(spans["text"], spans["start"], strict=True):
        if text == answer and passage[start : start + len(answer)] == answer:
            return start
    found = passage.find(answer)
    return found if found >= 0 else None


@register_hook("record")
def record(batch: dict[str, list]) -> dict[str, list]:
    """ReCoRD (`aps/super_glue`, `record`) -> `context`, `question`, `answers`, `id`.

    Why a hook: answers are entity strings without offsets. Each is located through the passage's entity spans, so
    the task becomes SQuAD-style extraction of the entity that fills `@placeholder` in the query. Rows with no
    locatable answer (the unlabelled test split) are dropped.
    """
    out: dict[str, list] = {"context": [], "question": [], "answers": [], "id": []}
    for passage, query, spans, answers, idx in zip(
        batch["passage"], batch["query"], batch["entity_spans"], batch["answers"], batch["idx"], strict=True
    ):
        texts, starts = [], []
        for answer in dict.fromkeys(answers):  # unique answers, first-seen order
            start = _answer_offset(passage, answer, spans)
            if start is not None:
                texts.append(answer)
                starts.append(start)
        if not texts:
            continue
        out["context"].append(passage)
        out["question"].append(query)
        out["answers"].append({"text": texts, "answer_start": starts})
        out["id"].append(f"{idx['passage']}-{idx['query']}")
    return out


# Multiple choice -------------------------------------------------------------------------------------------------


def _split_lettered_options(options: str, letters: str) -> list[str] | None:
    """Splits "a ) 38 , b ) 27.675 , c ) 30" into ["38", "27.675", "30"]; None when a letter is missing."""
    text = options.strip()
    if text.startswith("["):  # a few rows hold a list literal of "a ) ..." strings rather than one string
        text = text.strip("[]").replace("'", "")
    first = f"{letters[0]} )"
    position = text.find(first)
    if position < 0:
        return None
    content_start, parts = position + len(first), []
    for letter in letters[1:]:
        marker = f", {letter} )"
        position = text.find(marker, content_start)
        if position < 0:
            return None
        parts.append(text[content_start:position].strip())
        content_start = position + len(marker)
    parts.append(text[content_start:].strip())
    return parts


_MATH_QA_LETTERS = "abcde"


@register_hook("math_qa_options")
def math_qa_options(batch: dict[str, list]) -> dict[str, list]:
    """MathQA (`allenai/math_qa`) -> `context`, `choices`, `label`.

    Why a hook: the five options are packed into one string ("a ) 38 , b ) 27.675 , ...") and the answer is a
    letter. Rows whose options do not parse into five choices are dropped.
    """
    out: dict[str, list] = {"context": [], "choices": [], "label": []}
    for problem, options, correct in zip(batch["Problem"], batch["options"], batch["correct"], strict=True):
        choices = _split_lettered_options(options, _MATH_QA_LETTERS)
        letter = correct.strip().lower()
        if choices is None or letter not in _MATH_QA_LETTERS:
            continue
        out["context"].append(problem)
        out["choices"].append(choices)
        out["label"].append(_MATH_QA_LETTERS.index(letter))
    return out


@register_hook("sciq")
def sciq(batch: dict[str, list]) -> dict[str, list]:
    """SciQ (`allenai/sciq`) -> `context`, `choices`, `label`.

    Why a hook: the correct answer has its own column and the label is implicit. The correct answer is rotated to a
    position fixed by the question text, so labels vary but every run builds the same rows (`hash()` of a string is
    salted per process, so a character sum is used instead). The question comes before the support paragraph so
    that truncation cuts the paragraph, not the question.
    """
    out: dict[str, list] = {"context": [], "choices": [], "label": []}
    for question, support, correct, distractor1, distractor2, distractor3 in zip(
        batch["question"],
        batch["support"],
        batch["correct_answer"],
        batch["distractor1"],
        batch["distractor2"],
        batch["distractor3"],
        strict=True,
    ):
        options = [correct, distractor1, distractor2, distractor3]
        shift = sum(map(ord, question)) % len(options)
        # Rotating right by `shift` moves the correct answer from index 0 to index `shift`.
        out["choices"].append(options[len(options) - shift :] + options[: len(options) - shift])
        out["label"].append(shift)
        out["context"].append(f"{question} {support}".strip())
    return out


@register_hook("dream")
def dream(batch: dict[str, list]) -> dict[str, list]:
    """DREAM (`dataset-org/dream`) -> `context`, `choices`, `label`.

    Why a hook: the dialogue is a list of turns and the answer is given as its text, not its index. The question
    comes first so that truncation cuts the dialogue, not the question. Rows whose answer is not among the choices
    are dropped.
    """
    out: dict[str, list] = {"context": [], "choices": [], "label": []}
    for dialogue, question, choices, answer in zip(
        batch["dialogue"], batch["question"], batch["choice"], batch["answer"], strict=True
    ):
        if answer not in choices:
            continue
        out["context"].append(f"{question} {' '.join(dialogue)}")
        out["choices"].append(list(choices))
        out["label"].append(choices.index(answer))
    return out


# Extractive MRC --------------------------------------------------------------------------------------------------

# HotpotQA has yes/no answers that no paragraph contains; prefixing both words makes them extractable spans.
_YES_NO_PREFIX = "yes no "


@register_hook("hotpot_qa")
def hotpot_qa(batch: dict[str, list]) -> dict[str, list]:
    """HotpotQA (`hotpotqa/hotpot_qa`, `distractor`) -> `context`, `question`, `answers`, `id`.

    Why a hook: the context is a list of titled paragraphs, each a list of sentences, and the answer is a string
    without an offset. Paragraphs are flattened as "title: text" after a "yes no " prefix (for yes/no answers), and
    the answer's first occurrence is taken. Rows whose answer is not found are dropped.
    """
    out: dict[str, list] = {"context": [], "question": [], "answers": [], "id": []}
    for example_id, question, answer, paragraphs in zip(
        batch["id"], batch["question"], batch["answer"], batch["context"], strict=True
    ):
        body = " ".join(
            f"{title}: {''.join(sentences)}"
            for title, sentences in zip(paragraphs["title"], paragraphs["sentences"], strict=True)
        )
        if answer in ("yes", "no"):
            start = _YES_NO_PREFIX.index(answer)
        else:
            found = body.find(answer)
            if not answer or found < 0:
                continue
            start = len(_YES_NO_PREFIX) + found
        out["context"].append(_YES_NO_PREFIX + body)
        out["question"].append(question)
        out["answers"].append({"text": [answer], "answer_start": [start]})
        out["id"].append(example_id)
    return out


@register_hook("trivia_qa")
def trivia_qa(batch: dict[str, list]) -> dict[str, list]:
    """TriviaQA (`mandarjoshi/trivia_qa`, `rc.wikipedia`) -> `context`, `question`, `answers`, `id`.

    Why a hook: evidence is whole Wikipedia pages (often thousands of tokens) and the answer is a list of aliases
    without offsets. As distant supervision, the context is the first paragraph of the evidence that contains an
    alias, and every alias found in it is an accepted answer. Questions whose evidence never mentions an alias are
    dropped.
    """
    out: dict[str, list] = {"context": [], "question": [], "answers": [], "id": []}
    for question_id, question, pages, answer in zip(
        batch["question_id"], batch["question"], batch["entity_pages"], batch["answer"], strict=True
    ):
        aliases = [alias for alias in dict.fromkeys([answer["value"], *answer["aliases"]]) if alias]
        paragraphs = (paragraph for page in pages["wiki_context"] for paragraph in page.split("\n"))
        for paragraph in paragraphs:
            found = {alias: paragraph.find(alias) for alias in aliases}
            found = {alias: start for alias, start in found.items() if start >= 0}
            if found:
                out["context"].append(paragraph)
                out["question"].append(question)
                out["answers"].append({"text": list(found), "answer_start": list(found.values())})
                out["id"].append(question_id)
                break
    return out
