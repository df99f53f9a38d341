"""One run configuration: a frozen, typed section per stage, loaded once per run with a clear precedence.

Layers, lowest first (a later layer overrides an earlier one, key by key)::

    built-in defaults  <  jurisdiction preset  <  finwatch.toml (or --config FILE, $FINWATCH_CONFIG)
                       <  environment (FINWATCH_…)  <  command-line flags

- A **jurisdiction preset** (``features/jurisdictions/<code>.toml``, chosen with ``jurisdiction = "eu"`` in any
  layer) sets the reporting threshold, its currency, whether an amount equal to it is reportable, the aggregation
  window, the home country and the citations that rules and narratives quote.
- **Environment** variables are read by pydantic-settings: ``FINWATCH_<SECTION>__<KEY>`` (``FINWATCH_FEATURES__
  THRESHOLD=15000``, ``FINWATCH_SCORE__BUDGET=0.02``) and ``FINWATCH_JURISDICTION`` / ``FINWATCH_MODELS``.
- A key that does not exist, or a value of the wrong type, is refused in one line naming the key and where it came
  from (the file, the variable or the flag).

Library functions take the section they use (``FeatureConfig`` for features and rules, ``ScoreConfig`` …); run
stages that coordinate several sections take the whole :class:`RunConfig`. ``RunConfig.digest()`` names the
effective configuration in manifests, model metadata and ``run.json``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from finwatch._files import read_option_text
from finwatch._paths import reference_root
from finwatch.exceptions import ConfigError

__all__ = [
    "CONFIG_ENV",
    "CONFIG_FILE",
    "ExportConfig",
    "FeatureConfig",
    "IngestConfig",
    "Level",
    "LoadedConfig",
    "ModelSpec",
    "RunConfig",
    "ScoreConfig",
    "TrainConfig",
    "fractions",
    "jurisdictions",
    "load_config",
    "parse_as_of",
    "share",
]

CONFIG_FILE = "finwatch.toml"
CONFIG_ENV = "FINWATCH_CONFIG"
ENV_PREFIX = "FINWATCH_"

#: citations rules and narratives quote when no jurisdiction is chosen (the United States' texts)
US_LAW = {
    "threshold": "31 CFR 1010.311 (reports of transactions in currency of more than $10,000)",
    "aggregation": "31 CFR 1010.313 (aggregation of multiple currency transactions in one business day)",
    "structuring": "31 CFR 1010.314 and 31 U.S.C. 5324 (structuring transactions to evade reporting)",
    "suspicious_report": "31 CFR 1020.320 (reports by banks of suspicious transactions)",
    "trafficking": "FinCEN Advisory FIN-2020-A008 (human trafficking and related activity)",
    "trafficking_key_term": "HUMAN TRAFFICKING FIN-2020-A008",
    "report_name": "Currency Transaction Report (CTR)",
}


_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)\s*d)?\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m)?\s*"
    r"(?:(\d+(?:\.\d+)?)\s*s)?\s*$"
)


def _duration(value: Any) -> Any:
    """'24h', '5d', '1d12h', '90m', '30s' → a timedelta; anything else is left to pydantic (ISO 8601, seconds)."""
    if isinstance(value, str) and value.strip() and (match := _DURATION.match(value.lower())):
        days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
        return dt.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    return value


def _calendar_day(value: Any) -> Any:
    """'day' (or an empty string): add up a UTC calendar day, not a rolling window."""
    return None if isinstance(value, str) and value.strip().lower() in ("", "day") else _duration(value)


#: a duration in a configuration: '24h', '5d', '1d12h', ISO 8601 ('PT24H') or seconds
Duration = Annotated[dt.timedelta, BeforeValidator(_duration)]


def parse_as_of(value: str | dt.datetime, option: str = "--as-of") -> dt.datetime:
    """An ISO date or time (a bare date is 00:00, a time without zone is UTC) → an aware UTC datetime."""
    if isinstance(value, dt.datetime):
        moment = value
    else:
        try:
            moment = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"{option}: {value!r} is not an ISO date or time (e.g. 2026-02-01T00:00:00Z)") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _utc(value: Any) -> Any:
    return parse_as_of(value, "as_of") if isinstance(value, str | dt.datetime) else value


#: a point in time in a configuration: read as UTC when it has no zone
UtcTime = Annotated[dt.datetime, BeforeValidator(_utc)]


class Level(StrEnum):
    """What a model scores: one row per account as of a time, or one row per transaction."""

    ACCOUNT = "account"
    TRANSACTION = "transaction"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def digest(self) -> str:
        """sha256 of the section's canonical JSON: the same values give the same digest on any machine."""
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


