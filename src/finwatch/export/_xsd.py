"""A goAML schema as finwatch uses it: loaded safely, its code lists read, and drafts written in its element order.

:class:`GoamlSchema` loads an FIU's XSD with ``xmlschema`` (XSD 1.1, entities refused, local files only) and walks its
content models. :meth:`GoamlSchema.write` turns nested data (element name → text, dict or list) into a document in
the schema's order, and lists in the same pass every element and attribute the schema requires that the data does
not give (``minOccurs`` > 0 children, required choices, required attributes of each element written) and every value
its simple type refuses. The validator is run afterwards as the authority on validity; what it reports that the walk
did not (it stops at the first missing child of each parent) is added.

Values can be marked as placeholders (:class:`Placeholder`: written because the mapping said so where the data had
nothing); the writer returns where each one went so a draft says which of its fields an analyst must check. Every
value is written through :func:`finwatch.sanitize.xml_text`: a character XML cannot hold (a NUL, an escape
character) or a control that changes how text reads (a right-to-left override) is written as a visible escape
(``\\x1b``, ``\\u202e``), and the writer returns where each such value went (``altered``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from finwatch._files import read_option_file
from finwatch.exceptions import FinwatchError
from finwatch.sanitize import xml_text

__all__ = ["GoamlSchema", "Placeholder", "Problem", "Written"]

#: required descendants listed for a missing element (the rest follows once it is added)
_LIST_DEPTH = 4
_LIST_MAX = 40
_ENUM_IN_REASON = re.compile(r"(must be one of )\[[^\]]*\]")


class Placeholder(str):
    """A value written where the data had none: from the mapping's defaults, or a stand-in the analyst must check."""

    source: str

    def __new__(cls, value: str, source: str) -> Placeholder:
        made = super().__new__(cls, value)
        made.source = source
        return made


@dataclass(frozen=True)
class Problem:
    path: str  # where in the draft: /report/transaction[2]/t_from_my_client/from_account/signatory
    kind: str  # missing | invalid | not in schema | schema
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "kind": self.kind, "reason": self.reason}


@dataclass
class Written:
    """A draft and what it lacks: the document, its problems, where placeholders went, and where a value from the
    data was written with visible escapes for its control or bidirectional characters (``altered``)."""

    document: etree._Element
    problems: list[Problem] = field(default_factory=list)
    placeholders: list[dict[str, str]] = field(default_factory=list)
    altered: list[dict[str, str]] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems


@dataclass
class _Pending:
    """A problem found while the tree is still growing: its path is computed once every sibling exists."""

    node: etree._Element
    suffix: str
    kind: str
    reason: str


