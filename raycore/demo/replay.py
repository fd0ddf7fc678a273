"""Replaying recorded applications as live HTTP traffic, and waiting for what the foundry writes down.

``HttpReplay`` sends rows of a data world to a served model's simple route
(``POST /v1/models/<name>/predict``) in requests of a few rows, each with its
own request id, from a few client threads. What it keeps per row — request id,
row position, the entity key and the answering version — is exactly what late
labels are keyed by (``raycore.feedback.record_labels``). The serving replicas
write the prediction log and the shadow records off the request path, so the
replay can wait until they hold what it sent (``wait_logged``,
``wait_shadowed``) before anything reads them.

Example:
    >>> replay = HttpReplay(endpoint="http://127.0.0.1:8000", model="credit_risk",
    ...                     inputs=["application_id", "annual_income", ...])      # doctest: +SKIP
    >>> sent = replay.send(rows, prefix="calm-w0")                                # doctest: +SKIP
    >>> sent.answers[["request_id", "row", "version"]].head()                     # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from raycore.errors import ServingError

__all__ = ["HttpReplay", "Sent"]


@dataclass(frozen=True)
class Sent:
    """One replayed batch: a row per answered input row, and the wall-clock span it was sent in."""

    answers: pd.DataFrame  # request_id, row, key, version, prediction
    started: pd.Timestamp
    finished: pd.Timestamp

    @property
    def request_ids(self) -> list[str]:
        return sorted(self.answers["request_id"].unique().tolist())


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float | np.floating):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


class HttpReplay:
    """Send data-world rows to one served model over HTTP; see the module docstring."""

    def __init__(
        self,
        *,
        endpoint: str,
        model: str,
        inputs: Sequence[str],
        key: str,
        rows_per_request: int = 20,
        clients: int = 4,
        timeout_s: float = 60.0,
    ) -> None:
        if rows_per_request < 1 or clients < 1:
            raise ValueError(
                f"rows_per_request ({rows_per_request}) and clients ({clients}) must be >= 1"
            )
        if key not in inputs:
            raise ValueError(f"key {key!r} must be one of the inputs {list(inputs)}")
        self.url = f"{endpoint.rstrip('/')}/v1/models/{model}/predict"
        self.model = model
        self.inputs = list(inputs)
        self.key = key
        self.rows_per_request = rows_per_request
        self.clients = clients
        self.timeout_s = timeout_s
        self._http = httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def _post(self, request_id: str, part: pd.DataFrame) -> pd.DataFrame:
        records = [
            {name: _jsonable(v) for name, v in zip(self.inputs, values, strict=True)}
            for values in part[self.inputs].itertuples(index=False, name=None)
        ]
        try:
            answer = self._http.post(self.url, json={"inputs": records, "request_id": request_id})
        except httpx.HTTPError as exc:
            raise ServingError(
                f"request {request_id} to {self.url} failed: {exc}",
                hint="is the foundry app still running?",
            ) from exc
        if answer.status_code != 200:
            raise ServingError(
                f"request {request_id} to {self.url} answered HTTP {answer.status_code}: {answer.text[:300]}",
                hint="the replayed rows must satisfy the model's input schema",
            )
        body = answer.json()
        predictions = body.get("predictions")
        if not isinstance(predictions, list) or len(predictions) != len(part):
            raise ServingError(
                f"request {request_id}: expected {len(part)} predictions, got {predictions!r:.200}"
            )
        return pd.DataFrame(
            {
                "request_id": request_id,
                "row": np.arange(len(part), dtype="int64"),
                "key": part[self.key].to_numpy(),
                "version": str(body.get("model_version")),
                "prediction": np.asarray(predictions, dtype="float64"),
            }
        )

    def send(self, rows: pd.DataFrame, *, prefix: str) -> Sent:
        """Send ``rows`` in requests of ``rows_per_request`` rows; request ids are ``<prefix>-<n>``."""
        missing = [c for c in self.inputs if c not in rows.columns]
        if missing:
            raise ValueError(f"rows lack the model input(s) {missing}")
        if rows.empty:
            raise ValueError(f"nothing to send for {prefix}: no rows")
        parts = [
            (f"{prefix}-{i}", rows.iloc[start : start + self.rows_per_request])
            for i, start in enumerate(range(0, len(rows), self.rows_per_request))
        ]
        started = pd.Timestamp.now(tz="UTC")
        with ThreadPoolExecutor(max_workers=self.clients) as pool:
            frames = list(pool.map(lambda p: self._post(*p), parts))
        finished = pd.Timestamp.now(tz="UTC")
        return Sent(
            answers=pd.concat(frames, ignore_index=True), started=started, finished=finished
        )

    def wait_logged(self, *, home: Path, sent: Sequence[Sent], timeout_s: float = 60.0) -> int:
        """Block until the prediction log holds every row of ``sent``; return how many it holds."""
        from raycore.serving.prediction_log import read_prediction_log

        ids = {rid for s in sent for rid in s.request_ids}
        want = sum(len(s.answers) for s in sent)
        since = min(s.started for s in sent) - pd.Timedelta(seconds=1)
        deadline = time.monotonic() + timeout_s
        have = 0
        while True:
            log = read_prediction_log(home=home, model=self.model, since=since)
            have = int(log["request_id"].astype(str).isin(ids).sum()) if not log.empty else 0
            if have >= want:
                return have
            if time.monotonic() > deadline:
                raise ServingError(
                    f"the prediction log of {self.model} holds {have} of the {want} rows sent after {timeout_s:.0f}s",
                    hint="the replicas flush their log every few seconds; is the log buffer dropping rows?",
                )
            time.sleep(0.5)

    def wait_shadowed(self, *, home: Path, sent: Sent, timeout_s: float = 60.0) -> int:
        """Block until a shadow comparison record exists for every request of ``sent``; return the count."""
        from raycore.serving.traffic import ShadowLog

        ids = set(sent.request_ids)
        deadline = time.monotonic() + timeout_s
        while True:
            seen = {
                str(r.get("request_id"))
                for r in ShadowLog(home=home, model=self.model).records()
                if str(r.get("request_id")) in ids
            }
            if len(seen) >= len(ids):
                return len(seen)
            if time.monotonic() > deadline:
                raise ServingError(
                    f"only {len(seen)} of {len(ids)} requests of {self.model} have a shadow record after {timeout_s:.0f}s",
                    hint="is a shadow traffic policy active for the model?",
                )
            time.sleep(0.5)
