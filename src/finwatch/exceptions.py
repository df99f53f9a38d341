"""Errors a user can act on. Each message names what was wrong and where; the CLI prints it on one line."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "FinwatchError",
    "InputError",
    "OutputExistsError",
    "SchemaError",
    "StoreError",
    "UnknownFormatError",
]


class FinwatchError(Exception):
    """Base class: an error caused by input or configuration, reported to the user without a traceback."""


class ConfigError(FinwatchError):
    """A setting or command-line option is out of range or inconsistent."""


class SchemaError(FinwatchError):
    """A table does not have the canonical columns or types."""


class OutputExistsError(FinwatchError):
    """The output location holds something finwatch will not overwrite."""


class InputError(FinwatchError):
    """An input file cannot be read at all (empty, truncated, wrong encoding, hostile XML...).

    The message names the file, the row or line where known, and the reason; nothing from the file is stored.
    """

    def __init__(self, file: str, reason: str, row: int | None = None) -> None:
        self.file, self.row, self.reason = file, row, reason
        where = f"{file}, row {row}" if row is not None else file
        super().__init__(f"{where}: {reason}")


class UnknownFormatError(InputError):
    """No adapter recognises the file's content."""


class StoreError(FinwatchError):
    """The store is missing, locked, or was created with different settings."""
