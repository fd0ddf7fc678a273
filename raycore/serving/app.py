"""The Serve application: one ingress that reads and routes requests to the catalog's models.

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
    Admin:
    POST /admin/models/{name}/reload             check the alias now and swap in its version
    GET  /docs, /openapi.json                    OpenAPI page

Every answer of a served model's route names the version that answered: the
``x-model-version`` header (errors included), and ``model_version`` in every
prediction body. Bodies may be gzip/deflate-encoded (``Content-Encoding``).
Every route validates rows the same way (``RowSchema``): a wrong type, a
missing input or too many rows is a 4xx naming the field (422 on the simple
route, 400 in the OIP and MLflow shapes), a body that is not JSON 400, a body
over ``max_body_bytes`` 413, an unknown model (or version) 404, an overloaded
model 503 with ``Retry-After``.

The ingress reads bodies and routes; each model's ``ModelEndpoint`` validates,
batches, predicts and logs, wherever the topology puts it (``topology.py``):
hot models in the ingress process, the long tail in the multiplexed
deployment. Replicas follow their alias (hot reload, ``hot_reload.py``).

Example:
    >>> app = build_app(AppArgs(models=["sales_forecasting"], tracking_uri="sqlite:///..."))  # doctest: +SKIP
    >>> serve.run(app, name="foundry", route_prefix="/")                                       # doctest: +SKIP
"""

import logging
import time
import zlib
from typing import Any, Protocol

from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema
from ray import serve
from ray.serve import Application

import raycore
from raycore.serving import protocols
from raycore.serving.answers import VERSION_HEADER, Answer, Route, error_answer
from raycore.serving.topology import AppArgs, plan_topology
from raycore.specs.serving import ServingSpec

__all__ = ["VERSION_HEADER", "AppArgs", "FoundryServer", "build_app"]

log = logging.getLogger(__name__)


class Target(Protocol):
    """Where one model answers: in this process (LocalTarget) or behind a handle (RemoteTarget)."""

    name: str
    multiplexed: bool

    @property
    def version(self) -> str | None: ...

    async def meta(self, kind: str, *, version: str | None = None) -> Answer: ...

    async def infer(
        self,
        route: Route,
        *,
        raw: bytes,
        version: str | None = None,
        header_length: str | None = None,
    ) -> Answer: ...

    async def reload(self, *, force: bool = True) -> Answer: ...

    async def close(self) -> None: ...


class SimplePredictRequest(BaseModel):
    """POST /v1/models/{name}/predict (documentation; rows are validated against the model's inputs)."""

    inputs: dict[str, Any] | list[dict[str, Any]] = Field(description="One row, or a list of rows.")
    request_id: str | None = Field(default=None, description="Echoed in the response.")
    parameters: dict[str, Any] | None = None


