"""Hot reload: a replica follows its model's registry alias without failing a request.

``ReloadingModel`` holds the ``Predictor`` a replica answers with. It polls the
alias (one cheap registry call every ``poll_s`` seconds); when the alias points
at a new version it loads that bundle off the event loop, and only then swaps
the reference in one assignment. A request takes ``current`` once, so it is
predicted and answered (``x-model-version``) by one version, old or new, and
the old version answers every request until the new one is ready. A failed
load keeps the old version and is retried at the next poll.

``ModelSource`` is where versions come from: ``RegistrySource`` reads the MLflow
registry (``models:/<name>@<alias>``); tests may give any object with the
same two methods.

Example:
    >>> model = ReloadingModel.open(name="sales_forecasting", alias="champion", source=source)  # doctest: +SKIP
    >>> model.start(poll_s=5.0)                                                                  # doctest: +SKIP
    >>> await model.refresh(force=True)                                                          # doctest: +SKIP
    {'model': 'sales_forecasting', 'alias': 'champion', 'previous': '3', 'version': '4', 'changed': True}
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from raycore.errors import RegistryError
from raycore.serving.predictor import Predictor
from raycore.serving.schemas import MAX_ROWS
from raycore.settings import FoundrySettings

__all__ = ["ModelSource", "RegistrySource", "ReloadingModel"]

log = logging.getLogger(__name__)


class ModelSource(Protocol):
    """Where a replica finds the version an alias names, and loads it."""

    def alias_version(self, name: str, alias: str) -> str | None:
        """The version ``alias`` points at now (None: the alias is not set)."""
        ...

    def load(self, name: str, version: str) -> Predictor:
        """A ready Predictor of ``name`` at ``version``."""
        ...


class RegistrySource:
    """Versions from the MLflow registry; features from the online store of ``settings``."""

    def __init__(self, *, settings: FoundrySettings, max_rows: int = MAX_ROWS) -> None:
        self.settings = settings
        from raycore.registry.store import ModelStore

        self.store = ModelStore(settings)
        self.online = settings.online_store()
        self.max_rows = max_rows

    def alias_version(self, name: str, alias: str) -> str | None:
        return self.store.alias_version(name, alias)

    def load(self, name: str, version: str) -> Predictor:
        bundle, resolved = self.store.load_bundle(name, version=version)
        return Predictor(
            bundle=bundle, version=resolved, online=self.online, max_rows=self.max_rows
        )


class ReloadingModel:
    """The current Predictor of one model at one alias, swapped atomically when the alias moves."""

    def __init__(self, *, name: str, alias: str, source: ModelSource, predictor: Predictor) -> None:
        self.name = name
        self.alias = alias
        self.source = source
        self._current = predictor
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.last_check = time.time()
        self.last_error: str | None = None

    @classmethod
    def open(cls, *, name: str, alias: str, source: ModelSource) -> ReloadingModel:
        """Load ``name@alias`` now (blocking); RegistryError when the alias is not set."""
        version = source.alias_version(name, alias)
        if version is None:
            raise RegistryError(
                f"model '{name}' has no version with alias '{alias}'",
                hint=f"train it first (`foundry train {name}`) or check `foundry status`",
            )
        return cls(name=name, alias=alias, source=source, predictor=source.load(name, version))

    @property
    def current(self) -> Predictor:
        """The Predictor answering now; take it once per request."""
        return self._current

    async def refresh(self, *, force: bool = False) -> dict[str, Any]:
        """Check the alias; load and swap in a new version if it moved (or reload it when ``force``)."""
        async with self._lock:
            previous = self._current.version
            version = await asyncio.to_thread(self.source.alias_version, self.name, self.alias)
            self.last_check = time.time()
            report: dict[str, Any] = {"model": self.name, "alias": self.alias, "previous": previous}
            if version is None:
                # An alias removed by mistake must not take the model down: keep answering.
                self.last_error = f"alias '{self.alias}' is not set; still serving v{previous}"
                return {**report, "version": previous, "changed": False, "error": self.last_error}
            if version == previous and not force:
                return {**report, "version": previous, "changed": False}
            predictor = await asyncio.to_thread(self.source.load, self.name, version)
            self._current = predictor  # the swap: one reference assignment
            self.last_error = None
            log.info("%s@%s: v%s -> v%s", self.name, self.alias, previous, version)
            return {**report, "version": version, "changed": version != previous}

    def start(self, *, poll_s: float) -> None:
        """Poll the alias every ``poll_s`` seconds in the running event loop (0: never)."""
        if poll_s > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch(poll_s))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _watch(self, poll_s: float) -> None:
        while True:
            await asyncio.sleep(poll_s)
            try:
                await self.refresh()
            except Exception as exc:  # a registry hiccup must never stop the replica answering
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "reload check of %s@%s failed: %s", self.name, self.alias, self.last_error
                )
