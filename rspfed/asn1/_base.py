"""Base classes of the generated schemas: asn1crypto types plus constraints and extensibility.

The generated modules :mod:`rspfed.asn1.rsp` and :mod:`rspfed.asn1.saip`
subclass these instead of :mod:`asn1crypto.core` directly.  What this layer
adds:

Class attributes read by the strict decoder (:mod:`rspfed.asn1._strict`):

``_asn1_name``
    The ASN.1 type name (``"EUICCInfo2"``, or ``"Outer.field"`` for an
    anonymous inner type); used in error messages.
``_size_constraint``
    SIZE constraint: a tuple of inclusive ``(low, high)`` ranges (``high`` is
    ``None`` for MAX), or ``None``.  Counts octets (OCTET STRING), bits (BIT
    STRING), characters (character strings) or elements (SEQUENCE OF).
``_value_range``
    Value constraint of an INTEGER, same shape.
``_extensible``
    ``True`` (both modules are ``EXTENSIBILITY IMPLIED``): a SEQUENCE keeps
    unknown trailing components, a CHOICE keeps an unknown alternative, an
    ENUMERATED keeps an unknown value.

Extensibility:

* :class:`Sequence` keeps unknown extension additions as :class:`Opaque`
  values in :attr:`Sequence.extensions`, re-encoded verbatim after the known
  components (where they were received: extension additions always follow
  the root components in DER).
* :class:`Choice` accepts an unknown alternative: its :attr:`Choice.name` is
  :data:`UNKNOWN_ALTERNATIVE` and :attr:`Choice.chosen` an :class:`Opaque`.
  :meth:`Choice.unknown` builds one.
* :class:`BitString` keeps unnamed bits (as integers in its native set);
  :class:`Enumerated` keeps unknown values (as plain integers).

All the checking of received bytes is done up front by the strict decoder;
the lazy parsing of asn1crypto then only ever sees validated input.
"""

from __future__ import annotations

from collections.abc import Iterable
from io import BytesIO
from typing import Any, ClassVar, TypeVar

from asn1crypto import core, parser

from rspfed.errors import EncodeError

__all__ = [
    "UNKNOWN_ALTERNATIVE",
    "BitString",
    "Boolean",
    "Choice",
    "Enumerated",
    "GeneralizedTime",
    "IA5String",
    "Integer",
    "Null",
    "NumericString",
    "ObjectIdentifier",
    "OctetString",
    "Opaque",
    "PrintableString",
    "Sequence",
    "SequenceOf",
    "SetOf",
    "UTCTime",
    "UTF8String",
    "VisibleString",
]

UNKNOWN_ALTERNATIVE = "..."
""":attr:`Choice.name` of an alternative this version does not know."""

_UNKNOWN = -1

Range = tuple[tuple[int | None, int | None], ...]
SizeRange = tuple[tuple[int, int | None], ...]

_C = TypeVar("_C", bound="Choice")


class _Constrained:
    """Class attributes shared by every rspfed schema class (see module docstring)."""

    _asn1_name: ClassVar[str] = ""
    _size_constraint: ClassVar[SizeRange | None] = None
    _value_range: ClassVar[Range | None] = None
    _extensible: ClassVar[bool] = True


class Opaque(core.Asn1Value):
    """A value this version of the schema does not know, kept as its exact TLV bytes.

    Used for unknown SEQUENCE extension additions and unknown CHOICE
    alternatives.  :meth:`dump` returns the received TLV unchanged (it was
    checked to be DER when decoded); :attr:`native` is the TLV as bytes.
    """

    _asn1_name: ClassVar[str] = "unknown extension"

    def __init__(self, der: bytes) -> None:
        """Wrap one complete DER TLV ``der`` (header and contents)."""
        super().__init__()
        try:
            class_, method, tag, header, contents, trailer = parser.parse(bytes(der), strict=True)
        except (ValueError, TypeError) as exc:
            raise EncodeError(f"not one complete TLV: {exc}", type_name="Opaque") from None
        if trailer:
            raise EncodeError("indefinite length in an opaque value", type_name="Opaque")
        self.class_ = class_
        self.method = method
        self.tag = tag
        self._header = header
        self.contents = contents

    @property
    def der(self) -> bytes:
        """The complete TLV bytes."""
        return bytes(self._header or b"") + bytes(self.contents or b"")

    @property
    def native(self) -> bytes:
        """The complete TLV bytes (there is no better native form)."""
        return self.der

    def dump(self, force: bool = False) -> bytes:
        """The TLV as received (``force`` changes nothing: it is already DER)."""
        return self.der

    def __repr__(self) -> str:
        return f"<Opaque {self.der.hex()}>"


class Boolean(_Constrained, core.Boolean):
    """BOOLEAN."""

    _asn1_name = "BOOLEAN"


class Integer(_Constrained, core.Integer):
    """INTEGER (named numbers in ``_map`` do not restrict the value)."""

    _asn1_name = "INTEGER"


