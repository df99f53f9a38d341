"""Fault injection for tests: a ``kill -9`` at a chosen step of a write. A test hook only, never for production use.

Every step between which a kill would leave a different state on disk calls :func:`checkpoint` with its name —
mostly the shared atomic writers of :mod:`finwatch._io` (``atomic_write:before-rename``,
``atomic_directory:swapped``, …), plus the store's commit (``store.commit:moved``, …). Without the environment
variables below a checkpoint does nothing. With them, a test runs a real command in a subprocess and kills it at
each step in turn, then checks what readers see and that a rerun completes (``tests/test_faults.py``):

``FINWATCH_FAULT``
    Which checkpoint kills the process with ``SIGKILL`` (nothing flushed, no handler, no cleanup):

    - ``N``: the N-th checkpoint this process reaches (``1`` is the first);
    - ``STEP``: the first checkpoint named ``STEP`` (``store.commit:moved``);
    - ``STEP:N``: the N-th checkpoint named ``STEP`` (``atomic_write:renamed:2``).

    Checkpoints are counted per process; child processes count their own.
``FINWATCH_FAULT_TRACE``
    A file to which each checkpoint reached appends one line: its name, then a tab and what it concerns (the last
    two parts of the path of the file or folder being written) where known. Run a command once with it to list its
    steps, then once per step with ``FINWATCH_FAULT`` set to that step's number.

Both are read on every call (a dictionary lookup when unset); they are a testing aid and are not part of the
configuration (:mod:`finwatch.config`).
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

__all__ = ["FAULT_ENV", "TRACE_ENV", "checkpoint"]

FAULT_ENV = "FINWATCH_FAULT"
TRACE_ENV = "FINWATCH_FAULT_TRACE"

_lock = threading.Lock()
_counts: dict[str, int] = {}  # checkpoints reached in this process: "" (all of them) and per step name
_pid = 0  # the process the counts belong to (a forked child starts again from zero)


def checkpoint(step: str, where: str | os.PathLike[str] | None = None) -> None:
    """A step of a write has completed: kill the process here if ``$FINWATCH_FAULT`` selects it (see the module).

    ``where`` (the file or folder concerned) only goes into the trace; it never selects a checkpoint.
    """
    fault = os.environ.get(FAULT_ENV)
    trace = os.environ.get(TRACE_ENV)
    if not fault and not trace:
        return
    global _pid
    with _lock:
        if _pid != os.getpid():
            _counts.clear()
            _pid = os.getpid()
        total = _counts[""] = _counts.get("", 0) + 1
        mine = _counts[step] = _counts.get(step, 0) + 1
        if trace:
            line = step if where is None else f"{step}\t{'/'.join(Path(where).parts[-2:])}"
            with open(trace, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        if fault and _selected(fault, step, total, mine):
            os.kill(os.getpid(), signal.SIGKILL)


def _selected(fault: str, step: str, total: int, mine: int) -> bool:
    """Whether ``fault`` (``N``, ``STEP`` or ``STEP:N``) names this checkpoint."""
    if fault.isdigit():
        return int(fault) == total
    name, sep, number = fault.rpartition(":")
    if sep and number.isdigit():
        return name == step and int(number) == mine
    return fault == step and mine == 1
