"""ES10b answers the ISD-R builds from DER parts equal rspfed.asn1.encode of the same value."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.errors import DecodeError
from rspfed.euicc.isdr import (
    EuiccCredential,
    EuiccInfo,
    IsdR,
    euicc_signed1_der,
    euicc_signed2_der,
)
from rspfed.euicc.store import Store

INFO2 = asn1.encode(
    rsp.EUICCInfo2(
        {
            "profileVersion": EuiccInfo().profile_version,
            "svn": EuiccInfo().svn,
            "euiccFirmwareVer": EuiccInfo().firmware_version,
            "extCardResource": b"\x81\x01\x00",
            "uiccCapability": {"usimSupport"},
            "rspCapability": {"additionalProfile"},
            "euiccCiPKIdListForVerification": [bytes(20)],
            "euiccCiPKIdListForSigning": [bytes(20)],
            "ppVersion": b"\x00\x00\x01",
            "sasAcreditationNumber": "X",
        }
    )
)


@given(
    st.binary(min_size=1, max_size=16),
    st.text(max_size=300),
    st.binary(min_size=16, max_size=16),
    st.sampled_from(["ctxParamsForCommonAuthentication"]),
    st.binary(min_size=4, max_size=4),
    st.one_of(st.none(), st.text(min_size=1, max_size=200)),
)
def test_euicc_signed1_equals_the_codec(
    tid: bytes, address: str, challenge: bytes, ctx: str, tac: bytes, code: str | None
) -> None:
    value: dict[str, object] = {"deviceInfo": {"tac": tac, "deviceCapabilities": {}}}
    if code is not None:
        value["matchingId"] = code
    ctx_params = rsp.CtxParams1(name=ctx, value=value)
    ctx_der = asn1.encode(ctx_params)
    expected = asn1.encode(
        rsp.EuiccSigned1(
            {
                "transactionId": tid,
                "serverAddress": address,
                "serverChallenge": challenge,
                "euiccInfo2": asn1.decode(rsp.EUICCInfo2, INFO2),
                "ctxParams1": asn1.decode(rsp.CtxParams1, ctx_der),
            }
        )
    )
    assert euicc_signed1_der(tid, address, challenge, INFO2, ctx_der) == expected


@given(
    st.binary(min_size=1, max_size=16),
    st.binary(min_size=65, max_size=65),
    st.one_of(st.none(), st.binary(min_size=32, max_size=32)),
)
def test_euicc_signed2_equals_the_codec(tid: bytes, otpk: bytes, hash_cc: bytes | None) -> None:
    fields: dict[str, object] = {"transactionId": tid, "euiccOtpk": otpk}
    if hash_cc is not None:
        fields["hashCc"] = hash_cc
    assert euicc_signed2_der(tid, otpk, hash_cc) == asn1.encode(rsp.EUICCSigned2(fields))


def test_get_euicc_challenge_answer_equals_the_codec(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    store = Store.create(tmp_path / "s.db", eid=bytes(16))
    isdr = IsdR(
        store=store,
        credentials=[EuiccCredential(key, b"", b"")],
        rand=lambda n: bytes(range(n)),
        now=lambda: datetime(2026, 1, 1, tzinfo=UTC),
    )
    answer = isdr.handle(bytes.fromhex("BF2E00"))
    expected = rsp.GetEuiccChallengeResponse({"euiccChallenge": bytes(range(16))})
    assert answer == asn1.encode(expected)
    for bad in ("BF2E8100", "BF2E0100", "BF2E"):
        with pytest.raises(DecodeError):
            isdr.handle(bytes.fromhex(bad))
    store.close()
