"""Minimal DER TLV helpers for the BPP's hand-built layers (tags and definite lengths)."""

from __future__ import annotations

from rspfed.errors import DecodeError

__all__ = ["children", "encode_length", "read_header", "tlv"]


def encode_length(n: int) -> bytes:
    """DER definite length octets for ``n`` (minimal form)."""
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: bytes, value: bytes) -> bytes:
    """``tag || L || value`` with ``tag`` given as its identifier octets."""
    return tag + encode_length(len(value)) + value


def read_header(
    data: bytes | bytearray | memoryview, offset: int, what: str
) -> tuple[bytes, int, int]:
    """Parse the identifier and length octets at ``offset``.

    Returns ``(tag_octets, offset_of_value, length)``.  Only DER is accepted:
    minimal tag and length encodings, definite lengths up to 3 length octets.
    The value itself is not required to be present (the caller checks).
    """
    end = len(data)
    if offset >= end:
        raise DecodeError("missing TLV", type_name=what, offset=offset)
    pos = offset
    first = data[pos]
    pos += 1
    if first & 0x1F == 0x1F:
        if pos >= end or data[pos] == 0x80:
            raise DecodeError("bad tag", type_name=what, offset=offset)
        while True:
            if pos >= end or pos - offset > 3:
                raise DecodeError("bad tag", type_name=what, offset=offset)
            octet = data[pos]
            pos += 1
            if not octet & 0x80:
                break
        if pos - offset == 2 and data[offset + 1] < 0x1F:
            raise DecodeError("tag not minimally encoded", type_name=what, offset=offset)
    tag = bytes(data[offset:pos])
    if pos >= end:
        raise DecodeError("missing length", type_name=what, offset=pos)
    first_len = data[pos]
    pos += 1
    if first_len < 0x80:
        return tag, pos, first_len
    n = first_len & 0x7F
    if n == 0 or n > 3:
        raise DecodeError("indefinite or oversized length", type_name=what, offset=pos - 1)
    if pos + n > end:
        raise DecodeError("truncated length", type_name=what, offset=pos - 1)
    length = int.from_bytes(data[pos : pos + n], "big")
    if length < 0x80 or data[pos] == 0:
        raise DecodeError("length not minimally encoded", type_name=what, offset=pos - 1)
    return tag, pos + n, length


def children(data: bytes, start: int, end: int, what: str) -> list[tuple[bytes, int, int, int]]:
    """The TLVs in ``data[start:end]``, in order, as ``(tag octets, TLV start, value
    start, value end)``.

    For reading components straight from DER that has passed the strict check
    (:func:`rspfed.asn1.decode`): the headers are read again with
    :func:`read_header`, so a value cut short still raises ``DecodeError``.
    """
    out = []
    while start < end:
        tag, at, length = read_header(data, start, what)
        out.append((tag, start, at, at + length))
        start = at + length
    return out
