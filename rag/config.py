"""Settings: one object, from arguments > environment (RAG_*) > .env > defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent

Mode = Literal["auto", "extractive", "llm"]


class Settings(BaseSettings):
    """Every knob of the app. Library code receives this object; it never reads os.environ."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    data_dir: Path = Field(Path(".rag"), description="everything the app writes")
    corpus_dir: Path = Field(Path("corpus"), description="what `rag ingest` reads by default")
    datasets_dir: Path = Field(REPO_ROOT.parent / "shared" / "datasets", description="external evaluation data")
    top_k: int = Field(5, ge=1, le=50, description="passages retrieved per question")
    candidates: int = Field(30, ge=1, le=500, description="candidates per retriever before fusion")
    chunk_size: int = Field(800, ge=200, le=4000)
    chunk_overlap: int = Field(120, ge=0, le=1000)
    collection: str = Field("articles", description="Chroma collection name")
    embed_title_header: bool = Field(
        False, description="embed each chunk after its article's title (changing it needs the index re-embedded)"
    )
    bm25_title_header: bool = Field(
        False, description="index each chunk's BM25 text after its article's title (changing it rebuilds BM25 only)"
    )
    max_question_chars: int = 2000
    max_answer_sentences: int = Field(3, ge=1, le=8)
    collapse_duplicates: bool = Field(
        True, description="syndicated copies of one story take one slot in the top k (others listed with it)"
    )

    llm_base_url: str | None = None
    openai_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("RAG_OPENAI_API_KEY", "OPENAI_API_KEY", "openai_api_key"),
    )
    llm_model: str = "gpt-4o-mini"
    llm_temperature: float = 0.0
    llm_timeout: float = Field(60.0, gt=0, description="total seconds for one answer")
    llm_connect_timeout: float = Field(5.0, gt=0, description="seconds to connect to the endpoint")
    llm_first_token_timeout: float = Field(
        20.0, gt=0, description="seconds to wait for the first (and each further) byte of an answer"
    )
    llm_max_retries: int = 2
    mode: Mode = "auto"

    chroma_host: str | None = None
    chroma_port: int = 8000
    chroma_token: SecretStr | None = None

    max_upload_mb: int = 10
    max_article_mb: float = Field(5.0, gt=0, description="larger articles are skipped with a warning")

    # the HTTP API (`rag serve`)
    api_host: str = Field("127.0.0.1", description="where `rag serve` listens")
    api_port: int = Field(8080, ge=0, le=65535, description="8000 is Chroma's")
    api_keys: SecretStr | None = Field(None, description="comma-separated KEY (role read) or KEY:admin")
    api_key_file: Path | None = Field(None, description="one `sha256-hex-of-key:role` per line")
    api_max_request_bytes: int = Field(262_144, ge=1024, description="larger request bodies get 413")
    api_max_messages: int = Field(50, ge=2, description="messages (or history turns) per request")
    # fair use and operations (rag/api/limits.py, rag/api/metrics.py)
    api_rate_per_minute: float = Field(
        6000.0, ge=0, description="requests per minute per key (token bucket; 0 turns the limit off)"
    )
    api_rate_burst: int = Field(200, ge=1, description="requests a key may send at once before the rate applies")
    api_max_concurrent: int = Field(16, ge=1, description="requests in progress at once; more get 503 at once")
    api_timeout_s: float = Field(120.0, gt=0, description="seconds until a response starts; then 504")
    api_cors_origins: str | None = Field(None, description="comma-separated origins allowed by CORS (off when unset)")
    api_debug: bool = Field(False, description="request log lines also carry the question text")

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url) or self.openai_api_key is not None

    @property
    def effective_mode(self) -> Literal["extractive", "llm"]:
        if self.mode == "auto":
            return "llm" if self.llm_configured else "extractive"
        return self.mode

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def bm25_dir(self) -> Path:
        return self.data_dir / "bm25"

    @property
    def evals_dir(self) -> Path:
        return self.data_dir / "evals"

    @property
    def feedback_path(self) -> Path:
        return self.data_dir / "feedback.jsonl"

    @property
    def index_location(self) -> str:
        if self.chroma_host:
            return f"chroma server http://{self.chroma_host}:{self.chroma_port} ({self.collection})"
        return f"{self.chroma_dir} ({self.collection})"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment and .env; cached for edges that build one service."""
    return Settings()
