"""One leakage check for every path into training: does a training text repeat a question of an
evaluation suite? ``text`` says when two questions are one (normalised, numbers, near
duplicates), ``check`` finds the item a training text leaks, ``suites`` gathers the questions
of the shipped suites and of the suites a caller names.

    questions, checked = load_eval_questions(SuiteFiles(), extra=[Path("my_suite.yaml")])
    leak = QuestionIndex(questions).find(["Within how many days can I return a product?"])
"""

from assistant.leakage.check import MIN_CONTAINED, RULE, EvalQuestion, QuestionIndex, leak_record
from assistant.leakage.suites import (
    SuiteInfo,
    SuiteItemQuestion,
    SuiteQuestionReader,
    load_eval_questions,
    project_suites,
    project_suites_dir,
)
from assistant.leakage.text import EDIT_RATE, FLOOR, MIN_CHARS, near_duplicate, normalized, numbers

__all__ = [
    "EDIT_RATE",
    "FLOOR",
    "MIN_CHARS",
    "MIN_CONTAINED",
    "RULE",
    "EvalQuestion",
    "QuestionIndex",
    "SuiteInfo",
    "SuiteItemQuestion",
    "SuiteQuestionReader",
    "leak_record",
    "load_eval_questions",
    "near_duplicate",
    "normalized",
    "numbers",
    "project_suites",
    "project_suites_dir",
]
