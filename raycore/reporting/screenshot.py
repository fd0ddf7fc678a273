"""A PNG of an HTML page through a headless Chromium, for people who want to see a page in a report.

Looks for ``chromium-headless-shell``, ``chromium``, ``chromium-browser``,
``google-chrome`` or ``chrome`` on PATH (or ``FOUNDRY_CHROMIUM``). Debian and
Ubuntu ship ``chromium-headless-shell`` as a package; nothing is downloaded at
run time.

Example:
    >>> screenshot(Path("status.html"), Path("status.png"), width=1400, height=2400)   # doctest: +SKIP
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from raycore.errors import ConfigurationError

__all__ = ["find_chromium", "screenshot"]

_CANDIDATES = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> str | None:
    """The first headless-capable Chromium binary found, or None."""
    configured = os.environ.get("FOUNDRY_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else shutil.which(configured)
    return next((found for name in _CANDIDATES if (found := shutil.which(name))), None)


def screenshot(
    page: Path, png: Path, *, width: int = 1400, height: int = 2400, timeout_s: float = 60.0
) -> Path:
    """Render ``page`` (an HTML file) to ``png`` with a headless Chromium; return ``png``."""
    binary = find_chromium()
    if binary is None:
        raise ConfigurationError(
            "no headless Chromium found for the screenshot",
            hint="install one (Debian/Ubuntu: `apt-get install chromium-headless-shell`) or set FOUNDRY_CHROMIUM",
        )
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="foundry-chromium-") as profile:
        cmd = [
            binary,
            "--headless",
            "--no-sandbox",  # containers run as root, where Chromium's sandbox cannot start
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={png.resolve()}",
            page.resolve().as_uri(),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0 or not png.is_file() or png.stat().st_size == 0:
        raise ConfigurationError(
            f"{binary} could not render {page}: exit {done.returncode}: {done.stderr.strip()[-500:]}",
            hint="check that the binary runs headless (`--headless --screenshot`)",
        )
    return png
