"""Install a SAIP profile package into the software eUICC's file system (sans-IO).

:func:`install_package` (DER) / :func:`install_elements` (decoded elements)
turn an unprotected profile package into an :class:`InstalledProfile`: the
file system (:class:`rspfed.euicc.fs.FileSystemSpec`), the PINs with their
PUKs (:class:`rspfed.euicc.uicc.PinSpec`) and the AKA parameters of each
USIM/ISIM (:class:`rspfed.euicc.usim.AkaSpec`).
:meth:`InstalledProfile.uicc_state` is the card state the UICC front end
runs; :func:`load_profile` has the signature of
:data:`rspfed.euicc.euicc.ProfileLoader`.

**Model** (SAIP v2.3/v3.x §8.3, Annex A; see ``docs/saip.md``):

- Elements are processed in package order.  A file-system element
  (``mf``, ``usim``, ``telecom``, ...) names its template by ``templateID``
  (:mod:`rspfed.saip.templates`); each ``File`` it carries is created with
  the template's row, overridden by the element's ``fileDescriptor``
  (``Fcp``), then filled: the template default (or the Fcp's
  ``fillPattern``/``repeatPattern``, per record for record EFs), then each
  ``fillFileContent`` written at the current position, ``fillFileOffset``
  skipping octets.  Files of a "created by default" template that the
  element does not name are created from the template alone;
  ``doNotCreate`` suppresses a file.
- ``genericFileManagement``: ``filePath`` selects a DF (or an EF to fill),
  from the MF, a leading ADF temporary file id selecting that ADF;
  ``createFCP`` creates a file there; fills apply to the last created or
  selected EF.  A file without ``shortEFID`` created this way gets no SFI.
- Link files (``linkPath``) become independent copies of their target
  (the software file system has no links).
- ``pinCodes``/``pukCodes``: PINs are joined with their PUK
  (``unblockingPINReference``); ``pinAttributes`` b1 set = PIN enabled;
  attempts from the high (max) and low (left) nibbles.  The card keeps one
  PIN per key reference: a later element defining the same reference again
  (``secondPINAppl1`` of USIM and ISIM) must agree with the first.
- ``akaParameter`` applies to the NAA (USIM/ISIM) created last before it.
  MILENAGE (standard constants only) and the TS 34.108 test algorithm are
  supported; TUAK and ``mappingParameter`` raise
  :class:`~rspfed.errors.ProtocolError`.  For the test algorithm SQN checking
  is off (SAIP: the SQN parameters are ignored).
- CSIM (``csim``, ``opt-csim``) is installed as files (ADF.CSIM and its
  EFs); ``cdmaParameter`` (CAVE keys) is not: the card has no CDMA
  authentication.
- Not installed, listed in :attr:`InstalledProfile.skipped`:
  ``cdmaParameter``, security domains, RFM, applications, and any element
  kind the software eUICC does not run.

Errors: malformed content raises :class:`~rspfed.errors.DecodeError`,
unsupported features :class:`~rspfed.errors.ProtocolError`; the message
starts with ``profile element <identification> (<kind>)``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NoReturn

import attrs

from rspfed import asn1
from rspfed.asn1 import saip
from rspfed.asn1._strict import check, iter_tlvs, outer_ids
from rspfed.errors import DecodeError, EncodeError, ProtocolError, UsageError
from rspfed.euicc.fs import (
    MF_FID,
    AccessRules,
    FileSpec,
    FileStructure,
    FileSystemSpec,
    Lcsi,
    access_rules_from_arr,
)
from rspfed.euicc.uicc import PinSpec, UiccState
from rspfed.euicc.usim import DEFAULT_SQN_LIMIT, AkaAlgorithmId, AkaSpec
from rspfed.saip.identifiers import decode_iccid
from rspfed.saip.templates import FileKind, ProfileTemplate, TemplateFile, template_for

__all__ = ["InstalledProfile", "install_elements", "install_package", "load_profile"]

_SKIPPED_KINDS = frozenset(
    {"cdmaParameter", "securityDomain", "rfm", "application", "cd", "eap"}
)
_MILENAGE_ROTATION = bytes.fromhex("4000204060")
_MILENAGE_XOR = bytes(15) + b"\x00" + bytes(15) + b"\x01" + bytes(15) + b"\x02"
_MILENAGE_XOR += bytes(15) + b"\x04" + bytes(15) + b"\x08"


def _tuple(values: Any) -> tuple[Any, ...]:
    return tuple(values)


@attrs.frozen
class InstalledProfile:
    """What installing a package produces: files, PINs/PUKs, AKA parameters, identity."""

    iccid: str
    """The ICCID from the ProfileHeader (digits)."""
    fs: FileSystemSpec = attrs.field(repr=False)
    pins: tuple[PinSpec, ...] = attrs.field(default=(), converter=_tuple, repr=False)
    aka: tuple[AkaSpec, ...] = attrs.field(default=(), converter=_tuple, repr=False)
    skipped: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    """Element kinds present in the package but not installed (e.g. ``"csim"``), in order."""

    def uicc_state(self) -> UiccState:
        """The card state the UICC front end runs (:class:`rspfed.euicc.uicc.UiccState`)."""
        return UiccState(self.fs, self.pins, self.aka)

    def adf(self, aid_prefix: bytes) -> FileSpec | None:
        """The first ADF whose AID starts with ``aid_prefix``."""
        for adf in self.fs.adfs:
            if adf.aid is not None and adf.aid.startswith(aid_prefix):
                return adf
        return None


class _Fail(Exception):
    """Internal: a problem in the current element (turned into DecodeError/ProtocolError)."""

    def __init__(
        self, message: str, unsupported: bool = False, origin: tuple[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.unsupported = unsupported
        self.origin = origin  # (where, kind) of the element that created the file at fault


class _Node:
    """A file under construction."""

    __slots__ = (
        "aid", "arr", "by_fid", "children", "content", "fid", "lcsi", "name", "origin", "parent",
        "pin_refs", "rec_len", "sfi", "structure",
    )  # fmt: skip

    def __init__(self, fid: int, structure: FileStructure, name: str, parent: _Node | None) -> None:
        self.fid = fid
        self.structure = structure
        self.name = name
        self.parent = parent
        self.sfi: int | None = None
        self.content = bytearray()
        self.rec_len = 0
        self.lcsi = Lcsi.OPERATIONAL_ACTIVATED
        self.arr = b""
        self.aid: bytes | None = None
        self.children: list[_Node] = []
        self.by_fid: dict[int, _Node] = {}
        self.pin_refs: tuple[int, ...] = ()
        self.origin: tuple[str, str] | None = None

    def child(self, fid: int) -> _Node | None:
        return self.by_fid.get(fid)

    def add(self, node: _Node) -> None:
        self.children.append(node)
        self.by_fid.setdefault(node.fid, node)


_DESCRIPTOR_STRUCTURES = {
    0x01: FileStructure.TRANSPARENT,
    0x02: FileStructure.LINEAR_FIXED,
    0x06: FileStructure.CYCLIC,
    0x38: FileStructure.DF,
    0x39: FileStructure.BER_TLV,
}
_KIND_STRUCTURES = {
    FileKind.MF: FileStructure.DF,
    FileKind.DF: FileStructure.DF,
    FileKind.ADF: FileStructure.ADF,
    FileKind.TRANSPARENT: FileStructure.TRANSPARENT,
    FileKind.LINEAR_FIXED: FileStructure.LINEAR_FIXED,
    FileKind.CYCLIC: FileStructure.CYCLIC,
    FileKind.BER_TLV: FileStructure.BER_TLV,
}


def _expand_pattern(pattern: bytes, length: int, repeat: bool) -> bytes:
    """TS 102 222 §6.3.2.2.2: fill pattern (last octet repeated) or repeat pattern."""
    if repeat:
        return (pattern * (length // len(pattern) + 1))[:length]
    if len(pattern) >= length:
        return pattern[:length]
    return pattern + pattern[-1:] * (length - len(pattern))


# -- reading the (already strictly checked) DER ------------------------------------------------
#
# The package has passed the strict DER check against the SAIP schema
# (:func:`rspfed.asn1.decode_profile_elements`) before anything below reads it, so the
# walk trusts the headers: every length fits, components are in order and of the right
# form.  Values are read straight from the encoding (no asn1crypto objects, no
# ``.native``); a component is found by its outer tag, from the generated schema class.

_CLASS_NUMBERS = {"universal": 0, "application": 1, "context": 2, "private": 3}

_Span = tuple[int, int, int]
"""(outer tag key, content start, content end); the key is ``class << 24 | number``."""


def _tag_key(tag: Any) -> int:
    if isinstance(tag, int):  # asn1crypto: a bare number is a context tag
        return (2 << 24) | tag
    cls, number = tag
    return (_CLASS_NUMBERS[cls] << 24) | int(number)


@functools.cache
def _layout(spec: type) -> dict[int, tuple[str, bool]]:
    """Outer tag key → (component name, explicitly tagged) for a SEQUENCE or CHOICE class.

    Components sharing an outer tag (told apart by position, e.g.
    ``ApplicationLoadPackage``) are left out: nothing read here needs them.
    """
    entries = getattr(spec, "_fields", None) or getattr(spec, "_alternatives", None) or []
    out: dict[int, tuple[str, bool]] = {}
    shared: set[int] = set()
    for name, sub, *rest in entries:
        params = rest[0] if rest else {}
        if "implicit" in params:
            key, explicit = _tag_key(params["implicit"]), False
        elif "explicit" in params:
            key, explicit = _tag_key(params["explicit"]), True
        else:
            ids = outer_ids(sub)
            if ids is None or len(ids) != 1:
                continue  # an untagged CHOICE: not read here
            cls, number = next(iter(ids))
            key, explicit = (cls << 24) | number, False
        if key in out or key in shared:
            shared.add(key)
            out.pop(key, None)
            continue
        out[key] = (name, explicit)
    return out


@functools.cache
def _defaults(spec: type) -> dict[str, Any]:
    """Component name → its DEFAULT value (as the schema class gives it)."""
    return {
        name: rest[0]["default"]
        for name, _sub, *rest in getattr(spec, "_fields", ())
        if rest and "default" in rest[0]
    }


def _tlvs(d: bytes, p: int, end: int) -> list[_Span]:
    """The TLVs in ``d[p:end]`` (checked DER: no bounds checks needed)."""
    out: list[_Span] = []
    while p < end:
        first = d[p]
        p += 1
        number = first & 0x1F
        if number == 0x1F:
            number = 0
            while True:
                octet = d[p]
                p += 1
                number = (number << 7) | (octet & 0x7F)
                if not octet & 0x80:
                    break
        n = d[p]
        p += 1
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(d[p : p + k], "big")
            p += k
        out.append((((first >> 6) << 24) | number, p, p + n))
        p += n
    return out


def _unwrap(d: bytes, span: _Span) -> _Span:
    """The single TLV inside an explicit tag."""
    return _tlvs(d, span[1], span[2])[0]


def _fields(spec: type, d: bytes, start: int, end: int) -> dict[str, _Span]:
    """The components present in a SEQUENCE's contents, by name (explicit tags removed).

    Extension additions (tags the schema does not have) are left out, as
    asn1crypto does.
    """
    layout = _layout(spec)
    out: dict[str, _Span] = {}
    for span in _tlvs(d, start, end):
        entry = layout.get(span[0])
        if entry is not None:
            out[entry[0]] = _unwrap(d, span) if entry[1] else span
    return out


def _choice(spec: type, d: bytes, span: _Span) -> tuple[str, _Span]:
    """The alternative of a CHOICE encoded as ``span`` (unknown: ``UNKNOWN_ALTERNATIVE``)."""
    entry = _layout(spec).get(span[0])
    if entry is None:
        return asn1.UNKNOWN_ALTERNATIVE, span
    return entry[0], (_unwrap(d, span) if entry[1] else span)


def _items(spec: type, d: bytes, span: _Span) -> list[tuple[str, bytes]]:
    """A SEQUENCE OF CHOICE (``File``, ``FileManagement``): (alternative, contents) in order."""
    out = []
    for item in _tlvs(d, span[1], span[2]):
        name, inner = _choice(spec, d, item)
        out.append((name, d[inner[1] : inner[2]]))
    return out


def _value(d: bytes, fields: dict[str, _Span], name: str) -> bytes | None:
    span = fields.get(name)
    return None if span is None else d[span[1] : span[2]]


def _integer(d: bytes, span: _Span) -> int:
    return int.from_bytes(d[span[1] : span[2]], "big", signed=True)


def _int_field(spec: type, d: bytes, fields: dict[str, _Span], name: str) -> int:
    """An INTEGER component, or its DEFAULT when absent."""
    span = fields.get(name)
    if span is None:
        return int(_defaults(spec)[name])
    return _integer(d, span)


def _octets_field(spec: type, d: bytes, fields: dict[str, _Span], name: str) -> bytes:
    """An OCTET STRING component, or its DEFAULT when absent."""
    span = fields.get(name)
    if span is None:
        return bytes(_defaults(spec)[name])
    return d[span[1] : span[2]]


def _oid(content: bytes) -> str:
    """Dotted form of an OBJECT IDENTIFIER's contents (checked DER)."""
    arcs: list[int] = []
    value = 0
    for octet in content:
        value = (value << 7) | (octet & 0x7F)
        if not octet & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, (first, arcs[0] - 40 * first, *arcs[1:])))


