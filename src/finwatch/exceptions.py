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
    "user_message",
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
        reason = " ".join(line.strip() for line in str(reason).splitlines() if line.strip())  # always one line
        self.file, self.row, self.reason = file, row, reason
        where = f"{file}, row {row}" if row is not None else file
        super().__init__(f"{where}: {reason}")


class UnknownFormatError(InputError):
    """No adapter recognises the file's content."""


class StoreError(FinwatchError):
    """The store is missing, locked, or was created with different settings."""


def user_message(exc: BaseException) -> str | None:
    """The one line a user is told for an error they can act on; None for a fault of finwatch itself.

    Errors in the input or the settings say what was wrong and where; errors of the environment (a full disk, a
    missing permission) name the file and the system's reason. The command line and the flows print the same line.
    """
    if isinstance(exc, FinwatchError):
        return str(exc)
    if isinstance(exc, OSError):
        where = exc.filename or "a file"
        return f"{where}: {exc.strerror or exc}"
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors())
        return f"invalid settings: {problems}"
    return None
