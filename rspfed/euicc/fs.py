"""The UICC file system (ETSI TS 102 221 §8, ISO/IEC 7816-4 §7): MF, DFs, ADFs and EFs.

Two layers:

- :class:`FileSpec` / :class:`FileSystemSpec` are frozen ``attrs`` value
  types: a plain, complete description of every file (identifier, structure,
  SFI, contents, life cycle status, access rules).  The SAIP installer builds
  them from a profile package; the eUICC store persists them through
  :meth:`FileSystemSpec.to_dict` / :meth:`FileSystemSpec.from_dict`, a
  JSON-safe form (hex strings, ints, lists, dicts).
- :class:`FileSystem` is the live, mutable tree the card works on
  (:class:`FileNode` objects).  :meth:`FileSystem.snapshot` returns an
  immutable :class:`FileSystemSpec` of the current contents, so a copy is
  ``FileSystem(fs.snapshot())``.

**Access conditions.**  A file's ``arr`` (FCP tag ``8B``: EF.ARR file id and
record number) is evaluated by the card at run time against the EF.ARR in
the live file system (:mod:`rspfed.euicc.arr`).  Every file also carries an
explicit :class:`AccessRules` (one :class:`AccessCondition` per operation:
``ALW``, ``PIN1``, ``PIN2``, ``ADM1`` or ``NEV``), used when the file system
has no such EF.ARR (hand-built specs); :func:`access_rules_from_arr` maps one
expanded-format EF.ARR record to :class:`AccessRules`.

Records are numbered from 1.  In a cyclic EF record 1 is the most recently
written record (TS 102 221 §8.2.1).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from rspfed.errors import DecodeError, StorageError, UsageError

__all__ = [
    "ADF_FID",
    "MF_FID",
    "STANDARD_FILES",
    "AccessCondition",
    "AccessRules",
    "FileNode",
    "FileSpec",
    "FileStructure",
    "FileSystem",
    "FileSystemSpec",
    "Lcsi",
    "Operation",
    "StandardFile",
    "access_rules_from_arr",
    "as_bytes",
]

MF_FID = 0x3F00
"""The master file."""
ADF_FID = 0x7FFF
"""The reserved file id addressing the current ADF (TS 102 221 §8.3)."""

_RESERVED_FIDS = frozenset({0x3F00, 0x3FFF, 0x7FFF, 0xFFFF})


class FileStructure(enum.Enum):
    """File type and EF structure (TS 102 221 §8.2, §11.1.1.4.3)."""

    TRANSPARENT = "transparent"
    LINEAR_FIXED = "linear-fixed"
    CYCLIC = "cyclic"
    BER_TLV = "ber-tlv"
    DF = "df"
    ADF = "adf"

    @property
    def is_df(self) -> bool:
        """True for DFs and ADFs (and the MF, which is a DF)."""
        return self in (FileStructure.DF, FileStructure.ADF)

    @property
    def is_record(self) -> bool:
        """True for linear fixed and cyclic EFs."""
        return self in (FileStructure.LINEAR_FIXED, FileStructure.CYCLIC)


class Lcsi(enum.IntEnum):
    """Life cycle status integer (ISO/IEC 7816-4 Table 13, TS 102 221 §11.1.1.4.9)."""

    CREATION = 0x01
    INITIALISATION = 0x03
    OPERATIONAL_DEACTIVATED = 0x04
    OPERATIONAL_ACTIVATED = 0x05
    TERMINATED = 0x0C


class AccessCondition(enum.Enum):
    """A simplified access condition: always, a PIN, the ADM1 key, or never."""

    ALW = "ALW"
    PIN1 = "PIN1"
    PIN2 = "PIN2"
    ADM1 = "ADM1"
    NEV = "NEV"


class Operation(enum.Enum):
    """The file operations that have an access condition."""

    READ = "read"
    UPDATE = "update"
    ACTIVATE = "activate"
    DEACTIVATE = "deactivate"


@attrs.frozen
class AccessRules:
    """The access condition of each :class:`Operation` on one file.

    The default is the usual one for operator data: read after PIN1, update,
    activate and deactivate with ADM1.
    """

    read: AccessCondition = AccessCondition.PIN1
    update: AccessCondition = AccessCondition.ADM1
    activate: AccessCondition = AccessCondition.ADM1
    deactivate: AccessCondition = AccessCondition.ADM1

    def condition(self, operation: Operation) -> AccessCondition:
        """The condition for ``operation``."""
        result: AccessCondition = getattr(self, operation.value)
        return result

    def to_dict(self) -> dict[str, str]:
        """JSON-safe form: ``{"read": "PIN1", ...}``."""
        return {op.value: self.condition(op).value for op in Operation}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AccessRules:
        """Inverse of :meth:`to_dict`; :class:`~rspfed.errors.StorageError` on bad input."""
        try:
            return cls(**{op.value: AccessCondition(data[op.value]) for op in Operation})
        except (KeyError, ValueError, TypeError) as exc:
            raise StorageError("malformed access rules") from exc


def as_bytes(value: bytes | bytearray | memoryview) -> bytes:
    """Copy a bytes-like value to ``bytes``; :class:`~rspfed.errors.UsageError` otherwise."""
    if not isinstance(value, bytes | bytearray | memoryview):
        raise UsageError(f"expected bytes, got {type(value).__name__}")
    return bytes(value)


def _optional_bytes(value: bytes | bytearray | memoryview | None) -> bytes | None:
    return None if value is None else as_bytes(value)


def _byte_strings(values: Iterable[bytes | bytearray | memoryview]) -> tuple[bytes, ...]:
    return tuple(as_bytes(v) for v in values)


def _ints(values: Iterable[int]) -> tuple[int, ...]:
    return tuple(values)


def _files(values: Iterable[FileSpec]) -> tuple[FileSpec, ...]:
    return tuple(values)


def _check_fid(fid: int) -> None:
    if not 0 <= fid <= 0xFFFF:
        raise UsageError("file id must be two octets")


@attrs.frozen
class FileSpec:
    """One file, its contents and, for a DF/ADF, its children.

    ``content`` holds a transparent or BER-TLV EF's bytes (its size is
    ``len(content)``); ``records`` holds a record EF's records (all of the
    same length, 1 to 255 octets, 1 to 254 records).  ``sfi`` (1 to 30) is the
    short file identifier.  ``aid`` is the application identifier of an ADF
    (5 to 16 octets).  ``arr`` is the value of FCP tag ``8B`` (EF.ARR file id
    and record number) reported as is.  ``pin_refs`` (DF/ADF) lists the key
    references reported in the PIN status template (FCP tag ``C6``).
    """

    fid: int
    structure: FileStructure
    name: str = ""
    sfi: int | None = None
    content: bytes = attrs.field(default=b"", converter=as_bytes)
    records: tuple[bytes, ...] = attrs.field(default=(), converter=_byte_strings)
    lcsi: Lcsi = Lcsi.OPERATIONAL_ACTIVATED
    access: AccessRules = AccessRules()
    arr: bytes = attrs.field(default=b"\x2f\x06\x01", converter=as_bytes)
    shareable: bool = True
    aid: bytes | None = attrs.field(default=None, converter=_optional_bytes)
    children: tuple[FileSpec, ...] = attrs.field(default=(), converter=_files)
    pin_refs: tuple[int, ...] = attrs.field(default=(), converter=_ints)

    def __attrs_post_init__(self) -> None:
        _check_fid(self.fid)
        s = self.structure
        if self.sfi is not None and (s.is_df or not 1 <= self.sfi <= 30):
            raise UsageError(f"{self.fid:04X}: SFI must be 1 to 30, and only on an EF")
        if s.is_record:
            if not 1 <= len(self.records) <= 254:
                raise UsageError(f"{self.fid:04X}: a record EF needs 1 to 254 records")
            length = len(self.records[0])
            if not 1 <= length <= 255 or any(len(r) != length for r in self.records):
                raise UsageError(f"{self.fid:04X}: records must all have one length, 1 to 255")
            if self.content:
                raise UsageError(f"{self.fid:04X}: a record EF has records, not content")
        elif self.records:
            raise UsageError(f"{self.fid:04X}: only record EFs have records")
        if s.is_df:
            if self.content:
                raise UsageError(f"{self.fid:04X}: a DF has no content")
        elif self.children or self.pin_refs:
            raise UsageError(f"{self.fid:04X}: an EF has no children or PIN references")
        if s is FileStructure.ADF:
            if self.aid is None or not 5 <= len(self.aid) <= 16:
                raise UsageError("an ADF needs an AID of 5 to 16 octets")
        elif self.aid is not None:
            raise UsageError(f"{self.fid:04X}: only an ADF has an AID")
        if len(self.content) > 0xFFFF:
            raise UsageError(f"{self.fid:04X}: EF larger than 65535 octets")
        seen: set[int] = set()
        sfis: set[int] = set()
        for child in self.children:
            if child.structure is FileStructure.ADF:
                raise UsageError("an ADF is not a child of a DF")
            if child.fid in seen or child.fid in _RESERVED_FIDS:
                raise UsageError(f"{child.fid:04X}: duplicate or reserved file id")
            seen.add(child.fid)
            if child.sfi is not None:
                if child.sfi in sfis:
                    raise UsageError(f"SFI {child.sfi} used twice in {self.fid:04X}")
                sfis.add(child.sfi)
        for ref in self.pin_refs:
            if not 0 <= ref <= 0xFF:
                raise UsageError("PIN key references are one octet")

    @property
    def record_length(self) -> int:
        """Record length of a record EF (0 otherwise)."""
        return len(self.records[0]) if self.records else 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (hex strings for bytes; children nested)."""
        out: dict[str, Any] = {
            "fid": f"{self.fid:04X}",
            "structure": self.structure.value,
            "name": self.name,
            "lcsi": int(self.lcsi),
            "access": self.access.to_dict(),
            "arr": self.arr.hex(),
            "shareable": self.shareable,
        }
        if self.sfi is not None:
            out["sfi"] = self.sfi
        if self.structure.is_record:
            out["records"] = [r.hex() for r in self.records]
        elif not self.structure.is_df:
            out["content"] = self.content.hex()
        if self.aid is not None:
            out["aid"] = self.aid.hex()
        if self.structure.is_df:
            out["children"] = [c.to_dict() for c in self.children]
            out["pin_refs"] = list(self.pin_refs)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileSpec:
        """Inverse of :meth:`to_dict`; :class:`~rspfed.errors.StorageError` on bad input."""
        try:
            aid = data.get("aid")
            return cls(
                fid=int(data["fid"], 16),
                structure=FileStructure(data["structure"]),
                name=str(data.get("name", "")),
                sfi=data.get("sfi"),
                content=bytes.fromhex(data.get("content", "")),
                records=tuple(bytes.fromhex(r) for r in data.get("records", ())),
                lcsi=Lcsi(data.get("lcsi", Lcsi.OPERATIONAL_ACTIVATED)),
                access=AccessRules.from_dict(data["access"]),
                arr=bytes.fromhex(data.get("arr", "")),
                shareable=bool(data.get("shareable", True)),
                aid=None if aid is None else bytes.fromhex(aid),
                children=tuple(cls.from_dict(c) for c in data.get("children", ())),
                pin_refs=tuple(int(r) for r in data.get("pin_refs", ())),
            )
        except StorageError:
            raise
        except (KeyError, ValueError, TypeError, AttributeError, UsageError) as exc:
            raise StorageError(f"malformed file description: {exc}") from exc


