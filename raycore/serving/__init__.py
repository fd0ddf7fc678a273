"""Serving: request schemas, wire protocols (OIP v2, MLflow scoring), the Ray-free Predictor, the Serve app."""

from raycore.serving.predictor import Predictor
from raycore.serving.schemas import MAX_ROWS, RowSchema

__all__ = ["MAX_ROWS", "AppArgs", "Predictor", "RowSchema", "build_app", "start_serving"]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # Ray Serve is imported only when the app is needed.
    if name in {"AppArgs", "build_app"}:
        from raycore.serving import app

        return getattr(app, name)
    if name == "start_serving":
        from raycore.serving import runner

        return runner.start_serving
    raise AttributeError(name)
