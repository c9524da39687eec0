"""Hypothesis strategies for every ASN.1 type, built from asn1tools' parsed specification.

The strategies produce values in **asn1tools' Python value form** (an
independent implementation of the same modules):

* SEQUENCE / SET: ``dict`` of present components (OPTIONAL ones may be
  absent; DEFAULT ones are absent or differ from the default, as DER requires
  a value equal to its default to be omitted);
* CHOICE: ``(alternative_name, value)``;
* SEQUENCE OF / SET OF: ``list``;
* BIT STRING: ``(bytes, number_of_bits)`` (for named bits: trailing zero bits
  removed, as DER requires);
* INTEGER: ``int``; ENUMERATED: the name; BOOLEAN: ``bool``; NULL: ``None``;
  OCTET STRING: ``bytes``; character strings: ``str``; OBJECT IDENTIFIER:
  dotted ``str``; UTCTime / GeneralizedTime: ``datetime`` (UTC, whole seconds).

Constraints honoured: SIZE (octets, bits, characters, elements; ranges and
``MAX``; value references), INTEGER value ranges (value references resolved),
named bits and named numbers, OPTIONAL / DEFAULT, CHOICE, nesting with a depth
limit (beyond it OPTIONAL components are left out and lists kept at their
minimum size).

PKIX ``Certificate`` and ``CertificateList`` are not generated: real GSMA
SGP.26 certificates (and CRLs made with ``cryptography`` naming the SGP.26 CIs)
are drawn instead, as asn1tools values decoded from their DER.

Also here: :func:`to_rspfed` / :func:`from_rspfed` convert between that value
form and rspfed (asn1crypto) values by walking the asn1crypto class tree
(CHOICE alternative names kept), :meth:`SpecStrategies.strip_defaults` makes
asn1tools' decodings comparable, and :func:`x680_retags` /
:func:`rsp_compiled_x680` give asn1tools the SGP.22 module with tags on tagged
CHOICEs written ``IMPLICIT`` (X.680 31.2.7; see ``ASN1TOOLS_DEFECTS`` in
``test_differential``).
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asn1tools
from hypothesis import strategies as st

from tests.paths import ASN1_MODULES, SGP26

__all__ = [
    "PE_FILES",
    "RSP_FILES",
    "SpecStrategies",
    "certificate_ders",
    "crl_ders",
    "from_rspfed",
    "normalise",
    "pe_compiled",
    "pe_strategies",
    "rsp_compiled",
    "rsp_compiled_x680",
    "rsp_strategies",
    "rspfed_class",
    "to_rspfed",
    "x680_retags",
]

RSP_FILES = [
    str(ASN1_MODULES / "rsp.asn"),
    str(ASN1_MODULES / "PKIX1Explicit88.asn"),
    str(ASN1_MODULES / "PKIX1Implicit88.asn"),
]
PE_FILES = [str(ASN1_MODULES / "PE_Definitions-3.3.1.asn")]

MAX_LIST = 3
"""Upper bound of generated SEQUENCE OF lengths (unless SIZE needs more)."""
MAX_OCTETS = 40
"""Upper bound of unconstrained OCTET STRING / character string lengths."""
MAX_DEPTH = 6
"""Nesting depth beyond which OPTIONAL components are omitted."""

_STRING_TYPES = {
    "UTF8String",
    "IA5String",
    "PrintableString",
    "NumericString",
    "VisibleString",
    "GraphicString",
    "TeletexString",
    "T61String",
    "UniversalString",
    "BMPString",
}
_ALPHABETS: dict[str, st.SearchStrategy[str]] = {
    "UTF8String": st.characters(codec="utf-8", exclude_categories=["Cs"]),
    "IA5String": st.characters(min_codepoint=0, max_codepoint=127),
    "VisibleString": st.characters(min_codepoint=32, max_codepoint=126),
    "NumericString": st.sampled_from("0123456789 "),
    "PrintableString": st.sampled_from(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?"
    ),
}
_PKIX_REAL = {"Certificate", "CertificateList"}
_BUILTIN = {
    "SEQUENCE",
    "SET",
    "CHOICE",
    "SEQUENCE OF",
    "SET OF",
    "INTEGER",
    "ENUMERATED",
    "BOOLEAN",
    "NULL",
    "OCTET STRING",
    "BIT STRING",
    "OBJECT IDENTIFIER",
    "UTCTime",
    "GeneralizedTime",
    *_STRING_TYPES,
}


@functools.cache
def rsp_compiled() -> Any:
    """asn1tools DER codec of RSPDefinitions + PKIX (compiled once)."""
    return asn1tools.compile_files(RSP_FILES, "der")


@functools.cache
def pe_compiled() -> Any:
    """asn1tools DER codec of PEDefinitions (compiled once)."""
    return asn1tools.compile_files(PE_FILES, "der")


@functools.cache
def certificate_ders() -> tuple[bytes, ...]:
    """Every SGP.26 certificate (DER) under ``tests/data/sgp26-certs``, sorted by path."""
    return tuple(p.read_bytes() for p in sorted(Path(SGP26).rglob("CERT_*.der")))


@functools.cache
def crl_ders() -> tuple[bytes, ...]:
    """CRLs naming each SGP.26 CI as issuer, made here with ``cryptography``.

    SGP.26 ships no CI private key, so these are signed with a fixed P-256 key;
    only their structure matters to the codec tests.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.derive_private_key(0x5EED, ec.SECP256R1())
    out = []
    for cert_path in sorted((Path(SGP26) / "CertificateIssuer").glob("CERT_CI_*.der")):
        cert = x509.load_der_x509_certificate(cert_path.read_bytes())
        when = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(cert.subject)
            .last_update(when)
            .next_update(when + dt.timedelta(days=30))
            .add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(0x1234).revocation_date(when).build()
            )
            .add_extension(x509.CRLNumber(7), critical=False)
        )
        crl = builder.sign(key, hashes.SHA256())
        out.append(crl.public_bytes(serialization.Encoding.DER))
    return tuple(out)


