"""Model hosts: where a ``ModelEndpoint`` lives, and how the ingress reaches it.

    LocalTarget          a hot model in the ingress process: no extra hop, batched by ``RowBatcher``
    ModelDeployment      a dedicated model in its own replicas (``@serve.batch``, autoscaling from its spec)
    MultiplexedModels    the long tail: one shared deployment loads ``models:/<name>@<alias>`` on demand
                         (``@serve.multiplexed``), so 30 models need not hold 30 replicas
    RemoteTarget         the ingress's view of the last two, through a DeploymentHandle

Every host answers with the same ``Answer``; a target the handle cannot reach
(queue full, replica gone) answers HTTP 503 with ``Retry-After`` so clients retry.

Example:
    >>> target = RemoteTarget(handle, name="churn", multiplexed=True)   # doctest: +SKIP
    >>> answer = await target.infer("simple", raw=b'{"inputs": {...}}')  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from ray import serve
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError

from raycore.errors import RaycoreError
from raycore.serving.answers import Answer, Route, overloaded_answer
from raycore.serving.batching import RowBatcher
from raycore.serving.endpoint import ModelEndpoint
from raycore.serving.hot_reload import RegistrySource, ReloadingModel
from raycore.serving.prediction_log import PredictionLog
from raycore.serving.predictor import Prediction, Predictor, RowRequest
from raycore.settings import FoundrySettings
from raycore.specs.serving import ServingSpec

__all__ = [
    "MODELS_PER_REPLICA",
    "LocalTarget",
    "ModelDeployment",
    "MultiplexedModels",
    "RemoteTarget",
    "replica_tag",
]

log = logging.getLogger(__name__)

MODELS_PER_REPLICA = 16
"""Long-tail models one multiplexed replica keeps loaded (LRU beyond): 2 replicas hold the 30 of the catalog."""


def replica_tag() -> str:
    """This replica's id (or the process id outside Serve): names prediction-log files."""
    try:
        return str(serve.get_replica_context().replica_id.unique_id)
    except Exception:  # not in a replica
        return f"pid{os.getpid()}"


def replica_settings(args: dict[str, Any]) -> FoundrySettings:
    return FoundrySettings.load(
        home=args["home"],
        mlflow_tracking_uri=args["tracking_uri"],
        online_store_uri=args.get("online_store_uri"),
    )


def open_prediction_log(args: dict[str, Any], metrics: Any) -> PredictionLog | None:
    if not args.get("prediction_log", True):
        return None
    return PredictionLog(
        home=args["home"],
        replica=replica_tag(),
        flush_interval_s=float(args.get("prediction_log_flush_s", 5.0)),
        on_drop=None if metrics is None else metrics.dropped,
    )


def serving_metrics() -> Any:
    from raycore.serving.metrics import ServingMetrics

    return ServingMetrics()


def _raise_failed(result: Prediction | RaycoreError) -> Prediction:
    if isinstance(result, Prediction):
        return result
    raise result


class LocalTarget:
    """A model hosted in the ingress process itself."""

    multiplexed = False

    def __init__(self, endpoint: ModelEndpoint, batcher: RowBatcher) -> None:
        self.endpoint = endpoint
        self.batcher = batcher
        self.name = endpoint.name

    @property
    def version(self) -> str | None:
        return self.endpoint.version

    async def meta(self, kind: str, *, version: str | None = None) -> Answer:
        return self.endpoint.meta(kind, version=version)

    async def infer(
        self,
        route: Route,
        *,
        raw: bytes,
        version: str | None = None,
        header_length: str | None = None,
    ) -> Answer:
        return await self.endpoint.infer(
            route, raw=raw, version=version, header_length=header_length
        )

    async def reload(self, *, force: bool = True) -> Answer:
        return await self.endpoint.reload(force=force)

    async def close(self) -> None:
        await self.endpoint.model.stop()
        await self.batcher.close()


