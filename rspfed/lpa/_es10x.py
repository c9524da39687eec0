"""ES10a/b/c request builders and response readers shared by the LPA modules (private).

Requests are built as DER directly (they are small and fixed); responses are
decoded strictly with :func:`rspfed.asn1.decode`.  An eUICC answer that does
not decode is a :class:`~rspfed.errors.ProtocolError` naming the function
(the eUICC, not the caller, is at fault).
"""

from __future__ import annotations

from typing import Final, TypeVar

from asn1crypto import core

from rspfed import asn1
from rspfed.asn1.bertlv import encode_tlv
from rspfed.errors import DecodeError, ProtocolError
from rspfed.lpa.es10 import Es10

__all__ = [
    "GET_EUICC_CHALLENGE",
    "GET_EUICC_CONFIGURED_ADDRESSES",
    "GET_EUICC_INFO1",
    "call",
    "tlv",
]

T = TypeVar("T", bound=core.Asn1Value)

GET_EUICC_INFO1: Final = bytes.fromhex("BF2000")
GET_EUICC_CHALLENGE: Final = bytes.fromhex("BF2E00")
GET_EUICC_CONFIGURED_ADDRESSES: Final = bytes.fromhex("BF3C00")


def tlv(tag: int, *parts: bytes) -> bytes:
    """A TLV whose value is the concatenation of ``parts``."""
    return encode_tlv(tag, b"".join(parts))


def call(es10: Es10, request: bytes, response_type: type[T]) -> tuple[T, bytes]:
    """Send ``request``; the decoded response and its DER."""
    answer = es10.transceive(request)
    try:
        return asn1.decode(response_type, answer), answer
    except DecodeError as exc:
        raise ProtocolError(
            f"the eUICC's {asn1.type_name(response_type)} does not decode: {exc}"
        ) from None
