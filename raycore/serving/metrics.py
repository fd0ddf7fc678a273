"""The serving metrics, exported by Ray to Prometheus (with Ray's ``ray_`` prefix).

Names and tags are a contract with the dashboards; do not rename them:

    foundry_requests_total                  counter    model, version, route, status
    foundry_request_errors_total            counter    model, version, route, status  (status >= 400)
    foundry_request_latency_ms              histogram  model, version, route, status
    foundry_batch_size                      histogram  model, version
    foundry_prediction_log_dropped_total    counter    model

Inside a Serve replica, Ray adds the deployment, replica and application tags.
``route`` is ``simple``, ``oip``, ``mlflow`` or ``meta`` (metadata and health
of one model); ``version`` is empty when no model version answered (unknown
model, a body refused before routing).

Example:
    >>> metrics = ServingMetrics()                                                  # doctest: +SKIP
    >>> metrics.request(model="m", version="3", route="simple", status=200, latency_ms=4.2)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__all__ = ["LATENCY_BOUNDARIES_MS", "ServingMetrics"]

LATENCY_BOUNDARIES_MS: list[float] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]
BATCH_BOUNDARIES: list[float] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
_BATCH_TAGS: Any = ("model", "version")
_REQUEST_TAGS: Any = ("model", "version", "route", "status")  # Ray types tag_keys as tuple[str]


class ServingMetrics:
    """The foundry's request, batch and prediction-log metrics (needs a running Ray worker)."""

    def __init__(self) -> None:
        from ray.serve.metrics import Counter, Histogram

        self.requests = Counter(
            "foundry_requests_total",
            description="Requests answered, by model, version, route and status.",
            tag_keys=_REQUEST_TAGS,
        )
        self.errors = Counter(
            "foundry_request_errors_total",
            description="Requests answered with an HTTP status >= 400.",
            tag_keys=_REQUEST_TAGS,
        )
        self.latency = Histogram(
            "foundry_request_latency_ms",
            description="Time from request to answer in the ingress, ms.",
            boundaries=LATENCY_BOUNDARIES_MS,
            tag_keys=_REQUEST_TAGS,
        )
        self.batch_size = Histogram(
            "foundry_batch_size",
            description="Requests predicted together in one call.",
            boundaries=BATCH_BOUNDARIES,
            tag_keys=_BATCH_TAGS,
        )
        self.log_dropped = Counter(
            "foundry_prediction_log_dropped_total",
            description="Predicted rows the prediction log dropped because its buffer was full.",
            tag_keys=("model",),
        )  # fmt: skip

    def request(
        self, *, model: str, version: str | None, route: str, status: int, latency_ms: float
    ) -> None:
        """Count one answered request and its latency."""
        tags = {"model": model, "version": version or "", "route": route, "status": str(status)}
        self.requests.inc(1, tags=tags)
        if status >= 400:
            self.errors.inc(1, tags=tags)
        self.latency.observe(latency_ms, tags=tags)

    def batch(self, *, model: str, version: str, size: int) -> None:
        self.batch_size.observe(size, tags={"model": model, "version": version})

    def dropped(self, model: str, rows: int) -> None:
        self.log_dropped.inc(rows, tags={"model": model})
