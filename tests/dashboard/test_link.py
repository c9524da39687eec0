"""Dashboard links: the vector of docs/dashboard.md, forgeries, windows, key checks.

The vector is checked three ways: rspfed reproduces it byte for byte
(deterministic signatures), asn1tools (compiled from the ASN.1 on the page,
an independent DER codec) decodes it to the documented fields, and
``cryptography`` verifies the signature over the documented input.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta

import asn1tools
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given
from hypothesis import strategies as st

from rspfed.errors import (
    DecodeError,
    NotFoundError,
    RspfedError,
    SignatureError,
    TokenExpiredError,
    TokenNotYetValidError,
    TokenRevokedError,
    UsageError,
)
from rspfed.federation.dashboard import (
    MAX_LINK_TEXT,
    MAX_LINK_TTL,
    DashboardLink,
    DashboardView,
    authorize_link,
    dashboard_answer,
    issue_link,
    link_from_text,
    link_text,
    link_url,
    parse_link,
    verify_link,
)
from rspfed.federation.store import KeyRecord
from rspfed.federation.token import primary_key_id
from rspfed.federation.types import DeviceRole, Plan, Subscription
from tests.paths import REPO

DOC = (REPO / "docs" / "dashboard.md").read_text(encoding="utf-8")
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _vector() -> dict[str, str]:
    [body] = re.findall(r"```text vector-1\n(.*?)```", DOC, flags=re.S)
    return dict(line.split(": ", 1) for line in body.strip().splitlines())


V = _vector()


def _scalar_key() -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int(V["private-key-scalar"], 16), ec.SECP256R1())


def test_vector_reproduced_byte_for_byte() -> None:
    key = _scalar_key()
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert point.hex() == V["public-key"]
    assert primary_key_id(key.public_key()).hex() == V["primary-key-id"]
    nonce = bytes.fromhex(V["nonce"])
    der = issue_link(
        key,
        subscription_id=V["subscription-id"],
        now=datetime.fromisoformat(V["now"]),
        rand=lambda n: nonce[:n],
        ttl=timedelta(seconds=int(V["ttl-seconds"])),
        deterministic=True,
    )
    assert der.hex() == V["link-der"]
    assert link_text(der) == V["t"]
    assert link_from_text(V["t"]) == der
    link = verify_link(
        der, primary_public_key=key.public_key(), now=datetime.fromisoformat(V["now"])
    )
    assert link.subscription_id == V["subscription-id"]
    assert link.nonce == nonce


def test_vector_decoded_by_asn1tools_and_verified_by_cryptography() -> None:
    [module] = re.findall(r"```asn1\n(.*?)```", DOC, flags=re.S)
    spec = asn1tools.compile_string(module, codec="der")
    der = bytes.fromhex(V["link-der"])
    decoded = spec.decode("DashboardLink", der)
    tbs = decoded["tbsLink"]
    assert tbs["version"] == 1
    assert tbs["subscriptionId"] == V["subscription-id"]
    assert tbs["primaryKeyId"].hex() == V["primary-key-id"]
    assert tbs["nonce"].hex() == V["nonce"]
    assert tbs["notBefore"].strftime("%Y%m%d%H%M%SZ") == V["not-before"]
    assert tbs["notAfter"].strftime("%Y%m%d%H%M%SZ") == V["not-after"]
    assert decoded["signature"].hex() == V["signature"]
    # the signature input is tbsLink as it appears in the link (A0 ...)
    signed = bytes.fromhex(V["signature-input"])
    assert signed[0] == 0xA0
    assert der[3 : 3 + len(signed)] == signed
    assert spec.encode("TBSDashboardLink", tbs)[1:] == signed[1:]
    sig = bytes.fromhex(V["signature"])
    public = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), bytes.fromhex(V["public-key"])
    )
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    public.verify(encode_dss_signature(r, s), signed, ec.ECDSA(hashes.SHA256()))


KEY = ec.generate_private_key(ec.SECP256R1())
OTHER = ec.generate_private_key(ec.SECP256R1())


def _link(
    key: ec.EllipticCurvePrivateKey = KEY,
    sub: str = "sub-A",
    ttl: timedelta = timedelta(minutes=10),
) -> bytes:
    return issue_link(key, subscription_id=sub, now=NOW, rand=os.urandom, ttl=ttl)


def test_window_edges() -> None:
    der = _link(ttl=timedelta(minutes=10))
    public = KEY.public_key()
    verify_link(der, primary_public_key=public, now=NOW)
    verify_link(der, primary_public_key=public, now=NOW + timedelta(minutes=10, microseconds=-1))
    with pytest.raises(TokenExpiredError):
        verify_link(der, primary_public_key=public, now=NOW + timedelta(minutes=10))
    with pytest.raises(TokenNotYetValidError):
        verify_link(der, primary_public_key=public, now=NOW - timedelta(seconds=1))
    # reusable: the same link verifies again within its window
    verify_link(der, primary_public_key=public, now=NOW + timedelta(minutes=5))


def test_issue_refuses_bad_arguments() -> None:
    with pytest.raises(UsageError):
        _link(ttl=MAX_LINK_TTL + timedelta(seconds=1))
    with pytest.raises(UsageError):
        _link(ttl=timedelta(0))
    with pytest.raises(UsageError):
        _link(sub="")
    with pytest.raises(UsageError):
        _link(sub="x" * 65)
    with pytest.raises(UsageError):
        issue_link(
            ec.generate_private_key(ec.SECP384R1()), subscription_id="s", now=NOW, rand=os.urandom
        )
    with pytest.raises(UsageError):
        issue_link(KEY, subscription_id="s", now=NOW.replace(tzinfo=None), rand=os.urandom)


def test_other_key_is_a_signature_error() -> None:
    with pytest.raises(SignatureError):
        verify_link(_link(OTHER), primary_public_key=KEY.public_key(), now=NOW)


def test_every_bit_flip_is_refused() -> None:
    der = _link()
    for i in range(len(der)):
        for bit in (0x01, 0x80):
            bad = bytearray(der)
            bad[i] ^= bit
            with pytest.raises((DecodeError, SignatureError, TokenExpiredError)):
                verify_link(bytes(bad), primary_public_key=KEY.public_key(), now=NOW)


@given(st.binary(max_size=200))
def test_garbage_is_a_clean_error(data: bytes) -> None:
    with pytest.raises(RspfedError):
        verify_link(data, primary_public_key=KEY.public_key(), now=NOW)


@given(st.text(max_size=600))
def test_link_text_garbage(text: str) -> None:
    try:
        der = link_from_text(text)
    except DecodeError:
        return
    assert link_text(der) == text
    assert len(text) <= MAX_LINK_TEXT


def test_longest_link_fits() -> None:
    sub = "\U0001f4f1" * 64  # 64 characters of 4 octets each
    der = _link(sub=sub)
    text = link_text(der)
    assert len(text) <= MAX_LINK_TEXT
    assert verify_link(link_from_text(text), primary_public_key=KEY.public_key(), now=NOW)
    assert parse_link(der).subscription_id == sub


def test_link_text_is_canonical() -> None:
    t = link_text(_link())
    with pytest.raises(DecodeError):
        link_from_text(t + "=")
    with pytest.raises(DecodeError):
        link_from_text("+" + t[1:])  # standard base64's alphabet, not base64url
    with pytest.raises(DecodeError):
        link_from_text("")
    # a non-canonical final character (non-zero trailing bits), if the length has spare bits
    der = b"\x30\x00"
    text = link_text(der)  # "MAA": 2 spare bits
    with pytest.raises(DecodeError):
        link_from_text(text[:-1] + "B")
    assert link_url("https://op.example:8443/", b"\x30\x00") == (
        "https://op.example:8443/rspfed/v1/dashboard?t=MAA"
    )


# --- authorize_link: the operator's records -----------------------------------


def _record(
    key: ec.EllipticCurvePrivateKey,
    sub: str = "sub-A",
    *,
    role: DeviceRole = DeviceRole.PRIMARY,
    active: bool = True,
) -> KeyRecord:
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return KeyRecord(primary_key_id(key.public_key()), point, sub, "dev-1", role, active, NOW)


def _subs(revoked: datetime | None = None) -> dict[str, Subscription]:
    plan = Plan(pool_bytes=10**9, device_limit=4)
    return {
        s: Subscription(s, "ts48", plan, NOW - timedelta(days=1), tokens_revoked_before=revoked)
        for s in ("sub-A", "sub-B")
    }


def _authorize(
    der: bytes,
    records: list[KeyRecord],
    *,
    now: datetime = NOW,
    revoked: datetime | None = None,
) -> DashboardLink:
    by_id = {r.key_id: r for r in records}
    subs = _subs(revoked)

    def subscription(sub_id: str) -> Subscription:
        if sub_id not in subs:
            raise NotFoundError("no such subscription")
        return subs[sub_id]

    return authorize_link(der, key=by_id.get, subscription=subscription, now=now)


def test_authorize_accepts_the_active_primary() -> None:
    der = _link()
    assert _authorize(der, [_record(KEY)]) == parse_link(der)


def test_authorize_unknown_key() -> None:
    with pytest.raises(SignatureError, match="unknown key"):
        _authorize(_link(), [_record(OTHER)])


def test_authorize_other_subscriptions_key() -> None:
    # KEY is sub-B's primary key; a link naming sub-A signed with it opens nothing
    with pytest.raises(SignatureError, match="primary key"):
        _authorize(_link(KEY, "sub-A"), [_record(KEY, "sub-B")])


def test_authorize_secondary_key() -> None:
    with pytest.raises(SignatureError, match="primary key"):
        _authorize(_link(), [_record(KEY, role=DeviceRole.SECONDARY)])


def test_authorize_rotated_key() -> None:
    # the primary registered again: the old key is retired, its links stop working
    with pytest.raises(TokenRevokedError, match="replaced"):
        _authorize(_link(KEY), [_record(KEY, active=False), _record(OTHER)])
    _authorize(_link(OTHER), [_record(KEY, active=False), _record(OTHER)])


def test_authorize_forged_signature() -> None:
    # a link naming KEY's id but signed by another key
    forged = bytearray(_link(OTHER))
    real_id = primary_key_id(KEY.public_key())
    at = bytes(forged).index(primary_key_id(OTHER.public_key()))
    forged[at : at + 20] = real_id
    with pytest.raises(SignatureError):
        _authorize(bytes(forged), [_record(KEY)])


def test_authorize_expired_and_revoked() -> None:
    with pytest.raises(TokenExpiredError):
        _authorize(_link(ttl=timedelta(minutes=1)), [_record(KEY)], now=NOW + timedelta(minutes=2))
    with pytest.raises(TokenRevokedError, match="revoked"):
        _authorize(_link(), [_record(KEY)], revoked=NOW)
    _authorize(_link(), [_record(KEY)], revoked=NOW - timedelta(seconds=1))


# --- dashboard_answer: any query gets a page, never a 5xx ----------------------


def _answer(values: list[str]) -> tuple[int, str]:
    records = {r.key_id: r for r in [_record(KEY)]}
    subs = _subs()
    return dashboard_answer(
        values,
        key=records.get,
        subscription=lambda s: subs[s],
        view=lambda s: DashboardView(s, 10**9, 10**8),
        now=NOW,
    )


@given(st.lists(st.text(max_size=300), max_size=3))
def test_any_query_is_a_clean_refusal(values: list[str]) -> None:
    status, page = _answer(values)
    assert status in (400, 401, 403)
    assert "<script" not in page


@given(st.binary(max_size=300))
def test_any_blob_is_a_clean_refusal(blob: bytes) -> None:
    status, _page = _answer([link_text(blob)] if blob else [])
    assert status in (400, 401, 403)


def test_answer_statuses() -> None:
    assert _answer([link_text(_link())])[0] == 200
    assert _answer([link_text(_link())] * 2)[0] == 400
    assert _answer([link_text(_link(OTHER))])[0] == 401
    status, page = _answer([link_text(_link(sub="sub-B"))])  # KEY is sub-A's
    assert status == 401
    assert "primary key" in page