class IngestConfig(_Section):
    """How exports become the store's canonical tables."""

    format: str = Field("auto", description="auto (detect by content) or one format name")
    base_currency: str = Field("USD", description="the store's base currency (amount_base)")
    fx: Path | None = Field(
        None,
        description="FX table CSV (date,currency,base,rate); default: the store's own, else the shipped one",
    )
    max_amount_base: float = Field(1e12, gt=0, description="above this (base currency) an amount is absurd")
    skip_rejected: bool = Field(False, description="commit the readable files even if some are rejected")

    @field_validator("base_currency")
    @classmethod
    def _upper(cls, code: str) -> str:
        return code.upper()


class FeatureConfig(_Section):
    """Every parameter the feature SQL and the rules bind, in one frozen object."""

    w_24h: Duration = dt.timedelta(hours=24)
    w_5d: Duration = dt.timedelta(days=5)
    w_7d: Duration = dt.timedelta(days=7)
    w_30d: Duration = dt.timedelta(days=30)
    threshold: Decimal = Field(Decimal(10_000), gt=0, description="cash reporting threshold, in threshold_currency")
    threshold_currency: str | None = Field(
        None, description="currency of the threshold (default: the store's base currency, used as it is)"
    )
    reportable_at_threshold: bool = Field(
        True, description="an amount equal to the threshold is reportable ('X or more'); false for 'more than X'"
    )
    aggregation_window: Annotated[dt.timedelta | None, BeforeValidator(_calendar_day)] = Field(
        None, description="cash adds up toward the threshold over this rolling window ('day': the UTC calendar day)"
    )
    near_share: float = Field(0.8, gt=0, lt=1, description="deposits from near_share × threshold count as near")
    w_wire_after: Duration = dt.timedelta(hours=72)
    small_payment: float = 500.0
    night_hours: tuple[int, ...] = (22, 23, 0, 1, 2, 3, 4)
    w_resend_24h: Duration = dt.timedelta(hours=24)
    w_resend_48h: Duration = dt.timedelta(hours=48)
    w_cashout: Duration = dt.timedelta(hours=24)
    cycle_window: Duration = dt.timedelta(days=7)
    cycle_max_length: int = Field(6, ge=2, le=8)
    cycle_tolerance: float = Field(0.1, ge=0, lt=1)
    cycle_min_amount: float = 100.0
    sg_tolerance: float = 0.2
    sg_min_amount: float = 100.0
    peel_window: Duration = dt.timedelta(hours=12)
    peel_keep_share: float = 0.8
    peel_max_hops: int = 12
    home_country: str = "US"
    high_risk_lists: tuple[str, ...] = ("call_for_action", "increased_monitoring")
    payroll_keywords: tuple[str, ...] = ("PAYROLL", "SALARY", "WAGES", "GEHALT", "LOHN", "SALAIRE", "NOMINA")
    law: dict[str, str] = Field(default_factory=lambda: dict(US_LAW), description="citations rules quote")
    sql_dir: Path | None = Field(None, description="the SQL catalogue (default: the shipped sql/)")
    reference_dir: Path | None = Field(
        None, description="rules, reasons, feature sets and reference lists (default: the shipped features/)"
    )
    memory_limit: str | None = Field(None, description="DuckDB memory limit, e.g. '4GB' (default: 80 % of RAM)")

    @field_validator("threshold_currency", "home_country")
    @classmethod
    def _upper(cls, code: str | None) -> str | None:
        return code.upper() if code else code

    @field_validator("law")
    @classmethod
    def _law(cls, law: dict[str, str]) -> dict[str, str]:
        return {**US_LAW, **law}


class ModelSpec(_Section):
    """Which scorer kind to train and its parameters (checked by the kind itself)."""

    kind: str = "xgboost"
    params: dict[str, Any] = Field(default_factory=dict)


class TrainConfig(_Section):
    level: Level = Level.TRANSACTION
    split: str = "temporal"
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    step_hours: int = Field(72, gt=0, description="account level: hours between as-of times")
    as_of: UtcTime | None = Field(None, description="use data up to this time (default: all)")
    feature_set: str | None = Field(None, description="default: <level>_v1")
    seed: int = 0
    alert_budget: float | None = Field(None, gt=0, lt=1, description="None: the threshold maximises F1 on validation")
    model: ModelSpec = Field(default_factory=ModelSpec)


class ScoreConfig(_Section):
    model: str = Field("finwatch@champion", description="an account-level model reference")
    budget: float = Field(0.01, gt=0, lt=1, description="share of scored accounts raised as leads")
    reasons: int = Field(5, ge=1, description="reasons per lead (rules that fired first, then the model's)")
    evidence_limit: int = Field(50, ge=1, description="evidence transactions kept per lead")


