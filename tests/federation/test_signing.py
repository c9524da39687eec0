"""Signed management requests (RSPFED-SIG1): round trip, tampering, window, parser, vector."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from rspfed.errors import (
    DecodeError,
    ProtocolError,
    ReplayError,
    RspfedError,
    SignatureError,
    UsageError,
)
from rspfed.federation.signing import (
    AUTH_SCHEME,
    MAX_AUTHORIZATION_LENGTH,
    SignedRequest,
    parse_authorization,
    sign_request,
    signing_input,
    verify_request,
)
from rspfed.federation.token import primary_key_id
from tests.paths import REPO

KEY = ec.derive_private_key(0x1234567890ABCDEF, ec.SECP256R1())
OTHER = ec.derive_private_key(0xFEDCBA0987654321, ec.SECP256R1())
NOW = datetime(2026, 11, 28, 15, 0, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=5)
NONCE = bytes(range(16))
BODY = b'{"device_id":"dev-1"}'
PATH = "/rspfed/v1/remove"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed(**overrides: object) -> str:
    args: dict[str, object] = {
        "method": "POST",
        "path": PATH,
        "body": BODY,
        "now": NOW,
        "nonce": NONCE,
    }
    args.update(overrides)
    return sign_request(KEY, **args)  # type: ignore[arg-type]


def _verify(header: str, **overrides: Any) -> None:
    key: ec.EllipticCurvePrivateKey = overrides.pop("key", KEY)
    args: dict[str, Any] = {
        "method": "POST",
        "path": PATH,
        "body": BODY,
        "now": NOW,
        "window": WINDOW,
    }
    args.update(overrides)
    verify_request(parse_authorization(header), key.public_key(), **args)


def test_round_trip() -> None:
    header = _signed()
    assert header.startswith(AUTH_SCHEME + " keyId=")
    req = parse_authorization(header)
    assert req.key_id == primary_key_id(KEY.public_key())
    assert req.timestamp == NOW
    assert req.nonce == NONCE
    assert req.header() == header
    _verify(header)


def test_header_layout_matches_the_spec() -> None:
    header = _signed(now=NOW + timedelta(microseconds=999_999))
    match = re.fullmatch(
        r"RSPFED-SIG1 keyId=([0-9a-f]{40}), ts=(\d+), nonce=([\w-]{22}), sig=([\w-]+)", header
    )
    assert match is not None
    assert (
        match[1]
        == hashlib.sha1(
            KEY.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        ).hexdigest()
    )
    assert int(match[2]) == int(NOW.timestamp())  # truncated to whole seconds
    assert match[3] == _b64(NONCE)
    # the signature verifies with cryptography over the documented signed string
    signed = "\n".join(
        [
            "RSPFED-SIG1",
            "POST",
            PATH,
            match[1],
            match[2],
            match[3],
            hashlib.sha256(BODY).hexdigest(),
        ]
    ).encode()
    sig = base64.urlsafe_b64decode(match[4] + "=" * (-len(match[4]) % 4))
    KEY.public_key().verify(sig, signed, ec.ECDSA(hashes.SHA256()))


def test_empty_body_and_query_string() -> None:
    header = _signed(body=b"", path="/rspfed/v1/devices?all=1")
    _verify(header, body=b"", path="/rspfed/v1/devices?all=1")
    with pytest.raises(SignatureError):
        _verify(header, body=b"", path="/rspfed/v1/devices")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("method", "PUT"),
        ("path", "/rspfed/v1/devices"),
        ("path", PATH + "/"),
        ("body", BODY + b" "),
        ("body", b""),
    ],
)
def test_tampered_request_is_a_signature_error(field: str, value: object) -> None:
    with pytest.raises(SignatureError):
        _verify(_signed(), **{field: value})


def _replace(header: str, name: str, value: str) -> str:
    return re.sub(rf"{name}=[^,]*", f"{name}={value}", header)


def test_tampered_header_fields_are_signature_errors() -> None:
    header = _signed()
    req = parse_authorization(header)
    ts = int(req.timestamp.timestamp())
    for tampered in (
        _replace(header, "ts", str(ts + 1)),
        _replace(header, "ts", str(ts - 60)),
        _replace(header, "nonce", _b64(bytes(16))),
        _replace(header, "nonce", _b64(NONCE[:-1] + b"\x10")),
    ):
        with pytest.raises(SignatureError):
            _verify(tampered)
    # another key's id: refused before the signature is checked
    with pytest.raises(SignatureError, match="keyId"):
        _verify(_replace(header, "keyId", primary_key_id(OTHER.public_key()).hex()))
    # a signature of another message by the same key
    other_sig = parse_authorization(_signed(body=b"x")).signature
    with pytest.raises(SignatureError):
        _verify(_replace(header, "sig", _b64(other_sig)))


def test_every_bit_of_the_signature_matters() -> None:
    req = parse_authorization(_signed())
    for index in range(len(req.signature)):
        for bit in (0x01, 0x80):
            sig = bytearray(req.signature)
            sig[index] ^= bit
            try:
                bad = parse_authorization(
                    req.header().rsplit("sig=", 1)[0] + "sig=" + _b64(bytes(sig))
                )
            except DecodeError:
                continue  # no longer DER
            with pytest.raises(SignatureError):
                verify_request(
                    bad,
                    KEY.public_key(),
                    method="POST",
                    path=PATH,
                    body=BODY,
                    now=NOW,
                    window=WINDOW,
                )


def test_out_of_range_signature_components_are_signature_errors() -> None:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    req = parse_authorization(_signed())
    for r, s in ((n, 1), (1, n), (n + 1, 5)):
        bad = attrs.evolve(req, signature=encode_dss_signature(r, s))
        with pytest.raises(SignatureError, match="range"):
            verify_request(
                bad, KEY.public_key(), method="POST", path=PATH, body=BODY, now=NOW, window=WINDOW
            )


def test_wrong_key() -> None:
    with pytest.raises(SignatureError):
        _verify(_signed(), key=OTHER)
    # a key on another curve is the caller's mistake
    with pytest.raises(UsageError):
        sign_request(
            ec.generate_private_key(ec.SECP384R1()),
            method="POST",
            path=PATH,
            body=BODY,
            now=NOW,
            nonce=NONCE,
        )


@pytest.mark.parametrize(
    ("offset", "ok"),
    [
        (timedelta(0), True),
        (WINDOW, True),
        (-WINDOW, True),
        (WINDOW + timedelta(microseconds=1), False),
        (-WINDOW - timedelta(microseconds=1), False),
        (WINDOW + timedelta(seconds=1), False),
        (timedelta(days=-1), False),
        (timedelta(days=365), False),
    ],
)
def test_window_edges(offset: timedelta, ok: bool) -> None:
    header = _signed()
    if ok:
        _verify(header, now=NOW + offset)
    else:
        with pytest.raises(ProtocolError) as info:
            _verify(header, now=NOW + offset)
        assert not isinstance(info.value, ReplayError)


def test_stale_and_forged_is_a_signature_error() -> None:
    # the signature is checked first: a forged stale request is a SignatureError
    with pytest.raises(SignatureError):
        _verify(_signed(), key=OTHER, now=NOW + timedelta(hours=1))


def test_caller_mistakes_are_usage_errors() -> None:
    for overrides in (
        {"nonce": bytes(15)},
        {"now": datetime(2026, 1, 1)},
        {"method": "post"},
        {"method": ""},
        {"path": "rspfed/v1/remove"},
        {"path": "/a b"},
        {"path": "/a\nb"},
        {"path": "/" + "a" * 2048},
        {"body": "text"},
    ):
        with pytest.raises(UsageError):
            _signed(**overrides)


def test_unsignable_target_at_the_verifier_is_a_decode_error() -> None:
    header = _signed()
    for overrides in ({"method": "post"}, {"path": "/a\nb"}, {"path": ""}):
        with pytest.raises(DecodeError):
            _verify(header, **overrides)


def test_signed_request_validates_its_fields() -> None:
    good = parse_authorization(_signed())
    for changes in (
        {"key_id": bytes(19)},
        {"nonce": bytes(17)},
        {"timestamp": NOW.replace(tzinfo=None)},
        {"timestamp": NOW + timedelta(microseconds=1)},
        {"signature": b""},
    ):
        with pytest.raises(UsageError):
            attrs.evolve(good, **changes)


def test_repr_has_no_signature() -> None:
    req = parse_authorization(_signed())
    assert req.signature.hex() not in repr(req)
    assert "signature" not in repr(req)


# --------------------------------------------------------------------------
# The strict parser


@pytest.mark.parametrize(
    "mutate",
    [
        lambda h: h.replace("RSPFED-SIG1", "rspfed-sig1"),
        lambda h: h.replace("RSPFED-SIG1 ", "RSPFED-SIG1  "),
        lambda h: h.replace("keyId=", "keyid="),
        lambda h: h.replace(", ", ","),
        lambda h: h.replace(", ts", " , ts"),
        lambda h: h + " ",
        lambda h: " " + h,
        lambda h: h + "\n",
        lambda h: h + ", extra=1",
        lambda h: h.replace("keyId=", 'keyId="').replace(", ts", '", ts'),
        lambda h: re.sub(r"keyId=([0-9a-f]+)", lambda m: "keyId=" + m[1].upper(), h),
        lambda h: re.sub(r"keyId=[0-9a-f]{2}", "keyId=", h),
        lambda h: re.sub(r"ts=(\d+)", r"ts=0\1", h),
        lambda h: re.sub(r"ts=(\d+)", r"ts=+\1", h),
        lambda h: re.sub(r"ts=(\d+)", "ts=12345678901", h),
        lambda h: re.sub(r"ts=(\d+)", "ts=١٢٣", h),  # non-ASCII digits
        lambda h: re.sub(r"nonce=([\w-]+)", r"nonce=\1==", h),
        lambda h: re.sub(r"nonce=([\w-]+)", lambda m: "nonce=" + m[1][:-1] + "x", h),
        lambda h: re.sub(r"nonce=([\w-]+)", lambda m: "nonce=" + m[1][:-1], h),
        lambda h: re.sub(r"sig=([\w-]+)", lambda m: "sig=" + m[1] + "=", h),
        lambda h: (
            re.sub(r"sig=([\w-]+)", lambda m: "sig=" + m[1].replace("-", "+"), h)
            if "-" in h.split("sig=")[1]
            else h + "!"
        ),
        lambda h: re.sub(
            r"sig=([\w-]+)", "sig=" + _b64(b"\x30\x06\x02\x01\x01\x02\x01\x01\x00"), h
        ),
        lambda h: re.sub(r"sig=([\w-]+)", "sig=" + _b64(b"\x30\x06\x02\x01\x00\x02\x01\x01"), h),
        lambda h: re.sub(
            r"sig=([\w-]+)", "sig=" + _b64(b"\x30\x07\x02\x02\x00\x01\x02\x01\x01"), h
        ),
        lambda h: re.sub(r"sig=([\w-]+)", "sig=" + _b64(bytes(73)), h),
        lambda h: h.split(", sig=")[0],
        lambda h: ", ".join(reversed(h.removeprefix("RSPFED-SIG1 ").split(", "))),
        lambda h: "Bearer " + h,
        lambda h: h + "A" * MAX_AUTHORIZATION_LENGTH,
        lambda h: "",
    ],
)
def test_parser_rejects_variants(mutate: object) -> None:
    header = _signed()
    bad = mutate(header)  # type: ignore[operator]
    assert bad != header
    with pytest.raises(DecodeError):
        parse_authorization(bad)


def test_parser_rejects_non_text() -> None:
    with pytest.raises(DecodeError):
        parse_authorization(b"RSPFED-SIG1 ...")  # type: ignore[arg-type]


@given(st.text(max_size=300))
def test_random_text_only_decode_errors(text: str) -> None:
    try:
        req = parse_authorization(text)
    except DecodeError:
        return
    assert req.header() == text


_ALPHABET = "abcdef0123456789RSPFEDIG-1 keyId=,tsncg_ABCxyz"


@given(st.text(alphabet=_ALPHABET, max_size=220))
def test_near_grammar_text_only_decode_errors(text: str) -> None:
    with contextlib.suppress(DecodeError):
        parse_authorization(text)


@given(
    header=st.builds(_signed).map(str),
    position=st.integers(min_value=0, max_value=250),
    char=st.characters(max_codepoint=0x7F),
)
def test_one_character_edits_only_decode_or_verify_errors(
    header: str, position: int, char: str
) -> None:
    edited = header[:position] + char + header[position + 1 :]
    try:
        req = parse_authorization(edited)
    except DecodeError:
        return
    if edited == header:
        return
    with pytest.raises(RspfedError):
        verify_request(
            req, KEY.public_key(), method="POST", path=PATH, body=BODY, now=NOW, window=WINDOW
        )


_PATHS = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=60).map(
    lambda p: "/" + p
)


@given(
    method=st.from_regex(r"[A-Z]{1,16}", fullmatch=True),
    path=_PATHS,
    body=st.binary(max_size=200),
    ts=st.integers(min_value=0, max_value=9_999_999_999),
    nonce=st.binary(min_size=16, max_size=16),
)
def test_generated_requests_round_trip(
    method: str, path: str, body: bytes, ts: int, nonce: bytes
) -> None:
    now = datetime.fromtimestamp(ts, UTC)
    header = sign_request(KEY, method=method, path=path, body=body, now=now, nonce=nonce)
    assert len(header) <= 205
    req = parse_authorization(header)
    assert (req.timestamp, req.nonce) == (now, nonce)
    assert req.header() == header
    verify_request(
        req, KEY.public_key(), method=method, path=path, body=body, now=now, window=timedelta(0)
    )


# --------------------------------------------------------------------------
# The documented test vector


def _vector() -> dict[str, str]:
    text = (REPO / "docs" / "federation-requests.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```text (request-vector-\d+)\n(.*?)```", text, flags=re.S)
    assert blocks
    fields: dict[str, str] = {}
    for line in blocks[0][1].strip().splitlines():
        key, _, value = line.partition(": ")
        fields[key] = value
    return fields


VECTOR = _vector()


def test_vector_verifies_with_cryptography_directly() -> None:
    v = VECTOR
    key = ec.derive_private_key(int(v["private-key-scalar"], 16), ec.SECP256R1())
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert point.hex() == v["public-key"]
    public = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), bytes.fromhex(v["public-key"])
    )
    assert hashlib.sha1(point).hexdigest() == v["key-id"]
    assert hashlib.sha256(v["body"].encode()).hexdigest() == v["body-sha256"]
    assert base64.urlsafe_b64decode(v["nonce"] + "==") == bytes.fromhex(v["nonce-hex"])
    message = bytes.fromhex(v["signing-input-hex"])
    lines = message.decode("ascii").split("\n")
    assert lines == [
        "RSPFED-SIG1",
        v["method"],
        v["path"],
        v["key-id"],
        v["ts"],
        v["nonce"],
        v["body-sha256"],
    ]
    public.verify(bytes.fromhex(v["signature-hex"]), message, ec.ECDSA(hashes.SHA256()))


def test_vector_through_rspfed() -> None:
    v = VECTOR
    public = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), bytes.fromhex(v["public-key"])
    )
    req = parse_authorization(v["authorization"])
    assert req == SignedRequest(
        key_id=bytes.fromhex(v["key-id"]),
        timestamp=datetime.fromtimestamp(int(v["ts"]), UTC),
        nonce=bytes.fromhex(v["nonce-hex"]),
        signature=bytes.fromhex(v["signature-hex"]),
    )
    assert req.header() == v["authorization"]
    assert (
        signing_input(
            method=v["method"],
            path=v["path"],
            body=v["body"].encode(),
            key_id=req.key_id,
            timestamp=req.timestamp,
            nonce=req.nonce,
        ).hex()
        == v["signing-input-hex"]
    )
    now = datetime.strptime(v["now"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    window = timedelta(seconds=300)
    args = {"method": v["method"], "path": v["path"], "body": v["body"].encode(), "window": window}
    verify_request(req, public, now=now, **args)  # type: ignore[arg-type]
    verify_request(req, public, now=now + window, **args)  # type: ignore[arg-type]
    late = now + window + timedelta(seconds=1)
    with pytest.raises(ProtocolError):
        verify_request(req, public, now=late, **args)  # type: ignore[arg-type]
    for change in (
        {"method": "PUT"},
        {"path": "/rspfed/v1/devices"},
        {"body": b'{"device_id":"dev-0003"}'},
    ):
        with pytest.raises(SignatureError):
            verify_request(req, public, now=now, **{**args, **change})  # type: ignore[arg-type]
    with pytest.raises(SignatureError):
        verify_request(req, OTHER.public_key(), now=now, **args)  # type: ignore[arg-type]
    # rspfed's signer (random ECDSA nonces) yields the same header up to the signature
    key = ec.derive_private_key(int(v["private-key-scalar"], 16), ec.SECP256R1())
    ours = sign_request(
        key,
        method=v["method"],
        path=v["path"],
        body=v["body"].encode(),
        now=now,
        nonce=bytes.fromhex(v["nonce-hex"]),
    )
    assert ours.split(", sig=")[0] == v["authorization"].split(", sig=")[0]
