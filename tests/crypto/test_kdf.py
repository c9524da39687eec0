"""BPP session keys (SGP.22 Annex G): pySim vectors, SharedInfo layout, X9.63 cross-check."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.crypto import SessionKeys, derive_session_keys, session_shared_info, x963_kdf
from rspfed.errors import UsageError

h = bytes.fromhex

# Osmocom pySim tests/unittests/test_esim_bsp.py (commit a3962b2076d157e075262c51e6c4d0a48ba12465):
# BSP_Test.test_kdf and BSP_Test_mode51.test_kdf (the latter from a trace of a third-party
# SM-DP+), keyType '88', keyLength 16, hostId = '80' * 8.
PYSIM_KDF = [
    {
        "shs": "8902dca391bbb22570fe60c176076246f568b1941265dff1d729e63039658089",
        "eid": "89049032123451234512345678901335",
        "s_enc": "d782d575b22a38334556a3d9a1e2ae6b",
        "s_mac": "a35addc192ae8f934e2932116c7e89e7",
        "mcv": "734bc93ddb10c71c5ad13d420dc08b5b",
    },
    {
        "shs": "c9a993dd4879a8f7161f2085410edd4f9652f1df37be097ba96ba2ca6be528fe",
        "eid": "89049032123451234512345678901235",
        "s_enc": "472f5bfadd97f21d34f3ce9b51b92751",
        "s_mac": "9ec07f5b36a13e12a991d66e294e6242",
        "mcv": "406d507b448a699e7a36a38494debbde",
    },
]


# NIST CAVP component testing, ansx963_2001.rsp, [SHA-256], [shared secret length = 192].
CAVP_X963 = [
    ("96c05619d56c328ab95fe84b18264b08725b85e33fd34f08", "", "443024c3dae66b95e6f5670601558f71"),
    ("96f600b73ad6ac5629577eced51743dd2c24c21b1ac83ee4", "", "b6295162a7804f5667ba9070f82fa522"),
    (
        "22518b10e70f2a3f243810ae3254139efbee04aa57c7af7d",
        "75eef81aa3041e33b80971203d2c0c52",
        "c498af77161cc59f2962b9a713e2b215152d139766ce34a776df11866a69bf2e"
        "52a13d9c7c6fc878c50c5ea0bc7b00e0da2447cfd874f6cf92f30d0097111485"
        "500c90c3af8b487872d04685d14c8d1dc8d7fa08beb0ce0ababc11f0bd496269"
        "142d43525a78e5bc79a17f59676a5706dc54d54d4d1f0bd7e386128ec26afc21",
    ),
]


@pytest.mark.parametrize(("z", "info", "key"), CAVP_X963)
def test_cavp_x963_sha256(z: str, info: str, key: str) -> None:
    assert x963_kdf(h(z), h(info), len(h(key))) == h(key)
    assert reference_x963(h(z), h(info), len(h(key))) == h(key)


def reference_x963(z: bytes, shared_info: bytes, length: int) -> bytes:
    """ANSI X9.63 KDF written out: SHA-256(Z || counter32 || SharedInfo), counter from 1."""
    out = b""
    counter = 1
    while len(out) < length:
        out += hashlib.sha256(z + counter.to_bytes(4, "big") + shared_info).digest()
        counter += 1
    return out[:length]


@pytest.mark.parametrize("v", PYSIM_KDF)
def test_pysim_vectors(v: dict[str, str]) -> None:
    keys = derive_session_keys(h(v["shs"]), b"\x80" * 8, h(v["eid"]))
    assert keys.s_enc == h(v["s_enc"])
    assert keys.s_mac == h(v["s_mac"])
    assert keys.initial_mac_chaining_value == h(v["mcv"])


def test_shared_info_layout() -> None:
    eid = h("89049032123451234512345678901235")
    info = session_shared_info(b"\x80" * 8, eid)
    # keyType '88' || keyLength '10' || hostID-LV || EID-LV
    assert info == h("88" "10" "08" "8080808080808080" "10") + eid


@given(
    shs=st.binary(min_size=32, max_size=32),
    host_id=st.binary(min_size=1, max_size=16),
    eid=st.binary(min_size=16, max_size=16),
)
def test_matches_direct_x963_composition(shs: bytes, host_id: bytes, eid: bytes) -> None:
    shared_info = bytes((0x88, 0x10, len(host_id))) + host_id + bytes((16,)) + eid
    out = reference_x963(shs, shared_info, 48)
    keys = derive_session_keys(shs, host_id, eid)
    assert (keys.initial_mac_chaining_value, keys.s_enc, keys.s_mac) == (
        out[:16],
        out[16:32],
        out[32:],
    )
    assert x963_kdf(shs, shared_info, 100) == reference_x963(shs, shared_info, 100)


@pytest.mark.parametrize(
    ("host_id", "eid", "kw"),
    [
        (b"", bytes(16), {}),
        (bytes(17), bytes(16), {}),
        (b"\x01", bytes(15), {}),
        (b"\x01", bytes(16), {"key_type": 0x80}),
        (b"\x01", bytes(16), {"key_length": 0x20}),
    ],
)
def test_bad_inputs_are_usage_errors(host_id: bytes, eid: bytes, kw: dict[str, int]) -> None:
    with pytest.raises(UsageError):
        derive_session_keys(bytes(32), host_id, eid, **kw)


def test_session_keys_hide_their_values() -> None:
    keys = derive_session_keys(h(PYSIM_KDF[0]["shs"]), b"\x80" * 8, h(PYSIM_KDF[0]["eid"]))
    text = repr(keys) + str(keys)
    for secret in (keys.s_enc, keys.s_mac, keys.initial_mac_chaining_value):
        assert secret.hex() not in text
        assert repr(secret) not in text
    with pytest.raises(UsageError):
        SessionKeys(bytes(16), bytes(15), bytes(16))
    ppk = SessionKeys.from_replace_session_keys(b"\x00" * 16, b"\x01" * 16, b"\x02" * 16)
    assert (ppk.initial_mac_chaining_value, ppk.s_enc, ppk.s_mac) == (
        b"\x00" * 16,
        b"\x01" * 16,
        b"\x02" * 16,
    )
