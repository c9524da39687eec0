"""JSON form of rspfed ASN.1 values (what ``rspfed decode`` prints and ``rspfed encode`` reads).

:func:`to_json` turns a decoded value into plain JSON data; :func:`from_json`
builds the value back, so that for every value ``v`` of type ``T`` decoded
from DER ``der``::

    encode(from_json(T, to_json(v))) == der

The form is derived from the type, never guessed from the data:

==========================  ==========================================================
ASN.1                       JSON
==========================  ==========================================================
SEQUENCE, SET               object, components in definition order, named as in the
                            ASN.1 module; absent OPTIONAL components and DEFAULT ones
                            equal to their default (absent in DER) are left out;
                            unknown extension additions as ``"_extensions"``: list of
                            hex strings (each one complete TLV)
CHOICE                      ``{"alternativeName": value}``; an unknown alternative
                            as ``{"_unknown": "hex of the TLV"}``
SEQUENCE OF, SET OF         list
OCTET STRING                lowercase hex string
BIT STRING with named bits  list of the names of the bits that are set (bit numbers
                            as integers for bits without a name), in bit order
BIT STRING                  hex string when a whole number of octets, else
                            ``{"hex": "...", "bitLength": n}``
INTEGER, ENUMERATED         the name where one is defined for the value, else the
                            number
BOOLEAN, NULL               ``true``/``false``, ``null``
OBJECT IDENTIFIER           dotted string
UTCTime, GeneralizedTime    the DER string itself (``"250101120000Z"``): exact
character strings           string
ANY / open types            ``{"_der": "hex of the TLV"}``
==========================  ==========================================================

PKIX types (``Certificate``, ``CertificateList``, ``Time``) are asn1crypto's;
their snake_case component names are shown in the ASN.1 camelCase spelling
(``tbs_certificate`` -> ``tbsCertificate``, ``utc_time`` -> ``utcTime``).
OCTET STRINGs that asn1crypto parses further (certificate extension values)
stay hex.

Output is deterministic: object keys follow the definition order.

Errors: a JSON document that does not fit the type (wrong JSON type, unknown
or missing component, bad hex, unknown name) raises
:class:`rspfed.errors.DecodeError` naming the JSON path (``$.euiccInfo2.svn``);
it is bad input.  A structurally fine value that breaks a constraint is found
by :func:`rspfed.asn1.encode` (:class:`rspfed.errors.EncodeError`).
"""

from __future__ import annotations

import re
from typing import Any, TypeVar, cast

from asn1crypto import core, parser

from rspfed.asn1._base import UNKNOWN_ALTERNATIVE, Opaque
from rspfed.errors import DecodeError, EncodeError, UsageError

__all__ = ["EXTENSIONS_KEY", "OPEN_TYPE_KEY", "UNKNOWN_KEY", "from_json", "to_json"]

EXTENSIONS_KEY = "_extensions"
"""Object key of a SEQUENCE's unknown extension additions (list of hex TLVs)."""
UNKNOWN_KEY = "_unknown"
"""Object key of a CHOICE alternative this version does not know (hex TLV)."""
OPEN_TYPE_KEY = "_der"
"""Object key of an open type (ANY) value (hex TLV)."""

T = TypeVar("T", bound=core.Asn1Value)

_BUILD_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError)


# ---------------------------------------------------------------------------
# names


def _is_rspfed(cls: type[core.Asn1Value]) -> bool:
    return cls.__module__.startswith("rspfed.")


_SNAKE = re.compile(r"_([a-z0-9])")

_PKIX_NAMES = {
    "": "rdnSequence",
    "extn_id": "extnID",
    "issuer_unique_id": "issuerUniqueID",
    "subject_unique_id": "subjectUniqueID",
    "named": "namedCurve",
    "implicit_ca": "implicitCurve",
    "specified": "specifiedCurve",
}
"""asn1crypto component names whose ASN.1 spelling is not their camelCase form."""


def _json_name(cls: type[core.Asn1Value], name: str) -> str:
    """The JSON (ASN.1) spelling of a component name of ``cls``."""
    # ASN.1 identifiers have no "_": only asn1crypto's own names are converted
    # (also where an rspfed type inherits them, e.g. ExpirationDate from Time)
    if not _is_rspfed(cls) and name in _PKIX_NAMES:
        return _PKIX_NAMES[name]
    return _SNAKE.sub(lambda m: m.group(1).upper(), name)


def _components(entries: Any) -> list[tuple[str, Any, dict[str, Any]]]:
    """``_fields`` / ``_alternatives`` as (name, spec, params) triples (asn1crypto
    allows pairs until a class is first instantiated)."""
    return [(e[0], e[1], e[2] if len(e) > 2 else {}) for e in entries or ()]


