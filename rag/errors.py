"""The error hierarchy: every message says what happened and what to do next."""

from __future__ import annotations


class RagError(Exception):
    """Base of every error this library raises on purpose."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message

    def __str__(self) -> str:
        return self.user_message


class ConfigError(RagError):
    """A setting is missing, malformed or contradicts another."""


class QuestionError(RagError):
    """The question cannot be asked as typed (empty, too long)."""


class CorpusError(RagError):
    """A file or record of the corpus cannot be read; names the file and the problem."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class RagIndexError(RagError):
    """The index is missing, corrupt, built with another model, or unreachable."""


class ModelError(RagError):
    """The language model endpoint failed."""

    def __init__(self, user_message: str, *, is_retryable: bool = False) -> None:
        super().__init__(user_message)
        self.is_retryable = is_retryable


class AnswerFormatError(RagError):
    """A model's answer could not be parsed into cited sentences."""


class IndexBusyError(RagIndexError):
    """Another process owns the embedded index."""