@attrs.frozen
class FileSystemSpec:
    """A whole file system: the MF tree and the ADFs (selected by AID, not under the MF)."""

    mf: FileSpec
    adfs: tuple[FileSpec, ...] = attrs.field(default=(), converter=_files)

    def __attrs_post_init__(self) -> None:
        if self.mf.fid != MF_FID or self.mf.structure is not FileStructure.DF:
            raise UsageError("the MF is a DF with file id 3F00")
        aids: set[bytes] = set()
        for adf in self.adfs:
            if adf.structure is not FileStructure.ADF or adf.aid is None:
                raise UsageError("adfs holds ADFs only")
            if adf.aid in aids:
                raise UsageError("two ADFs with the same AID")
            aids.add(adf.aid)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: ``{"mf": ..., "adfs": [...]}``."""
        return {"mf": self.mf.to_dict(), "adfs": [a.to_dict() for a in self.adfs]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileSystemSpec:
        """Inverse of :meth:`to_dict`; :class:`~rspfed.errors.StorageError` on bad input."""
        try:
            return cls(
                FileSpec.from_dict(data["mf"]),
                tuple(FileSpec.from_dict(a) for a in data.get("adfs", ())),
            )
        except StorageError:
            raise
        except (KeyError, TypeError, AttributeError, UsageError) as exc:
            raise StorageError(f"malformed file system description: {exc}") from exc


class FileNode:
    """A live file: its description plus mutable contents, parent and children.

    Created by :class:`FileSystem`; the card updates ``content``/``records``
    in place.  ``spec`` keeps the static attributes.
    """

    __slots__ = (
        "_snap", "by_fid", "by_sfi", "children", "content", "lcsi", "parent", "records", "spec",
    )  # fmt: skip

    def __init__(self, spec: FileSpec, parent: FileNode | None) -> None:
        self.spec = spec
        self._snap = spec  # the last snapshot (reused while nothing changed)
        self.parent = parent
        self.content = bytearray(spec.content)
        self.records: list[bytes] = list(spec.records)
        self.lcsi = spec.lcsi
        self.children = [FileNode(c, self) for c in spec.children]
        self.by_fid = {c.fid: c for c in self.children}
        self.by_sfi = {c.spec.sfi: c for c in self.children if c.spec.sfi is not None}

    @property
    def fid(self) -> int:
        """The file identifier."""
        return self.spec.fid

    @property
    def structure(self) -> FileStructure:
        """The file structure."""
        return self.spec.structure

    @property
    def is_df(self) -> bool:
        """True for the MF, DFs and ADFs."""
        return self.spec.structure.is_df

    @property
    def size(self) -> int:
        """File size: content length, or record length × number of records."""
        if self.spec.structure.is_record:
            return self.spec.record_length * len(self.records)
        return len(self.content)

    @property
    def adf(self) -> FileNode | None:
        """The ADF this file lives in (itself for an ADF), ``None`` under the MF."""
        node: FileNode | None = self
        while node is not None:
            if node.structure is FileStructure.ADF:
                return node
            node = node.parent
        return None

    def df(self) -> FileNode:
        """The DF holding this file (itself for a DF)."""
        if self.is_df or self.parent is None:
            return self
        return self.parent

    def path(self) -> tuple[int, ...]:
        """File ids from the MF (or the ADF) down to this file."""
        ids: list[int] = []
        node: FileNode | None = self
        while node is not None:
            ids.append(node.fid)
            node = node.parent
        return tuple(reversed(ids))

    def walk(self) -> Iterator[FileNode]:
        """This node and every descendant, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def snapshot(self) -> FileSpec:
        """An immutable :class:`FileSpec` with the current contents.

        A file whose contents, life cycle status and children are unchanged
        since the last snapshot returns that same object, so a snapshot of a
        file system where little changed is cheap, and comparing it with the
        previous one (``==``) skips the unchanged subtrees by identity.
        """
        last = self._snap
        children = tuple([c.snapshot() for c in self.children])
        records = tuple(self.records)
        if (
            self.lcsi == last.lcsi
            and self.content == last.content
            and records == last.records
            and len(children) == len(last.children)
            and all(a is b for a, b in zip(children, last.children, strict=True))
        ):
            return last
        snap = attrs.evolve(
            self.spec, content=bytes(self.content), records=records, lcsi=self.lcsi,
            children=children,
        )  # fmt: skip
        self._snap = snap
        return snap

    def __repr__(self) -> str:
        return f"FileNode({self.fid:04X}, {self.structure.value}, {self.spec.name!r})"


