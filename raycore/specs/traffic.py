"""Traffic policies: how a model's requests are split between its registry aliases.

One policy per model, declared in YAML (``raycore/catalog/traffic/<model>.yaml``
for a shipped default, ``foundry traffic set MODEL --file policy.yaml``) or built
from command-line flags, and changeable at runtime:

- ``single``: every request goes to ``champion``.
- ``ab``: a weighted split between aliases, sticky by a request key when
  ``sticky_key`` names one (the same key always lands on the same alias).
- ``canary``: ``alias`` gets ``start_percent`` of the traffic, stepping up by
  ``step_percent`` every ``step_every_s`` seconds (or ``step_every_requests``
  challenger requests) while its error rate and p99 latency stay within
  bounds, and rolls back to 0 % (champion only) as soon as they do not.
- ``shadow``: ``alias`` receives a copy of ``sample_percent`` of the live
  traffic; its answers are logged for comparison and never returned.

Example:
    >>> policy = TrafficPolicy(kind="ab", ab=AbSpec(weights={"champion": 90, "challenger": 10}))
    >>> policy.aliases()
    ('challenger', 'champion')
    >>> parse_weights("champion=90,challenger=10", flag="--ab")
    {'champion': 90.0, 'challenger': 10.0}
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from raycore.errors import SpecError
from raycore.specs.base import FrozenSpec
from raycore.specs.loader import load_spec, parse_spec

__all__ = [
    "CHAMPION",
    "TRAFFIC_ALIASES",
    "AbSpec",
    "CanarySpec",
    "ShadowSpec",
    "TrafficKind",
    "TrafficPolicy",
    "load_traffic_policy",
    "parse_weights",
    "policy_from_flags",
]

# The registry's aliases (raycore.registry.store.ALIASES; repeated here: specs import no mlflow).
TRAFFIC_ALIASES = ("champion", "challenger", "shadow")
CHAMPION = "champion"
TrafficKind = Literal["single", "ab", "canary", "shadow"]


def _known_alias(value: str, *, field: str) -> str:
    if value not in TRAFFIC_ALIASES:
        raise ValueError(
            f"{field} '{value}' is not a registry alias; use one of: {', '.join(TRAFFIC_ALIASES)}"
        )
    return value


def _percent(value: float, *, field: str) -> float:
    if not math.isfinite(value) or not 0.0 <= value <= 100.0:
        raise ValueError(f"{field} must be a percentage in 0-100, got {value!r}")
    return value


class AbSpec(FrozenSpec):
    """A weighted split between aliases, optionally sticky by a request key."""

    weights: dict[str, float] = Field(
        description="Relative weight per alias, e.g. {champion: 90, challenger: 10}; need not sum to 100."
    )
    sticky_key: str | None = Field(
        default=None,
        min_length=1,
        description="Request field or header whose value pins a caller to one alias; null splits at random.",
    )

    @field_validator("weights")
    @classmethod
    def _valid_weights(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError(
                "weights must name at least one alias, e.g. {champion: 90, challenger: 10}"
            )
        for alias, weight in value.items():
            _known_alias(alias, field="weights alias")
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(
                    f"weight of '{alias}' must be a finite number >= 0, got {weight!r}"
                )
        if sum(value.values()) <= 0:
            raise ValueError(f"weights must sum to more than 0, got {dict(value)!r}")
        return value


class CanarySpec(FrozenSpec):
    """A challenger that earns traffic step by step and loses it at the first breach."""

    alias: str = Field(default="challenger", description="The alias under test (not champion).")
    start_percent: float = Field(default=5.0, description="Share of traffic at the start, 0-100.")
    step_percent: float = Field(
        default=10.0, description="Share added at each healthy step, 0-100."
    )
    step_every_s: float | None = Field(
        default=60.0,
        gt=0,
        description="Seconds between steps (a step also needs min_requests_per_step).",
    )
    step_every_requests: int | None = Field(
        default=None,
        ge=1,
        description="Challenger requests between steps, instead of (or with) seconds.",
    )
    max_percent: float = Field(default=100.0, description="Where stepping stops, 0-100.")
    max_error_rate: float = Field(
        default=0.01, ge=0, le=1, description="Challenger error rate that rolls back."
    )
    max_p99_ms_ratio: float | None = Field(
        default=1.5,
        gt=0,
        description="Rollback when the challenger's p99 exceeds champion p99 x this.",
    )
    max_p99_ms: float | None = Field(
        default=None, gt=0, description="Rollback when the challenger's p99 exceeds this."
    )
    min_requests_per_step: int = Field(
        default=100,
        ge=1,
        description="Challenger requests a window needs before it can step or be judged.",
    )
    sticky_key: str | None = Field(
        default=None,
        min_length=1,
        description="Request field or header that keeps a caller on one side as the percentage climbs.",
    )

    @field_validator("alias")
    @classmethod
    def _challenger_alias(cls, value: str) -> str:
        _known_alias(value, field="canary alias")
        if value == CHAMPION:
            raise ValueError(
                "canary alias cannot be 'champion' (the champion is what the canary is measured against)"
            )
        return value

    @field_validator("start_percent", "step_percent", "max_percent")
    @classmethod
    def _percents(cls, value: float, info: Any) -> float:
        return _percent(value, field=info.field_name)

    @model_validator(mode="after")
    def _consistent(self) -> CanarySpec:
        if self.start_percent <= 0:
            raise ValueError(
                f"start_percent must be > 0 (a canary at 0 % never sees traffic), got {self.start_percent}"
            )
        if self.start_percent > self.max_percent:
            raise ValueError(
                f"start_percent ({self.start_percent}) must be <= max_percent ({self.max_percent})"
            )
        if self.step_every_s is None and self.step_every_requests is None:
            raise ValueError("give step_every_s or step_every_requests (or both), got neither")
        if self.step_percent == 0 and self.start_percent < self.max_percent:
            raise ValueError(
                f"step_percent is 0: the canary would never climb from {self.start_percent} to {self.max_percent}"
            )
        return self


class ShadowSpec(FrozenSpec):
    """A challenger that sees a copy of live traffic; its answers are only logged."""

    alias: str = Field(
        default="challenger", description="The alias that receives the copy (not champion)."
    )
    sample_percent: float = Field(
        default=100.0, description="Share of requests copied to the shadow, 0-100."
    )

    @field_validator("alias")
    @classmethod
    def _shadow_alias(cls, value: str) -> str:
        _known_alias(value, field="shadow alias")
        if value == CHAMPION:
            raise ValueError("shadow alias cannot be 'champion' (the champion answers the caller)")
        return value

    @field_validator("sample_percent")
    @classmethod
    def _sample(cls, value: float) -> float:
        return _percent(value, field="sample_percent")


class TrafficPolicy(FrozenSpec):
    """The traffic policy of one model: ``kind`` and the one block that goes with it."""

    kind: TrafficKind = Field(default="single", description="single | ab | canary | shadow.")
    ab: AbSpec | None = Field(default=None, description="The split, when kind is ab.")
    canary: CanarySpec | None = Field(default=None, description="The canary, when kind is canary.")
    shadow: ShadowSpec | None = Field(default=None, description="The shadow, when kind is shadow.")

    @model_validator(mode="after")
    def _block_matches_kind(self) -> TrafficPolicy:
        blocks = {"ab": self.ab, "canary": self.canary, "shadow": self.shadow}
        extra = [name for name, block in blocks.items() if block is not None and name != self.kind]
        if extra:
            raise ValueError(
                f"kind is '{self.kind}' but the policy also has a '{extra[0]}' block; remove it"
            )
        if self.kind != "single" and blocks[self.kind] is None:
            raise ValueError(f"kind '{self.kind}' needs a '{self.kind}:' block")
        return self

    def aliases(self) -> tuple[str, ...]:
        """Every alias this policy can send traffic to (sorted; champion always included)."""
        used = {CHAMPION}
        if self.ab is not None:
            used |= {alias for alias, weight in self.ab.weights.items() if weight > 0}
        if self.canary is not None:
            used.add(self.canary.alias)
        if self.shadow is not None:
            used.add(self.shadow.alias)
        return tuple(sorted(used))

    def describe(self) -> str:
        """One line for tables and audit reasons."""
        if self.ab is not None:
            split = ", ".join(f"{a}={w:g}" for a, w in self.ab.weights.items())
            sticky = f" sticky by '{self.ab.sticky_key}'" if self.ab.sticky_key else ""
            return f"ab {split}{sticky}"
        if self.canary is not None:
            c = self.canary
            every = " or ".join(
                part
                for part in (
                    f"{c.step_every_s:g}s" if c.step_every_s else "",
                    f"{c.step_every_requests} requests" if c.step_every_requests else "",
                )
                if part
            )
            return (
                f"canary {c.alias} {c.start_percent:g}%→{c.max_percent:g}% by {c.step_percent:g}% every {every}, "
                f"rollback at error rate > {c.max_error_rate:g}"
            )
        if self.shadow is not None:
            return f"shadow {self.shadow.alias} ({self.shadow.sample_percent:g}% of requests)"
        return "single (champion only)"


def load_traffic_policy(path: str | Path) -> TrafficPolicy:
    """Read and validate a traffic policy YAML; errors name the file and the field."""
    return load_spec(path, TrafficPolicy)


def parse_weights(text: str, *, flag: str = "--ab") -> dict[str, float]:
    """Parse ``champion=90,challenger=10`` into weights; a malformed part raises SpecError naming it."""
    weights: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        alias, sep, raw = part.partition("=")
        if alias.strip() in weights:
            raise SpecError(
                f"alias '{alias.strip()}' is given twice", field=flag, hint="name each alias once"
            )
        try:
            if not sep:
                raise ValueError
            weights[alias.strip()] = float(raw)
        except ValueError:
            raise SpecError(
                f"cannot read '{part}' as ALIAS=WEIGHT",
                field=flag,
                hint=f"write {flag} champion=90,challenger=10",
            ) from None
    return weights


def policy_from_flags(
    *,
    single: bool = False,
    ab: str | None = None,
    sticky: str | None = None,
    canary: str | None = None,
    canary_options: dict[str, Any] | None = None,
    shadow: str | None = None,
    sample_percent: float | None = None,
) -> TrafficPolicy:
    """Build a policy from ``foundry traffic set`` flags: exactly one of single/ab/canary/shadow.

    ``canary_options`` holds the CanarySpec fields given on the command line
    (unset ones keep their defaults). Errors name the flag.

    Example:
        >>> policy_from_flags(ab="champion=90,challenger=10", sticky="customer_id").describe()
        "ab champion=90, challenger=10 sticky by 'customer_id'"
    """
    chosen = [
        name
        for name, on in (
            ("--single", single),
            ("--ab", ab),
            ("--canary", canary),
            ("--shadow", shadow),
        )
        if on
    ]
    if len(chosen) != 1:
        raise SpecError(
            f"give exactly one of --single, --ab, --canary, --shadow (or --file), got {', '.join(chosen) or 'none'}",
            field="kind",
            hint="e.g. --ab champion=90,challenger=10 or --canary challenger --step 10",
        )
    if sticky is not None and ab is None and canary is None:
        raise SpecError(
            "--sticky only applies to --ab or --canary",
            field="--sticky",
            hint="add --ab ALIAS=W,... or drop --sticky",
        )
    if canary_options and canary is None:
        raise SpecError(
            f"canary options ({', '.join(sorted(canary_options))}) need --canary ALIAS",
            field="--canary",
            hint="add --canary challenger",
        )
    if sample_percent is not None and shadow is None:
        raise SpecError(
            "--sample only applies to --shadow", field="--sample", hint="add --shadow ALIAS"
        )
    data: dict[str, Any]
    if single:
        data = {"kind": "single"}
    elif ab is not None:
        block: dict[str, Any] = {"weights": parse_weights(ab, flag="--ab")}
        if sticky is not None:
            block["sticky_key"] = sticky
        data = {"kind": "ab", "ab": block}
    elif canary is not None:
        block = {"alias": canary, **(canary_options or {})}
        if sticky is not None:
            block["sticky_key"] = sticky
        data = {"kind": "canary", "canary": block}
    else:
        block = {"alias": shadow}
        if sample_percent is not None:
            block["sample_percent"] = sample_percent
        data = {"kind": "shadow", "shadow": block}
    return parse_spec(data, TrafficPolicy, path="command line")
