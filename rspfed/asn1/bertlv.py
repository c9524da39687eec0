"""ISO/IEC 7816-4 BER-TLV for APDU data fields (strict, small).

A TLV is a :class:`Tlv` ``(tag, value)``: ``tag`` is the integer of the tag's
identifier octets as written in the specifications (``0x5A``, ``0x5F37``,
``0xBF2D``), ``value`` the value octets.  Rules (errors are
:class:`rspfed.errors.DecodeError` with the byte offset):

* tags of 1 to 3 octets, minimal (the long form only for numbers of 31 and
  above, no leading ``0x80`` octet);
* definite lengths of 1 to 3 octets (``0x00``-``0x7F``, ``0x81 xx`` with
  ``xx >= 0x80``, ``0x82 xxxx`` with ``xxxx >= 0x100``): no indefinite
  length, no non-minimal length;
* no padding octets (``00``/``FF``) between TLVs, no truncated data.

Nested lookup: :func:`find` (``find(data, 0xBF2D, 0xE3, 0x5A)``) and
:meth:`Tlv.children`.  Encoding: :func:`encode_tlv`, :func:`encode`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import attrs

from rspfed.errors import DecodeError, EncodeError

__all__ = [
    "MAX_LENGTH",
    "Tlv",
    "encode",
    "encode_length",
    "encode_tag",
    "encode_tlv",
    "find",
    "find_all",
    "is_constructed",
    "parse",
    "parse_one",
    "split_top_level",
]

MAX_LENGTH = 0xFFFF
"""Largest value length (three length octets: ``82 FFFF``)."""

_TYPE = "BER-TLV"


def is_constructed(tag: int) -> bool:
    """Whether ``tag`` (an integer of its octets) has the constructed bit (b6, first octet)."""
    first = tag
    while first > 0xFF:
        first >>= 8
    return bool(first & 0x20)


@attrs.frozen
class Tlv:
    """One BER-TLV: ``tag`` (integer of its octets) and ``value`` octets.

    ``offset`` (ignored in comparisons) is where the TLV started in the parsed
    input; errors in nested parses are reported relative to the same input.
    """

    tag: int
    value: bytes
    offset: int = attrs.field(default=0, eq=False, repr=False)

    @property
    def constructed(self) -> bool:
        """Whether the tag marks a constructed TLV (its value is more TLVs)."""
        return is_constructed(self.tag)

    def children(self) -> list[Tlv]:
        """Parse the value as a sequence of TLVs (DecodeError if the tag is primitive)."""
        if not self.constructed:
            raise DecodeError(
                f"tag {self.tag:X} is primitive, it has no nested TLVs",
                type_name=_TYPE,
                offset=self.offset,
            )
        return parse(self.value, offset=self.offset + _header_length(self.tag, len(self.value)))

    def find(self, *path: int) -> Tlv | None:
        """The first nested TLV along ``path`` of tags, or None."""
        return find(self.children(), *path)

    def encode(self) -> bytes:
        """This TLV's encoding."""
        return encode_tlv(self.tag, self.value)


def _header_length(tag: int, length: int) -> int:
    return len(encode_tag(tag)) + len(encode_length(length))


def _read(data: bytes, pos: int, base: int) -> tuple[int, int, int]:
    """Read one header at ``pos``: ``(tag, value_start, value_end)``."""
    end = len(data)
    start = pos
    first = data[pos]
    if first in (0x00, 0xFF):
        raise DecodeError(
            f"invalid tag octet {first:02X} (padding is not accepted)",
            type_name=_TYPE,
            offset=base + pos,
        )
    tag = first
    pos += 1
    if first & 0x1F == 0x1F:
        count = 0
        number = 0
        while True:
            if pos >= end:
                raise DecodeError("truncated tag", type_name=_TYPE, offset=base + start)
            octet = data[pos]
            if count == 0 and octet == 0x80:
                raise DecodeError(
                    "non-minimal tag (leading 80 octet)", type_name=_TYPE, offset=base + start
                )
            tag = (tag << 8) | octet
            number = (number << 7) | (octet & 0x7F)
            pos += 1
            count += 1
            if not octet & 0x80:
                break
            if count >= 2:
                raise DecodeError(
                    "tag longer than 3 octets", type_name=_TYPE, offset=base + start
                )
        if number < 31:
            raise DecodeError(
                "non-minimal tag (long form for a number below 31)",
                type_name=_TYPE,
                offset=base + start,
            )
    if pos >= end:
        raise DecodeError("truncated: length missing", type_name=_TYPE, offset=base + start)
    first_len = data[pos]
    pos += 1
    if first_len < 0x80:
        length = first_len
    elif first_len == 0x81:
        if pos + 1 > end:
            raise DecodeError("truncated length", type_name=_TYPE, offset=base + start)
        length = data[pos]
        pos += 1
        if length < 0x80:
            raise DecodeError("non-minimal length", type_name=_TYPE, offset=base + start)
    elif first_len == 0x82:
        if pos + 2 > end:
            raise DecodeError("truncated length", type_name=_TYPE, offset=base + start)
        length = (data[pos] << 8) | data[pos + 1]
        pos += 2
        if length < 0x100:
            raise DecodeError("non-minimal length", type_name=_TYPE, offset=base + start)
    elif first_len == 0x80:
        raise DecodeError("indefinite length", type_name=_TYPE, offset=base + start)
    else:
        raise DecodeError(
            f"length field {first_len:02X} not supported (1 to 3 octets)",
            type_name=_TYPE,
            offset=base + start,
        )
    if pos + length > end:
        raise DecodeError(
            f"value of {length} octets runs past the end of the data",
            type_name=_TYPE,
            offset=base + start,
        )
    return tag, pos, pos + length


