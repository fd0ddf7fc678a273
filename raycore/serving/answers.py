"""What a model route answers, as plain data that crosses processes, and each protocol's error shape.

An ``Answer`` (status, body bytes, media type, headers) is built wherever the
request is answered — in the ingress or in a model replica behind a
DeploymentHandle — and turned into an HTTP response by the ingress. Every
answer of a served model names its version (``x-model-version``), errors
included. Error bodies follow each protocol:

    simple   {"error": ..., "detail": [...], "hint": ...}
    oip      {"error": ...}                                   (what tritonclient raises with)
    mlflow   {"error_code": ..., "message": ..., "detail": [...], "hint": ...}

Example:
    >>> answer = error_answer("simple", 404, "model 'x' is not served here")
    >>> answer.status, json.loads(answer.content)
    (404, {'error': "model 'x' is not served here"})
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["VERSION_HEADER", "Answer", "Route", "error_answer", "json_answer", "overloaded_answer"]

VERSION_HEADER = "x-model-version"
Route = Literal["simple", "oip", "mlflow"]

try:  # orjson is several times faster on the single-row path; the stdlib encoder is the fallback
    import orjson

    def _dumps(body: Any) -> bytes:
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)

except ImportError:  # pragma: no cover - depends on the install

    def _dumps(body: Any) -> bytes:
        return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, ready to send."""

    status: int
    content: bytes
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def version(self) -> str | None:
        return self.headers.get(VERSION_HEADER)


def json_answer(
    status: int, body: Any, *, version: str | None = None, headers: dict[str, str] | None = None
) -> Answer:
    """A JSON answer naming ``version`` (when one answered)."""
    out = dict(headers or {})
    if version is not None:
        out[VERSION_HEADER] = version
    return Answer(status=status, content=_dumps(body), headers=out)


def error_answer(
    route: Route,
    status: int,
    message: str,
    *,
    detail: Any = None,
    hint: str | None = None,
    version: str | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """An error in ``route``'s protocol shape."""
    body: dict[str, Any]
    if route == "oip":
        body = {"error": f"{message}; hint: {hint}" if hint else message}
    elif route == "mlflow":
        code = (
            "RESOURCE_DOES_NOT_EXIST"
            if status == 404
            else "INTERNAL_ERROR"
            if status >= 500
            else "BAD_REQUEST"
        )
        body = {"error_code": code, "message": message}
    else:
        body = {"error": message}
    if route != "oip":
        if detail is not None:
            body["detail"] = detail
        if hint:
            body["hint"] = hint
    return json_answer(status, body, version=version, headers=headers)


def overloaded_answer(
    route: Route, message: str, *, retry_after_s: float, version: str | None = None
) -> Answer:
    """HTTP 503 with ``Retry-After`` (whole seconds, rounded up) in ``route``'s error shape."""
    return error_answer(
        route,
        503,
        message,
        hint="the model is overloaded; retry after the Retry-After delay",
        version=version,
        headers={"retry-after": str(max(1, math.ceil(retry_after_s)))},
    )
