"""Dated exchange rates: moved to :mod:`finwatch.fx` (the store keeps each batch's table); re-exported here."""

from __future__ import annotations

from finwatch.fx import DEFAULT_FX, FxTable

__all__ = ["DEFAULT_FX", "FxTable"]
