"""Reading the catalog folder(s) into one validated, ordered Catalog."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from raycore.errors import CatalogError
from raycore.specs import ModelSpec, load_spec

__all__ = ["Catalog", "load_catalog", "packaged_models_dir"]


def packaged_models_dir() -> Path:
    """The folder of YAML files shipped inside the package."""
    return Path(str(resources.files("raycore.catalog").joinpath("models")))


@dataclass(frozen=True)
class Catalog:
    """All model specs, keyed by id, in id order."""

    models: dict[str, ModelSpec] = field(default_factory=dict)
    sources: dict[str, Path] = field(default_factory=dict)

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self.models[k] for k in sorted(self.models))

    def __len__(self) -> int:
        return len(self.models)

    def get(self, key: str) -> ModelSpec:
        """Look a model up by id (``mdl-001``) or by name (``sales_forecasting``)."""
        if key in self.models:
            return self.models[key]
        for spec in self.models.values():
            if spec.name == key:
                return spec
        known = ", ".join(f"{s.id} ({s.name})" for s in self)
        raise CatalogError(
            f"no model '{key}' in the catalog",
            hint=f"use one of: {known}" if known else "the catalog is empty",
        )


def load_catalog(*, extra_dirs: Iterable[str | Path] = ()) -> Catalog:
    """Load the packaged catalog plus any extra folders; every file is validated."""
    models: dict[str, ModelSpec] = {}
    sources: dict[str, Path] = {}
    names: dict[str, str] = {}
    for folder in [packaged_models_dir(), *map(Path, extra_dirs)]:
        if not folder.is_dir():
            raise CatalogError(
                f"catalog folder {folder} does not exist",
                path=str(folder),
                hint="create it or unset FOUNDRY_CATALOG_DIR",
            )
        for path in sorted(folder.glob("*.y*ml")):
            spec = load_spec(path, ModelSpec)
            if path.stem != spec.id:
                raise CatalogError(
                    f"file name '{path.name}' does not match id '{spec.id}'",
                    path=str(path),
                    field="id",
                    hint=f"rename the file to {spec.id}.yaml or fix the id",
                )
            if spec.id in models:
                raise CatalogError(
                    f"duplicate model id '{spec.id}' (also in {sources[spec.id]})",
                    path=str(path),
                    field="id",
                    hint="give each model a unique id",
                )
            if spec.name in names:
                raise CatalogError(
                    f"duplicate model name '{spec.name}' (also used by {names[spec.name]})",
                    path=str(path),
                    field="name",
                    hint="give each model a unique name; it is the registry name and the route",
                )
            models[spec.id] = spec
            sources[spec.id] = path
            names[spec.name] = spec.id
    return Catalog(models=models, sources=sources)