class GoamlSchema:
    """One FIU's goAML schema: its declarations, code lists and validator."""

    def __init__(self, xsd: Path, option: str = "--xsd") -> None:
        import xmlschema

        self.path = Path(xsd)
        # the top file is checked and read here (a FIFO or a device would hang xmlschema); its includes and imports
        # are resolved by xmlschema from the same folder, local files only
        self.sha256 = hashlib.sha256(read_option_file(self.path, option)).hexdigest()
        try:
            self._schema = xmlschema.XMLSchema11(str(xsd), defuse="always", allow="local")
        except (xmlschema.XMLSchemaException, OSError, SyntaxError, ValueError) as exc:
            message = (str(exc).strip().splitlines() or [""])[0][:200]
            raise FinwatchError(f"{xsd}: not a usable XSD ({type(exc).__name__}: {message})") from None
        root = self._schema.root.attrib
        self.version = next((v for k, v in root.items() if k.endswith("}schemaVersion")), None)

    # --- reading declarations ----------------------------------------------------------------------------------
    def declaration(self, path: str) -> Any:
        """The element declaration at ``path``: a global element or complex type, then child element names.

        ``report/transaction/transmode_code``, ``t_phone/tph_contact_type``. ``None`` when the schema has none there.
        """
        first, *rest = path.split("/")
        node: Any = self._schema.elements.get(first)
        current: Any = node.type if node is not None else self._schema.types.get(first)
        for name in rest:
            if current is None or not current.is_complex() or current.content is None:
                return None
            node = next((e for e in _elements(current.content) if e.name == name), None)
            if node is None:
                return None
            current = node.type
        return node

    def allowed(self, path: str) -> list[str] | None:
        """The code list of the element at ``path`` (its simple type's enumeration), ``None`` if it has none."""
        decl = self.declaration(path)
        return _enumeration(decl.type) if decl is not None else None

    def type_name(self, path: str) -> str:
        decl = self.declaration(path)
        if decl is None:
            return "?"
        xsd_type = decl.type
        while xsd_type is not None and not xsd_type.name and getattr(xsd_type, "base_type", None) is not None:
            xsd_type = xsd_type.base_type
        return str(xsd_type.local_name or decl.name) if xsd_type is not None else str(decl.name)

    def max_length(self, path: str) -> int | None:
        decl = self.declaration(path)
        value = getattr(decl.type, "max_length", None) if decl is not None else None
        return int(value) if value is not None else None

    def check_value(self, path: str, value: str) -> str | None:
        """Why the element at ``path`` refuses ``value`` (``None`` when it accepts it or has no such element)."""
        decl = self.declaration(path)
        if decl is None:
            return None
        if not decl.type.is_simple() and not decl.type.has_simple_content():
            return "expects elements, not a value"
        return _refusal(decl, value)

    def code_lists(self) -> dict[str, list[str]]:
        """Every named simple type with an enumeration: type name → its codes."""
        return {
            str(xsd_type.local_name): codes
            for xsd_type in self._schema.types.values()
            if xsd_type.is_simple() and (codes := _enumeration(xsd_type))
        }

    # --- writing -----------------------------------------------------------------------------------------------
    def write(self, root: str, data: Mapping[str, Any]) -> Written:
        """``data`` as the global element ``root``, in the schema's order, with everything it lacks listed."""
        decl = self._schema.elements.get(root)
        if decl is None:
            raise FinwatchError(f"{self.path}: the schema declares no element {root!r}")
        node = etree.Element(root)
        pending: list[_Pending] = []
        placed: list[tuple[etree._Element, str]] = []
        walk = _Walk(pending, placed)
        walk.complex(node, decl, data)
        tree = node.getroottree()
        problems = [Problem(_join(tree.getpath(p.node), p.suffix), p.kind, p.reason) for p in pending]
        seen: dict[tuple[str, str, str], None] = {}
        for where, source in placed:
            collapsed = re.sub(r"\[\d+\]", "[*]", tree.getpath(where))
            seen.setdefault((collapsed, where.text or "", source))
        placeholders = [{"path": p, "value": v, "source": s} for p, v, s in seen]
        altered = [
            {"path": _join(tree.getpath(where), suffix), "value": value} for where, suffix, value in walk.altered
        ]
        return Written(node, problems, placeholders, altered)

    def validate(self, written: Written) -> Written:
        """Add what the validator finds that the walk did not (its own first error per parent is already listed)."""
        listed = [p.path for p in written.problems]
        for error in self._schema.iter_errors(written.document):
            path = str(error.path or "/")
            if any(_related(path, mine) for mine in listed):
                continue
            reason = str(getattr(error, "reason", None) or error.message).strip()
            written.problems.append(Problem(path, "schema", _short(reason)))
            listed.append(path)
        return written


