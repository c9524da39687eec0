"""ES10b answers the ISD-R builds from DER parts equal rspfed.asn1.encode of the same value."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.euicc.isdr import EuiccInfo, euicc_signed1_der

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
