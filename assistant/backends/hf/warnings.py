"""One place to silence what transformers 5's renames make peft and trl print.

peft and trl still read properties transformers 5 renamed (``is_gradient_checkpointing``,
``gradient_checkpointing``...); each read prints a FutureWarning that tells a Ladder user
nothing they can act on. Loading an adapter, building a LoRA model and setting up DPO go
through this context manager.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def renamed_property_warnings_off() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield
