"""The SQL loader: every ``sql/**/*.sql`` file starts with a header; parameters are bound, never formatted in.

Header (SQL comments before the first statement line)::

    -- name: structuring
    -- grain: account
    -- time_column: ts
    -- windows: 24h, 5d, 30d
    -- typology: structuring, smurfing
    -- source: FinCEN FIN-2014-A005 (structuring red flags); FATF ...
    -- parameters:
    --   as_of: timestamp, required
    --   threshold: 10000
    -- columns:
    --   count_cash_near_threshold_24h: cash deposits in [near_share × threshold, threshold) in the last 24 h
    --   distinct_branches_near_threshold_30d: branches where such deposits were made (several in one
    --     day suggest a depositor avoiding notice)

In ``parameters`` and ``columns`` an entry is ``--   name: meaning`` (three spaces after the dashes); a line
indented further continues the entry before it (joined with a space).

The body refers to parameters as ``$name``; :func:`bind` checks that every one used is declared and given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finwatch._paths import sql_root
from finwatch.exceptions import ConfigError

__all__ = ["SqlModel", "bind", "load_model", "load_models", "sql_root"]

HEADER_KEYS = ("name", "grain", "time_column", "windows", "typology", "source", "parameters", "columns")
PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class SqlModel:
    path: Path
    name: str
    grain: str
    body: str
    windows: tuple[str, ...] = ()
    typology: tuple[str, ...] = ()
    source: str = ""
    time_column: str = ""
    parameters: dict[str, str | None] = field(default_factory=dict)  # name -> default text (None: required)
    columns: dict[str, str] = field(default_factory=dict)  # output column -> plain-language meaning

    @property
    def used_parameters(self) -> set[str]:
        return set(PARAM.findall(_strip_comments(self.body)))


def _strip_comments(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


def load_model(path: Path) -> SqlModel:
    lines = path.read_text(encoding="utf-8").splitlines()
    header: dict[str, Any] = {}
    section: str | None = None
    body_start = 0
    for index, line in enumerate(lines):
        if not line.startswith("--"):
            body_start = index
            break
        text = line[2:]
        if text.startswith("   ") and section in ("parameters", "columns"):
            entries: dict[str, str] = header[section]
            if text.startswith("    "):  # indented further: continues the previous entry's text
                if not entries:
                    raise ConfigError(
                        f"{path}: line {index + 1} continues an entry, but no {section} entry precedes it"
                    )
                last = next(reversed(entries))
                entries[last] = f"{entries[last]} {text.strip()}".strip()
                continue
            key, _, value = text.strip().partition(":")
            entries[key.strip()] = value.strip()
            continue
        key, _, value = text.strip().partition(":")
        key = key.strip()
        if key in ("parameters", "columns"):
            section = key
            header[key] = {}
        elif key in HEADER_KEYS:
            section = None
            header[key] = value.strip()
        elif key:
            raise ConfigError(f"{path}: unknown header key {key!r}; keys: {', '.join(HEADER_KEYS)}")
    else:
        body_start = len(lines)
    if "name" not in header or "grain" not in header:
        raise ConfigError(f"{path}: the header must give at least name and grain")
    parameters: dict[str, str | None] = {}
    for name, spec in header.get("parameters", {}).items():
        parameters[name] = None if "required" in spec else spec.split(",")[0].strip()
    model = SqlModel(
        path=path,
        name=header["name"],
        grain=header["grain"],
        body="\n".join(lines[body_start:]).strip().rstrip(";"),
        windows=tuple(w.strip() for w in header.get("windows", "").split(",") if w.strip()),
        typology=tuple(t.strip() for t in header.get("typology", "").split(",") if t.strip()),
        source=header.get("source", ""),
        time_column=header.get("time_column", ""),
        parameters=parameters,
        columns=dict(header.get("columns", {})),
    )
    undeclared = sorted(model.used_parameters - set(parameters))
    if undeclared:
        raise ConfigError(f"{path}: parameters {undeclared} are used but not declared in the header")
    return model


def load_models(folder: Path) -> list[SqlModel]:
    """Every model in ``folder`` (sorted by file name, so numbered prefixes order them)."""
    return [load_model(p) for p in sorted(folder.glob("*.sql"))]


def bind(model: SqlModel, values: dict[str, Any]) -> dict[str, Any]:
    """The parameters ``model`` uses, from ``values`` or the header's defaults; missing required ones fail."""
    out: dict[str, Any] = {}
    for name in sorted(model.used_parameters):
        if name in values:
            out[name] = values[name]
        elif model.parameters.get(name) is not None:
            out[name] = _literal(str(model.parameters[name]))
        else:
            raise ConfigError(f"{model.path.name}: parameter {name!r} is required")
    return out


def _literal(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            continue
    return text.strip("'\"")