class _FoundryAPI(FastAPI):
    """FastAPI whose OpenAPI page also documents the raw-bodied routes' request schemas."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            schema = get_openapi(
                title=self.title,
                version=self.version,
                description=self.description,
                routes=self.routes,
            )
            _, defs = models_json_schema(
                [(m, "validation") for m in _BODY_MODELS.values()],
                ref_template="#/components/schemas/{model}",
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(
                defs.get("$defs", {})
            )
            self.openapi_schema = schema
        return self.openapi_schema


_BODY_MODELS: dict[str, type[BaseModel]] = {
    "simple": SimplePredictRequest,
    "oip": protocols.OipInferRequest,
    "mlflow": protocols.ScoringRequestDoc,
}


def _body(kind: str, *, binary: bool = False) -> dict[str, Any]:
    """openapi_extra: the request body schema of a route that parses its body itself."""
    content: dict[str, Any] = {
        "application/json": {
            "schema": {"$ref": f"#/components/schemas/{_BODY_MODELS[kind].__name__}"}
        }
    }
    if binary:
        content["application/octet-stream"] = {
            "schema": {
                "type": "string",
                "format": "binary",
                "description": f"JSON header ({protocols.BINARY_HEADER} bytes), then binary tensors",
            }
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
        raise _BadBody(
            415, f"content-encoding '{encoding[:40]}' is not supported (use gzip or deflate)"
        )
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise _BadBody(400, f"request body is not valid {encoding} data: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise _BadBody(413, f"decompressed request body is over the limit of {limit} bytes")
    return out


def _send(answer: Answer) -> Response:
    return Response(
        content=answer.content,
        status_code=answer.status,
        media_type=answer.media_type,
        headers=answer.headers,
    )


@serve.deployment(name="FoundryServer", max_ongoing_requests=256)
@serve.ingress(api)
class FoundryServer:
    """Ingress deployment: reads bodies, routes each model's requests to where it is hosted."""

    def __init__(
        self, args: dict[str, Any], dedicated: dict[str, Any], multiplexed: Any = None
    ) -> None:
        from raycore.serving.auth import ApiKeys
        from raycore.serving.deployments import RemoteTarget, replica_settings, serving_metrics
        from raycore.serving.routing import AliasRouting

        self.args = AppArgs.model_validate(args)
        # Keys: FOUNDRY_API_KEYS / FOUNDRY_ADMIN_KEYS, or hashes made by `foundry keys create`.
        self.keys = ApiKeys.load(home=replica_settings(args).home)
        plan = plan_topology(self.args)
        self.metrics = serving_metrics()
        self.targets: dict[str, Target] = {}
        self._started = False
        self._specs = plan.specs
        self._source: Any = None
        self._prediction_log: Any = None
        for name in plan.local:
            self.targets[name] = self._local_target(name, self.args.alias)
            log.info("serving %s v%s in the ingress", name, self.targets[name].version)
        self.routing = AliasRouting(
            home=replica_settings(args).home,
            primary_alias=self.args.alias,
            make_target=self._started_local_target,
        )
        for name in plan.dedicated:
            self.targets[name] = RemoteTarget(
                dedicated[name], name=name, multiplexed=False, retry_after_s=self.args.retry_after_s
            )
        for name in plan.multiplexed:
            self.targets[name] = RemoteTarget(
                multiplexed, name=name, multiplexed=True, retry_after_s=self.args.retry_after_s
            )

    def _local_target(self, name: str, alias: str) -> Any:
        """``name@alias`` hosted in this ingress: hot models, and other aliases under a traffic policy."""
        from raycore.serving.batching import RowBatcher
        from raycore.serving.deployments import LocalTarget, open_prediction_log, replica_settings
        from raycore.serving.endpoint import ModelEndpoint
        from raycore.serving.hot_reload import RegistrySource, ReloadingModel

        if self._source is None:
            self._source = RegistrySource(
                settings=replica_settings(self.args.model_dump()), max_rows=self.args.max_rows
            )
            self._prediction_log = open_prediction_log(self.args.model_dump(), self.metrics)
        spec = self._specs.get(name) or ServingSpec()
        model = ReloadingModel.open(name=name, alias=alias, source=self._source)
        batcher = RowBatcher(
            max_batch_size=spec.max_batch_size,
            batch_wait_timeout_s=spec.batch_wait_timeout_s,
            max_queued_requests=spec.max_queued_requests,
            retry_after_s=self.args.retry_after_s,
            in_thread=self.args.predict_in_thread,
            on_batch=lambda p, n: self.metrics.batch(model=p.name, version=p.version, size=n),
        )
        endpoint = ModelEndpoint(
            model=model,
            submit=batcher.submit,
            log=self._prediction_log,
            home=str(self._source.settings.home),
        )
        return LocalTarget(endpoint, batcher)

    def _started_local_target(self, name: str, alias: str) -> Any:
        target = self._local_target(name, alias)
        target.endpoint.model.start(
            poll_s=self.args.reload_poll_s
        )  # called on the replica's event loop
        return target

    def _start(self) -> None:
        """Start the alias pollers of in-process models (needs the replica's running event loop)."""
        if not self._started:
            self._started = True
            for target in self.targets.values():
                model = getattr(getattr(target, "endpoint", None), "model", None)
                if model is not None:
                    model.start(poll_s=self.args.reload_poll_s)

    # ------------------------------------------------------------------ hook points

    def _target(self, name: str, request: Request) -> Target | None:
        """The primary target of model ``name`` (None: not served here), at ``AppArgs.alias``.

        Traffic policies (A/B splits, canaries, shadows) then pick the alias per request
        in ``self.routing`` (``raycore.serving.routing``), which hosts other aliases here.
        """
        return self.targets.get(name)

    def _refusal(self, request: Request, *, scope: str) -> Answer | None:
        """None when ``request`` may use routes of ``scope`` ("infer" or "admin"); else the refusal.

        With no key configured every route is open (the app listens on loopback by
        default); with keys, inference needs one and admin routes need an admin key.
        """
        from raycore.serving.auth import AuthError

        try:
            self.keys.check(request.headers, scope=scope)  # type: ignore[arg-type]
        except AuthError as exc:
            return error_answer(
                "simple", exc.status_code, exc.message, hint=exc.hint, headers=exc.headers()
            )
        return None

    # ------------------------------------------------------------------ plumbing

    def _unknown(self, route: Route, name: str) -> Answer:
        return error_answer(
            route,
            404,
            f"model '{name}' is not served here",
            hint=f"served models: {', '.join(self.targets)}",
        )

    def _done(self, name: str, route: str, answer: Answer, started: float) -> Response:
        model = name if name in self.targets else "_unknown"  # bounded tag values
        self.metrics.request(
            model=model, version=answer.version, route=route, status=answer.status,
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )  # fmt: skip
        return _send(answer)

    async def _meta(self, name: str, kind: str, version: str | None, request: Request) -> Response:
        started = time.perf_counter()
        self._start()
        refusal = self._refusal(request, scope="infer")
        if refusal is not None:
            return self._done(name, "meta", refusal, started)
        target = self._target(name, request)
        route: Route = "simple" if kind == "describe" else "oip"
        answer = (
            self._unknown(route, name)
            if target is None
            else await target.meta(kind, version=version)
        )
        return self._done(name, "meta", answer, started)

    async def _infer(
        self, name: str, route: Route, request: Request, version: str | None = None
    ) -> Response:
        started = time.perf_counter()
        self._start()
        refusal = self._refusal(request, scope="infer")
        if refusal is not None:
            return self._done(name, route, refusal, started)
        target = self._target(name, request)
        if target is None:
            return self._done(name, route, self._unknown(route, name), started)
        try:
            raw = await _read_body(request, self.args.max_body_bytes)
        except _BadBody as exc:
            return self._done(
                name,
                route,
                error_answer(route, exc.status, exc.message, version=target.version),
                started,
            )
        header_length = request.headers.get(protocols.BINARY_HEADER) if route == "oip" else None
        answer = await self.routing.infer(
            name,
            target,
            route=route,
            raw=raw,
            version=version,
            header_length=header_length,
            headers=request.headers,
        )
        return self._done(name, route, answer, started)

    # ------------------------------------------------------------------ health, simple JSON

    @api.get("/v2/health/live")
    def live(self) -> dict[str, bool]:
        return {"live": True}

    @api.get("/v2/health/ready")
    def ready(self) -> dict[str, bool]:
        return {"ready": bool(self.targets)}

    @api.get("/v1/models")
    async def list_models(self) -> dict[str, Any]:
        out: list[dict[str, Any]] = []
        for name, target in self.targets.items():
            if target.multiplexed:  # described without loading it: the tail loads on demand
                out.append({"name": name, "version": target.version, "hosting": "multiplexed"})
                continue
            answer = await target.meta("describe")
            if answer.status == 200:
                out.append({**protocols.decode_json(answer.content), "hosting": "dedicated"})
            else:
                out.append(
                    {
                        "name": name,
                        "version": target.version,
                        "hosting": "dedicated",
                        "status": answer.status,
                    }
                )
        return {"models": out}

    @api.get("/v1/models/{name}")
    async def describe(self, name: str, request: Request) -> Response:
        return await self._meta(name, "describe", None, request)

    @api.post("/v1/models/{name}/predict", openapi_extra=_body("simple"))
    async def predict(self, name: str, request: Request) -> Response:
        return await self._infer(name, "simple", request)

    # ------------------------------------------------------------------ Open Inference Protocol v2

    @api.get("/v2", response_model=protocols.OipServerMetadata)
    def oip_server(self) -> dict[str, Any]:
        return protocols.server_metadata()

    @api.get("/v2/models/{name}", response_model=protocols.OipModelMetadata)
    async def oip_model(self, name: str, request: Request) -> Response:
        return await self._meta(name, "oip_metadata", None, request)

    @api.get("/v2/models/{name}/versions/{version}", response_model=protocols.OipModelMetadata)
    async def oip_model_version(self, name: str, version: str, request: Request) -> Response:
        return await self._meta(name, "oip_metadata", version, request)

    @api.get("/v2/models/{name}/ready")
    async def oip_model_ready(self, name: str, request: Request) -> Response:
        return await self._meta(name, "oip_ready", None, request)

    @api.get("/v2/models/{name}/versions/{version}/ready")
    async def oip_model_version_ready(self, name: str, version: str, request: Request) -> Response:
        return await self._meta(name, "oip_ready", version, request)

    @api.post(
        "/v2/models/{name}/infer",
        openapi_extra=_body("oip", binary=True),
        responses={200: {"model": protocols.OipInferResponse}},
    )
    async def oip_infer(self, name: str, request: Request) -> Response:
        return await self._infer(name, "oip", request)

    @api.post(
        "/v2/models/{name}/versions/{version}/infer",
        openapi_extra=_body("oip", binary=True),
        responses={200: {"model": protocols.OipInferResponse}},
    )
    async def oip_infer_version(self, name: str, version: str, request: Request) -> Response:
        return await self._infer(name, "oip", request, version)

    # ------------------------------------------------------------------ MLflow scoring server

    @api.post(
        "/v1/models/{name}/invocations",
        openapi_extra=_body("mlflow"),
        responses={200: {"model": protocols.ScoringResponseDoc}},
    )
    async def invocations(self, name: str, request: Request) -> Response:
        return await self._infer(name, "mlflow", request)

    # ------------------------------------------------------------------ admin

    @api.post("/admin/models/{name}/reload")
    async def admin_reload(self, name: str, request: Request, force: bool = True) -> Response:
        """Check ``name``'s alias now and swap in the version it names (this replica of its host).

        Other replicas follow within ``reload_poll_s``.
        """
        started = time.perf_counter()
        refusal = self._refusal(request, scope="admin")
        if refusal is not None:
            return self._done(name, "admin", refusal, started)
        target = self.targets.get(name)
        answer = (
            self._unknown("simple", name) if target is None else await target.reload(force=force)
        )
        return self._done(name, "admin", answer, started)