class FileSystem:
    """The live file system of one card (or one enabled profile)."""

    __slots__ = ("adfs", "mf")

    def __init__(self, spec: FileSystemSpec) -> None:
        self.mf = FileNode(spec.mf, None)
        self.adfs = [FileNode(a, None) for a in spec.adfs]

    def snapshot(self) -> FileSystemSpec:
        """An immutable description of the current state (contents included)."""
        return FileSystemSpec(self.mf.snapshot(), tuple(a.snapshot() for a in self.adfs))

    def find_adf(self, aid_prefix: bytes, after: FileNode | None = None) -> FileNode | None:
        """The first ADF whose AID starts with ``aid_prefix`` (after ``after``, for "next")."""
        started = after is None
        for adf in self.adfs:
            if not started:
                started = adf is after
                continue
            assert adf.spec.aid is not None
            if adf.spec.aid.startswith(aid_prefix):
                return adf
        return None

    def select_fid(
        self, current_df: FileNode, fid: int, current_adf: FileNode | None = None
    ) -> FileNode | None:
        """Select by file id from ``current_df`` (TS 102 221 §8.4.1).

        Candidates: the MF, the current ADF (``7FFF``, ``current_adf`` or
        else the ADF holding ``current_df``), the current DF itself, its
        children, its parent, and the parent's DF children.
        """
        if fid == MF_FID:
            return self.mf
        if fid == ADF_FID:
            return current_adf or current_df.adf
        if fid == current_df.fid:
            return current_df
        child = current_df.by_fid.get(fid)
        if child is not None:
            return child
        parent = current_df.parent
        if parent is not None:
            if fid == parent.fid:
                return parent
            sibling = parent.by_fid.get(fid)
            if sibling is not None and sibling.is_df:
                return sibling
        return None

    def select_path(
        self, start: FileNode, path: bytes, current_adf: FileNode | None = None
    ) -> FileNode | None:
        """Follow a path of file ids (2 octets each) from ``start``.

        The path does not repeat ``start``'s own id (a path from the MF omits
        ``3F00``); a leading ``7FFF`` means ``current_adf`` (the application
        selected on the channel).
        """
        if not path or len(path) % 2:
            return None
        node: FileNode | None = start
        for i in range(0, len(path), 2):
            if node is None or not node.is_df:
                return None
            fid = int.from_bytes(path[i : i + 2], "big")
            node = current_adf if fid == ADF_FID and i == 0 else node.by_fid.get(fid)
        return node


