"""End users' feedback on answers, and the reviewer's promotions: the API the CLI, the UI and the
server call. Each function opens the store in ``settings.db_path`` and closes it again.

```python
from assistant.feedback import record_feedback, list_feedback, get_feedback, promote, dismiss

item = record_feedback(settings, question="退货期限？", answer="7 天", rating="down",
                       correction="30 天", model="qwen2.5-coder-0.5b", strategy="rag",
                       contexts=[...], citations=[...], session_id="s1", source="chat")
promote(settings, item.id, "suite")   # or "sft", "pairs", "train" (sft + pairs)
```

A promotion turns a rating into data: a QA suite item (the correction, or the answer of a
thumbs-up, is the reference), an SFT chat example, or a preference pair (chosen = correction,
rejected = the original answer; thumbs-down with a correction only). Every promotion is
recorded, and a question promoted to a test suite is never promoted to training data, nor the
other way round (``LeakageRefused``), whichever rating of the same question it comes from.
"""

from assistant.feedback.api import (
    TARGETS,
    dismiss,
    export_feedback,
    feedback_counts,
    feedback_on_answer,
    get_feedback,
    list_feedback,
    normalise_rating,
    promote,
    question_hash,
    record_feedback,
)
from assistant.feedback.errors import FeedbackError, FeedbackNotFound, LeakageRefused
from assistant.feedback.store import DISMISSED, NEW, PROMOTED, STATUSES, FeedbackItem, Promotion

__all__ = [
    "DISMISSED",
    "NEW",
    "PROMOTED",
    "STATUSES",
    "TARGETS",
    "FeedbackError",
    "FeedbackItem",
    "FeedbackNotFound",
    "LeakageRefused",
    "Promotion",
    "dismiss",
    "export_feedback",
    "feedback_counts",
    "feedback_on_answer",
    "get_feedback",
    "list_feedback",
    "normalise_rating",
    "promote",
    "question_hash",
    "record_feedback",
]