class Enumerated(_Constrained, core.Enumerated):
    """ENUMERATED; when extensible an unknown value is kept as a plain integer."""

    _asn1_name = "ENUMERATED"

    def set(self, value: Any) -> None:
        """Set by name or number; unknown numbers are allowed when extensible."""
        if (
            self._extensible
            and isinstance(value, int)
            and not isinstance(value, bool)
            and value not in (self._map or {})
        ):
            core.Integer.set(self, value)
            return
        super().set(value)

    @property
    def native(self) -> Any:
        """The value's name, or the integer for a value this version does not know."""
        if self.contents is None:
            return None
        number = int(self)
        return (self._map or {}).get(number, number)


class BitString(_Constrained, core.BitString):
    """BIT STRING; with named bits, the native value is a set of names (and
    integers for bits this version does not name), trailing zero bits dropped."""

    _asn1_name = "BIT STRING"

    def set(self, value: Any) -> None:
        """Set from a set of names/bit numbers, or a tuple of 0/1."""
        if self._map is None:
            super().set(value)
            return
        if isinstance(value, tuple):
            value = {self._map.get(i, i) for i, bit in enumerate(value) if bit}
        if not isinstance(value, (set, frozenset)):
            raise TypeError(f"{type(self).__name__} value must be a set of names or bit numbers")
        reverse = {name: index for index, name in self._map.items()}
        indexes = []
        for item in value:
            if isinstance(item, int) and not isinstance(item, bool):
                if item < 0:
                    raise ValueError("bit numbers are not negative")
                indexes.append(item)
            elif item in reverse:
                indexes.append(reverse[item])
            else:
                raise ValueError(f"{item!r} is not a named bit of {type(self).__name__}")
        nbits = max(indexes) + 1 if indexes else 0
        number = 0
        for index in indexes:
            number |= 1 << (nbits - 1 - index)
        unused = (-nbits) % 8
        data = (number << unused).to_bytes((nbits + 7) // 8, "big") if nbits else b""
        self.contents = bytes([unused]) + data
        self._native = {self._map.get(i, i) for i in indexes}
        self._unused_bits = (0,) * unused
        self._header = None
        self._trailer = b""


class OctetString(_Constrained, core.OctetString):
    """OCTET STRING."""

    _asn1_name = "OCTET STRING"


class Null(_Constrained, core.Null):
    """NULL."""

    _asn1_name = "NULL"


class ObjectIdentifier(_Constrained, core.ObjectIdentifier):
    """OBJECT IDENTIFIER (native value: dotted string)."""

    _asn1_name = "OBJECT IDENTIFIER"


class UTF8String(_Constrained, core.UTF8String):
    """UTF8String (SIZE counts characters)."""

    _asn1_name = "UTF8String"


class IA5String(_Constrained, core.IA5String):
    """IA5String."""

    _asn1_name = "IA5String"


class PrintableString(_Constrained, core.PrintableString):
    """PrintableString."""

    _asn1_name = "PrintableString"


class NumericString(_Constrained, core.NumericString):
    """NumericString."""

    _asn1_name = "NumericString"


class VisibleString(_Constrained, core.VisibleString):
    """VisibleString."""

    _asn1_name = "VisibleString"


class UTCTime(_Constrained, core.UTCTime):
    """UTCTime (DER: ``YYMMDDHHMMSSZ``)."""

    _asn1_name = "UTCTime"


class GeneralizedTime(_Constrained, core.GeneralizedTime):
    """GeneralizedTime (DER: ``YYYYMMDDHHMMSS[.fff]Z``)."""

    _asn1_name = "GeneralizedTime"


_default_ders: dict[tuple[type, int], bytes] = {}


def _default_der(cls: type[core.Sequence], index: int) -> bytes:
    """The encoding of the DEFAULT value of component ``index`` (cached)."""
    key = (cls, index)
    der = _default_ders.get(key)
    if der is None:
        field = cls._fields[index]
        params = field[2] if len(field) > 2 else {}
        der = _default_ders[key] = field[1](**params).dump()
    return der


class Sequence(_Constrained, core.Sequence):
    """SEQUENCE whose unknown extension additions are kept (see :attr:`extensions`)."""

    _asn1_name = "SEQUENCE"
    _extensions: list[Opaque] | None = None

    def __init__(self, value: Any = None, default: Any = None, **kwargs: Any) -> None:
        """As asn1crypto's, but a value given as ``{}`` (all components absent) is set."""
        super().__init__(value, default, **kwargs)
        if value is not None and self._contents is None:
            self._set_contents()

    @property
    def extensions(self) -> tuple[Opaque, ...]:
        """Unknown trailing components (extension additions from a newer peer), in order."""
        if self.children is None:
            self._parse_children()
        return tuple(self._extensions or ())

    def set_extensions(self, values: Iterable[bytes | Opaque]) -> None:
        """Replace the extension additions (each a complete DER TLV, or an :class:`Opaque`).

        Encoding checks (:func:`rspfed.asn1.encode`) reject a TLV whose tag is
        that of a known component.
        """
        if self.children is None:
            self._parse_children()
        self._extensions = [v if isinstance(v, Opaque) else Opaque(v) for v in values]
        self._mutated = True

    def _parse_children(self, recurse: bool = False) -> None:
        from rspfed.asn1 import _strict

        _strict.parse_sequence_children(self, recurse)

    def _set_contents(self, force: bool = False) -> None:
        if self.children is None:
            self._parse_children()
        assert self.children is not None
        contents = BytesIO()
        for index, info in enumerate(self._fields):
            child = self.children[index]
            if child is None:
                child_dump = b""
            elif child.__class__ is tuple:
                if force:
                    child_dump = self._lazy_child(index).dump(force=force)
                else:
                    child_dump = child[3] + child[4] + child[5]
            else:
                child_dump = child.dump(force=force)
            params = info[2] if len(info) > 2 else None
            if params and "default" in params and _default_der(type(self), index) == child_dump:
                continue
            contents.write(child_dump)
        for extension in self._extensions or ():
            contents.write(extension.dump())
        self._contents = contents.getvalue()
        self._header = None
        if self._trailer != b"":
            self._trailer = b""

    def _make_value(
        self,
        field_name: str,
        field_spec: Any,
        value_spec: Any,
        field_params: Any,
        value: Any,
    ) -> Any:
        # A field typed as a retagged subclass of a CHOICE (X.680 implicit
        # retag of a tagged CHOICE) accepts an instance of the CHOICE itself.
        if (
            isinstance(value, core.Choice)
            and isinstance(value_spec, type)
            and issubclass(value_spec, type(value))
            and value_spec is not type(value)
        ):
            value = value_spec(name=value.name, value=value.chosen)
        return super()._make_value(field_name, field_spec, value_spec, field_params, value)


class SequenceOf(_Constrained, core.SequenceOf):
    """SEQUENCE OF (SIZE counts elements); CHOICE elements may be given as ``(name, value)``."""

    _asn1_name = "SEQUENCE OF"

    def _make_value(self, value: Any) -> Any:
        spec = self._child_spec
        if (
            spec is not None
            and issubclass(spec, core.Choice)
            and isinstance(value, (tuple, dict))
        ):
            value = spec(value)
        return super()._make_value(value)


class SetOf(SequenceOf, core.SetOf):
    """SET OF (elements sorted by their encodings in DER)."""

    _asn1_name = "SET OF"


class Choice(_Constrained, core.Choice):
    """CHOICE that accepts an alternative this version does not know (when extensible)."""

    _asn1_name = "CHOICE"

    def _setup(self) -> None:
        # asn1crypto identifies an alternative by its spec's class_/tag; an
        # alternative that is itself an explicitly tagged CHOICE ([57]
        # InitiateAuthenticationResponse in RemoteProfileProvisioningResponse)
        # is identified by its outermost explicit tag instead.
        super()._setup()
        cls = type(self)
        id_map = dict(cls._id_map or {})
        for index, info in enumerate(cls._alternatives or ()):
            spec = info[1]
            params = info[2] if len(info) > 2 else {}
            if params.get("explicit") is None and params.get("implicit") is None:
                explicit = spec.explicit
                if explicit:
                    outer = explicit if isinstance(explicit[0], int) else explicit[-1]
                    id_map = {k: v for k, v in id_map.items() if v != index}
                    id_map[(int(outer[0]), int(outer[1]))] = index
        cls._id_map = id_map

    @classmethod
    def unknown(cls: type[_C], der: bytes) -> _C:
        """A value holding an unknown alternative given as one complete DER TLV.

        Raises :class:`EncodeError` if the TLV's tag is that of a known alternative.
        """
        value = cls()
        opaque = Opaque(der)
        if (opaque.class_, opaque.tag) in (cls._id_map or {}):
            raise EncodeError(
                f"tag [{opaque.class_} {opaque.tag}] is a known alternative",
                type_name=cls._asn1_name or cls.__name__,
            )
        value._choice = _UNKNOWN
        value._parsed = opaque
        return value

    def validate(self, class_: int, tag: int, contents: bytes) -> None:
        """Select the alternative for ``(class_, tag)``; unknown ones are kept when extensible."""
        try:
            super().validate(class_, tag, contents)
        except ValueError:
            if not self._extensible or (
                self.explicit is not None and self.explicit[-1] != (class_, tag)
            ):
                raise
            self._choice = _UNKNOWN

    @property
    def name(self) -> str:
        """The chosen alternative's name, or :data:`UNKNOWN_ALTERNATIVE`."""
        if self._choice == _UNKNOWN:
            return UNKNOWN_ALTERNATIVE
        return str(super().name)

    @property
    def is_unknown(self) -> bool:
        """Whether the chosen alternative is one this version does not know."""
        return self._choice == _UNKNOWN

    def parse(self) -> Any:
        """The chosen alternative's value (an :class:`Opaque` when unknown)."""
        if self._choice == _UNKNOWN:
            if self._parsed is None:
                self._parsed = Opaque(self._contents or b"")
            return self._parsed
        return super().parse()
