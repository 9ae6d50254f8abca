"""The base model as a rung dimension: a rung may name its own model, and with the default rungs
the ladder also tries the plain prompt on the next larger local pack of the base's family.

Before anything runs, rungs are ordered by stated cost: tokens per question from the strategy,
scaled for a rung on another local pack by the packs' weight sizes (the same quantisation, so
bytes are proportional to parameters, and a forward pass's compute to parameters). Once run,
the measured cost per 1,000 questions decides, as for every rung.
"""

from __future__ import annotations

import re

from assistant.settings import Settings

# "Qwen/Qwen2.5-Coder-0.5B-Instruct" -> "Qwen/Qwen2.5-Coder-Instruct": packs of one family differ
# only in the size token.
_SIZE = re.compile(r"-\d+(?:\.\d+)?[BbMm](?=-|$)")


def _family(upstream: str) -> str:
    return _SIZE.sub("", upstream)


def larger_pack(base: str, settings: Settings) -> tuple[str, bool] | None:
    """``(name, installed)`` of the smallest catalog pack of ``base``'s family larger than it;
    None when ``base`` is no pack or none is larger."""
    from assistant.models.catalog import load_catalog
    from assistant.models.pull import installed_pack_dir

    catalog = load_catalog()
    spec = catalog.get(base)
    if spec is None:
        return None
    family = _family(spec.upstream)
    larger = sorted(
        (
            p
            for p in catalog.values()
            if p.kind == "llm" and _family(p.upstream) == family and p.size_bytes > spec.size_bytes
        ),
        key=lambda p: p.size_bytes,
    )
    if not larger:
        return None
    return larger[0].name, installed_pack_dir(larger[0].name, settings) is not None


def compute_scale(model: str, base: str) -> float:
    """How much more a question costs on ``model`` than on ``base`` before it is measured: the
    ratio of the packs' sizes; 1 when either is not a catalog pack (an endpoint, a folder)."""
    from assistant.models.catalog import load_catalog

    catalog = load_catalog()
    a, b = catalog.get(model), catalog.get(base)
    if a is None or b is None or a.kind != "llm" or b.kind != "llm" or not b.size_bytes:
        return 1.0
    return a.size_bytes / b.size_bytes
