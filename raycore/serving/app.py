"""The Serve application: one ingress deployment answering for the catalog's models.

Routes (JSON; single rows and batches of rows on every POST route):
    GET  /v2/health/live, /v2/health/ready      liveness / readiness
    Open Inference Protocol v2 (KServe / Triton; tritonclient.http works unchanged):
    GET  /v2                                     server metadata (name, version, extensions)
    GET  /v2/models/{name}[/versions/{v}]        model metadata: inputs, outputs, version
    GET  /v2/models/{name}[/versions/{v}]/ready  model readiness
    POST /v2/models/{name}[/versions/{v}]/infer  one tensor per input column (JSON or binary tensors)
    MLflow scoring server:
    POST /v1/models/{name}/invocations           dataframe_split | dataframe_records | inputs | instances
    Simple JSON:
    GET  /v1/models                              the models this app serves
    GET  /v1/models/{name}                       one model: version, inputs, metrics
    POST /v1/models/{name}/predict               {"inputs": {...} | [{...}, ...]}
    GET  /docs, /openapi.json                    OpenAPI page

Every answer of a served model's route names the version that answered: the
``x-model-version`` header (errors included), and ``model_version`` in every
prediction body. Bodies may be gzip/deflate-encoded (``Content-Encoding``).
Every route validates rows the same way (``RowSchema``): a wrong type, a
missing input or too many rows is a 4xx naming the field (422 on the simple
route, 400 in the OIP and MLflow shapes), a body that is not JSON 400, a body
over ``max_body_bytes`` 413, an unknown model (or version) 404.

Each replica loads ``models:/<name>@<alias>`` from the MLflow registry at start.

Example:
    >>> app = build_app(AppArgs(models=["sales_forecasting"], tracking_uri="sqlite:///..."))  # doctest: +SKIP
    >>> serve.run(app, name="foundry", route_prefix="/")                                       # doctest: +SKIP
"""

import logging
import zlib
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema
from ray import serve
from ray.serve import Application

import raycore
from raycore.errors import InputValidationError, RaycoreError
from raycore.serving import protocols
from raycore.serving.predictor import Predictor
from raycore.serving.protocols import OUTPUT_PREDICTIONS, OUTPUT_PROBABILITIES
from raycore.serving.schemas import MAX_ROWS

__all__ = ["AppArgs", "FoundryServer", "build_app"]

log = logging.getLogger(__name__)
VERSION_HEADER = "x-model-version"