@attrs.frozen
class StandardFile:
    """A well-known EF: file id, 3GPP/ETSI name, where it lives, its usual SFI."""

    fid: int
    name: str
    location: str
    sfi: int | None = None


STANDARD_FILES: tuple[StandardFile, ...] = (
    StandardFile(0x2FE2, "EF.ICCID", "MF", 0x02),
    StandardFile(0x2F00, "EF.DIR", "MF", 0x1E),
    StandardFile(0x2F05, "EF.PL", "MF", 0x05),
    StandardFile(0x2F06, "EF.ARR", "MF", 0x06),
    StandardFile(0x2F08, "EF.UMPC", "MF", 0x08),
    StandardFile(0x6F05, "EF.LI", "ADF.USIM", 0x02),
    StandardFile(0x6F06, "EF.ARR", "ADF.USIM", 0x17),
    StandardFile(0x6F07, "EF.IMSI", "ADF.USIM", 0x07),
    StandardFile(0x6F08, "EF.Keys", "ADF.USIM", 0x08),
    StandardFile(0x6F09, "EF.KeysPS", "ADF.USIM", 0x09),
    StandardFile(0x6F31, "EF.HPPLMN", "ADF.USIM", 0x12),
    StandardFile(0x6F38, "EF.UST", "ADF.USIM", 0x04),
    StandardFile(0x6F3B, "EF.FDN", "ADF.USIM", None),
    StandardFile(0x6F3E, "EF.GID1", "ADF.USIM", None),
    StandardFile(0x6F40, "EF.MSISDN", "ADF.USIM", None),
    StandardFile(0x6F46, "EF.SPN", "ADF.USIM", None),
    StandardFile(0x6F56, "EF.EST", "ADF.USIM", 0x05),
    StandardFile(0x6F5B, "EF.START-HFN", "ADF.USIM", 0x0F),
    StandardFile(0x6F5C, "EF.THRESHOLD", "ADF.USIM", 0x10),
    StandardFile(0x6F60, "EF.PLMNwAcT", "ADF.USIM", 0x0A),
    StandardFile(0x6F61, "EF.OPLMNwAcT", "ADF.USIM", 0x11),
    StandardFile(0x6F62, "EF.HPLMNwAcT", "ADF.USIM", 0x13),
    StandardFile(0x6F73, "EF.PSLOCI", "ADF.USIM", 0x0C),
    StandardFile(0x6F78, "EF.ACC", "ADF.USIM", 0x06),
    StandardFile(0x6F7B, "EF.FPLMN", "ADF.USIM", 0x0D),
    StandardFile(0x6F7E, "EF.LOCI", "ADF.USIM", 0x0B),
    StandardFile(0x6FAD, "EF.AD", "ADF.USIM", 0x03),
    StandardFile(0x6FB7, "EF.ECC", "ADF.USIM", 0x01),
    StandardFile(0x6FC4, "EF.NETPAR", "ADF.USIM", None),
    StandardFile(0x6FE3, "EF.EPSLOCI", "ADF.USIM", 0x1E),
    StandardFile(0x6FE4, "EF.EPSNSC", "ADF.USIM", 0x18),
)
"""Common EFs with their TS 102 221 / TS 31.102 names and SFIs (the SFIs per TS 31.102 §4.2)."""


