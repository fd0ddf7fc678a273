"""Serve application entrypoint for `serve run` / `serve deploy` (see foundry.yaml)."""

from ray.serve import Application

from raycore.serving.app import AppArgs, build_app


def app_builder(args: AppArgs) -> Application:
    """Typed builder: Serve validates ``args`` against AppArgs before building."""
    return build_app(args)
