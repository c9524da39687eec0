"""SAIP (TCA eUICC Profile Package) handling on top of :mod:`rspfed.asn1.saip`.

:mod:`rspfed.saip.identifiers` decodes and encodes the identifiers a package
carries (ICCID, IMSI); :mod:`rspfed.saip.summary` describes a package.
"""

from rspfed.saip.identifiers import decode_iccid, decode_imsi, encode_iccid, encode_imsi
from rspfed.saip.summary import ProfileSummary, summarise

__all__ = [
    "ProfileSummary",
    "decode_iccid",
    "decode_imsi",
    "encode_iccid",
    "encode_imsi",
    "summarise",
]
