"""Atomic, reproducible writes: everything is written beside its destination and renamed into place."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from finwatch.exceptions import OutputExistsError

__all__ = ["atomic_directory", "atomic_write_bytes", "atomic_write_text", "fsync_path", "fsync_tree", "sha256_file"]

_CHUNK = 1 << 20


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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one rename: readers see the old file or the new one, never a part."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    fsync_path(tmp)
    os.replace(tmp, path)
    fsync_path(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_directory(target: Path, *, marker: str) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces ``target`` in one rename.

    ``target`` may be absent, an empty folder, or a folder an earlier run produced (recognised by the file
    ``marker`` inside it); anything else is refused so that no user data is overwritten. A crash leaves only a
    hidden ``.<name>.partial-*`` folder beside the target, which readers never look at.
    """
    target = target.resolve()
    if target.exists():
        if not target.is_dir():
            raise OutputExistsError(f"{target}: exists and is not a folder")
        if any(target.iterdir()) and not (target / marker).is_file():
            raise OutputExistsError(f"{target}: folder is not empty and was not written by finwatch ({marker} missing)")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield staging
        staging.chmod(0o755)  # mkdtemp makes it private; the published folder is an ordinary one
        fsync_tree(staging)
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, retired / target.name)
            os.replace(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
