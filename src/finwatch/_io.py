"""Atomic, reproducible writes: everything is written beside its destination and renamed into place.

- :func:`atomic_write_bytes` writes a hidden ``.<name>.tmp-<pid>-<random>`` file beside the destination and renames
  it over the destination. The temporary file is removed on any failure, an interruption included.
- :func:`atomic_directory` fills a hidden ``.<name>.partial-<random>`` folder and publishes it in one step. Where
  the system swaps two folders atomically (Linux ``renameat2(RENAME_EXCHANGE)``, macOS ``renamex_np(RENAME_SWAP)``)
  the destination holds the old folder or the new one at every instant, a kill included. Elsewhere the old folder
  is renamed to ``.<name>.old-<random>`` for the instant between two renames; a writer killed in that instant is
  repaired by the next write into the same folder, which moves the old folder back.
- Every writer holds a shared lock on the folder it writes into. A writer that can take that lock exclusively at
  once — no other finwatch writer is at work there — first removes what killed writers left behind
  (``.<name>.partial-*``, ``.<name>.old-*``, ``.<name>.tmp-*``); a concurrent writer's files are never touched.
- Each step between which a kill leaves a different state on disk is a :func:`finwatch.faults.checkpoint` (a test
  hook that does nothing unless ``$FINWATCH_FAULT`` or ``$FINWATCH_FAULT_TRACE`` is set).
- An operating-system error names the destination and the system's reason (``runs/x/leads.parquet: No space left on
  device``), also when a library reports it in its own exception type.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import os
import re
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from finwatch.exceptions import OutputExistsError
from finwatch.faults import checkpoint

__all__ = [
    "atomic_directory",
    "atomic_write_bytes",
    "atomic_write_text",
    "fsync_path",
    "fsync_tree",
    "naming_errors",
    "remove_leftovers",
    "sha256_file",
]

_CHUNK = 1 << 20
#: what killed writers leave beside a destination ``<name>``: staging and retired folders, temporary files
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?:(?P<folder>partial|old)-[A-Za-z0-9_]{8}|tmp-\d+(?:-[0-9a-f]{8})?)$")
#: how libraries (Polars, Arrow) quote an operating-system error in their own exceptions
_OS_ERROR = re.compile(r"\(os error (\d+)\)")
#: the reasons only a write fails for
_WRITE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_tree(root: Path) -> None:
    """Flush every file and folder under ``root`` to disk, so a rename publishes complete content."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            fsync_path(Path(folder) / name)
        fsync_path(Path(folder))


def fsync_path(path: Path) -> None:
    """Flush one file or folder to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- errors ----------------------------------------------------------------------------------------------------------
def _os_error(exc: BaseException, path: Path, temp: Path | None, anonymous: bool) -> OSError | None:
    """``exc`` as an OSError naming the file it concerns and the system's reason; None to leave it as it is.

    A library's error raised from an OSError (``__cause__``) is taken as that OSError. An OSError naming no file
    whose reason only a write can have (a full disk or quota, a read-only file system, a file too large) concerns
    ``path`` even without ``anonymous``: the writes are what the caller names ``path`` for.
    """
    number: int | None = None
    if not isinstance(exc, OSError) and isinstance(exc.__cause__, OSError):
        exc = exc.__cause__
    if isinstance(exc, OSError) and exc.filename is None and exc.errno in _WRITE_ERRORS:
        anonymous = True
    if isinstance(exc, OSError):
        if exc.filename is not None:
            if temp is None:
                return None
            try:
                relative = Path(os.fsdecode(exc.filename)).relative_to(temp)
            except ValueError:
                return None  # another file: its own name is the right one
            where = path / relative if relative.parts else path
        elif anonymous:
            where = path
        else:
            return None
        number = exc.errno
        if number is None and (found := _OS_ERROR.search(str(exc))):
            number = int(found[1])
        if number is None:
            bare = OSError(str(exc))
            bare.strerror, bare.filename = str(exc), str(where)
            return bare
        return OSError(number, exc.strerror if exc.errno is not None else os.strerror(number), str(where))
    if anonymous and isinstance(exc, Exception) and (found := _OS_ERROR.search(str(exc))):
        number = int(found[1])
        return OSError(number, os.strerror(number), str(path))
    return None


@contextmanager
def naming_errors(path: Path, temp: Path | None = None, *, anonymous: bool = True) -> Iterator[None]:
    """Operating-system errors raised inside become OSErrors naming ``path`` and the system's reason.

    An error about ``temp`` (the temporary file or folder standing for ``path``) or a file inside it names the
    corresponding file of ``path``; one about another file keeps its name. With ``anonymous``, errors that name no
    file — and library errors quoting an operating-system error ("(os error 28)") — are taken to concern ``path``.
    """
    try:
        yield
    except BaseException as exc:
        renamed = _os_error(exc, Path(path), temp, anonymous)
        if renamed is None:
            raise
        raise renamed from exc


# --- the writers' lock and their leftovers -----------------------------------------------------------------------
@contextmanager
def _writing_into(folder: Path, *, tidy: bool) -> Iterator[None]:
    """Hold a shared lock on ``folder`` while writing into it; with ``tidy``, first remove killed writers' leftovers
    if no other writer holds it. Where the file system has no such locks, write without (and never tidy)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        fd = -1  # the folder is not there (the write itself will say so) or cannot be opened
    try:
        if fd >= 0 and tidy and _flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB):
            remove_leftovers(folder)
        if fd >= 0:
            _flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        if fd >= 0:
            os.close(fd)  # releases the lock


