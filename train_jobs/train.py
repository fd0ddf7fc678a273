"""Train one catalog model: a thin entrypoint for `python` and `ray job submit`.

    python train_jobs/train.py --model mdl-001
    RAY_AUTH_MODE=token ray job submit --working-dir . -- python train_jobs/train.py --model mdl-001
    python train_jobs/train.py --model mdl-001 --workers 2   # Ray Train workers instead of the catalog's
"""

from __future__ import annotations

import argparse
import sys

from raycore.catalog import load_catalog
from raycore.errors import RaycoreError
from raycore.settings import FoundrySettings
from raycore.training import train_model


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"--workers must be a whole number >= 1, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="catalog id (mdl-001) or name")
    parser.add_argument(
        "--workers",
        type=_positive,
        default=None,
        help="Ray Train workers for this run (default: the catalog's resources.num_workers)",
    )
    args = parser.parse_args(argv)
    try:
        settings = FoundrySettings.load()
        spec = load_catalog().get(args.model)
        if args.workers is not None:
            try:  # validated as the catalog's own value is (ResourcesSpec's bounds)
                resources = type(spec.resources).model_validate(
                    {**spec.resources.model_dump(), "num_workers": args.workers}
                )
            except ValueError as exc:
                parser.error(f"--workers {args.workers}: {exc}")
            spec = spec.model_copy(update={"resources": resources})
        outcome = train_model(spec, settings=settings, progress=print)
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
