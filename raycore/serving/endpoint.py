"""One served model's routes, Ray-free: validate, batch, predict, answer, log.

A ``ModelEndpoint`` answers every route of one model — metadata (``meta``),
the simple JSON route, the Open Inference Protocol and MLflow scoring
(``infer``), and the admin reload — with an ``Answer`` that names the version
that answered. It lives wherever the model is hosted: in the ingress (hot
models, no extra hop), in a dedicated model deployment, or in a replica of the
multiplexed deployment. The ingress only reads the body and routes; the code
below is the same wherever it runs.

One request, one version: ``infer`` takes ``model.current`` once, validates
against that version's schema, predicts with it (through the batcher, which
keeps each request's predictor) and names it in the answer, so a hot reload
in between changes nothing for that request.

Example:
    >>> endpoint = ModelEndpoint(model=reloading, submit=batcher.submit, log=prediction_log)    # doctest: +SKIP
    >>> answer = await endpoint.infer("simple", raw=b'{"inputs": {"store_id": 3, ...}}')       # doctest: +SKIP
    >>> answer.status, answer.version
    (200, '4')
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from raycore.errors import InputValidationError, RaycoreError
from raycore.serving import protocols
from raycore.serving.answers import (
    VERSION_HEADER,
    Answer,
    Route,
    error_answer,
    json_answer,
    overloaded_answer,
)
from raycore.serving.batching import Overloaded
from raycore.serving.extras import AnswerOptions, answer_extras
from raycore.serving.hot_reload import ReloadingModel
from raycore.serving.prediction_log import PredictionLog
from raycore.serving.predictor import Prediction, Predictor, RowRequest
from raycore.serving.protocols import OUTPUT_PREDICTIONS, OUTPUT_PROBABILITIES

__all__ = ["MetaKind", "ModelEndpoint", "Submit"]

log = logging.getLogger(__name__)

Submit = Callable[[Predictor, RowRequest], Awaitable[Prediction]]
MetaKind = str  # "describe" | "oip_metadata" | "oip_ready"


async def run_inline(predictor: Predictor, item: RowRequest) -> Prediction:
    """Predict one request alone, on the caller's event loop (no batching)."""
    result = predictor.run_many([item])[0]
    if isinstance(result, Prediction):
        return result
    raise result


