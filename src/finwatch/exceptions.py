"""Errors a user can act on. Each message names what was wrong and where; the CLI prints it on one line."""

from __future__ import annotations

__all__ = ["ConfigError", "FinwatchError", "OutputExistsError", "SchemaError"]


class FinwatchError(Exception):
    """Base class: an error caused by input or configuration, reported to the user without a traceback."""


class ConfigError(FinwatchError):
    """A setting or command-line option is out of range or inconsistent."""


class SchemaError(FinwatchError):
    """A table does not have the canonical columns or types."""


class OutputExistsError(FinwatchError):
    """The output location holds something finwatch will not overwrite."""
