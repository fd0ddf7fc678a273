"""Named plugins registered by decorator, discovered by importing every module of a package.

Sklearn estimator factories (``raycore.models.custom``) and holdout evaluators
(``raycore.training.evaluators``) are both plugins: a module registers its
functions on import, and the first lookup imports every module of the package.

Example:
    >>> reg = PluginRegistry("widget", "raycore.models.custom")
    >>> @reg.register("w")
    ... def make_w(): ...
    >>> reg.get("w", field="x") is make_w
    True
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Generic, TypeVar

from raycore.errors import SpecError

__all__ = ["PluginRegistry"]

F = TypeVar("F", bound=Callable[..., object])


class PluginRegistry(Generic[F]):
    """Functions of one kind by name; ``package``'s modules are imported on first lookup."""

    def __init__(self, kind: str, package: str) -> None:
        self.kind = kind
        self.package = package
        self._items: dict[str, F] = {}
        self._discovered = False

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator registering a function under ``name``; a second, different one is an error."""

        def wrap(fn: F) -> F:
            if name in self._items and self._items[name] is not fn:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = fn
            return fn

        return wrap

    def all(self) -> dict[str, F]:
        if not self._discovered:
            pkg = importlib.import_module(self.package)
            for info in pkgutil.iter_modules(pkg.__path__):
                importlib.import_module(f"{self.package}.{info.name}")
            self._discovered = True  # only once every module imported: a failed import is retried
        return dict(self._items)

    def get(self, name: str, *, field: str) -> F:
        """The function registered as ``name``; an unknown name raises SpecError listing the known ones."""
        known = self.all()
        if name not in known:
            raise SpecError(
                f"unknown {self.kind} '{name}'",
                field=field,
                hint=f"use one of: {', '.join(sorted(known))}",
            )
        return known[name]