def _flock(fd: int, operation: int) -> bool:
    try:
        fcntl.flock(fd, operation)
    except OSError:
        return False  # held by another writer, or the file system has no locks
    return True


def remove_leftovers(folder: Path) -> list[Path]:
    """Remove what killed writers left in ``folder``; returns what was removed (or moved back).

    Call it only while no writer is at work in ``folder`` (the writers here do, holding the folder's lock
    exclusively; the store does under its own lock). A destination that a writer killed between its two renames left
    missing gets its old folder back.
    """
    removed: list[Path] = []
    retired: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        match = _LEFTOVER.match(path.name)
        if match is None:
            continue
        if match["folder"] == "old" and path.is_dir() and not path.is_symlink():
            retired.setdefault(match["name"], []).append(path)
        elif match["folder"] and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
            checkpoint("remove_leftovers:removed", path)
        elif not match["folder"] and not path.is_dir():
            path.unlink(missing_ok=True)
            removed.append(path)
            checkpoint("remove_leftovers:removed", path)
    for name, olds in retired.items():
        target = folder / name
        if not os.path.lexists(target):  # killed between moving the old folder aside and the new one in
            newest = max(olds, key=lambda p: p.stat().st_mtime_ns)
            inner = list(newest.iterdir())
            content = inner[0] if len(inner) == 1 and inner[0].name == name and inner[0].is_dir() else newest
            os.rename(content, target)  # (a retired folder of earlier versions holds the folder by its name)
            fsync_path(folder)
            checkpoint("remove_leftovers:restored", target)
        for path in olds:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
            checkpoint("remove_leftovers:removed", path)
    return removed


# --- writing ---------------------------------------------------------------------------------------------------------
def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one rename: readers see the old file or the new one, never a part."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    with naming_errors(path, tmp), _writing_into(path.parent, tidy=True):
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            checkpoint("atomic_write:before-rename", path)
            os.replace(tmp, path)
        except BaseException:
            with suppress(OSError):
                tmp.unlink()
            raise
        checkpoint("atomic_write:renamed", path)
        fsync_path(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_directory(target: Path, *, marker: str) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces ``target`` in one step.

    ``target`` may be absent, an empty folder, or a folder an earlier run produced (recognised by the file
    ``marker`` inside it); anything else is refused so that no user data is overwritten. A crash leaves only a
    hidden ``.<name>.partial-*`` folder beside the target, which readers never look at and the next write into the
    same folder removes. An operating-system error about a file written in the staging folder names that file in
    ``target``.
    """
    shown = Path(target)
    target = shown.resolve()
    if target.exists():
        if not target.is_dir():
            raise OutputExistsError(f"{target}: exists and is not a folder")
        if any(target.iterdir()) and not (target / marker).is_file():
            raise OutputExistsError(f"{target}: folder is not empty and was not written by finwatch ({marker} missing)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with _writing_into(target.parent, tidy=True):
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
        try:
            with naming_errors(shown, staging, anonymous=False):
                yield staging
            with naming_errors(shown, staging):
                staging.chmod(0o755)  # mkdtemp makes it private; the published folder is an ordinary one
                fsync_tree(staging)
                checkpoint("atomic_directory:staged", target)
                _publish(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def _publish(staging: Path, target: Path) -> None:
    """Move the complete folder ``staging`` to ``target``, replacing a folder there."""
    if not os.path.lexists(target):
        os.replace(staging, target)
        fsync_path(target.parent)
    elif _swap(staging, target):
        checkpoint("atomic_directory:swapped", target)
        fsync_path(target.parent)
        shutil.rmtree(staging, ignore_errors=True)  # the old folder, now under the staging name
    else:
        retired = target.with_name(f".{target.name}.old-{secrets.token_hex(4)}")
        os.rename(target, retired)
        checkpoint("atomic_directory:moved-aside", target)
        try:
            os.rename(staging, target)
        except BaseException:
            os.rename(retired, target)
            raise
        checkpoint("atomic_directory:moved-in", target)
        fsync_path(target.parent)
        shutil.rmtree(retired, ignore_errors=True)
    checkpoint("atomic_directory:published", target)


def _swap(a: Path, b: Path) -> bool:
    """Exchange two paths in one step; False where the system or the file system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if sys.platform.startswith("linux"):
            at_fdcwd, rename_exchange = -100, 2
            result = libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), ctypes.c_uint(rename_exchange))
        elif sys.platform == "darwin":
            rename_swap = 2
            result = libc.renamex_np(os.fsencode(a), os.fsencode(b), ctypes.c_uint(rename_swap))
        else:
            return False
    except (AttributeError, OSError):
        return False  # a C library without the call
    if result == 0:
        return True
    number = ctypes.get_errno()
    if number in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(number, os.strerror(number), str(b))
