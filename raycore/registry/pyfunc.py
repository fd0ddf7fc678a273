"""MLflow pyfunc wrapper, so a bundle is a standard MLflow model too.

``mlflow.pyfunc.load_model("models:/sales_forecasting@champion").predict(df)``
runs the same feature view and estimator as the Serve replica.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel

from raycore.registry.bundle import ModelBundle

__all__ = ["BUNDLE_ARTIFACT", "BundlePythonModel"]

BUNDLE_ARTIFACT = "bundle"


class BundlePythonModel(PythonModel):
    """Loads the ModelBundle from the model's artifacts and predicts from raw inputs."""

    def load_context(self, context: Any) -> None:
        self.bundle = ModelBundle.load(Path(context.artifacts[BUNDLE_ARTIFACT]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        return self.bundle.predict(pd.DataFrame(model_input))
