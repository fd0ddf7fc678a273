"""Foundry settings: where state lives and which services to talk to.

Settings are read explicitly with :meth:`FoundrySettings.load`, never at import
time. Every field has an embedded default; the scale-out services are chosen by
environment variables alone (no code change):

    FOUNDRY_HOME                 state folder (default ./.foundry)
    RAY_ADDRESS                  an existing Ray cluster (default: start a local one)
    MLFLOW_TRACKING_URI          an MLflow server (default sqlite:///$FOUNDRY_HOME/mlflow.db)
    FOUNDRY_LAKE_URI             parquet lake root, any pyarrow filesystem URI
    FOUNDRY_SERVE_HOST/PORT      HTTP bind of the Serve app (default 127.0.0.1:8000)
    FOUNDRY_SERVE_INGRESS        proxy (default) or direct: the ingress replica answers HTTP itself
    FOUNDRY_CATALOG_DIR          extra folder of catalog YAML files
    FOUNDRY_ONLINE_STORE_URI     online feature store (default SQLite $FOUNDRY_HOME/online.db; redis://...)

Example:
    >>> s = FoundrySettings.load(home="/tmp/fh")
    >>> s.tracking_uri
    'sqlite:////tmp/fh/mlflow.db'
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from raycore.errors import ConfigurationError

if TYPE_CHECKING:
    from raycore.features.online import OnlineStore

__all__ = ["FoundrySettings"]


class FoundrySettings(BaseSettings):
    """All settings of one foundry installation."""

    model_config = SettingsConfigDict(env_prefix="FOUNDRY_", extra="forbid", frozen=True)

    home: Path = Field(
        default=Path(".foundry"),
        description="Folder holding all embedded state (MLflow db, artifacts, lake, logs).",
    )
    ray_address: str | None = Field(
        default=None,
        validation_alias=AliasChoices("RAY_ADDRESS", "FOUNDRY_RAY_ADDRESS"),
        description="Address of an existing Ray cluster; empty starts a local one.",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "FOUNDRY_MLFLOW_TRACKING_URI"),
        description="MLflow tracking + registry URI; empty uses SQLite under home.",
    )
    lake_uri: str | None = Field(
        default=None, description="Root of the parquet lake; empty uses home/lake."
    )
    serve_host: str = Field(default="127.0.0.1", description="HTTP bind host of Ray Serve.")
    serve_port: int = Field(default=8000, ge=1, le=65535, description="HTTP port of Ray Serve.")
    serve_ingress: Literal["proxy", "direct"] = Field(
        default="proxy",
        description=(
            "proxy: Ray Serve's HTTP proxy answers on the port and forwards to the ingress replica;"
            " direct: the ingress replica's own HTTP server answers on the port (Ray Serve direct"
            " ingress, no proxy hop; only with the local Ray this process starts)."
        ),
    )
    online_store_uri: str | None = Field(
        default=None,
        description="Online feature store: redis://host:port/db, or empty for SQLite under home.",
    )
    catalog_dir: Path | None = Field(
        default=None, description="Extra folder of catalog YAML files (model 31 and beyond)."
    )
    num_cpus: int | None = Field(
        default=None, ge=1, description="CPUs for a local Ray instance; empty means all."
    )

    @field_validator("home", mode="after")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @classmethod
    def load(cls, **overrides: Any) -> FoundrySettings:
        """Read settings from the environment, with explicit overrides on top."""
        try:
            return cls(**{k: v for k, v in overrides.items() if v is not None})
        except ValueError as exc:  # pydantic.ValidationError is a ValueError
            raise ConfigurationError(
                f"invalid foundry settings: {exc}",
                hint="check the FOUNDRY_* / RAY_ADDRESS / MLFLOW_TRACKING_URI variables",
            ) from exc

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI: the configured server or the embedded SQLite file."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def artifact_root(self) -> str:
        """Where new MLflow experiments keep artifacts in the embedded default."""
        return (self.home / "mlartifacts").as_uri()

    @property
    def lake(self) -> str:
        """Root URI or path of the parquet lake."""
        return self.lake_uri or str(self.home / "lake")

    @property
    def ray_storage(self) -> Path:
        """Where Ray Train keeps run state and checkpoints in the embedded default."""
        return self.home / "ray_results"

    @property
    def endpoint(self) -> str:
        """Base URL of the Serve HTTP endpoint."""
        return f"http://{self.serve_host}:{self.serve_port}"

    def online_store(self) -> OnlineStore:
        """Open the configured online feature store."""
        from raycore.features.online import open_online_store

        return open_online_store(uri=self.online_store_uri, home=self.ensure_home())

    def ensure_home(self) -> Path:
        """Create the home folder (and fail clearly if that is not possible)."""
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create FOUNDRY_HOME at {self.home}: {exc.strerror}",
                hint="set FOUNDRY_HOME to a writable folder",
            ) from exc
        return self.home