def _schema_type_name(cls: type[core.Asn1Value]) -> str:
    name = getattr(cls, "_asn1_name", "")
    return str(name) if name else cls.__name__


# ---------------------------------------------------------------------------
# value -> JSON


def to_json(value: core.Asn1Value) -> Any:
    """The JSON form of ``value`` (see the module docstring); deterministic.

    The value is not validated: components missing from a hand-built value are
    simply left out (:func:`rspfed.asn1.encode` refuses such a value).  Raises
    :class:`UsageError` if ``value`` is not an asn1crypto value and
    :class:`EncodeError` if a part of it has no JSON form.
    """
    if not isinstance(value, core.Asn1Value):
        raise UsageError("to_json() takes an asn1crypto value")
    try:
        return _to_json(value)
    except _BUILD_ERRORS as exc:
        raise EncodeError(
            str(exc).splitlines()[0], type_name=_schema_type_name(type(value))
        ) from None


def _to_json(value: Any) -> Any:
    if isinstance(value, Opaque):
        return value.der.hex()
    if isinstance(value, core.Choice):
        return _choice_to_json(value)
    if isinstance(value, core.Sequence):  # also Set
        return _sequence_to_json(value)
    if isinstance(value, (core.SequenceOf, core.SetOf)):
        return [_to_json(child) for child in value]
    if isinstance(value, core.Any):
        return {OPEN_TYPE_KEY: value.dump().hex()}
    if isinstance(value, core.Boolean):
        return bool(value.native)
    if isinstance(value, core.Null):
        return None
    if isinstance(value, core.BitString):
        return _bit_string_to_json(value)
    if isinstance(value, core.Integer):  # also Enumerated
        number = int(value)
        names = getattr(value, "_map", None) or {}
        name = names.get(number)
        return name if name is not None else number
    if isinstance(value, core.ObjectIdentifier):
        return value.dotted
    if isinstance(value, (core.UTCTime, core.GeneralizedTime)):
        return bytes(value.contents or b"").decode("ascii")
    if isinstance(value, core.AbstractString):
        return value.native
    if isinstance(value, (core.OctetString, core.OctetBitString, core.IntegerOctetString)):
        return _raw_octets(value).hex()
    if isinstance(value, (core.ParsableOctetString, core.ParsableOctetBitString)):
        return _raw_octets(value).hex()
    raise TypeError(f"no JSON form for {type(value).__name__}")


def _raw_octets(value: Any) -> bytes:
    contents = bytes(value.contents or b"")
    if isinstance(value, (core.OctetBitString, core.ParsableOctetBitString)):
        return contents[1:]  # unused-bits octet is 0 for these types
    return contents


def _choice_to_json(value: core.Choice) -> dict[str, Any]:
    if value.name == UNKNOWN_ALTERNATIVE:
        chosen = value.chosen
        der = chosen.der if isinstance(chosen, Opaque) else chosen.dump()
        return {UNKNOWN_KEY: bytes(der).hex()}
    return {_json_name(type(value), value.name): _to_json(value.chosen)}


def _sequence_to_json(value: core.Sequence) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cls = type(value)
    for index, (name, _spec, params) in enumerate(_components(cls._fields)):
        child = value[name]
        if isinstance(child, core.Void):
            continue
        if params and "default" in params:
            _, field_spec, _, field_params, _ = value._determine_spec(index)
            if child.dump(force=True) == field_spec(**(field_params or {})).dump(force=True):
                continue
        out[_json_name(cls, name)] = _to_json(child)
    extensions = getattr(value, "extensions", ())
    if extensions:
        out[EXTENSIONS_KEY] = [ext.der.hex() for ext in extensions]
    return out