class _Walk:
    def __init__(self, pending: list[_Pending], placed: list[tuple[etree._Element, str]]) -> None:
        self.pending = pending
        self.placed = placed
        self.altered: list[tuple[etree._Element, str, str]] = []  # (element, "@attribute" or "", value written)

    def text(self, node: etree._Element, suffix: str, value: Any) -> str:
        """``value`` as XML text (:func:`finwatch.sanitize.xml_text`), remembered where it had to be altered."""
        raw = str(value)
        text = xml_text(raw)
        if text != raw:
            self.altered.append((node, suffix, text))
        return text

    def complex(self, node: etree._Element, decl: Any, data: Mapping[str, Any]) -> None:
        xsd_type = decl.type
        for name, attribute in xsd_type.attributes.items():
            if name is None:
                continue
            value = data.get(f"@{attribute.local_name}")
            if _absent(value):
                if attribute.use == "required":
                    self.pending.append(_Pending(node, f"@{attribute.local_name}", "missing",
                                                 f"missing: attribute {attribute.local_name} is required"))  # fmt: skip
                continue
            node.set(str(attribute.local_name), self.text(node, f"@{attribute.local_name}", value))
        used: set[str] = set()
        if xsd_type.content is not None and not xsd_type.has_simple_content():
            self.group(node, xsd_type.content, data, used, repeat=False)
        for key in sorted(set(data) - used):
            if key.startswith("@") or _absent(data[key]):
                continue
            self.pending.append(_Pending(node, key, "not in schema",
                                         f"{key} is not an element of {decl.local_name} in this schema"))  # fmt: skip

    def group(self, node: etree._Element, group: Any, data: Mapping[str, Any], used: set[str], *, repeat: bool) -> None:
        repeat = repeat or group.max_occurs != 1
        if group.model == "choice":
            given = [p for p in group if _has(p, data)]
            if not given:
                if group.min_occurs and not group.is_emptiable():
                    names = [n for p in group for n in _first_names(p)]
                    first = next((p for p in group if _is_element(p)), None)
                    inside = _required_inside(first, _LIST_DEPTH) if first is not None else []
                    more = f" ({names[0]} with {', '.join(inside[:_LIST_MAX])})" if inside else ""
                    self.pending.append(_Pending(node, "(" + "|".join(names) + ")", "missing",
                                                 f"missing: one of {', '.join(names)}{more}"))  # fmt: skip
                return
            self.particle(node, given[0], data, used, repeat=repeat)
            for other in given[1:]:
                for name in _names(other):
                    if not _absent(data.get(name)):
                        used.add(name)
                        chosen = ", ".join(_names(given[0]))
                        self.pending.append(_Pending(node, name, "invalid", f"{name} cannot be given with {chosen}"))
            return
        if not group.min_occurs and not _has(group, data):
            return
        for particle in group:
            self.particle(node, particle, data, used, repeat=repeat)

    def particle(self, node: etree._Element, particle: Any, data: Mapping[str, Any], used: set[str], *,
                 repeat: bool) -> None:  # fmt: skip
        from xmlschema.validators import XsdElement, XsdGroup

        if isinstance(particle, XsdGroup):
            self.group(node, particle, data, used, repeat=repeat)
        elif isinstance(particle, XsdElement):
            self.element(node, particle, data, used, repeat=repeat)

    def element(self, node: etree._Element, decl: Any, data: Mapping[str, Any], used: set[str], *,
                repeat: bool) -> None:  # fmt: skip
        name = str(decl.local_name)
        used.add(name)
        value = data.get(name)
        if _absent(value):
            if decl.min_occurs:
                self.missing(node, decl)
            return
        values = [v for v in value if not _absent(v)] if isinstance(value, list) else [value]
        limit = decl.max_occurs
        if not repeat and limit is not None and len(values) > limit:
            self.pending.append(_Pending(node, name, "invalid", f"{len(values)} given, at most {limit} allowed"))
            values = values[:limit]
        for item in values:
            child = etree.SubElement(node, name)
            if isinstance(item, Mapping):
                if decl.type.is_simple():
                    self.pending.append(_Pending(child, "", "invalid", f"{name} takes a value, not elements"))
                    continue
                self.complex(child, decl, item)
                continue
            text = self.text(child, "", item)
            child.text = text
            if isinstance(item, Placeholder):
                self.placed.append((child, item.source))
            if not decl.type.is_simple() and not decl.type.has_simple_content():
                self.pending.append(_Pending(child, "", "invalid", f"{name} needs elements, not a value"))
                continue
            refused = _refusal(decl, text)
            if refused:
                self.pending.append(_Pending(child, "", "invalid", f"{text!r}: {refused}"))

    def missing(self, node: etree._Element, decl: Any) -> None:
        inside = _required_inside(decl, _LIST_DEPTH)
        more = f" (with {', '.join(inside[:_LIST_MAX])}{', …' if len(inside) > _LIST_MAX else ''})" if inside else ""
        self.pending.append(_Pending(node, str(decl.local_name), "missing",
                                     f"missing: {decl.local_name} is required{more}"))  # fmt: skip


