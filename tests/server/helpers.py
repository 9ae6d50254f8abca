"""What the server tests share besides fixtures: the API key and an ``openai`` client."""

from __future__ import annotations

from typing import Any

KEY = "test-key-123"


def client(url: str, key: str | None = KEY, **kwargs: Any) -> Any:
    """The official client, with no retries (a 429 must reach the test, not be retried)."""
    from openai import OpenAI

    return OpenAI(base_url=url, api_key=key or "none", max_retries=0, timeout=30, **kwargs)
