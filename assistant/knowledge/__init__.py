"""The knowledge base: ingest documents, search them with dense + BM25 retrieval.

    from assistant.knowledge import KnowledgeBase, Hit
    kb = KnowledgeBase.open("docs", settings)          # KnowledgeBaseNotFound if missing
    report = kb.add([Path("handbook/")])               # per-file IngestReport
    hits = kb.search("年假有几天？", k=5)               # hybrid; mode="dense" | "bm25"

Importing this package is cheap: chromadb, torch and jieba load on first use.
"""

from assistant.knowledge.fusion import Fusion
from assistant.knowledge.ingest import FileReport, IngestReport
from assistant.knowledge.kb import (
    EmbeddingModelMismatch,
    IngestFailed,
    KnowledgeBase,
    KnowledgeBaseExists,
    KnowledgeBaseNotFound,
    SourceInfo,
)
from assistant.knowledge.retrieve import MODES, Hit

__all__ = [
    "MODES",
    "EmbeddingModelMismatch",
    "FileReport",
    "Fusion",
    "Hit",
    "IngestFailed",
    "IngestReport",
    "KnowledgeBase",
    "KnowledgeBaseExists",
    "KnowledgeBaseNotFound",
    "SourceInfo",
]
