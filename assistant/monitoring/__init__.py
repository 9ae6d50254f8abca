"""The answer log: one row per answer Ladder serves to a user (chat, API, ``ladder ask``; never
an evaluation run or a decision), the raw material of ``evaluation.monitor``.

```python
from assistant.monitoring import AnswerLogStore, record_answers

record_answers(settings, answers, source="api", latencies_s=[0.8], strategy="rag", kb="handbook",
               session_id="s1")        # what assistant.service does when told the source
with AnswerLogStore(settings.db_path) as store:
    rows = store.entries(since="2026-12-01T00:00:00+00:00")
    feedback_ids = store.rated(rows[0].id)   # linked by question hash + session id
```

``settings.answer_log`` (default true) turns recording off; ``settings.answer_log_days``
(default 90) is the retention: older rows are deleted whenever a row is written.
"""

from assistant.monitoring.record import best_score, entry_for, not_in_kb, record_answers
from assistant.monitoring.store import SOURCES, AnswerLogEntry, AnswerLogStore, Rating, iso

__all__ = [
    "SOURCES",
    "AnswerLogEntry",
    "AnswerLogStore",
    "Rating",
    "best_score",
    "entry_for",
    "iso",
    "not_in_kb",
    "record_answers",
]
