"""Serving: request schemas, wire protocols (OIP v2, MLflow scoring), the Ray-free Predictor, the Serve app.

The app's topology (hot models in the ingress, the long tail multiplexed), hot
reload, dynamic batching, overload answers, metrics and the prediction log live
in their own modules; ``read_prediction_log`` reads what was served.
"""

from raycore.serving.predictor import Predictor
from raycore.serving.schemas import MAX_ROWS, RowSchema

__all__ = [
    "MAX_ROWS",
    "AppArgs",
    "PredictionLog",
    "Predictor",
    "RowSchema",
    "build_app",
    "read_prediction_log",
    "start_serving",
]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # Ray Serve is imported only when the app is needed.
    if name in {"AppArgs", "build_app"}:
        from raycore.serving import app

        return getattr(app, name)
    if name == "start_serving":
        from raycore.serving import runner

        return runner.start_serving
    if name in {"PredictionLog", "read_prediction_log"}:
        from raycore.serving import prediction_log

        return getattr(prediction_log, name)
    raise AttributeError(name)
