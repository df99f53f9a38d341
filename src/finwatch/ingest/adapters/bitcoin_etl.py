"""bitcoin-etl transactions: JSON lines (``export_blocks_and_transactions``) or a JSON array of the same records.

Each record is one Bitcoin transaction with ``inputs`` (``spent_transaction_hash``, ``spent_output_index``,
``addresses``, ``value``) and ``outputs`` (``index``, ``addresses``, ``value``); values are whole satoshi. A
transaction is not a payment from one party to another, so it becomes edges, designed so that no value is
invented (the split of a transaction's inputs among its outputs is not recorded on chain):

- one input address (all inputs spend coins of the same address): that address pays each output directly, one
  edge per output, ``<address> → <output address>``, with the output's exact value. Change returned to the
  sender is an edge from the address to itself, marked as change.
- several input addresses: the transaction is a node ``btc-tx:<txid>``. Each input is an edge
  ``<input address> → btc-tx:<txid>`` with the input's value, each output an edge ``btc-tx:<txid> → <output
  address>`` with the output's value; the edges out of the node sum to the transaction's outputs.
- coinbase (no inputs): each output is an edge with a null source (new coins and the block's fees).

``amount = satoshi / 10^8`` exactly (currency ``BTC``, chain ``bitcoin``, channel ``crypto``). The fee (inputs minus
outputs) is computed from the input values and stated in the description of every edge of the transaction; the
record's own ``fee`` field is not used (an export without input values reports a negative one). ``txn_id`` is
``<txid>:in:<i>`` for an input edge and ``<txid>:out:<n>`` for an output edge; ``source_row`` is the record's line
(JSON lines) or its 1-based index (JSON array), shared by all the edges of one transaction.

Addresses: an output or input with one address is named by it; a bare multisig output (several addresses) is
``multisig:<a>+<b>…``; one without an address (non-standard script) by its outpoint ``btc-out:<txid>:<n>``, the
same name the input that later spends it gets, so such coins still link up. Outputs of zero value (``OP_RETURN``
data carriers) move no money and make no edge (the notes count them).

Exports made without input enrichment have inputs without addresses and values. An input is then named by the
outpoint it spends (``btc-out:<spent txid>:<index>``; this does not link to the address that received the coin),
which is enough for the direct case; with several inputs the input edges have no value and are kept with a reason,
and the fee is "unknown". An unreadable value (negative, fractional, beyond ``decimal(38, 18)``) gives its edge a
reason, as do outputs exceeding the inputs to every edge of the transaction. A transaction that cannot be read at
all (invalid JSON, no hash, no outputs, no timestamp) is one row with a reason. Coinbase means ``is_coinbase`` or
no inputs.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import polars as pl

from finwatch.exceptions import InputError
from finwatch.ingest._base import TIMESTAMP, Adapter, Parsed, ParseOptions, Sample, Source, json_raw
from finwatch.ingest._text import decode_utf8

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

SATOSHI_DIGITS = 8
MAX_SATOSHI = 10 ** (20 + SATOSHI_DIGITS)  # decimal(38, 18) holds at most 20 integer digits
INPUTS = re.compile(r'"inputs"\s*:\s*\[')
MARKERS = ("is_coinbase", "outputs", "input_count", "block_timestamp", "spent_transaction_hash")
COLUMNS: dict[str, PolarsDataType] = {
    "txn_id": pl.String, "ts": TIMESTAMP, "src_account": pl.String, "dst_account": pl.String, "amount": pl.String,
    "description": pl.String, "source_row": pl.Int64, "_reason": pl.String, "_raw": pl.String,
}  # fmt: skip


class _RecordError(Exception):
    """A value that cannot be read: the message is the row's reason."""


