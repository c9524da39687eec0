"""Personalise a SAIP template package: ICCID, IMSI, K/OPc, AKA algorithm, PINs, EF contents.

Two paths that give the same bytes:

- :func:`personalise` decodes the template (strict DER), sets the
  personalised fields in the decoded elements and re-encodes the package
  (the reference path).
- :class:`PreparedTemplate` decodes the template once and finds the byte
  offset of every personalised field; :meth:`PreparedTemplate.personalise`
  then copies the template and overwrites those slices.  Every personalised
  field has a fixed size (ICCID 10 octets, EF_IMSI 9, K and OPc 16, PIN and
  PUK values 8, the algorithm identifier one content octet, an EF content
  exactly as long as the template's ``fillFileContent``), so no DER length
  changes; sizes are enforced.

What is personalised (``None`` leaves a field as in the template):

============================  ==============================================
``iccid``                     ``ProfileHeader.iccid`` (plain BCD) and the
                              ``fillFileContent`` of MF ``ef-iccid``
                              (swapped BCD, TS 102 221 §13.2)
``imsi``                      the ``fillFileContent`` of USIM ``ef-imsi``
``k``, ``opc``/``op``,        every ``akaParameter`` (USIM and ISIM):
``algorithm``                 ``algorithmID``, ``key``, ``opc`` (for the test
                              algorithm OPc defaults to zeros)
``pin1``, ``pin2``, ``adm1``  ``pinValue`` of key references ``pinAppl1``
                              (01), ``secondPINAppl1`` (81, every ADF),
                              ``adm1`` (0A), padded with ``FF`` to 8 octets
``puk1``, ``puk2``            ``pukValue`` of ``pukAppl1``,
                              ``secondPUKAppl1``
``files``                     EF content by ASN.1 field name (``ef-spn``,
                              ``ef-plmnwact``, ``ef-oplmnwact``,
                              ``ef-hpplmn``, ``ef-fplmn``, ``ef-ehplmn``,
                              ...): replaces the one ``fillFileContent`` of
                              that EF in the ``usim``/``opt-usim`` element,
                              same length
============================  ==============================================

Errors: :class:`~rspfed.errors.UsageError` for bad personalisation values
or a template lacking a field to personalise; the template itself is
decoded strictly (:class:`~rspfed.errors.DecodeError`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from rspfed import asn1
from rspfed.asn1 import saip
from rspfed.crypto.milenage import compute_opc
from rspfed.errors import EncodeError, UsageError
from rspfed.saip.identifiers import encode_iccid, encode_imsi

__all__ = [
    "ALGORITHMS",
    "FILE_ELEMENTS",
    "Personalisation",
    "PreparedTemplate",
    "personalisable_files",
    "personalise",
]

ALGORITHMS: Mapping[str, int] = MappingProxyType({"milenage": 1, "usim-test-algorithm": 3})
"""The AKA algorithms a personalisation may choose (SAIP ``algorithmID``)."""

FILE_ELEMENTS = ("usim", "opt-usim", "df-5gs", "isim", "opt-isim", "telecom")
"""Elements searched (in this order) for an EF named in :attr:`Personalisation.files`."""

_PIN_REFS = {"pin1": 0x01, "pin2": 0x81, "adm1": 0x0A}
_PUK_REFS = {"puk1": 0x01, "puk2": 0x81}


def _optional_bytes(value: bytes | None) -> bytes | None:
    return None if value is None else bytes(value)


def _files(value: Mapping[str, bytes]) -> Mapping[str, bytes]:
    return MappingProxyType({str(k): bytes(v) for k, v in dict(value).items()})


def _code(value: bytes | None, name: str, lo: int, hi: int) -> None:
    if value is None:
        return
    if not lo <= len(value) <= hi or not value.isdigit():
        raise UsageError(f"{name} must be {lo} to {hi} ASCII digits")


@attrs.frozen
class Personalisation:
    """The per-subscriber values of one profile instance.

    ``iccid``/``imsi`` are digit strings (18–20 and 6–15 digits); ``k`` and
    ``opc`` 16 octets (give ``op`` instead of ``opc`` to have OPc computed as
    ``E_K(OP) ⊕ OP``); ``algorithm`` one of :data:`ALGORITHMS`; PINs as ASCII
    digits (PIN1/PIN2 4–8, PUKs and ADM1 8).  ``files`` maps EF field names
    (``"ef-spn"``) to their new content.  ``None`` leaves a field unchanged.
    """

    iccid: str | None = None
    imsi: str | None = None
    k: bytes | None = attrs.field(default=None, converter=_optional_bytes, repr=False)
    opc: bytes | None = attrs.field(default=None, converter=_optional_bytes, repr=False)
    op: bytes | None = attrs.field(default=None, converter=_optional_bytes, repr=False)
    algorithm: str | None = None
    pin1: bytes | None = attrs.field(default=None, converter=_optional_bytes, repr=False)
    pin2: bytes | None = attrs.field(default=None, converter=_optional_bytes, repr=False)
    puk1: bytes | None = attrs.field(default=None, converter=_optional_bytes, repr=False)
    puk2: bytes | None = attrs.field(default=None, converter=_optional_bytes, repr=False)
    adm1: bytes | None = attrs.field(default=None, converter=_optional_bytes, repr=False)
    files: Mapping[str, bytes] = attrs.field(factory=dict, converter=_files, repr=False, hash=False)

    def __attrs_post_init__(self) -> None:
        try:
            if self.iccid is not None:
                encode_iccid(self.iccid)
            if self.imsi is not None:
                encode_imsi(self.imsi)
        except EncodeError as exc:
            raise UsageError(str(exc)) from None
        if self.k is not None and len(self.k) != 16:
            raise UsageError("K must be 16 octets")
        if self.opc is not None and self.op is not None:
            raise UsageError("give OPc or OP, not both")
        for name in ("opc", "op"):
            v = getattr(self, name)
            if v is not None and len(v) != 16:
                raise UsageError(f"{name.upper()} must be 16 octets")
        if self.op is not None and self.k is None:
            raise UsageError("OPc is computed from OP and K: give K")
        if self.algorithm is not None and self.algorithm not in ALGORITHMS:
            raise UsageError(f"algorithm must be one of {', '.join(ALGORITHMS)}")
        if self.algorithm == "milenage" and self.k is not None and self.opc_value is None:
            raise UsageError("MILENAGE needs OPc (or OP)")
        _code(self.pin1, "PIN1", 4, 8)
        _code(self.pin2, "PIN2", 4, 8)
        _code(self.puk1, "PUK1", 8, 8)
        _code(self.puk2, "PUK2", 8, 8)
        _code(self.adm1, "ADM1", 8, 8)

    @property
    def opc_value(self) -> bytes | None:
        """OPc as given, or computed from OP and K; zeros for the test algorithm without one."""
        if self.opc is not None:
            return self.opc
        if self.op is not None and self.k is not None:
            return compute_opc(self.k, self.op)
        if self.algorithm == "usim-test-algorithm":
            return bytes(16)
        return None


# -- locating the personalised fields ---------------------------------------------------------

_Setter = Callable[[bytes], None]


def _fill_items(file: Any) -> list[int]:
    return [i for i, item in enumerate(file) if item.name == "fillFileContent"]


def _set_fill(file: Any, index: int) -> _Setter:
    def setter(data: bytes) -> None:
        file[index] = ("fillFileContent", data)

    return setter


def _set_field(seq: Any, name: str) -> _Setter:
    def setter(data: bytes) -> None:
        seq[name] = data

    return setter


def _single_fill(pe: Any, field: str, what: str) -> tuple[Any, int]:
    file = pe.chosen[field]
    fills = _fill_items(file)
    if len(fills) != 1:
        raise UsageError(f"the template's {what} needs exactly one fillFileContent")
    return file, fills[0]


def _targets(
    pes: list[saip.ProfileElement], values: Personalisation
) -> Iterator[tuple[str, int, _Setter, bytes, bytes]]:
    """(field id, template length, setter, new value, template value) per field ``values`` sets."""
    by_kind: dict[str, list[Any]] = {}
    for pe in pes:
        by_kind.setdefault(pe.name, []).append(pe)

    def first(kind: str) -> Any:
        found = by_kind.get(kind)
        if not found:
            raise UsageError(f"the template has no '{kind}' element")
        return found[0]

    if values.iccid is not None:
        header = first("header").chosen
        yield (
            "header.iccid",
            10,
            _set_field(header, "iccid"),
            encode_iccid(values.iccid, swapped=False),
            bytes(header["iccid"].native),
        )
        file, i = _single_fill(first("mf"), "ef-iccid", "EF_ICCID")
        yield (
            "ef-iccid",
            len(file[i].native),
            _set_fill(file, i),
            encode_iccid(values.iccid),
            file[i].native,
        )
    if values.imsi is not None:
        file, i = _single_fill(first("usim"), "ef-imsi", "EF_IMSI")
        yield (
            "ef-imsi",
            len(file[i].native),
            _set_fill(file, i),
            encode_imsi(values.imsi),
            file[i].native,
        )
    opc = values.opc_value
    for n, pe in enumerate(by_kind.get("akaParameter", [])):
        config = pe.chosen["algoConfiguration"]
        if config.name != "algoParameter":
            raise UsageError("the template's akaParameter uses mappingParameter")
        algo = config.chosen
        if values.algorithm is not None:
            old = int(algo["algorithmID"])
            if not 1 <= old <= 127:
                raise UsageError("unexpected algorithmID in the template")
            new = ALGORITHMS[values.algorithm]

            def set_algorithm(data: bytes, algo: Any = algo) -> None:
                algo["algorithmID"] = data[0]

            yield f"aka{n}.algorithmID", 1, set_algorithm, bytes((new,)), bytes((old,))
        if values.k is not None:
            key = algo["key"].native
            yield f"aka{n}.key", len(key), _set_field(algo, "key"), values.k, key
        if opc is not None:
            old_opc = algo["opc"].native
            yield f"aka{n}.opc", len(old_opc), _set_field(algo, "opc"), opc, old_opc
    for attr, ref in _PIN_REFS.items():
        pin = getattr(values, attr)
        if pin is None:
            continue
        hits = 0
        for pe in by_kind.get("pinCodes", []):
            codes = pe.chosen["pinCodes"]
            if codes.name != "pinconfig":
                continue
            for cfg in codes.chosen:
                if int(cfg["keyReference"]) == ref:
                    hits += 1
                    yield (
                        f"pin{ref:02x}.{hits}",
                        len(cfg["pinValue"].native),
                        _set_field(cfg, "pinValue"),
                        pin.ljust(8, b"\xff"),
                        cfg["pinValue"].native,
                    )
        if not hits:
            raise UsageError(f"the template defines no PIN with key reference {ref:02X}")
    for attr, ref in _PUK_REFS.items():
        puk = getattr(values, attr)
        if puk is None:
            continue
        hits = 0
        for pe in by_kind.get("pukCodes", []):
            for cfg in pe.chosen["pukCodes"]:
                if int(cfg["keyReference"]) == ref:
                    hits += 1
                    yield (
                        f"puk{ref:02x}.{hits}",
                        len(cfg["pukValue"].native),
                        _set_field(cfg, "pukValue"),
                        puk,
                        cfg["pukValue"].native,
                    )
        if not hits:
            raise UsageError(f"the template defines no PUK with key reference {ref:02X}")
    for name, content in values.files.items():
        holder = None
        for kind in FILE_ELEMENTS:
            for pe in by_kind.get(kind, []):
                if name in {f[0] for f in pe.chosen._fields} and pe.chosen[name].native:
                    holder = pe
                    break
            if holder is not None:
                break
        if holder is None:
            raise UsageError(f"the template has no {name}")
        file, i = _single_fill(holder, name, name)
        yield f"file.{name}", len(file[i].native), _set_fill(file, i), content, file[i].native


def _check(field: str, expected: int, value: bytes) -> None:
    if len(value) != expected:
        raise UsageError(
            f"{field}: the template holds {expected} octets, the new value has {len(value)}"
        )


def personalise(template: bytes, values: Personalisation) -> bytes:
    """Decode ``template``, apply ``values``, encode (the reference path)."""
    pes = asn1.decode_profile_elements(bytes(template))
    for field, length, setter, value, _old in list(_targets(pes, values)):
        _check(field, length, value)
        setter(value)
    return asn1.encode_profile_elements(pes)


_EVERYTHING = Personalisation(
    iccid="8900000000000000000",
    imsi="001010000000000",
    k=bytes(16),
    opc=bytes(16),
    algorithm="milenage",
    pin1=b"0000",
    pin2=b"0000",
    puk1=b"00000000",
    puk2=b"00000000",
    adm1=b"00000000",
)


def personalisable_files(template: bytes, names: Iterable[str]) -> dict[str, int]:
    """Which of the EFs ``names`` (ASN.1 field names such as ``"ef-oplmnwact"``) ``template``
    can personalise (one ``fillFileContent`` each), with their sizes in octets.

    One decode of the template, no re-encoding: cheap enough to ask before
    choosing the ``files`` of a :class:`PreparedTemplate`.
    """
    pes = asn1.decode_profile_elements(bytes(template))
    found: dict[str, int] = {}
    for name in names:
        try:
            for field, length, *_ in _targets(pes, Personalisation(files={name: b""})):
                if field == f"file.{name}":
                    found[name] = length
        except UsageError:
            continue  # the template has no single fillFileContent for it
    return found


class PreparedTemplate:
    """A template parsed once, with the byte offset of every personalised field.

    ``files`` names the EFs (ASN.1 field names) a personalisation may change
    besides the fixed set; a :class:`Personalisation` naming another EF is
    refused.  Fields the template does not have (no PUK2, say) can only be
    left ``None``.
    """

    __slots__ = ("_offsets", "_template", "files")

    def __init__(self, template: bytes, *, files: tuple[str, ...] = ()) -> None:
        self._template = bytes(template)
        if asn1.encode_profile_elements(asn1.decode_profile_elements(self._template)) != (
            self._template
        ):
            raise UsageError("the template does not re-encode to the same bytes")
        self.files = tuple(files)
        self._offsets: dict[str, tuple[int, int]] = {}
        pes = asn1.decode_profile_elements(self._template)
        probe = attrs.evolve(_EVERYTHING, files=dict.fromkeys(self.files, b""))
        template_bytes = self._template
        for field, length, setter, _value, old in list(_targets_lenient(pes, probe)):
            flipped = bytes(b ^ 0xFF for b in old)
            if field.endswith(".algorithmID"):
                flipped = bytes((old[0] ^ 0x7F,))  # stays a one-octet positive INTEGER
            setter(flipped)
            marked = asn1.encode_profile_elements(pes)
            setter(old)
            if len(marked) != len(template_bytes):
                raise UsageError(f"{field}: changing it changes the DER length")
            diff = [
                i for i, (a, b) in enumerate(zip(marked, template_bytes, strict=True)) if a != b
            ]
            if not diff or diff[-1] - diff[0] + 1 != length or len(diff) != length:
                raise UsageError(f"cannot locate {field} in the template")
            self._offsets[field] = (diff[0], length)

    @property
    def template(self) -> bytes:
        """The template package."""
        return self._template

    @property
    def offsets(self) -> Mapping[str, tuple[int, int]]:
        """Field id → (offset, length) in the package."""
        return MappingProxyType(self._offsets)

    def personalise(self, values: Personalisation) -> bytes:
        """The personalised package (the same bytes as :func:`personalise`)."""
        out = bytearray(self._template)
        offsets = self._offsets
        for field, value in _values(values, offsets, self.files):
            at, length = offsets[field]
            if len(value) != length:
                _check(field, length, value)
            out[at : at + length] = value
        return bytes(out)


_ONLY: dict[str, Callable[[bytes | None], Personalisation]] = {
    "pin1": lambda v: Personalisation(pin1=v),
    "pin2": lambda v: Personalisation(pin2=v),
    "adm1": lambda v: Personalisation(adm1=v),
    "puk1": lambda v: Personalisation(puk1=v),
    "puk2": lambda v: Personalisation(puk2=v),
}


def _targets_lenient(
    pes: list[saip.ProfileElement], values: Personalisation
) -> Iterator[tuple[str, int, _Setter, bytes, bytes]]:
    """Like :func:`_targets`, leaving out PIN/PUK references the template lacks."""
    keep: dict[str, bytes | None] = {}
    for attr in ("pin1", "pin2", "adm1", "puk1", "puk2"):
        value: bytes | None = getattr(values, attr)
        try:
            list(_targets(pes, _ONLY[attr](value)))
        except UsageError:
            value = None
        keep[attr] = value
    return _targets(
        pes,
        attrs.evolve(
            values,
            pin1=keep["pin1"],
            pin2=keep["pin2"],
            adm1=keep["adm1"],
            puk1=keep["puk1"],
            puk2=keep["puk2"],
        ),
    )


def _values(
    values: Personalisation, offsets: Mapping[str, tuple[int, int]], files: tuple[str, ...]
) -> Iterator[tuple[str, bytes]]:
    if values.iccid is not None:
        yield "header.iccid", encode_iccid(values.iccid, swapped=False)
        yield "ef-iccid", encode_iccid(values.iccid)
    if values.imsi is not None:
        yield "ef-imsi", encode_imsi(values.imsi)
    opc = values.opc_value
    n = 0
    while f"aka{n}.key" in offsets:
        if values.algorithm is not None:
            yield f"aka{n}.algorithmID", bytes((ALGORITHMS[values.algorithm],))
        if values.k is not None:
            yield f"aka{n}.key", values.k
        if opc is not None:
            yield f"aka{n}.opc", opc
        n += 1
    for attr, ref in _PIN_REFS.items():
        pin = getattr(values, attr)
        if pin is None:
            continue
        hit = 0
        while f"pin{ref:02x}.{hit + 1}" in offsets:
            hit += 1
            yield f"pin{ref:02x}.{hit}", pin.ljust(8, b"\xff")
        if not hit:
            raise UsageError(f"the template defines no PIN with key reference {ref:02X}")
    for attr, ref in _PUK_REFS.items():
        puk = getattr(values, attr)
        if puk is None:
            continue
        hit = 0
        while f"puk{ref:02x}.{hit + 1}" in offsets:
            hit += 1
            yield f"puk{ref:02x}.{hit}", puk
        if not hit:
            raise UsageError(f"the template defines no PUK with key reference {ref:02X}")
    for name, content in values.files.items():
        if name not in files:
            raise UsageError(f"{name} was not prepared (PreparedTemplate(files=...))")
        yield f"file.{name}", content
