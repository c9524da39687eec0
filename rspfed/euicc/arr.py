"""EF.ARR access rules evaluated at run time (ISO/IEC 7816-4 §9.3.3, TS 102 221 §9.2.4, §9.2.7).

A file's FCP refers to its access rule with tag ``8B`` ("reference to
expanded format"): the file id of an EF.ARR and a record number.  The record
holds access mode data objects (AM DO, tag ``80``: which operations) each
followed by the security condition data objects (SC DOs) that allow them:

- ``90`` always, ``97`` never;
- ``A4`` a control reference template naming a key (``83`` key reference,
  ``95`` usage qualifier): met when that PIN or key is verified in the
  current security environment;
- ``A0`` (OR) and ``AF`` (AND) templates of further SC DOs;
- anything else (secure messaging templates ``B4``/``B6``/``B8``, ...) is
  never met here.

Several SC DOs after one AM DO are alternatives (any one is enough).  The
first AM DO whose access mode byte has the operation's bit (TS 102 221
Table 9.x for EFs: b1 READ, b2 UPDATE, b4 DEACTIVATE, b5 ACTIVATE) decides;
an operation no AM DO names is not allowed, nor is anything when the record
cannot be parsed (TS 31.102 §4.2.55: if the card cannot access EF.ARR, access
is not granted).  Command-header AM DOs (``81``-``8F``) are skipped.

:func:`rule_allows` is pure: the caller says which key references are
satisfied (:class:`rspfed.euicc.uicc.Uicc` passes its verified PINs, and
application PINs that are disabled).  :func:`locate_arr` finds the record a
file's reference points at in a live file system, as TS 102 221 §9.2.7 has
it searched: from the file's DF up to the MF, and from an ADF to the MF.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from rspfed.errors import DecodeError
from rspfed.euicc.fs import FileNode, FileStructure, Operation

__all__ = ["AM_BITS", "NOT_FOUND", "locate_arr", "parse_arr_record", "rule_allows"]

AM_BITS = {
    Operation.READ: 0x01,
    Operation.UPDATE: 0x02,
    Operation.DEACTIVATE: 0x08,
    Operation.ACTIVATE: 0x10,
}
"""Access mode byte bits of the file operations (TS 102 221 §9.2.4, EFs)."""

NOT_FOUND = b""
"""What :func:`locate_arr` returns when the EF.ARR exists but the record does not."""

_Sc = tuple[int, bytes]
_Rule = tuple[tuple[int | None, tuple[_Sc, ...]], ...]


def _tlvs(data: bytes) -> list[_Sc]:
    """Simple TLVs (one-octet tags, lengths up to 81 xx), stopping at FF/00 padding."""
    out: list[_Sc] = []
    i = 0
    while i < len(data):
        tag = data[i]
        if tag in (0x00, 0xFF):
            if any(b != tag for b in data[i:]):
                raise DecodeError("data after padding", type_name="EF.ARR", offset=i)
            break
        if i + 1 >= len(data):
            raise DecodeError("truncated TLV", type_name="EF.ARR", offset=i)
        n, j = data[i + 1], i + 2
        if n == 0x81 and j < len(data):
            n, j = data[j], j + 1
        elif n > 0x7F:
            raise DecodeError("unsupported length form", type_name="EF.ARR", offset=i)
        if j + n > len(data):
            raise DecodeError("value runs past the end", type_name="EF.ARR", offset=i)
        out.append((tag, data[j : j + n]))
        i = j + n
    return out


@functools.lru_cache(maxsize=256)
def parse_arr_record(record: bytes) -> _Rule:
    """One expanded-format record as ``((access mode byte or None, (SC DO, ...)), ...)``.

    ``None`` stands for a command-header AM DO (``81``-``8F``).  Raises
    :class:`~rspfed.errors.DecodeError` on malformed TLVs, an AM DO that is
    not one octet, or SC DOs before the first AM DO.
    """
    rules: list[tuple[int | None, tuple[_Sc, ...]]] = []
    am: int | None = None
    conditions: list[_Sc] = []
    started = False
    for tag, value in _tlvs(bytes(record)):
        if 0x80 <= tag <= 0x8F:
            if started:
                rules.append((am, tuple(conditions)))
            started, conditions = True, []
            if tag == 0x80:
                if len(value) != 1:
                    raise DecodeError("access mode byte must be one octet", type_name="AM_DO")
                am = value[0]
            else:
                am = None
        elif not started:
            raise DecodeError("security condition before any access mode", type_name="EF.ARR")
        else:
            conditions.append((tag, value))
    if started:
        rules.append((am, tuple(conditions)))
    return tuple(rules)


def _met(tag: int, value: bytes, satisfied: Callable[[int], bool]) -> bool:
    if tag == 0x90:
        return True
    if tag == 0xA4:
        keys = [v for t, v in _tlvs(value) if t == 0x83]
        return len(keys) == 1 and len(keys[0]) == 1 and satisfied(keys[0][0])
    if tag in (0xA0, 0xAF):
        inner = _tlvs(value)
        if not inner:
            return False
        results = (_met(t, v, satisfied) for t, v in inner)
        return any(results) if tag == 0xA0 else all(results)
    return False  # 97 never; secure messaging and other templates are not supported


def rule_allows(record: bytes, operation: Operation, satisfied: Callable[[int], bool]) -> bool:
    """Whether the EF.ARR ``record`` allows ``operation`` when ``satisfied(key_ref)`` says so.

    Never raises: a record that cannot be parsed allows nothing.
    """
    bit = AM_BITS[operation]
    try:
        for am, conditions in parse_arr_record(bytes(record)):
            if am is not None and am & bit:
                return any(_met(tag, value, satisfied) for tag, value in conditions)
    except DecodeError:
        return False
    return False


def locate_arr(node: FileNode, mf: FileNode) -> bytes | None:
    """The EF.ARR record that ``node``'s FCP tag ``8B`` (file id + record number) refers to.

    The EF is looked for among the children of the file's DF (a DF's own
    reference starts at the DF itself), then of each parent up to the MF; an
    ADF's tree continues at ``mf``.  Returns ``None`` when the reference is
    not the one-record form (3 octets) or no such EF exists on that path
    (the file system then carries explicit rules only), and
    :data:`NOT_FOUND` when the EF exists but is not a record EF with that
    record.
    """
    reference = node.spec.arr
    if len(reference) != 3:
        return None
    fid, number = int.from_bytes(reference[:2], "big"), reference[2]
    df: FileNode | None = node if node.is_df else node.parent
    while df is not None:
        ef = df.by_fid.get(fid)
        if ef is not None:
            if not ef.structure.is_record or not 1 <= number <= len(ef.records):
                return NOT_FOUND
            return ef.records[number - 1]
        if df.parent is not None:
            df = df.parent
        elif df.structure is FileStructure.ADF:
            df = mf
        else:
            df = None
    return None