def _iter(data: bytes, offset: int) -> Iterator[tuple[int, int, int, int]]:
    pos = 0
    while pos < len(data):
        tag, value_start, value_end = _read(data, pos, offset)
        yield tag, pos, value_start, value_end
        pos = value_end


def parse(data: bytes | bytearray | memoryview, *, offset: int = 0) -> list[Tlv]:
    """Parse a sequence of TLVs (empty data gives an empty list).

    ``offset`` is added to the offsets in errors and in :attr:`Tlv.offset`.
    """
    raw = bytes(data)
    return [
        Tlv(tag, raw[value_start:value_end], offset + start)
        for tag, start, value_start, value_end in _iter(raw, offset)
    ]


def parse_one(data: bytes | bytearray | memoryview, *, offset: int = 0) -> Tlv:
    """Parse exactly one TLV (DecodeError on nothing or trailing bytes)."""
    raw = bytes(data)
    if not raw:
        raise DecodeError("empty data, one TLV expected", type_name=_TYPE, offset=offset)
    tag, value_start, value_end = _read(raw, 0, offset)
    if value_end != len(raw):
        raise DecodeError(
            f"{len(raw) - value_end} trailing bytes after the TLV",
            type_name=_TYPE,
            offset=offset + value_end,
        )
    return Tlv(tag, raw[value_start:value_end], offset)


def split_top_level(data: bytes | bytearray | memoryview) -> list[bytes]:
    """The complete encodings (header and value) of the top-level TLVs in ``data``."""
    raw = bytes(data)
    return [raw[start:value_end] for _, start, _, value_end in _iter(raw, 0)]


def find_all(
    items: bytes | Iterable[Tlv], *path: int
) -> list[Tlv]:
    """Every TLV reached by following ``path`` (tags, outermost first) from ``items``.

    ``items`` is data to parse or already parsed TLVs; intermediate TLVs along
    the path must be constructed.
    """
    if not path:
        raise EncodeError("find needs at least one tag")
    current = parse(items) if isinstance(items, (bytes, bytearray, memoryview)) else list(items)
    for depth, tag in enumerate(path):
        matches = [tlv for tlv in current if tlv.tag == tag]
        if depth == len(path) - 1:
            return matches
        current = [child for tlv in matches for child in tlv.children()]
    return []  # pragma: no cover - the loop returns


def find(items: bytes | Iterable[Tlv], *path: int) -> Tlv | None:
    """The first TLV reached by following ``path`` from ``items``, or None."""
    found = find_all(items, *path)
    return found[0] if found else None


def encode_tag(tag: int) -> bytes:
    """The identifier octets of ``tag`` (checked to be a valid 1-3 octet tag)."""
    if tag <= 0 or tag > 0xFFFFFF:
        raise EncodeError(f"tag {tag:#x} is not a 1 to 3 octet BER-TLV tag", type_name=_TYPE)
    octets = tag.to_bytes((tag.bit_length() + 7) // 8, "big")
    try:
        parsed, value_start, _ = _read(octets + b"\x00", 0, 0)
    except DecodeError as exc:
        raise EncodeError(f"tag {tag:#x} is not valid: {exc}", type_name=_TYPE) from None
    if parsed != tag or value_start != len(octets) + 1:
        raise EncodeError(f"tag {tag:#x} is not a valid BER-TLV tag", type_name=_TYPE)
    return octets


def encode_length(length: int) -> bytes:
    """Minimal definite length octets (1 to 3)."""
    if length < 0 or length > MAX_LENGTH:
        raise EncodeError(f"length {length} outside 0..{MAX_LENGTH}", type_name=_TYPE)
    if length < 0x80:
        return bytes([length])
    if length < 0x100:
        return bytes([0x81, length])
    return bytes([0x82, length >> 8, length & 0xFF])


def encode_tlv(tag: int, value: bytes | bytearray | memoryview) -> bytes:
    """One TLV."""
    raw = bytes(value)
    return encode_tag(tag) + encode_length(len(raw)) + raw


def encode(items: Iterable[Tlv | tuple[int, bytes]]) -> bytes:
    """A sequence of TLVs (:class:`Tlv` or ``(tag, value)`` pairs)."""
    out = bytearray()
    for item in items:
        if isinstance(item, Tlv):
            out += encode_tlv(item.tag, item.value)
        else:
            tag, value = item
            out += encode_tlv(tag, value)
    return bytes(out)
