"""Read every column of a C-Eval CSV as text (pandas would turn options like "0.50" into numbers)."""

CSV_AS_TEXT = {column: str for column in ("id", "question", "A", "B", "C", "D", "answer")}