def _satoshi(value: Any, what: str) -> int | None:
    """Whole satoshi from a JSON int, digit string or integral decimal; None when the export has no value."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise _RecordError(f"unparsable {what} value {value!r}")
    if isinstance(value, int):
        number = value
    else:
        try:
            exact = Decimal(str(value).strip())
        except InvalidOperation:
            raise _RecordError(f"unparsable {what} value {value!r}") from None
        if not exact.is_finite() or exact != exact.to_integral_value():
            raise _RecordError(f"{what} value {value!r} is not a whole number of satoshi")
        number = int(exact)
    if number < 0:
        raise _RecordError(f"negative {what} value {number}")
    if number >= MAX_SATOSHI:
        raise _RecordError(
            f"amount exceeds the representable range: {what} value {number} satoshi is 10^20 BTC or more"
        )
    return number


def _btc(satoshi: int) -> str:
    whole, frac = divmod(satoshi, 10**SATOSHI_DIGITS)
    return f"{whole}.{frac:0{SATOSHI_DIGITS}d}"


def _timestamp(value: Any) -> dt.datetime:
    if isinstance(value, bool) or value is None:
        raise _RecordError("missing block_timestamp")
    try:
        if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
            return dt.datetime.fromtimestamp(int(value), tz=dt.UTC)
        if isinstance(value, str):
            text = value.strip().removesuffix(" UTC").replace("Z", "+00:00")
            parsed = dt.datetime.fromisoformat(text)
            return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise _RecordError(f"unparsable block_timestamp {value!r}")


def _name(addresses: Any, outpoint: str | None) -> str | None:
    """The account an input or output belongs to (see the module docstring)."""
    if isinstance(addresses, list):
        names = [a for a in addresses if isinstance(a, str) and a]
        if len(names) == 1:
            return names[0]
        if names:
            return "multisig:" + "+".join(names)
    return f"btc-out:{outpoint}" if outpoint else None


@dataclass
class _Stats:
    transactions: int = 0
    direct: int = 0
    via_node: int = 0
    coinbase: int = 0
    unreadable: int = 0
    zero_outputs: int = 0
    inputs_without_value: int = 0
    without_edges: int = 0  # every output of zero value and no input edge: only a fee was paid
    first_problem: tuple[int, str] | None = None  # (source_row, reason) of the first unreadable record
    rows: dict[str, list[Any]] = field(default_factory=lambda: {name: [] for name in COLUMNS})

    def unreadable_record(self, number: int, reason: str, raw: str, txid: str | None = None) -> None:
        self.unreadable += 1
        self.first_problem = self.first_problem or (number, reason)
        self.add(txn_id=txid, source_row=number, _reason=reason, _raw=raw)

    def add(self, **row: Any) -> None:
        for name in COLUMNS:
            self.rows[name].append(row.get(name))


def _transaction(record: Any, number: int, raw: str, stats: _Stats) -> None:
    """Append the edges of one transaction record (or one row with the reason it cannot be read)."""
    txid = record.get("hash") or record.get("txid") if isinstance(record, dict) else None
    try:
        if not isinstance(record, dict):
            raise _RecordError("not a JSON object")
        if not isinstance(txid, str) or not txid.strip():
            raise _RecordError("not a bitcoin-etl transaction: no hash")
        txid = txid.strip()
        inputs, outputs = record.get("inputs") or [], record.get("outputs")
        if not isinstance(outputs, list) or not isinstance(inputs, list):
            raise _RecordError("not a bitcoin-etl transaction: inputs and outputs must be lists")
        if not all(isinstance(x, dict) for x in [*inputs, *outputs]):
            raise _RecordError("inputs and outputs must be JSON objects")
        ts = _timestamp(record.get("block_timestamp"))
    except _RecordError as exc:
        stats.unreadable_record(number, str(exc), raw, txid if isinstance(txid, str) else None)
        return
    stats.transactions += 1
    coinbase = bool(record.get("is_coinbase")) or not inputs
    block = record.get("block_number")

    # outputs: (edge id, account, satoshi or None, reason)
    outs: list[tuple[str, str | None, int | None, str | None]] = []
    for pos, out in enumerate(outputs):
        n = out.get("index", pos)
        try:
            value = _satoshi(out.get("value"), "output")
            if value is None:
                raise _RecordError("output without a value")
        except _RecordError as exc:
            outs.append((f"{txid}:out:{n}", _name(out.get("addresses"), f"{txid}:{n}"), None, str(exc)))
            continue
        if value == 0:
            stats.zero_outputs += 1
            continue
        outs.append((f"{txid}:out:{n}", _name(out.get("addresses"), f"{txid}:{n}"), value, None))
    # inputs: (edge id, account, satoshi or None, reason)
    ins: list[tuple[str, str | None, int | None, str | None]] = []
    for pos, inp in enumerate(inputs):
        i = inp.get("index", pos)
        spent = inp.get("spent_transaction_hash")
        outpoint = f"{spent}:{inp.get('spent_output_index')}" if spent else None
        account = _name(inp.get("addresses"), outpoint)
        try:
            ins.append((f"{txid}:in:{i}", account, _satoshi(inp.get("value"), "input"), None))
        except _RecordError as exc:
            ins.append((f"{txid}:in:{i}", account, None, str(exc)))

    out_total = sum(v for _, _, v, r in outs if v is not None)
    known = [v for _, _, v, r in ins if v is not None]
    description = [f"block {block}" if block is not None else None, f"{len(ins)} in, {len(outputs)} out"]
    overspent = None
    if coinbase:
        description.append("coinbase")
    elif len(known) == len(ins) and all(r is None for *_, r in outs):
        fee = sum(known) - out_total
        if fee < 0:
            overspent = f"outputs exceed inputs by {_btc(-fee)} BTC"
        else:
            description.append(f"fee {_btc(fee)} BTC")
    else:
        description.append("fee unknown (the export does not give every input and output a value)")
    senders = {account for _, account, _, _ in ins}
    edges: list[tuple[str, str | None, str | None, int | None, str | None]]
    if coinbase:
        stats.coinbase += 1
        edges = [(eid, None, account, value, reason) for eid, account, value, reason in outs]
    elif len(senders) == 1 and None not in senders:
        stats.direct += 1
        sender = next(iter(senders))
        # the inputs make no edge here: a bad input value is the reason of every edge of the transaction
        bad_input = next((f"{eid}: {reason}" for eid, _, _, reason in ins if reason), None)
        edges = [(eid, sender, account, value, reason or bad_input) for eid, account, value, reason in outs]
    else:
        stats.via_node += 1
        node = f"btc-tx:{txid}"
        edges = []
        for eid, account, value, reason in ins:
            if value is None and reason is None:
                stats.inputs_without_value += 1
                reason = (
                    "input value unknown: the export has no value for the coin this input spends "
                    "(export with input enrichment), and the transaction has several input addresses"
                )
            edges.append((eid, account, node, value, reason))
        edges += [(eid, node, account, value, reason) for eid, account, value, reason in outs]
    stats.without_edges += not edges
    text = "; ".join(d for d in description if d)
    for eid, src, dst, value, reason in edges:
        note = text + ("; change back to the sender" if src is not None and src == dst else "")
        reason = reason or overspent
        stats.add(
            txn_id=eid, ts=ts, src_account=src, dst_account=dst, amount=_btc(value) if value is not None else None,
            description=note, source_row=number, _reason=reason, _raw=raw if reason else None,
        )  # fmt: skip


def _records(text: str) -> list[tuple[int, Any, str]]:
    """(source_row, parsed record or an exception, raw text) for every record of a JSON lines file or array."""
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise InputError("", f"invalid JSON array ({exc.msg})", row=exc.lineno) from None
        if not isinstance(records, list):
            raise InputError("", "not a JSON array of transactions")
        return [(i, r, json_raw(r) if isinstance(r, dict) else json.dumps(r, default=str))
                for i, r in enumerate(records, start=1)]  # fmt: skip
    out: list[tuple[int, Any, str]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        try:
            out.append((number, json.loads(line, parse_float=Decimal), line))
        except json.JSONDecodeError as exc:
            out.append((number, _RecordError(f"invalid JSON (truncated or malformed line: {exc.msg})"), line))
        except RecursionError:
            out.append((number, _RecordError("invalid JSON (nested too deeply)"), line))
    return out


class BitcoinEtlAdapter(Adapter):
    name = "bitcoin-etl"
    summary = "bitcoin-etl transactions (JSON lines or array): inputs and outputs as exact-satoshi edges"

    @classmethod
    def sniff(cls, sample: Sample) -> str | None:
        if sample.is_dir:
            return None
        line = sample.first_line
        if not line.startswith(("{", "[")):
            return None
        if INPUTS.search(line) and '"hash"' in line and any(f'"{m}"' in line for m in MARKERS):
            return "bitcoin-etl transactions " + ("JSON array" if line.startswith("[") else "JSON lines")
        return None

    def parse(self, source: Source, options: ParseOptions) -> Parsed:
        text = decode_utf8(source, source.read_bytes())
        try:
            records = _records(text)
        except InputError as exc:
            raise InputError(source.display, exc.reason, exc.row) from None
        stats = _Stats()
        for number, record, raw in records:
            if isinstance(record, _RecordError):
                stats.unreadable_record(number, str(record), raw)
            else:
                _transaction(record, number, raw, stats)
        if not stats.transactions:
            row, reason = stats.first_problem or (None, "no records")
            raise InputError(source.display, f"not bitcoin-etl transactions: {reason}", row=row)
        frame = pl.DataFrame(stats.rows, schema=COLUMNS).with_columns(
            amount=pl.col("amount").cast(pl.Decimal(38, 18)),
            currency=pl.lit("BTC"),
            channel=pl.lit("crypto"),
            chain=pl.lit("bitcoin"),
        )
        form = "JSON array" if text.lstrip().startswith("[") else "JSON lines"
        notes = [
            f"{stats.transactions} transactions became {frame.height - stats.unreadable} edges "
            f"({stats.direct} paid directly from one input address, {stats.via_node} through a transaction node, "
            f"{stats.coinbase} coinbase)"
        ]
        if stats.unreadable:
            notes.append(f"{stats.unreadable} records could not be read as transactions (one row each, with a reason)")
        if stats.zero_outputs:
            notes.append(f"{stats.zero_outputs} zero-value outputs (data carriers) move no money and are not edges")
        if stats.without_edges:
            notes.append(f"{stats.without_edges} transactions only paid a fee (no output of value) and made no edge")
        if stats.inputs_without_value:
            notes.append(
                f"{stats.inputs_without_value} inputs have no value in the export (not enriched with the coins they "
                "spend): their edges are kept with a reason"
            )
        return Parsed(frame, f"bitcoin-etl transactions {form} ({stats.transactions} transactions)", notes=notes)
