"""Train one catalog model: a thin entrypoint for `python` and `ray job submit`.

    python train_jobs/train.py --model mdl-001
    RAY_AUTH_MODE=token ray job submit --working-dir . -- python train_jobs/train.py --model mdl-001
"""

from __future__ import annotations

import argparse
import sys

from raycore.catalog import load_catalog
from raycore.errors import RaycoreError
from raycore.settings import FoundrySettings
from raycore.training import train_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="catalog id (mdl-001) or name")
    args = parser.parse_args(argv)
    try:
        settings = FoundrySettings.load()
        outcome = train_model(load_catalog().get(args.model), settings=settings, progress=print)
    except RaycoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{outcome.model_id} {outcome.model_name}: {outcome.metric_name}={outcome.metric:.4f} "
        f"gate {outcome.gate} passed={outcome.passed} version={outcome.version} run={outcome.run_id}"
    )
    if outcome.decision:
        print(f"registry: {outcome.decision}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
