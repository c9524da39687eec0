"""AuC vectors against the published MILENAGE test sets (3GPP TS 35.208 §4.3)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from rspfed.crypto.milenage import Milenage
from rspfed.errors import IntegrityError, UsageError
from rspfed.network import (
    Auc,
    AuthenticateResult,
    MemorySubscriberStore,
    NetworkRefusedError,
    RefusalReason,
    Subscriber,
    attach,
)
from rspfed.network.auc import IND_BITS, Algorithm
from tests.paths import VECTORS

SETS: list[dict[str, Any]] = json.loads((VECTORS / "milenage-ts35208.json").read_text())[
    "test_sets"
]
IMSI = "001010000000001"


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("ts", SETS, ids=lambda s: f"set{s['set']}")
def test_vector_matches_ts35208(ts: dict[str, Any]) -> None:
    h = {k: bytes.fromhex(v) for k, v in ts.items() if isinstance(v, str) and k != "clause"}
    sqn = int.from_bytes(h["SQN"], "big")
    store = MemorySubscriberStore()
    # place SEQ_HE/IND so that the next vector carries the published SQN
    sub = Subscriber(
        IMSI,
        k=h["K"],
        opc=h["OPc"],
        amf=h["AMF"],
        seq_he=(sqn >> IND_BITS) - 1,
        ind=sqn & ((1 << IND_BITS) - 1),
    )
    auc = Auc(store, rand=lambda n: h["RAND"])
    auc.provision(sub)
    v = auc.generate_vector(IMSI)
    assert v.rand == h["RAND"]
    assert v.xres == h["f2"]
    assert v.ck == h["f3"]
    assert v.ik == h["f4"]
    assert v.sqn_xor_ak == _xor(h["SQN"], h["f5"])
    assert v.autn == _xor(h["SQN"], h["f5"]) + h["AMF"] + h["f1"]
    after = store.get(IMSI)
    assert after is not None
    assert after.seq_he == sqn >> IND_BITS
    assert after.ind == ((sqn & 31) + 1) % 32


def test_secrets_not_in_repr() -> None:
    h = {k: bytes.fromhex(v) for k, v in SETS[0].items() if isinstance(v, str) and k != "clause"}
    sub = Subscriber(IMSI, k=h["K"], opc=h["OPc"])
    auc = Auc(MemorySubscriberStore(), rand=lambda n: h["RAND"])
    auc.provision(sub)
    v = auc.generate_vector(IMSI)
    text = repr(sub) + repr(v) + repr(auc)
    for secret in (h["K"], h["OPc"], v.xres, v.ck, v.ik):
        assert secret.hex() not in text.lower()


def test_resynchronise_checks_mac_s() -> None:
    h = {k: bytes.fromhex(v) for k, v in SETS[0].items() if isinstance(v, str) and k != "clause"}
    auc = Auc(MemorySubscriberStore(), rand=lambda n: h["RAND"])
    auc.provision(Subscriber(IMSI, k=h["K"], opc=h["OPc"]))
    m = Milenage(h["K"], h["OPc"])
    sqn_ms = ((1000 << IND_BITS) | 3).to_bytes(6, "big")
    # AUTS built from the published f5* (AK* depends on RAND only) and MAC-S with AMF* = 0000
    auts = _xor(sqn_ms, h["f5star"]) + m.f1star(h["RAND"], sqn_ms, b"\x00\x00")
    bad = auts[:-1] + bytes([auts[-1] ^ 1])
    with pytest.raises(IntegrityError) as info:
        auc.resynchronise(IMSI, h["RAND"], bad)
    assert bad.hex() not in str(info.value)
    assert auc.subscriber(IMSI).seq_he == 0
    auc.resynchronise(IMSI, h["RAND"], auts)
    assert auc.subscriber(IMSI).seq_he == 1000
    # never back
    lower = ((5 << IND_BITS) | 0).to_bytes(6, "big")
    auc.resynchronise(
        IMSI, h["RAND"], _xor(lower, h["f5star"]) + m.f1star(h["RAND"], lower, b"\x00\x00")
    )
    assert auc.subscriber(IMSI).seq_he == 1000


@pytest.mark.parametrize(
    ("res_length", "res"), [(16, "23543ebd9232ae9a2983ec46a24ab13a"), (8, "23543ebd9232ae9a")]
)
def test_test_algorithm_worked_example(res_length: int, res: str) -> None:
    """TS 34.108 §8.1.2 worked example (tests/data/vectors/ts34108-test-algorithm.md)."""
    rand = bytes.fromhex("23553cbe9637a89d218ae64dae47bf35")
    auc = Auc(MemorySubscriberStore(), rand=lambda n: rand)
    # SQN 000000000021 = SEQ 1, IND 1
    auc.provision(
        Subscriber(IMSI, k=bytes(range(16)), algorithm=Algorithm.TEST, res_length=res_length, ind=1)
    )
    v = auc.generate_vector(IMSI)
    assert v.autn == bytes.fromhex("bd9232ae9a08800023543ebd92132e9a")
    assert v.xres == bytes.fromhex(res)
    assert v.ck == bytes.fromhex("543ebd9232ae9a2983ec46a24ab13a23")
    assert v.ik == bytes.fromhex("3ebd9232ae9a2983ec46a24ab13a2354")


def test_bad_arguments_are_usage_errors() -> None:
    for kwargs in ({"k": "not bytes"}, {"k": bytes(15)}, {"k": bytes(16), "amf": b"\x80"}):
        with pytest.raises(UsageError):
            Subscriber(IMSI, **kwargs)
    with pytest.raises(UsageError):
        Subscriber("00101x", k=bytes(16))


def test_malformed_auts_refuses_the_attach() -> None:
    auc = Auc(MemorySubscriberStore(), rand=random.Random(1).randbytes)
    auc.provision(Subscriber(IMSI, k=bytes(range(16)), opc=bytes(16)))

    def short_auts(rand: bytes, autn: bytes) -> AuthenticateResult:
        return AuthenticateResult(auts=bytes(5))

    with pytest.raises(NetworkRefusedError) as info:
        attach(auc, IMSI, short_auts, now=datetime(2026, 1, 1, tzinfo=UTC))
    assert info.value.reason is RefusalReason.AUTHENTICATION_FAILED
