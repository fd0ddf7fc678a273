"""The benchmark convention of ../shared/BENCHMARKS.md: a rich table, then JSON to
benchmarks/results/<name>.json and as the last line of stdout."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    import ray

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "ray": ray.__version__,
        "loadavg": [round(x, 2) for x in os.getloadavg()],  # the box is shared: how busy it was
    }


def report(name: str, *, params: dict[str, Any], metrics: dict[str, float], rows: list[tuple[str, str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"benchmark: {name}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in rows:
        table.add_row(key, value)
    Console(stderr=False).print(table)
    out = {"benchmark": name, "machine": machine(), "params": params, "metrics": metrics}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))
