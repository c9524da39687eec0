"""The fields the SM-DP+ needs from ES9+ DER messages, by a TLV walk.

Every message is first checked in full by :func:`rspfed.asn1.decode` (strict
DER against the SGP.22 schema); these functions then only slice the fields
out of the bytes instead of building asn1crypto objects, which is most of the
cost of reading a message on the hot path.  Fields are found by tag, so
extension additions (unknown trailing components) are skipped.  Anything
unexpected raises :class:`~rspfed.errors.DecodeError`.

Tags (SGP.22 RSPDefinitions, AUTOMATIC TAGS where no component is tagged)::

    AuthenticateServerResponse  BF38 { A0 ok { 30 euiccSigned1 { 80 tid, 83 address,
                                  84 serverChallenge, BF22 euiccInfo2, A0 ctx { [80 matchingId],
                                  A1 deviceInfo } }, 5F37 sig1, 30 CERT.EUICC, 30 CERT.EUM }
                                  | A1 error }
    PrepareDownloadResponse     BF21 { A0 ok { 30 euiccSigned2 { 80 tid, 5F49 otPK,
                                  [04 hashCc] }, 5F37 sig2 } | A1 error }
    ProfileInstallationResult   BF37 { BF27 data { 80 tid, BF2F metadata { 80 seq, ... },
                                  [06 smdpOid], A2 finalResult { A0 success | A1 error } },
                                  5F37 sig }
    EUICCInfo1                  BF20 { 82 svn, A9 { 04 ski ... }, AA { 04 ski ... } }
"""

from __future__ import annotations

from typing import NamedTuple

from rspfed.errors import DecodeError

__all__ = [
    "AuthenticateOk",
    "EuiccInfo1",
    "InstallationResult",
    "PrepareDownloadOk",
    "authenticate_response_ok",
    "euicc_info1",
    "installation_result",
    "prepare_download_ok",
]

_Child = tuple[int, int, int, int]  # tag, TLV start, value start, value end


def _children(data: bytes, start: int, end: int) -> list[_Child]:
    out: list[_Child] = []
    pos = start
    while pos < end:
        first = pos
        tag = data[pos]
        pos += 1
        if tag & 0x1F == 0x1F:
            while True:
                octet = data[pos]
                tag = (tag << 8) | octet
                pos += 1
                if not octet & 0x80:
                    break
        length = data[pos]
        pos += 1
        if length & 0x80:
            count = length & 0x7F
            length = int.from_bytes(data[pos : pos + count], "big")
            pos += count
        out.append((tag, first, pos, pos + length))
        pos += length
    if pos != end:
        raise DecodeError("TLV overruns its container", offset=pos)
    return out


def _one(data: bytes, tag: int) -> _Child:
    """The single top-level TLV of ``data``, which must have ``tag``."""
    try:
        (child,) = _children(data, 0, len(data))
    except (ValueError, IndexError):
        raise DecodeError("one TLV expected", offset=0) from None
    if child[0] != tag:
        raise DecodeError(f"tag {tag:X} expected", offset=0)
    return child


def _find(children: list[_Child], tag: int, *, optional: bool = False) -> _Child | None:
    for child in children:
        if child[0] == tag:
            return child
    if optional:
        return None
    raise DecodeError(f"component with tag {tag:X} missing")


def _need(children: list[_Child], tag: int) -> _Child:
    found = _find(children, tag)
    assert found is not None
    return found


def _value(data: bytes, child: _Child) -> bytes:
    return data[child[2] : child[3]]


def _tlv(data: bytes, child: _Child) -> bytes:
    return data[child[1] : child[3]]


class AuthenticateOk(NamedTuple):
    """The fields of ``authenticateResponseOk``."""

    transaction_id: bytes
    server_challenge: bytes
    euicc_signed1: bytes
    """DER of ``euiccSigned1`` as received (what euiccSignature1 covers)."""
    euicc_signature1: bytes
    euicc_certificate: bytes
    eum_certificate: bytes
    matching_id: str | None
    """``ctxParamsForCommonAuthentication.matchingId`` (``None`` when absent or empty)."""


