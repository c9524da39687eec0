"""Personalise a SAIP template package: ICCID, IMSI, K/OPc, AKA algorithm, PINs, EF contents.

:func:`personalise` decodes the template, changes the personalised fields and
re-encodes it.  :class:`PreparedTemplate` parses a template once and records
the byte offsets of every personalised field, so one instance is a handful of
byte-slice substitutions; both give the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from rspfed.errors import UsageError

__all__ = ["Personalisation", "PreparedTemplate", "personalise"]


@attrs.frozen
class Personalisation:
    """The per-subscriber values of one profile instance.

    ``iccid``/``imsi`` as digit strings; ``k``/``opc`` 16 octets (give ``op``
    instead of ``opc`` to have OPc computed); ``algorithm`` ``"milenage"`` or
    ``"usim-test-algorithm"``; PINs as ASCII digits.  ``files`` maps EF names
    (``"ef-spn"``, ``"ef-plmnwact"``, ...) to their new content.
    """

    iccid: str
    imsi: str
    k: bytes = attrs.field(repr=False)
    opc: bytes | None = attrs.field(default=None, repr=False)
    op: bytes | None = attrs.field(default=None, repr=False)
    algorithm: str = "milenage"
    pin1: bytes | None = attrs.field(default=None, repr=False)
    pin2: bytes | None = attrs.field(default=None, repr=False)
    puk1: bytes | None = attrs.field(default=None, repr=False)
    puk2: bytes | None = attrs.field(default=None, repr=False)
    adm1: bytes | None = attrs.field(default=None, repr=False)
    files: Mapping[str, bytes] = attrs.field(factory=dict, repr=False)


def personalise(template: bytes, values: Personalisation) -> bytes:
    """Decode ``template``, apply ``values``, encode (the reference path)."""
    raise UsageError("not implemented yet")


class PreparedTemplate:
    """A template parsed once, with the offsets of every personalised field."""

    def __init__(self, template: bytes) -> None:
        self.template = bytes(template)

    def personalise(self, values: Personalisation) -> bytes:
        """The personalised package (same bytes as :func:`personalise`)."""
        raise UsageError("not implemented yet")
