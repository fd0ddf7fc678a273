"""Traffic policies in the ingress: which alias answers a request, and who gets a shadow copy.

For each model the ingress keeps a ``ModelTraffic`` (``raycore.serving.traffic``)
that polls the model's active policy (``foundry traffic set``). A request under
``single`` goes straight to the model's primary target (the app's alias, usually
``champion``). Under ``ab``/``canary`` the router picks the alias (sticky by a
request field or header); under ``shadow`` the primary answers and the shadow
alias gets the same body fire-and-forget — its answer is only logged, its
failures never reach the caller.

Versions at other aliases are hosted in the ingress itself, loaded on their
first request, with their own hot reload: they take a share of traffic or
shadow copies, so one extra copy per alias is enough. A primary answer with a
5xx status counts as a failure for the canary; the caller still gets it.

Example:
    >>> routing = AliasRouting(home=home, primary_alias="champion", make_target=make_local)   # doctest: +SKIP
    >>> answer = await routing.infer("churn_risk", base, route="simple", raw=body, headers=h)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from raycore.errors import RaycoreError
from raycore.registry.audit import AuditLog
from raycore.registry.traffic_state import TrafficStateStore
from raycore.runtime.state_file import file_lock
from raycore.serving.answers import Answer, Route, overloaded_answer
from raycore.serving.traffic import ModelTraffic, ShadowLog

__all__ = ["AliasRouting"]


class _Failed(Exception):
    """A 5xx answer of the primary: a failure for the canary, still the caller's answer."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(f"HTTP {answer.status}")
        self.answer = answer


class _Reply(dict):  # type: ignore[type-arg]
    """The decoded JSON body of an answer (what shadow records compare), carrying the answer itself."""

    answer: Answer


def _reply(answer: Answer) -> _Reply:
    try:
        body = json.loads(answer.content) if answer.media_type == "application/json" else {}
    except ValueError:
        body = {}
    reply = _Reply(body if isinstance(body, dict) else {"body": body})
    reply.answer = answer
    return reply


class AliasRouting:
    """Per-model policies, alias targets and shadow logs of one ingress replica."""

    def __init__(
        self,
        *,
        home: Path,
        primary_alias: str,
        make_target: Callable[[str, str], Any],
        poll_s: float = 1.0,
    ) -> None:
        self.home = Path(home)
        self.primary_alias = primary_alias
        self.make_target = make_target
        self.poll_s = poll_s
        # Canary steps are written from replicas: the registry's file lock and audit log, no MLflow needed.
        self.state = TrafficStateStore(
            home=self.home,
            audit=AuditLog(self.home / "audit.db"),
            lock=lambda: file_lock(self.home / "registry.lock"),
        )
        self.traffic: dict[str, ModelTraffic] = {}
        self.targets: dict[tuple[str, str], Any] = {}

    def _traffic(self, name: str) -> ModelTraffic:
        if name not in self.traffic:
            self.traffic[name] = ModelTraffic(
                model=name,
                state=self.state,
                shadow_log=ShadowLog(home=self.home, model=name),
                poll_s=self.poll_s,
            )
        return self.traffic[name]

    def _target(self, name: str, alias: str, base: Any) -> Any:
        if alias == self.primary_alias:
            return base
        if (name, alias) not in self.targets:
            self.targets[(name, alias)] = self.make_target(name, alias)
        return self.targets[(name, alias)]

    async def infer(
        self,
        name: str,
        base: Any,
        *,
        route: Route,
        raw: bytes,
        version: str | None,
        header_length: str | None,
        headers: Mapping[str, str],
    ) -> Answer:
        """Answer one prediction request of ``name`` under its traffic policy."""
        traffic = self._traffic(name)
        traffic.refresh()
        if traffic.policy.kind == "single":
            answer: Answer = await base.infer(
                route, raw=raw, version=version, header_length=header_length
            )
            return answer
        body: Any = None
        if route == "simple":
            try:
                body = json.loads(raw)
            except ValueError:
                body = None  # the endpoint answers the malformed body with its 400
        row = None
        if isinstance(body, dict):
            inputs = body.get("inputs")
            row = (
                inputs
                if isinstance(inputs, dict)
                else inputs[0]
                if isinstance(inputs, list) and inputs
                else None
            )
        decision = traffic.decide(
            request_key=traffic.request_key(
                headers=headers, row=row if isinstance(row, dict) else None
            )
        )
        request_id = None
        if decision.shadow_alias is not None and isinstance(body, dict):
            # Both answers must carry the same id, so late labels can score them side by side.
            if not isinstance(body.get("request_id"), str):
                body["request_id"] = uuid.uuid4().hex
                raw = json.dumps(body).encode()
            request_id = body["request_id"]

        async def call(alias: str) -> _Reply:
            try:
                target = self._target(name, alias, base)
            except (
                RaycoreError
            ) as exc:  # the alias names no loadable version: a failure of that alias
                raise _Failed(
                    overloaded_answer(
                        route,
                        f"model '{name}@{alias}' cannot be loaded: {exc.message}",
                        retry_after_s=5,
                    )
                ) from exc
            answer = await target.infer(
                route, raw=raw, version=version, header_length=header_length
            )
            if answer.status >= 500:
                raise _Failed(answer)
            return _reply(answer)

        try:
            reply = await traffic.call(decision, call=call, request_id=request_id)
        except _Failed as failed:
            return failed.answer
        return reply.answer

    async def close(self) -> None:
        for target in self.targets.values():
            await target.close()
