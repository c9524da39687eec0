"""USIM AUTHENTICATE through the APDU path: TS 35.208 MILENAGE sets, the TS 34.108 test algorithm.

Expected values are the published ones (``tests/data/vectors``); AUTN is
assembled here from the published f1/f5 outputs.  The only thing not published
is MAC-S with the dummy AMF* = 0000, which is checked with the AuC-side
:func:`rspfed.crypto.aka.check_auts` over the (vector-tested) MILENAGE.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.crypto.aka import check_auts
from rspfed.crypto.milenage import Milenage
from rspfed.euicc.uicc import PIN_APPL_1, USIM_AID, Uicc, UiccState, demo_state
from rspfed.euicc.usim import AkaAlgorithmId, AkaSpec, Usim, c2, c3, check_sqn
from tests.paths import VECTORS

SETS = json.loads((VECTORS / "milenage-ts35208.json").read_text())["test_sets"]
VERIFY_PIN1 = "00 20 00 01 08 31323334ffffffff"


def x(a: bytes, b: bytes) -> bytes:
    return bytes(i ^ j for i, j in zip(a, b, strict=True))


def tx(card: Uicc, hexapdu: str) -> tuple[bytes, int]:
    raw = card.transmit(bytes.fromhex(hexapdu.replace(" ", "")))
    return raw[:-2], int.from_bytes(raw[-2:], "big")


def card_with(aka: AkaSpec, *, verify: bool = True) -> Uicc:
    state = attrs.evolve(demo_state(), aka=(aka,))
    card = Uicc(state)
    assert tx(card, "00 A4 04 0C 10 " + USIM_AID.hex())[1] == 0x9000
    if verify:
        assert tx(card, VERIFY_PIN1)[1] == 0x9000
    return card


def authenticate(card: Uicc, rand: bytes, autn: bytes) -> tuple[bytes, int]:
    return tx(card, "00 88 00 81 22 10" + rand.hex() + "10" + autn.hex() + "00")


def milenage_spec(s: dict[str, str], seq_before: int) -> tuple[AkaSpec, int, int]:
    sqn = int(s["SQN"], 16)
    seq, ind = sqn >> 5, sqn & 31
    array = [0] * 32
    array[ind] = seq_before if seq_before >= 0 else seq - 1
    spec = AkaSpec(
        USIM_AID,
        AkaAlgorithmId.MILENAGE,
        bytes.fromhex(s["K"]),
        bytes.fromhex(s["OPc"]),
        sqn_array=tuple(array),
    )
    return spec, seq, ind


def autn_of(s: dict[str, str]) -> bytes:
    return (
        x(bytes.fromhex(s["SQN"]), bytes.fromhex(s["f5"]))
        + bytes.fromhex(s["AMF"])
        + bytes.fromhex(s["f1"])
    )


@pytest.mark.parametrize("s", SETS, ids=[f"set{s['set']}" for s in SETS])
def test_milenage_success(s: dict[str, str]) -> None:
    spec, seq, ind = milenage_spec(s, -1)
    card = card_with(spec)
    data, sw = authenticate(card, bytes.fromhex(s["RAND"]), autn_of(s))
    assert sw == 0x9000
    res, ck, ik = bytes.fromhex(s["f2"]), bytes.fromhex(s["f3"]), bytes.fromhex(s["f4"])
    kc = x(x(ck[:8], ck[8:]), x(ik[:8], ik[8:]))
    assert data == b"\xdb\x08" + res + b"\x10" + ck + b"\x10" + ik + b"\x08" + kc
    # the accepted SEQ is stored for its IND and persists in the snapshot
    assert card.snapshot().aka[0].sqn_array[ind] == seq
    # the same challenge again is a replay: resynchronisation
    data, sw = authenticate(card, bytes.fromhex(s["RAND"]), autn_of(s))
    assert sw == 0x9000
    assert data[:2] == b"\xdc\x0e"


@pytest.mark.parametrize("s", SETS, ids=[f"set{s['set']}" for s in SETS])
def test_milenage_resync(s: dict[str, str]) -> None:
    sqn = bytes.fromhex(s["SQN"])
    seq = int(s["SQN"], 16) >> 5
    spec = milenage_spec(s, seq)[0]  # this SQN was already accepted: a replay
    card = card_with(spec)
    data, sw = authenticate(card, bytes.fromhex(s["RAND"]), autn_of(s))
    assert sw == 0x9000
    assert data[:2] == b"\xdc\x0e"
    auts = data[2:]
    sqn_ms = sqn  # the highest accepted SQN
    assert auts[:6] == x(sqn_ms, bytes.fromhex(s["f5star"]))
    assert (
        check_auts(
            Milenage(bytes.fromhex(s["K"]), bytes.fromhex(s["OPc"])), bytes.fromhex(s["RAND"]), auts
        )
        == sqn_ms
    )


def test_mac_failure_and_security() -> None:
    s = SETS[0]
    spec, _, _ = milenage_spec(s, -1)
    autn = bytearray(autn_of(s))
    autn[-1] ^= 1
    card = card_with(spec)
    assert authenticate(card, bytes.fromhex(s["RAND"]), bytes(autn)) == (b"", 0x9862)
    # PIN1 not verified
    card = card_with(spec, verify=False)
    assert authenticate(card, bytes.fromhex(s["RAND"]), autn_of(s))[1] == 0x6982
    # no USIM selected
    card = Uicc(attrs.evolve(demo_state(), aka=(spec,)))
    assert tx(card, VERIFY_PIN1)[1] == 0x9000
    assert authenticate(card, bytes.fromhex(s["RAND"]), autn_of(s))[1] == 0x6985
    # malformed
    card = card_with(spec)
    assert tx(card, "00 88 00 81 10 10" + "00" * 15)[1] == 0x6700
    assert tx(card, "00 88 00 81 22 11" + "00" * 33)[1] == 0x6A80
    assert tx(card, "00 88 00 82 22 10" + "00" * 33)[1] == 0x6A86
    assert tx(card, "00 88 01 81 22 10" + "00" * 33)[1] == 0x6A86


# TS 34.108 §8.1.2 worked example (tests/data/vectors/ts34108-test-algorithm.md)
TA_K = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
TA_RAND = bytes.fromhex("23553cbe9637a89d218ae64dae47bf35")
TA_AUTN = bytes.fromhex("bd9232ae9a08800023543ebd92132e9a")  # SQN 000000000021, AMF 8000
TA_RES = bytes.fromhex("23543ebd9232ae9a2983ec46a24ab13a")
TA_CK = bytes.fromhex("543ebd9232ae9a2983ec46a24ab13a23")
TA_IK = bytes.fromhex("3ebd9232ae9a2983ec46a24ab13a2354")
TA_KC = bytes.fromhex("0529cb4867bfaadd")
TA_SRES = bytes.fromhex("3aafcd5b")
TA_AUTS = bytes.fromhex("bd9232ae9a6923543ebd9272ae9a")  # SQN_MS 000000000040


def ta_spec(**changes: Any) -> AkaSpec:
    return attrs.evolve(AkaSpec(USIM_AID, AkaAlgorithmId.USIM_TEST_ALGORITHM, TA_K), **changes)


def test_ts34108_success_and_gsm_context() -> None:
    card = card_with(ta_spec())
    data, sw = authenticate(card, TA_RAND, TA_AUTN)
    assert sw == 0x9000
    assert data == b"\xdb\x10" + TA_RES + b"\x10" + TA_CK + b"\x10" + TA_IK + b"\x08" + TA_KC
    data, sw = tx(card, "00 88 00 80 11 10" + TA_RAND.hex() + "00")
    assert (data, sw) == (b"\x04" + TA_SRES + b"\x08" + TA_KC, 0x9000)
    # 8-octet RES
    card = card_with(ta_spec(res_length=8))
    data, _ = authenticate(card, TA_RAND, TA_AUTN)
    assert data[:10] == b"\xdb\x08" + TA_RES[:8]


def test_ts34108_resync() -> None:
    # SQN_MS = 0x40 = SEQ 2 || IND 0; IND 1 was used up to SEQ 1,
    # so SQN 0x21 (SEQ 1, IND 1) is stale
    spec = ta_spec(sqn_array=(2, 1) + (0,) * 30)
    card = card_with(spec)
    assert authenticate(card, TA_RAND, TA_AUTN) == (b"\xdc\x0e" + TA_AUTS, 0x9000)
    # with SQN checking off the same challenge succeeds
    card = card_with(attrs.evolve(spec, sqn_check=False))
    assert authenticate(card, TA_RAND, TA_AUTN)[0][:2] == b"\xdb\x10"


def test_conversion_functions() -> None:
    assert c2(TA_RES) == TA_SRES
    assert c3(TA_CK, TA_IK) == TA_KC


def test_usim_refuses_tuak() -> None:
    from rspfed.errors import UsageError

    with pytest.raises(UsageError):
        Usim(AkaSpec(USIM_AID, AkaAlgorithmId.TUAK, TA_K))


def test_aka_spec_round_trip() -> None:
    spec = ta_spec(sqn_array=tuple(range(32)), res_length=8)
    assert AkaSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert "000102" not in repr(spec)
    state = UiccState.from_dict(
        json.loads(json.dumps(attrs.evolve(demo_state(), aka=(spec,)).to_dict()))
    )
    assert state.aka == (spec,)
    assert PIN_APPL_1 in {p.key_ref for p in state.pins}


# -- the SQN array rules against a direct model ------------------------------------

sqns = st.integers(0, (1 << 12) - 1)


@given(st.lists(sqns, max_size=40), st.integers(0, 64), st.integers(0, 64))
def test_check_sqn_model(received: list[int], delta: int, age: int) -> None:
    array: tuple[int, ...] = (0,) * 32
    accepted: set[int] = set()
    for sqn in received:
        seq, ind = sqn >> 5, sqn & 31
        top = max(array)
        expect = seq > array[ind] and top - seq <= age and seq - top <= delta
        result = check_sqn(sqn, array, ind_bits=5, delta=delta, age_limit=age)
        assert result.accepted == expect
        if expect:
            assert sqn not in accepted  # never the same SQN twice
            accepted.add(sqn)
            assert result.sqn_array[ind] == seq
        else:
            assert result.sqn_array == array
        assert all(n >= o for n, o in zip(result.sqn_array, array, strict=True))
        array = result.sqn_array
