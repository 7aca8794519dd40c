"""Cited answers from a folder of news articles: ingest, hybrid retrieval, verified citations."""

from __future__ import annotations

from rag.config import Settings, get_settings
from rag.errors import AnswerFormatError, ConfigError, CorpusError, ModelError, QuestionError, RagError, RagIndexError
from rag.feedback import read_feedback, record_feedback
from rag.indexer import IngestReport, count_articles
from rag.service import RagService
from rag.types import Answer, Article, Citation, Passage, Sentence, Turn

__all__ = [
    "Answer",
    "AnswerFormatError",
    "Article",
    "Citation",
    "ConfigError",
    "CorpusError",
    "IngestReport",
    "ModelError",
    "Passage",
    "QuestionError",
    "RagError",
    "RagIndexError",
    "RagService",
    "Sentence",
    "Settings",
    "Turn",
    "count_articles",
    "get_settings",
    "read_feedback",
    "record_feedback",
]