# -- EF.ARR records (expanded format) to AccessRules ---------------------------------

_AM_BITS = {
    Operation.READ: 0x01,
    Operation.UPDATE: 0x02,
    Operation.DEACTIVATE: 0x08,
    Operation.ACTIVATE: 0x10,
}
_STRENGTH = [
    AccessCondition.ALW,
    AccessCondition.PIN1,
    AccessCondition.PIN2,
    AccessCondition.ADM1,
    AccessCondition.NEV,
]


def _key_condition(key_ref: int) -> AccessCondition:
    if key_ref in (0x01, 0x11) or 0x02 <= key_ref <= 0x08:
        return AccessCondition.PIN1
    if 0x81 <= key_ref <= 0x88:
        return AccessCondition.PIN2
    if 0x0A <= key_ref <= 0x0E:
        return AccessCondition.ADM1
    return AccessCondition.NEV


def _tlvs(data: bytes, name: str) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(data):
        tag = data[i]
        if tag in (0x00, 0xFF):  # padding up to the record length
            if any(b != tag for b in data[i:]):
                raise DecodeError("data after padding", type_name=name, offset=i)
            break
        if i + 1 >= len(data):
            raise DecodeError("truncated TLV", type_name=name, offset=i)
        n, j = data[i + 1], i + 2
        if n == 0x81:
            if j >= len(data):
                raise DecodeError("truncated length", type_name=name, offset=i)
            n, j = data[j], j + 1
        elif n > 0x7F:
            raise DecodeError("unsupported length form", type_name=name, offset=i)
        if j + n > len(data):
            raise DecodeError("value runs past the end", type_name=name, offset=i)
        out.append((tag, data[j : j + n]))
        i = j + n
    return out


