"""How lm-eval's local C-Eval task reads the CSVs: every column as text, newlines as Python reads them.

pandas would turn options like "0.50" or "011" into numbers, and keeps the "\\r\\n" inside
quoted fields that Ladder (which reads the file as text, with universal newlines) sees as "\\n".
"""


def _text(value: str) -> str:
    return value.replace("\r\n", "\n").replace("\r", "\n")


CSV_AS_TEXT = {column: _text for column in ("id", "question", "A", "B", "C", "D", "answer")}
