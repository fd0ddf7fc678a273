"""The one exception hierarchy of Data Foundry.

    RaycoreError                 every error the foundry raises on purpose
    ├── ConfigurationError       settings or environment are wrong (FOUNDRY_HOME, GPU, URIs)
    ├── SpecError                a YAML spec is malformed or invalid (names file and field)
    │   └── CatalogError         the model catalog cannot be loaded or has no such model
    ├── DataError                data is missing, malformed or fails validation
    │   └── FeatureLookupError   a row's features cannot be assembled (unknown entity, bad input)
    ├── TrainingError            a training run failed
    │   └── GateFailedError      a trained model missed its catalog gate
    ├── RegistryError            MLflow registry state is missing or inconsistent
    ├── ServingError             the Serve application cannot start or answer
    │   └── InputValidationError a request does not match the model's input schema
    └── ThresholdError           a decision threshold is invalid or cannot be changed

Every error carries a ``hint`` that says how to fix it, and survives pickling
across Ray processes (``__reduce__`` rebuilds it from its arguments).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CatalogError",
    "ConfigurationError",
    "DataError",
    "FeatureLookupError",
    "GateFailedError",
    "InputValidationError",
    "RaycoreError",
    "RegistryError",
    "ServingError",
    "SpecError",
    "ThresholdError",
    "TrainingError",
]


class RaycoreError(Exception):
    """Root of every error raised on purpose by the foundry."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message

    def _reduce_kwargs(self) -> dict[str, Any]:
        return {"hint": self.hint}

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from keyword arguments so subclasses with extra fields pickle.
        return (_rebuild, (type(self), (self.message,), self._reduce_kwargs()))


def _rebuild(cls: type[RaycoreError], args: tuple[Any, ...], kwargs: dict[str, Any]) -> RaycoreError:
    return cls(*args, **kwargs)


class ConfigurationError(RaycoreError):
    """Settings or the environment are wrong."""


class SpecError(RaycoreError):
    """A spec file is malformed or fails validation.

    ``path`` names the file and ``field`` the dotted location inside it.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = path
        self.field = field
        super().__init__(message, hint=hint)

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = f"{self.path}: "
        if self.field:
            where += f"field '{self.field}': "
        text = f"{where}{self.message}"
        return f"{text}\n  hint: {self.hint}" if self.hint else text

    def _reduce_kwargs(self) -> dict[str, Any]:
        return {"path": self.path, "field": self.field, "hint": self.hint}


class CatalogError(SpecError):
    """The model catalog cannot be loaded, or a model id is unknown."""


class DataError(RaycoreError):
    """Data is missing, malformed or fails validation."""


class FeatureLookupError(DataError):
    """A row's features cannot be assembled for serving; ``row`` and ``field`` say where."""

    def __init__(self, message: str, *, row: int = 0, field: str | None = None, hint: str | None = None) -> None:
        self.row = row
        self.field = field
        super().__init__(message, hint=hint)

    def _reduce_kwargs(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "hint": self.hint}


class TrainingError(RaycoreError):
    """A training run failed."""


class GateFailedError(TrainingError):
    """A trained model missed its catalog quality gate; it is not registered."""

    def __init__(
        self,
        message: str,
        *,
        metric: str | None = None,
        value: float | None = None,
        threshold: float | None = None,
        run_id: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.metric = metric
        self.value = value
        self.threshold = threshold
        self.run_id = run_id
        super().__init__(message, hint=hint)

    def _reduce_kwargs(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": self.value,
            "threshold": self.threshold,
            "run_id": self.run_id,
            "hint": self.hint,
        }


class RegistryError(RaycoreError):
    """Registry state is missing or inconsistent."""


class IncompatibleBundleError(RegistryError):
    """A registered bundle cannot run with this code (its feature view version is gone)."""


class PromotionRefusedError(RegistryError):
    """The champion/challenger gate refused a promotion; ``comparison`` holds the numbers."""

    def __init__(
        self,
        message: str,
        *,
        comparison: list[dict[str, Any]] | None = None,
        hint: str | None = None,
    ) -> None:
        self.comparison = list(comparison or [])
        super().__init__(message, hint=hint)

    def _reduce_kwargs(self) -> dict[str, Any]:
        return {"comparison": self.comparison, "hint": self.hint}


class ExplanationError(RaycoreError):
    """A model or request cannot be explained as asked."""


class ServingError(RaycoreError):
    """The Serve application cannot start or answer."""


class InputValidationError(ServingError):
    """A request does not match the model's input schema.

    ``errors`` is a list of ``{"loc": [...], "msg": ..., "type": ...}`` entries,
    the same shape FastAPI uses for HTTP 422 bodies.
    """

    def __init__(
        self,
        message: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        hint: str | None = None,
    ) -> None:
        self.errors = errors or []
        super().__init__(message, hint=hint)

    def _reduce_kwargs(self) -> dict[str, Any]:
        return {"errors": self.errors, "hint": self.hint}


class ThresholdError(RaycoreError):
    """A decision threshold is invalid, or the model has none to change."""