class SpecStrategies:
    """Value strategies for the types of a parsed asn1tools specification.

    ``spec`` is the result of :func:`asn1tools.parse_files`; ``pkix`` (optional)
    is a compiled asn1tools codec that knows ``Certificate`` and
    ``CertificateList``, used to turn real DER into asn1tools values.
    """

    def __init__(self, spec: dict[str, Any], pkix: Any = None) -> None:
        self.spec = spec
        self.pkix = pkix
        self._named: dict[tuple[str, str, int], st.SearchStrategy[Any]] = {}

    # -- name resolution ---------------------------------------------------

    def resolve(self, module: str, name: str) -> tuple[str, dict[str, Any]]:
        """The module and definition of the type ``name`` referenced from ``module``."""
        mod = self.spec[module]
        if name in mod["types"]:
            return module, mod["types"][name]
        for other, names in mod["imports"].items():
            if name in names and other in self.spec:
                return self.resolve(other, name)
        raise KeyError(f"{module}: unknown type {name}")

    def value_of(self, module: str, ref: Any) -> Any:
        """Resolve a value reference (``maxUInt8``) or ``MIN``/``MAX`` (-> None)."""
        if isinstance(ref, str):
            if ref in ("MIN", "MAX"):
                return None
            mod = self.spec[module]
            if ref in mod["values"]:
                return mod["values"][ref]["value"]
            for other, names in mod["imports"].items():
                if ref in names and other in self.spec:
                    return self.value_of(other, ref)
            return int(ref)
        return ref

    def ranges(self, module: str, constraint: list[Any] | None) -> list[tuple[Any, Any]]:
        """A SIZE or value constraint as ``[(low, high)]`` (``None`` = unbounded)."""
        out = []
        for item in constraint or []:
            if isinstance(item, (list, tuple)):
                out.append((self.value_of(module, item[0]), self.value_of(module, item[1])))
            else:
                value = self.value_of(module, item)
                out.append((value, value))
        return out

    def size_strategy(self, module: str, type_: dict[str, Any], cap: int) -> st.SearchStrategy[int]:
        """Lengths allowed by the SIZE constraint (bounded by ``cap`` where open)."""
        ranges = self.ranges(module, type_.get("size"))
        if not ranges:
            return st.integers(0, cap)
        options = []
        for low, high in ranges:
            low = 0 if low is None else low
            high = max(low, cap) if high is None else high
            options.append(st.integers(low, min(high, max(low, cap))))
        return st.one_of(options)

    # -- strategies ----------------------------------------------------------

    def for_type(self, module: str, name: str, depth: int = 0) -> st.SearchStrategy[Any]:
        """Strategy for the named type ``name`` of ``module``."""
        key = (module, name, min(depth, MAX_DEPTH + 1))
        if key not in self._named:
            if name in _PKIX_REAL and self.pkix is not None:
                ders = certificate_ders() if name == "Certificate" else crl_ders()
                values = [self.pkix.decode(name, der) for der in ders]
                self._named[key] = st.sampled_from(values)
            else:
                def_module, definition = self.resolve(module, name)
                self._named[key] = st.deferred(
                    lambda: self.for_definition(def_module, definition, depth + 1)
                )
        return self._named[key]

    def is_retagged_choice(self, module: str, t: dict[str, Any], automatic: bool) -> bool:
        """Whether component ``t`` puts a tag (its own, or an automatic one when
        ``automatic``) on a reference to an already tagged CHOICE.

        X.680 31.2.7: such a tag is implicit (it replaces the CHOICE's own tag);
        asn1tools encodes it explicitly (two tags) unless written ``IMPLICIT``
        -- see :func:`x680_retags`.
        """
        if ("tag" not in t and not automatic) or t["type"] in _BUILTIN:
            return False
        try:
            _, definition = self.resolve(module, t["type"])
        except KeyError:
            return False
        return definition["type"] == "CHOICE" and "tag" in definition

    def for_definition(
        self, module: str, t: dict[str, Any], depth: int = 0
    ) -> st.SearchStrategy[Any]:
        """Strategy for a type definition dict (``{"type": ..., ...}``)."""
        kind = t["type"]
        builder: Callable[[str, dict[str, Any], int], st.SearchStrategy[Any]] | None = getattr(
            self, "_" + kind.replace(" ", "_"), None
        )
        if builder is not None:
            return builder(module, t, depth)
        if kind in _STRING_TYPES:
            return self._string(module, t, depth)
        if kind in self.spec[module]["types"] or any(
            kind in names for names in self.spec[module]["imports"].values()
        ):
            inner = self.for_type(module, kind, depth)
            if t.get("size") or t.get("restricted-to"):
                # constraint applied to a referenced type: re-derive with it
                _, definition = self.resolve(module, kind)
                merged: dict[str, Any] = dict(definition)
                merged.update({k: t[k] for k in ("size", "restricted-to") if k in t})
                return self.for_definition(module, merged, depth)
            return inner
        raise NotImplementedError(f"no strategy for ASN.1 type {kind!r}")

    def _component(
        self, module: str, members: list[dict[str, Any]], member: dict[str, Any], depth: int
    ) -> st.SearchStrategy[Any]:
        return self.for_definition(module, member, depth + 1)

    def _SEQUENCE(self, module: str, t: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
        members = [m for m in t.get("members", []) if m is not None and m.get("name")]
        parts: dict[str, st.SearchStrategy[Any]] = {}
        for member in members:
            value = self._component(module, members, member, depth)
            if "default" in member:
                default = self._default_value(module, member)
                value = value.filter(functools.partial(_differs, default))
            if member.get("optional") or "default" in member:
                if depth >= MAX_DEPTH or value.is_empty:
                    continue
                value = st.one_of(st.just(_ABSENT), value)
            parts[member["name"]] = value
        return st.fixed_dictionaries(parts).map(
            lambda d: {k: v for k, v in d.items() if v is not _ABSENT}
        )

    _SET = _SEQUENCE

    def _CHOICE(self, module: str, t: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
        members = [m for m in t.get("members", []) if m is not None and m.get("name")]
        return st.one_of(
            [
                self._component(module, members, m, depth).map(functools.partial(_pair, m["name"]))
                for m in members
            ]
        )

    def _SEQUENCE_OF(self, module: str, t: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
        cap = 1 if depth >= MAX_DEPTH else MAX_LIST
        element = self.for_definition(module, t["element"], depth + 1)
        return self.size_strategy(module, t, cap).flatmap(
            lambda n: st.lists(element, min_size=n, max_size=n)
        )

    _SET_OF = _SEQUENCE_OF

    def _INTEGER(self, module: str, t: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
        ranges = self.ranges(module, t.get("restricted-to"))
        if not ranges:
            named = list((t.get("named-numbers") or {}).values())
            plain = st.integers(-(2**70), 2**70)
            small = st.integers(-300, 300)
            return (
                st.one_of(st.sampled_from(named), small, plain)
                if named
                else st.one_of(small, plain)
            )
        return st.one_of([st.integers(low, high) for low, high in ranges])

    def _ENUMERATED(self, module: str, t: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
        names = [v[0] for v in t["values"] if v is not None and v != "..."]
        return st.sampled_from(names)

    def _BOOLEAN(self, module: str, t: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
        return st.booleans()

    def _NULL(self, module: str, t: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
        return st.none()

    def _OCTET_STRING(self, module: str, t: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
        return self.size_strategy(module, t, MAX_OCTETS).flatmap(
            lambda n: st.binary(min_size=n, max_size=n)
        )

    def _BIT_STRING(self, module: str, t: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
        named = t.get("named-bits")
        if named:
            top = max(int(self.value_of(module, number)) for _, number in named)
            return st.sets(st.integers(0, top)).map(_bits_from_indexes)
        return self.size_strategy(module, t, 64).flatmap(_bit_string_of_size)

    def _OBJECT_IDENTIFIER(
        self, module: str, t: dict[str, Any], depth: int
    ) -> st.SearchStrategy[Any]:
        return st.tuples(
            st.integers(0, 2),
            st.integers(0, 39),
            st.lists(st.integers(0, 2**40), max_size=6),
        ).map(lambda p: ".".join(str(x) for x in (p[0], p[1], *p[2])))

    def _UTCTime(self, module: str, t: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
        # 2000-2049 only: asn1tools reads YY >= 50 as 20YY, not 19YY (RFC 5280)
        return st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2049, 12, 31, 23, 59, 59)).map(
            lambda d: d.replace(microsecond=0)
        )

    def _GeneralizedTime(
        self, module: str, t: dict[str, Any], depth: int
    ) -> st.SearchStrategy[Any]:
        return st.datetimes(dt.datetime(1000, 1, 1), dt.datetime(9999, 12, 31)).map(
            lambda d: d.replace(microsecond=0)
        )

    def _string(self, module: str, t: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
        alphabet = _ALPHABETS.get(t["type"], _ALPHABETS["IA5String"])
        return self.size_strategy(module, t, MAX_OCTETS // 2).flatmap(
            lambda n: st.text(alphabet, min_size=n, max_size=n)
        )

    def strip_defaults(self, module: str, t: dict[str, Any], value: Any) -> Any:
        """``value`` (asn1tools form, of definition ``t``) made comparable with
        :func:`from_rspfed`: DEFAULT components equal to their default are left
        out, whatever form asn1tools gives the default in (it fills absent ones
        in, some as the raw ``'0x..'`` string), and named INTEGER values become
        numbers."""
        kind = t["type"]
        if kind in ("SEQUENCE", "SET") and isinstance(value, dict):
            out = {}
            members = {m["name"]: m for m in t.get("members", []) if m and m.get("name")}
            for name, item in value.items():
                member = members.get(name)
                if member is None:
                    out[name] = item
                    continue
                if "default" in member and item in (
                    member["default"],
                    self._default_value(module, member),
                ):
                    continue
                out[name] = self.strip_defaults(module, member, item)
            return out
        if kind == "CHOICE" and isinstance(value, tuple):
            for member in t.get("members", []):
                if member and member.get("name") == value[0]:
                    return (value[0], self.strip_defaults(module, member, value[1]))
            return value
        if kind in ("SEQUENCE OF", "SET OF") and isinstance(value, list):
            return [self.strip_defaults(module, t["element"], item) for item in value]
        if kind == "INTEGER" and isinstance(value, str):
            # asn1tools names some named numbers and not others: compare numbers
            return self.named_numbers(module, t)[value]
        if kind in _BUILTIN or kind in _STRING_TYPES or kind in _PKIX_REAL:
            return value
        def_module, definition = self.resolve(module, kind)
        return self.strip_defaults(def_module, definition, value)

    def named_numbers(self, module: str, t: dict[str, Any]) -> dict[str, int]:
        """Named numbers of an INTEGER definition (value references resolved)."""
        return {
            name: int(self.value_of(module, number))
            for name, number in (t.get("named-numbers") or {}).items()
        }

    def strip_defaults_of(self, module: str, name: str, value: Any) -> Any:
        """:meth:`strip_defaults` for the named type ``name``."""
        def_module, definition = self.resolve(module, name)
        return self.strip_defaults(def_module, definition, value)

    def _default_value(self, module: str, member: dict[str, Any]) -> Any:
        """The DEFAULT of ``member`` in asn1tools value form (hex strings -> bytes)."""
        default = member["default"]
        if isinstance(default, str) and default.startswith("0x"):
            return bytes.fromhex(default[2:])
        if isinstance(default, str):
            definition = member
            while definition["type"] not in _BUILTIN:
                module, definition = self.resolve(module, definition["type"])
            if definition["type"] == "INTEGER":
                return self.named_numbers(module, definition).get(default, default)
        return default


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT = _Absent()


def _differs(default: Any, value: Any) -> bool:
    return bool(value != default)


def _pair(name: str, value: Any) -> tuple[str, Any]:
    return (name, value)


def _bit_string_of_size(nbits: int) -> st.SearchStrategy[tuple[bytes, int]]:
    size = (nbits + 7) // 8
    return st.binary(min_size=size, max_size=size).map(
        lambda data: (_clear_unused(data, nbits), nbits)
    )


def _bits_from_indexes(indexes: set[int]) -> tuple[bytes, int]:
    """``(bytes, nbits)`` with exactly ``indexes`` set, trailing zero bits removed."""
    if not indexes:
        return b"", 0
    nbits = max(indexes) + 1
    number = 0
    for index in indexes:
        number |= 1 << (nbits - 1 - index)
    unused = (-nbits) % 8
    return (number << unused).to_bytes((nbits + 7) // 8, "big"), nbits


def _clear_unused(data: bytes, nbits: int) -> bytes:
    """Zero the unused trailing bits (DER requires them to be 0)."""
    unused = (-nbits) % 8
    if not data or not unused:
        return data
    return data[:-1] + bytes([data[-1] & (0xFF << unused) & 0xFF])


def x680_retags(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of a parsed specification where every tag put on a reference to an
    already tagged CHOICE is written ``IMPLICIT`` (automatic tags made explicit
    where needed), so that asn1tools encodes it as X.680 31.2.7 says.

    asn1tools otherwise encodes such tags explicitly (two tags); see
    ``ASN1TOOLS_DEFECTS['retagged-tagged-choice']`` in ``test_differential``.
    """
    patched: dict[str, Any] = copy.deepcopy(spec)
    helper = SpecStrategies(patched)

    def walk(module: str, t: dict[str, Any]) -> None:
        members = [m for m in t.get("members") or [] if m is not None and m.get("name")]
        if members and t["type"] in ("SEQUENCE", "SET", "CHOICE"):
            automatic = patched[module]["tags"] == "AUTOMATIC" and not any(
                "tag" in m for m in members
            )
            retagged = [m for m in members if helper.is_retagged_choice(module, m, automatic)]
            if retagged and automatic:
                for number, member in enumerate(members):
                    member["tag"] = {"number": number}
            for member in retagged:
                member["tag"]["kind"] = "IMPLICIT"
        for member in members:
            walk(module, member)
        if isinstance(t.get("element"), dict):
            walk(module, t["element"])

    for module, definitions in patched.items():
        for definition in definitions["types"].values():
            walk(module, definition)
    return patched


@functools.cache
def rsp_compiled_x680() -> Any:
    """asn1tools DER codec of RSPDefinitions + PKIX with :func:`x680_retags` applied."""
    return asn1tools.compile_dict(x680_retags(asn1tools.parse_files(RSP_FILES)), "der")


@functools.cache
def rsp_strategies() -> SpecStrategies:
    """Strategies for RSPDefinitions (PKIX certificates and CRLs drawn from real ones)."""
    return SpecStrategies(asn1tools.parse_files(RSP_FILES), pkix=rsp_compiled())


@functools.cache
def pe_strategies() -> SpecStrategies:
    """Strategies for PEDefinitions."""
    return SpecStrategies(asn1tools.parse_files(PE_FILES))


# ---------------------------------------------------------------------------
# asn1tools value form <-> rspfed (asn1crypto) values


_PKIX_ALT_NAMES = {"utc_time": "utcTime", "general_time": "generalTime"}
"""asn1crypto's names of PKIX ``Time`` alternatives -> the ASN.1 names."""
_PKIX_ALT_NAMES_REV = {v: k for k, v in _PKIX_ALT_NAMES.items()}


def rspfed_class(module: str, name: str) -> type[Any]:
    """The rspfed class of type ``name`` of ``module`` (``RSPDefinitions`` / ``PEDefinitions``)."""
    from rspfed.asn1 import rsp, saip

    generated = rsp if module == "RSPDefinitions" else saip
    cls: type[Any] = getattr(generated, generated.TYPE_NAMES[name])
    return cls


def to_rspfed(cls: type[Any], value: Any) -> Any:
    """Build an rspfed/asn1crypto value of ``cls`` from an asn1tools-form ``value``.

    Walks the asn1crypto class tree (fields, alternatives, child specs), so
    CHOICE alternative names and absent OPTIONAL components carry over.
    Certificates and CRLs (asn1tools values) go through their DER.
    """
    from asn1crypto import core, crl, x509

    if issubclass(cls, (x509.Certificate, crl.CertificateList)):
        name = "Certificate" if issubclass(cls, x509.Certificate) else "CertificateList"
        return cls.load(rsp_compiled().encode(name, value))
    if issubclass(cls, core.Choice):
        alt_name, alt_value = value
        alt_name = _PKIX_ALT_NAMES_REV.get(alt_name, alt_name)
        for alt, spec, _params in cls._alternatives:
            if alt == alt_name:
                return cls(name=alt_name, value=to_rspfed(spec, alt_value))
        raise KeyError(alt_name)
    if issubclass(cls, core.Sequence):
        return cls(
            {
                field_name: to_rspfed(spec, value[field_name])
                for field_name, spec, _params in cls._fields
                if field_name in value
            }
        )
    if issubclass(cls, core.SequenceOf):
        return cls([to_rspfed(cls._child_spec, item) for item in value])
    if issubclass(cls, core.BitString):
        data, nbits = value
        return cls(tuple((data[i // 8] >> (7 - i % 8)) & 1 for i in range(nbits)))
    if issubclass(cls, core.Null):
        return cls()
    if issubclass(cls, (core.UTCTime, core.GeneralizedTime)):
        return cls(value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value)
    return cls(value)


def from_rspfed(obj: Any) -> Any:
    """The asn1tools value form of an rspfed/asn1crypto value (walking its tree).

    DEFAULT components equal to their default are left out (compare with
    :meth:`SpecStrategies.strip_defaults` of asn1tools' decoding); unknown
    extension additions are ignored (asn1tools drops them too).  Certificates
    and CRLs are decoded with asn1tools.
    """
    from asn1crypto import core, crl, parser, x509

    if isinstance(obj, (x509.Certificate, crl.CertificateList)):
        name = "Certificate" if isinstance(obj, x509.Certificate) else "CertificateList"
        return rsp_compiled().decode(name, parser.emit(0, 1, 16, obj.contents or b""))
    if isinstance(obj, core.Choice):
        return (_PKIX_ALT_NAMES.get(obj.name, obj.name), from_rspfed(obj.chosen))
    if isinstance(obj, core.Sequence):
        out = {}
        for field_name, spec, params in obj._fields:
            child = obj[field_name]
            if isinstance(child, core.Void):
                continue
            if "default" in params and child.dump(force=True) == spec(**params).dump(force=True):
                continue  # DER: a value equal to its default is absent
            out[field_name] = from_rspfed(child)
        return out
    if isinstance(obj, core.SequenceOf):
        return [from_rspfed(child) for child in obj]
    if isinstance(obj, core.BitString):
        contents = bytes(obj.contents or b"\x00")
        return contents[1:], len(contents[1:]) * 8 - contents[0]
    if isinstance(obj, core.Null):
        return None
    if isinstance(obj, core.Boolean):
        return bool(obj.native)
    if isinstance(obj, core.ObjectIdentifier):
        return obj.dotted
    if isinstance(obj, (core.UTCTime, core.GeneralizedTime)):
        return obj.native
    if isinstance(obj, core.Enumerated):
        return obj.native
    if isinstance(obj, core.Integer):
        return int(obj)
    if isinstance(obj, core.OctetString):
        return bytes(obj.contents or b"")
    if isinstance(obj, core.AbstractString):
        return obj.native
    raise TypeError(f"no asn1tools form for {type(obj).__name__}")


def normalise(value: Any) -> Any:
    """Comparable form: naive-UTC datetimes (asn1tools and asn1crypto differ on tzinfo)."""
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(normalise(v) for v in value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value