def build_app(args: AppArgs) -> Application:
    """The typed Serve application builder: the ingress, dedicated model deployments, the multiplexed tail.

    Example:
        >>> app = build_app(AppArgs(models=["sales_forecasting"], tracking_uri="sqlite:///x.db"))  # doctest: +SKIP
    """
    from raycore.serving.deployments import ModelDeployment, MultiplexedModels

    plan = plan_topology(args)
    full = args.model_copy(update={"serving": plan.specs}).model_dump(mode="json")
    backpressure = {"retry_after_s": args.retry_after_s}
    logging = {"enable_access_log": args.access_log}
    dedicated = {
        name: ModelDeployment.options(  # type: ignore[attr-defined]
            name=f"Model-{name}",
            autoscaling_config=plan.specs[name].autoscaling_config(),
            max_ongoing_requests=plan.specs[name].max_ongoing_requests,
            max_queued_requests=plan.specs[name].max_queued_requests,
            backpressure_config=backpressure,
            logging_config=logging,
            ray_actor_options={"num_cpus": plan.specs[name].replica_cpus},
        ).bind(full, name, plan.specs[name].model_dump(mode="json"))
        for name in plan.dedicated
    }
    multiplexed = None
    if plan.multiplexed:
        tail = args.multiplex
        multiplexed = MultiplexedModels.options(  # type: ignore[attr-defined]
            autoscaling_config=tail.autoscaling_config(),
            max_ongoing_requests=tail.max_ongoing_requests,
            max_queued_requests=tail.max_queued_requests,
            backpressure_config=backpressure,
            logging_config=logging,
            ray_actor_options={"num_cpus": tail.replica_cpus},
        ).bind(full, {name: plan.specs[name].model_dump(mode="json") for name in plan.multiplexed})
    return FoundryServer.options(  # type: ignore[attr-defined]
        num_replicas=args.num_replicas,
        max_ongoing_requests=args.max_ongoing_requests,
        max_queued_requests=args.max_queued_requests,
        backpressure_config=backpressure,
        logging_config=logging,
        ray_actor_options={"num_cpus": args.replica_cpus},
    ).bind(full, dedicated, multiplexed)
