"""Per-row adapter choice for one generate call: base + LoRA adapter, or the base alone.

A backend that holds a base model with a LoRA adapter can answer some conversations of a batch
with the adapter and others without it, in one model and one batch (peft's mixed-adapter
batches: ``adapter_names=[...]`` with ``"__base__"`` for the base)::

    with adapter_per_row([True, False, True]):
        completions = backend.generate(batch, params)

The choice lives in a ``ContextVar`` (like the stream sink and the response schema), so the
backend contract stays ``generate(batch, params)``. A backend that can honour it says so with
``mixes_adapters = True`` (``hf_local`` with an adapter loaded); callers check that first,
because a backend that ignores the variable would answer every row with the same model.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_ROWS: ContextVar[tuple[bool, ...] | None] = ContextVar("ladder_adapter_rows", default=None)


@contextmanager
def adapter_per_row(rows: Sequence[bool] | None) -> Iterator[None]:
    """For the generate calls inside: row i uses the adapter when ``rows[i]``, else the base."""
    token = _ROWS.set(tuple(bool(r) for r in rows) if rows is not None else None)
    try:
        yield
    finally:
        _ROWS.reset(token)


def current_adapter_rows(batch_size: int) -> tuple[bool, ...] | None:
    """The rows set by ``adapter_per_row`` for a batch of ``batch_size``; a length mismatch is a bug."""
    rows = _ROWS.get()
    if rows is not None and len(rows) != batch_size:
        raise ValueError(f"adapter_per_row has {len(rows)} rows for a batch of {batch_size}")
    return rows


def mixes_adapters(backend: Any) -> bool:
    """Whether ``backend`` answers each row with the adapter or the base as ``adapter_per_row`` says."""
    return bool(getattr(backend, "mixes_adapters", False))
