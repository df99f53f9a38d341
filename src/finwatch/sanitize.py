"""Text from the data, made safe for where it is shown: one function per destination.

Account and transaction ids, names, file names and file content are whatever an export held. Written as they are,
a control character or a bidirectional override changes what an analyst sees: ``ESC[31m`` recolours a terminal,
``ESC]0;…BEL`` retitles it, U+202E (right-to-left override) shows ``txt.exe`` as ``exe.txt``, a NUL makes an XML
document unwritable and a cell starting with ``=`` is a spreadsheet formula. So every string a person reads passes
through the sanitiser of its destination:

============================  ====================================================================================
:func:`terminal`              the command line's output (print it without console markup or emoji codes)
:func:`html_text`             HTML text and attribute values (escaped)
:func:`html_data`             values a page's own script escapes as it inserts them (the report's lead table)
:func:`csv_cell`              one cell of a CSV file; :func:`csv_list` a list in one cell
:func:`xml_text`              XML text and attribute values (goAML drafts, FinCEN SAR batches, their narratives)
============================  ====================================================================================

Each replaces the characters in :data:`UNSAFE` by a visible escape in Python's notation: ``\\x1b`` for ESC,
``\\x00`` for NUL, ``\\u202e`` for the right-to-left override (:func:`visible`). The C0 and C1 control characters,
DEL, the bidirectional controls (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), the line and paragraph
separators U+2028 and U+2029, lone surrogates and the non-characters U+FFFE and U+FFFF are unsafe everywhere, with
one exception: XML text keeps tab, line feed and carriage return (a narrative has lines). A backslash is kept as it
is, so the escapes are for reading, not for decoding: the exact values stay in ``leads.parquet``, ``leads.json``
and the store.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable

__all__ = [
    "FORMULA_STARTS",
    "UNSAFE",
    "csv_cell",
    "csv_list",
    "html_data",
    "html_text",
    "terminal",
    "visible",
    "xml_text",
]

#: characters never written as they are: controls, bidirectional controls, line separators, surrogates, U+FFFE/F
UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]"
)
_UNSAFE_IN_XML = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
    "\ufffe\uffff]"
)
#: a spreadsheet reads a cell starting with one of these as a formula
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: the mark put before such a cell (and before a cell that starts with it already, so that it can be removed)
QUOTE = "'"


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(value: object) -> str:
    """``value`` as text with every :data:`UNSAFE` character replaced by its visible escape (``\\x1b``)."""
    return UNSAFE.sub(_escape, str(value))


def terminal(value: object) -> str:
    """Text for the terminal: one line, no control or bidirectional character (escape sequences shown, not run).

    Rich console markup (``[/x]``) and emoji codes (``:x:``) are not touched: print the result with markup and
    emoji off (``finwatch.cli``'s consoles have both off), or as a ``rich.text.Text``.
    """
    return visible(value)


def html_text(value: object) -> str:
    """Text for HTML content or a quoted attribute: visible escapes, then ``& < > " '`` as entities."""
    return html.escape(visible(value), quote=True)


def html_data(value: object) -> str:
    """Text for a page whose own script HTML-escapes it on insertion (JSON data): visible escapes only."""
    return visible(value)


def csv_cell(value: str | None) -> str | None:
    """One text cell of a CSV file: visible escapes, and an apostrophe before a cell a spreadsheet would read as a
    formula (starting with ``= + - @``) or that starts with an apostrophe already. ``None`` stays empty."""
    if value is None:
        return None
    text = visible(value)
    return QUOTE + text if text.startswith((*FORMULA_STARTS, QUOTE)) else text


def csv_list(values: Iterable[str | None] | None) -> str | None:
    """A list in one CSV cell: a JSON array of its elements, each made safe as a cell of its own (:func:`csv_cell`).

    ``["T1","=T2"]`` is written ``["T1","'=T2"]``; an element holding ``;``, ``,`` or ``"`` stays one element.
    """
    if values is None:
        return None
    return json.dumps([csv_cell(v) for v in values], ensure_ascii=False, separators=(",", ":"))


def xml_text(value: object) -> str:
    """Text for an XML element or attribute: what XML 1.0 cannot hold (NUL, most C0 controls, U+FFFE/F, lone
    surrogates) and the other :data:`UNSAFE` characters as visible escapes; tab and line ends are kept."""
    return _UNSAFE_IN_XML.sub(_escape, str(value))
