"""Mutated DER never escapes the error family: only RspfedError subclasses are raised."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given
from hypothesis import strategies as st

from rspfed.crypto.curves import Curve
from rspfed.errors import CertificateError, DecodeError
from rspfed.pki import CertificateRole, parse_certificate, parse_crl, verify_chain
from tests.pki.conftest import NOW, make_memory_pki, sgp26

LEAF = sgp26("DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der")
CIS = [sgp26("CertificateIssuer/CERT_CI_ECDSA_NIST.der")]
PKI = make_memory_pki(Curve.NIST, "fuzz")
CRL = PKI.crl("ci", ((5, NOW - timedelta(days=1)),))
CRL_DER = CRL.public_bytes(Encoding.DER)


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        at = draw(st.integers(min_value=0, max_value=max(len(out) - 1, 0)))
        if not out:
            break
        if kind == "flip":
            out[at] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif kind == "set":
            out[at] = draw(st.integers(min_value=0, max_value=255))
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=3))
        elif kind == "delete":
            del out[at]
        else:
            del out[at:]
    return bytes(out)


@given(mutated(LEAF))
def test_mutated_leaf(data: bytes) -> None:
    try:
        result = verify_chain(data, role=CertificateRole.DPAUTH, trust_anchors=CIS, now=NOW)
    except (CertificateError, DecodeError):
        return
    # Accepted only if the signed part is untouched (DER re-encodings do not verify).
    assert result.leaf.tbs in LEAF


@given(mutated(CIS[0]))
def test_mutated_trust_anchor(data: bytes) -> None:
    try:
        verify_chain(LEAF, role=CertificateRole.DPAUTH, trust_anchors=[data], now=NOW)
    except (CertificateError, DecodeError):
        return


@given(mutated(CRL_DER))
def test_mutated_crl(data: bytes) -> None:
    try:
        parse_crl(data)
        verify_chain(PKI.ci, role=CertificateRole.CI, trust_anchors=[PKI.ci], crls=[data], now=NOW)
    except (CertificateError, DecodeError):
        return


@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        parse_certificate(data)
    with contextlib.suppress(DecodeError):
        parse_crl(data)
