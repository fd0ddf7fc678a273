"""The Serve application: one ingress deployment answering for the catalog's models.

Routes (JSON):
    GET  /v2/health/live, /v2/health/ready      liveness / readiness
    GET  /v1/models                              the models this app serves
    GET  /v1/models/{name}                       one model: version, inputs, metrics
    POST /v1/models/{name}/predict               {"inputs": {...} | [{...}, ...]}
    GET  /docs                                   OpenAPI page

Each replica loads ``models:/<name>@<alias>`` from the MLflow registry at start.

Example:
    >>> app = build_app(AppArgs(models=["sales_forecasting"], tracking_uri="sqlite:///..."))  # doctest: +SKIP
    >>> serve.run(app, name="foundry", route_prefix="/")                                       # doctest: +SKIP
"""


import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.serve import Application

import raycore
from raycore.errors import InputValidationError, RaycoreError
from raycore.serving.predictor import Predictor
from raycore.serving.schemas import MAX_ROWS

__all__ = ["AppArgs", "FoundryServer", "build_app"]

log = logging.getLogger(__name__)


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
    num_replicas: int = Field(default=1, ge=1, le=64, description="Replicas of the ingress.")
    replica_cpus: float = Field(default=0.5, ge=0, le=64, description="CPUs reserved per replica.")


api = FastAPI(
    title="Data Foundry",
    version=raycore.__version__,
    description="Predictions from the Data Foundry model catalog.",
)


def _error(status: int, message: str, *, detail: Any = None, hint: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if detail is not None:
        body["detail"] = detail
    if hint:
        body["hint"] = hint
    return JSONResponse(status_code=status, content=body)


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
        return predictor.describe()

    @api.post("/v1/models/{name}/predict")
    async def predict(self, name: str, request: Request) -> Any:
        predictor = self.predictors.get(name)
        if predictor is None:
            return self._unknown(name)
        raw = await request.body()
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(400, f"request body is not valid JSON: {exc}", hint='send {"inputs": {...}}')
        try:
            return predictor.predict(body)
        except InputValidationError as exc:
            return _error(422, exc.message, detail=exc.errors, hint=exc.hint)
        except RaycoreError as exc:
            return _error(422, exc.message, hint=exc.hint)
        except Exception as exc:  # the replica must keep serving whatever a row holds
            log.exception("prediction failed for %s", name)
            return _error(500, f"prediction failed: {type(exc).__name__}: {exc}")

    def _unknown(self, name: str) -> JSONResponse:
        return _error(
            404, f"model '{name}' is not served here", hint=f"served models: {', '.join(self.predictors)}"
        )


def build_app(args: AppArgs) -> Application:
    """The typed Serve application builder."""
    return FoundryServer.options(  # type: ignore[attr-defined]
        num_replicas=args.num_replicas,
        ray_actor_options={"num_cpus": args.replica_cpus},
    ).bind(args.model_dump())
