"""The strict DER check: one TLV walk of the input against a compiled schema plan.

:func:`check` validates a complete encoding against an asn1crypto class
before asn1crypto (lazily) parses it, so that nothing asn1crypto does later
on that value can fail.  Rules enforced (X.690 §10-11 DER, X.680):

* tags: minimal identifier octets; the expected class, number and
  constructed/primitive form at every position;
* lengths: definite, minimal (short form below 128, no leading zero octet);
  nothing beyond the enclosing value; no trailing bytes;
* BOOLEAN one octet 00 or FF; INTEGER/ENUMERATED minimal two's complement;
  BIT STRING unused-bit count 0-7, zero padding bits, no trailing zero bits
  with named bits; NULL empty; OBJECT IDENTIFIER minimal subidentifiers;
  character strings valid for their type; UTCTime/GeneralizedTime in the DER
  forms;
* SEQUENCE: components in order, mandatory ones present, a DEFAULT value not
  encoded; after the known components only extension additions (tags no
  known component has) when the type is extensible; SET OF sorted;
* CHOICE: a known alternative, or an unknown one when the type is
  extensible and the position allows it (see :class:`_SeqPlan`);
* SIZE and value-range constraints, unknown ENUMERATED values of
  non-extensible types.

Failures raise :class:`rspfed.errors.DecodeError` with ``type_name`` the
innermost ASN.1 type and ``offset`` the byte offset in the whole input.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from typing import Any

from asn1crypto import core, parser

from rspfed.asn1 import _base
from rspfed.errors import DecodeError

__all__ = [
    "MAX_DEPTH",
    "Plan",
    "check",
    "iter_tlvs",
    "outer_ids",
    "parse_sequence_children",
    "plan_for",
    "read_header",
]

MAX_DEPTH = 64
"""Deepest nesting of TLVs accepted."""

_CLASS_NAMES = ("UNIVERSAL", "APPLICATION", "CONTEXT", "PRIVATE")
_CLASS_NUM = {"universal": 0, "application": 1, "context": 2, "private": 3}


class _Fail(Exception):
    """Internal: a DER or schema violation (becomes a DecodeError)."""

    def __init__(self, message: str, type_name: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.type_name = type_name
        self.offset = offset
        self.path: list[str] = []


def _tag_text(cls: int, num: int) -> str:
    return f"[{_CLASS_NAMES[cls]} {num}]"


# ---------------------------------------------------------------------------
# TLV headers


def read_header(data: bytes, pos: int, end: int, name: str) -> tuple[int, int, int, int, int]:
    """Read a DER header at ``pos``: ``(class, constructed, tag, content_start, content_end)``."""
    if pos >= end:
        raise _Fail("truncated: a TLV was expected", name, pos)
    first = data[pos]
    cls = first >> 6
    constructed = (first >> 5) & 1
    tag = first & 0x1F
    p = pos + 1
    if tag == 0x1F:
        if p >= end:
            raise _Fail("truncated tag", name, pos)
        if data[p] == 0x80:
            raise _Fail("non-minimal tag encoding (leading 0x80 octet)", name, pos)
        tag = 0
        while True:
            if p >= end:
                raise _Fail("truncated tag", name, pos)
            octet = data[p]
            p += 1
            tag = (tag << 7) | (octet & 0x7F)
            if not octet & 0x80:
                break
            if tag > 0x1FFFFF:
                raise _Fail("tag number too large", name, pos)
        if tag < 31:
            raise _Fail("non-minimal tag encoding (long form for a tag below 31)", name, pos)
    if p >= end:
        raise _Fail("truncated: length octets missing", name, pos)
    first_len = data[p]
    p += 1
    if first_len < 0x80:
        length = first_len
    elif first_len == 0x80:
        raise _Fail("indefinite length is not DER", name, pos)
    else:
        count = first_len & 0x7F
        if count > 4:
            raise _Fail("length field too long", name, pos)
        if p + count > end:
            raise _Fail("truncated length octets", name, pos)
        if data[p] == 0:
            raise _Fail("non-minimal length (leading zero octet)", name, pos)
        length = int.from_bytes(data[p : p + count], "big")
        p += count
        if length < 0x80:
            raise _Fail("non-minimal length (long form for a length below 128)", name, pos)
    if p + length > end:
        raise _Fail(f"length {length} runs past the end of the enclosing value", name, pos)
    return cls, constructed, tag, p, p + length


def _size_ok(size: int, ranges: Any) -> bool:
    return any(size >= low and (high is None or size <= high) for low, high in ranges)


def _range_text(ranges: Any) -> str:
    parts = []
    for low, high in ranges:
        low_text = "MIN" if low is None else str(low)
        high_text = "MAX" if high is None else str(high)
        parts.append(low_text if low == high else f"{low_text}..{high_text}")
    return " | ".join(parts)


# ---------------------------------------------------------------------------
# Plans


class Plan:
    """How to check one (type, tagging) at one position."""

    __slots__ = ("cls", "constructed", "explicit", "name", "spec", "tag")

    def __init__(self, spec: Any, name: str) -> None:
        self.spec = spec
        self.name = name
        self.explicit: tuple[tuple[int, int], ...] = ()  # outermost first
        self.cls: int | None = None
        self.tag: int | None = None
        self.constructed = 0

    def ids(self) -> frozenset[tuple[int, int]] | None:
        """Outer (class, tag) pairs this plan accepts; None for any tag."""
        if self.explicit:
            return frozenset((self.explicit[0],))
        if self.cls is None or self.tag is None:
            return None
        return frozenset(((self.cls, self.tag),))

    def check(self, data: bytes, pos: int, end: int, depth: int) -> int:
        """Check the TLV at ``pos``; return the position after it."""
        if depth > MAX_DEPTH:
            raise _Fail("nesting too deep", self.name, pos)
        outer_end = -1
        for cls, tag in self.explicit:
            c, k, t, cs, ce = read_header(data, pos, end, self.name)
            if (c, t) != (cls, tag):
                raise _Fail(
                    f"expected tag {_tag_text(cls, tag)}, found {_tag_text(c, t)}", self.name, pos
                )
            if not k:
                raise _Fail("explicit tag must be constructed", self.name, pos)
            if outer_end < 0:
                outer_end = ce
            elif ce != end:
                raise _Fail("explicit tag must contain exactly one value", self.name, cs)
            pos, end = cs, ce
            if pos >= end:
                raise _Fail("explicit tag is empty", self.name, pos)
        after = self.check_tlv(data, pos, end, depth)
        if self.explicit:
            if after != end:
                raise _Fail("explicit tag must contain exactly one value", self.name, after)
            return outer_end
        return after

    def check_tlv(self, data: bytes, pos: int, end: int, depth: int) -> int:
        c, k, t, cs, ce = read_header(data, pos, end, self.name)
        if c != self.cls or t != self.tag:
            expected = _tag_text(self.cls or 0, self.tag or 0)
            raise _Fail(
                f"expected tag {expected}, found {_tag_text(c, t)}",
                self.name,
                pos,
            )
        if k != self.constructed:
            raise _Fail(
                "constructed encoding where primitive is required"
                if k
                else "primitive encoding where constructed is required",
                self.name,
                pos,
            )
        self.check_contents(data, cs, ce, depth)
        return ce

    def check_contents(self, data: bytes, pos: int, end: int, depth: int) -> None:
        """Check the contents octets ``data[pos:end]``."""


class _AnyPlan(Plan):
    """Any single TLV; structure checked for DER headers, primitive contents not."""

    __slots__ = ()

    def check_tlv(self, data: bytes, pos: int, end: int, depth: int) -> int:
        return _walk_any(data, pos, end, depth, self.name)


def _walk_any(data: bytes, pos: int, end: int, depth: int, name: str) -> int:
    if depth > MAX_DEPTH:
        raise _Fail("nesting too deep", name, pos)
    _, k, _, cs, ce = read_header(data, pos, end, name)
    if k:
        p = cs
        while p < ce:
            p = _walk_any(data, p, ce, depth + 1, name)
    return ce


class _BoolPlan(Plan):
    __slots__ = ()

    def check_contents(self, data: bytes, pos: int, end: int, depth: int) -> None:
        if end - pos != 1:
            raise _Fail("BOOLEAN must be one octet", self.name, pos)
        if data[pos] not in (0, 0xFF):
            raise _Fail("BOOLEAN must be 00 or FF in DER", self.name, pos)


class _IntPlan(Plan):
    __slots__ = ("enum_map", "value_range")

    def __init__(self, spec: Any, name: str) -> None:
        super().__init__(spec, name)
        self.value_range = getattr(spec, "_value_range", None)
        self.enum_map = None
        if issubclass(spec, core.Enumerated) and not getattr(spec, "_extensible", False):
            self.enum_map = spec._map

    def check_contents(self, data: bytes, pos: int, end: int, depth: int) -> None:
        if end == pos:
            raise _Fail("INTEGER must have at least one octet", self.name, pos)
        if end - pos > 1:
            first, second = data[pos], data[pos + 1]
            if (first == 0 and second < 0x80) or (first == 0xFF and second >= 0x80):
                raise _Fail("non-minimal INTEGER encoding", self.name, pos)
        if self.value_range is not None or self.enum_map is not None:
            value = int.from_bytes(data[pos:end], "big", signed=True)
            if self.value_range is not None and not _range_ok(value, self.value_range):
                raise _Fail(
                    f"value {value} outside {_range_text(self.value_range)}", self.name, pos
                )
            if self.enum_map is not None and value not in self.enum_map:
                raise _Fail(f"unknown enumeration value {value}", self.name, pos)


def _range_ok(value: int, ranges: Any) -> bool:
    return any(
        (low is None or value >= low) and (high is None or value <= high) for low, high in ranges
    )


class _BitsPlan(Plan):
    __slots__ = ("named", "size")

    def __init__(self, spec: Any, name: str) -> None:
        super().__init__(spec, name)
        self.named = bool(getattr(spec, "_map", None))
        self.size = getattr(spec, "_size_constraint", None)

    def check_contents(self, data: bytes, pos: int, end: int, depth: int) -> None:
        if end == pos:
            raise _Fail("BIT STRING must have the unused-bits octet", self.name, pos)
        unused = data[pos]
        if unused > 7:
            raise _Fail("BIT STRING unused-bit count above 7", self.name, pos)
        if end - pos == 1:
            if unused:
                raise _Fail("empty BIT STRING with unused bits", self.name, pos)
            nbits = 0
        else:
            last = data[end - 1]
            if last & ((1 << unused) - 1):
                raise _Fail("BIT STRING padding bits are not zero", self.name, end - 1)
            if self.named and not (last >> unused) & 1:
                raise _Fail(
                    "trailing zero bits in a BIT STRING with named bits (not DER)",
                    self.name,
                    end - 1,
                )
            nbits = (end - pos - 1) * 8 - unused
        if self.size is not None and not _size_ok(nbits, self.size):
            raise _Fail(f"size {nbits} bits outside {_range_text(self.size)}", self.name, pos)


class _OctetsPlan(Plan):
    __slots__ = ("size",)

    def __init__(self, spec: Any, name: str) -> None:
        super().__init__(spec, name)
        self.size = getattr(spec, "_size_constraint", None)

    def check_contents(self, data: bytes, pos: int, end: int, depth: int) -> None:
        if self.size is not None and not _size_ok(end - pos, self.size):
            raise _Fail(
                f"size {end - pos} octets outside {_range_text(self.size)}", self.name, pos
            )


class _NullPlan(Plan):
    __slots__ = ()

    def check_contents(self, data: bytes, pos: int, end: int, depth: int) -> None:
        if end != pos:
            raise _Fail("NULL must be empty", self.name, pos)


class _OidPlan(Plan):
    __slots__ = ()

    def check_contents(self, data: bytes, pos: int, end: int, depth: int) -> None:
        if end == pos:
            raise _Fail("empty OBJECT IDENTIFIER", self.name, pos)
        start = True
        for p in range(pos, end):
            octet = data[p]
            if start and octet == 0x80:
                raise _Fail("non-minimal OBJECT IDENTIFIER subidentifier", self.name, p)
            start = not octet & 0x80
        if not start:
            raise _Fail("truncated OBJECT IDENTIFIER subidentifier", self.name, end - 1)


_PRINTABLE = re.compile(rb"[A-Za-z0-9 '()+,\-./:=?]*\Z")
_NUMERIC = re.compile(rb"[0-9 ]*\Z")
_VISIBLE = re.compile(rb"[\x20-\x7e]*\Z")
_IA5 = re.compile(rb"[\x00-\x7f]*\Z")


class _StringPlan(Plan):
    __slots__ = ("kind", "size")

    def __init__(self, spec: Any, name: str) -> None:
        super().__init__(spec, name)
        self.size = getattr(spec, "_size_constraint", None)
        if issubclass(spec, core.UTF8String):
            self.kind = "utf8"
        elif issubclass(spec, core.PrintableString):
            self.kind = "printable"
        elif issubclass(spec, core.NumericString):
            self.kind = "numeric"
        elif issubclass(spec, core.VisibleString):
            self.kind = "visible"
        elif issubclass(spec, core.IA5String):
            self.kind = "ia5"
        elif issubclass(spec, core.BMPString):
            self.kind = "bmp"
        elif issubclass(spec, core.UniversalString):
            self.kind = "universal"
        else:
            self.kind = "bytes"

    def check_contents(self, data: bytes, pos: int, end: int, depth: int) -> None:
        raw = data[pos:end]
        kind = self.kind
        count = len(raw)
        if kind == "utf8":
            try:
                count = len(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise _Fail("invalid UTF-8", self.name, pos) from None
        elif kind == "printable":
            if not _PRINTABLE.match(raw):
                raise _Fail("invalid PrintableString character", self.name, pos)
        elif kind == "numeric":
            if not _NUMERIC.match(raw):
                raise _Fail("invalid NumericString character", self.name, pos)
        elif kind == "visible":
            if not _VISIBLE.match(raw):
                raise _Fail("invalid VisibleString character", self.name, pos)
        elif kind == "ia5":
            if not _IA5.match(raw):
                raise _Fail("invalid IA5String character", self.name, pos)
        elif kind == "bmp":
            try:
                count = len(raw.decode("utf-16-be"))
            except UnicodeDecodeError:
                raise _Fail("invalid BMPString", self.name, pos) from None
        elif kind == "universal":
            try:
                count = len(raw.decode("utf-32-be"))
            except UnicodeDecodeError:
                raise _Fail("invalid UniversalString", self.name, pos) from None
        if self.size is not None and not _size_ok(count, self.size):
            raise _Fail(
                f"size {count} characters outside {_range_text(self.size)}", self.name, pos
            )


_UTC = re.compile(rb"(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z\Z")
_GEN = re.compile(rb"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\.\d*[1-9])?Z\Z")


class _TimePlan(Plan):
    __slots__ = ("generalized",)

    def __init__(self, spec: Any, name: str) -> None:
        super().__init__(spec, name)
        self.generalized = issubclass(spec, core.GeneralizedTime)

    def check_contents(self, data: bytes, pos: int, end: int, depth: int) -> None:
        raw = data[pos:end]
        match = (_GEN if self.generalized else _UTC).match(raw)
        if not match:
            raise _Fail("time not in the DER form", self.name, pos)
        year = int(match.group(1))
        if not self.generalized:
            year += 2000 if year < 50 else 1900
        elif year == 0:
            raise _Fail("year 0000 is not supported", self.name, pos)
        try:
            datetime.datetime(
                year,
                int(match.group(2)),
                int(match.group(3)),
                int(match.group(4)),
                int(match.group(5)),
                int(match.group(6)),
            )
        except ValueError:
            raise _Fail("invalid date or time", self.name, pos) from None


class _Field:
    """One SEQUENCE component as the matcher sees it."""

    __slots__ = ("choice_open", "default_der", "ids", "name", "optional", "plan")

    def __init__(
        self,
        name: str,
        plan: Plan,
        optional: bool,
        default_der: bytes | None,
    ) -> None:
        self.name = name
        self.plan = plan
        self.optional = optional or default_der is not None
        self.default_der = default_der
        self.ids = plan.ids()
        # an untagged extensible CHOICE that is mandatory: an unknown tag at
        # its position is an unknown alternative
        self.choice_open = (
            isinstance(plan, _ChoicePlan) and not plan.explicit and plan.extensible and not optional
        )


EXT = -1
"""Index given by :func:`_match` to an extension addition."""


class _SeqPlan(Plan):
    """SEQUENCE: components in order, then (if extensible) unknown extension additions.

    Matching rule for each received component, in order: the next known
    component whose tag set contains its tag takes it; optional/DEFAULT
    components may be skipped; a mandatory untagged extensible CHOICE takes an
    unknown tag (no other known component has) as an unknown alternative.
    Once the known components are exhausted (or only optional ones remain and
    the tag matches none of them), a component whose tag no known component
    has is an extension addition; a known tag there (a repeated or
    out-of-order component) is an error, and so is an unknown tag before a
    pending mandatory component.
    """

    __slots__ = ("all_ids", "extensible", "fields", "foreign_sorted")

    def __init__(self, spec: Any, name: str) -> None:
        super().__init__(spec, name)
        self.fields: list[_Field] = []
        self.all_ids: frozenset[tuple[int, int]] = frozenset()
        self.extensible = bool(getattr(spec, "_extensible", False)) and issubclass(
            spec, _base.Sequence
        )
        self.foreign_sorted = False

    def finish(self) -> None:
        ids: set[tuple[int, int]] = set()
        for field in self.fields:
            if field.ids is not None:
                ids |= field.ids
        self.all_ids = frozenset(ids)

    def match(self, items: list[tuple[int, int, int]]) -> list[int]:
        """Assign each received ``(class, tag, offset)`` to a field index or :data:`EXT`."""
        fields = self.fields
        nfields = len(fields)
        out: list[int] = []
        fi = 0
        for cls, tag, offset in items:
            ident = (cls, tag)
            while True:
                if fi >= nfields:
                    if ident in self.all_ids:
                        raise _Fail(
                            f"component {_tag_text(cls, tag)} repeated or out of order",
                            self.name,
                            offset,
                        )
                    if not self.extensible:
                        raise _Fail(
                            f"unexpected component {_tag_text(cls, tag)}", self.name, offset
                        )
                    out.append(EXT)
                    break
                field = fields[fi]
                if field.ids is None or ident in field.ids:
                    out.append(fi)
                    fi += 1
                    break
                if field.choice_open and ident not in self.all_ids:
                    out.append(fi)
                    fi += 1
                    break
                if field.optional:
                    fi += 1
                    continue
                raise _Fail(
                    f"expected component {field.name!r}, found {_tag_text(cls, tag)}",
                    self.name,
                    offset,
                )
        while fi < nfields:
            if not fields[fi].optional:
                raise _Fail(f"mandatory component {fields[fi].name!r} missing", self.name, -1)
            fi += 1
        return out

    def check_contents(self, data: bytes, pos: int, end: int, depth: int) -> None:
        items: list[tuple[int, int, int]] = []
        spans: list[tuple[int, int]] = []
        p = pos
        while p < end:
            c, _, t, _, ce = read_header(data, p, end, self.name)
            items.append((c, t, p))
            spans.append((p, ce))
            p = ce
        try:
            assignment = self.match(items)
        except _Fail as fail:
            if fail.offset < 0:
                fail.offset = end
            raise
        for index, (start, stop) in zip(assignment, spans, strict=True):
            if index == EXT:
                _walk_any(data, start, stop, depth + 1, self.name)
                continue
            field = self.fields[index]
            try:
                after = field.plan.check(data, start, stop, depth + 1)
            except _Fail as fail:
                fail.path.append(field.name)
                raise
            if after != stop:  # pragma: no cover - plans consume whole TLVs
                raise _Fail("component length mismatch", self.name, start)
            if field.default_der is not None and data[start:stop] == field.default_der:
                raise _Fail(
                    f"DEFAULT value of {field.name!r} encoded explicitly (not DER)",
                    self.name,
                    start,
                )


class _SeqOfPlan(Plan):
    __slots__ = ("element", "is_set", "size")

    def __init__(self, spec: Any, name: str) -> None:
        super().__init__(spec, name)
        self.size = getattr(spec, "_size_constraint", None)
        self.is_set = issubclass(spec, core.SetOf)
        self.element: Plan = _AnyPlan(core.Any, name)

    def check_contents(self, data: bytes, pos: int, end: int, depth: int) -> None:
        p = pos
        count = 0
        previous: bytes | None = None
        element = self.element
        while p < end:
            try:
                after = element.check(data, p, end, depth + 1)
            except _Fail as fail:
                fail.path.append(f"[{count}]")
                raise
            if self.is_set:
                encoding = data[p:after]
                if previous is not None and encoding < previous:
                    raise _Fail("SET OF elements not in DER order", self.name, p)
                previous = encoding
            p = after
            count += 1
        if self.size is not None and not _size_ok(count, self.size):
            raise _Fail(f"{count} elements outside {_range_text(self.size)}", self.name, pos)


class _ChoicePlan(Plan):
    __slots__ = ("alternatives", "extensible")

    def __init__(self, spec: Any, name: str) -> None:
        super().__init__(spec, name)
        self.alternatives: dict[tuple[int, int], Plan] = {}
        self.extensible = bool(getattr(spec, "_extensible", False)) and issubclass(
            spec, _base.Choice
        )

    def ids(self) -> frozenset[tuple[int, int]] | None:
        if self.explicit:
            return frozenset((self.explicit[0],))
        return frozenset(self.alternatives)

    def check_tlv(self, data: bytes, pos: int, end: int, depth: int) -> int:
        c, _, t, _, _ = read_header(data, pos, end, self.name)
        alternative = self.alternatives.get((c, t))
        if alternative is None:
            if not self.extensible:
                raise _Fail(f"no alternative has tag {_tag_text(c, t)}", self.name, pos)
            return _walk_any(data, pos, end, depth + 1, self.name)
        return alternative.check(data, pos, end, depth + 1)


class _ForeignPlan(Plan):
    """A constructed asn1crypto type (x509, crl): checked structurally by its own
    plan, then fully parsed by asn1crypto so that later access cannot fail."""

    __slots__ = ("inner",)

    def __init__(self, inner: Plan) -> None:
        super().__init__(inner.spec, inner.name)
        self.inner = inner
        self.explicit = inner.explicit
        self.cls = inner.cls
        self.tag = inner.tag

    def ids(self) -> frozenset[tuple[int, int]] | None:
        return self.inner.ids()

    def check(self, data: bytes, pos: int, end: int, depth: int) -> int:
        after = self.inner.check(data, pos, end, depth)
        der = bytes(data[pos:after])
        try:
            # dump(force=True) makes asn1crypto build and re-encode every
            # part, including those typed at run time (it reads each
            # primitive's native value)
            again = self.spec.load(der, strict=True).dump(force=True)
        except Exception as exc:  # asn1crypto parsing untrusted input: anything goes
            first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise _Fail(f"not a valid {self.name}: {first_line}", self.name, pos) from None
        if again != der:
            # parts typed at run time (extension values, algorithm parameters)
            # were not DER: asn1crypto re-encodes them differently
            raise _Fail(f"{self.name} is not DER (its re-encoding differs)", self.name, pos)
        return after


# ---------------------------------------------------------------------------
# Compiling plans from asn1crypto classes

_cache: dict[tuple[Any, Any, bool], Plan] = {}


_CORE_NAMES = {
    core.Boolean: "BOOLEAN",
    core.Integer: "INTEGER",
    core.Enumerated: "ENUMERATED",
    core.BitString: "BIT STRING",
    core.OctetBitString: "BIT STRING",
    core.IntegerBitString: "BIT STRING",
    core.ParsableOctetBitString: "BIT STRING",
    core.OctetString: "OCTET STRING",
    core.IntegerOctetString: "OCTET STRING",
    core.ParsableOctetString: "OCTET STRING",
    core.Null: "NULL",
    core.ObjectIdentifier: "OBJECT IDENTIFIER",
    core.UTF8String: "UTF8String",
    core.PrintableString: "PrintableString",
    core.IA5String: "IA5String",
    core.UTCTime: "UTCTime",
    core.GeneralizedTime: "GeneralizedTime",
    core.Any: "ANY",
}


def _type_name(spec: Any) -> str:
    name = getattr(spec, "_asn1_name", "")
    return name or _CORE_NAMES.get(spec, spec.__name__)


def _tagging_key(params: dict[str, Any] | None) -> Any:
    if not params:
        return None
    return (_norm_tag(params.get("implicit")), _norm_tag(params.get("explicit")))


def _norm_tag(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, int):
        return (2, value)
    cls, tag = value
    if isinstance(cls, str):
        cls = _CLASS_NUM[cls]
    return (cls, tag)


def plan_for(spec: Any, params: dict[str, Any] | None = None, *, foreign_root: bool = True) -> Plan:
    """The (cached) plan for ``spec`` with field ``params`` (tagging)."""
    key = (spec, _tagging_key(params), foreign_root)
    plan = _cache.get(key)
    if plan is None:
        plan = _compile(spec, params, foreign_root)
    return plan


def _is_ours(spec: Any) -> bool:
    return issubclass(spec, (_base._Constrained,))


def _compile(spec: Any, params: dict[str, Any] | None, foreign_root: bool) -> Plan:
    key = (spec, _tagging_key(params), foreign_root)
    name = _type_name(spec)
    plan: Plan
    if issubclass(spec, core.Choice):
        plan = _ChoicePlan(spec, name)
    elif issubclass(spec, core.Sequence):  # includes Set
        plan = _SeqPlan(spec, name)
        plan.constructed = 1
    elif issubclass(spec, core.SequenceOf):
        plan = _SeqOfPlan(spec, name)
        plan.constructed = 1
    elif issubclass(spec, core.Boolean):
        plan = _BoolPlan(spec, name)
    elif issubclass(spec, core.Integer):
        plan = _IntPlan(spec, name)
    elif issubclass(
        spec, (core.BitString, core.OctetBitString, core.IntegerBitString)
    ):
        plan = _BitsPlan(spec, name)
    elif issubclass(
        spec, (core.OctetString, core.IntegerOctetString, core.ParsableOctetString)
    ):
        plan = _OctetsPlan(spec, name)
    elif issubclass(spec, core.Null):
        plan = _NullPlan(spec, name)
    elif issubclass(spec, core.ObjectIdentifier):
        plan = _OidPlan(spec, name)
    elif issubclass(spec, core.AbstractTime):
        plan = _TimePlan(spec, name)
    elif issubclass(spec, core.AbstractString):
        plan = _StringPlan(spec, name)
    else:
        plan = _AnyPlan(spec, name)

    # tagging: class-level, then field params
    explicit: list[tuple[int, int]] = []
    cls_explicit = spec.explicit
    if cls_explicit:
        if isinstance(cls_explicit[0], int):
            cls_explicit = (cls_explicit,)
        explicit = [(int(c), int(t)) for c, t in cls_explicit]  # innermost first
    if not isinstance(plan, (_ChoicePlan, _AnyPlan)):
        plan.cls = spec.class_ if spec.class_ is not None else 0
        plan.tag = spec.tag
    if params:
        implicit = _norm_tag(params.get("implicit"))
        if implicit is not None:
            plan.cls, plan.tag = implicit
        extra = _norm_tag(params.get("explicit"))
        if extra is not None:
            explicit.append(extra)
    plan.explicit = tuple(reversed(explicit))  # outermost first
    if isinstance(plan, _AnyPlan) and params and _norm_tag(params.get("implicit")):
        plan.cls, plan.tag = _norm_tag(params.get("implicit"))

    _cache[key] = plan  # before children: allows recursive types

    if isinstance(plan, _ChoicePlan):
        spec()  # runs asn1crypto's _setup
        for alt in spec._alternatives:
            alt_name, alt_spec = alt[0], alt[1]
            alt_params = alt[2] if len(alt) > 2 else {}
            alt_plan = plan_for(alt_spec, alt_params, foreign_root=_is_ours(spec))
            ids = alt_plan.ids()
            if ids is None:
                raise TypeError(f"{name}.{alt_name}: an alternative without a tag")
            for ident in ids:
                plan.alternatives[ident] = alt_plan
    elif isinstance(plan, _SeqPlan):
        spec()
        dynamic = set(spec._spec_callbacks or ())
        if spec._oid_pair is not None:
            dynamic.add(spec._oid_pair[1])
        for field in spec._fields:
            field_name, field_spec = field[0], field[1]
            field_params = dict(field[2]) if len(field) > 2 else {}
            if field_name in dynamic or field_spec is None:
                field_plan: Plan = _AnyPlan(core.Any, f"{name}.{field_name}")
                implicit = _norm_tag(field_params.get("implicit"))
                extra = _norm_tag(field_params.get("explicit"))
                if implicit or extra:
                    field_plan = plan_for(core.Any, field_params)
            else:
                field_plan = plan_for(field_spec, field_params, foreign_root=_is_ours(spec))
            default_der = None
            if "default" in field_params:
                default_der = field_spec(**field_params).dump(force=True)
            plan.fields.append(
                _Field(field_name, field_plan, bool(field_params.get("optional")), default_der)
            )
        plan.finish()
    elif isinstance(plan, _SeqOfPlan):
        child = spec._child_spec
        plan.element = (
            plan_for(child, None, foreign_root=_is_ours(spec))
            if child is not None
            else _AnyPlan(core.Any, name)
        )
    if (
        foreign_root
        and not params
        and not _is_ours(spec)
        and isinstance(plan, (_SeqPlan, _SeqOfPlan, _ChoicePlan))
    ):
        # below this root, foreign children are covered by the root's full parse
        wrapped = _ForeignPlan(plan)
        _cache[key] = wrapped
        return wrapped
    return plan


def outer_ids(spec: Any) -> frozenset[tuple[int, int]] | None:
    """The outer (class, tag) pairs an encoding of ``spec`` can start with."""
    return plan_for(spec).ids()


# ---------------------------------------------------------------------------
# Entry points


def check(spec: Any, data: bytes, offset: int = 0) -> None:
    """Check that ``data`` is exactly one strict-DER encoding of ``spec``.

    Raises :class:`DecodeError` (``offset`` is added to reported offsets).
    """
    plan = plan_for(spec)
    try:
        after = plan.check(data, 0, len(data), 0)
        if after != len(data):
            raise _Fail(f"{len(data) - after} trailing bytes", plan.name, after)
    except _Fail as fail:
        raise _to_error(fail, offset) from None
    except RecursionError:
        raise DecodeError("nesting too deep", type_name=plan.name, offset=offset) from None


def _to_error(fail: _Fail, offset: int) -> DecodeError:
    message = fail.message
    if fail.path:
        message += " (in " + ".".join(reversed(fail.path)).replace(".[", "[") + ")"
    return DecodeError(message, type_name=fail.type_name, offset=fail.offset + offset)


def iter_tlvs(data: bytes, name: str) -> Iterator[tuple[int, int]]:
    """Yield ``(start, end)`` of each top-level TLV in ``data`` (strict headers)."""
    p = 0
    end = len(data)
    try:
        while p < end:
            _, _, _, _, ce = read_header(data, p, end, name)
            yield p, ce
            p = ce
    except _Fail as fail:
        raise _to_error(fail, 0) from None


def parse_sequence_children(value: Any, recurse: bool) -> None:
    """asn1crypto ``_parse_children`` for :class:`rspfed.asn1._base.Sequence`.

    Builds the lazily-parsed children the way asn1crypto does, using the same
    component matching as the strict check, and puts extension additions in
    ``value._extensions``.
    """
    cls = type(value)
    contents = value._contents
    fields = cls._fields
    if contents is None:
        value.children = []
        for field in fields:
            params = field[2] if len(field) > 2 else {}
            if "default" in params:
                value.children.append(field[1](**params))
            else:
                value.children.append(core.VOID)
        value._extensions = []
        return
    if not value._field_map:
        cls()  # asn1crypto _setup
    plan = plan_for(cls)
    inner = plan.inner if isinstance(plan, _ForeignPlan) else plan
    assert isinstance(inner, _SeqPlan)
    parts_list = []
    items = []
    pointer = 0
    length = len(contents)
    try:
        while pointer < length:
            parts, next_pointer = parser._parse(contents, length, pointer)
            parts_list.append(parts)
            items.append((parts[0], parts[2], pointer))
            pointer = next_pointer
        assignment = inner.match(items)
    except _Fail as fail:
        raise ValueError(f"{fail.message} while parsing {cls.__name__}") from None
    children: list[Any] = []
    extensions: list[_base.Opaque] = []
    for index, parts in zip(assignment, parts_list, strict=True):
        if index == EXT:
            extensions.append(_base.Opaque(bytes(parts[3]) + bytes(parts[4]) + bytes(parts[5])))
            continue
        while len(children) < index:
            _fill_absent(children, fields[len(children)])
        field = fields[index]
        params = field[2] if len(field) > 2 else {}
        child: Any = (*parts, field[1], params)
        if recurse:
            child = core._build(*child)
            if isinstance(child, (core.Sequence, core.SequenceOf)):
                child._parse_children(recurse=True)
        children.append(child)
    while len(children) < len(fields):
        _fill_absent(children, fields[len(children)])
    value.children = children
    value._extensions = extensions


def _fill_absent(children: list[Any], field: Any) -> None:
    params = field[2] if len(field) > 2 else {}
    if "default" in params:
        children.append(field[1](**params))
    elif "optional" in params:
        children.append(core.VOID)
    else:
        raise ValueError(f'Field "{field[0]}" is missing from structure')
