"""The simulator's transaction ledger: columns of numpy arrays appended in batches, frozen into a Polars frame."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from finwatch.schema import Channel

CHANNELS: tuple[str, ...] = tuple(c.value for c in Channel)
CHANNEL = {c: i for i, c in enumerate(CHANNELS)}

_COLUMNS: dict[str, Any] = {
    "ts": np.int64,  # unix seconds, UTC
    "src": np.int32,  # account index, -1: none (cash in)
    "dst": np.int32,  # account index, -1: none (cash out)
    "units": np.int64,  # amount in minor units of the currency (see Ledger.scale)
    "cur": np.int8,
    "chan": np.int8,
    "mcc": np.int16,  # index into Population.mcc_codes, -1
    "city": np.int16,  # index into Population.cities, -1
    "branch": np.int32,  # index into Population.branches, -1
    "desc": np.int16,  # index into Ledger.descriptions, -1
    "inst": np.int32,  # pattern instance id, -1 for normal behaviour
    "batch": np.int32,  # a bank's batch booking (payroll runs), -1
    "party": np.int32,  # name index of a third party (cash depositor), -1
    "lookalike": np.int8,  # index into LOOKALIKES + 1, 0 for none
}


@dataclass
class Ledger:
    """Append-only. ``add`` broadcasts scalars; ``freeze`` returns one frame in generation order."""

    descriptions: list[str] = field(default_factory=list)
    _parts: dict[str, list[npt.NDArray[Any]]] = field(default_factory=lambda: {k: [] for k in _COLUMNS})
    _desc_index: dict[str, int] = field(default_factory=dict)
    _batches: int = 0
    rows: int = 0

    def description(self, text: str) -> int:
        if text not in self._desc_index:
            self._desc_index[text] = len(self.descriptions)
            self.descriptions.append(text)
        return self._desc_index[text]

    def new_batch(self) -> int:
        self._batches += 1
        return self._batches - 1

    def add(
        self,
        *,
        ts: Any,
        src: Any,
        dst: Any,
        units: Any,
        cur: Any,
        chan: str | Any,
        mcc: Any = -1,
        city: Any = -1,
        branch: Any = -1,
        desc: str | Any = -1,
        inst: Any = -1,
        batch: Any = -1,
        party: Any = -1,
        lookalike: Any = 0,
    ) -> None:
        values = {
            "ts": ts,
            "src": src,
            "dst": dst,
            "units": units,
            "cur": cur,
            "chan": CHANNEL[chan] if isinstance(chan, str) else chan,
            "mcc": mcc,
            "city": city,
            "branch": branch,
            "desc": self.description(desc) if isinstance(desc, str) else desc,
            "inst": inst,
            "batch": batch,
            "party": party,
            "lookalike": lookalike,
        }
        n = max(np.size(v) for v in values.values())
        if n == 0:
            return
        for key, dtype in _COLUMNS.items():
            arr = np.asarray(values[key])
            if arr.ndim == 0:
                arr = np.full(n, arr, dtype=dtype)
            elif arr.shape != (n,):
                raise ValueError(f"ledger column {key}: length {arr.shape} != {n}")
            self._parts[key].append(arr.astype(dtype, copy=False))
        units_arr = np.asarray(values["units"])
        if (units_arr <= 0).any():
            raise ValueError("ledger amounts must be positive")
        self.rows += n

    def freeze(self) -> pl.DataFrame:
        return pl.DataFrame({k: (np.concatenate(v) if v else np.empty(0, _COLUMNS[k])) for k, v in self._parts.items()})
