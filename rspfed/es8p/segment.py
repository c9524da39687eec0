"""The LPA's split of a BPP into ES10b.LoadBoundProfilePackage blocks (SGP.22 §2.5.5).

The LPA sends the BPP to the eUICC in this order, one block per ES10b
command (each block may in turn span several STORE DATA APDUs):

1. tag and length of the ``BoundProfilePackage`` (``BF36``) plus the whole
   ``initialiseSecureChannelRequest`` TLV (``BF23``);
2. the tag and length of ``firstSequenceOf87`` (``A0``) plus its ``'87'`` TLV;
3. the tag and length of ``sequenceOf88`` (``A1``);
4. each ``'88'`` TLV;
5. if present, the tag and length of ``secondSequenceOf87`` (``A2``) plus its ``'87'`` TLV;
6. the tag and length of ``sequenceOf86`` (``A3``);
7. each ``'86'`` TLV.

Other LPAs (lpac's ``es10b_load_bound_profile_package``) cut it the same way.
"""

from __future__ import annotations

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.errors import DecodeError
from rspfed.es8p._tlv import read_header

__all__ = ["segment_bpp_for_es10b"]


def _children(data: bytes, start: int, end: int, what: str) -> list[bytes]:
    out = []
    pos = start
    while pos < end:
        _, value_at, length = read_header(data, pos, what)
        out.append(data[pos : value_at + length])
        pos = value_at + length
    return out


def segment_bpp_for_es10b(bpp_der: bytes) -> list[bytes]:
    """The ES10b blocks of ``bpp_der`` in sending order; their concatenation is ``bpp_der``.

    ``bpp_der`` must be a strictly DER ``BoundProfilePackage``
    (:class:`~rspfed.errors.DecodeError` otherwise).  Each ``firstSequenceOf87``
    / ``secondSequenceOf87`` goes whole in one block (SGP.22 puts exactly one
    ``'87'`` in each).
    """
    data = bytes(bpp_der)
    asn1.decode(rsp.BoundProfilePackage, data)
    _, pos, _ = read_header(data, 0, "BoundProfilePackage")
    blocks: list[bytes] = []
    # 1: BF36 header + BF23 TLV
    _, value_at, length = read_header(data, pos, "InitialiseSecureChannelRequest")
    pos = value_at + length
    blocks.append(data[:pos])
    while pos < len(data):
        tag, value_at, length = read_header(data, pos, "BoundProfilePackage")
        end = value_at + length
        if tag in (b"\xa0", b"\xa2"):
            blocks.append(data[pos:end])
        elif tag in (b"\xa1", b"\xa3"):
            blocks.append(data[pos:value_at])
            blocks.extend(_children(data, value_at, end, "BoundProfilePackage"))
        else:  # pragma: no cover - the strict decode above rules this out
            raise DecodeError("unexpected component", type_name="BoundProfilePackage", offset=pos)
        pos = end
    return blocks
