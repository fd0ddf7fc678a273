"""What the ``foundry`` sub-command modules share with :mod:`raycore.cli.main`.

``main`` imports every sub-command module to register it, so those modules
look the shared helpers up when a command runs, not at import.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["guarded"]

T = TypeVar("T")


def guarded(fn: Callable[..., T]) -> Callable[..., T]:
    """``raycore.cli.main.guarded`` (foundry errors → clear message + exit code), looked up per call."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        from raycore.cli.main import guarded as main_guarded

        return main_guarded(fn)(*args, **kwargs)

    return wrapper