@functools.cache
def _header_field(spec: type) -> str | None:
    """The ``<kind>-header`` (PEHeader) component of a profile element type."""
    for name, *_ in getattr(spec, "_fields", ()):
        if name.lower().endswith("header") and name != "header":
            return str(name)
    return None


@functools.cache
def _has_template(spec: type) -> bool:
    return any(name == "templateID" for name, *_ in getattr(spec, "_fields", ()))


_Fcp = dict[str, bytes]
"""An Fcp's components present, by name (contents octets)."""


def _fcp(content: bytes) -> _Fcp:
    return {
        name: content[span[1] : span[2]]
        for name, span in _fields(saip.Fcp, content, 0, len(content)).items()
    }


def _fcp_of(items: Sequence[tuple[str, bytes]]) -> _Fcp | None:
    for name, content in items:
        if name == "fileDescriptor":
            return _fcp(content)
    return None


class _Installer:
    def __init__(self) -> None:
        self.iccid: str | None = None
        self.mf: _Node | None = None
        self.adfs: list[_Node] = []
        self.naa: dict[str, _Node] = {}  # "usim"/"isim" -> last ADF of that kind
        self.last_naa: _Node | None = None
        self.pins: dict[int, tuple[bytes, int, int, int | None, bool]] = {}
        self.puks: dict[int, tuple[bytes, int, int]] = {}
        self.aka: list[AkaSpec] = []
        self.skipped: list[str] = []
        self.ended = False
        self.rules_cache: dict[bytes, AccessRules] = {}
        self.arr_cache: dict[tuple[int, bytes], AccessRules] = {}  # (id of the DF, ARR ref)
        self.origin: tuple[str, str] | None = None

    # -- element dispatch -------------------------------------------------------------------

    def element(self, kind: str, spec: type | None, d: bytes, span: _Span) -> None:
        if self.ended:
            raise _Fail("element after the end element")
        if spec is None:
            raise _Fail("unknown profile element kind", unsupported=True)
        fields = _fields(spec, d, span[1], span[2])
        if kind == "header":
            if self.iccid is not None:
                raise _Fail("second header")
            self.iccid = decode_iccid(_octets_field(spec, d, fields, "iccid"), swapped=False)
            return
        if self.iccid is None:
            raise _Fail("the package does not start with a header")
        if kind == "end":
            self.ended = True
        elif kind == "genericFileManagement":
            self.generic(d, fields)
        elif kind == "pinCodes":
            self.pin_codes(d, fields)
        elif kind == "pukCodes":
            self.puk_codes(d, fields)
        elif kind == "akaParameter":
            self.aka_parameter(d, fields)
        elif kind in _SKIPPED_KINDS:
            self.skipped.append(kind)
        elif _has_template(spec):
            self.templated(kind, d, fields)
        else:
            self.skipped.append(kind)

    # -- template-based elements ------------------------------------------------------------

    def templated(self, kind: str, d: bytes, fields: dict[str, _Span]) -> None:
        oid = _oid(d[fields["templateID"][1] : fields["templateID"][2]])
        template = template_for(oid)
        if template is None:
            raise _Fail(f"template {oid} is not supported", unsupported=True)
        if template.pe != kind:
            raise _Fail(f"template {oid} is for '{template.pe}' elements")
        outer = self.base_for(template)  # where the template's first DF goes (or its files)
        has_root = template.files[0].kind.is_df
        root: _Node | None = None
        dfs: dict[str, _Node] = {}
        for i, row in enumerate(template.files):
            span = fields.get(row.pe_name)
            if span is None and not template.by_default:
                continue
            items = _items(saip.File_item, d, span) if span is not None else []
            if any(name == "doNotCreate" for name, _ in items):
                continue
            if i == 0 and has_root:
                parent = outer
            elif row.parent is None:
                parent = root if has_root else outer
            else:
                parent = dfs.get(row.parent)
            if parent is None and not (i == 0 and has_root):
                where = row.parent or template.files[0].pe_name
                raise _Fail(f"{row.pe_name}: its DF ({where}) is not created")
            node = self.create(row.pe_name, row, _fcp_of(items), parent, fills=items)
            if i == 0 and has_root:
                root = node
                if row.kind is FileKind.ADF:
                    self.naa[template.pe] = node
                    if template.pe in ("usim", "isim"):  # akaParameter's NAAs (not CSIM)
                        self.last_naa = node
            elif row.kind.is_df:
                dfs[row.pe_name] = node

    def base_for(self, template: ProfileTemplate) -> _Node | None:
        if template.base == "ADF" or template.files[0].kind is FileKind.MF:
            return None
        if template.base == "MF":
            return self.require_mf()
        adf = self.naa.get(template.base.lower())
        if adf is None:
            raise _Fail(f"no ADF.{template.base} before this element")
        return adf

    def require_mf(self) -> _Node:
        if self.mf is None:
            raise _Fail("no MF yet")
        return self.mf

    # -- creating one file ------------------------------------------------------------------

    def create(
        self,
        name: str,
        row: TemplateFile | None,
        fcp: _Fcp | None,
        parent: _Node | None,
        fills: Sequence[tuple[str, bytes]] = (),
    ) -> _Node:
        f = (fcp if fcp is not None else {}).get
        descriptor: bytes | None = f("fileDescriptor")
        fid_bytes: bytes | None = f("fileID")
        fid = int.from_bytes(fid_bytes, "big") if fid_bytes is not None else None
        if fid is None and row is not None:
            fid = row.fid
        if row is not None and row.kind is FileKind.MF:
            fid = MF_FID
        if fid is None:
            raise _Fail(f"{name}: no file id")
        # structure
        rec_len = 0
        if descriptor is not None:
            if len(descriptor) < 2:
                raise _Fail(f"{name}: short file descriptor")
            structure = _DESCRIPTOR_STRUCTURES.get(descriptor[0] & 0x3F)
            if structure is None:
                raise _Fail(f"{name}: file descriptor {descriptor[0]:02X} not supported")
            if structure.is_record:
                if len(descriptor) < 4:
                    raise _Fail(f"{name}: record EF without record length")
                rec_len = int.from_bytes(descriptor[2:4], "big")
        elif row is not None:
            structure = _KIND_STRUCTURES[row.kind]
            if structure.is_record and row.size is not None:
                rec_len = row.size
        else:
            raise _Fail(f"{name}: no file descriptor")
        if row is not None and row.kind is FileKind.ADF:
            structure = FileStructure.ADF
        if structure is FileStructure.DF and row is not None and row.kind is FileKind.MF:
            structure = FileStructure.DF
        node = _Node(fid, structure, row.name if row is not None else name, parent)
        node.origin = self.origin
        # placement
        if row is not None and row.kind is FileKind.MF:
            if self.mf is not None:
                raise _Fail("second MF")
            self.mf = node
        elif structure is FileStructure.ADF:
            aid = f("dfName")
            if aid is None:
                raise _Fail(f"{name}: an ADF needs dfName (its AID)")
            node.aid = bytes(aid)
            if any(a.fid == fid for a in self.adfs):
                raise _Fail(f"{name}: temporary file id {fid:04X} used twice")
            self.adfs.append(node)
        else:
            if parent is None:
                raise _Fail(f"{name}: no parent DF")
            if parent.child(fid) is not None:
                raise _Fail(f"{name}: file id {fid:04X} exists in {parent.fid:04X}")
            parent.add(node)
        # attributes
        lcsi = f("lcsi")
        if lcsi is not None:
            try:
                node.lcsi = Lcsi(bytes(lcsi)[0])
            except (ValueError, IndexError):
                raise _Fail(
                    f"{name}: life cycle status {bytes(lcsi).hex()} not supported"
                ) from None
        arr = f("securityAttributesReferenced")
        if arr is not None:
            node.arr = bytes(arr)
        elif row is not None and row.arr is not None:
            node.arr = bytes((row.arr,))
        if structure.is_df:
            pst = f("pinStatusTemplateDO")
            if pst is not None:
                node.pin_refs = tuple(bytes(pst))
            return node
        # SFI
        sfi_value = f("shortEFID")
        if sfi_value is not None:
            sfi_bytes = bytes(sfi_value)
            node.sfi = (sfi_bytes[0] >> 3) or None if sfi_bytes else None
        elif row is not None:
            node.sfi = row.sfi
        # size (a link file takes its target's)
        link = f("linkPath")
        target = self.resolve(bytes(link)) if link else None
        if link and (target is None or target.structure is not structure):
            raise _Fail(f"{name}: link target {bytes(link).hex().upper()} not found or different")
        size_bytes = f("efFileSize")
        if target is not None:
            size, rec_len = len(target.content), target.rec_len
        elif size_bytes is not None:
            size = int.from_bytes(bytes(size_bytes), "big")
        elif row is not None and structure.is_record and row.size is not None:
            if row.records is None:
                raise _Fail(f"{name}: the number of records is not given")
            size = row.records * (rec_len or row.size)
        elif row is not None and not structure.is_record and row.size is not None:
            size = row.size
        else:
            raise _Fail(f"{name}: the file size is not given")
        if structure.is_record:
            if rec_len == 0 or size % rec_len or size == 0:
                raise _Fail(f"{name}: size {size} is not a multiple of record length {rec_len}")
            node.rec_len = rec_len
        # initial content
        unit = rec_len if structure.is_record else size
        count = size // unit if unit else 0
        prop = f("proprietaryEFInfo")
        pattern: bytes | None = None
        repeat = False
        if prop is not None:
            info = _fields(saip.ProprietaryInfo, prop, 0, len(prop))
            fill = _value(prop, info, "fillPattern")
            rep = _value(prop, info, "repeatPattern")
            if fill is not None and rep is not None:
                raise _Fail(f"{name}: both fillPattern and repeatPattern")
            pattern, repeat = (
                (bytes(rep), True)
                if rep is not None
                else ((bytes(fill), False) if fill is not None else (None, False))
            )
        if pattern is not None:
            one = _expand_pattern(pattern, unit, repeat)
        else:
            default = row.default_content(unit) if row is not None and unit else None
            one = default if default is not None else b"\xff" * unit
        node.content = bytearray(one * count) if count else bytearray()
        if target is not None:
            n = min(len(target.content), len(node.content))
            node.content[:n] = target.content[:n]
        self.fill(node, fills, name)
        return node

    def fill(self, node: _Node, items: Sequence[tuple[str, bytes]], name: str) -> None:
        pos = 0
        for kind, content in items:
            if kind == "fillFileOffset":
                pos += int.from_bytes(content, "big", signed=True)
            elif kind == "fillFileContent":
                data = content
                if node.structure.is_df:
                    raise _Fail(f"{name}: content for a DF")
                if pos + len(data) > len(node.content):
                    raise _Fail(f"{name}: content beyond the end of the file")
                node.content[pos : pos + len(data)] = data
                pos += len(data)

    # -- generic file management ------------------------------------------------------------

    def resolve(self, path: bytes) -> _Node | None:
        mf = self.require_mf()
        if len(path) % 2:
            raise _Fail("odd file path length")
        fids = [int.from_bytes(path[i : i + 2], "big") for i in range(0, len(path), 2)]
        if fids and fids[0] == MF_FID:
            fids = fids[1:]
        node: _Node | None = mf
        for i, fid in enumerate(fids):
            if node is None:
                return None
            found = node.child(fid)
            if found is None and i == 0:
                found = next((a for a in self.adfs if a.fid == fid), None)
            node = found
        return node

    def generic(self, d: bytes, fields: dict[str, _Span]) -> None:
        for command in _tlvs(d, fields["fileManagementCMD"][1], fields["fileManagementCMD"][2]):
            current_df = self.require_mf()
            target: _Node | None = None
            fills: list[tuple[str, bytes]] = []
            for kind, content in _items(saip.FileManagement_item, d, command):
                if kind == "filePath":
                    self.flush(target, fills)
                    target, fills = None, []
                    node = self.resolve(content)
                    if node is None:
                        raise _Fail(f"file path {content.hex().upper()} not found")
                    if node.structure.is_df:
                        current_df = node
                    else:
                        target = node
                elif kind == "createFCP":
                    self.flush(target, fills)
                    fills = []
                    target = self.create("createFCP", None, _fcp(content), current_df)
                    if target.structure.is_df:
                        target = None
                else:
                    if target is None:
                        raise _Fail(f"{kind} without a selected or created EF")
                    fills.append((kind, content))
            self.flush(target, fills)

    def flush(self, target: _Node | None, fills: list[tuple[str, bytes]]) -> None:
        if target is not None and fills:
            self.fill(target, fills, f"EF {target.fid:04X}")

    # -- PINs, PUKs, AKA --------------------------------------------------------------------

    def pin_codes(self, d: bytes, fields: dict[str, _Span]) -> None:
        name, codes = _choice(saip.PE_PINCodes_pinCodes, d, fields["pinCodes"])
        if name != "pinconfig":
            return  # shared with another DF: nothing new
        spec = saip.PINConfiguration
        for cfg_span in _tlvs(d, codes[1], codes[2]):
            cfg = _fields(spec, d, cfg_span[1], cfg_span[2])
            ref = _integer(d, cfg["keyReference"])
            pin = _octets_field(spec, d, cfg, "pinValue")
            tries = _int_field(spec, d, cfg, "maxNumOfAttemps-retryNumLeft")
            attributes = _int_field(spec, d, cfg, "pinAttributes")
            unblock = cfg.get("unblockingPINReference")
            puk_ref = None if unblock is None else _integer(d, unblock)
            entry = (pin, tries >> 4, tries & 0x0F, puk_ref, bool(attributes & 0x01))
            old = self.pins.get(ref)
            if old is not None and old != entry:
                raise _Fail(f"PIN {ref:02X} defined twice with different values", unsupported=True)
            self.pins[ref] = entry

    def puk_codes(self, d: bytes, fields: dict[str, _Span]) -> None:
        spec = saip.PUKConfiguration
        for cfg_span in _tlvs(d, fields["pukCodes"][1], fields["pukCodes"][2]):
            cfg = _fields(spec, d, cfg_span[1], cfg_span[2])
            ref = _integer(d, cfg["keyReference"])
            if ref in self.puks:
                raise _Fail(f"PUK {ref:02X} defined twice")
            tries = _int_field(spec, d, cfg, "maxNumOfAttemps-retryNumLeft")
            self.puks[ref] = (_octets_field(spec, d, cfg, "pukValue"), tries >> 4, tries & 0x0F)

    def aka_parameter(self, d: bytes, fields: dict[str, _Span]) -> None:
        adf = self.last_naa
        if adf is None or adf.aid is None:
            raise _Fail("akaParameter without a USIM/ISIM before it")
        name, config = _choice(
            saip.PE_AKAParameter_algoConfiguration, d, fields["algoConfiguration"]
        )
        if name != "algoParameter":
            raise _Fail("mappingParameter is not supported", unsupported=True)
        spec = saip.AlgoParameter
        algo = _fields(spec, d, config[1], config[2])
        algorithm_id = _integer(d, algo["algorithmID"])
        if algorithm_id == AkaAlgorithmId.TUAK:
            raise _Fail("TUAK is not supported", unsupported=True)
        try:
            algorithm = AkaAlgorithmId(algorithm_id)
        except ValueError:
            raise _Fail(f"unknown algorithmID {algorithm_id}", unsupported=True) from None
        k = _octets_field(spec, d, algo, "key")
        opc = _octets_field(spec, d, algo, "opc")
        if len(k) != 16:
            raise _Fail("key must be 16 octets", unsupported=True)
        if algorithm is AkaAlgorithmId.MILENAGE:
            if len(opc) != 16:
                raise _Fail("OPc must be 16 octets")
            if (
                _octets_field(spec, d, algo, "rotationConstants") != _MILENAGE_ROTATION
                or _octets_field(spec, d, algo, "xoringConstants") != _MILENAGE_XOR
            ):
                raise _Fail("non-standard MILENAGE constants are not supported", unsupported=True)
            test = False
        else:
            opc = bytes(16)
            test = True
        aka = saip.PE_AKAParameter
        delta = int.from_bytes(_octets_field(aka, d, fields, "sqnDelta"), "big")
        age = int.from_bytes(_octets_field(aka, d, fields, "sqnAgeLimit"), "big")
        init = fields.get("sqnInit")
        sqn_array = (
            tuple(int.from_bytes(d[s[1] : s[2]], "big") for s in _tlvs(d, init[1], init[2]))
            if init is not None
            else (0,) * 32
        )
        if len(sqn_array) != 32:
            raise _Fail("sqnInit must have 32 entries")
        if any(s > 0x07FFFFFFFFFF for s in sqn_array) or max(delta, age) > 0x07FFFFFFFFFF:
            raise _Fail("SQN values above 07FFFFFFFFFF")
        if any(a.adf_aid == adf.aid for a in self.aka):
            raise _Fail("a second akaParameter for the same NAA")
        self.aka.append(
            AkaSpec(
                adf.aid,
                algorithm,
                k,
                opc,
                sqn_check=not test,
                ind_bits=5,
                sqn_delta=delta if not test else DEFAULT_SQN_LIMIT,
                sqn_age_limit=age if not test else DEFAULT_SQN_LIMIT,
                sqn_array=sqn_array,
            )
        )

    # -- result -----------------------------------------------------------------------------

    def result(self) -> InstalledProfile:
        if self.iccid is None or self.mf is None:
            raise _Fail("no header or no MF")
        if not self.ended:
            raise _Fail("no end element")
        pins = []
        for ref, (pin, max_tries, left, puk_ref, enabled) in self.pins.items():
            puk = self.puks.get(puk_ref) if puk_ref is not None else None
            if puk_ref is not None and puk is None:
                raise _Fail(f"PIN {ref:02X} refers to PUK {puk_ref:02X}, which is not defined")
            pins.append(
                PinSpec(
                    ref,
                    pin,
                    None if puk is None else puk[0],
                    max_tries=max_tries,
                    tries_left=min(left, max_tries),
                    puk_max_tries=10 if puk is None else puk[1],
                    puk_tries_left=10 if puk is None else min(puk[2], puk[1]),
                    enabled=enabled,
                )
            )
        mf = self.freeze(self.mf)
        adfs = tuple(self.freeze(a) for a in self.adfs)
        return InstalledProfile(
            self.iccid, FileSystemSpec(mf, adfs), tuple(pins), tuple(self.aka), tuple(self.skipped)
        )

    def arr_rules(self, node: _Node) -> tuple[bytes, AccessRules]:
        arr = node.arr
        if not arr:
            return b"\x2f\x06\x01", AccessRules()
        if len(arr) == 1:
            at_mf = node is self.mf or node.structure is FileStructure.ADF or node.parent is self.mf
            arr = (b"\x2f\x06" if at_mf else b"\x6f\x06") + arr
        if len(arr) != 3:
            raise _Fail(
                f"EF {node.fid:04X}: securityAttributesReferenced of {len(arr)} octets",
                origin=node.origin,
            )
        df: _Node | None = node if node.structure.is_df else node.parent
        key = (id(df), arr)
        cached = self.arr_cache.get(key)
        if cached is not None:
            return arr, cached
        fid, record = int.from_bytes(arr[:2], "big"), arr[2]
        ef: _Node | None = None
        while df is not None and ef is None:
            ef = df.child(fid)
            df = (
                df.parent
                if df.parent is not None
                else (self.mf if df.structure is FileStructure.ADF else None)
            )
        if (
            ef is None
            or not ef.structure.is_record
            or not 1 <= record <= len(ef.content) // max(ef.rec_len, 1)
        ):
            raise _Fail(
                f"file {node.fid:04X}: access rule {arr.hex().upper()} not found",
                origin=node.origin,
            )
        start = (record - 1) * ef.rec_len
        record_bytes = bytes(ef.content[start : start + ef.rec_len])
        rules = self.rules_cache.get(record_bytes)
        if rules is None:
            try:
                rules = access_rules_from_arr(record_bytes)
            except DecodeError as exc:
                raise _Fail(
                    f"EF.ARR {fid:04X} record {record}: {exc}", origin=node.origin
                ) from None
            self.rules_cache[record_bytes] = rules
        self.arr_cache[key] = rules
        return arr, rules

    def freeze(self, node: _Node) -> FileSpec:
        arr, rules = self.arr_rules(node)
        children = [self.freeze(c) for c in node.children]
        child_nodes = node.children
        sfis: set[int] = set()
        records: tuple[bytes, ...] = ()
        content = b""
        if node.structure.is_record:
            n = node.rec_len
            records = tuple(bytes(node.content[i : i + n]) for i in range(0, len(node.content), n))
        elif not node.structure.is_df:
            content = bytes(node.content)
        for c in child_nodes:
            if c.sfi is not None:
                if c.sfi in sfis:
                    raise _Fail(f"SFI {c.sfi} used twice in {node.fid:04X}", origin=c.origin)
                sfis.add(c.sfi)
        try:
            return FileSpec(
                node.fid,
                node.structure,
                node.name,
                sfi=node.sfi,
                content=content,
                records=records,
                lcsi=node.lcsi,
                access=rules,
                arr=arr,
                aid=node.aid,
                children=tuple(children),
                pin_refs=node.pin_refs,
            )
        except UsageError as exc:
            raise _Fail(f"file {node.fid:04X}: {exc}", origin=node.origin) from None