class ExportConfig(_Section):
    goaml_xsd: Path | None = Field(None, description="the FIU's goAML schema (XSD)")
    goaml_mapping: Path | None = Field(None, description="the FIU's codes (see features/goaml/)")


class RunConfig(_Section):
    jurisdiction: str | None = Field(None, description="a preset under features/jurisdictions (us, ca, au, eu)")
    models: Path = Field(Path("models"), description="the model registry folder")
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)

    def updated(self, values: Mapping[str, Any]) -> RunConfig:
        """A validated copy with ``values`` (dotted keys, e.g. ``{"train.step_hours": 168}``) set."""
        merged = self.model_dump()
        _merge(merged, _nest(values), "update", {})
        return RunConfig.model_validate(merged)


def fractions(text: str | None, option: str = "--fractions") -> tuple[float, float, float] | None:
    """'0.6,0.2,0.2' → (0.6, 0.2, 0.2): the train, validation and test shares of a split."""
    if text is None:
        return None
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise ConfigError(f"{option}: {text!r} is not three numbers such as 0.6,0.2,0.2")
    return parts[0], parts[1], parts[2]


def share(text: str | float | None, option: str) -> float | None:
    """'1%', '0.01', 0.01 → 0.01; refused outside (0, 100 %)."""
    if text is None:
        return None
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ConfigError(f"{option}: {text!r} is not a share such as 1% or 0.01") from None
    if not 0 < value < 1:
        raise ConfigError(f"{option}: {text!r} must be more than 0 % and less than 100 %")
    return value


# --- loading -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadedConfig:
    """The effective configuration and, for every key that a layer set, where its value came from."""

    config: RunConfig
    sources: dict[str, str]  # dotted key → "default", "jurisdiction eu (…/eu.toml)", "finwatch.toml", …

    def show(self) -> list[tuple[str, Any, str]]:
        """(dotted key, value, source) for every leaf of the effective configuration, in field order."""
        rows: list[tuple[str, Any, str]] = []
        for key, value in _leaves(self.config.model_dump(mode="json")):
            rows.append((key, value, _source_of(key, self.sources)))
        return rows


def _source_of(key: str, sources: Mapping[str, str]) -> str:
    parts = key.split(".")
    for n in range(len(parts), 0, -1):  # a key set as a whole table names its members' source
        found = sources.get(".".join(parts[:n]))
        if found:
            return found
    return "default"


def _leaves(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out += _leaves(value, dotted + ".")
        else:
            out.append((dotted, value))
    return out


def jurisdictions(reference: Path | None = None) -> dict[str, Path]:
    """Preset code → file, from ``features/jurisdictions``."""
    folder = (reference or reference_root()) / "jurisdictions"
    return {p.stem: p for p in sorted(folder.glob("*.toml"))}


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    text = read_option_text(path, what)  # a FIFO, a device, a folder or a huge file is refused at once
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path}: not valid TOML ({exc})") from None


def _preset(code: str, origin: str) -> tuple[dict[str, Any], str]:
    known = jurisdictions()
    if code.lower() not in known:
        raise ConfigError(f"{origin}: jurisdiction {code!r} is not known; presets: {', '.join(known) or 'none'}")
    path = known[code.lower()]
    data = _read_toml(path, "jurisdiction preset")
    features = dict(data.get("features") or {})
    if not features.get("home_country"):
        features.pop("home_country", None)  # a preset that leaves it to the user (EU: the member state)
    features["law"] = {k: str(v) for k, v in (data.get("law") or {}).items()}
    return {"features": features}, f"jurisdiction {code.lower()} ({path})"


