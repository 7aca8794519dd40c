"""Request and response models of the API (they are also its OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

MAX_K = 50  # the range of RAG_TOP_K


# -- errors ---------------------------------------------------------------------------
class ErrorDetail(BaseModel):
    type: str = Field(description="invalid_request_error, authentication_error, permission_error, ...")
    message: str = Field(description="what happened and what to do next")
    param: str | None = Field(None, description="OpenAI routes only: the offending field")
    code: str | None = Field(None, description="OpenAI routes only: e.g. model_not_found")


class ErrorBody(BaseModel):
    error: ErrorDetail


# -- /v1/ask ----------------------------------------------------------------------------
class HistoryTurn(BaseModel):
    """One past exchange; the caller keeps the conversation."""

    model_config = ConfigDict(extra="forbid")
    question: StrictStr
    answer: StrictStr
    standalone_question: StrictStr = ""


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: StrictStr = Field(description="the question as typed (up to RAG_MAX_QUESTION_CHARS characters)")
    history: list[HistoryTurn] = Field(default_factory=list, description="earlier turns, oldest first")
    k: StrictInt | None = Field(None, ge=1, le=MAX_K, description="passages to retrieve (default RAG_TOP_K)")
    mode: Literal["auto", "extractive", "llm"] | None = Field(None, description="default RAG_MODE")
    stream: StrictBool = Field(False, description="server-sent events: step, text, answer (or error)")
    since: StrictStr | None = Field(None, description="YYYY-MM-DD: only articles published on or after this day")
    until: StrictStr | None = Field(None, description="YYYY-MM-DD: only articles published on or before this day")
    as_of: StrictStr | None = Field(None, description="YYYY-MM-DD: answer as of this day (later articles unseen)")


class CitationOut(BaseModel):
    n: int
    chunk_id: str
    article_id: str
    title: str
    title_derived: bool
    source: str
    published: str | None
    url: str
    quote: str = Field(description="verbatim article text")
    start: int = Field(description="character offset of the quote in the article")
    end: int
    also_reported_by: list[dict[str, Any]] = Field(
        default_factory=list,
        description="other articles of the same story (syndicated copies, updates): article_id, source, title, "
        "url, published; the quote is from article_id",
    )


class SentenceOut(BaseModel):
    text: str
    citations: list[int]
    supported: bool
    support_score: float
    attached: bool


class ContextOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    chunk_id: str
    article_id: str
    text: str
    score: float


class AnswerOut(BaseModel):
    """The answer object of the contracts (`rag ask --json`)."""

    model_config = ConfigDict(extra="allow")
    question: str
    standalone_question: str
    answer: str = Field(description="text with [n] markers")
    refused: bool
    mode: Literal["extractive", "llm"]
    citations: list[CitationOut]
    sentences: list[SentenceOut]
    contexts: list[ContextOut]
    timings_ms: dict[str, float]


# -- /v1/chat/completions ----------------------------------------------------------------
class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: StrictStr
    text: StrictStr | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: StrictStr | list[ContentPart] | None = None


class ChatCompletionRequest(BaseModel):
    """OpenAI's request; sampling options (temperature, max_tokens, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    model: StrictStr = Field(description="rag (auto), rag-extractive or rag-llm")
    messages: list[ChatMessage] = Field(min_length=1, description="the last one is the user's question")
    stream: StrictBool = False
    k: StrictInt | None = Field(None, ge=1, le=MAX_K, description="extension: passages to retrieve")
    since: StrictStr | None = Field(None, description="extension: YYYY-MM-DD, as in /v1/ask")
    until: StrictStr | None = Field(None, description="extension: YYYY-MM-DD, as in /v1/ask")
    as_of: StrictStr | None = Field(None, description="extension: YYYY-MM-DD, as in /v1/ask")


class AssistantMessage(BaseModel):
    """OpenAI's message plus the verified citations and sentence verdicts (read `model_extra`)."""

    model_config = ConfigDict(extra="allow")
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None
    refused: bool = Field(description="true when the corpus does not answer (then citations is empty)")
    citations: list[CitationOut]
    sentences: list[SentenceOut]
    standalone_question: str
    mode: Literal["extractive", "llm"]


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop"]
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (400, "bad JSON, wrong types, empty or over-long question, too many messages, k out of range"),
        (401, "missing or wrong key (WWW-Authenticate: Bearer)"),
        (403, "the key's role does not cover this route"),
        (413, "request body over RAG_API_MAX_REQUEST_BYTES"),
        (503, "no index yet, or the index or model is unavailable"),
    )
}
