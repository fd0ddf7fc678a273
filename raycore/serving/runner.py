"""Starting the Serve application on the embedded default (or a cluster)."""

from __future__ import annotations

import socket
import time

import httpx

from raycore.errors import ServingError
from raycore.runtime import connect_ray
from raycore.runtime.ray_runtime import check_direct_ingress
from raycore.serving.app import AppArgs, build_app
from raycore.settings import FoundrySettings

__all__ = ["APP_NAME", "start_serving", "stop_serving", "wait_ready"]

APP_NAME = "foundry"


def start_serving(*, settings: FoundrySettings, models: list[str], alias: str = "champion") -> str:
    """Deploy the foundry app on Ray Serve and wait until it answers; return the base URL."""
    from ray import serve

    from raycore.serving.auth import ApiKeys, check_bind

    # Beyond loopback, inference must need a key: refuse before anything starts.
    check_bind(host=settings.serve_host, keys=ApiKeys.load(home=settings.home))
    # With FOUNDRY_SERVE_INGRESS=direct, a local Ray started here has direct ingress on.
    connect_ray(settings)
    proxy_port = settings.serve_port
    if settings.serve_ingress == "direct":
        check_direct_ingress(settings)
        with socket.socket() as s:  # the ingress replica takes the port; the proxy any free one
            s.bind(("127.0.0.1", 0))
            proxy_port = int(s.getsockname()[1])
    serve.start(http_options={"host": settings.serve_host, "port": proxy_port})
    args = AppArgs(
        models=models,
        alias=alias,
        tracking_uri=settings.tracking_uri,
        home=str(settings.home),
        online_store_uri=settings.online_store_uri,
        catalog_dir=str(settings.catalog_dir) if settings.catalog_dir else None,
    )
    try:
        serve.run(build_app(args), name=APP_NAME, route_prefix="/")
    except Exception as exc:
        raise ServingError(
            f"the Serve application failed to start: {exc}",
            hint="check that every model has a champion (`foundry status`) and the port is free",
        ) from exc
    wait_ready(settings.endpoint)
    return settings.endpoint


def wait_ready(endpoint: str, *, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{endpoint}/v2/health/ready", timeout=2.0)
            if r.status_code == 200 and r.json().get("ready"):
                return
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.25)
    raise ServingError(f"{endpoint} did not become ready in {timeout_s:.0f}s ({last})")


def stop_serving() -> None:
    from ray import serve

    try:
        serve.delete(APP_NAME)
    except Exception:  # nothing to delete
        pass