# --- helpers over declarations --------------------------------------------------------------------------------------
def _elements(group: Any) -> Iterable[Any]:
    """Element declarations of a content model, through nested groups (not into child elements)."""
    from xmlschema.validators import XsdElement, XsdGroup

    for particle in group:
        if isinstance(particle, XsdGroup):
            yield from _elements(particle)
        elif isinstance(particle, XsdElement):
            yield particle


def _is_element(particle: Any) -> bool:
    from xmlschema.validators import XsdElement

    return isinstance(particle, XsdElement)


def _names(particle: Any) -> list[str]:
    from xmlschema.validators import XsdGroup

    if isinstance(particle, XsdGroup):
        return [str(e.local_name) for e in _elements(particle)]
    return [str(particle.local_name)] if getattr(particle, "local_name", None) else []


def _first_names(particle: Any) -> list[str]:
    """What a choice's branch starts with: the element it is, or the first required element of its group."""
    from xmlschema.validators import XsdGroup

    if not isinstance(particle, XsdGroup):
        return _names(particle)
    if particle.model == "choice":
        return [n for p in particle for n in _first_names(p)]
    for inner in particle:
        names = _first_names(inner)
        if names and inner.min_occurs:
            return names
    return _names(particle)[:1]


def _has(particle: Any, data: Mapping[str, Any]) -> bool:
    return any(not _absent(data.get(name)) for name in _names(particle))


def _absent(value: Any) -> bool:
    """No content: None, an empty string, or a list or mapping holding nothing else."""
    if isinstance(value, Mapping):
        return all(_absent(v) for v in value.values())
    if isinstance(value, list):
        return all(_absent(v) for v in value)
    return value is None or value == ""


def _required_inside(decl: Any, depth: int) -> list[str]:
    """Paths of the elements a missing complex element must hold (first branch of each choice named as a|b)."""
    xsd_type = decl.type
    if depth <= 0 or xsd_type.is_simple() or xsd_type.content is None or xsd_type.has_simple_content():
        return []
    out = [f"@{a.local_name}" for n, a in xsd_type.attributes.items() if n is not None and a.use == "required"]
    out += _required_group(xsd_type.content, depth)
    return out


def _required_group(group: Any, depth: int) -> list[str]:
    from xmlschema.validators import XsdElement, XsdGroup

    if not group.min_occurs or group.is_emptiable():
        return []
    if group.model == "choice":
        return ["|".join(n for p in group for n in _first_names(p))]
    out: list[str] = []
    for particle in group:
        if isinstance(particle, XsdGroup):
            out += _required_group(particle, depth)
        elif isinstance(particle, XsdElement) and particle.min_occurs:
            inner = _required_inside(particle, depth - 1)
            out += [f"{particle.local_name}/{i}" for i in inner] if inner else [str(particle.local_name)]
    return out


def _enumeration(xsd_type: Any) -> list[str] | None:
    while xsd_type is not None:
        codes = getattr(xsd_type, "enumeration", None)
        if codes:
            return [str(c) for c in codes]
        xsd_type = getattr(xsd_type, "base_type", None)
    return None


def _refusal(decl: Any, text: str) -> str | None:
    if decl.fixed is not None and text != str(decl.fixed):
        return f"must be {decl.fixed}"
    simple = decl.type if decl.type.is_simple() else decl.type.content
    for error in simple.iter_errors(text):
        return _short(str(getattr(error, "reason", None) or error.message))
    return None


def _short(reason: str) -> str:
    """A validator's reason without the whole code list (a country list is 282 codes)."""

    def count(match: re.Match[str]) -> str:
        return f"{match.group(1)}the schema's list ({match.group(0).count(',') + 1} values)"

    return _ENUM_IN_REASON.sub(count, reason.strip().splitlines()[0] if reason.strip() else reason)[:300]


def _join(path: str, suffix: str) -> str:
    return f"{path}/{suffix}" if suffix else path


def _related(path: str, mine: str) -> bool:
    """The validator's error at ``path`` is one the walk already listed (at it, under it, or about its parent)."""
    base = mine.split("/(")[0]
    return path == base or base.startswith(path + "/") or path.startswith(base + "/")
