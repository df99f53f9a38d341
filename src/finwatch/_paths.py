"""Where the shipped catalogue lives: ``sql/`` and ``features/`` of a checkout, or the copies bundled on install."""

from __future__ import annotations

from pathlib import Path

from finwatch.exceptions import ConfigError

__all__ = ["reference_root", "sql_root"]

_HERE = Path(__file__).resolve()


def _shipped(name: str) -> Path:
    checkout = _HERE.parents[2] / name
    if checkout.is_dir():
        return checkout
    bundled = _HERE.parent / "_bundled" / name
    if bundled.is_dir():
        return bundled
    raise ConfigError(f"the {name}/ folder is missing: reinstall finwatch")


def reference_root() -> Path:
    """The project's ``features/`` folder (rules, reasons, feature sets, reference lists, jurisdictions)."""
    return _shipped("features")


def sql_root() -> Path:
    """The project's ``sql/`` folder."""
    return _shipped("sql")