class RemoteTarget:
    """A model in a dedicated or the multiplexed deployment, reached through ``handle``."""

    def __init__(
        self, handle: Any, *, name: str, multiplexed: bool, retry_after_s: float = 1.0
    ) -> None:
        self.handle = handle.options(multiplexed_model_id=name) if multiplexed else handle
        self.name = name
        self.multiplexed = multiplexed
        self.retry_after_s = retry_after_s
        self.version: str | None = None  # of the last answer; names refusals made before the hop

    async def _call(self, method: str, route: Route, *args: Any, **kwargs: Any) -> Answer:
        try:
            answer: Answer = await getattr(self.handle, method).remote(*args, **kwargs)
        except BackPressureError as exc:
            return overloaded_answer(
                route,
                f"model '{self.name}': {exc.message}",
                retry_after_s=exc.retry_after_s or self.retry_after_s,
                version=self.version,
            )
        except (DeploymentUnavailableError, asyncio.TimeoutError) as exc:
            return overloaded_answer(
                route,
                f"model '{self.name}' is unavailable: {exc}",
                retry_after_s=self.retry_after_s,
            )
        except RaycoreError as exc:  # the model could not be loaded (no champion, broken bundle)
            return overloaded_answer(
                route, f"model '{self.name}' cannot be loaded: {exc.message}", retry_after_s=5
            )
        except (
            Exception
        ) as exc:  # a replica died mid-request: the deployment restarts it, the client retries
            log.warning("model %s: %s: %s", self.name, type(exc).__name__, exc)
            return overloaded_answer(
                route,
                f"model '{self.name}' replica failed ({type(exc).__name__}); retry",
                retry_after_s=self.retry_after_s,
            )
        if answer.version is not None:
            self.version = answer.version
        return answer

    async def meta(self, kind: str, *, version: str | None = None) -> Answer:
        return await self._call("meta", "simple", self.name, kind, version)

    async def infer(
        self,
        route: Route,
        *,
        raw: bytes,
        version: str | None = None,
        header_length: str | None = None,
    ) -> Answer:
        return await self._call("infer", route, self.name, route, raw, version, header_length)

    async def reload(self, *, force: bool = True) -> Answer:
        return await self._call("reload", "simple", self.name, force)

    async def close(self) -> None:
        return None


@serve.deployment(name="ModelDeployment")
class ModelDeployment:
    """One dedicated model: its own replicas, ``@serve.batch`` dynamic batching, hot reload."""

    def __init__(self, args: dict[str, Any], name: str, spec: dict[str, Any]) -> None:
        self.args = args
        self.spec = ServingSpec.model_validate(spec)
        self.metrics = serving_metrics()
        source = RegistrySource(settings=replica_settings(args), max_rows=int(args["max_rows"]))
        self.model = ReloadingModel.open(name=name, alias=args["alias"], source=source)
        self.endpoint = ModelEndpoint(
            model=self.model,
            submit=self._submit,
            log=open_prediction_log(args, self.metrics),
            home=str(source.settings.home),
        )
        batched: Any = self._batched  # @serve.batch adds the setters
        batched.set_max_batch_size(self.spec.max_batch_size)
        batched.set_batch_wait_timeout_s(self.spec.batch_wait_timeout_s)
        self._started = False

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self.model.start(poll_s=float(self.args["reload_poll_s"]))

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.002)
    async def _batched(
        self, entries: list[tuple[Predictor, RowRequest]]
    ) -> list[Prediction | RaycoreError]:
        out: list[Prediction | RaycoreError] = [RaycoreError("not predicted")] * len(entries)
        groups: dict[int, list[int]] = {}
        for i, (predictor, _) in enumerate(entries):
            groups.setdefault(id(predictor), []).append(i)
        for indices in groups.values():
            predictor = entries[indices[0]][0]
            results = predictor.run_many([entries[i][1] for i in indices])
            self.metrics.batch(model=predictor.name, version=predictor.version, size=len(indices))
            for i, result in zip(indices, results, strict=True):
                out[i] = result
        return out

    async def _submit(self, predictor: Predictor, item: RowRequest) -> Prediction:
        return _raise_failed(await self._batched((predictor, item)))

    async def meta(self, name: str, kind: str, version: str | None) -> Answer:
        self._start()
        return self.endpoint.meta(kind, version=version)

    async def infer(
        self, name: str, route: Route, raw: bytes, version: str | None, header_length: str | None
    ) -> Answer:
        self._start()
        return await self.endpoint.infer(
            route, raw=raw, version=version, header_length=header_length
        )

    async def reload(self, name: str, force: bool) -> Answer:
        self._start()
        return await self.endpoint.reload(force=force)