def _unknown_keys(data: Mapping[str, Any], model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted keys of ``data`` that ``model`` does not define (free-form dicts are not descended into)."""
    out: list[str] = []
    for key, value in data.items():
        field = model.model_fields.get(key)
        dotted = f"{prefix}{key}"
        if field is None:
            out.append(dotted)
            continue
        sub = field.annotation
        if isinstance(value, Mapping) and isinstance(sub, type) and issubclass(sub, BaseModel):
            out += _unknown_keys(value, sub, dotted + ".")
    return out


def _merge(
    base: dict[str, Any], layer: Mapping[str, Any], origin: str, sources: dict[str, str], prefix: str = ""
) -> None:
    """Merge ``layer`` into ``base`` key by key (tables, citations and model parameters too), noting each origin."""
    for key, value in layer.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value, origin, sources, dotted + ".")
        else:
            base[key] = dict(value) if isinstance(value, Mapping) else value
            sources[dotted] = origin


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"features.threshold": 1}`` → ``{"features": {"threshold": 1}}``."""
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        node = out
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def _env_layer(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """``FINWATCH_…`` variables through pydantic-settings; returns the nested values and key → variable name."""
    from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

    class _Env(BaseSettings):  # the same sections, read from the environment only (their keys checked later)
        model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore")
        jurisdiction: str | None = None
        models: Path | None = None
        ingest: dict[str, Any] | None = None
        features: dict[str, Any] | None = None
        train: dict[str, Any] | None = None
        score: dict[str, Any] | None = None
        export: dict[str, Any] | None = None

    class _Given(EnvSettingsSource):  # reads ``environ`` instead of the process's environment (names ignore case)
        def _load_env_vars(self) -> Mapping[str, str | None]:
            return {name.lower(): value for name, value in environ.items()}

    raw = _Given(_Env, env_prefix=ENV_PREFIX, env_nested_delimiter="__", case_sensitive=False)()
    values = {k: v for k, v in raw.items() if v is not None}
    names = {dotted: ENV_PREFIX + dotted.upper().replace(".", "__") for dotted, _ in _leaves(values)}
    return values, names


def load_config(
    file: Path | None = None,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> LoadedConfig:
    """The effective configuration: defaults < preset < file < environment < ``flags`` (dotted keys; None = unset).

    ``file`` defaults to ``$FINWATCH_CONFIG``, then ``./finwatch.toml`` when it exists.
    """
    env = dict(os.environ if environ is None else environ)
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    what = "--config"
    if file is None and env.get(CONFIG_ENV):
        file, what = Path(env[CONFIG_ENV]), CONFIG_ENV
    if file is None and ((cwd or Path.cwd()) / CONFIG_FILE).is_file():
        file, what = (cwd or Path.cwd()) / CONFIG_FILE, "configuration file"
    layers: list[tuple[dict[str, Any], str]] = []
    file_data: dict[str, Any] = {}
    if file is not None:
        file_data = _read_toml(file, what)
        unknown = _unknown_keys(file_data, RunConfig)
        if unknown:
            raise ConfigError(f"{file}: unknown configuration key {unknown[0]!r}" + _known_hint(unknown[0]))
        _relative_to(file_data, Path(file).parent)
    env_data, env_names = _env_layer(env)
    unknown = _unknown_keys(env_data, RunConfig)
    if unknown:
        name = ENV_PREFIX + unknown[0].upper().replace(".", "__")
        raise ConfigError(f"environment variable {name}: {unknown[0]!r} is not a configuration key")
    flag_data = _nest(given)
    # the jurisdiction is chosen by the highest layer that names it, and is applied just above the defaults
    code = given.get("jurisdiction") or env_data.get("jurisdiction") or file_data.get("jurisdiction")
    if code:
        origin = ("--jurisdiction" if given.get("jurisdiction") else
                  f"{ENV_PREFIX}JURISDICTION" if env_data.get("jurisdiction") else str(file))  # fmt: skip
        layers.append(_preset(str(code), origin))
    if file is not None:
        layers.append((file_data, str(file)))
    layers.append((env_data, "environment"))
    layers.append((flag_data, "command line"))

    merged = RunConfig().model_dump()
    sources: dict[str, str] = {}
    for data, origin in layers:
        _merge(merged, data, origin, sources)
    for dotted, name in env_names.items():  # name the variable itself
        if sources.get(dotted) == "environment":
            sources[dotted] = f"environment {name}"
    for dotted in given:
        sources[dotted] = f"command line ({_flag_name(dotted)})"
    try:
        config = RunConfig.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        where = _source_of(key, sources)
        raise ConfigError(f"{where}: {key}: {first['msg']}") from None
    return LoadedConfig(config, sources)


#: keys holding paths: in a configuration file they are read relative to the file's own folder
PATH_KEYS = ("models", "ingest.fx", "features.sql_dir", "features.reference_dir", "export.goaml_xsd",
             "export.goaml_mapping")  # fmt: skip


def _relative_to(data: dict[str, Any], folder: Path) -> None:
    for dotted in PATH_KEYS:
        *parents, last = dotted.split(".")
        node: Any = data
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if (
            isinstance(node, dict)
            and isinstance(node.get(last), str)
            and not Path(node[last]).expanduser().is_absolute()
        ):
            node[last] = str(folder / node[last])


def _flag_name(dotted: str) -> str:
    return "--" + dotted.split(".")[-1].replace("_", "-")


def _known_hint(dotted: str) -> str:
    node: type[BaseModel] = RunConfig
    *parents, _last = dotted.split(".")
    for part in parents:
        annotation = node.model_fields[part].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        node = annotation
    return f"; keys{' of [' + '.'.join(parents) + ']' if parents else ''}: {', '.join(node.model_fields)}"