class AppArgs(BaseModel):
    """Arguments of the Serve application (also the `args` of serve_apps/foundry.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: list[str] = Field(min_length=1, description="Registered model names to serve.")
    alias: str = Field(default="champion", description="Registry alias each model is loaded at.")
    tracking_uri: str = Field(description="MLflow tracking/registry URI.")
    home: str = Field(default=".foundry", description="FOUNDRY_HOME of the replicas.")
    online_store_uri: str | None = Field(
        default=None, description="Online feature store (redis://...); empty: SQLite under home."
    )
    max_rows: int = Field(default=MAX_ROWS, ge=1, le=1_000_000, description="Max rows per request.")
    max_body_bytes: int = Field(
        default=32 * 2**20, ge=1024, le=2**31, description="Max request body (after decompression); larger: 413."
    )
    num_replicas: int = Field(default=1, ge=1, le=64, description="Replicas of the ingress.")
    replica_cpus: float = Field(default=0.5, ge=0, le=64, description="CPUs reserved per replica.")


class SimplePredictRequest(BaseModel):
    """POST /v1/models/{name}/predict (documentation; rows are validated against the model's inputs)."""

    inputs: dict[str, Any] | list[dict[str, Any]] = Field(description="One row, or a list of rows.")
    request_id: str | None = Field(default=None, description="Echoed in the response.")
    parameters: dict[str, Any] | None = None


class _FoundryAPI(FastAPI):
    """FastAPI whose OpenAPI page also documents the raw-bodied routes' request schemas."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            schema = get_openapi(title=self.title, version=self.version, description=self.description, routes=self.routes)
            _, defs = models_json_schema(
                [(m, "validation") for m in _BODY_MODELS.values()], ref_template="#/components/schemas/{model}"
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
            self.openapi_schema = schema
        return self.openapi_schema


_BODY_MODELS: dict[str, type[BaseModel]] = {
    "simple": SimplePredictRequest,
    "oip": protocols.OipInferRequest,
    "mlflow": protocols.ScoringRequestDoc,
}


def _body(kind: str, *, binary: bool = False) -> dict[str, Any]:
    """openapi_extra: the request body schema of a route that parses its body itself."""
    content: dict[str, Any] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{_BODY_MODELS[kind].__name__}"}}}
    if binary:
        content["application/octet-stream"] = {
            "schema": {"type": "string", "format": "binary",
                       "description": f"JSON header ({protocols.BINARY_HEADER} bytes), then binary tensors"}
        }
    return {"requestBody": {"required": True, "content": content}}


api = _FoundryAPI(
    title="Data Foundry",
    version=raycore.__version__,
    description=(
        "Predictions from the Data Foundry model catalog: the Open Inference Protocol v2 (`/v2`), "
        "MLflow's scoring format (`/v1/models/{name}/invocations`) and a simple JSON route "
        "(`/v1/models/{name}/predict`). Every answer names the model version (`x-model-version`)."
    ),
)


class _BadBody(Exception):
    """A body that cannot even be read (too large, unknown encoding); never leaves this module."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


async def _read_body(request: Request, limit: int) -> bytes:
    """The (decompressed) body, refusing more than ``limit`` bytes before holding them."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and len(declared) <= 18 and int(declared) > limit:
        raise _BadBody(413, f"request body of {declared} bytes is over the limit of {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BadBody(413, f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "deflate"):
        raise _BadBody(415, f"content-encoding '{encoding[:40]}' is not supported (use gzip or deflate)")
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise _BadBody(400, f"request body is not valid {encoding} data: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise _BadBody(413, f"decompressed request body is over the limit of {limit} bytes")
    return out


def _versioned(predictor: Predictor | None, status: int, body: Any) -> JSONResponse:
    headers = {VERSION_HEADER: predictor.version} if predictor is not None else None
    return JSONResponse(status_code=status, content=body, headers=headers)


def _error(
    status: int, message: str, *, detail: Any = None, hint: str | None = None, predictor: Predictor | None = None
) -> JSONResponse:
    """The simple route's error shape."""
    body: dict[str, Any] = {"error": message}
    if detail is not None:
        body["detail"] = detail
    if hint:
        body["hint"] = hint
    return _versioned(predictor, status, body)


def _oip_error(status: int, message: str, *, predictor: Predictor | None = None) -> JSONResponse:
    """OIP's error shape: ``{"error": "..."}`` (what tritonclient raises with)."""
    return _versioned(predictor, status, {"error": message})


def _mlflow_error(
    status: int, message: str, *, detail: Any = None, hint: str | None = None, predictor: Predictor | None = None
) -> JSONResponse:
    """MLflow's error shape (``MlflowException.serialize_as_json``) plus where and how to fix."""
    code = "RESOURCE_DOES_NOT_EXIST" if status == 404 else "INTERNAL_ERROR" if status >= 500 else "BAD_REQUEST"
    body: dict[str, Any] = {"error_code": code, "message": message}
    if detail is not None:
        body["detail"] = detail
    if hint:
        body["hint"] = hint
    return _versioned(predictor, status, body)


@serve.deployment(name="FoundryServer", max_ongoing_requests=64)
@serve.ingress(api)
class FoundryServer:
    """Ingress deployment: validates requests and predicts with in-process bundles."""

    def __init__(self, args: dict[str, Any]) -> None:
        from raycore.registry.store import ModelStore
        from raycore.settings import FoundrySettings

        self.args = AppArgs.model_validate(args)
        settings = FoundrySettings.load(
            home=self.args.home,
            mlflow_tracking_uri=self.args.tracking_uri,
            online_store_uri=self.args.online_store_uri,
        )
        store = ModelStore(settings)
        self.online = settings.online_store()
        self.predictors: dict[str, Predictor] = {}
        for name in self.args.models:
            bundle, version = store.load_bundle(name, alias=self.args.alias)
            self.predictors[name] = Predictor(
                bundle=bundle, version=version, online=self.online, max_rows=self.args.max_rows
            )
            log.info("loaded %s v%s (%s)", name, version, self.args.alias)

    # ------------------------------------------------------------------ health, simple JSON

    @api.get("/v2/health/live")
    def live(self) -> dict[str, bool]:
        return {"live": True}

    @api.get("/v2/health/ready")
    def ready(self) -> dict[str, bool]:
        return {"ready": bool(self.predictors)}

    @api.get("/v1/models")
    def list_models(self) -> dict[str, Any]:
        return {"models": [p.describe() for p in self.predictors.values()]}

    @api.get("/v1/models/{name}")
    def describe(self, name: str) -> Any:
        predictor = self.predictors.get(name)
        if predictor is None:
            return self._unknown(name)
        return _versioned(predictor, 200, predictor.describe())

    @api.post("/v1/models/{name}/predict", openapi_extra=_body("simple"))
    async def predict(self, name: str, request: Request) -> Any:
        predictor = self.predictors.get(name)
        if predictor is None:
            return self._unknown(name)
        try:
            body = protocols.decode_json(await _read_body(request, self.args.max_body_bytes))
        except _BadBody as exc:
            return _error(exc.status, exc.message, predictor=predictor)
        except InputValidationError as exc:
            return _error(400, exc.message, hint='send {"inputs": {...}}', predictor=predictor)
        try:
            return _versioned(predictor, 200, predictor.predict(body))
        except InputValidationError as exc:
            return _error(422, exc.message, detail=exc.errors, hint=exc.hint, predictor=predictor)
        except RaycoreError as exc:
            return _error(422, exc.message, hint=exc.hint, predictor=predictor)
        except Exception as exc:  # the replica must keep serving whatever a row holds
            log.exception("prediction failed for %s", name)
            return _error(500, f"prediction failed: {type(exc).__name__}: {exc}", predictor=predictor)

    def _unknown(self, name: str) -> JSONResponse:
        return _error(
            404, f"model '{name}' is not served here", hint=f"served models: {', '.join(self.predictors)}"
        )

    # ------------------------------------------------------------------ Open Inference Protocol v2

    @api.get("/v2", response_model=protocols.OipServerMetadata)
    def oip_server(self) -> dict[str, Any]:
        return protocols.server_metadata()

    @api.get("/v2/models/{name}", response_model=protocols.OipModelMetadata)
    def oip_model(self, name: str) -> Any:
        return self._oip_metadata(name, None)

    @api.get("/v2/models/{name}/versions/{version}", response_model=protocols.OipModelMetadata)
    def oip_model_version(self, name: str, version: str) -> Any:
        return self._oip_metadata(name, version)

    @api.get("/v2/models/{name}/ready")
    def oip_model_ready(self, name: str) -> Any:
        return self._oip_ready(name, None)

    @api.get("/v2/models/{name}/versions/{version}/ready")
    def oip_model_version_ready(self, name: str, version: str) -> Any:
        return self._oip_ready(name, version)

    @api.post(
        "/v2/models/{name}/infer",
        openapi_extra=_body("oip", binary=True),
        responses={200: {"model": protocols.OipInferResponse}},
    )
    async def oip_infer(self, name: str, request: Request) -> Response:
        return await self._oip_infer(name, None, request)

    @api.post(
        "/v2/models/{name}/versions/{version}/infer",
        openapi_extra=_body("oip", binary=True),
        responses={200: {"model": protocols.OipInferResponse}},
    )
    async def oip_infer_version(self, name: str, version: str, request: Request) -> Response:
        return await self._oip_infer(name, version, request)

    def _oip_predictor(self, name: str, version: str | None) -> Predictor | JSONResponse:
        predictor = self.predictors.get(name)
        if predictor is None:
            return _oip_error(404, f"model '{name}' is not served here (served: {', '.join(self.predictors)})")
        if version is not None and version != predictor.version:
            return _oip_error(
                404, f"model '{name}' version '{version}' is not served here (serving v{predictor.version})",
                predictor=predictor,
            )
        return predictor

    def _oip_metadata(self, name: str, version: str | None) -> Response:
        predictor = self._oip_predictor(name, version)
        if not isinstance(predictor, Predictor):
            return predictor
        md = predictor.bundle.metadata
        body = protocols.model_metadata(
            name=name,
            version=predictor.version,
            platform=f"raycore_{md.family}",
            input_schema=md.input_schema,
            classes=predictor.classes,
        )
        return _versioned(predictor, 200, body)

    def _oip_ready(self, name: str, version: str | None) -> Response:
        predictor = self._oip_predictor(name, version)
        if not isinstance(predictor, Predictor):
            return predictor
        return _versioned(predictor, 200, {"name": name, "ready": True})

    async def _oip_infer(self, name: str, version: str | None, request: Request) -> Response:
        predictor = self._oip_predictor(name, version)
        if not isinstance(predictor, Predictor):
            return predictor
        try:
            raw = await _read_body(request, self.args.max_body_bytes)
        except _BadBody as exc:
            return _oip_error(exc.status, exc.message, predictor=predictor)
        outputs = [OUTPUT_PREDICTIONS, *([OUTPUT_PROBABILITIES] if predictor.classes else [])]

        def answer() -> Response:
            parsed = protocols.parse_infer_request(
                raw,
                schema=predictor.schema,
                header_length=request.headers.get(protocols.BINARY_HEADER),
                outputs=outputs,
            )
            result = predictor.run(
                parsed.frame, locate=parsed.locate, probabilities=OUTPUT_PROBABILITIES in parsed.outputs
            )
            reply = protocols.infer_response(
                model_name=name,
                model_version=predictor.version,
                request_id=parsed.id,
                values=result.values,
                probabilities=None if result.probabilities is None else result.probabilities.to_numpy(),
                classes=predictor.classes,
                outputs=parsed.outputs,
            )
            headers = {VERSION_HEADER: predictor.version}
            if reply.header_length is not None:
                headers[protocols.BINARY_HEADER] = str(reply.header_length)
            return Response(content=reply.content, media_type=reply.media_type, headers=headers)

        def fail(status: int, exc: RaycoreError) -> Response:
            message = f"{exc.message}; hint: {exc.hint}" if exc.hint else exc.message
            return _oip_error(status, message, predictor=predictor)

        return self._guarded(name, predictor, answer, fail)

    # ------------------------------------------------------------------ MLflow scoring server

    @api.post(
        "/v1/models/{name}/invocations",
        openapi_extra=_body("mlflow"),
        responses={200: {"model": protocols.ScoringResponseDoc}},
    )
    async def invocations(self, name: str, request: Request) -> Response:
        predictor = self.predictors.get(name)
        if predictor is None:
            return _mlflow_error(
                404, f"model '{name}' is not served here", hint=f"served models: {', '.join(self.predictors)}"
            )
        try:
            raw = await _read_body(request, self.args.max_body_bytes)
        except _BadBody as exc:
            return _mlflow_error(exc.status, exc.message, predictor=predictor)

        def answer() -> Response:
            parsed = protocols.parse_scoring_request(protocols.decode_json(raw), schema=predictor.schema)
            result = predictor.run(parsed.frame, locate=parsed.locate)
            body = protocols.scoring_response(
                predictions=result.jsonable(), model_name=name, model_version=predictor.version
            )
            return _versioned(predictor, 200, body)

        def fail(status: int, exc: RaycoreError) -> Response:
            detail = exc.errors if isinstance(exc, InputValidationError) else None
            return _mlflow_error(status, exc.message, detail=detail, hint=exc.hint, predictor=predictor)

        return self._guarded(name, predictor, answer, fail)

    # ------------------------------------------------------------------

    @staticmethod
    def _guarded(
        name: str,
        predictor: Predictor,
        answer: Callable[[], Response],
        fail: Callable[[int, RaycoreError], Response],
    ) -> Response:
        """``answer()``, with bad input as a 400 in the protocol's error shape and nothing escaping."""
        try:
            return answer()
        except RaycoreError as exc:  # InputValidationError, and DataError from the feature view
            return fail(400, exc)
        except Exception as exc:  # the replica must keep serving whatever a row holds
            log.exception("prediction failed for %s v%s", name, predictor.version)
            return fail(500, RaycoreError(f"prediction failed: {type(exc).__name__}: {exc}"))


def build_app(args: AppArgs) -> Application:
    """The typed Serve application builder."""
    return FoundryServer.options(  # type: ignore[attr-defined]
        num_replicas=args.num_replicas,
        ray_actor_options={"num_cpus": args.replica_cpus},
    ).bind(args.model_dump())
