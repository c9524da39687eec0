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

asn1crypto's own types (x509 ``Certificate``, crl ``CertificateList``) get
the same walk over plans made from their classes.  Components that asn1crypto
types at run time are walked with the plan of the type it selects
(:meth:`_SeqPlan.resolve`): extension values (``extnValue`` holds exactly one
DER value of the type chosen by ``extnID``), algorithm parameters, public keys
and attribute values; an extension asn1crypto does not know, or an ``ANY``
without a type, gets the generic DER walk (:func:`_walk_der`: headers, and the
content rules of the universal types).  Primitive classes that asn1crypto
converts to and from native values in their own way (``URI``, ``DNSName``,
``IPAddress``, ...) must survive that round trip (:func:`_roundtrip`).  So
everything asn1crypto would build from the value parses and re-encodes to the
same bytes, without building it.  A failure inside a run-time typed part is
reported against the root type, at its start (see :class:`_ForeignPlan`);
checked roots are remembered by their exact bytes in a small bounded table.

Failures raise :class:`rspfed.errors.DecodeError` with ``type_name`` the
innermost ASN.1 type and ``offset`` the byte offset in the whole input.
"""

from __future__ import annotations

import datetime
import functools
import re
import sys
from collections.abc import Iterator
from typing import Any

from asn1crypto import core, parser

from rspfed.asn1 import _base
from rspfed.errors import DecodeError

__all__ = [
    "CHECKED_CACHE_SIZE",
    "MAX_DEPTH",
    "Plan",
    "check",
    "clear_caches",
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
        self.runtime = False  # raised inside a part typed at run time (see _ForeignPlan)


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
    """How to check one (type, tagging) at one position.

    :meth:`check` takes the TLV (explicit tags included) at a position;
    :meth:`check_header` is the fast path used by the enclosing SEQUENCE, SET
    OF or CHOICE, which has read the header already (only for plans with
    ``direct`` true: no explicit tag, no override of :meth:`check`).
    """

    __slots__ = ("cls", "constructed", "explicit", "name", "roundtrip", "spec", "tag")

    direct = True
    """Whether :meth:`check_header` may be called (see the class docstring)."""

    def __init__(self, spec: Any, name: str) -> None:
        self.spec = spec
        self.name = name
        self.explicit: tuple[tuple[int, int], ...] = ()  # outermost first
        self.cls: int | None = None
        self.tag: int | None = None
        self.constructed = 0
        # asn1crypto re-encodes this (foreign) type from a native value that
        # its own class computes: contents must survive that round trip
        self.roundtrip = False

    def ids(self) -> frozenset[tuple[int, int]] | None:
        """Outer (class, tag) pairs this plan accepts; None for any tag."""
        if self.explicit:
            return frozenset((self.explicit[0],))
        if self.cls is None or self.tag is None:
            return None
        return frozenset(((self.cls, self.tag),))

    def is_direct(self) -> bool:
        """Whether an enclosing plan may call :meth:`check_header` directly."""
        return self.direct and not self.explicit

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
        """Check the TLV at ``pos`` (inside any explicit tags)."""
        c, k, t, cs, ce = read_header(data, pos, end, self.name)
        self.check_header(data, pos, c, k, t, cs, ce, depth)
        return ce

    def check_header(
        self, data: bytes, pos: int, c: int, k: int, t: int, cs: int, ce: int, depth: int
    ) -> None:
        """Check the TLV at ``pos`` whose header :func:`read_header` gave as ``c, k, t, cs, ce``."""
        if depth > MAX_DEPTH:
            raise _Fail("nesting too deep", self.name, pos)
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
        if self.roundtrip:
            _roundtrip(self, data, cs, ce)

    def check_contents(self, data: bytes, pos: int, end: int, depth: int) -> None:
        """Check the contents octets ``data[pos:end]``."""


def _roundtrip(plan: Plan, data: bytes, pos: int, end: int) -> None:
    """Contents of a foreign primitive type must be what asn1crypto re-encodes
    from its native value (as ``dump(force=True)`` does: ``set(native)``).

    Contents in a form known to survive the round trip (:func:`_fast_forms`,
    e.g. a lower-case ``http://host/path`` URI) skip it.
    """
    raw = bytes(data[pos:end])
    fast = _fast_forms().get(plan.spec)
    if fast is not None and fast.match(raw):
        return
    try:
        value = plan.spec(contents=raw)
        native = value.native
        value.contents = None
        value.set(native)
        again = value.contents
    except Exception as exc:  # asn1crypto on untrusted input: anything goes
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise _Fail(f"invalid {plan.name}: {first_line}", plan.name, pos) from None
    if again != raw:
        raise _Fail(f"{plan.name} not in its canonical (DER) form", plan.name, pos)


class _AnyPlan(Plan):
    """Any single TLV; structure checked for DER headers, primitive contents not."""

    __slots__ = ()
    direct = False

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
    __slots__ = ("named", "octets", "size")

    def __init__(self, spec: Any, name: str) -> None:
        super().__init__(spec, name)
        self.named = bool(getattr(spec, "_map", None))
        self.size = getattr(spec, "_size_constraint", None)
        # asn1crypto's octet-valued BIT STRINGs (public keys) have no unused bits
        self.octets = issubclass(spec, (core.OctetBitString, core.ParsableOctetBitString))

    def check_contents(self, data: bytes, pos: int, end: int, depth: int) -> None:
        if end == pos:
            raise _Fail("BIT STRING must have the unused-bits octet", self.name, pos)
        unused = data[pos]
        if unused > 7:
            raise _Fail("BIT STRING unused-bit count above 7", self.name, pos)
        if unused and self.octets:
            raise _Fail("unused bits in a BIT STRING of whole octets", self.name, pos)
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
    __slots__ = ("high", "low", "size")

    def __init__(self, spec: Any, name: str) -> None:
        super().__init__(spec, name)
        self.size = getattr(spec, "_size_constraint", None)
        # one range (the usual case) checked inline; several through _size_ok
        self.low, self.high = 0, -1  # -1: no single-range bound
        if self.size is not None and len(self.size) == 1:
            low, high = self.size[0]
            self.low, self.high = low, sys.maxsize if high is None else high

    def check_contents(self, data: bytes, pos: int, end: int, depth: int) -> None:
        if self.size is None:
            return
        n = end - pos
        if (self.low <= n <= self.high) if self.high >= 0 else _size_ok(n, self.size):
            return
        raise _Fail(f"size {n} octets outside {_range_text(self.size)}", self.name, pos)


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
            raise _Fail(f"size {count} characters outside {_range_text(self.size)}", self.name, pos)


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

    __slots__ = (
        "choice_open",
        "default_der",
        "direct",
        "dynamic",
        "ids",
        "name",
        "optional",
        "plan",
    )

    def __init__(
        self,
        name: str,
        plan: Plan,
        optional: bool,
        default_der: bytes | None,
        dynamic: bool = False,
    ) -> None:
        self.name = name
        self.plan = plan
        self.direct = plan.is_direct()
        # typed at run time (asn1crypto _oid_pair / _spec_callbacks): ``plan``
        # only matches tags; the checking plan comes from _SeqPlan.resolve
        self.dynamic = dynamic
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

_Entry = tuple[int, "_Field | None", "Plan | None", "int | None", "int | None", int]
"""A memoised component check: (field index or EXT, field, plan whose contents are
checked directly when the header matches (class, tag, constructed), else None, ...)."""


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

    __slots__ = ("all_ids", "extensible", "fields", "foreign_sorted", "resolved", "shapes")

    def __init__(self, spec: Any, name: str) -> None:
        super().__init__(spec, name)
        self.fields: list[_Field] = []
        self.all_ids: frozenset[tuple[int, int]] = frozenset()
        self.extensible = bool(getattr(spec, "_extensible", False)) and issubclass(
            spec, _base.Sequence
        )
        self.foreign_sorted = False
        # received tag sequence (tag << 2 | class) -> how each component is checked
        # (bounded memo of match(), see _entry)
        self.shapes: dict[tuple[int, ...], list[_Entry]] = {}
        # (field index, contents before it) -> plan of a run-time typed field
        self.resolved: dict[tuple[int, bytes], Plan] = {}

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
        items: list[tuple[int, int, int, int, int, int]] = []
        idents: list[int] = []
        p = pos
        while p < end:
            first = data[p]
            if first & 0x1F != 0x1F and p + 1 < end and data[p + 1] < 0x80:
                # fast path: low tag number, short-form length
                c, k, t, cs = first >> 6, (first >> 5) & 1, first & 0x1F, p + 2
                ce = cs + data[p + 1]
                if ce > end:
                    read_header(data, p, end, self.name)  # raises the error
            else:
                c, k, t, cs, ce = read_header(data, p, end, self.name)
            items.append((c, k, t, p, cs, ce))
            idents.append(t << 2 | c)
            p = ce
        shape = tuple(idents)
        entries = self.shapes.get(shape)
        if entries is None:
            try:
                assignment = self.match([(c, t, start) for c, _, t, start, _, _ in items])
            except _Fail as fail:
                if fail.offset < 0:
                    fail.offset = end
                raise
            entries = [self._entry(index) for index in assignment]
            if len(self.shapes) < _MEMO_SIZE:
                self.shapes[shape] = entries
        depth += 1
        shallow = depth <= MAX_DEPTH
        for (index, field, fast, fc, ft, fk), (c, k, t, start, cs, stop) in zip(
            entries, items, strict=True
        ):
            if field is None:  # EXT
                _walk_any(data, start, stop, depth, self.name)
                continue
            try:
                if fast is not None and c == fc and t == ft and k == fk and shallow:
                    fast.check_contents(data, cs, stop, depth)  # check_header inlined
                elif field.dynamic:
                    plan = self.resolve(index, data, pos, start, end)
                    try:
                        plan.check(data, start, stop, depth)
                    except _Fail as fail:
                        fail.runtime = True
                        raise
                elif field.direct:
                    field.plan.check_header(data, start, c, k, t, cs, stop, depth)
                else:
                    field.plan.check(data, start, stop, depth)
            except _Fail as fail:
                fail.path.append(field.name)
                raise
            if field.default_der is not None and data[start:stop] == field.default_der:
                raise _Fail(
                    f"DEFAULT value of {field.name!r} encoded explicitly (not DER)",
                    self.name,
                    start,
                )

    def _entry(self, index: int) -> _Entry:
        """How :meth:`check_contents` checks a component assigned to field ``index``."""
        if index == EXT:
            return (index, None, None, -1, -1, -1)
        field = self.fields[index]
        plan = field.plan
        if field.direct and not field.dynamic and not plan.roundtrip:
            return (index, field, plan, plan.cls, plan.tag, plan.constructed)
        return (index, field, None, -1, -1, -1)

    def resolve(self, index: int, data: bytes, pos: int, start: int, end: int) -> Plan:
        """The plan of run-time typed component ``index`` at ``start`` in the
        contents ``data[pos:end]``.

        asn1crypto chooses the type (``_determine_spec``: an ``_oid_pair`` or
        a ``_spec_callbacks`` entry) from the components *before* this one
        (algorithm before parameters, extnID before extnValue, type before
        value), so the choice is memoised on those bytes.
        """
        key = (index, bytes(data[pos:start]))
        plan = self.resolved.get(key)
        if plan is not None:
            return plan
        field = self.fields[index]
        try:
            value = self.spec(contents=bytes(data[pos:end]))
            value._parse_children()
            _, field_spec, value_spec, params, override = value._determine_spec(index)
        except Exception as exc:  # asn1crypto callbacks on untrusted input (KeyError, ...)
            first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
            fail = _Fail(
                f"cannot determine the type of {field.name!r}: {first_line}", self.name, start
            )
            fail.runtime = True
            raise fail from None
        plan = _typed_plan(field_spec, value_spec, params, override, f"{self.name}.{field.name}")
        if len(self.resolved) >= _MEMO_SIZE:
            self.resolved.clear()
        self.resolved[key] = plan
        return plan


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
        direct = element.is_direct()
        while p < end:
            try:
                if direct:
                    c, k, t, cs, after = read_header(data, p, end, element.name)
                    element.check_header(data, p, c, k, t, cs, after, depth + 1)
                else:
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

    def check_header(
        self, data: bytes, pos: int, c: int, k: int, t: int, cs: int, ce: int, depth: int
    ) -> None:
        alternative = self.alternatives.get((c, t))
        if alternative is None:
            if not self.extensible:
                raise _Fail(f"no alternative has tag {_tag_text(c, t)}", self.name, pos)
            _walk_any(data, pos, ce, depth + 1, self.name)
        elif alternative.is_direct():
            alternative.check_header(data, pos, c, k, t, cs, ce, depth + 1)
        else:
            alternative.check(data, pos, ce, depth + 1)


class _ForeignPlan(Plan):
    """The root of an asn1crypto-defined constructed type (x509 ``Certificate``,
    crl ``CertificateList``, ...) inside an rspfed type or decoded on its own.

    The whole value is walked like any other (the plans of asn1crypto's
    classes); components typed at run time -- extension values by
    ``extnID``, algorithm parameters and public keys by algorithm, attribute
    values by attribute type -- are walked with the plan of the type
    asn1crypto selects (see :meth:`_SeqPlan.resolve`), and unknown ones with
    the generic DER walk (:func:`_walk_der`).  A failure inside such a part
    is reported against the root (``type_name`` the root type, ``offset`` its
    start), as "not DER".

    Encodings that passed are remembered (exact bytes, a bounded table of
    :data:`CHECKED_CACHE_SIZE` entries; certificates repeat a lot: CI, EUM,
    SM-DP+).
    """

    __slots__ = ("inner", "memo")
    direct = False

    def __init__(self, inner: Plan) -> None:
        super().__init__(inner.spec, inner.name)
        self.inner = inner
        self.memo = isinstance(inner, _SeqPlan)  # not for small CHOICEs such as Time
        self.explicit = inner.explicit
        self.cls = inner.cls
        self.tag = inner.tag

    def ids(self) -> frozenset[tuple[int, int]] | None:
        return self.inner.ids()

    def check(self, data: bytes, pos: int, end: int, depth: int) -> int:
        if not self.memo:
            return self._check(data, pos, end, depth)
        after = read_header(data, pos, end, self.name)[4]
        key = (self, depth, bytes(data[pos:after]))
        if key in _checked:
            return after
        self._check(data, pos, end, depth)
        if CHECKED_CACHE_SIZE > 0:
            while len(_checked) >= CHECKED_CACHE_SIZE:
                try:  # evict the oldest
                    del _checked[next(iter(_checked))]
                except (KeyError, RuntimeError, StopIteration):  # pragma: no cover - races
                    _checked.clear()
            _checked[key] = None
        return after

    def _check(self, data: bytes, pos: int, end: int, depth: int) -> int:
        try:
            return self.inner.check(data, pos, end, depth)
        except _Fail as fail:
            if fail.runtime:
                inner_name = fail.type_name
                fail.message = (
                    f"{self.name} is not DER: {fail.message}"
                    f" ({inner_name} at offset {fail.offset - pos} of the {self.name})"
                )
                fail.type_name = self.name
                fail.offset = pos
                fail.runtime = False
            raise


CHECKED_CACHE_SIZE = 64
"""How many foreign-root encodings (certificates, CRLs) that passed are remembered
(0 disables the table)."""

_checked: dict[tuple[Plan, int, bytes], None] = {}
"""Encodings (with their root plan and nesting depth) known to pass; insertion order = age."""

_MEMO_SIZE = 256
"""Bound of the per-plan memo tables (tag shapes, run-time typed components)."""


def clear_caches() -> None:
    """Forget the remembered certificate/CRL encodings (for benchmarks and tests)."""
    _checked.clear()


class _GenericPlan(Plan):
    """A value whose type is not known: the generic DER walk (:func:`_walk_der`).

    With ``compat`` (an ``ANY`` that asn1crypto parses by its universal tag
    number, such as the parameters of an unknown algorithm), the value must
    also be one asn1crypto can build and re-encodes to the same bytes.
    """

    __slots__ = ("compat",)
    direct = False

    def __init__(self, name: str, compat: bool) -> None:
        super().__init__(core.Any, name)
        self.compat = compat

    def check_tlv(self, data: bytes, pos: int, end: int, depth: int) -> int:
        after = _walk_der(data, pos, end, depth, self.name)
        if self.compat:
            tlv = bytes(data[pos:after])
            try:
                again = core.Any.load(tlv).dump(force=True)
            except Exception as exc:  # asn1crypto on untrusted input: anything goes
                first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
                raise _Fail(
                    f"not a value asn1crypto can parse: {first_line}", self.name, pos
                ) from None
            if again != tlv:
                raise _Fail("re-encoding differs (not DER)", self.name, pos)
        return after


class _NestedPlan(Plan):
    """An OCTET STRING (or BIT STRING of whole octets) whose contents are
    exactly one DER value of another type (an X.509 ``extnValue``, a
    ``subjectPublicKey`` holding an ``RSAPublicKey``)."""

    __slots__ = ("bits", "held", "outer")
    direct = False

    def __init__(self, outer: Plan, held: Plan, bits: bool) -> None:
        super().__init__(outer.spec, outer.name)
        self.outer = outer
        self.held = held
        self.bits = bits
        self.explicit = outer.explicit
        self.cls = outer.cls
        self.tag = outer.tag

    def ids(self) -> frozenset[tuple[int, int]] | None:
        return self.outer.ids()

    def check(self, data: bytes, pos: int, end: int, depth: int) -> int:
        after = self.outer.check(data, pos, end, depth)
        p, stop = pos, after
        for _ in self.outer.explicit:
            p, stop = read_header(data, p, stop, self.name)[3:]
        cs, ce = read_header(data, p, stop, self.name)[3:]
        if self.bits:
            if data[cs]:
                raise _Fail("unused bits in a BIT STRING holding a DER value", self.name, cs)
            cs += 1
        if cs == ce:
            raise _Fail("empty: a DER value was expected", self.name, cs)
        held_end = self.held.check(data, cs, ce, depth + 1)
        if held_end != ce:
            raise _Fail(f"{ce - held_end} bytes after the held value", self.name, held_end)
        return after


_PRIMITIVE_UNIVERSAL = frozenset((1, 2, 3, 4, 5, 6, 9, 10, 12, 13, *range(18, 31)))
"""Universal tags whose DER encoding is primitive (X.690 §10.2, §8)."""

_universal_plans: dict[int, Plan] = {}


def _universal_plan(tag: int) -> Plan | None:
    if not _universal_plans:
        for number, spec in (
            (1, core.Boolean),
            (2, core.Integer),
            (3, core.BitString),
            (5, core.Null),
            (6, core.ObjectIdentifier),
            (10, core.Enumerated),
            (12, core.UTF8String),
            (18, core.NumericString),
            (19, core.PrintableString),
            (22, core.IA5String),
            (23, core.UTCTime),
            (24, core.GeneralizedTime),
            (26, core.VisibleString),
            (28, core.UniversalString),
            (30, core.BMPString),
        ):
            _universal_plans[number] = plan_for(spec, foreign_root=False)
    return _universal_plans.get(tag)


def _walk_der(data: bytes, pos: int, end: int, depth: int, name: str) -> int:
    """The generic DER walk of one TLV whose type is not known.

    Headers as everywhere (minimal tags, definite minimal lengths); a
    universal tag gives the type: SEQUENCE/SET constructed, the other
    universal types primitive, BOOLEAN, INTEGER, ENUMERATED, BIT STRING,
    NULL, OBJECT IDENTIFIER, the character strings and the times with their
    DER content rules; ``[UNIVERSAL 0]`` is rejected.  Constructed values are
    walked recursively.
    """
    if depth > MAX_DEPTH:
        raise _Fail("nesting too deep", name, pos)
    c, k, t, cs, ce = read_header(data, pos, end, name)
    if c == 0:
        if t == 0:
            raise _Fail("[UNIVERSAL 0] is not a value", name, pos)
        if t in (16, 17):
            if not k:
                raise _Fail("primitive encoding where constructed is required", name, pos)
        elif t in _PRIMITIVE_UNIVERSAL:
            plan = _universal_plan(t)
            if k:
                raise _Fail(
                    "constructed encoding where primitive is required",
                    plan.name if plan is not None else name,
                    pos,
                )
            if plan is not None:
                plan.check_header(data, pos, c, k, t, cs, ce, depth)
            return ce
    if k:
        p = cs
        while p < ce:
            p = _walk_der(data, p, ce, depth + 1, name)
    return ce


_typed_plans: dict[tuple[Any, ...], Plan] = {}


def _typed_plan(field_spec: Any, value_spec: Any, params: Any, override: Any, name: str) -> Plan:
    """The plan for a run-time typed component, from asn1crypto's
    ``_determine_spec`` result (cached)."""
    key = (field_spec, value_spec, _tagging_key(params), override is None, name)
    plan = _typed_plans.get(key)
    if plan is not None:
        return plan
    params = dict(params or {})
    params.pop("optional", None)
    params.pop("default", None)
    if override is None:
        if field_spec is None or issubclass(field_spec, core.Any):
            plan = _GenericPlan(name, compat=True)
            explicit = _norm_tag(params.get("explicit"))
            if explicit is not None:
                plan.explicit = (explicit,)
        elif issubclass(field_spec, core.ParsableOctetString):
            # an extension asn1crypto does not know: still one DER value
            plan = _NestedPlan(
                plan_for(field_spec, params, foreign_root=False),
                _GenericPlan(name, compat=False),
                bits=False,
            )
        else:
            plan = plan_for(field_spec, params, foreign_root=False)
    elif issubclass(field_spec, (core.ParsableOctetString, core.ParsableOctetBitString)):
        plan = _NestedPlan(
            plan_for(field_spec, params, foreign_root=False),
            plan_for(value_spec, None, foreign_root=False),
            bits=issubclass(field_spec, core.ParsableOctetBitString),
        )
    else:
        plan = plan_for(value_spec, params, foreign_root=False)
    _typed_plans[key] = plan
    return plan


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
    elif issubclass(spec, (core.BitString, core.OctetBitString, core.IntegerBitString)):
        plan = _BitsPlan(spec, name)
    elif issubclass(spec, (core.OctetString, core.IntegerOctetString, core.ParsableOctetString)):
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
    plan.roundtrip = _needs_roundtrip(spec)
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
                _Field(
                    field_name,
                    field_plan,
                    bool(field_params.get("optional")),
                    default_der,
                    dynamic=field_name in dynamic and not _is_ours(spec),
                )
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
        and not _is_ours(spec)
        and isinstance(plan, (_SeqPlan, _SeqOfPlan, _ChoicePlan))
    ):
        # the root of an asn1crypto type: reports run-time typed failures
        # against the root and remembers what passed
        wrapped = _ForeignPlan(plan)
        _cache[key] = wrapped
        return wrapped
    return plan


_NATIVE_HOOKS = ("native", "set", "_setable_native", "__unicode__", "_merge_chunks")


@functools.cache
def _fast_forms() -> dict[type, re.Pattern[bytes]]:
    """Per asn1crypto class, contents that its native round trip reproduces
    unchanged (a conservative subset; ``tests/asn1/test_certificate_strict.py``
    checks each against asn1crypto)."""
    from asn1crypto import x509

    host = rb"(?=[a-z0-9.-]{1,63}(?:/|\Z))[a-z0-9]+(?:[.-][a-z0-9]+)*"
    return {
        core.GeneralizedTime: re.compile(rb"[1-9][0-9]{13}Z\Z"),
        x509.URI: re.compile(rb"[a-z]+://" + host + rb"(?:/[A-Za-z0-9._~/-]*)?\Z"),
        x509.DNSName: re.compile(rb"(?=[a-z0-9.-]{1,63}\Z)[a-z0-9]+(?:[.-][a-z0-9]+)*\Z"),
        x509.NotReallyTeletexString: re.compile(rb"[A-Za-z0-9 '()+,\-./:=?]*\Z"),
    }


_CHECKED_STRINGS = (
    core.UTF8String,
    core.PrintableString,
    core.NumericString,
    core.VisibleString,
    core.IA5String,
    core.BMPString,
    core.UniversalString,
    core.UTCTime,
)
"""String types whose content rules :class:`_StringPlan` (:class:`_TimePlan`) checks itself."""


def _needs_roundtrip(spec: Any) -> bool:
    """Whether an asn1crypto primitive class converts to and from its native
    value in its own way (``x509.URI``, ``DNSName``, ``EmailAddress``,
    ``IPAddress``, ...) or has a native form DER may not reproduce
    (``GeneralizedTime`` fractions, the strings decoded by asn1crypto's codecs
    such as ``TeletexString``): then :func:`_roundtrip` checks its contents."""
    if _is_ours(spec) or issubclass(spec, (core.Sequence, core.SequenceOf, core.Choice, core.Any)):
        return False
    if issubclass(spec, core.GeneralizedTime):
        return True
    if issubclass(spec, core.AbstractString) and not issubclass(spec, _CHECKED_STRINGS):
        return True  # TeletexString & co.: asn1crypto's codec decides what is valid
    for klass in spec.__mro__:
        if klass.__module__ == core.__name__:
            return False
        if any(hook in vars(klass) for hook in _NATIVE_HOOKS):
            return True
    return False  # pragma: no cover - every asn1crypto class derives from core


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
