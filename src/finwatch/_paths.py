"""Where the shipped catalogue lives: ``sql/`` and ``features/`` of a checkout, or the copies bundled on install."""

from __future__ import annotations

import os
from pathlib import Path

from finwatch.exceptions import ConfigError

__all__ = ["check_writable", "reference_root", "sql_root"]

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


def check_writable(path: Path, option: str) -> None:
    """Refuse, before any work, a file a command could not write at its end: its folder missing or read-only."""
    folder = path.parent
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a folder, not a file")
    if not folder.is_dir():
        raise ConfigError(f"{option} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"{option} {path}: not writable")
