"""API keys and roles: parsed from Settings, compared in constant time, never logged or echoed."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass

from rag import ConfigError, Settings

ROLES = ("read", "admin")  # each role covers the ones before it
MIN_KEY_CHARS = 16
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
NEW_KEY_HINT = "generate one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"


def key_digest(key: str) -> str:
    """The sha256 hex digest that RAG_API_KEY_FILE stores for a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: a role, and whether a key was presented (no keys configured = loopback, anonymous)."""

    role: str
    anonymous: bool = False

    def allows(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


class KeyRing:
    """sha256 digests of the accepted keys with their roles. Never holds or returns a key in clear."""

    def __init__(self, entries: list[tuple[bytes, str]]) -> None:
        self._entries = entries

    @property
    def enabled(self) -> bool:
        return bool(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        entries: list[tuple[bytes, str]] = []
        if settings.api_keys is not None:
            for i, item in enumerate(settings.api_keys.get_secret_value().split(","), start=1):
                item = item.strip()
                if not item:
                    continue
                key, sep, role = item.rpartition(":")
                if not sep or role not in ROLES:  # a bare key (a key may itself contain ':')
                    key, role = item, "read"
                if len(key) < MIN_KEY_CHARS:
                    raise ConfigError(
                        f"RAG_API_KEYS: key {i} is shorter than {MIN_KEY_CHARS} characters - {NEW_KEY_HINT}."
                    )
                entries.append((hashlib.sha256(key.encode("utf-8")).digest(), role))
        if settings.api_key_file is not None:
            entries.extend(_read_key_file(settings))
        return cls(entries)

    def role_of(self, presented: str) -> str | None:
        """The role of a presented key, or None. Compares against every entry (no early exit)."""
        digest = hashlib.sha256(presented.encode("utf-8")).digest()
        best: str | None = None
        for stored, role in self._entries:
            if hmac.compare_digest(stored, digest) and (best is None or ROLES.index(role) > ROLES.index(best)):
                best = role
        return best


def _read_key_file(settings: Settings) -> list[tuple[bytes, str]]:
    path = settings.api_key_file
    assert path is not None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"RAG_API_KEY_FILE {path} cannot be read ({exc.strerror or exc}) - check the path.") from exc
    entries: list[tuple[bytes, str]] = []
    for lineno, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        digest, _, role = line.partition(":")
        digest, role = digest.strip(), role.strip() or "read"
        if not _HEX64.match(digest) or role not in ROLES:
            # the line is not echoed: it may hold a key pasted in clear by mistake
            raise ConfigError(
                f"{path} line {lineno}: expected `sha256-hex-of-key:role` with role read or admin "
                "- the digest is `printf %s KEY | sha256sum`."
            )
        entries.append((bytes.fromhex(digest), role))
    if not entries:
        raise ConfigError(f"RAG_API_KEY_FILE {path} holds no keys - add `sha256-hex-of-key:role` lines.")
    return entries


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, keys: KeyRing) -> None:
    """Refuse to listen beyond loopback with no key: anyone who reaches the port could use the API."""
    if not keys.enabled and not is_loopback(host):
        raise ConfigError(
            f"Refusing to listen on {host} without an API key: anyone who can reach it could use the API. "
            "Set RAG_API_KEYS or RAG_API_KEY_FILE, or listen on 127.0.0.1."
        )


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