def authenticate_response_ok(der: bytes) -> AuthenticateOk | None:
    """The fields of a validated ``AuthenticateServerResponse`` (``None``: an error answer)."""
    try:
        outer = _one(der, 0xBF38)
        (choice,) = _children(der, outer[2], outer[3])
        if choice[0] != 0xA0:
            return None
        ok = _children(der, choice[2], choice[3])
        signed1 = ok[0]
        if signed1[0] != 0x30:
            raise DecodeError("euiccSigned1 expected")
        fields = _children(der, signed1[2], signed1[3])
        matching_id = None
        ctx = _find(fields, 0xA0, optional=True)
        if ctx is not None:
            found = _find(_children(der, ctx[2], ctx[3]), 0x80, optional=True)
            if found is not None:
                matching_id = _value(der, found).decode("utf-8") or None
        return AuthenticateOk(
            transaction_id=_value(der, _need(fields, 0x80)),
            server_challenge=_value(der, _need(fields, 0x84)),
            euicc_signed1=_tlv(der, signed1),
            euicc_signature1=_value(der, _need(ok, 0x5F37)),
            euicc_certificate=_tlv(der, ok[2]),
            eum_certificate=_tlv(der, ok[3]),
            matching_id=matching_id,
        )
    except (ValueError, IndexError, UnicodeDecodeError):
        raise DecodeError(
            "malformed AuthenticateServerResponse", type_name="AuthenticateServerResponse"
        ) from None


class PrepareDownloadOk(NamedTuple):
    """The fields of ``downloadResponseOk``."""

    transaction_id: bytes
    euicc_signed2: bytes
    """DER of ``euiccSigned2`` as received (what euiccSignature2 covers, with smdpSignature2)."""
    euicc_signature2: bytes
    euicc_otpk: bytes
    hash_cc: bytes | None


def prepare_download_ok(der: bytes) -> PrepareDownloadOk | None:
    """The fields of a validated ``PrepareDownloadResponse``; ``None`` for the error alternative."""
    try:
        outer = _one(der, 0xBF21)
        (choice,) = _children(der, outer[2], outer[3])
        if choice[0] != 0xA0:
            return None
        ok = _children(der, choice[2], choice[3])
        signed2 = ok[0]
        fields = _children(der, signed2[2], signed2[3])
        hash_cc = _find(fields, 0x04, optional=True)
        return PrepareDownloadOk(
            transaction_id=_value(der, _need(fields, 0x80)),
            euicc_signed2=_tlv(der, signed2),
            euicc_signature2=_value(der, _need(ok, 0x5F37)),
            euicc_otpk=_value(der, _need(fields, 0x5F49)),
            hash_cc=None if hash_cc is None else _value(der, hash_cc),
        )
    except (ValueError, IndexError):
        raise DecodeError(
            "malformed PrepareDownloadResponse", type_name="PrepareDownloadResponse"
        ) from None


class InstallationResult(NamedTuple):
    """The fields of a ``ProfileInstallationResult``."""

    transaction_id: bytes
    data: bytes
    """DER of ``profileInstallationResultData`` (``BF27``) as received (what is signed)."""
    signature: bytes
    success: bool
    seq_number: int


def installation_result(der: bytes) -> InstallationResult:
    """The fields of a validated ``ProfileInstallationResult`` (``BF37``)."""
    try:
        outer = _one(der, 0xBF37)
        top = _children(der, outer[2], outer[3])
        data = _need(top, 0xBF27)
        fields = _children(der, data[2], data[3])
        metadata = _need(fields, 0xBF2F)
        meta = _children(der, metadata[2], metadata[3])
        final = _need(fields, 0xA2)
        (result,) = _children(der, final[2], final[3])
        return InstallationResult(
            transaction_id=_value(der, _need(fields, 0x80)),
            data=_tlv(der, data),
            signature=_value(der, _need(top, 0x5F37)),
            success=result[0] == 0xA0,
            seq_number=int.from_bytes(_value(der, _need(meta, 0x80)), "big", signed=True),
        )
    except (ValueError, IndexError, TypeError):
        raise DecodeError(
            "malformed ProfileInstallationResult", type_name="ProfileInstallationResult"
        ) from None


class EuiccInfo1(NamedTuple):
    """The fields of ``EUICCInfo1``."""

    svn: bytes
    ci_pkids_for_verification: tuple[bytes, ...]
    ci_pkids_for_signing: tuple[bytes, ...]


def euicc_info1(der: bytes) -> EuiccInfo1:
    """The fields of a validated ``EUICCInfo1``."""
    try:
        outer = _one(der, 0xBF20)
        fields = _children(der, outer[2], outer[3])

        def keys(tag: int) -> tuple[bytes, ...]:
            holder = _need(fields, tag)
            return tuple(_value(der, c) for c in _children(der, holder[2], holder[3]))

        return EuiccInfo1(_value(der, _need(fields, 0x82)), keys(0xA9), keys(0xAA))
    except (ValueError, IndexError):
        raise DecodeError("malformed EUICCInfo1", type_name="EUICCInfo1") from None