class _Hosted:
    """One long-tail model loaded in a multiplexed replica; unloading stops its poller and batcher."""

    def __init__(self, endpoint: ModelEndpoint, batcher: RowBatcher) -> None:
        self.endpoint = endpoint
        self.batcher = batcher
        self.loop = asyncio.get_running_loop()

    def __del__(self) -> None:
        # Serve calls this from a worker thread when the model falls out of the LRU.
        try:
            self.loop.call_soon_threadsafe(lambda: self.loop.create_task(self._close()))
        except RuntimeError:  # the loop is closed: nothing left to stop
            pass

    async def _close(self) -> None:
        await self.endpoint.model.stop()
        await self.batcher.close()


@serve.deployment(name="MultiplexedModels")
class MultiplexedModels:
    """The long tail of the catalog: any model, loaded on its first request into an LRU of replicas."""

    def __init__(self, args: dict[str, Any], specs: dict[str, dict[str, Any]]) -> None:
        self.args = args
        self.specs = {name: ServingSpec.model_validate(spec) for name, spec in specs.items()}
        self.metrics = serving_metrics()
        self.source = RegistrySource(
            settings=replica_settings(args), max_rows=int(args["max_rows"])
        )
        self.log = open_prediction_log(args, self.metrics)

    @serve.multiplexed(max_num_models_per_replica=MODELS_PER_REPLICA)
    async def _load(self, name: str) -> _Hosted:
        spec = self.specs.get(name)
        if spec is None:
            raise RaycoreError(
                f"model '{name}' is not in this app's long tail",
                hint=f"served here: {', '.join(self.specs)}",
            )
        model = await asyncio.to_thread(
            ReloadingModel.open, name=name, alias=self.args["alias"], source=self.source
        )
        model.start(poll_s=float(self.args["reload_poll_s"]))
        batcher = RowBatcher(
            max_batch_size=spec.max_batch_size,
            batch_wait_timeout_s=spec.batch_wait_timeout_s,
            max_queued_requests=spec.max_queued_requests,
            in_thread=bool(self.args.get("predict_in_thread", False)),
            on_batch=lambda p, n: self.metrics.batch(model=p.name, version=p.version, size=n),
        )
        endpoint = ModelEndpoint(
            model=model, submit=batcher.submit, log=self.log, home=str(self.source.settings.home)
        )
        return _Hosted(endpoint, batcher)

    async def _endpoint(self, name: str) -> ModelEndpoint:
        hosted = await self._load(serve.get_multiplexed_model_id() or name)
        return hosted.endpoint

    async def meta(self, name: str, kind: str, version: str | None) -> Answer:
        return (await self._endpoint(name)).meta(kind, version=version)

    async def infer(
        self, name: str, route: Route, raw: bytes, version: str | None, header_length: str | None
    ) -> Answer:
        endpoint = await self._endpoint(name)
        return await endpoint.infer(route, raw=raw, version=version, header_length=header_length)

    async def reload(self, name: str, force: bool) -> Answer:
        return await (await self._endpoint(name)).reload(force=force)
