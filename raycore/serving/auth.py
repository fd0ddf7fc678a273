"""API keys for the Serve endpoints: inference keys and admin keys.

Keys come from three places, all optional:

    FOUNDRY_API_KEYS     comma-separated inference keys
    FOUNDRY_ADMIN_KEYS   comma-separated admin keys (an admin key also works for inference)
    $FOUNDRY_HOME/api_keys.json   keys made by `foundry keys create`, stored as SHA-256 hashes only

A request carries its key as ``Authorization: Bearer <key>`` or ``x-api-key: <key>``.
With no key configured anywhere the endpoints are open — which is why the
default bind is loopback (``FOUNDRY_SERVE_HOST=127.0.0.1``); ``check_bind``
refuses a non-loopback bind without keys. Only hashes are kept in memory and
on disk, compared with ``hmac.compare_digest``.

Example:
    >>> keys = ApiKeys.from_values(infer=["k-infer"], admin=["k-admin"])
    >>> keys.check({"x-api-key": "k-admin"}, scope="admin")
    >>> keys.check({"Authorization": "Bearer k-infer"}, scope="admin")
    Traceback (most recent call last):
    ...
    raycore.serving.auth.AuthError: this key may not use admin routes (traffic changes, reloads)
      hint: send an admin key (`foundry keys create --admin`)
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from raycore.errors import ConfigurationError, ServingError
from raycore.runtime.state_file import file_lock, write_json_atomic

__all__ = [
    "KEYS_FILE",
    "ApiKeys",
    "AuthError",
    "KeyRecord",
    "Scope",
    "check",
    "check_bind",
    "create_key",
    "hash_key",
    "list_keys",
]

Scope = Literal["infer", "admin"]
KEYS_FILE = "api_keys.json"
_PREFIX = "fdy_"


class AuthError(ServingError):
    """A request lacks a valid key (401) or its key may not use the route (403)."""

    def __init__(self, message: str, *, status_code: int = 401, hint: str | None = None) -> None:
        self.status_code = status_code
        super().__init__(message, hint=hint)

    def _reduce_kwargs(self) -> dict[str, Any]:
        return {"status_code": self.status_code, "hint": self.hint}

    def headers(self) -> dict[str, str]:
        """Response headers for the error (RFC 6750 asks 401 answers to name the scheme)."""
        return {"WWW-Authenticate": "Bearer"} if self.status_code == 401 else {}


def hash_key(key: str) -> str:
    """The SHA-256 hex digest stored for a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class KeyRecord:
    """One stored key: its hash, never the key."""

    id: str
    scope: Scope
    sha256: str
    created_at: str
    label: str = ""


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _read_records(path: Path) -> list[KeyRecord]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigurationError(
            f"cannot read API keys from {path}: {exc}",
            hint=f"fix or delete {path} and create keys again with `foundry keys create`",
        ) from exc
    try:
        return [KeyRecord(**entry) for entry in data["keys"]]
    except (KeyError, TypeError) as exc:
        raise ConfigurationError(
            f"{path} is not an API key file (expected {{'keys': [{{id, scope, sha256, created_at}}]}})",
            hint=f"fix or delete {path}",
        ) from exc


