"""EF.ARR access rules evaluated at run time: the card consults the EF.ARR record the FCP names.

Records are written out by hand from ISO/IEC 7816-4 §9.3.3 / TS 102 221 §9.2.4
(AM DO ``80``, SC DOs ``90``/``97``/``A4``/``A0``/``AF``); the SAIP §9.9 rules
(:data:`rspfed.saip.templates.ARR_RULES`) are real-world examples.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rspfed.euicc.arr import NOT_FOUND, locate_arr, parse_arr_record, rule_allows
from rspfed.euicc.fs import (
    AccessCondition,
    AccessRules,
    FileSpec,
    FileStructure,
    FileSystem,
    FileSystemSpec,
    Operation,
    access_rules_from_arr,
)
from rspfed.euicc.uicc import PinSpec, Uicc, UiccState
from rspfed.saip.templates import ARR_RULES

ALW = AccessRules(
    AccessCondition.ALW, AccessCondition.ALW, AccessCondition.ALW, AccessCondition.ALW
)
TR = FileStructure.TRANSPARENT
LF = FileStructure.LINEAR_FIXED

# EF.ARR records (padded with FF to 32 octets)
READ_ALW_UPDATE_ADM = bytes.fromhex("8001019000800102A40683010A950108")
READ_UPDATE_PIN1 = bytes.fromhex("800103A406830101950108")
READ_PIN1_OR_PIN2 = bytes.fromhex("800101A010A406830101950108A4068301819501088001029700")
READ_PIN1_AND_ADM = bytes.fromhex("800101AF10A406830101950108A40683010A950108")
READ_SM_ONLY = bytes.fromhex("800101B400")


def pad(record: bytes, n: int = 32) -> bytes:
    return record.ljust(n, b"\xff")


RECORDS = (
    READ_ALW_UPDATE_ADM,
    READ_UPDATE_PIN1,
    READ_PIN1_OR_PIN2,
    READ_PIN1_AND_ADM,
    READ_SM_ONLY,
)


def card(*, pin1_enabled: bool = True) -> Uicc:
    """MF with EF.ARR (2F06) and EFs whose explicit rules say ALW but whose ARR says otherwise."""
    arr = FileSpec(
        0x2F06,
        LF,
        "EF.ARR",
        records=tuple(pad(r) for r in RECORDS),
        access=AccessRules(read=AccessCondition.ALW),
        arr=b"\x2f\x06\x01",  # itself: read ALW, update ADM
    )
    files = [
        arr,
        FileSpec(0x2F10, TR, "EF.PIN1", content=b"secret", access=ALW, arr=b"\x2f\x06\x02"),
        FileSpec(0x2F11, TR, "EF.OR", content=b"or", access=ALW, arr=b"\x2f\x06\x03"),
        FileSpec(0x2F12, TR, "EF.AND", content=b"and", access=ALW, arr=b"\x2f\x06\x04"),
        FileSpec(0x2F13, TR, "EF.SM", content=b"sm", access=ALW, arr=b"\x2f\x06\x05"),
        FileSpec(0x2F14, TR, "EF.NOREC", content=b"x", access=ALW, arr=b"\x2f\x06\x09"),
        FileSpec(0x2F15, TR, "EF.OTHER", content=b"y", access=ALW, arr=b"\x6f\x06\x01"),
    ]
    mf = FileSpec(0x3F00, FileStructure.DF, "MF", children=tuple(files), arr=b"\x2f\x06\x01")
    pins = (
        PinSpec(0x01, b"1234", enabled=pin1_enabled),
        PinSpec(0x81, b"5678"),
        PinSpec(0x0A, b"88888888"),
    )
    uicc = Uicc(UiccState(FileSystemSpec(mf), pins))
    uicc.power_on()
    return uicc


def read(uicc: Uicc, fid: int) -> bytes:
    assert uicc.transmit(bytes.fromhex("00A4000C02") + fid.to_bytes(2, "big")) == b"\x90\x00"
    return uicc.transmit(bytes.fromhex("00B0000000"))


def verify(uicc: Uicc, ref: int, pin: bytes) -> bytes:
    return uicc.transmit(bytes([0x00, 0x20, 0x00, ref, 0x08]) + pin.ljust(8, b"\xff"))


def test_pin1_rule_denies_before_verify_and_allows_after() -> None:
    uicc = card()
    assert read(uicc, 0x2F10) == b"\x69\x82"  # explicit rules say ALW; EF.ARR record 2 wins
    assert verify(uicc, 0x01, b"1234") == b"\x90\x00"
    assert read(uicc, 0x2F10) == b"secret\x90\x00"
    update = bytes.fromhex("00D6000002") + b"ok"
    assert uicc.transmit(update) == b"\x90\x00"  # UPDATE: also PIN1
    uicc.reset()
    assert read(uicc, 0x2F10) == b"\x69\x82"  # verification gone with the reset


def test_disabled_pin1_satisfies_its_rule() -> None:
    uicc = card(pin1_enabled=False)
    assert read(uicc, 0x2F10) == b"secret\x90\x00"


def test_or_and_and_templates() -> None:
    uicc = card()
    assert read(uicc, 0x2F11) == b"\x69\x82"
    assert verify(uicc, 0x81, b"5678") == b"\x90\x00"
    assert read(uicc, 0x2F11) == b"or\x90\x00"  # PIN2 is one of the alternatives
    assert uicc.transmit(bytes.fromhex("00D6000001") + b"x") == b"\x69\x82"  # 97: never
    assert verify(uicc, 0x01, b"1234") == b"\x90\x00"
    assert read(uicc, 0x2F12) == b"\x69\x82"  # AND: PIN1 is not enough
    assert verify(uicc, 0x0A, b"88888888") == b"\x90\x00"
    assert read(uicc, 0x2F12) == b"and\x90\x00"


def test_unsupported_conditions_and_missing_records_deny() -> None:
    uicc = card()
    assert verify(uicc, 0x01, b"1234") == b"\x90\x00"
    assert verify(uicc, 0x0A, b"88888888") == b"\x90\x00"
    assert read(uicc, 0x2F13) == b"\x69\x82"  # secure messaging only
    assert read(uicc, 0x2F14) == b"\x69\x82"  # record 9 does not exist: not granted
    # no EF 6F06 anywhere on the path: the file's explicit rules apply
    assert read(uicc, 0x2F15) == b"y\x90\x00"


def test_rules_change_when_ef_arr_is_updated() -> None:
    uicc = card()
    assert read(uicc, 0x2F10) == b"\x69\x82"
    # ADM rewrites record 2 of EF.ARR: reading becomes free (TS 102 221 §9.2.7: evaluated now)
    assert verify(uicc, 0x0A, b"88888888") == b"\x90\x00"
    assert uicc.transmit(bytes.fromhex("00A4000C022F06")) == b"\x90\x00"
    new = pad(bytes.fromhex("8001019000800102A40683010A950108"))
    assert uicc.transmit(bytes.fromhex("00DC0204") + bytes([len(new)]) + new) == b"\x90\x00"
    uicc.reset()
    assert read(uicc, 0x2F10) == b"secret\x90\x00"
    # and the change is in the persistent state
    again = Uicc(uicc.snapshot())
    again.power_on()
    assert read(again, 0x2F10) == b"secret\x90\x00"


def test_locate_arr_walks_up_to_the_mf_from_an_adf() -> None:
    arr = FileSpec(0x2F06, LF, "EF.ARR", records=(pad(READ_UPDATE_PIN1),))
    ef = FileSpec(0x6F07, TR, "EF.X", content=b"x", arr=b"\x2f\x06\x01")
    bad = FileSpec(0x6F08, TR, "EF.Y", content=b"y", arr=b"\x2f\x10\x01")
    transparent = FileSpec(0x2F10, TR, "EF.T", content=b"t")
    mf = FileSpec(0x3F00, FileStructure.DF, "MF", children=(arr, transparent))
    adf = FileSpec(
        0x7FF0, FileStructure.ADF, "ADF", aid=bytes.fromhex("A0000000871002"), children=(ef, bad)
    )
    fs = FileSystem(FileSystemSpec(mf, (adf,)))
    x = fs.adfs[0].by_fid[0x6F07]
    assert locate_arr(x, fs.mf) == pad(READ_UPDATE_PIN1)
    assert locate_arr(fs.adfs[0].by_fid[0x6F08], fs.mf) == NOT_FOUND  # 2F10 is not a record EF


def test_ts48_rules_parse() -> None:
    for rule in ARR_RULES.values():
        record = bytes.fromhex("".join(rule))
        assert parse_arr_record(record)


# -- property: on records that the simplified model describes exactly, both agree ----------

SC_ST = st.sampled_from(
    ["9000", "9700", "A406830101950108", "A40683010A950108", "A406830181950108"]
)
AM_ST = st.integers(1, 0x1B).map(lambda am: f"8001{am:02X}")


@st.composite
def records(draw: st.DrawFn) -> bytes:
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        parts.append(draw(AM_ST))
        parts.append(draw(SC_ST))  # one SC DO per AM DO: no OR/AND approximation involved
    return bytes.fromhex("".join(parts))


@given(records(), st.sets(st.sampled_from([0x01, 0x81, 0x0A])), st.sampled_from(list(Operation)))
def test_agrees_with_the_simplified_model(
    record: bytes, verified: set[int], operation: Operation
) -> None:
    condition = access_rules_from_arr(record).condition(operation)
    key = {
        AccessCondition.PIN1: 0x01,
        AccessCondition.PIN2: 0x81,
        AccessCondition.ADM1: 0x0A,
    }
    expected = condition is AccessCondition.ALW or (condition in key and key[condition] in verified)
    assert rule_allows(record, operation, verified.__contains__) == expected


@given(st.binary(max_size=64), st.sampled_from(list(Operation)))
def test_any_record_gives_a_decision(record: bytes, operation: Operation) -> None:
    assert rule_allows(record, operation, lambda ref: True) in (True, False)
