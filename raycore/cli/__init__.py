"""The ``foundry`` command."""

from raycore.cli.main import app, main

__all__ = ["app", "main"]
