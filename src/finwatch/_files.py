"""Reading a file a user named: refuse at once what would hang or flood the process.

A FIFO, a character device (``/dev/zero``), a socket or a folder given where a file is expected would make a plain
``read_text`` wait forever or read without end; a huge file would fill the memory. :func:`read_option_file` opens
the file without blocking, checks what the opened descriptor is, and reads at most a cap, so each of these is a
one-line :class:`~finwatch.exceptions.ConfigError` naming the option and the path.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from finwatch.exceptions import ConfigError

__all__ = ["OPTION_FILE_LIMIT", "check_option_file", "not_a_file", "read_option_file", "read_option_text"]

#: the largest option file (configuration, mapping, filer, schema) read, in bytes
OPTION_FILE_LIMIT = 50 * 1024 * 1024

_KINDS = {stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device", stat.S_IFIFO: "a FIFO (named pipe)",
          stat.S_IFSOCK: "a socket"}  # fmt: skip


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "something else")


def not_a_file(path: Path, folder_ok: bool = False) -> str | None:
    """Why ``path`` cannot be read as an export (a device, a FIFO, a socket; a folder unless ``folder_ok``), or None
    (a regular file, or nothing there: reading it then says so). Reading a device or a FIFO never ends."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISREG(mode) or (folder_ok and stat.S_ISDIR(mode)):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    return f"is {_kind(mode)}, not a regular file"


def _refusal(mode: int, size: int, limit: int) -> str | None:
    if stat.S_ISDIR(mode):
        return "a folder, not a file"
    if not stat.S_ISREG(mode):
        return f"not a regular file ({_kind(mode)})"
    if size > limit:
        return f"too large ({size:,} bytes; at most {limit:,})"
    return None


def _where(option: str, path: Path | str) -> str:
    return f"{option} {path}" if option else str(path)


def check_option_file(path: Path | str, option: str, *, limit: int = OPTION_FILE_LIMIT) -> Path:
    """``path`` when it is a regular file of at most ``limit`` bytes; else a one-line ConfigError naming ``option``
    (for a library that opens the file itself, such as an XSD loader)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ConfigError(f"{_where(option, path)}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{_where(option, path)}: cannot be read ({exc.strerror})") from None
    if problem := _refusal(info.st_mode, info.st_size, limit):
        raise ConfigError(f"{_where(option, path)}: {problem}")
    return Path(path)


def read_option_file(path: Path | str, option: str, *, limit: int = OPTION_FILE_LIMIT) -> bytes:
    """The bytes of the file a user named with ``option``, after refusing a missing file, a folder, a FIFO, a device,
    a socket and a file over ``limit`` bytes with a one-line ConfigError. Never blocks: the file is opened without
    waiting for a writer and checked through the opened descriptor (no race with a swapped path)."""
    where = _where(option, path)
    check_option_file(path, option, limit=limit)  # a FIFO is refused before it is even opened
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot be read ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if problem := _refusal(info.st_mode, info.st_size, limit):
            raise ConfigError(f"{where}: {problem}")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew while being read
        raise ConfigError(f"{where}: too large (more than {limit:,} bytes)")
    return data


def read_option_text(path: Path | str, option: str, *, limit: int = OPTION_FILE_LIMIT) -> str:
    """The UTF-8 text of the file a user named with ``option`` (see :func:`read_option_file`); a file that is not
    UTF-8 is a one-line ConfigError too."""
    data = read_option_file(path, option, limit=limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{_where(option, path)}: not UTF-8 text (byte {exc.start})") from None