def _sc_condition(tag: int, value: bytes) -> AccessCondition:
    if tag == 0x90:
        return AccessCondition.ALW
    if tag == 0xA4:  # control reference template: 83 key reference (95 usage qualifier ignored)
        refs = [v for t, v in _tlvs(value, "CRT") if t == 0x83]
        if len(refs) != 1 or len(refs[0]) != 1:
            raise DecodeError("CRT without one key reference", type_name="SC_DO")
        return _key_condition(refs[0][0])
    if tag in (0xA0, 0xAF):  # OR / AND templates
        inner = [_STRENGTH.index(_sc_condition(t, v)) for t, v in _tlvs(value, "SC_DO")]
        if not inner:
            raise DecodeError("empty OR/AND template", type_name="SC_DO")
        return _STRENGTH[min(inner) if tag == 0xA0 else max(inner)]
    return AccessCondition.NEV  # 97 (never) and anything this model does not know


def access_rules_from_arr(record: bytes) -> AccessRules:
    """Approximate one expanded-format EF.ARR record (TS 102 221 §9.2.4) as :class:`AccessRules`.

    Each access mode DO (tag ``80``: b1 READ, b2 UPDATE, b4 DEACTIVATE, b5
    ACTIVATE) applies the security condition DOs that follow it: ``90``
    always, ``97`` never, ``A4`` a key reference (``01``, ``11`` and the
    other application PINs ``02``-``08`` count as PIN1, ``81``-``88`` as PIN2,
    ``0A``-``0E`` as ADM1, anything else never), ``A0``/``AF`` OR/AND
    templates (the weakest/strongest member, in the order ALW < PIN1 < PIN2 <
    ADM1 < NEV).  Several SC DOs after one AM DO are alternatives (OR).
    Command-header AM DOs (``84``) are skipped.  An operation that no AM DO
    mentions is never allowed.  Malformed TLVs raise
    :class:`~rspfed.errors.DecodeError`.
    """
    found: dict[Operation, AccessCondition] = {}
    am: int | None = None
    current: list[AccessCondition] = []

    def flush() -> None:
        if am is None:
            return
        if not current:
            raise DecodeError("access mode without a security condition", type_name="EF.ARR")
        condition = _STRENGTH[min(_STRENGTH.index(c) for c in current)]
        for op, bit in _AM_BITS.items():
            if am & bit and op not in found:
                found[op] = condition

    for tag, value in _tlvs(bytes(record), "EF.ARR"):
        if 0x80 <= tag <= 0x8F:
            flush()
            current = []
            if tag == 0x80:
                if len(value) != 1:
                    raise DecodeError("access mode byte must be one octet", type_name="AM_DO")
                am = value[0]
            else:
                am = None  # a command-specific AM DO: its conditions are skipped
        else:
            current.append(_sc_condition(tag, value))
    flush()
    never = AccessCondition.NEV
    return AccessRules(
        read=found.get(Operation.READ, never),
        update=found.get(Operation.UPDATE, never),
        activate=found.get(Operation.ACTIVATE, never),
        deactivate=found.get(Operation.DEACTIVATE, never),
    )
