"""Cited answers from a folder of news articles: ingest, hybrid retrieval, verified citations.

Edges use only the names below; `RagService` is the composition root. The stages, one module each:
ingest (ingest, dates, chunking, embeddings, indexer, syndication) -> storage (store) -> retrieval
(retrieve) -> pipeline (stages, condense, gate, chain) -> answering (extractive + brief, or llm + verify +
judge) -> citations.
"""

from __future__ import annotations

from rag.answer_type import asks_for_name
from rag.answer_type import expected as expected_answer_type
from rag.calibration import Calibration
from rag.chunking import Chunker
from rag.config import Settings, get_settings
from rag.dates import iso_date, make_filter, parse_date, wants_recency
from rag.doctor import DoctorReport
from rag.embeddings import LocalMiniLMEmbeddings
from rag.errors import (
    AnswerFormatError,
    ConfigError,
    CorpusError,
    IndexBusyError,
    ModelError,
    QuestionError,
    RagError,
    RagIndexError,
)
from rag.feedback import read_feedback, record_feedback
from rag.indexer import IngestReport, count_articles
from rag.judge import FEATURES as JUDGE_FEATURES
from rag.judge import JudgeParams, SupportJudge
from rag.ranking import Ranking
from rag.retrieve import Method
from rag.service import RagService
from rag.syndication import also_line
from rag.types import Answer, Article, Citation, DateFilter, Passage, Sentence, Turn
from rag.uploads import ALLOWED_SUFFIXES, UploadRejected, save_upload, uploads_dir

__all__ = [
    "ALLOWED_SUFFIXES",
    "JUDGE_FEATURES",
    "Answer",
    "AnswerFormatError",
    "Article",
    "Calibration",
    "Chunker",
    "Citation",
    "ConfigError",
    "CorpusError",
    "DateFilter",
    "DoctorReport",
    "IndexBusyError",
    "IngestReport",
    "JudgeParams",
    "LocalMiniLMEmbeddings",
    "Method",
    "ModelError",
    "Passage",
    "QuestionError",
    "RagError",
    "RagIndexError",
    "RagService",
    "Ranking",
    "Sentence",
    "Settings",
    "SupportJudge",
    "Turn",
    "UploadRejected",
    "also_line",
    "asks_for_name",
    "count_articles",
    "expected_answer_type",
    "get_settings",
    "iso_date",
    "make_filter",
    "parse_date",
    "read_feedback",
    "record_feedback",
    "save_upload",
    "uploads_dir",
    "wants_recency",
]
