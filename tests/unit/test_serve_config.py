"""serve_apps/foundry.yaml is a config `serve deploy` accepts, and its args build."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_serve_config_matches_rays_schema() -> None:
    from ray.serve.schema import ServeDeploySchema

    from raycore.serving.app import AppArgs

    config = yaml.safe_load((ROOT / "serve_apps" / "foundry.yaml").read_text())
    schema = ServeDeploySchema.model_validate(config)
    (app,) = schema.applications
    assert app.import_path == "serve_apps.foundry_app:app_builder"
    args = AppArgs.model_validate(app.args)
    assert args.models == ["sales_forecasting"]


def test_app_args_reject_unknown_fields() -> None:
    from pydantic import ValidationError

    from raycore.serving.app import AppArgs

    with pytest.raises(ValidationError, match="modles"):
        AppArgs.model_validate({"modles": ["x"], "tracking_uri": "sqlite:///x.db"})