def _bit_string_to_json(value: core.BitString) -> Any:
    contents = bytes(value.contents or b"\x00")
    unused, data = contents[0], contents[1:]
    nbits = len(data) * 8 - unused
    names = getattr(value, "_map", None)
    if names:
        set_bits = [i for i in range(nbits) if data[i // 8] >> (7 - i % 8) & 1]
        return [names.get(i, i) for i in set_bits]
    if unused == 0:
        return data.hex()
    return {"hex": data.hex(), "bitLength": nbits}


# ---------------------------------------------------------------------------
# JSON -> value


def from_json(cls: type[T], obj: Any) -> T:
    """Build a value of ``cls`` from its JSON form (see the module docstring).

    Raises :class:`DecodeError` (with the JSON path) for JSON that does not
    fit ``cls``; constraints are checked when the value is encoded.
    :class:`UsageError` if ``cls`` is not an asn1crypto class.
    """
    if not (isinstance(cls, type) and issubclass(cls, core.Asn1Value)):
        raise UsageError("from_json() takes an asn1crypto class")
    try:
        return cast(T, _from_json(cls, obj, "$"))
    except _BuildError as exc:
        raise DecodeError(f"{exc.path}: {exc.message}", type_name=exc.type_name) from None


class _BuildError(Exception):
    def __init__(self, path: str, message: str, type_name: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.type_name = type_name


def _fail(cls: type[Any], path: str, message: str) -> _BuildError:
    return _BuildError(path, message, _schema_type_name(cls))


def _expect(cls: type[Any], obj: Any, kinds: type | tuple[type, ...], path: str, what: str) -> None:
    if not isinstance(obj, kinds) or (isinstance(obj, bool) and bool not in _as_tuple(kinds)):
        raise _fail(cls, path, f"expected {what}, got {_json_kind(obj)}")


def _as_tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _json_kind(obj: Any) -> str:
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "a boolean"
    if isinstance(obj, (int, float)):
        return "a number"
    if isinstance(obj, str):
        return "a string"
    if isinstance(obj, list):
        return "a list"
    if isinstance(obj, dict):
        return "an object"
    return type(obj).__name__


def _hex(cls: type[Any], obj: Any, path: str) -> bytes:
    _expect(cls, obj, str, path, "a hex string")
    try:
        return bytes.fromhex(obj)
    except ValueError:
        raise _fail(cls, path, "not a hex string") from None


def _load(cls: type[Any], der: bytes, path: str) -> Any:
    try:
        return cls.load(der)
    except _BUILD_ERRORS as exc:
        raise _fail(cls, path, str(exc).splitlines()[0]) from None


def _primitive(cls: type[Any], contents: bytes, path: str) -> Any:
    """An instance of primitive ``cls`` with exactly ``contents`` (its own tag)."""
    return _load(cls, parser.emit(cls.class_, 0, cls.tag, contents), path)


def _from_json(cls: type[Any], obj: Any, path: str) -> Any:
    try:
        if issubclass(cls, core.Choice):
            return _choice_from_json(cls, obj, path)
        if issubclass(cls, core.Sequence):
            return _sequence_from_json(cls, obj, path)
        if issubclass(cls, (core.SequenceOf, core.SetOf)):
            _expect(cls, obj, list, path, "a list")
            return cls(
                [_from_json(cls._child_spec, item, f"{path}[{i}]") for i, item in enumerate(obj)]
            )
        if issubclass(cls, core.Any):
            _expect(cls, obj, dict, path, f'{{"{OPEN_TYPE_KEY}": hex}}')
            if set(obj) != {OPEN_TYPE_KEY}:
                raise _fail(cls, path, f'expected {{"{OPEN_TYPE_KEY}": hex}}')
            return _load(cls, _hex(cls, obj[OPEN_TYPE_KEY], path + "." + OPEN_TYPE_KEY), path)
        return _leaf_from_json(cls, obj, path)
    except _BUILD_ERRORS as exc:
        raise _fail(cls, path, str(exc).splitlines()[0]) from None


def _leaf_from_json(cls: type[Any], obj: Any, path: str) -> Any:
    if issubclass(cls, core.Boolean):
        _expect(cls, obj, bool, path, "true or false")
        return cls(obj)
    if issubclass(cls, core.Null):
        if obj is not None:
            raise _fail(cls, path, f"expected null, got {_json_kind(obj)}")
        return cls()
    if issubclass(cls, core.BitString):
        return _bit_string_from_json(cls, obj, path)
    if issubclass(cls, core.Integer):  # also Enumerated
        _expect(cls, obj, (int, str), path, "an integer or a name")
        if isinstance(obj, str):
            numbers = {name: number for number, name in (getattr(cls, "_map", None) or {}).items()}
            if obj not in numbers:
                raise _fail(cls, path, f"{obj!r} is not a named value")
            obj = numbers[obj]
        return cls(obj)
    if issubclass(cls, core.ObjectIdentifier):
        _expect(cls, obj, str, path, "a dotted object identifier")
        if not re.fullmatch(r"[0-9]+(\.[0-9]+)+", obj):
            raise _fail(cls, path, "not a dotted object identifier")
        return cls(obj)
    if issubclass(cls, (core.UTCTime, core.GeneralizedTime)):
        _expect(cls, obj, str, path, "a time string")
        if not obj.isascii():
            raise _fail(cls, path, "not an ASCII time string")
        return _primitive(cls, obj.encode("ascii"), path)
    if issubclass(cls, core.AbstractString):
        _expect(cls, obj, str, path, "a string")
        return cls(obj)
    if issubclass(cls, (core.OctetBitString, core.ParsableOctetBitString)):
        return _primitive(cls, b"\x00" + _hex(cls, obj, path), path)
    if issubclass(
        cls,
        (core.OctetString, core.ParsableOctetString, core.IntegerOctetString),
    ):
        return _primitive(cls, _hex(cls, obj, path), path)
    raise _fail(cls, path, f"no JSON form for {cls.__name__}")


def _bit_string_from_json(cls: type[Any], obj: Any, path: str) -> Any:
    names = getattr(cls, "_map", None)
    if names:
        _expect(cls, obj, list, path, "a list of bit names")
        numbers = {name: number for number, name in names.items()}
        indexes = set()
        for i, item in enumerate(obj):
            if isinstance(item, str) and item in numbers:
                indexes.add(numbers[item])
            elif isinstance(item, int) and not isinstance(item, bool) and 0 <= item < 1 << 20:
                indexes.add(item)
            else:
                raise _fail(cls, f"{path}[{i}]", f"{item!r} is not a bit name or number")
        nbits = max(indexes) + 1 if indexes else 0
        return _bits(cls, nbits, indexes, path)
    if isinstance(obj, dict):
        if set(obj) != {"hex", "bitLength"}:
            raise _fail(cls, path, 'expected a hex string or {"hex", "bitLength"}')
        data = _hex(cls, obj["hex"], path + ".hex")
        nbits = obj["bitLength"]
        _expect(cls, nbits, int, path + ".bitLength", "an integer")
        if not len(data) * 8 - 8 < nbits <= len(data) * 8:
            raise _fail(cls, path, "bitLength does not match the hex length")
    else:
        data = _hex(cls, obj, path)
        nbits = len(data) * 8
    unused = len(data) * 8 - nbits
    return _primitive(cls, bytes([unused]) + data, path)


def _bits(cls: type[Any], nbits: int, indexes: set[int], path: str) -> Any:
    number = 0
    for index in indexes:
        number |= 1 << (nbits - 1 - index)
    unused = (-nbits) % 8
    data = (number << unused).to_bytes((nbits + 7) // 8, "big") if nbits else b""
    return _primitive(cls, bytes([unused]) + data, path)


def _choice_from_json(cls: type[Any], obj: Any, path: str) -> Any:
    _expect(cls, obj, dict, path, "an object with one alternative")
    if len(obj) != 1:
        raise _fail(cls, path, "expected an object with exactly one alternative")
    ((key, item),) = obj.items()
    if key == UNKNOWN_KEY:
        der = _hex(cls, item, f"{path}.{key}")
        try:
            return cls.unknown(der)
        except (EncodeError, *_BUILD_ERRORS) as exc:
            raise _fail(cls, path, str(exc).splitlines()[0]) from None
    for name, spec, _params in _components(cls._alternatives):
        if _json_name(cls, name) == key:
            return cls(name=name, value=_from_json(spec, item, f"{path}.{key}"))
    raise _fail(cls, path, f"{key!r} is not an alternative of {_schema_type_name(cls)}")


def _sequence_from_json(cls: type[Any], obj: Any, path: str) -> Any:
    _expect(cls, obj, dict, path, "an object")
    fields = _components(cls._fields)
    by_json = {_json_name(cls, name): name for name, _spec, _params in fields}
    for key in obj:
        if key not in by_json and key != EXTENSIONS_KEY:
            raise _fail(cls, path, f"{key!r} is not a component of {_schema_type_name(cls)}")
    dynamic = cls._oid_pair is not None or cls._spec_callbacks is not None
    value = cls() if dynamic else None
    children: dict[str, Any] = {}
    for index, (name, field_spec, params) in enumerate(fields):
        key = _json_name(cls, name)
        if key not in obj:
            if not params or not ("optional" in params or "default" in params):
                raise _fail(cls, path, f"missing component {key!r}")
            continue
        spec = field_spec
        if value is not None:
            _, field_spec, value_spec, _params, _override = value._determine_spec(index)
            # a parsable OCTET STRING holds its (hex) octets; others are built as parsed
            spec = (
                field_spec
                if issubclass(field_spec, (core.ParsableOctetString, core.ParsableOctetBitString))
                else value_spec
            )
        child = _from_json(spec, obj[key], f"{path}.{key}")
        if value is not None:
            value[name] = child
        else:
            children[name] = child
    if value is None:
        value = cls(children)
    if EXTENSIONS_KEY in obj:
        items = obj[EXTENSIONS_KEY]
        _expect(cls, items, list, f"{path}.{EXTENSIONS_KEY}", "a list of hex strings")
        if not hasattr(value, "set_extensions"):
            raise _fail(cls, path, f"{_schema_type_name(cls)} takes no extension additions")
        ders = [_hex(cls, item, f"{path}.{EXTENSIONS_KEY}[{i}]") for i, item in enumerate(items)]
        try:
            value.set_extensions(ders)
        except (EncodeError, *_BUILD_ERRORS) as exc:
            raise _fail(cls, f"{path}.{EXTENSIONS_KEY}", str(exc).splitlines()[0]) from None
    return value
