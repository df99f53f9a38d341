"""Knobs of the synthetic world: one frozen, validated object."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from finwatch.exceptions import ConfigError

__all__ = ["ALL_EXPORTS", "LOOKALIKES", "TYPOLOGIES", "WorldConfig", "typology_mix"]

#: Every pattern the simulator injects. The first eight are AMLSim's/AMLworld's; the rest are the money flows
#: of human trafficking and the laundering around them.
TYPOLOGIES: Final[tuple[str, ...]] = (
    "fan_in",
    "fan_out",
    "scatter_gather",
    "gather_scatter",
    "cycle",
    "bipartite",
    "stack",
    "random",
    "structuring",
    "smurfing",
    "funnel_account",
    "pass_through",
    "shell_circulation",
    "sex_trafficking",
    "labor_trafficking",
    "crypto_layering",
)

#: Innocent accounts whose behaviour resembles a typology; labelled ``label=false`` so evaluations can see them.
LOOKALIKES: Final[tuple[str, ...]] = (
    "lookalike_cash_business",
    "lookalike_business_traveller",
    "lookalike_landlord",
    "lookalike_payroll_processor",
    "lookalike_crypto_trader",
)

ALL_EXPORTS: Final[tuple[str, ...]] = ("amlworld", "bank-csv", "camt053", "ethereum-etl")

SUPPORTED_CURRENCIES: Final[tuple[str, ...]] = ("USD", "EUR", "GBP", "CAD", "MXN", "CNY", "INR", "PHP", "CHF")


def _unknown_typologies(names: Iterable[str]) -> str | None:
    """The problem with ``names`` in one line (each unknown name and the valid ones), or None."""
    unknown = sorted(set(names) - set(TYPOLOGIES))
    if not unknown:
        return None
    return f"unknown typologies {unknown}; valid: {', '.join(TYPOLOGIES)}"


def typology_mix(weights: Mapping[str, float], *, only_listed: bool = False) -> dict[str, float]:
    """The weight of every typology: those in ``weights``, the others 1 (0 with ``only_listed``).

    ``finwatch synth --typology-mix 'sex_trafficking=3,structuring=2'`` keeps all sixteen typologies, those two
    weighted 3 and 2; with ``--only-listed`` only those two are injected. An unknown name is refused.
    """
    problem = _unknown_typologies(weights)
    if problem:
        raise ConfigError(problem)
    others = 0.0 if only_listed else 1.0
    return {name: float(weights.get(name, others)) for name in TYPOLOGIES}


class WorldConfig(BaseModel):
    """Everything that determines a synthetic world. Same config → byte-identical files."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    accounts: int = Field(20_000, ge=500, le=50_000_000, description="accounts of every kind in the world")
    days: int = Field(30, ge=14, le=3_650, description="length of the simulated period")
    start: dt.date = Field(dt.date(2026, 1, 5), description="first simulated day (UTC)")
    seed: int = Field(0, ge=0, lt=2**63)
    prevalence: float = Field(
        0.1, gt=0.0, le=0.3, description="share of accounts that take part in a suspicious pattern"
    )
    typology_mix: dict[str, float] = Field(
        default_factory=lambda: dict.fromkeys(TYPOLOGIES, 1.0),
        description="relative weight of each typology among injected instances (0 switches one off; a typology "
        "missing from the mapping gets 0: build a partial mix with typology_mix())",
    )
    difficulty: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="camouflage: share of patterns hidden in existing accounts, noise, spread",
    )
    base_currency: str = Field("USD", description="currency of domestic accounts and of amount_base")
    reporting_threshold: Decimal = Field(
        Decimal(10_000), gt=0, description="cash transaction reporting threshold, in the base currency"
    )
    activity: float = Field(1.0, gt=0.0, le=20.0, description="multiplier on every normal transaction rate")
    pass_through_retained_max: float = Field(
        0.05, gt=0.0, lt=0.5, description="largest share a pass-through account keeps of what flowed in"
    )
    exports: tuple[str, ...] = Field(ALL_EXPORTS, description="export formats to write")

    @field_validator("typology_mix")
    @classmethod
    def _known_typologies(cls, mix: dict[str, float]) -> dict[str, float]:
        problem = _unknown_typologies(mix)
        if problem:
            raise ValueError(problem)
        if any(weight < 0 for weight in mix.values()):
            raise ValueError("typology weights must be >= 0")
        if not any(weight > 0 for weight in mix.values()):
            raise ValueError("at least one typology needs a positive weight")
        return {name: float(mix.get(name, 0.0)) for name in TYPOLOGIES}

    @field_validator("base_currency")
    @classmethod
    def _known_currency(cls, code: str) -> str:
        code = code.upper()
        if code not in SUPPORTED_CURRENCIES:
            raise ValueError(f"base currency {code!r} not simulated; choose one of {', '.join(SUPPORTED_CURRENCIES)}")
        return code

    @field_validator("exports")
    @classmethod
    def _known_exports(cls, exports: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(exports) - set(ALL_EXPORTS))
        if unknown:
            raise ValueError(f"unknown export formats {unknown}; known: {', '.join(ALL_EXPORTS)}")
        return tuple(name for name in ALL_EXPORTS if name in exports)

    @model_validator(mode="after")
    def _fits(self) -> WorldConfig:
        if self.reporting_threshold < 100:
            raise ValueError("reporting threshold below 100 leaves no room for structured deposits")
        return self

    @property
    def end(self) -> dt.date:
        """First day after the simulated period."""
        return self.start + dt.timedelta(days=self.days)