@functools.cache
def _element_kinds() -> dict[int, tuple[str, type]]:
    """Outer tag key → (ProfileElement alternative, its class)."""
    specs = {name: sub for name, sub, *_ in saip.ProfileElement._alternatives}
    return {key: (name, specs[name]) for key, (name, _) in _layout(saip.ProfileElement).items()}


def install_elements(elements: Sequence[saip.ProfileElement]) -> InstalledProfile:
    """Install decoded profile elements (``list[saip.ProfileElement]``, package order).

    Each element is encoded (and so checked) with :func:`rspfed.asn1.encode`
    first; :func:`install_package` reads the received encoding directly.
    """
    ders = []
    for index, pe in enumerate(elements):
        try:
            ders.append(asn1.encode(pe))
        except EncodeError as exc:
            raise DecodeError(
                f"profile element at index {index} ({pe.name}): {exc}",
                type_name=exc.type_name,
            ) from None
    return _install(b"".join(ders))


def install_package(package: bytes) -> InstalledProfile:
    """Check and install an unprotected profile package.

    The check is the strict DER check of
    :func:`rspfed.asn1.decode_profile_elements` (every element against the
    SAIP schema; :class:`~rspfed.errors.DecodeError` for malformed input),
    without building asn1crypto objects.
    """
    package = bytes(package)
    for start, end in iter_tlvs(package, "ProfileElement"):
        check(saip.ProfileElement, package[start:end], offset=start)
    return _install(package)


