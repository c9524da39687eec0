"""Federation tokens: round trip, every security case, decoder fuzz, differential with asn1tools."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import asn1tools
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from rspfed.errors import (
    DecodeError,
    SignatureError,
    TokenEidMismatchError,
    TokenError,
    TokenExpiredError,
    TokenNotYetValidError,
    UsageError,
)
from rspfed.federation import (
    MAX_TTL,
    DeviceClass,
    Service,
    issue_token,
    parse_token,
    verify_token,
)
from rspfed.pki.eid import eid_check_digits
from tests.paths import ASN1_MODULES

KEY = ec.derive_private_key(0x5EC0DE, ec.SECP256R1())
OTHER = ec.derive_private_key(0xBADC0DE, ec.SECP256R1())
NOW = datetime(2026, 11, 28, 15, 0, 0, tzinfo=UTC)
EID = "89049032123451234512345678901235"
EID2 = "89001012012341234012345678901224"
SPEC = asn1tools.compile_files(str(ASN1_MODULES / "federation.asn"), "der")


def _issue(**overrides: Any) -> bytes:
    args: dict[str, Any] = {
        "primary_key": KEY,
        "subscription_id": "sub-1",
        "eid": EID,
        "device_class": DeviceClass.TABLET,
        "services": {Service.DATA, Service.VOICE},
        "quota": 10**9,
        "now": NOW,
        "rand": os.urandom,
    }
    args.update(overrides)
    return issue_token(**args)


def _verify(der: bytes, **overrides: Any) -> Any:
    args: dict[str, Any] = {"primary_public_key": KEY.public_key(), "now": NOW}
    args.update(overrides)
    return verify_token(der, **args)


def _eid(body: str) -> str:
    return body + eid_check_digits(body)


eids = st.text("0123456789", min_size=30, max_size=30).map(_eid)
tokens = st.fixed_dictionaries(
    {
        "subscription_id": st.text(st.characters(codec="utf-8"), min_size=1, max_size=64),
        "eid": eids,
        "device_class": st.sampled_from(DeviceClass),
        "services": st.frozensets(st.sampled_from(Service)),
        "quota": st.integers(0, 2**63 - 1),
        "now": st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2900, 1, 1), timezones=st.just(UTC)
        ),
        "ttl": st.integers(1, int(MAX_TTL.total_seconds())).map(lambda s: timedelta(seconds=s)),
        "rand": st.binary(min_size=16, max_size=16).map(lambda b: lambda n: b),
    }
)


@given(tokens)
def test_round_trip(fields: dict[str, Any]) -> None:
    der = issue_token(primary_key=KEY, **fields)
    now = fields["now"].replace(microsecond=0)
    token = verify_token(
        der, primary_public_key=KEY.public_key(), now=now, expected_eid=fields["eid"]
    )
    assert token == parse_token(der)
    assert token.subscription_id == fields["subscription_id"]
    assert token.eid == fields["eid"]
    assert token.device_class is fields["device_class"]
    assert token.services == fields["services"]
    assert token.quota == fields["quota"]
    assert token.token_id == fields["rand"](16)
    assert token.not_before == now
    assert token.not_after == now + fields["ttl"]
    # differential: asn1tools decodes the same values and re-encodes the same DER
    decoded = SPEC.decode("FederationToken", der)
    tbs = decoded["tbsToken"]
    assert tbs["subscriptionId"] == token.subscription_id
    assert tbs["eid"].hex() == token.eid
    assert tbs["deviceClass"] == token.device_class.value
    assert tbs["quota"] == token.quota
    assert tbs["tokenId"] == token.token_id
    assert tbs["notAfter"] == token.not_after.replace(tzinfo=None)
    assert SPEC.encode("FederationToken", decoded) == der


def test_forged_signature() -> None:
    der = bytearray(_issue())
    der[-1] ^= 0x01
    with pytest.raises(SignatureError):
        _verify(bytes(der))


def test_signed_by_another_key_naming_ours() -> None:
    # a token whose primaryKeyId names KEY but signed by OTHER
    good = _issue()
    forged = _issue(primary_key=OTHER)
    # graft OTHER's signature onto KEY's tbsToken
    with pytest.raises(SignatureError):
        _verify(good[:-64] + forged[-64:])


def test_wrong_key() -> None:
    with pytest.raises(SignatureError):
        _verify(_issue(), primary_public_key=OTHER.public_key())


def test_expired_and_not_yet_valid() -> None:
    der = _issue(ttl=timedelta(minutes=10))
    _verify(der, now=NOW + timedelta(minutes=9, seconds=59))
    with pytest.raises(TokenExpiredError):
        _verify(der, now=NOW + timedelta(minutes=10))
    with pytest.raises(TokenNotYetValidError):
        _verify(der, now=NOW - timedelta(seconds=1))
    assert issubclass(TokenExpiredError, TokenError)


def test_another_eid() -> None:
    der = _issue()
    assert _verify(der, expected_eid=EID).eid == EID
    with pytest.raises(TokenEidMismatchError):
        _verify(der, expected_eid=EID2)


def test_every_single_bit_flip_is_rejected() -> None:
    der = _issue()
    for i in range(len(der) * 8):
        tampered = bytearray(der)
        tampered[i // 8] ^= 0x80 >> (i % 8)
        with pytest.raises((DecodeError, SignatureError)):
            _verify(bytes(tampered))


@pytest.mark.parametrize(
    "overrides",
    [
        {"ttl": MAX_TTL + timedelta(seconds=1)},
        {"ttl": timedelta(0)},
        {"quota": -1},
        {"subscription_id": ""},
        {"subscription_id": "x" * 65},
        {"eid": "89049032123451234512345678901234"},
        {"now": datetime(2026, 11, 28, 15, 0)},
        {"primary_key": ec.derive_private_key(7, ec.SECP384R1())},
        {"rand": lambda n: b"short"},
    ],
)
def test_issue_refuses_bad_arguments(overrides: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        _issue(**overrides)


def test_window_over_the_cap_is_refused_by_verifiers() -> None:
    # a token signed by a primary that ignores the cap (re-signed by hand)
    from rspfed import asn1
    from rspfed.asn1 import federation as schema
    from rspfed.crypto import signature

    value = asn1.decode(schema.FederationToken, _issue())
    tbs = SPEC.decode("TBSFederationToken", asn1.encode(value["tbsToken"].untag()))
    tbs["notAfter"] = tbs["notBefore"] + MAX_TTL + timedelta(seconds=1)
    tbs_der = SPEC.encode("TBSFederationToken", tbs)
    sig = signature.sign(KEY, b"\xa0" + tbs_der[1:])
    der = SPEC.encode("FederationToken", {"tbsToken": tbs, "signature": sig})
    with pytest.raises(TokenError):
        _verify(der)


@given(st.binary(max_size=300))
def test_fuzz_random_input(data: bytes) -> None:
    with pytest.raises((DecodeError, SignatureError)):
        _verify(data)


VALID = _issue(rand=lambda n: bytes(n))


@given(
    st.lists(
        st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=4
    ),
    st.integers(-3, 3),
)
def test_fuzz_mutated_token(edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(VALID)
    for index, byte in edits:
        data[index] = byte
    if cut < 0:
        data = data[:cut]
    elif cut > 0:
        data += bytes(cut)
    if bytes(data) == VALID:
        return
    with pytest.raises((DecodeError, SignatureError)):
        _verify(bytes(data))


def _sign_tbs(tbs_der: bytes) -> bytes:
    """A FederationToken around a hand-made TBSFederationToken, signed by KEY."""
    from rspfed.crypto import signature

    signed = b"\xa0" + tbs_der[1:]
    content = signed + b"\x81\x40" + signature.sign(KEY, signed)
    assert 0x80 <= len(content) < 0x100
    return b"\x30\x81" + bytes([len(content)]) + content


def test_extension_additions_are_accepted_and_signed() -> None:
    decoded = SPEC.decode("FederationToken", _issue(subscription_id="s"))
    tbs_der = SPEC.encode("TBSFederationToken", decoded["tbsToken"])
    assert tbs_der[1] < 0x7D
    extended = b"\x30" + bytes([tbs_der[1] + 3]) + tbs_der[2:] + b"\x8a\x01\x00"
    der = _sign_tbs(extended)
    assert _verify(der).subscription_id == "s"
    tampered = bytearray(der)
    tampered[tampered.index(b"\x8a\x01\x00") + 2] = 1
    with pytest.raises(SignatureError):
        _verify(bytes(tampered))


def test_unknown_device_class_and_version_are_decode_errors() -> None:
    decoded = SPEC.decode("FederationToken", _issue())
    tbs = SPEC.encode("TBSFederationToken", decoded["tbsToken"])
    class_at = tbs.index(b"\x85\x01") + 2
    with pytest.raises(DecodeError, match="deviceClass"):
        _verify(_sign_tbs(tbs[:class_at] + b"\x07" + tbs[class_at + 1 :]))
    assert tbs[2:5] == b"\x80\x01\x01"
    with pytest.raises(DecodeError, match="version"):
        _verify(_sign_tbs(tbs[:4] + b"\x02" + tbs[5:]))