class ModelEndpoint:
    """Every route of one model, answered by the version ``model`` holds right now."""

    def __init__(
        self,
        *,
        model: ReloadingModel,
        submit: Submit = run_inline,
        log: PredictionLog | None = None,
        home: str | None = None,
    ) -> None:
        self.model = model
        self.submit = submit
        self.log = log
        self.home = home
        self._decisions: tuple[Any, Any] | None = None  # (ThresholdReader | None, conformal policy | None)

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def version(self) -> str:
        return self.model.current.version

    # ------------------------------------------------------------------ metadata

    def meta(self, kind: MetaKind, *, version: str | None = None) -> Answer:
        """``describe`` (simple route), ``oip_metadata`` or ``oip_ready`` of the current version."""
        predictor = self.model.current
        if kind == "describe":
            return json_answer(200, predictor.describe(), version=predictor.version)
        if version is not None and version != predictor.version:
            return self._wrong_version(predictor, version)
        if kind == "oip_ready":
            return json_answer(200, {"name": self.name, "ready": True}, version=predictor.version)
        if kind == "oip_metadata":
            md = predictor.bundle.metadata
            body = protocols.model_metadata(
                name=self.name,
                version=predictor.version,
                platform=f"raycore_{md.family}",
                input_schema=md.input_schema,
                classes=predictor.classes,
            )
            return json_answer(200, body, version=predictor.version)
        raise ValueError(
            f"unknown metadata kind {kind!r} (use describe, oip_metadata or oip_ready)"
        )

    # ------------------------------------------------------------------ predictions

    async def infer(
        self,
        route: Route,
        *,
        raw: bytes,
        version: str | None = None,
        header_length: str | None = None,
    ) -> Answer:
        """Answer a prediction request of ``route`` whose (decompressed) body is ``raw``."""
        started = time.perf_counter()
        predictor = self.model.current
        if version is not None and version != predictor.version:
            return self._wrong_version(predictor, version)
        try:
            if route == "simple":
                return await self._simple(predictor, raw, started)
            if route == "oip":
                return await self._oip(predictor, raw, header_length, started)
            if route == "mlflow":
                return await self._mlflow(predictor, raw, started)
            raise ValueError(f"unknown route {route!r} (use simple, oip or mlflow)")
        except Overloaded as exc:
            return overloaded_answer(
                route, exc.message, retry_after_s=exc.retry_after_s, version=predictor.version
            )
        except InputValidationError as exc:
            status = 422 if route == "simple" else 400
            detail = None if route == "oip" else exc.errors
            return error_answer(
                route, status, exc.message, detail=detail, hint=exc.hint, version=predictor.version
            )
        except RaycoreError as exc:  # DataError from the feature view
            status = 422 if route == "simple" else 400
            return error_answer(
                route, status, exc.message, hint=exc.hint, version=predictor.version
            )
        except Exception as exc:  # the replica must keep serving whatever a row holds
            log.exception("prediction failed for %s v%s", self.name, predictor.version)
            message = f"prediction failed: {type(exc).__name__}: {exc}"
            return error_answer(route, 500, message, version=predictor.version)

    def _decision_state(self, predictor: Predictor) -> tuple[Any, Any]:
        """The live threshold reader (binary models) and the conformal automation policy, from the catalog."""
        if self._decisions is None:
            from raycore.catalog import load_catalog
            from raycore.errors import CatalogError
            from raycore.thresholds import ThresholdReader

            md = predictor.bundle.metadata
            try:
                spec = load_catalog().get(md.model_id)
            except CatalogError:  # a model from an extra catalog folder: defaults
                spec = None
            reader = None
            if md.task == "binary" and self.home is not None:
                default = spec.threshold.default if spec is not None and spec.threshold is not None else 0.5
                reader = ThresholdReader(home=Path(self.home), model=self.name, default=default)
            policy = spec.conformal.policy if spec is not None and spec.conformal is not None else None
            self._decisions = (reader, policy)
        return self._decisions

    def _extras(self, predictor: Predictor, result: Prediction, params: Any) -> dict[str, Any]:
        """Decisions at the live threshold, and the intervals/sets/explanations the request asked for."""
        options = AnswerOptions.parse(params if isinstance(params, dict) else None)
        reader, policy = self._decision_state(predictor)
        if reader is None and not options.any:
            return {}
        if result.raw is None:
            raise InputValidationError("this answer cannot carry explanations or intervals", hint="ask without them")
        return answer_extras(
            predictor.bundle,
            result.raw.reset_index(drop=True),
            result.values,
            options=options,
            threshold=None if reader is None else reader.current(),
            policy=policy if options.level is not None else None,
        )

    async def _simple(self, predictor: Predictor, raw: bytes, started: float) -> Answer:
        try:
            body = protocols.decode_json(raw)
        except InputValidationError as exc:
            return error_answer(
                "simple", 400, exc.message, hint='send {"inputs": {...}}', version=predictor.version
            )
        records = predictor.schema.parse_records(body)
        single = isinstance(body.get("inputs"), dict)
        item = RowRequest(records, predictor.schema.simple_locate(single=single))
        params = body.get("parameters")
        AnswerOptions.parse(params if isinstance(params, dict) else None)  # a bad option fails before predicting
        result = await self.submit(predictor, item)
        given = body.get("request_id")
        request_id = given if isinstance(given, str) else uuid.uuid4().hex
        answer = json_answer(
            200,
            {
                "model_name": self.name,
                "model_version": predictor.version,
                "request_id": request_id,
                "predictions": result.jsonable(),
                **self._extras(predictor, result, params),
                "latency_ms": result.latency_ms,
            },
            version=predictor.version,
        )
        self._log(predictor, "simple", request_id, item, result, started)
        return answer

    async def _oip(
        self, predictor: Predictor, raw: bytes, header_length: str | None, started: float
    ) -> Answer:
        outputs = [OUTPUT_PREDICTIONS, *([OUTPUT_PROBABILITIES] if predictor.classes else [])]
        parsed = protocols.parse_infer_request(
            raw, schema=predictor.schema, header_length=header_length, outputs=outputs
        )
        item = RowRequest(
            parsed.frame, parsed.locate, probabilities=OUTPUT_PROBABILITIES in parsed.outputs
        )
        AnswerOptions.parse(parsed.parameters)  # a bad option fails before predicting
        result = await self.submit(predictor, item)
        request_id = parsed.id or uuid.uuid4().hex
        reply = protocols.infer_response(
            model_name=self.name,
            model_version=predictor.version,
            request_id=request_id,
            values=result.values,
            probabilities=None if result.probabilities is None else result.probabilities.to_numpy(),
            classes=predictor.classes,
            outputs=parsed.outputs,
            parameters=self._extras(predictor, result, parsed.parameters),
        )
        headers = {VERSION_HEADER: predictor.version}
        if reply.header_length is not None:
            headers[protocols.BINARY_HEADER] = str(reply.header_length)
        self._log(predictor, "oip", request_id, item, result, started)
        return Answer(
            status=200, content=reply.content, media_type=reply.media_type, headers=headers
        )

    async def _mlflow(self, predictor: Predictor, raw: bytes, started: float) -> Answer:
        parsed = protocols.parse_scoring_request(
            protocols.decode_json(raw), schema=predictor.schema
        )
        item = RowRequest(parsed.frame, parsed.locate)
        AnswerOptions.parse(parsed.params)  # a bad option fails before predicting
        result = await self.submit(predictor, item)
        body = protocols.scoring_response(
            predictions=result.jsonable(),
            model_name=self.name,
            model_version=predictor.version,
            extras=self._extras(predictor, result, parsed.params),
        )
        self._log(predictor, "mlflow", uuid.uuid4().hex, item, result, started)
        return json_answer(200, body, version=predictor.version)

    def _log(
        self,
        predictor: Predictor,
        route: str,
        request_id: str,
        item: RowRequest,
        result: Prediction,
        started: float,
    ) -> None:
        if self.log is None:
            return
        self.log.append(
            model=self.name,
            version=predictor.version,
            alias=self.model.alias,
            route=route,
            request_id=request_id,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            rows=item.rows if result.raw is None else result.raw,  # the assembled rows: monitors rebuild features
            values=result.values,
            probabilities=result.probabilities,
        )

    def _wrong_version(self, predictor: Predictor, version: str) -> Answer:
        return error_answer(
            "oip",
            404,
            f"model '{self.name}' version '{version}' is not served here (serving v{predictor.version})",
            version=predictor.version,
        )

    # ------------------------------------------------------------------ admin

    async def reload(self, *, force: bool = True) -> Answer:
        """Check the alias now and swap in the version it names (``force``: reload even if unchanged)."""
        try:
            report: dict[str, Any] = await self.model.refresh(force=force)
        except RaycoreError as exc:
            return error_answer(
                "simple", 502, f"reload failed: {exc.message}", hint=exc.hint, version=self.version
            )
        except Exception as exc:  # a broken bundle must leave the old version serving
            log.exception("reload of %s failed", self.name)
            return error_answer(
                "simple", 502, f"reload failed: {type(exc).__name__}: {exc}", version=self.version
            )
        return json_answer(200, report, version=self.version)