def _install(d: bytes) -> InstalledProfile:
    """Install a package that passed the strict DER check."""
    installer = _Installer()
    kinds = _element_kinds()
    for span in _tlvs(d, 0, len(d)):
        kind, spec = kinds.get(span[0], (asn1.UNKNOWN_ALTERNATIVE, None))
        current = f"profile element {_identification(spec, d, span)} ({kind})"
        installer.origin = (current, kind)
        try:
            installer.element(kind, spec, d, span)
        except _Fail as exc:
            _raise(current, kind, exc)
        except (UsageError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            # safety net: inconsistent content the checks above did not name
            raise DecodeError(f"{current}: {exc}", type_name=f"PE-{kind}") from None
    try:
        return installer.result()
    except _Fail as exc:
        where, kind = exc.origin or ("package", "ProfileElements")
        _raise(where, kind, exc)


def _raise(where: str, kind: str, exc: _Fail) -> NoReturn:
    if exc.unsupported:
        raise ProtocolError(f"{where}: {exc}") from None
    raise DecodeError(f"{where}: {exc}", type_name=f"PE-{kind}") from None


def _identification(spec: type | None, d: bytes, span: _Span) -> str:
    name = None if spec is None else _header_field(spec)
    if spec is None or name is None:
        return "?"
    header = _fields(spec, d, span[1], span[2]).get(name)
    if header is None:
        return "?"
    ident = _fields(saip.PEHeader, d, header[1], header[2]).get("identification")
    return "?" if ident is None else str(_integer(d, ident))


def load_profile(profile: object, content: bytes) -> UiccState:
    """A :data:`rspfed.euicc.euicc.ProfileLoader`: the installed package → card state."""
    return install_package(content).uicc_state()