@dataclass(frozen=True)
class ApiKeys:
    """The configured key hashes per scope; empty means the endpoints are open."""

    infer: frozenset[str] = frozenset()
    admin: frozenset[str] = frozenset()

    @classmethod
    def from_values(cls, *, infer: Iterable[str] = (), admin: Iterable[str] = ()) -> ApiKeys:
        """Keys given in clear (environment, tests): hashed at once."""
        return cls(infer=frozenset(map(hash_key, infer)), admin=frozenset(map(hash_key, admin)))

    @classmethod
    def load(cls, *, home: Path | None = None, environ: Mapping[str, str] | None = None) -> ApiKeys:
        """Keys from FOUNDRY_API_KEYS, FOUNDRY_ADMIN_KEYS and ``home/api_keys.json``."""
        env = os.environ if environ is None else environ
        keys = cls.from_values(
            infer=_split(env.get("FOUNDRY_API_KEYS")), admin=_split(env.get("FOUNDRY_ADMIN_KEYS"))
        )
        if home is None:
            return keys
        records = _read_records(Path(home) / KEYS_FILE)
        return cls(
            infer=keys.infer | {r.sha256 for r in records if r.scope == "infer"},
            admin=keys.admin | {r.sha256 for r in records if r.scope == "admin"},
        )

    @property
    def enabled(self) -> bool:
        """Whether any key is configured (then every request needs one)."""
        return bool(self.infer or self.admin)

    def check(self, headers: Mapping[str, str], *, scope: Scope = "infer") -> None:
        """Return if the request's key allows ``scope``; raise AuthError (401/403) otherwise."""
        if scope not in ("infer", "admin"):
            raise ValueError(f"scope must be 'infer' or 'admin', got {scope!r}")
        if not self.enabled:
            return
        presented = _presented_key(headers)
        if presented is None:
            raise AuthError(
                "this endpoint needs an API key",
                status_code=401,
                hint="send 'Authorization: Bearer <key>' or 'x-api-key: <key>' (`foundry keys create` makes one)",
            )
        digest = hash_key(presented)
        is_admin = _member(digest, self.admin)
        if scope == "admin":
            if is_admin:
                return
            if _member(digest, self.infer):
                raise AuthError(
                    "this key may not use admin routes (traffic changes, reloads)",
                    status_code=403,
                    hint="send an admin key (`foundry keys create --admin`)",
                )
        elif is_admin or _member(digest, self.infer):
            return
        raise AuthError(
            "the API key is not valid",
            status_code=401,
            hint="check the key; it may have been revoked",
        )


def _member(digest: str, known: frozenset[str]) -> bool:
    # Compare with every stored hash, without an early exit, in constant time per comparison.
    found = False
    for candidate in known:
        found |= hmac.compare_digest(digest, candidate)
    return found


def _presented_key(headers: Mapping[str, str]) -> str | None:
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    auth = lowered.get("authorization", "").strip()
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = lowered.get("x-api-key", "").strip()
    return key or None


def check(headers: Mapping[str, str], *, scope: Scope = "infer", keys: ApiKeys) -> None:
    """``keys.check(headers, scope=scope)``: None if allowed, else raises AuthError (401 or 403)."""
    keys.check(headers, scope=scope)


def check_bind(*, host: str, keys: ApiKeys) -> None:
    """Refuse to serve beyond loopback with no API key configured.

    Example:
        >>> check_bind(host="127.0.0.1", keys=ApiKeys())
    """
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not keys.enabled:
        raise ConfigurationError(
            f"refusing to serve on {host} without API keys: anyone on the network could call the models",
            hint="create keys (`foundry keys create --infer` / `--admin`) or set FOUNDRY_API_KEYS, "
            "or bind to 127.0.0.1",
        )


def create_key(*, home: Path, scope: Scope, label: str = "") -> tuple[str, KeyRecord]:
    """Make a new key, store only its hash in ``home/api_keys.json``; return (key, record).

    The key itself is returned once and never stored.
    """
    if scope not in ("infer", "admin"):
        raise ValueError(f"scope must be 'infer' or 'admin', got {scope!r}")
    key = _PREFIX + secrets.token_urlsafe(32)
    digest = hash_key(key)
    record = KeyRecord(
        id=digest[:12],
        scope=scope,
        sha256=digest,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        label=label,
    )
    path = Path(home) / KEYS_FILE
    # Two `foundry keys create` at once must both land: read-append-replace under a file lock.
    with file_lock(path.with_suffix(".lock")):
        records = [*_read_records(path), record]
        write_json_atomic(path, {"keys": [r.__dict__ for r in records]}, mode=0o600)
    return key, record


def list_keys(*, home: Path) -> list[KeyRecord]:
    """The stored key records (hashes and ids, never keys)."""
    return _read_records(Path(home) / KEYS_FILE)
